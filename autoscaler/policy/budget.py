"""The shared budget (`autoscaler.global_max_replicas`), applied after every batch decided."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from autoscaler.policy.model import Decision
from batchctl.reasons import Action, Reason


def apply_budget(proposals: Sequence[Decision], budget: int) -> list[Decision]:
    """Share the global budget: scale-ups are granted one replica at a time, smallest first.

    Decisions that do not grow keep their count and use budget first; the remaining room
    goes to growing batches by max-min fairness (the batch with the fewest replicas gets
    the next one, ties by queue name). A growing batch that gets less than it asked for
    says `budget` (up if it got some, hold if none). The budget never forces a batch down.
    """
    ups = [p for p in proposals if p.desired > p.current]
    if not ups:
        return list(proposals)
    used = sum(p.desired for p in proposals if p.desired <= p.current)
    granted = {p.queue: p.current for p in ups}
    room = budget - used - sum(granted.values())
    while room > 0:
        wanting = [p for p in ups if granted[p.queue] < p.desired]
        if not wanting:
            break
        pick = min(wanting, key=lambda p: (granted[p.queue], p.queue))
        granted[pick.queue] += 1
        room -= 1
    out = []
    for p in proposals:
        if p.desired > p.current and granted[p.queue] < p.desired:
            got = granted[p.queue]
            action = Action.UP if got > p.current else Action.HOLD
            detail = f"global budget {budget} shared; wanted {p.desired}"
            p = replace(p, desired=got, reason=Reason.BUDGET, action=action, detail=detail)
        out.append(p)
    return out
