"""`batchctl scale`: replicas set by hand by the claim's holder, through the configured backend.

The request is checked first (a configured batch, a count within the batch's caps, a
duration within claims.max_ttl, a live claim held by the caller, or `--force` with a
reason), then applied, then recorded as an override in the claim (and a `scaled` or
`forced` event in the history), which the snapshot carries to the autoscaler: its
`manual_override` step holds that count until the override ends, and says by whom.

- kubernetes: the Deployment's scale subresource is patched here, before the record,
  so a patch that fails changes nothing; the autoscaler then only keeps hands off.
  With the claims in Kubernetes (the CLI of an engineer, who may write Leases and not
  Deployments) only the record is written: the autoscaler applies it at its next tick.
- local: the workers are the autoscaler's own processes, so the record is the request:
  the autoscaler starts or warm-stops workers at its next tick.
- dry-run: recorded, and the dry-run autoscaler says what it would do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from autoscaler.policy import effective_cap
from batchctl.claims import ClaimConflict, ClaimRefused, Outcome, Refused
from batchctl.claims.rules import check_holder, check_ttl, decide_override
from batchctl.claims.store import ClaimStore
from batchctl.config import Config


class Scaler(Protocol):
    def set_replicas(self, deployment: str, n: int, *, expected: int | None = None) -> int: ...

    def close(self) -> None: ...


class ScaleFailed(Exception):
    """The backend did not take the new count; nothing was recorded. `not_found`: the
    batch's Deployment does not exist (a config error, not an outage)."""

    def __init__(self, message: str, not_found: bool = False) -> None:
        self.not_found = not_found
        super().__init__(message)


@dataclass(frozen=True)
class ManualScale:
    outcome: Outcome
    backend: str
    patched: bool  # the replicas were set here (kubernetes); else the autoscaler sets them


def check_request(cfg: Config, queue: str, replicas: int, for_seconds: float) -> None:
    """Pure checks: a configured batch, a count within its caps, a duration within
    claims.max_ttl. Raises ClaimRefused (exit 2)."""
    batch = cfg.batch(queue)
    if batch is None:
        names = ", ".join(b.queue for b in cfg.batches) or "(none)"
        raise ClaimRefused(f"queue {queue!r} is not a configured batch; configured: {names}")
    low, high = batch.min_replicas, effective_cap(batch)
    if not low <= replicas <= high:
        raise ClaimRefused(
            f"{queue} takes {low} to {high} replicas (batches[].min_replicas and "
            f"max_replicas), got {replicas}"
        )
    check_ttl(for_seconds, cfg.claims.max_ttl, what="--for")


def manual_scale(
    cfg: Config,
    store: ClaimStore,
    queue: str,
    replicas: int,
    for_seconds: float,
    holder: str,
    now: float,
    *,
    force: bool = False,
    reason: str = "",
    scaler: Scaler | None = None,
    patch: bool = True,
) -> ManualScale:
    """Check, apply (kubernetes, with `patch`) and record a manual scale. Raises
    ClaimRefused, ClaimConflict, Refused (nothing changed), StoreError, ScaleFailed and
    ConfigError (the Kubernetes client; nothing recorded). Without `patch` (the claims
    in Kubernetes: people may write Leases, not Deployments) only the record is written
    and the autoscaler sets the replicas at its next tick, as with the local backend."""
    check_request(cfg, queue, replicas, for_seconds)
    check_holder(holder)
    until = now + for_seconds
    # The same rule, read-only, before touching the Deployment: refusals change nothing.
    decide_override(
        store.get(queue), queue, holder, replicas, until, now, force=force, reason=reason
    )
    backend = cfg.autoscaler.backend
    patched = False
    if backend == "kubernetes" and patch:
        batch = cfg.batch(queue)
        assert batch is not None
        from autoscaler.backends.kubernetes import DeploymentNotFoundError, ScaleError

        own = scaler is None
        scaler = scaler if scaler is not None else _scale_client(cfg)
        try:
            scaler.set_replicas(batch.deployment, replicas)
            _tell(cfg, scaler, batch.deployment, replicas, holder, for_seconds, force, reason)
        except DeploymentNotFoundError as e:
            raise ScaleFailed(str(e), not_found=True) from None
        except ScaleError as e:
            raise ScaleFailed(str(e)) from None
        finally:
            if own:
                scaler.close()
        patched = True
    try:
        outcome = store.set_override(
            queue, holder, replicas, until, now, force=force, reason=reason
        )
    except (ClaimConflict, Refused) as e:
        if not patched:
            raise
        # The claim changed between the check and the record (a release, a takeover):
        # the Deployment has N replicas, but no override is recorded. Say both.
        raise Refused(
            f"{queue} was scaled to {replicas} replicas, but the claim changed meanwhile "
            f"and no override is recorded ({e}); the autoscaler treats it as a manual "
            "change by someone else"
        ) from None
    return ManualScale(outcome, backend, patched)


def _tell(
    cfg: Config,
    scaler: Scaler,
    deployment: str,
    replicas: int,
    holder: str,
    for_seconds: float,
    force: bool,
    reason: str,
) -> None:
    """A ManualScale Event on the Deployment, as the autoscaler records its own changes
    (`kubectl describe deployment` tells both); best effort."""
    from autoscaler.backends.events import EventRecorder
    from autoscaler.backends.kubernetes import ScaleClient
    from batchctl.units import format_duration

    if not isinstance(scaler, ScaleClient):
        return
    why = f"; forced: {reason}" if force else ""
    message = (
        f"batchctl scale: {replicas} replicas by {holder} for {format_duration(for_seconds)}"
        f"{why}; the autoscaler keeps hands off until then"
    )
    EventRecorder(scaler.api_client, cfg.kubernetes, holder).manual(
        deployment, scaler.uids.get(deployment), replicas, message
    )


def _scale_client(cfg: Config) -> Scaler:
    from autoscaler.backends.kubernetes import ScaleClient
    from batchctl.config import ConfigError
    from batchctl.kube import KubeConfigError

    if not cfg.kubernetes.enabled:
        # Named as the conflict it is, not as a kubeconfig that cannot be loaded.
        raise ConfigError(
            [
                "autoscaler.backend: kubernetes needs kubernetes.enabled: true, but "
                "kubernetes.enabled is false: enable Kubernetes, or set autoscaler.backend "
                "to dry-run or local"
            ],
            "config",
        )
    try:
        return ScaleClient(cfg.kubernetes)
    except KubeConfigError as e:
        raise ConfigError(
            [f"kubernetes: {e}; set kubernetes.kubeconfig (or KUBECONFIG), or run in a pod"],
            "kubernetes",
        ) from None
