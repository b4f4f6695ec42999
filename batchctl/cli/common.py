"""What the commands share beyond their options: who you are, what a failed store or
broker means, how a claim's outcome prints, the work left in a batch, HOST:PORT.

The one place commands take helpers from (with batchctl/cli/options.py for options,
output and exit codes): a command module never imports another command module
(tests/batchctl/cli/test_command_modules.py, and an import-linter contract).
"""

from __future__ import annotations

import getpass
import math
import os
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, NoReturn

import click
import redis

from batchctl.claims import (
    ClaimConflict,
    ClaimRefused,
    Outcome,
    StoreError,
    StoreRefused,
    StoreUnavailable,
    Work,
    describe_expiry,
)
from batchctl.claims.redis_errors import store_error
from batchctl.claims.rules import check_holder
from batchctl.claims.service import check_batch
from batchctl.cli.options import (
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Printer,
    not_utf8,
)
from batchctl.config import Config, ExporterConfig
from batchctl.redact import scrub
from batchctl.units import ZeroDuration, format_duration, parse_duration
from exporter.broker.protocol import BrokerError, BrokerRefused, BrokerUnavailable

if TYPE_CHECKING:
    from autoscaler.planning import BatchPlan
    from batchctl.cli.cluster import Session
    from exporter.snapshot import Snapshot

# -- who you are ---------------------------------------------------------------------


def default_holder(env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """Who runs this, and where that came from: $USER, $LOGNAME, else the passwd entry
    of our user id. None when none says: a container running as a uid without a passwd
    entry, as Kubernetes runs it (no USER set)."""
    env = os.environ if env is None else env
    for var in ("USER", "LOGNAME"):
        if env.get(var):
            return env[var], f"${var}"
    try:
        return getpass.getuser(), "the user database"
    except (KeyError, OSError, ImportError):  # no passwd entry for our uid
        return None


def holder_or_exit(given: str | None, out: Printer) -> str:
    """--holder as given, else the default holder; exit 2 naming the fix when there is
    none (or it is not valid UTF-8)."""
    if given is not None:
        return given
    found = default_holder()
    if found is None:
        out.fail(
            f"cannot tell who you are: no $USER or $LOGNAME, and user id {os.getuid()} has "
            "no passwd entry; set --holder (or $USER)",
            EXIT_USAGE,
        )
    name, source = found
    problem = not_utf8(name)
    if problem is not None:
        out.fail(f"{source}, the default --holder: {problem}; or set --holder", EXIT_USAGE)
    try:  # blamed on where the name came from, not on an --holder never given
        check_holder(name, f"{source}, the default --holder,")
    except ClaimRefused as e:
        out.fail(f"{e}; set --holder", EXIT_USAGE)
    return name


# -- a store or broker that failed -----------------------------------------------------


def store_exit_code(e: StoreError) -> int:
    """3 when the store cannot be reached, 2 when it refuses us as configured (fix the
    config), 1 when it answered with an error (look at the data)."""
    if isinstance(e, StoreUnavailable):
        return EXIT_UNREACHABLE
    if isinstance(e, StoreRefused):
        return EXIT_USAGE
    return EXIT_REFUSED


def store_failed(e: StoreError, out: Printer | None = None) -> NoReturn:
    """Print what the claim store's failure means and exit with its code."""
    (out or Printer()).fail(str(e), store_exit_code(e))


# What a broker read raises (the status, the work left): redis-py's errors, or the
# reader's own (exporter/broker/protocol.py: RabbitMQ's management API).
BROKER_ERRORS: tuple[type[Exception], ...] = (redis.RedisError, BrokerError)


def broker_problem(url: str, exc: Exception) -> tuple[str, int]:
    """What an error of a broker read (the status, the work left) means and its exit
    code: a Redis error said as the Redis claim store says it (batchctl/claims/
    redis_errors.py); a reader's own error as it says it (3 unreachable, 2 refused)."""
    if isinstance(exc, BrokerError):
        code = {BrokerUnavailable: EXIT_UNREACHABLE, BrokerRefused: EXIT_USAGE}.get(
            type(exc), EXIT_REFUSED
        )
        return scrub(str(exc)), code
    assert isinstance(exc, redis.RedisError)
    e = store_error(url, exc)
    return str(e), store_exit_code(e)


def broker_failed(cfg: Config, exc: Exception, out: Printer | None = None) -> NoReturn:
    """Print what a broker error means (see `broker_problem`) and exit with its code."""
    message, code = broker_problem(cfg.broker.url, exc)
    (out or Printer()).fail(message, code)


# -- claims as printed -----------------------------------------------------------------


def conflict(e: ClaimConflict, out: Printer, hint: str) -> NoReturn:
    """Someone else holds the batch: who, for what, until when, and `hint`; exit 1."""
    c = e.existing
    who = c.holder + (f" ({c.contact})" if c.contact else "")
    out.fail(
        f"{c.queue} is claimed by {who} for {c.purpose or '(no purpose given)'!r}, "
        f"{describe_expiry(c, e.now)}; {hint}",
        EXIT_REFUSED,
        holder=c.holder,
        expires=c.expires,
    )


def when(ts: float) -> str:
    """Unix seconds as local time with its zone: '2026-12-01 14:05 CET'."""
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M %Z")


def duration(text: str | None, default: float, option: str) -> float:
    """A DURATION option (30m, 8h, 2d) in seconds, `default` when not given; a usage
    error naming `option` when it does not parse."""
    if text is None:
        return default
    try:
        return parse_duration(text)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=option) from None


