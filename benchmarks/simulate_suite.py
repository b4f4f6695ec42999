"""Run every trace in benchmarks/traces/ under our policy, our policy with a deadline, and
KEDA+HPA; print markdown tables beside each trace's physical floor.

    .venv/bin/python -m benchmarks.simulate_suite [--config FILE] [--json out.json] [--plots DIR]
        [--no-events]

All get the same caps (the batch's max_replicas and the global budget). Without --config
the suite uses benchmarks/suite-config.yaml; pass `--config none` for the built-in
defaults. Workers send Celery's events (our policy sees running tasks, completions and
the busy map) unless --no-events. "batchctl + deadline" runs the trace again with the
claim's deadline at 1.25 x the completion time batchctl reached without one
(`batchctl simulate --finish-by`): the same work, paced to finish no later than that.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from batchctl.config import Config, load_config
from batchctl.sim import BASELINE, OURS, load_trace, plot, report, simulate

ROOT = Path(__file__).resolve().parent.parent

TRACES = Path(__file__).parent / "traces"
SUITE_CONFIG = Path(__file__).parent / "suite-config.yaml"
PACED = "batchctl + deadline"
# The deadline of the paced run: this much of batchctl's own completion time.
DEADLINE_FACTOR = 1.25
FLOOR_COLUMNS = (
    ("replica_seconds", "replica-s"),
    ("floor_ratio", "/ floor"),
    ("completion_seconds", "completion s"),
    ("drain_seconds", "drain s"),
    ("peak_replicas", "peak replicas"),
    ("scale_actions", "scale actions"),
    ("running_at_stop", "busy stops (tasks on stopped pods)"),
    ("inflight_interrupted", "interrupted"),
    ("mean_wait_seconds", "mean wait s"),
    ("left_undone", "left undone"),
)
COLUMNS = (
    ("replica_seconds", "replica-s"),
    ("drain_seconds", "drain s"),
    ("peak_waiting", "peak waiting"),
    ("peak_replicas", "peak replicas"),
    ("max_step_up_per_minute", "max step-up /min"),
    ("scale_actions", "scale actions"),
    ("inflight_interrupted", "in-flight interrupted"),
    ("cap_violations", "cap violations"),
    ("seconds_above_1000", "s >= 1000 waiting"),
    ("mean_wait_seconds", "mean wait s"),
    ("left_undone", "left undone"),
)


def _rel(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return path


def run_suite(
    config: Config, plots: Path | None = None, *, events: bool = True
) -> list[dict[str, Any]]:
    out = []
    for path in sorted(TRACES.glob("*.yaml")):
        trace = load_trace(path)
        started = time.perf_counter()
        results = simulate(trace, config, baseline="keda", events=events)
        doc = report(trace, config, results)
        completion = results[OURS].metrics["completion_seconds"]
        if completion is not None:
            deadline = math.ceil(DEADLINE_FACTOR * completion)
            paced = simulate(trace, config, baseline=None, events=events, finish_by=deadline)
            paced_doc = report(trace, config, paced, finish_by=deadline)
            doc["policies"][PACED] = paced_doc["policies"][OURS]
            doc["deadline"] = paced_doc["deadline"]
        doc["wall_seconds"] = round(time.perf_counter() - started, 2)
        out.append(doc)
        if plots is not None:
            plots.mkdir(parents=True, exist_ok=True)
            plot(
                results,
                plots / f"{trace.name}.png",
                title=f"{trace.name}: {trace.total:,} messages",
            )
    return out


def _cell(v: Any) -> str:
    if v is None:
        return "never"
    if isinstance(v, float):
        return f"{v:,.1f}" if v != int(v) else f"{int(v):,}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _ratio(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def floor_markdown(docs: list[dict[str, Any]]) -> str:
    """Per trace: the physical floor, and each policy's cost, completion and busy stops."""
    head = ["trace", "floor replica-s", "policy", *(label for _, label in FLOOR_COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for doc in docs:
        floor = doc["policies"][OURS]["floor_replica_seconds"]
        for name in (OURS, PACED, BASELINE):
            m = doc["policies"].get(name)
            if m is None:
                continue
            label = name
            if name == PACED:
                by = doc["deadline"]["finish_by_seconds"]
                label = f"{name} ({by:,} s{'' if m.get('deadline_met') else ', missed'})"
            cells = [doc["trace"]["name"], _cell(floor), label]
            cells += [
                f"{m[k]:.2f}" if k == "floor_ratio" and m.get(k) is not None else _cell(m.get(k))
                for k, _ in FLOOR_COLUMNS
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(docs: list[dict[str, Any]]) -> str:
    head = ["trace", "policy", *(label for _, label in COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for doc in docs:
        for name in (OURS, BASELINE):
            m = doc["policies"][name]
            cells = [doc["trace"]["name"], name, *(_cell(m[k]) for k, _ in COLUMNS)]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "| trace | replica-s ours/KEDA (target <= 0.7) | drain ours/KEDA (target <= 1.25) |"
    )
    lines.append("|---|---|---|")
    total_ours = total_keda = 0
    drain_ours = drain_keda = 0.0
    for doc in docs:
        r = doc["ratios"]
        total_ours += doc["policies"][OURS]["replica_seconds"]
        total_keda += doc["policies"][BASELINE]["replica_seconds"]
        ours_d = doc["policies"][OURS]["drain_seconds"]
        keda_d = doc["policies"][BASELINE]["drain_seconds"]
        # Summed over traces that both policies drain (a baseline that never drains
        # has no finite time to compare with; ours draining there is a strict win).
        if ours_d is not None and keda_d is not None:
            drain_ours += ours_d
            drain_keda += keda_d
        drain = r["drain_seconds"]
        if drain is None and doc["policies"][BASELINE]["drain_seconds"] is None:
            drain_text = "KEDA never drains"
        else:
            drain_text = _ratio(drain)
        lines.append(f"| {doc['trace']['name']} | {_ratio(r['replica_seconds'])} | {drain_text} |")
    lines.append(
        f"| all traces (sums) | {total_ours / total_keda:.2f} | "
        f"{drain_ours / drain_keda:.2f} (traces both drain) |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(SUITE_CONFIG), help="batchctl config, or 'none'")
    ap.add_argument("--json", help="write every trace's report to this file")
    ap.add_argument("--plots", type=Path, help="write one PNG per trace to this directory")
    ap.add_argument(
        "--no-events", action="store_true", help="workers without Celery's events (no busy map)"
    )
    args = ap.parse_args(argv)
    config = load_config(None if args.config == "none" else args.config)
    docs = run_suite(config, args.plots, events=not args.no_events)
    c = docs[0]["config"]
    print(
        f"Simulated {date.today().isoformat()} on {platform.node()} "
        f"({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}); "
        f"config {_rel(args.config)}: "
        f"max_replicas {c['max_replicas']}, step_up {c['step_up']} per "
        f"{c['step_interval_seconds']:.0f} s, target_drain {c['target_drain_seconds']:.0f} s, "
        f"idle_after {c['idle_after_seconds']:.0f} s, tick {c['interval_seconds']:.0f} s; "
        f"events {'off' if args.no_events else 'on'}.\n"
    )
    print(floor_markdown(docs))
    print()
    print(markdown(docs))
    print(f"\n(wall time: {sum(d['wall_seconds'] for d in docs):.1f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(docs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
