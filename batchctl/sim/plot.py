"""Plots of a simulation: waiting, in flight and replicas over time, one line per policy."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from batchctl.sim.controllers import OURS
from batchctl.sim.run import RunResult, Series


def plot(results: Mapping[str, RunResult], path: str | Path, title: str = "") -> None:
    """Waiting, in flight and replicas over time, one line per policy.

    Long runs are averaged over buckets of a few seconds (at most ~2,000 points per line)
    so that a day stays readable; the baseline is drawn first, ours on top.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    longest = max((len(r.series.waiting) for r in results.values()), default=1)
    bucket = max(1, math.ceil(longest / 2000))
    hours = longest > 3 * 3600
    scale = 3600 if hours else 60
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    panels: list[tuple[str, Callable[[Series], list[int]]]] = [
        ("waiting", lambda s: s.waiting),
        ("in flight", lambda s: s.in_flight),
        ("replicas", lambda s: s.replicas),
    ]
    order = sorted(results.items(), key=lambda kv: kv[0] == OURS)
    for ax, (label, get) in zip(axes, panels, strict=True):
        for name, r in order:
            ys = _buckets(get(r.series), bucket)
            xs = [i * bucket / scale for i in range(len(ys))]
            color = "C0" if name == OURS else "C1"
            ax.plot(xs, ys, label=name, drawstyle="steps-post", linewidth=1, color=color)
        ax.set_ylabel(label if bucket == 1 else f"{label} ({bucket} s mean)")
        ax.grid(alpha=0.3)
    axes[0].legend()
    axes[-1].set_xlabel("hours" if hours else "minutes")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _buckets(values: Sequence[int], size: int) -> list[float]:
    if size == 1:
        return [float(v) for v in values]
    return [
        sum(values[i : i + size]) / len(values[i : i + size]) for i in range(0, len(values), size)
    ]
