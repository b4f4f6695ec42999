"""Traces for the simulator: what arrives when, how long tasks take, the workers' shape.

A trace is YAML (benchmarks/traces/ has the standard ones; `batchctl simulate --help`
shows the format). `parse_trace` validates a decoded document and names the first problem
(`TraceError`); task durations are lognormal with the trace's mean and p99.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PRIORITY_STEPS = (0, 3, 6, 9)


class TraceError(ValueError):
    """A trace file that cannot be simulated; the message says what and where."""


@dataclass(frozen=True)
class Trace:
    name: str
    task_mean: float
    task_p99: float
    worker_concurrency: int
    prefetch_multiplier: int
    pod_start_seconds: float
    # (priority step, share of messages), ascending steps; step 0 is the base list.
    priorities: tuple[tuple[int, float], ...]
    # (second, messages enqueued at that second), ascending.
    arrivals: tuple[tuple[int, int], ...]
    acks_late: bool = False
    seed: int = 1
    queue: str | None = None
    # Give up this long after the last arrival (a run that never drains).
    tail_seconds: int = 6 * 3600
    visibility_timeout_seconds: float = 3600.0
    description: str = ""
    # A cluster with room for only this many of the batch's pods: the others are created
    # but never become ready (Pending, no room). None: room for all.
    max_ready_pods: int | None = None

    @property
    def total(self) -> int:
        return sum(n for _, n in self.arrivals)

    @property
    def last_arrival(self) -> int:
        return self.arrivals[-1][0] if self.arrivals else 0


def lognormal_params(mean: float, p99: float) -> tuple[float, float]:
    """(mu, sigma) of the lognormal with this mean and 99th percentile.

    mean = exp(mu + s^2/2) and p99 = exp(mu + z s) with z = 2.3263, so
    s^2/2 - z s + ln(p99/mean) = 0; the smaller root is the well-behaved one.
    """
    z = 2.3263478740408408
    if mean <= 0 or p99 < mean:
        raise TraceError(f"task_seconds: need 0 < mean <= p99, got mean {mean}, p99 {p99}")
    k = math.log(p99 / mean)
    disc = z * z - 2 * k
    if disc < 0:
        raise TraceError(
            f"task_seconds: p99/mean = {p99 / mean:.1f} is too skewed for a lognormal "
            f"(at most {math.exp(z * z / 2):.1f})"
        )
    sigma = z - math.sqrt(disc)
    return math.log(mean) - sigma * sigma / 2, sigma


def parse_trace(data: Any, name: str = "trace") -> Trace:
    """Validate a decoded YAML trace; raise TraceError naming the first problem."""
    if not isinstance(data, dict):
        raise TraceError(f"{name}: expected a mapping at the top level")
    known = {
        "name", "description", "task_seconds", "worker_concurrency", "prefetch_multiplier",
        "pod_start_seconds", "priorities", "arrivals", "acks_late", "seed", "queue",
        "tail_seconds", "visibility_timeout_seconds", "max_ready_pods",
    }  # fmt: skip
    unknown = sorted(set(data) - known)
    if unknown:
        raise TraceError(f"{name}: unknown key(s) {unknown}; valid: {sorted(known)}")
    try:
        mean, p99 = _task_seconds(data.get("task_seconds"))
        lognormal_params(mean, p99)
        arrivals = _arrivals(data.get("arrivals"))
        trace = Trace(
            name=str(data.get("name", name)),
            description=str(data.get("description", "")),
            task_mean=mean,
            task_p99=p99,
            worker_concurrency=_positive_int(
                data.get("worker_concurrency", 4), "worker_concurrency"
            ),
            prefetch_multiplier=_positive_int(
                data.get("prefetch_multiplier", 4), "prefetch_multiplier"
            ),
            pod_start_seconds=float(data.get("pod_start_seconds", 20)),
            priorities=_priorities(data.get("priorities", {0: 1.0})),
            arrivals=arrivals,
            acks_late=bool(data.get("acks_late", False)),
            seed=int(data.get("seed", 1)),
            queue=data.get("queue"),
            tail_seconds=int(data.get("tail_seconds", 6 * 3600)),
            visibility_timeout_seconds=float(data.get("visibility_timeout_seconds", 3600)),
            max_ready_pods=(
                None
                if data.get("max_ready_pods") is None
                else _positive_int(data["max_ready_pods"], "max_ready_pods")
            ),
        )
    except TraceError as e:
        raise TraceError(f"{name}: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise TraceError(f"{name}: bad value ({type(e).__name__}: {e})") from None
    if trace.pod_start_seconds < 0:
        raise TraceError(f"{name}: pod_start_seconds must be >= 0")
    return trace


def load_trace(path: str | Path) -> Trace:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise TraceError(f"{p}: cannot read: {e.strerror}") from None
    if b"\x00" in raw:
        raise TraceError(f"{p}: a binary file, not a YAML trace")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise TraceError(
            f"{p}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); save it as UTF-8"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        # One line, without the quoted snippet PyYAML appends.
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise TraceError(f"{p}: not valid YAML{where}: {problem}") from None
    return parse_trace(data, name=p.stem)


_TASK_SECONDS = "task_seconds: {mean: 2.0, p99: 8.0} (seconds)"


def _task_seconds(raw: Any) -> tuple[float, float]:
    """(mean, p99) of `task_seconds`, or TraceError naming what is missing."""
    if raw is None:
        raise TraceError(f"task_seconds is missing: add e.g. {_TASK_SECONDS}")
    if not isinstance(raw, dict):
        raise TraceError(f"task_seconds: expected a mapping, e.g. {_TASK_SECONDS}")
    missing = [k for k in ("mean", "p99") if raw.get(k) is None]
    if missing:
        raise TraceError(f"task_seconds.{missing[0]} is missing: give both, e.g. {_TASK_SECONDS}")
    return float(raw["mean"]), float(raw["p99"])


def _positive_int(v: Any, key: str) -> int:
    n = int(v)
    if n < 1:
        raise TraceError(f"{key} must be >= 1, got {v!r}")
    return n


# The longest trace the simulator takes, in seconds (it steps every simulated second).
MAX_TRACE_SECONDS = 7 * 86400


def _arrivals(raw: Any) -> tuple[tuple[int, int], ...]:
    if not isinstance(raw, list) or not raw:
        raise TraceError("arrivals: expected a non-empty list of [second, count]")
    per_second: dict[int, int] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise TraceError(f"arrivals[{i}]: expected [second, count], got {item!r}")
        if not all(_whole(x) for x in item):
            raise TraceError(f"arrivals[{i}]: second and count must be whole numbers, got {item!r}")
        sec, n = int(item[0]), int(item[1])
        if sec < 0 or n < 0:
            raise TraceError(f"arrivals[{i}]: second and count must be >= 0, got {item!r}")
        if sec > MAX_TRACE_SECONDS:
            # The simulator steps every second: a trace written in milliseconds by
            # mistake would run for days rather than fail.
            raise TraceError(
                f"arrivals[{i}]: second {sec} is more than {MAX_TRACE_SECONDS // 86400} days "
                "into the trace; arrivals are in seconds (not milliseconds)"
            )
        per_second[sec] = per_second.get(sec, 0) + n
    return tuple(sorted((s, n) for s, n in per_second.items() if n > 0))


def _whole(x: Any) -> bool:
    """An int or an integral float (3600.0), never a bool, a string or 3.5: int() would
    take `true` as 1, truncate 3.5 and fail on YAML 1.1's string "1e9"."""
    return not isinstance(x, bool) and (
        isinstance(x, int) or (isinstance(x, float) and x.is_integer())
    )


