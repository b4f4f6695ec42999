"""The Deployment cache: a list+watch informer for the configured batches' Deployments.

Scrapes must answer within a second even when the API server is slow or gone, so they
never call it: they read `DeploymentCache.state()`, which a background thread keeps
current. The thread lists the namespace once, then watches from the list's
resourceVersion (client-go's reflector, in small):

- a watch that ends cleanly (the server's timeout) is resumed from the last
  resourceVersion seen, events and bookmarks included;
- 410 Gone (history compacted) means events were missed: relist at once;
- any other failure (refused, cut, timed out, 403, 500) marks the cache down, keeps
  the last known values, and relists after a capped, jittered exponential backoff.

One watch covers all batches, filtered by name here; the requests and their JSON are
exporter/kube/api.py (plain `ApiClient.call_api`, no generated models).

The bearer token never leaves the client configuration: errors are summarised from the
exception type and the API's Status message, and scrubbed of the token anyway.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from batchctl.config import KubernetesConfig
from batchctl.kube import client_secrets, describe_error, new_api_client
from batchctl.log import get_logger
from exporter.kube.api import (
    GONE,
    DeploymentsApi,
    OpenWatch,
    deployment_from,
    name_of,
    resource_version,
    stream_lines,
    watch_event,
)
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


class _Gone(Exception):
    pass


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
        self._secrets = client_secrets(self._client)
        self._api = DeploymentsApi(self._client, cfg, self.names)
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._lock = threading.Lock()
        self._state = KubeState()
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._watch: OpenWatch | None = None
        self._thread: threading.Thread | None = None
        self._missing: set[str] = set()  # names already reported missing
        self._progressed = False  # the current watch has delivered an event

    # ------------------------------------------------------------------ public

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="batchctl-kube-cache", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stopping.set()
        limit = self.cfg.request_timeout_seconds + 1 if timeout is None else timeout
        deadline = time.monotonic() + limit
        while self._thread is not None and self._thread.is_alive():
            # OpenWatch.stop() shuts the socket down so a blocked read returns now;
            # a watch still waiting for its headers has no socket yet, so try again.
            w = self._watch
            if w is not None:
                w.stop()
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._thread.join(min(left, 0.05))
        if self._own_client:
            self._client.close()

    def state(self) -> KubeState:
        with self._lock:
            return self._state

    def wait_synced(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    # ------------------------------------------------------------------ loop

    def _run(self) -> None:
        backoff = self._backoff_initial
        gone_in_a_row = 0
        while not self._stopping.is_set():
            self._progressed = False
            try:
                rv = self._list()
                while not self._stopping.is_set():
                    rv = self._watch_once(rv)
                    gone_in_a_row = 0
                    backoff = self._backoff_initial
            except _Gone:
                if self._progressed:  # a healthy watch that simply expired
                    gone_in_a_row, backoff = 0, self._backoff_initial
                gone_in_a_row += 1
                log.info("watch expired, relisting", namespace=self.cfg.namespace)
                # A server that keeps answering 410 must not be hammered.
                if gone_in_a_row > 1 and self._pause(backoff):
                    return
                backoff = min(backoff * 2, self._backoff_max)
                continue
            except Exception as e:  # the thread must outlive any failure
                if self._stopping.is_set():
                    return
                # A watch that delivered events was healthy: start the backoff afresh.
                if self._progressed:
                    backoff = self._backoff_initial
                self._failed(e)
                if self._pause(backoff):
                    return
                backoff = min(backoff * 2, self._backoff_max)

    def _pause(self, seconds: float) -> bool:
        """Sleep with ±20% jitter; True if stopping."""
        return self._stopping.wait(seconds * random.uniform(0.8, 1.2))

    def _list(self) -> str:
        found, rv = self._api.list_deployments()
        for name in self.names:
            self._note_presence(name, name in found)
        self._succeeded(found)
        self._synced.set()
        return rv

    def _watch_once(self, rv: str) -> str:
        """Follow one watch request to its end and return the rv to resume from.

        Raises _Gone on 410 (an HTTP status or an ERROR event) and ApiException or
        whatever urllib3 raises otherwise."""
        w = OpenWatch()
        self._watch = w
        if self._stopping.is_set():
            return rv
        self._progressed = False
        try:
            raw = self._api.open_watch(w, rv)
            try:
                rv = self._follow(raw, rv)
            finally:
                raw.close()
                raw.release_conn()
        except ApiException as e:
            if e.status == GONE:
                raise _Gone from None
            raise
        finally:
            self._watch = None
        if not self._stopping.is_set():
            # A clean end of the stream is a successful watch.
            self._succeeded(None)
        return rv

    def _follow(self, raw: urllib3.HTTPResponse, rv: str) -> str:
        """Apply the stream's events until it ends; the last resourceVersion seen."""
        for line in stream_lines(raw):
            if self._stopping.is_set():
                break
            # ERROR events raise: 410 when the rv is compacted, anything else a failure.
            event = watch_event(line)
            if event is None:
                continue  # a blank or torn line
            kind, obj = event
            rv = resource_version(obj) or rv
            self._progressed = True
            self._apply(kind, obj)
        return rv

    def _apply(self, kind: Any, obj: Mapping[str, Any]) -> None:
        if kind == "BOOKMARK":
            self._succeeded(None)
            return
        name = name_of(obj)
        if name is None or name not in self.names:
            return
        with self._lock:
            deps = dict(self._state.deployments)
        if kind == "DELETED":
            deps.pop(name, None)
            self._note_presence(name, False)
        elif kind in ("ADDED", "MODIFIED"):
            deps[name] = deployment_from(obj)
            self._note_presence(name, True)
        else:
            return
        self._succeeded(deps)

    # ------------------------------------------------------------------ state

    def _succeeded(self, deployments: dict[str, Deployment] | None) -> None:
        with self._lock:
            was_up = self._state.up
            changes: dict[str, Any] = {"up": True, "error": None, "last_success": time.time()}
            if deployments is not None:
                changes["deployments"] = deployments
                changes["synced"] = True
            self._state = replace(self._state, **changes)
        if not was_up and self._state.synced:
            log.info(
                "kubernetes api reachable",
                namespace=self.cfg.namespace,
                deployments=sorted(self._state.deployments),
            )

    def _failed(self, exc: BaseException) -> None:
        error = describe_error(exc, self._secrets)
        with self._lock:
            was = self._state
            self._state = replace(was, up=False, error=error)
        # Warn on the way down and when the reason changes, not on every retry.
        if was.up or was.error != error:
            log.warning(
                "kubernetes api read failed; keeping last known deployments",
                namespace=self.cfg.namespace,
                error=error,
            )
        else:
            log.debug("kubernetes api still failing", namespace=self.cfg.namespace, error=error)

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
