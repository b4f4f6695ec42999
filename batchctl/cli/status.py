"""`batchctl status`: every configured batch, its claim and its queue, once or watching."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from batchctl import jsonout
from batchctl.claims import Claim, StoreError
from batchctl.cli.cluster import Cluster, Session, cluster_options, load_for_claims, open_session
from batchctl.cli.common import BROKER_ERRORS, broker_failed, store_exit_code, when
from batchctl.cli.options import (
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Printer,
    config_option,
    deprecated,
    output_option,
)
from batchctl.config import Config
from batchctl.redact import redact_url

if TYPE_CHECKING:
    from exporter.snapshot import BrokerDurability, Snapshot


def durability_problems(d: BrokerDurability | None) -> list[str]:
    """What the broker's persistence means for claims, one line each."""
    out = []
    if d is not None and d.lost_claims:
        lost = ", ".join(f"{q} ({h})" for q, h in sorted(d.lost_claims.items()))
        out.append(f"the broker restarted and lost its data: the claims of {lost} are gone")
    if d is not None and d.durable is False:
        out.append(
            f"the broker keeps no data across a restart ({d.detail}): claims and their "
            "history are not durable"
        )
    return out


@click.command("status")
@output_option
@click.option("--json", "as_json", is_flag=True, hidden=True, help="Deprecated: -o json.")
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
@cluster_options
def status_command(
    output: str,
    as_json: bool,
    watch: bool,
    interval: float,
    count: int | None,
    config_path: str | None,
    cluster: Cluster,
) -> None:
    """Every configured batch: its claim, and its queue (waiting, in flight, replicas).

    \b
    REPLICAS is ready/desired, from Kubernetes (with kubernetes.enabled and a
    kubernetes backend). SCHEDULED counts the in-flight ETA and countdown tasks a
    worker holds until their time. The age of the oldest waiting message comes from
    the ages the exporter keeps in the broker (Celery messages carry no publish
    time); without them OLDEST shows from the second refresh of --watch on.
    DONE/MIN and ETA need readings 10 s apart. ACTIVE and FAILED 10M come from
    Celery's task events (events.enabled, workers with -E; a single reading waits
    a moment for the workers' heartbeats); with events off they say "no events",
    and DONE/MIN is an estimate from the fall of waiting + in flight. With -o json,
    one JSON document per refresh; a broker that cannot be reached at the start is a
    JSON error (exit 3). A broker that does not answer the last reading (the only
    one, or the last of --watch) also exits 3; Kubernetes that does not answer is a
    warning (replicas unknown, exit 0). --json is the deprecated spelling of -o json.
    With the claims in Kubernetes (claims.store: kubernetes, or --kubeconfig,
    --context, -n) the claims are the Leases and the queues the exporter's own
    reading, through the API server's service proxy: no broker URL needed; an
    exporter that cannot be reached exits 3 after showing the claims.
    """
    if as_json:
        deprecated("--json", "-o json")
        output = "json"
    out = Printer.of(output)
    cfg = load_for_claims(config_path, cluster, out)
    if cfg.claims.store == "kubernetes":
        session = open_session(cfg, out)
        try:
            _show(out, watch, interval, count, _cluster_reading(cfg, session))
        finally:
            session.close()
        return
    _show(out, watch, interval, count, *_broker_reading(cfg, out, watch))


@dataclass
class Reading:
    """One refresh: the snapshot (None: none), the claims and whether they are known,
    what to warn about, and the exit code it calls for (0: fine)."""

    cfg: Config
    snap: Snapshot | None
    claims: Mapping[str, Claim | None]
    claims_known: bool
    problems: list[str]
    code: int = 0
    # The exporter's own snapshot is one of its many readings: its ages are known from
    # the first refresh (a reading in this process needs two).
    ages_known: bool = False


