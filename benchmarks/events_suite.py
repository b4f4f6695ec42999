"""Our policy with and without Celery's task events, with early and late acks (simulated).

    .venv/bin/python -m benchmarks.events_suite [--config FILE] [--json out.json]

Every trace in benchmarks/traces/ runs four times under our policy: Celery's default
early acknowledgement or `acks_late`, each without events (the policy sees waiting and
`unacked`) and with them (it also sees the tasks running now and counts completions for
its throughput). KEDA+HPA runs once per acks mode, for reference. Printed: a markdown
table per trace and the sums. `running at stop` counts tasks that were running on a pod
when it was told to stop: they finish only thanks to the grace period (our
`max_task_seconds`), and a shorter one would cut them off.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from batchctl.config import load_config
from batchctl.sim import BASELINE, OURS, load_trace, simulate

ROOT = Path(__file__).resolve().parent.parent

TRACES = Path(__file__).parent / "traces"
SUITE_CONFIG = Path(__file__).parent / "suite-config.yaml"
KEYS = (
    "replica_seconds",
    "drain_seconds",
    "running_at_stop",
    "inflight_interrupted",
    "scale_actions",
    "mean_wait_seconds",
    "left_undone",
)


def run(config_path: str | None) -> list[dict[str, Any]]:
    config = load_config(config_path)
    rows = []
    for path in sorted(TRACES.glob("*.yaml")):
        base = load_trace(path)
        for acks_late in (False, True):
            trace = dataclasses.replace(base, acks_late=acks_late)
            for events in (False, True):
                results = simulate(
                    trace, config, baseline="keda" if not events else None, events=events
                )
                rows.append(
                    _row(
                        trace.name,
                        acks_late,
                        f"ours, events {'on' if events else 'off'}",
                        results[OURS].metrics,
                    )
                )
                if not events:
                    rows.append(_row(trace.name, acks_late, "KEDA+HPA", results[BASELINE].metrics))
    return rows


def _row(trace: str, acks_late: bool, policy: str, m: dict[str, Any]) -> dict[str, Any]:
    return {"trace": trace, "acks": "late" if acks_late else "early", "policy": policy} | {
        k: m[k] for k in KEYS
    }


def _cell(v: Any) -> str:
    if v is None:
        return "never"
    if isinstance(v, float) and v != int(v):
        return f"{v:,.1f}"
    return f"{int(v):,}"


def markdown(rows: list[dict[str, Any]]) -> str:
    head = ["trace", "acks", "policy", "replica-s", "drain s", "running at stop",
            "interrupted", "scale actions", "mean wait s", "left undone"]  # fmt: skip
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["trace"], r["acks"], r["policy"], *(_cell(r[k]) for k in KEYS)]
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "| acks | policy | replica-s (sum) | running at stop (sum) | interrupted (sum) |",
            "|---|---|---|---|---|"]  # fmt: skip
    for acks in ("early", "late"):
        for policy in ("ours, events off", "ours, events on", "KEDA+HPA"):
            sel = [r for r in rows if r["acks"] == acks and r["policy"] == policy]
            out.append(
                f"| {acks} | {policy} | {sum(r['replica_seconds'] for r in sel):,} | "
                f"{sum(r['running_at_stop'] for r in sel):,} | "
                f"{sum(r['inflight_interrupted'] for r in sel):,} |"
            )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(SUITE_CONFIG), help="batchctl config, or 'none'")
    ap.add_argument("--json", help="write the rows to this file")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    rows = run(None if args.config == "none" else args.config)
    print(
        f"Simulated {date.today().isoformat()} on {platform.node()} ({platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}); config {args.config}\n"
    )
    print(markdown(rows))
    print(f"\n(wall time: {time.perf_counter() - started:.1f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
