"""`batchctl status`: every configured batch, its claim and its queue, once or watching."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import click
import redis

from batchctl import jsonout
from batchctl.cli.common import broker_failed, when
from batchctl.cli.options import (
    EXIT_UNREACHABLE,
    Printer,
    config_option,
    deprecated,
    load_or_exit,
    output_option,
)
from batchctl.redact import redact_url

if TYPE_CHECKING:
    from exporter.snapshot import BrokerDurability


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
def status_command(
    output: str,
    as_json: bool,
    watch: bool,
    interval: float,
    count: int | None,
    config_path: str | None,
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
    """
    from exporter.runtime import status_source
    from exporter.status.table import render_table, status_json, status_rows

    if as_json:
        deprecated("--json", "-o json")
        output = "json"
    out = Printer.of(output)
    as_json = out.json
    cfg = load_or_exit(config_path, out)
    try:
        source, kube_problem = status_source(cfg)
    except redis.RedisError as e:
        broker_failed(cfg, e, out)
    refreshes = 0
    broker_down = False  # at the last reading: then the exit code is 3
    try:
        while True:
            now = time.time()
            snap = source.collect()
            broker_down = not snap.broker_up
            problems = [kube_problem] if kube_problem else []
            if broker_down:
                problems.append(f"cannot reach the broker at {redact_url(cfg.broker.url)}")
            if snap.kubernetes_up is False:
                problems.append(f"replicas unknown: Kubernetes: {snap.kubernetes_error}")
            problems += durability_problems(snap.durability)
            ages_known = refreshes > 0
            rows = status_rows(cfg, snap.claims if snap.broker_up else {}, snap)
            doc = status_json(rows, snap, now, ages_known)
            if as_json:
                click.echo(jsonout.dumps(doc))
            elif watch:
                click.clear()
                click.echo(f"batchctl status  {when(now)}  (every {interval:g}s, Ctrl-C quits)")
            for problem in problems:
                # Watching a table: inline; otherwise stderr, keeping stdout parseable.
                click.echo(f"warning: {problem}", err=as_json or not watch)
            if not as_json:
                table = render_table(
                    rows, now, ages_known, claims_known=snap.broker_up, events=str(doc["events"])
                )
                click.echo(table)
            refreshes += 1
            if not watch or (count is not None and refreshes >= count):
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        source.stop()
    if broker_down:
        # The last reading found no broker: a script watching must not read "all fine".
        sys.exit(EXIT_UNREACHABLE)
