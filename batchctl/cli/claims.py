"""`batchctl claim | release`: the spreadsheet of the operations page, in the claim store.

Thin click layer: parse here; the rules and the store live in batchctl/claims/, what
the commands share in batchctl/cli/common.py.
"""

from __future__ import annotations

import time

import click

from batchctl.claims import (
    ClaimConflict,
    ClaimRefused,
    Outcome,
    Refused,
    StoreError,
    Work,
    WorkLeft,
    describe_expiry,
)
from batchctl.claims.rules import check_holder
from batchctl.claims.service import check_batch, claim, claim_any, release, store_for
from batchctl.cli.cluster import (
    Cluster,
    Session,
    cluster_options,
    identity_note,
    load_for_claims,
    session_as,
)
from batchctl.cli.common import (
    BROKER_ERRORS,
    batch_work,
    broker_failed,
    broker_problem,
    check_deadline,
    conflict,
    duration,
    finish_by_time,
    holder_or_exit,
    outcome_json,
    store_failed,
    when,
)
from batchctl.cli.options import (
    EXIT_REFUSED,
    EXIT_USAGE,
    TEXT,
    Printer,
    config_option,
    output_option,
)
from batchctl.config import Config
from batchctl.log import get_logger
from batchctl.units import format_duration

log = get_logger("batchctl.claims")