def finish_by_time(text: str, now: float, option: str = "--finish-by") -> float:
    """A deadline as people write it, in unix seconds: a duration from now (`6h`,
    `1d12h`), a time of day today (`17:00`, local time), or a date and time (`2026-12-08
    17:00`, ISO 8601; local time unless it names a zone). A usage error naming `option`
    when it is none of these."""
    t = text.strip()
    try:
        return now + parse_duration(t)
    except ZeroDuration as e:  # "0s": a duration, of zero; say that, not "not a time"
        raise click.BadParameter(str(e), param_hint=option) from None
    except ValueError:
        pass
    try:
        if m := re.fullmatch(r"(\d{1,2}):(\d{2})", t):
            today = datetime.fromtimestamp(now).astimezone()
            at = today.replace(hour=int(m[1]), minute=int(m[2]), second=0, microsecond=0)
            return at.timestamp()
        at = datetime.fromisoformat(t.replace(" ", "T", 1))
        return (at if at.tzinfo is not None else at.astimezone()).timestamp()
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a time: give a duration from now (6h, 1d12h), a time of day "
            "(17:00, local time) or a date and time (2026-12-08 17:00, or ISO 8601 with a zone)",
            param_hint=option,
        ) from None


def plan_for(
    cfg: Config,
    queue: str,
    finish_by: float,
    now: float,
    task_seconds: float | None = None,
    *,
    session: Session | None = None,
) -> BatchPlan | None:
    """The plan for `queue` to finish its work (waiting + in flight) by `finish_by`, at
    the pace the exporter measures, else `task_seconds`, else the batch's configured
    task_seconds; None without a pace. Without a `session` the work is read from the
    broker now and the pace from the exporter's snapshot at autoscaler.snapshot_url
    (when it answers within a second); with one (the claims in Kubernetes: a kubeconfig,
    no broker URL) both come from the exporter's snapshot through the API server.
    Raises one of BROKER_ERRORS when the broker cannot be read, StoreError when the
    exporter cannot be reached through the API server or cannot read the broker."""
    from autoscaler.planning import batch_plan

    if session is not None:
        snap: Snapshot | None = session.snapshot()
        work = session.work(queue, snap)
    else:
        work = batch_work(cfg, queue)
        snap = _exporter_snapshot(cfg)
    return batch_plan(cfg, queue, work.total, finish_by, now, snap=snap, task_seconds=task_seconds)


def _exporter_snapshot(cfg: Config) -> Snapshot | None:
    """The exporter's snapshot at autoscaler.snapshot_url, None when it does not answer
    within a second (or none is configured): then the plan takes the configured pace."""
    from autoscaler.source import ExporterSource, SnapshotUnavailable

    if cfg.snapshot_url is None:
        return None
    try:
        return ExporterSource(cfg.snapshot_url, timeout=1.0).collect()
    except SnapshotUnavailable:
        return None


