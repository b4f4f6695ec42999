"""The claim history that survives, kept by the leading sidecar (claims.store: kubernetes).

People change claims through their own kubeconfig, and RBAC lets them write Leases, not
the history: each change carries its event inside the batch's Lease (batchctl/claims/
lease_record.py, the newest 20). This sidecar, while it leads, watches the claim Leases
and copies every event it has not copied yet into the history ring (batchctl/claims/
ring.py: ConfigMaps only its service account writes) and onto the batch's Deployment as
a Kubernetes Event (reason Claimed, Released, ClaimForced..., dated when it happened),
so `kubectl describe deployment celery-batch1` tells the story beside the scale
changes. It runs at every change the watch delivers and every `RESYNC_SECONDS` besides
(a missed wake-up, a new leader catching up).

An event older than everything the ring still keeps is not copied (the ring would drop
it first); an event already in the ring (by id) never twice, whoever leads. A failure
(the API server down, a 403) is logged and the next round tries again: the events wait
in the Leases meanwhile.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client

from autoscaler.backends.events import EventRecorder
from autoscaler.leadership import Leadership
from batchctl.claims.errors import StoreError
from batchctl.claims.history import ClaimEvent
from batchctl.claims.lease_cache import LeaseCache
from batchctl.claims.ring import HistoryRing
from batchctl.claims.text import EVENT_REASONS, event_story
from batchctl.config import Config
from batchctl.kube import client_secrets, describe_error, new_api_client
from batchctl.kuberest import as_dict, call_json
from batchctl.log import get_logger

log = get_logger("batchctl.claims")

RESYNC_SECONDS = 60.0
_DEPLOYMENTS = "/apis/apps/v1/namespaces/{namespace}/deployments"


class ClaimMirror:
    """Copies the claim Leases' events into the ring and onto the Deployments while
    `leadership` says we lead (None: always). `start()` runs it in a thread."""

    def __init__(
        self,
        cfg: Config,
        leadership: Leadership | None = None,
        api_client: client.ApiClient | None = None,
        *,
        resync_seconds: float = RESYNC_SECONDS,
        instance: str | None = None,
        backoff_initial: float = 0.5,
    ) -> None:
        self.cfg = cfg
        self.leadership = leadership
        self.resync_seconds = resync_seconds
        self._own_client = api_client is None
        self._client = api_client if api_client is not None else new_api_client(cfg.kubernetes)
        self._secrets = client_secrets(self._client)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.cache = LeaseCache(
            cfg.kubernetes,
            self._client,
            history_max_events=cfg.claims.history_max_events,
            on_change=self._wake.set,
            backoff_initial=backoff_initial,
        )
        self.ring = HistoryRing(
            self._client,
            cfg.kubernetes.namespace,
            cfg.kubernetes.request_timeout_seconds,
            max_events=cfg.claims.history_max_events,
        )
        instance = instance or os.environ.get("POD_NAME") or socket.gethostname()
        self.recorder = EventRecorder(self._client, cfg.kubernetes, instance)
        self._uids: dict[str, str] = {}
        self._copied: set[str] = set()  # ids known to be in the ring
        self.copied = 0  # events copied into the ring by this process
        self.error: str | None = None  # the last round's failure, None after a good one

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> ClaimMirror:
        self.cache.start()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="claim-mirror", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.cfg.kubernetes.request_timeout_seconds * 4 + 5)
        self.cache.close()
        if self._own_client:
            self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.resync_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            if self.leadership is not None and not self.leadership.is_leader():
                continue
            try:
                self.sync()
            except Exception:  # a bug: logged, and the next round tries again
                log.exception("claim history mirror failed")

    # -- one round ---------------------------------------------------------------------

    def sync(self) -> list[ClaimEvent]:
        """Copy what the Leases carry and the ring lacks; the events copied (each also
        recorded on its Deployment). Failures are logged and leave `error` set."""
        try:
            carried = self.cache.outboxes().events
            fresh = [e for e in carried if e.id and e.id not in self._copied]
            copied: list[ClaimEvent] = []
            if fresh:
                ring = self.ring.read()
                have = ring.ids
                oldest = ring.oldest_at if ring.full else None
                copied = [
                    e for e in fresh if e.id not in have and (oldest is None or e.at >= oldest)
                ]
                if copied:
                    self.ring.append(copied)
            # Bounded: what the Leases carry now (older ids can no longer come back).
            self._copied = {e.id for e in carried}
        except StoreError as failure:
            if str(failure) != self.error:
                log.warning("cannot copy the claim events into the history", error=str(failure))
            self.error = str(failure)
            return []
        self.error = None
        for event in copied:
            self._record(event)
        self.copied += len(copied)
        return copied

    def _record(self, e: ClaimEvent) -> None:
        deployment = self._deployments().get(e.queue)
        if deployment is None:
            return  # a batch no longer configured: the ring keeps its story
        reason, type_ = EVENT_REASONS.get(e.kind, ("ClaimChanged", "Normal"))
        self.recorder.claim(deployment, self._uid(deployment), reason, event_story(e), type_, e.at)

    def _deployments(self) -> Mapping[str, str]:
        return {b.queue: b.deployment for b in self.cfg.batches}

    def _uid(self, deployment: str) -> str | None:
        """The Deployment's uid (kubectl describe matches Events by it), listed once."""
        if deployment in self._uids:
            return self._uids[deployment]
        try:
            body = as_dict(
                call_json(
                    self._client,
                    "GET",
                    _DEPLOYMENTS.format(namespace=self.cfg.kubernetes.namespace),
                    timeout=self.cfg.kubernetes.request_timeout_seconds,
                    query=[("fieldSelector", f"metadata.name={deployment}")],
                )
            )
        except Exception as e:
            error = describe_error(e, self._secrets)
            log.debug("deployment uid unknown", deployment=deployment, error=error)
            return None
        items: list[Any] = body.get("items") or []
        uid = as_dict(as_dict(items[0]).get("metadata")).get("uid") if items else None
        if isinstance(uid, str):
            self._uids[deployment] = uid
            return uid
        return None


def build_mirror(
    cfg: Config, leadership: Leadership | None, backend: str
) -> tuple[ClaimMirror | None, Callable[[], None]]:
    """The mirror for a sidecar whose claims are Leases (and that may write: not
    dry-run), started; None otherwise. The second value stops it."""
    if cfg.claims.store != "kubernetes" or backend == "dry-run":
        return None, lambda: None
    mirror = ClaimMirror(cfg, leadership).start()
    return mirror, mirror.stop


__all__ = ["RESYNC_SECONDS", "ClaimMirror", "build_mirror"]
