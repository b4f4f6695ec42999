"""`batchctl claim | release`: the spreadsheet of the operations page, in Redis.

Thin click layer: parse here; the rules and the store live in batchctl/claims/.
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Mapping
from datetime import datetime
from typing import NoReturn

import click
import redis

from batchctl.claims import (
    ClaimConflict,
    ClaimRefused,
    Outcome,
    Refused,
    Work,
    WorkLeft,
    describe_expiry,
)
from batchctl.claims.rules import check_holder
from batchctl.claims.service import check_batch, claim, claim_any, release, store_for
from batchctl.cli.options import (
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    TEXT,
    Printer,
    config_option,
    load_or_exit,
    not_utf8,
    output_option,
)
from batchctl.config import Config
from batchctl.log import get_logger
from batchctl.redact import redact_url, scrub
from batchctl.units import format_duration, parse_duration

log = get_logger("batchctl.claims")


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


def broker_problem(url: str, exc: redis.RedisError) -> tuple[str, int]:
    """What a Redis error means and its exit code. An error the broker answered is not
    "cannot reach": a password it refuses or lacks, a database the server does not have
    or a command the user may not run is a config problem (2), a key of the wrong type
    is a data problem (1); only connection errors and timeouts are unreachable (3)."""
    # redis-py's messages name host and port at most; scrub URLs and secrets anyway.
    where, why, text = redact_url(url), scrub(str(exc)), str(exc)
    if isinstance(exc, redis.AuthenticationError):
        # Reached, and refused: trying again will not help, the URL must change.
        if "WRONGPASS" in text or "invalid" in text:
            return (
                f"the broker at {where} refused the user or password ({why}): fix them "
                "in broker.url",
                EXIT_USAGE,
            )
        return (
            f"the broker at {where} requires a password ({why}): put it in broker.url, "
            "redis://:PASSWORD@host:6379/0 (or redis://USER:PASSWORD@... for an ACL user)",
            EXIT_USAGE,
        )
    if not isinstance(exc, redis.ResponseError):
        return f"cannot reach the broker at {where}: {why}", EXIT_UNREACHABLE
    if "DB index is out of range" in text or "invalid DB index" in text:
        return (
            f"the broker at {where} has no such database ({why}): fix the database "
            "number in broker.url",
            EXIT_USAGE,
        )
    if isinstance(exc, redis.exceptions.NoPermissionError):
        refused = f"the broker at {where} refused the command ({why}): check the user's ACL"
        return refused, EXIT_USAGE
    if text.startswith("WRONGTYPE"):
        return (
            f"unexpected data in the broker at {where} ({why}): a claim "
            "(batchctl:claim:<queue>) or the claim history (batchctl:history) key holds "
            "another type of value; look at it with redis-cli TYPE and remove it",
            EXIT_REFUSED,
        )
    return f"the broker at {where} answered with an error: {why}", EXIT_REFUSED


def broker_failed(cfg: Config, exc: redis.RedisError, out: Printer | None = None) -> NoReturn:
    """Print what a Redis error means (see `broker_problem`) and exit with its code."""
    message, code = broker_problem(cfg.broker.url, exc)
    (out or Printer()).fail(message, code)


def conflict(e: ClaimConflict, out: Printer, hint: str) -> NoReturn:
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
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M %Z")


def duration(text: str | None, default: float, option: str) -> float:
    if text is None:
        return default
    try:
        return parse_duration(text)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=option) from None


def outcome_json(queue: str, out: Outcome, now: float) -> dict[str, object]:
    e = out.event
    return {
        "queue": queue,
        "event": e.kind if e is not None else None,
        "detail": e.detail if e is not None else "",
        "claim": out.claim.to_json(now) if out.claim is not None else None,
        "previous": out.previous.to_json(now) if out.previous is not None else None,
    }


def claimed_text(out: Outcome, ttl_seconds: float) -> str:
    c = out.claim
    assert c is not None and out.event is not None
    kind = out.event.kind
    verb = {"taken_over": "took over"}.get(kind, kind)
    lines = [
        f"{verb} {c.queue} for {c.holder} until {when(c.expires)} "
        f"({format_duration(ttl_seconds)}): {c.purpose}"
    ]
    if out.event.detail and kind in ("taken_over", "claimed"):
        lines.append(f"  {out.event.detail}")
    lines.append(f"when you are done: batchctl release {c.queue} --drain")
    return "\n".join(lines)


@click.command("claim")
@click.argument("queue", required=False)
@click.option("--any", "any_", is_flag=True, help="Take the first free configured batch.")
@click.option(
    "--holder",
    default=None,
    show_default="$USER",
    type=TEXT,
    help="Who holds the batch (your user name; else $LOGNAME or your user id's name).",
)
@click.option(
    "--purpose",
    default=None,
    type=TEXT,
    help="What the batch is for; required for a new claim. On a renewal it is kept "
    "unless you give a new one (a blank one never wipes it).",
)
@click.option("--contact", default=None, type=TEXT, help="Where to reach you, e.g. a chat channel.")
@click.option(
    "--ttl",
    default=None,
    metavar="DURATION",
    help="How long until the claim counts as forgotten: 30m, 8h, 2d, 1h30m "
    "[default: claims.default_ttl, 8h; at most claims.max_ttl, 7d].",
)
@config_option
@output_option
def claim_command(
    queue: str | None,
    any_: bool,
    holder: str | None,
    purpose: str | None,
    contact: str | None,
    ttl: str | None,
    config_path: str | None,
    output: str,
) -> None:
    """Claim the batch QUEUE (or, with --any, the first free one), or renew your claim.

    \b
    Only claimed batches are scaled up. Claiming your own batch again renews it: the
    output says whether the expiry moved later ("extended") or earlier ("shortened").
    Someone else's claim blocks you until it expires; then claiming it takes it over,
    and the output and `batchctl history` name the previous holder.
    With --any, the name of the batch you got is the only line on stdout (the rest
    goes to stderr), so `B=$(batchctl claim --any --purpose ...)` works; two people
    doing it at the same moment never get the same batch.
    """
    out = Printer.of(output)
    if (queue is None) == (not any_):
        out.fail("give either a QUEUE or --any, not both (nor neither)", EXIT_USAGE)
    holder = holder_or_exit(holder, out)
    cfg = load_or_exit(config_path, out)
    ttl_seconds = duration(ttl, cfg.claims.default_ttl, "--ttl")
    now = time.time()
    try:
        if queue is not None:
            done: Outcome | None = claim(cfg, queue, holder, purpose, contact, ttl_seconds, now)
        else:
            done = claim_any(cfg, holder, purpose, contact, ttl_seconds, now)
    except ClaimConflict as e:
        conflict(
            e,
            out,
            f"ask them, wait, or release it with `batchctl release {queue} --force --reason ...`"
            " and claim it again",
        )
    except ClaimRefused as e:
        out.fail(str(e), EXIT_USAGE)
    except redis.RedisError as e:
        broker_failed(cfg, e, out)
    if done is None:
        out.fail(
            f"no free batch: all of {', '.join(b.queue for b in cfg.batches)} are held; "
            "see `batchctl status`",
            EXIT_REFUSED,
        )
    assert done.claim is not None
    name = done.claim.queue
    if queue is None and not out.json:
        click.echo(name)
        click.echo(claimed_text(done, ttl_seconds), err=True)
        return
    out.data(outcome_json(name, done, now), lambda: claimed_text(done, ttl_seconds))


def batch_work(cfg: Config, queue: str) -> Work:
    """Messages waiting (every priority list) and in flight (unacked) in `queue`."""
    from exporter.broker import open_reader

    reader = open_reader(cfg.broker)  # read-only, like the exporter's
    try:
        left = reader.work_left([queue])[queue]
    finally:
        reader.close()
    return Work(left.waiting, left.in_flight)


def released_text(queue: str, done: Outcome, holder: str, cfg: Config, work: Work) -> str:
    prev, e = done.previous, done.event
    if prev is None:
        return f"{queue} was not claimed; nothing to release"
    if e is None:  # already draining
        since = prev.draining_since or 0.0
        return f"{queue} is already draining (since {when(since)}); `batchctl history {queue}`"
    if e.kind == "draining":
        batch = cfg.batch(queue)
        low = batch.min_replicas if batch is not None else 0
        return (
            f"{queue} is draining: {work} left. No further scale-up; "
            f"the autoscaler finishes the work, scales to {low} and ends the claim.\n"
            f"follow it: batchctl status --watch; batchctl history {queue}"
        )
    whose = "" if prev.holder == holder else f" (was held by {prev.holder})"
    behind = f", leaving {work} behind" if work.total > 0 else ""
    return f"released {queue}{whose}{behind}"


@click.command("release")
@click.argument("queue")
@click.option("--holder", default=None, show_default="$USER", type=TEXT, help="Your name.")
@click.option(
    "--drain",
    is_flag=True,
    help="Work left: stop growth, let the autoscaler finish it, scale to min_replicas "
    "and end the claim by itself.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Release now: someone else's claim (needs --reason), or with work left (it "
    "stays queued, and nobody scales it).",
)
@click.option(
    "--reason",
    default="",
    type=TEXT,
    help="Why; required with --force on someone else's claim, recorded in the history.",
)
@config_option
@output_option
def release_command(
    queue: str,
    holder: str | None,
    drain: bool,
    force: bool,
    reason: str,
    config_path: str | None,
    output: str,
) -> None:
    """Give the batch QUEUE back.

    \b
    With nothing waiting or in flight the claim ends now, and the autoscaler takes
    the batch to min_replicas once it has been idle for idle_after_seconds.
    With work left it refuses (exit 1) and says how much, unless:
      --drain   the claim becomes "draining": no further scale-up; the autoscaler
                finishes the work, scales to min_replicas at once and ends the claim
                (recorded as "drained" in `batchctl history`)
      --force   released now; the work stays queued and, unclaimed, is not scaled
    """
    out = Printer.of(output)
    holder = holder_or_exit(holder, out)
    cfg = load_or_exit(config_path, out)
    now = time.time()
    try:
        check_batch(cfg, queue)
        check_holder(holder)
        store = store_for(cfg)
    except ClaimRefused as e:
        out.fail(str(e), EXIT_USAGE)
    try:
        work = batch_work(cfg, queue)
        done = release(
            cfg, queue, holder, force, now, work=work, drain=drain, store=store, reason=reason
        )
    except ClaimConflict as e:
        c = e.existing
        out.fail(
            f"{queue} is claimed by {c.holder}, not {holder} ({describe_expiry(c, now)}); "
            "add --force --reason '...' to release it anyway",
            EXIT_REFUSED,
            holder=c.holder,
        )
    except WorkLeft as e:
        out.fail(str(e), EXIT_REFUSED, waiting=e.waiting, in_flight=e.in_flight)
    except ClaimRefused as e:  # --drain --force on one's own claim; --force, no --reason
        out.fail(str(e), EXIT_USAGE)
    except Refused as e:
        out.fail(str(e), EXIT_REFUSED)
    except redis.RedisError as e:
        broker_failed(cfg, e, out)
    finally:
        store.client.close()
    if done.kind == "forced" and work.total > 0:
        log.warning(
            "release leaves work behind",
            queue=queue,
            waiting=work.waiting,
            in_flight=work.in_flight,
            holder=done.previous.holder if done.previous else None,
            released_by=holder,
        )
    doc = outcome_json(queue, done, now) | {
        "waiting": work.waiting,
        "in_flight": work.in_flight,
    }
    out.data(doc, lambda: released_text(queue, done, holder, cfg, work))
