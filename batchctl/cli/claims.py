"""`batchctl claim | release | status`: the spreadsheet of the operations page, in Redis.

Thin click layer: parse and validate here, the rules live in autoscaler/claims.py and
the numbers come from the exporter's collector (one snapshot, the same one /metrics
serves). Registered by cli/main.py, so import `batchctl.cli` rather than this module.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

import click
import redis

from batchctl.claims import (
    Claim,
    ClaimConflict,
    describe_expiry,
)
from batchctl.claims.store import ClaimStore
from batchctl.cli import config_option, load_or_exit
from batchctl.config import Config
from batchctl.redact import redact_url
from batchctl.units import format_duration, parse_duration
from exporter.snapshot import QueueStats, Snapshot


def _default_holder() -> str:
    return os.environ.get("USER") or getpass.getuser()


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _store(cfg: Config) -> ClaimStore:
    from exporter.broker import connect  # the exporter's client: timeouts, sentinel, TLS

    return ClaimStore(connect(cfg.broker), prefix=cfg.broker.global_keyprefix)


def _unreachable(cfg: Config, exc: redis.RedisError) -> NoReturn:
    # redis-py's messages name host and port at most; scrub the URL anyway.
    text = str(exc).replace(cfg.broker.url, redact_url(cfg.broker.url))
    _fail(f"cannot reach the broker at {redact_url(cfg.broker.url)}: {text}")


def _check_queue(cfg: Config, queue: str) -> None:
    if cfg.batch(queue) is None:
        names = ", ".join(b.queue for b in cfg.batches) or "(none)"
        _fail(f"queue {queue!r} is not a configured batch; configured batches: {names}", 2)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _ttl(cfg: Config, text: str | None) -> float:
    if text is None:
        return cfg.autoscaler.claim_default_ttl_seconds
    try:
        return parse_duration(text)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--ttl") from None


@click.command("claim")
@click.argument("queue")
@click.option(
    "--holder",
    default=_default_holder,
    show_default="$USER",
    help="Who holds the batch (your user name).",
)
@click.option("--purpose", default=None, help="What the batch is for; required for a new claim.")
@click.option("--contact", default=None, help="Where to reach you, e.g. a chat channel.")
@click.option(
    "--ttl",
    default=None,
    metavar="DURATION",
    help="How long until the claim counts as forgotten: 30m, 8h, 2d, 1h30m "
    "[default: autoscaler.claim_default_ttl_seconds, 8h].",
)
@config_option
def claim_command(
    queue: str,
    holder: str,
    purpose: str | None,
    contact: str | None,
    ttl: str | None,
    config_path: str | None,
) -> None:
    """Claim the batch QUEUE, or extend your claim on it.

    Only claimed batches are scaled up. Claiming again extends the claim (and
    updates --purpose/--contact when given). Someone else's claim blocks you until
    it expires or they release it.
    """
    cfg = load_or_exit(config_path)
    _check_queue(cfg, queue)
    ttl_seconds = _ttl(cfg, ttl)
    now = time.time()
    store = _store(cfg)
    try:
        current = store.get(queue)
        mine = current is not None and current.holder == holder and not current.expired(now)
        if purpose is None and not mine:
            raise click.UsageError(
                "--purpose is required for a new claim: say what the batch is for, "
                'e.g. --purpose "reindex dockets"'
            )
        claim = store.claim(queue, holder, purpose, ttl_seconds, now, contact=contact)
    except ClaimConflict as e:
        _conflict(e, queue)
    except ValueError as e:
        _fail(str(e), 2)
    except redis.RedisError as e:
        _unreachable(cfg, e)
    verb = "extended" if claim.since < now else "claimed"
    click.echo(
        f"{verb} {queue} for {claim.holder} until {_when(claim.expires)} "
        f"({format_duration(ttl_seconds)}): {claim.purpose or '(no purpose given)'}"
    )
    click.echo(f"when you are done: batchctl release {queue}")


def _conflict(e: ClaimConflict, queue: str) -> NoReturn:
    c = e.existing
    who = c.holder + (f" ({c.contact})" if c.contact else "")
    _fail(
        f"{queue} is claimed by {who} for {c.purpose or '(no purpose given)'!r}, "
        f"{describe_expiry(c, e.now)}; ask them, wait, or take it over with "
        f"`batchctl release {queue} --force`"
    )


@click.command("release")
@click.argument("queue")
@click.option("--holder", default=_default_holder, show_default="$USER", help="Your name.")
@click.option("--force", is_flag=True, help="Release someone else's claim.")
@config_option
def release_command(queue: str, holder: str, force: bool, config_path: str | None) -> None:
    """Give the batch QUEUE back: the autoscaler drains it and scales it to zero."""
    cfg = load_or_exit(config_path)
    _check_queue(cfg, queue)
    now = time.time()
    try:
        released = _store(cfg).release(queue, holder, force=force, now=now)
    except ClaimConflict as e:
        c = e.existing
        _fail(
            f"{queue} is claimed by {c.holder}, not {holder} ({describe_expiry(c, now)}); "
            "add --force to release it anyway"
        )
    except redis.RedisError as e:
        _unreachable(cfg, e)
    if released is None:
        click.echo(f"{queue} was not claimed; nothing to release")
        return
    whose = "" if released.holder == holder else f" (was held by {released.holder})"
    click.echo(f"released {queue}{whose}")


# -- status -----------------------------------------------------------------------


@dataclass(frozen=True)
class StatusRow:
    queue: str
    deployment: str
    claim: Claim | None
    stats: QueueStats | None  # None: no snapshot (broker read failed)


def status_rows(
    cfg: Config, claims: Mapping[str, Claim | None], snap: Snapshot | None
) -> list[StatusRow]:
    return [
        StatusRow(
            b.queue,
            b.deployment,
            claims.get(b.queue),
            snap.queue(b.queue) if snap is not None and snap.broker_up else None,
        )
        for b in cfg.batches
    ]


def status_json(
    rows: Sequence[StatusRow], snap: Snapshot | None, now: float, ages_known: bool
) -> dict[str, object]:
    def row(r: StatusRow) -> dict[str, object]:
        s = r.stats
        return {
            "queue": r.queue,
            "deployment": r.deployment,
            "claim": r.claim.to_json(now) if r.claim is not None else None,
            "waiting": s.waiting if s else None,
            "in_flight": s.unacked if s else None,
            "oldest_age_seconds": s.oldest_age_seconds if s and ages_known else None,
            "replicas": s.replicas if s else None,
            "ready_replicas": s.ready_replicas if s else None,
        }

    return {
        "taken_at": now,
        "broker_up": snap.broker_up if snap is not None else None,
        "broker_error": snap.broker_error if snap is not None else None,
        "batches": [row(r) for r in rows],
    }


_HEADER = ("QUEUE", "HOLDER", "PURPOSE", "CLAIM", "WAITING", "IN FLIGHT", "OLDEST", "REPLICAS")


def render_table(rows: Sequence[StatusRow], now: float, ages_known: bool) -> str:
    """One line per batch; claims always, queue numbers when the snapshot has them."""
    table: list[tuple[str, ...]] = [_HEADER]
    for r in rows:
        c, s = r.claim, r.stats
        expiry = ""
        if c is not None:
            expiry = ("EXPIRED, " if c.expired(now) else "") + describe_expiry(c, now)
        age = "-"
        if s is not None and ages_known:
            age = format_duration(s.oldest_age_seconds) if s.waiting else "-"
        table.append(
            (
                r.queue,
                c.holder if c else "-",
                _clip(c.purpose, 32) if c else "",
                expiry,
                _num(s.waiting if s else None),
                _num(s.unacked if s else None),
                age,
                _replicas(s),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(_HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in table]
    return "\n".join(line.rstrip() for line in lines)


def _replicas(s: QueueStats | None) -> str:
    if s is None or s.replicas is None:
        return "-"
    return f"{s.ready_replicas or 0}/{s.replicas}"


def _num(v: int | None) -> str:
    return "-" if v is None else str(v)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _status_cfg(cfg: Config) -> Config:
    # status shows the configured batches only: skip the SCAN for other queues.
    broker = cfg.broker.model_copy(update={"discover_queues": False})
    return cfg.model_copy(update={"broker": broker})


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per refresh).")
@click.option("--watch", "-w", is_flag=True, help="Refresh until Ctrl-C.")
@click.option(
    "--interval",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds between refreshes with --watch.",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help="With --watch, stop after N refreshes.",
)
@config_option
def status_command(
    as_json: bool, watch: bool, interval: float, count: int | None, config_path: str | None
) -> None:
    """Every configured batch: its claim, and its queue (waiting, in flight, replicas).

    \b
    REPLICAS is ready/desired, from Kubernetes (with kubernetes.enabled and a
    kubernetes backend). The age of the oldest waiting message needs two readings
    (Celery messages carry no publish time), so OLDEST shows from the second
    refresh of --watch on.
    """
    from exporter.broker import BrokerReader, connect
    from exporter.collect import Collector

    cfg = load_or_exit(config_path)
    client = connect(cfg.broker)
    store = ClaimStore(client, prefix=cfg.broker.global_keyprefix)
    queues = [b.queue for b in cfg.batches]
    kube: Any = None
    refreshes = 0
    try:
        try:
            claims: Mapping[str, Claim | None] = store.all(queues)
        except redis.RedisError as e:
            if not watch:
                _unreachable(cfg, e)
            claims = {}
        # Only once the broker answered: a wrong URL fails fast, before any Kubernetes wait.
        kube, kube_problem = _kube_cache(cfg)
        collector = Collector(_status_cfg(cfg), BrokerReader(cfg.broker, client), kube)
        while True:
            now = time.time()
            problems = [kube_problem] if kube_problem else []
            if refreshes:
                try:
                    claims = store.all(queues)
                except redis.RedisError:
                    claims = {}
            snap = collector.collect()
            if not snap.broker_up:
                problems.append(f"cannot reach the broker at {redact_url(cfg.broker.url)}")
            if snap.kubernetes_up is False:
                problems.append(f"replicas unknown: Kubernetes: {snap.kubernetes_error}")
            ages_known = refreshes > 0
            rows = status_rows(cfg, claims, snap)
            if as_json:
                click.echo(json.dumps(status_json(rows, snap, now, ages_known)))
            elif watch:
                click.clear()
                click.echo(f"batchctl status  {_when(now)}  (every {interval:g}s, Ctrl-C quits)")
            for problem in problems:
                # Watching a table: inline; otherwise stderr, keeping stdout parseable.
                click.echo(f"warning: {problem}", err=as_json or not watch)
            if not as_json:
                click.echo(render_table(rows, now, ages_known))
            refreshes += 1
            if not watch or (count is not None and refreshes >= count):
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        return
    finally:
        if kube is not None:
            kube.stop()
        client.close()


def _kube_cache(cfg: Config) -> tuple[Any, str | None]:
    """A synced Deployment cache when replicas live in Kubernetes; else None and why not."""
    if not cfg.kubernetes.enabled or cfg.autoscaler.backend == "local":
        return None, None
    # Imported here: the Kubernetes client is slow to import and needed by nothing else.
    from batchctl.kube import KubeConfigError
    from exporter.informer import DeploymentCache

    try:
        cache = DeploymentCache(cfg.kubernetes, [b.deployment for b in cfg.batches])
    except KubeConfigError as e:
        return None, f"replicas unknown: {e} (set kubernetes.enabled: false to skip)"
    cache.start()
    cache.wait_synced(cfg.kubernetes.request_timeout_seconds)
    return cache, None
