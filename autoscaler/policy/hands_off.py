"""The rules that leave the count alone, first in the precedence: no data, no replica
count, or someone else set the replicas (a manual change, or the holder's `batchctl
scale`)."""

from __future__ import annotations

from autoscaler.policy.model import Decision
from autoscaler.policy.tick import Tick
from batchctl.reasons import Reason
from batchctl.units import format_duration


def no_data(c: Tick) -> Decision | None:
    if c.obs.data_ok:
        return None
    return c.keep(Reason.NO_DATA, c.obs.why or "broker unreachable or snapshot stale")


def replicas_unknown(c: Tick) -> Decision | None:
    if c.obs.replicas_known:
        return None
    return c.keep(Reason.REPLICAS_UNKNOWN, c.obs.why or "the Deployment's replicas are unknown")


def manual_override(c: Tick) -> Decision | None:
    until = c.tracked.override_until
    if until is not None and c.now < until:
        detail = f"replicas set to {c.current} by someone else; hands off for {until - c.now:.0f}s"
        return c.keep(Reason.MANUAL_OVERRIDE, detail)
    o = c.override
    if o is None:
        return None
    # The holder's `batchctl scale`: that many replicas until it ends. The Kubernetes
    # backend's CLI has usually set them already; the local backend's workers are the
    # autoscaler's, so it applies them. Within the caps as they are now.
    target = max(c.batch.min_replicas, min(o.replicas, c.cap))
    left = format_duration(o.until - c.now)
    detail = f"{o.replicas} replicas set by {o.by} (batchctl scale) for {left} more"
    if o.reason:
        detail += f": {o.reason}"
    if target != o.replicas:
        detail += f"; within the caps now: {target}"
    return c.to(target, Reason.MANUAL_OVERRIDE, detail)
