"""The claim Leases as the exporter and the sidecar read them: a watch, not a poll.

A `ClaimReader` over a list+watch cache of the namespace's claim Leases (batchctl/
kubewatch.py, by the label selector of batchctl/claims/lease_record.py): `all()`, read
at every collection, costs no request; a change reaches the cache within the watch's
latency. While the watch is down (or before its first list) the claims are unknown:
`all()` raises StoreUnavailable, the snapshot says so (claims_error) and the autoscaler
holds rather than scale on claims it cannot see. The history (page views of /status,
`recent`) reads the ring through the API and the Leases' own events from the cache.

The sidecar's history mirror (autoscaler/claimmirror.py) takes every event the Leases
carry from here (`outboxes`), and is woken by `on_change` at each change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kubernetes import client

from batchctl.claims.errors import StoreUnavailable
from batchctl.claims.history import HistoryRead, newest, select
from batchctl.claims.lease_record import SELECTOR, merge_events, outbox_of
from batchctl.claims.lease_store import LEASES, LeaseClaimStore, claims_of
from batchctl.claims.record import Claim
from batchctl.config import KubernetesConfig
from batchctl.kube import new_api_client
from batchctl.kubewatch import Reflector

Lease = Mapping[str, Any]


class LeaseCache:
    """A `ClaimReader` kept current by a watch of the claim Leases; `start()` first."""

    def __init__(
        self,
        cfg: KubernetesConfig,
        api_client: client.ApiClient | None = None,
        *,
        history_max_events: int = 10_000,
        on_change: Callable[[], None] | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.cfg = cfg
        self._own_client = api_client is None
        self._client = api_client if api_client is not None else new_api_client(cfg)
        self._on_change = on_change
        # Reads of the ring (page views) and its errors, through the store's code.
        self._store = LeaseClaimStore(cfg, self._client, history_max_events=history_max_events)
        self._reflector: Reflector[Lease] = Reflector(
            self._client,
            cfg,
            LEASES.format(namespace=cfg.namespace),
            dict,
            what="claim leases",
            query=[("labelSelector", SELECTOR)],
            on_change=lambda kind, names: self._changed(),
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            thread_name="batchctl-claim-leases",
        )

    def start(self) -> LeaseCache:
        self._reflector.start()
        return self

    def wait_synced(self, timeout: float | None = None) -> bool:
        return self._reflector.wait_synced(timeout)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def leases(self) -> list[Lease]:
        """The claim Leases as last seen; StoreUnavailable while the watch is down."""
        state = self._reflector.state()
        if not (state.synced and state.up):
            why = state.error or "the first list has not answered yet"
            raise StoreUnavailable(
                f"cannot reach the API server for the claim Leases in {self.cfg.namespace}: {why}"
            )
        return list(state.items.values())

    # -- ClaimReader -----------------------------------------------------------------

    def get(self, queue: str) -> Claim | None:
        return self.all([queue])[queue]

    def all(self, queues: Iterable[str]) -> dict[str, Claim | None]:
        return claims_of(self.leases(), queues)

    def history(self, queue: str | None = None, since: float | None = None) -> HistoryRead:
        return select(self._events(), queue, since)

    def recent(self, count: int) -> HistoryRead:
        return newest(self._events(), count)

    def outboxes(self) -> HistoryRead:
        """Every event the Leases carry (not yet in the ring, or already), oldest first."""
        return merge_events(outbox_of(lease) for lease in self.leases())

    def _events(self) -> HistoryRead:
        return merge_events([self._store.ring_history(), self.outboxes()])

    def close(self) -> None:
        self._reflector.stop()
        if self._own_client:
            self._client.close()


__all__ = ["LeaseCache"]
