"""The rules in order of precedence, tried until one decides.

Each rule is a small function of a `Tick` (autoscaler/policy/tick.py) that returns a
`Decision`, or None when it does not apply; they live by section in hands_off.py,
growth.py and shrink.py. `PRECEDENCE` is the order of the module docstring of
`autoscaler.policy`; its last step, `steady`, always decides.
"""

from __future__ import annotations

from collections.abc import Sequence

from autoscaler.policy.deadline import deadline, deadline_idle
from autoscaler.policy.gaps import from_zero_interval, idle_gap
from autoscaler.policy.growth import backlog, from_zero, replicas_behind, stranded
from autoscaler.policy.hands_off import manual_override, no_data, replicas_unknown
from autoscaler.policy.model import BatchObservation, BatchPolicy, BatchState, Decision
from autoscaler.policy.scalein import idle_replicas, spare_busy
from autoscaler.policy.shrink import (
    above_cap,
    drained,
    guard_shed,
    idle,
    idle_step_down,
    idle_to_zero,
    scheduled,
    step_down,
)
from autoscaler.policy.tick import Step, Tick
from autoscaler.policy.tracking import advance
from batchctl.reasons import Reason

# The rules by name, for a caller that swaps one (benchmarks/scale_down_pace.py).
__all__ = [
    "PRECEDENCE",
    "Step",
    "Tick",
    "above_cap",
    "backlog",
    "deadline",
    "deadline_idle",
    "decide_batch",
    "drained",
    "from_zero",
    "from_zero_interval",
    "guard_shed",
    "idle",
    "idle_gap",
    "idle_replicas",
    "idle_step_down",
    "idle_to_zero",
    "manual_override",
    "no_data",
    "replicas_behind",
    "replicas_unknown",
    "scheduled",
    "steady",
    "step_down",
    "stranded",
]


def steady(c: Tick) -> Decision:
    return c.keep(Reason.STEADY)


PRECEDENCE: tuple[Step, ...] = (
    no_data,
    replicas_unknown,
    manual_override,
    # A batch whose only work is scheduled keeps one replica for it (none of the drops
    # below takes it lower, and none of them applies while it holds).
    scheduled,
    # An idle batch's drops to min_replicas, before any paced step down: going lower at
    # once, they never mean more replicas for a lower cap or a shedding guard.
    deadline_idle,
    drained,
    idle_to_zero,
    idle_gap,
    above_cap,
    from_zero_interval,
    from_zero,
    stranded,
    guard_shed,
    deadline,
    backlog,
    idle_step_down,
    idle_replicas,
    step_down,
    idle,
    steady,
)


def decide_batch(
    obs: BatchObservation,
    before: BatchState,
    batch: BatchPolicy,
    now: float,
    precedence: Sequence[Step] = PRECEDENCE,
) -> tuple[Decision, BatchState]:
    """The batch's own decision before the shared budget, and its advanced state. A step
    down stops no busy replica where the busy map tells (autoscaler/policy/scalein.py)."""
    c = Tick(obs, before, advance(obs, before, batch, now), batch, now)
    for step in precedence:
        d = step(c)
        if d is not None:
            return spare_busy(c, d), c.tracked
    raise AssertionError("the last step of the precedence always decides")
