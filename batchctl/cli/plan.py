"""`batchctl plan BATCH --finish-by TIME`: what finishing the batch by then would take."""

from __future__ import annotations

import time

import click

from batchctl.claims import StoreError
from batchctl.claims.service import ClaimRefused, check_batch
from batchctl.cli.cluster import Cluster, cluster_options, load_for_claims, open_session
from batchctl.cli.common import (
    BROKER_ERRORS,
    broker_failed,
    finish_by_time,
    plan_for,
    plan_lines,
    store_failed,
)
from batchctl.cli.options import (
    EXIT_REFUSED,
    EXIT_USAGE,
    Printer,
    config_option,
    output_option,
)


@click.command("plan")
@click.argument("queue")
@click.option(
    "--finish-by",
    "finish_by",
    required=True,
    metavar="TIME",
    help="When the work should be done: a duration from now (6h), a time of day (17:00, "
    "local time) or a date and time (2026-12-08 17:00, ISO 8601).",
)
@click.option(
    "--task-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="A typical task's run time, when the exporter has measured no pace yet "
    "[default: the batch's task_seconds].",
)
@config_option
@cluster_options
@output_option
def plan_command(
    queue: str,
    finish_by: str,
    task_seconds: float | None,
    config_path: str | None,
    output: str,
    cluster: Cluster,
) -> None:
    """What finishing the batch QUEUE by --finish-by would take, without claiming it.

    \b
    From the work left now (waiting + in flight, read from the broker) and the pace per
    replica (measured by the exporter when it answers at autoscaler.snapshot_url, else
    --task-seconds, else the batch's task_seconds), within the batch's cap and the
    global budget, at the autoscaler's step pace: the fewest replicas that finish in
    time (with a tenth of the time to spare), when that ends, when it would end at the
    cap, and what it costs in replica-hours, money and CO2e (the `cost:` prices).
    With the claims in Kubernetes (claims.store: kubernetes, or --kubeconfig,
    --context, -n) a kubeconfig is enough: the site's config, the work and the pace
    come from the exporter, through the API server.
    Exit 0 when the caps can make it, 1 when they cannot (the output says by how much),
    2 when no pace is known. `batchctl claim QUEUE --finish-by TIME` then paces it.
    """
    out = Printer.of(output)
    cfg = load_for_claims(config_path, cluster, out)
    now = time.time()
    try:
        check_batch(cfg, queue)
    except ClaimRefused as e:
        out.fail(str(e), EXIT_USAGE)
    deadline = finish_by_time(finish_by, now)
    if deadline <= now:
        out.fail(f"--finish-by {finish_by!r} is in the past: give a time ahead", EXIT_USAGE)
    session = open_session(cfg, out) if cfg.claims.store == "kubernetes" else None
    try:
        p = plan_for(cfg, queue, deadline, now, task_seconds, session=session)
    except StoreError as e:
        store_failed(e, out)
    except BROKER_ERRORS as e:
        broker_failed(cfg, e, out)
    finally:
        if session is not None:
            session.close()
    if p is None:
        out.fail(
            f"no pace known for {queue}: the exporter has measured none (is it running, with "
            "events?) and the batch sets no task_seconds; give --task-seconds",
            EXIT_USAGE,
        )
    out.data(p.to_json(), lambda: "\n".join(plan_lines(p, cfg)))
    if not p.plan.feasible:
        raise SystemExit(EXIT_REFUSED)
