"""Write the standard simulator traces to benchmarks/traces/ (seeded: the output is stable).

    .venv/bin/python -m benchmarks.make_traces

The YAML files are committed; rerun this only to change a trace on purpose.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path

import yaml

OUT = Path(__file__).parent / "traces"


def poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method for small lambda, a rounded normal beyond (enough for a trace)."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def per_second(rng: random.Random, seconds: int, rate: Callable[[float], float]) -> list[list[int]]:
    out = []
    for s in range(seconds):
        n = poisson(rng, rate(s))
        if n:
            out.append([s, n])
    return out


def per_minute(rng: random.Random, minutes: int, rate: Callable[[float], float]) -> list[list[int]]:
    """Arrivals batched per minute (a producer that enqueues in chunks)."""
    out = []
    for m in range(minutes):
        n = poisson(rng, 60 * rate(m * 60))
        if n:
            out.append([m * 60, n])
    return out


def base(name: str, description: str, **extra: object) -> dict[str, object]:
    trace: dict[str, object] = {
        "name": name,
        "description": description,
        "task_seconds": {"mean": 2.0, "p99": 8.0},
        "worker_concurrency": 4,
        "prefetch_multiplier": 4,
        "pod_start_seconds": 20,
        "priorities": {0: 1.0},
        "seed": 1,
    }
    trace.update(extra)
    return trace


def diurnal_rate(s: float) -> float:
    """Office hours: ~0.05 tasks/s at night, ~6/s around 13:00."""
    day = s / 86400
    return 0.05 + 6.0 * max(0.0, math.sin(math.pi * (day - 0.25) / 0.6)) ** 2


def traces() -> dict[str, dict[str, object]]:
    rng = random.Random(20261126)
    out = {}
    out["burst"] = base(
        "burst",
        "One person enqueues 10,000 tasks at once, then nothing.",
        arrivals=[[0, 10000]],
    )
    out["trickle"] = base(
        "trickle",
        "A slow producer: about one task every 12 s for two hours (Poisson).",
        task_seconds={"mean": 5.0, "p99": 30.0},
        arrivals=per_second(rng, 7200, lambda s: 1 / 12),
    )
    out["diurnal"] = base(
        "diurnal",
        "24 hours of arrivals that follow office hours (per-minute chunks, peak ~6/s).",
        arrivals=per_minute(rng, 1440, diurnal_rate),
    )
    out["spikes"] = base(
        "spikes",
        "Six bursts of 1,500-2,750 tasks, 30 minutes apart.",
        arrivals=[[i * 1800, 1500 + 250 * i] for i in range(6)],
    )
    out["priority-heavy"] = base(
        "priority-heavy",
        "Two waves of 4,000 tasks, 90% sent with a priority (kombu's lists batch0\\x06\\x163 "
        "and batch0\\x06\\x169), which a base-list LLEN does not see.",
        priorities={0: 0.1, 3: 0.3, 9: 0.6},
        arrivals=[[0, 4000], [2400, 4000]],
    )
    out["long-tasks"] = base(
        "long-tasks",
        "500 slow tasks (mean 60 s, p99 280 s) at once: prefetched work outlasts the list "
        "by minutes, and tasks outlast Kubernetes' default 30 s grace period.",
        task_seconds={"mean": 60.0, "p99": 280.0},
        arrivals=[[0, 500]],
    )
    return out


class _Flow(yaml.SafeDumper):
    pass


def _flow_list(dumper: yaml.SafeDumper, data: list[object]) -> yaml.Node:
    # Short lists ([second, count]) in flow style keep a day of arrivals readable.
    flow = all(not isinstance(x, (list, dict)) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Flow.add_representer(list, _flow_list)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, trace in traces().items():
        path = OUT / f"{name}.yaml"
        path.write_text(yaml.dump(trace, Dumper=_Flow, sort_keys=False, width=100))
        arrivals: list[list[int]] = trace["arrivals"]  # type: ignore[assignment]
        print(f"wrote {path} ({sum(n for _, n in arrivals)} messages)")


if __name__ == "__main__":
    main()
