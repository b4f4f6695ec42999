"""Observe-only batches (`batches[].autoscale: false`): the policy decides for them as for
any other, and the loop turns each change into a hold (`observe_only`) that is reported
and logged, never applied. Done in the loop, not in the policy, so that the policy's
decision is exactly the one it would act on.
"""

from __future__ import annotations

from dataclasses import replace

from autoscaler.policy import Action, Decision, Reason
from batchctl.config import Config
from batchctl.log import get_logger

log = get_logger("batchctl.autoscaler")


class ObserveOnly:
    """Holds the changes of observe-only batches, logging each would-be change once."""

    def __init__(self) -> None:
        # The last would-be change logged per batch: (from, to, reason).
        self._logged: dict[str, tuple[int, int, str]] = {}

    def __call__(self, cfg: Config, d: Decision) -> Decision:
        """`d` itself, or the hold that replaces its change (then not applied: the caller
        reports it with PolicyState.change_not_applied)."""
        batch = cfg.batch(d.queue)
        if batch is None or batch.autoscale or not d.changed:
            self._logged.pop(d.queue, None)
            return d
        would = (d.current, d.desired, str(d.reason))
        if self._logged.get(d.queue) != would:
            self._logged[d.queue] = would
            log.info(
                "observe only: would scale",
                queue=d.queue,
                replicas_from=d.current,
                replicas_to=d.desired,
                reason=str(d.reason),
                detail=d.detail,
            )
        return replace(
            d,
            desired=d.current,
            action=Action.HOLD,
            reason=Reason.OBSERVE_ONLY,
            detail=f"observe only: would go {d.current} -> {d.desired} ({d.reason}): {d.detail}",
        )
