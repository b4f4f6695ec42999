"""Candidate scale-down rules in the simulator, against KEDA+HPA: print markdown tables.

    .venv/bin/python -m benchmarks.scale_down_pace [--config FILE ...] [--json out.json]

Every trace of benchmarks/traces/ runs under each candidate: the shipped policy with one
or two of its precedence steps replaced (autoscaler.policy.PRECEDENCE; the replacements are
below). KEDA+HPA runs once per config, in the same process, as the baseline. Without
--config the suite config (benchmarks/suite-config.yaml) and the built-in defaults
(`none`) are both run. benchmarks/README.md ("Scale-down pace") has the results.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from autoscaler.policy import PRECEDENCE, Decision, Reason, Step
from autoscaler.policy import steps as shipped
from autoscaler.policy.steps import Tick
from batchctl.config import Config, load_config
from batchctl.sim import BASELINE, OURS, RunResult, Trace, load_trace, simulate

ROOT = Path(__file__).resolve().parent.parent

TRACES = ROOT / "benchmarks" / "traces"
SUITE_CONFIG = ROOT / "benchmarks" / "suite-config.yaml"
# Steps down that the pace applies to; the drop to min_replicas after idle_after is exempt.
PACED = {r.value for r in (Reason.IDLE_STEP_DOWN, Reason.STEP_DOWN, Reason.GUARD_SHED)}
PACED |= {Reason.ABOVE_CAP.value}

# --- the candidate rules ----------------------------------------------------------------


def idle_step_down_per_tick(c: Tick) -> Decision | None:
    """Idle on two ticks running: one down per tick, to 1 (the rule before this change)."""
    if c.obs.waiting > 0 or c.current <= max(1, c.batch.min_replicas) or c.idle_for <= 0:
        return None
    return c.to(c.current - 1, Reason.IDLE_STEP_DOWN, f"idle for {c.idle_for:.0f}s")


def idle_step_down_per_interval(c: Tick) -> Decision | None:
    """Idle on two ticks running: one down per step interval (since the last change), to 1."""
    if c.obs.waiting > 0 or c.current <= max(1, c.batch.min_replicas) or c.idle_for <= 0:
        return None
    if not c.down_open:
        return c.hold(Reason.IDLE_STEP_DOWN, f"idle for {c.idle_for:.0f}s")
    return c.to(c.current - 1, Reason.IDLE_STEP_DOWN, f"idle for {c.idle_for:.0f}s")


def tail_small(c: Tick) -> Decision | None:
    """In flight only: one down per step interval once nothing waited for an interval and
    the rest would be done within an interval with one fewer (the rule before this change)."""
    b = c.batch
    if c.obs.waiting > 0 or c.obs.in_flight == 0 or c.current <= max(1, b.min_replicas):
        return None
    rest = c.eta(c.current - 1)
    if c.slack_for < b.step_interval_seconds or rest > b.step_interval_seconds:
        return None
    if not c.down_open:
        return None
    if max(c.floor, 1) >= c.current:
        return c.hold(Reason.INFLIGHT_FLOOR, "")
    return c.to(c.current - 1, Reason.STEP_DOWN, "")


def tail_any(c: Tick) -> Decision | None:
    """In flight only: one down per step interval once nothing waited for an interval,
    however long the rest takes."""
    b = c.batch
    if c.obs.waiting > 0 or c.obs.in_flight == 0 or c.current <= max(1, b.min_replicas):
        return None
    if c.slack_for < b.step_interval_seconds or not c.down_open:
        return None
    if max(c.floor, 1) >= c.current:
        return c.hold(Reason.INFLIGHT_FLOOR, "")
    return c.to(c.current - 1, Reason.STEP_DOWN, "")


def no_step(c: Tick) -> Decision | None:
    """The rule removed."""
    return None


def stabilized(step: Step, window: float = 300.0) -> Step:
    """HPA-style downscale stabilization: no step down until nothing has waited for
    `window` seconds (the HPA keeps the highest recommendation of the last 300 s; ours
    recommends more replicas only while something waits)."""

    def paced(c: Tick) -> Decision | None:
        if c.slack_for < window:
            return None
        return step(c)

    return paced


def tolerant(step: Step, tolerance: float = 0.1) -> Step:
    """HPA-style tolerance: no step up while the drain time is within (1 + tolerance) x
    the target."""

    def banded(c: Tick) -> Decision | None:
        limit = c.batch.target_drain_seconds * (1 + tolerance)
        if c.obs.waiting > 0 and c.current > 0 and c.eta(c.current) <= limit:
            return c.keep(Reason.STEADY, "within the tolerance")
        return step(c)

    return banded


def variant(**replace: Step) -> tuple[Step, ...]:
    """PRECEDENCE with the named steps replaced."""
    names = {s.__name__ for s in PRECEDENCE}
    unknown = set(replace) - names
    assert not unknown, unknown
    return tuple(replace.get(s.__name__, s) for s in PRECEDENCE)


# The shipped policy first: it must match "idle per interval, small tail" exactly.
CANDIDATES: dict[str, Callable[[], tuple[Step, ...]]] = {
    "shipped": lambda: PRECEDENCE,
    "idle per tick, small tail": lambda: variant(
        idle_step_down=idle_step_down_per_tick, step_down=tail_small
    ),
    "idle per interval, small tail": lambda: variant(
        idle_step_down=idle_step_down_per_interval, step_down=tail_small
    ),
    "no idle step-down, small tail": lambda: variant(idle_step_down=no_step, step_down=tail_small),
    "idle per tick, any tail": lambda: variant(
        idle_step_down=idle_step_down_per_tick, step_down=tail_any
    ),
    "idle per interval, any tail": lambda: variant(
        idle_step_down=idle_step_down_per_interval, step_down=tail_any
    ),
    "no idle step-down, any tail": lambda: variant(idle_step_down=no_step, step_down=tail_any),
    "idle per tick, no tail rule": lambda: variant(
        idle_step_down=idle_step_down_per_tick, step_down=no_step
    ),
    "idle per interval, no tail rule": lambda: variant(
        idle_step_down=idle_step_down_per_interval, step_down=no_step
    ),
    "no idle step-down, no tail rule": lambda: variant(idle_step_down=no_step, step_down=no_step),
    "shipped + 300 s stabilization": lambda: variant(
        idle_step_down=stabilized(shipped.idle_step_down), step_down=stabilized(shipped.step_down)
    ),
    "shipped + 0.1 tolerance": lambda: variant(backlog=tolerant(shipped.backlog)),
}

# --- running and summing up -------------------------------------------------------------

Runs = dict[tuple[str, int], dict[str, RunResult]]  # (trace, seed) -> policy -> result


def closest_paced_downs(downs: Sequence[tuple[float, str]]) -> float | None:
    """The shortest time between a step down and the paced step down after it."""
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(downs) if b[1] in PACED]
    return min(gaps, default=None)


def run_candidate(
    config: Config,
    precedence: tuple[Step, ...],
    traces: Sequence[Trace],
    seeds: int,
    baseline: bool,
) -> Runs:
    out = {}
    for trace in traces:
        for seed in range(trace.seed, trace.seed + seeds):
            out[(trace.name, seed)] = simulate(
                dataclasses.replace(trace, seed=seed),
                config,
                baseline="keda" if baseline else None,
                precedence=precedence,
            )
    return out


def summary(
    results: dict[tuple[str, int], RunResult], both: set[tuple[str, int]]
) -> dict[str, Any]:
    """Sums over every (trace, seed); drain over the runs that both policies drain."""
    messages = sum(r.metrics["messages"] for r in results.values())
    gaps = [g for r in results.values() if (g := closest_paced_downs(r.downs)) is not None]
    per_trace: dict[str, dict[str, list[Any]]] = {}
    for (name, _), r in results.items():
        t = per_trace.setdefault(name, {"replica_seconds": [], "drain_seconds": []})
        t["replica_seconds"].append(r.metrics["replica_seconds"])
        t["drain_seconds"].append(r.metrics["drain_seconds"])
    return {
        "replica_seconds": sum(r.metrics["replica_seconds"] for r in results.values()),
        "drain_seconds": sum(results[k].metrics["drain_seconds"] for k in both),
        "inflight_interrupted": sum(r.metrics["inflight_interrupted"] for r in results.values()),
        "scale_actions": sum(r.metrics["scale_actions"] for r in results.values()),
        "mean_wait_seconds": sum(
            r.metrics["mean_wait_seconds"] * r.metrics["messages"] for r in results.values()
        )
        / messages,
        # The baseline records no steps down: None.
        "closest_paced_downs": min(gaps, default=None),
        "per_trace": per_trace,
    }


def _mean(values: Sequence[float | None]) -> str:
    if any(v is None for v in values):
        return "never"
    return f"{statistics.fmean(v for v in values if v is not None):,.0f}"


def markdown(rows: dict[str, dict[str, Any]], keda: dict[str, Any], seeds: int) -> str:
    head = (
        "| candidate | replica-s | / KEDA | drain s | / KEDA | in-flight interrupted "
        "| scale actions | mean wait s | closest paced step-downs s |"
    )
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in [*rows.items(), ("KEDA+HPA (baseline)", keda)]:
        gap = s["closest_paced_downs"]
        lines.append(
            f"| {name} | {s['replica_seconds']:,} | "
            f"{s['replica_seconds'] / keda['replica_seconds']:.3f} | "
            f"{s['drain_seconds']:,.0f} | {s['drain_seconds'] / keda['drain_seconds']:.3f} | "
            f"{s['inflight_interrupted']} | {s['scale_actions']:,} | "
            f"{s['mean_wait_seconds']:.1f} | {'–' if gap is None else f'{gap:.0f}'} |"
        )
    traces = list(keda["per_trace"])
    each = "" if seeds == 1 else f" (means over {seeds} seeds)"
    lines += ["", f"replica-s / drain s per trace{each}:", ""]
    lines.append("| candidate | " + " | ".join(traces) + " |")
    lines.append("|---|" + "---:|" * len(traces))
    for name, s in [*rows.items(), ("KEDA+HPA (baseline)", keda)]:
        cells = [
            f"{_mean(s['per_trace'][t]['replica_seconds'])} / "
            f"{_mean(s['per_trace'][t]['drain_seconds'])}"
            for t in traces
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument(
        "--config",
        action="append",
        help="batchctl config, or 'none' for the defaults (repeatable; default: suite, none)",
    )
    ap.add_argument("--only", action="append", help="run only these candidates (repeatable)")
    ap.add_argument("--trace", action="append", help="run only these traces (repeatable)")
    ap.add_argument("--seeds", type=int, default=1, help="seeds per trace (from its own seed)")
    ap.add_argument("--acks-late", action="store_true", help="run every trace with acks_late")
    ap.add_argument("--json", help="write the summaries to this file")
    args = ap.parse_args(argv)
    configs = args.config or [str(SUITE_CONFIG.relative_to(ROOT)), "none"]
    names = args.only or list(CANDIDATES)
    traces = [
        load_trace(p)
        for p in sorted(TRACES.glob("*.yaml"))
        if not args.trace or p.stem in args.trace
    ]
    if args.acks_late:
        traces = [dataclasses.replace(t, acks_late=True) for t in traces]
    print(
        f"Simulated {date.today().isoformat()} on {platform.node()} "
        f"({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}); "
        f"traces {', '.join(t.name for t in traces)}, {args.seeds} seed(s) each"
        f"{', acks_late' if args.acks_late else ''}."
    )
    doc: dict[str, Any] = {}
    for config_path in configs:
        config = load_config(None if config_path == "none" else config_path)
        b = config.batches[0]
        runs = {
            n: run_candidate(config, CANDIDATES[n](), traces, args.seeds, i == 0)
            for i, n in enumerate(names)
        }
        keda = {k: r[BASELINE] for k, r in runs[names[0]].items()}
        ours = {n: {k: r[OURS] for k, r in rs.items()} for n, rs in runs.items()}
        both = {k for k, r in keda.items() if r.metrics["drain_seconds"] is not None}
        both &= {
            k
            for rs in ours.values()
            for k, r in rs.items()
            if r.metrics["drain_seconds"] is not None
        }
        rows = {n: summary(ours[n], both) for n in names}
        keda_doc = summary(keda, both)
        drained = sorted({name for name, _ in both})
        print(
            f"\n### config {config_path}: max_replicas {b.max_replicas}, step_up {b.step_up} per "
            f"{b.step_interval_seconds:.0f} s, target_drain {b.target_drain_seconds:.0f} s, "
            f"idle_after {b.idle_after_seconds:.0f} s, "
            f"tick {config.autoscaler.interval_seconds:.0f} s "
            f"(drain summed over the traces both drain: {', '.join(drained)})\n"
        )
        print(markdown(rows, keda_doc, args.seeds))
        doc[config_path] = {"candidates": rows, "keda_hpa": keda_doc}
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