def _broker_reading(
    cfg: Config, out: Printer, watch: bool
) -> tuple[Callable[[], Reading], Callable[[], None]]:
    """Readings of the broker (and the Deployments) in this process."""
    from exporter.runtime import status_source

    try:
        source, kube_problem = status_source(cfg)
    except BROKER_ERRORS as e:
        broker_failed(cfg, e, out)

    def read() -> Reading:
        snap = source.collect()
        problems = [kube_problem] if kube_problem else []
        refused = None if snap.broker_up else _refused_read(snap.broker_error, cfg.broker.url)
        if not snap.broker_up:
            problems.append(refused or f"cannot reach the broker at {redact_url(cfg.broker.url)}")
        if snap.kubernetes_up is False:
            problems.append(f"replicas unknown: Kubernetes: {snap.kubernetes_error}")
        problems += durability_problems(snap.durability)
        claims = snap.claims if snap.broker_up else {}
        code = 0 if snap.broker_up else EXIT_USAGE if refused else EXIT_UNREACHABLE
        return Reading(cfg, snap, claims, snap.broker_up, problems, code)

    return read, source.stop


def _refused_read(error: str | None, url: str) -> str | None:
    """The broker answered the reader's scripts with NOPERM, or `unknown command` (a
    server that renames EVALSHA away): reached, and the user or server must change."""
    if not error or not error.startswith(("NoPermissionError: ", "ResponseError: unknown command")):
        return None
    why = error.partition(": ")[2]
    return (
        f"the broker at {redact_url(url)} refused batchctl's reads ({why}): the user needs "
        "+@read +evalsha +script|load on the queues' keys (docs/operations.md, 'Least privilege')"
    )


def _cluster_reading(cfg: Config, session: Session) -> Callable[[], Reading]:
    """Readings through the API server: the claim Leases, and the exporter's snapshot
    through the service proxy."""
    store = session.store()
    queues = [b.queue for b in cfg.batches]

    def read() -> Reading:
        problems: list[str] = []
        codes: list[int] = []
        snap = None
        try:
            snap = session.snapshot()
        except StoreError as e:
            problems.append(f"queues unknown: {e}")
            codes.append(store_exit_code(e))
        try:
            claims, known = store.all(queues), True
        except StoreError as e:
            claims, known = {}, False
            problems.append(f"claims unknown: {e}")
            codes.append(store_exit_code(e))
        if snap is not None and not snap.broker_up:
            problems.append(f"the exporter cannot reach the broker: {snap.broker_error}")
            codes.append(EXIT_UNREACHABLE)
        if snap is not None and snap.kubernetes_up is False:
            problems.append(f"replicas unknown: Kubernetes: {snap.kubernetes_error}")
        code = max(codes, default=0)
        return Reading(cfg, snap, claims, known, problems, code, ages_known=snap is not None)

    return read


def _show(
    out: Printer,
    watch: bool,
    interval: float,
    count: int | None,
    read: Callable[[], Reading],
    stop: Callable[[], None] = lambda: None,
) -> None:
    """Print readings (one, or every `interval` with --watch); exit with the last one's
    code: a script watching must not read "all fine" when the last reading failed."""
    from exporter.status.table import render_table, status_json, status_rows

    as_json = out.json
    refreshes = 0
    code = 0
    try:
        while True:
            now = time.time()
            r = read()
            code = r.code
            ages_known = refreshes > 0 or r.ages_known
            rows = status_rows(r.cfg, r.claims, r.snap)
            doc = status_json(rows, r.snap, now, ages_known)
            if as_json:
                doc["claims_known"] = r.claims_known
                click.echo(jsonout.dumps(doc))
            elif watch:
                click.clear()
                click.echo(f"batchctl status  {when(now)}  (every {interval:g}s, Ctrl-C quits)")
            for problem in r.problems:
                # Watching a table: inline; otherwise stderr, keeping stdout parseable.
                click.echo(f"warning: {problem}", err=as_json or not watch)
            if not as_json:
                table = render_table(
                    rows, now, ages_known, claims_known=r.claims_known, events=str(doc["events"])
                )
                click.echo(table)
            refreshes += 1
            if not watch or (count is not None and refreshes >= count):
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
    if code:
        sys.exit(code)
