"""Never fight another controller: a batch whose Deployment an HPA or KEDA scales is held.

Two controllers writing one Deployment's replicas undo each other every few seconds.
Before any replica write (every tick, with the kubernetes backend) the autoscaler asks
the backend which Deployments another controller scales (autoscaler/backends/
controllers.py lists HorizontalPodAutoscalers and KEDA ScaledObjects). Such a batch is
held (`other_controller`, naming the controller) while the others go on; the backend
puts an Event on the Deployment the first time. Pure: `hold_for_others` rewrites the
decisions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from autoscaler.policy import Action, Decision, Reason

_BLIND = (Reason.NO_DATA, Reason.REPLICAS_UNKNOWN)


def hold_for_others(
    decisions: Sequence[Decision],
    deployments: Mapping[str, str],
    found: Mapping[str, Sequence[str]] | None,
    error: str | None = None,
) -> list[Decision]:
    """`decisions` with every batch that another controller scales held
    (`other_controller`, whatever it decided: the batch is not ours to scale). With
    `found` None (the lists failed: `error`), a batch that would change is held
    (`controllers_unknown`) and the others stand. Blind decisions (no data, replicas
    unknown) are left as they are. `deployments`: queue -> Deployment."""
    out = []
    for d in decisions:
        dep = deployments.get(d.queue)
        if d.reason in _BLIND or dep is None:
            out.append(d)
        elif found is None:
            if not d.changed:
                out.append(d)
                continue
            out.append(
                replace(
                    d,
                    desired=d.current,
                    action=Action.HOLD,
                    reason=Reason.CONTROLLERS_UNKNOWN,
                    detail=f"would go {d.current} -> {d.desired} ({d.reason}), but whether an "
                    f"HPA or KEDA scales {dep} cannot be read: {error}",
                )
            )
        elif found.get(dep):
            who = " and ".join(found[dep])
            out.append(
                replace(
                    d,
                    desired=d.current,
                    action=Action.HOLD,
                    reason=Reason.OTHER_CONTROLLER,
                    detail=f"{who} scales Deployment {dep}: hands off (remove it, or take "
                    "the batch out of batches[])",
                )
            )
        else:
            out.append(d)
    return out
