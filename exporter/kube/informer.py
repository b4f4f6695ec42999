"""The Deployment cache: a list+watch informer for the configured batches' Deployments.

Scrapes must answer within a second even when the API server is slow or gone, so they
never call it: they read `DeploymentCache.state()`, which a background thread keeps
current: the core's reflector (batchctl/kubewatch.py: list, then watch from the list's
resourceVersion, relist on 410 Gone, keep the last known values and back off on any
other failure). One watch covers all batches, filtered by name; the collection, its
query and the fields kept are exporter/kube/api.py.

The bearer token never leaves the client configuration: errors are summarised from the
exception type and the API's Status message, and scrubbed of the token anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from kubernetes import client

from batchctl.config import KubernetesConfig
from batchctl.kube import new_api_client
from batchctl.kubewatch import LISTED, Reflector, WatchState
from batchctl.log import get_logger
from exporter.kube.api import deployment_from, deployments_path, deployments_query
from exporter.snapshot import Deployment

log = get_logger("batchctl.kube")


@dataclass(frozen=True)
class KubeState:
    """What the cache knows. `deployments` keeps the last known values while down."""

    deployments: dict[str, Deployment] = field(default_factory=dict)
    up: bool = False  # True while the last list/watch request succeeded
    error: str | None = None  # the last failure while down; never holds a token
    synced: bool = False  # a first list has succeeded
    last_success: float | None = None  # time.time() of the last good list or watch event


class DeploymentCache:
    """A list+watch cache of the named Deployments in `cfg.namespace`.

    `start()` runs it in a daemon thread; `state()` is cheap and never blocks on I/O.
    """

    def __init__(
        self,
        cfg: KubernetesConfig,
        names: Sequence[str],
        api_client: client.ApiClient | None = None,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.cfg = cfg
        self.names = frozenset(names)
        self._own_client = api_client is None
        self._client = api_client if api_client is not None else new_api_client(cfg)
        self._missing: set[str] = set()  # names already reported missing
        self._reflector: Reflector[Deployment] = Reflector(
            self._client,
            cfg,
            deployments_path(cfg.namespace),
            deployment_from,
            what="deployments",
            wanted=self.names.__contains__,
            query=deployments_query(self.names),
            on_change=self._changed,
            on_up=self._reachable,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
        )

    # ------------------------------------------------------------------ public

    @property
    def _thread(self) -> threading.Thread | None:
        return self._reflector.thread

    def start(self) -> None:
        self._reflector.start()

    def stop(self, timeout: float | None = None) -> None:
        self._reflector.stop(timeout)
        if self._own_client:
            self._client.close()

    def state(self) -> KubeState:
        s = self._reflector.state()
        return KubeState(s.items, s.up, s.error, s.synced, s.last_success)

    def wait_synced(self, timeout: float | None = None) -> bool:
        return self._reflector.wait_synced(timeout)

    # ------------------------------------------------------------------ hooks

    def _reachable(self, state: WatchState[Deployment]) -> None:
        log.info(
            "kubernetes api reachable",
            namespace=self.cfg.namespace,
            deployments=sorted(state.items),
        )

    def _changed(self, kind: str, names: list[str]) -> None:
        if kind == LISTED:
            for name in self.names:
                self._note_presence(name, name in names)
        else:
            for name in names:
                self._note_presence(name, kind != "DELETED")

    def _note_presence(self, name: str, present: bool) -> None:
        if present and name in self._missing:
            self._missing.discard(name)
            log.info("deployment found", deployment=name, namespace=self.cfg.namespace)
        elif not present and name not in self._missing:
            self._missing.add(name)
            log.warning(
                "deployment not found; its replicas are not exported",
                deployment=name,
                namespace=self.cfg.namespace,
            )
