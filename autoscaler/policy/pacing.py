"""What it takes to finish a batch by a deadline: the fewest replicas, when it ends, what it
costs (pure arithmetic, no `Tick`).

One model serves the policy's pacing (autoscaler/policy/deadline.py, every tick),
`batchctl plan`, the check of `batchctl claim --finish-by` and the simulator's report:

- each replica completes `rate` tasks per second once it is ready (the measured pace per
  ready replica, or worker_concurrency / task_seconds from the config);
- replicas ready now work at once, replicas asked for but not ready yet after `startup`
  seconds; from `current`, the level is reached in steps of `step_up` every
  `step_interval` (the policy's pace), each new pod working `startup` seconds after it is
  asked for; a level below `current` applies at once (the plan is about the level);
- replica-seconds count replicas from when they are asked for, as Kubernetes bills pods.

The fewest replicas are those that finish with `SPARE` of the time left to spare:
arrivals after the plan, a slower task mix and pods that start late eat into it, and
the plan is made again at every tick from what is left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Plan to be done with this share of the time left to spare.
SPARE = 0.1
# No plan asks for more replicas than this (a deadline that needs more cannot be met).
MAX_PLAN_REPLICAS = 10_000
# How long a new pod takes to work, before the batch's own start-ups are measured.
DEFAULT_STARTUP_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Ramp:
    """Where the batch stands and how fast it may grow (the batch's config)."""

    current: int = 0  # replicas asked for now
    ready: int = 0  # of which ready
    step_up: int = 1
    step_interval: float = 60.0
    startup: float = DEFAULT_STARTUP_SECONDS


@dataclass(frozen=True, slots=True)
class Plan:
    """The fewest replicas that finish `work` in `seconds_left` (with SPARE), and at what
    cost. `replicas` is None when no number of replicas can (the ramp and the start-up
    alone take longer); `finish_seconds` and `replica_seconds` are for the replicas the
    cap allows (min(replicas, cap)), `earliest_seconds` for the cap itself."""

    work: int
    rate: float  # tasks per second per ready replica
    seconds_left: float
    cap: int
    replicas: int | None
    finish_seconds: float  # from now; inf: never (no rate, or no replica allowed)
    replica_seconds: float
    earliest_seconds: float

    @property
    def feasible(self) -> bool:
        """The cap allows the replicas the deadline needs."""
        return self.replicas is not None and self.replicas <= self.cap

    @property
    def within_cap(self) -> int:
        """The replicas to run: what the deadline needs, within the cap (the cap when no
        number suffices)."""
        return self.cap if self.replicas is None else min(self.replicas, self.cap)

    def to_json(self) -> dict[str, object]:
        def fin(x: float) -> float | None:
            return None if math.isinf(x) else round(x, 1)

        return {
            "work": self.work,
            "rate_per_replica": round(self.rate, 4),
            "seconds_left": round(self.seconds_left, 1),
            "cap": self.cap,
            "replicas": self.replicas,
            "feasible": self.feasible,
            "finish_seconds": fin(self.finish_seconds),
            "replica_seconds": fin(self.replica_seconds),
            "earliest_seconds": fin(self.earliest_seconds),
        }


def run_at(work: int, rate: float, level: int, ramp: Ramp) -> tuple[float, float]:
    """(seconds until `work` is done, replica-seconds until then) at `level` replicas,
    reached from `ramp.current` at the ramp's pace; (inf, inf) when it never is."""
    if work <= 0:
        return 0.0, 0.0
    if rate <= 0 or level <= 0:
        return math.inf, math.inf
    # (time, productive replicas added) and (time, replicas asked for added).
    working: list[tuple[float, int]] = []
    asked: list[tuple[float, int]] = []
    base = min(ramp.current, level)
    ready = min(ramp.ready, base)
    working.append((0.0, ready))
    working.append((ramp.startup, base - ready))
    asked.append((0.0, base))
    step, t = max(1, ramp.step_up), 0.0
    n = base
    while n < level:
        add = min(step, level - n)
        asked.append((t, add))
        working.append((t + ramp.startup, add))
        n += add
        t += ramp.step_interval
    working.sort()
    done, now, productive = 0.0, 0.0, 0
    finish = math.inf
    for at, add in [*working, (math.inf, 0)]:
        if productive > 0 and at > now:
            need = (work - done) / (rate * productive)
            if now + need <= at:
                finish = now + need
                break
            done += rate * productive * (at - now)
        now = max(now, at)
        productive += add
    if math.isinf(finish):
        return math.inf, math.inf
    spent = sum(add * (finish - at) for at, add in asked if at < finish)
    return finish, spent


def plan(work: int, rate: float | None, seconds_left: float, cap: int, ramp: Ramp) -> Plan:
    """The fewest replicas that finish `work` with SPARE of `seconds_left` to spare (see
    the module docstring), and what running them (within `cap`) takes and costs."""
    r = rate if rate is not None and rate > 0 else 0.0
    target = max(0.0, seconds_left) * (1.0 - SPARE)
    needed: int | None
    if work <= 0:
        needed = 0
    elif r <= 0 or target <= 0:
        needed = None
    else:
        needed = _fewest(work, r, target, ramp)
    level = cap if needed is None else min(needed, cap)
    finish, spent = run_at(work, r, level, ramp)
    earliest = run_at(work, r, cap, ramp)[0]
    return Plan(work, r, seconds_left, cap, needed, finish, spent, earliest)


def _fewest(work: int, rate: float, target: float, ramp: Ramp) -> int | None:
    """The fewest replicas that finish within `target`, or None (not even
    MAX_PLAN_REPLICAS). No level beats work / (rate x target), and a higher level never
    finishes later: search up from that bound by doubling, then bisect."""
    lo = max(1, math.ceil(work / (rate * target)))
    hi = lo
    while run_at(work, rate, hi, ramp)[0] > target:
        if hi >= MAX_PLAN_REPLICAS:
            return None
        lo, hi = hi + 1, min(MAX_PLAN_REPLICAS, hi * 2)
    while lo < hi:
        mid = (lo + hi) // 2
        if run_at(work, rate, mid, ramp)[0] <= target:
            hi = mid
        else:
            lo = mid + 1
    return hi