def claimed_text(out: Outcome, ttl_seconds: float, work: Work | None = None) -> str:
    c = out.claim
    assert c is not None and out.event is not None
    kind = out.event.kind
    verb = {"taken_over": "took over"}.get(kind, kind)
    lines = [
        f"{verb} {c.queue} for {c.holder_shown} until {when(c.expires)} "
        f"({format_duration(ttl_seconds)}): {c.purpose}"
    ]
    if out.event.detail and kind in ("taken_over", "claimed"):
        lines.append(f"  {out.event.detail}")
    if work is not None and work.total > 0:
        lines.append(f"  {c.queue} already has {work}: the autoscaler starts on it now")
    if c.finish_by is not None:
        left = format_duration(c.finish_by - out.event.at)
        lines.append(
            f"deadline {when(c.finish_by)} (in {left}): the autoscaler paces the batch to "
            "finish by then with the fewest replicas"
        )
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
    help="Who holds the batch (your user name; else $LOGNAME or your user id's name). "
    "With the claims in Kubernetes the cluster says who you are: it may only repeat that.",
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
@click.option(
    "--finish-by",
    "finish_by",
    default=None,
    metavar="TIME",
    help="A deadline: the autoscaler paces the batch to finish by then with the fewest "
    "replicas (the gentlest load). A duration from now (6h), a time of day (17:00, local "
    "time) or a date and time (2026-12-08 17:00); `none` drops the claim's deadline. "
    "Refused (exit 1) when the caps cannot make it: `batchctl plan` says what it takes.",
)
@config_option
@cluster_options
@output_option
def claim_command(
    queue: str | None,
    any_: bool,
    holder: str | None,
    purpose: str | None,
    contact: str | None,
    ttl: str | None,
    finish_by: str | None,
    config_path: str | None,
    output: str,
    cluster: Cluster,
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
    With the claims in Kubernetes (claims.store: kubernetes, or --kubeconfig,
    --context, -n) you claim in the name the cluster knows you by; --holder may
    only repeat it.
    """
    out = Printer.of(output)
    if (queue is None) == (not any_):
        out.fail("give either a QUEUE or --any, not both (nor neither)", EXIT_USAGE)
    if any_ and finish_by is not None:
        out.fail("--finish-by needs a QUEUE: plan a batch by name, not --any", EXIT_USAGE)
    cfg = load_for_claims(config_path, cluster, out)
    session = session_as(cfg, holder, out) if cfg.claims.store == "kubernetes" else None
    try:
        _claim(cfg, session, queue, holder, purpose, contact, ttl, finish_by, out)
    finally:
        if session is not None:
            session.close()


def _claim(
    cfg: Config,
    session: Session | None,
    queue: str | None,
    holder: str | None,
    purpose: str | None,
    contact: str | None,
    ttl: str | None,
    finish_by: str | None,
    out: Printer,
) -> None:
    if session is not None and session.identity is not None:
        holder, store = session.identity.name, session.store()
    else:
        holder, store = holder_or_exit(holder, out), None
    ttl_seconds = duration(ttl, cfg.claims.default_ttl, "--ttl")
    now = time.time()
    clear = finish_by is not None and finish_by.strip().lower() == "none"
    deadline = None if finish_by is None or clear else finish_by_time(finish_by, now)
    if queue is not None and deadline is not None and deadline > now:
        check_deadline(cfg, session, queue, deadline, now, out)
    try:
        if queue is not None:
            done: Outcome | None = claim(
                cfg,
                queue,
                holder,
                purpose,
                contact,
                ttl_seconds,
                now,
                store=store,
                finish_by=deadline,
                clear_finish_by=clear,
            )
        else:
            done = claim_any(cfg, holder, purpose, contact, ttl_seconds, now, store=store)
    except ClaimConflict as e:
        conflict(
            e,
            out,
            f"ask them, wait, or release it with `batchctl release {queue} --force --reason ...`"
            " and claim it again",
        )
    except ClaimRefused as e:
        out.fail(str(e), EXIT_USAGE)
    except StoreError as e:
        store_failed(e, out)
    if done is None:
        out.fail(
            f"no free batch: all of {', '.join(b.queue for b in cfg.batches)} are held; "
            "see `batchctl status`",
            EXIT_REFUSED,
        )
    assert done.claim is not None
    name = done.claim.queue
    work = _waiting(cfg, session, name, out)
    doc = outcome_json(name, done, now) | identity_note(session)
    doc |= {"waiting": work.waiting, "in_flight": work.in_flight} if work else {}
    if queue is None and not out.json:
        click.echo(name)
        click.echo(claimed_text(done, ttl_seconds, work), err=True)
        return
    out.data(doc, lambda: claimed_text(done, ttl_seconds, work))


def _waiting(cfg: Config, session: Session | None, queue: str, out: Printer) -> Work | None:
    """The work already in the batch just claimed (the autoscaler starts on it now);
    None, with a warning, when it cannot be read: the claim stands either way."""
    unreadable: tuple[type[Exception], ...] = (StoreError, *BROKER_ERRORS)
    try:
        return session.work(queue) if session is not None else batch_work(cfg, queue)
    except unreadable as e:
        why = str(e) if isinstance(e, StoreError) else broker_problem(cfg.broker.url, e)[0]
        out.warn(f"claimed, but what is waiting in {queue} is unknown: {why}")
        return None


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
    whose = "" if prev.holder == holder else f" (was held by {prev.holder_shown})"
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
@cluster_options
@output_option
def release_command(
    queue: str,
    holder: str | None,
    drain: bool,
    force: bool,
    reason: str,
    config_path: str | None,
    output: str,
    cluster: Cluster,
) -> None:
    """Give the batch QUEUE back.

    \b
    With nothing waiting or in flight the claim ends now, and the autoscaler takes
    the batch to min_replicas once it has been idle for idle_after_seconds (at
    once when the gaps between its work are longer than a pod start: adaptive_idle).
    With work left it refuses (exit 1) and says how much, unless:
      --drain   the claim becomes "draining": no further scale-up; the autoscaler
                finishes the work, scales to min_replicas at once and ends the claim
                (recorded as "drained" in `batchctl history`)
      --force   released now; the work stays queued and, unclaimed, is not scaled
    With the claims in Kubernetes the work left is the exporter's reading, through
    the API server's service proxy; --force on someone else's claim needs the Role
    batchctl-admin.
    """
    out = Printer.of(output)
    cfg = load_for_claims(config_path, cluster, out)
    session = session_as(cfg, holder, out) if cfg.claims.store == "kubernetes" else None
    try:
        _release(cfg, session, queue, holder, drain, force, reason, out)
    finally:
        if session is not None:
            session.close()


def _release(
    cfg: Config,
    session: Session | None,
    queue: str,
    given: str | None,
    drain: bool,
    force: bool,
    reason: str,
    out: Printer,
) -> None:
    holder = session.identity.name if session and session.identity else holder_or_exit(given, out)
    now = time.time()
    try:
        check_batch(cfg, queue)
        check_holder(holder)
        store = session.store() if session is not None else store_for(cfg)
    except ClaimRefused as e:
        out.fail(str(e), EXIT_USAGE)
    try:
        work = session.work(queue) if session is not None else batch_work(cfg, queue)
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
    except StoreError as e:
        store_failed(e, out)
    except BROKER_ERRORS as e:  # reading the work left
        broker_failed(cfg, e, out)
    finally:
        store.close()
    if done.kind == "forced" and work.total > 0:
        log.warning(
            "release leaves work behind",
            queue=queue,
            waiting=work.waiting,
            in_flight=work.in_flight,
            holder=done.previous.holder if done.previous else None,
            released_by=holder,
        )
    doc = outcome_json(queue, done, now) | identity_note(session)
    doc |= {"waiting": work.waiting, "in_flight": work.in_flight}
    out.data(doc, lambda: released_text(queue, done, holder, cfg, work))