def _priorities(raw: Any) -> tuple[tuple[int, float], ...]:
    """{step: share}, [[step, share], ...] or [share, ...] for kombu's steps 0, 3, 6, 9."""
    if isinstance(raw, dict):
        pairs = [(int(k), float(v)) for k, v in raw.items()]
    elif isinstance(raw, list) and all(isinstance(x, (list, tuple)) for x in raw):
        pairs = [(int(k), float(v)) for k, v in raw]
    elif isinstance(raw, list):
        if len(raw) > len(DEFAULT_PRIORITY_STEPS):
            raise TraceError("priorities: a list of shares has one per step of 0, 3, 6, 9")
        pairs = [(DEFAULT_PRIORITY_STEPS[i], float(v)) for i, v in enumerate(raw)]
    else:
        raise TraceError("priorities: expected {step: share} or a list of shares")
    if any(s < 0 or v < 0 for s, v in pairs) or sum(v for _, v in pairs) <= 0:
        raise TraceError("priorities: steps and shares must be >= 0 with a positive total")
    total = sum(v for _, v in pairs)
    merged: dict[int, float] = {}
    for s, v in pairs:
        merged[s] = merged.get(s, 0.0) + v / total
    return tuple(sorted((s, v) for s, v in merged.items() if v > 0))
