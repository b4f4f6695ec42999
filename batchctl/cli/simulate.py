"""`batchctl simulate TRACE`: replay a trace under our policy and the KEDA+HPA baseline."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from batchctl.cli.common import duration
from batchctl.cli.options import (
    EXIT_USAGE,
    Printer,
    config_option,
    deprecated,
    load_or_exit,
    output_option,
)
from batchctl.units import format_duration

_ROWS = (
    ("replica_seconds", "replica-seconds"),
    ("floor_replica_seconds", "physical floor (task-s / concurrency)"),
    ("never_ready_pod_seconds", "pod-seconds never ready (no room)"),
    ("drain_seconds", "drain seconds (last arrival -> empty)"),
    ("completion_seconds", "completion seconds (start -> empty)"),
    ("peak_waiting", "peak waiting"),
    ("peak_replicas", "peak replicas"),
    ("max_step_up_per_minute", "max step-up per minute"),
    ("scale_actions", "scale actions"),
    ("running_at_stop", "tasks running on pods told to stop"),
    ("inflight_interrupted", "in-flight interrupted"),
    ("cap_violations", "cap violations (seconds)"),
    ("seconds_above_1000", "seconds with >= 1000 waiting"),
    ("mean_wait_seconds", "mean wait before start (s)"),
    ("left_undone", "messages left undone"),
    ("deadline_met", "deadline met"),
)


@click.command("simulate")
@click.argument("trace", type=click.Path(exists=True, dir_okay=False))
@config_option
@click.option(
    "--baseline",
    type=click.Choice(["keda", "none"]),
    default="keda",
    show_default=True,
    help="Also run KEDA's Redis scaler + the HPA on the same trace and caps.",
)
@click.option(
    "--finish-by",
    "finish_by",
    metavar="DURATION",
    help="Give our claim a deadline this long after the trace starts (e.g. 2h): the "
    "policy paces the batch to finish by then with the fewest replicas. The report says "
    "whether the caps can meet it (feasible, the replicas it needs) and whether each "
    "policy did.",
)
@click.option(
    "--events/--no-events",
    default=True,
    show_default=True,
    help="Workers send Celery's events (-E) and the exporter consumes them "
    "(events.enabled), as docs/operations.md recommends: our policy sees running tasks, "
    "completions and which pods are busy. --no-events: only the broker's lists and "
    "unacked, and Kubernetes picks the pods a scale-down stops.",
)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Write a PNG here.")
@output_option
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    hidden=True,
    help="Deprecated: write the JSON report to this file; use -o json > FILE.",
)
def simulate_command(
    trace: str,
    config_path: str | None,
    baseline: str,
    finish_by: str | None,
    events: bool,
    plot_path: str | None,
    output: str,
    json_path: str | None,
) -> None:
    """Replay TRACE (YAML) against a model of Celery workers and compare scaling policies.

    \b
    The trace:
      task_seconds: {mean: 2.0, p99: 8.0}
      worker_concurrency: 4
      prefetch_multiplier: 4
      pod_start_seconds: 20
      priorities: {0: 0.2, 9: 0.8}   # share per priority list
      arrivals: [[0, 5000], [3600, 200]]   # [second, messages]

    The batch is the trace's `queue`, else the config's first batch; its caps apply to both
    policies. Standard traces: benchmarks/traces/. `-o json` prints the whole report
    as JSON on stdout (`--json FILE` is its deprecated form); with --finish-by it has a
    "deadline" part ("feasible", "replicas_needed") and each policy's "deadline_met".
    """
    from batchctl.sim import TraceError, load_trace, plot, report, simulate

    out = Printer.of(output)
    cfg = load_or_exit(config_path, out)
    for option, target in (("--plot", plot_path), ("--json", json_path)):
        problem = _unwritable(target) if target else None
        if problem:
            out.fail(f"{option} {target}: {problem}", EXIT_USAGE)
    deadline = None if finish_by is None else duration(finish_by, 0.0, "--finish-by")
    try:
        tr = load_trace(trace)
        results = simulate(
            tr,
            cfg,
            baseline=None if baseline == "none" else baseline,
            events=events,
            finish_by=deadline,
        )
    except TraceError as e:
        out.fail(str(e), EXIT_USAGE)
    doc = report(tr, cfg, results, finish_by=deadline)
    doc["events"] = events
    # The files first: a failure is then the one error of the run (one JSON document).
    try:
        if json_path:
            deprecated("--json FILE", "-o json > FILE")
            Path(json_path).write_text(json.dumps(doc, indent=2) + "\n")
        if plot_path:
            plot(results, plot_path, title=f"{tr.name}: {tr.total:,} messages")
    except OSError as e:
        out.fail(f"cannot write {e.filename or 'the file'}: {e.strerror or e}", EXIT_USAGE)
    out.data(doc, lambda: _table(doc))
    for written in (json_path, plot_path):
        if written:
            click.echo(f"wrote {written}", err=True)


def _unwritable(path: str) -> str | None:
    """Why a file cannot be created at `path` (checked before a long run), or None."""
    parent = Path(path).parent
    if not parent.is_dir():
        return f"no such directory: {parent}"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot write in {parent}"
    return None


def _table(doc: dict[str, Any]) -> str:
    names = list(doc["policies"])
    width = max(len(label) for _, label in _ROWS)
    c = doc["config"]
    lines = [
        f"{doc['trace']['name']}: {doc['trace']['messages']:,} messages; cap {c['max_replicas']}, "
        f"step {c['step_up']} per {c['step_interval_seconds']:.0f}s, "
        f"drain target {c['target_drain_seconds']:.0f}s",
        f"{'':<{width}}  " + "  ".join(f"{n:>12}" for n in names),
    ]
    for key, label in _ROWS:
        if not any(key in doc["policies"][n] for n in names):
            continue  # deadline_met, without a deadline
        cells = []
        for n in names:
            v = doc["policies"][n].get(key)
            shown = "never" if v is None else ("yes" if v else "no") if isinstance(v, bool) else v
            cells.append(f"{shown:>12}")
        lines.append(f"{label:<{width}}  " + "  ".join(cells))
    ratios = doc.get("ratios")
    if ratios:
        parts = [f"{k} {'n/a' if v is None else v}" for k, v in ratios.items()]
        lines.append("ours / baseline: " + ", ".join(parts))
    d = doc.get("deadline")
    if d:
        by = format_duration(d["finish_by_seconds"])
        if d["feasible"]:
            need = d["replicas_needed"]
            lines.append(
                f"deadline {by} after the start: feasible ({need} replica"
                f"{'' if need == 1 else 's'} needed)"
            )
        else:
            lines.append(f"deadline {by} after the start: NOT feasible: {d['why']}")
    return "\n".join(lines)