def plan_lines(p: BatchPlan, cfg: Config) -> list[str]:
    """A plan as `plan` and a refused `claim --finish-by` print it (`cfg`: the batch's
    ramp, which is what a plan no number of replicas meets runs into)."""
    pl, left = p.plan, format_duration(p.finish_by - p.now)
    lines = [
        f"{p.queue}: {pl.work:,} left (waiting + in flight), finish by {when(p.finish_by)} "
        f"(in {left})",
        f"pace: {pl.rate:.3g} tasks/s per replica, {p.pace_from}",
    ]
    if pl.replicas == 0:
        lines.append("nothing left to do")
        return lines
    if pl.feasible:
        lines.append(
            f"needs {pl.replicas} replica{'s' if pl.replicas != 1 else ''} (cap {pl.cap}): "
            f"done about {when(p.now + pl.finish_seconds)}"
        )
    else:
        if pl.replicas is not None:
            lines.append(
                f"cannot be done in time: needs {pl.replicas} replicas, the cap is {pl.cap}"
            )
        else:
            lines.append(
                "cannot be done in time by any number of replicas: the ramp up from the "
                f"replicas there are, {_ramp(cfg, p.queue)}, alone takes too long"
            )
    if not math.isinf(pl.earliest_seconds):
        late = p.now + pl.earliest_seconds - p.finish_by
        tail = f", {format_duration(late)} late" if late > 0 else ""
        lines.append(f"at the cap ({pl.cap}): done about {when(p.now + pl.earliest_seconds)}{tail}")
    lines.append(f"cost: {p.cost}")
    return lines


def _ramp(cfg: Config, queue: str) -> str:
    b = cfg.batch(queue)
    return (
        ""
        if b is None
        else f"step_up {b.step_up} per step_interval_seconds {b.step_interval_seconds:g}"
    )


def check_deadline(
    cfg: Config, session: Session | None, queue: str, deadline: float, now: float, out: Printer
) -> None:
    """Refuse (exit 1) a deadline the caps cannot meet, saying what it would take; warn
    when no pace is known to check it with. With a `session` (the claims in Kubernetes)
    the work and the pace are the exporter's, read through the API server."""
    try:
        check_batch(cfg, queue)
        p = plan_for(cfg, queue, deadline, now, session=session)
    except ClaimRefused as e:
        out.fail(str(e), EXIT_USAGE)
    except StoreError as e:
        store_failed(e, out)
    except BROKER_ERRORS as e:
        broker_failed(cfg, e, out)
    if p is None:
        out.warn(
            f"cannot check the deadline: no pace known for {queue} (the exporter measured "
            "none and the batch sets no task_seconds); it is paced once one is measured"
        )
        return
    if not p.plan.feasible:
        out.fail(
            f"refused: the caps cannot finish {queue} by {when(deadline)}\n"
            + "\n".join(plan_lines(p, cfg))
            + "\ngive a later --finish-by, or raise the batch's "
            + (
                "max_replicas"
                if p.plan.replicas is not None
                else "step_up (a faster ramp) and, as that needs, max_replicas"
            ),
            EXIT_REFUSED,
            plan=p.to_json(),
        )


def outcome_json(queue: str, out: Outcome, now: float) -> dict[str, object]:
    """A change of a claim as -o json prints it: the event, the claim after and before."""
    e = out.event
    return {
        "queue": queue,
        "event": e.kind if e is not None else None,
        "detail": e.detail if e is not None else "",
        "claim": out.claim.to_json(now) if out.claim is not None else None,
        "previous": out.previous.to_json(now) if out.previous is not None else None,
    }


# -- the broker ------------------------------------------------------------------------


def batch_work(cfg: Config, queue: str) -> Work:
    """Messages waiting (every priority list) and in flight (unacked) in `queue`."""
    from exporter.broker import open_reader

    reader = open_reader(cfg.broker)  # read-only, like the exporter's
    try:
        left = reader.work_left([queue])[queue]
    finally:
        reader.close()
    return Work(left.waiting, left.in_flight)


# -- options ---------------------------------------------------------------------------

Callback = Callable[[click.Context, click.Parameter, str | None], str | None]


def host_port(example: str) -> Callback:
    """A click callback for a --listen option: HOST:PORT by the config's rule
    (exporter.listen), else a usage error showing `example`."""

    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ExporterConfig(listen=value)
        except ValueError:
            raise click.BadParameter(f"expected HOST:PORT, e.g. {example}") from None
        return value

    return check
