"""A list+watch cache of one collection of a namespace: client-go's reflector, in small.

Readers must answer at once even when the API server is slow or gone, so they never
call it: they read `Reflector.state()`, which a background thread keeps current. The
thread lists the collection once, then watches from the list's resourceVersion:

- a watch that ends cleanly (the server's timeout) is resumed from the last
  resourceVersion seen, events and bookmarks included;
- 410 Gone (history compacted) means events were missed: relist at once;
- any other failure (refused, cut, timed out, 403, 500) marks the cache down, keeps
  the last known objects, and relists after a capped, jittered exponential backoff.

The requests and their JSON are batchctl/kuberest.py (plain `ApiClient.call_api`, no
generated models). Users: the exporter's Deployment cache (exporter/kube/informer.py)
and the claims' Lease cache (batchctl/claims/lease_cache.py). The bearer token never
leaves the client configuration: errors are summarised by `describe_error`.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from batchctl.config import KubernetesConfig
from batchctl.kube import client_secrets, describe_error
from batchctl.kuberest import (
    GONE,
    OpenWatch,
    as_dict,
    call_json,
    name_of,
    open_watch,
    resource_version,
    stream_lines,
    watch_event,
)
from batchctl.log import get_logger

log = get_logger("batchctl.kube")
T = TypeVar("T")


@dataclass(frozen=True)
class WatchState(Generic[T]):
    """What the cache knows. `items` (by name) keeps the last known values while down."""

    items: dict[str, T] = field(default_factory=dict)
    up: bool = False  # True while the last list/watch request succeeded
    error: str | None = None  # the last failure while down; never holds a token
    synced: bool = False  # a first list has succeeded
    last_success: float | None = None  # time.time() of the last good list or watch event


class _Gone(Exception):
    pass


# What a change was, for the `on_change` hook: a (re)list, or a watch event's type.
LISTED = "LISTED"


class Reflector(Generic[T]):
    """A list+watch cache of the objects at `path` (a namespaced collection, e.g.
    /apis/coordination.k8s.io/v1/namespaces/NS/leases), each kept as `convert(obj)`
    when `wanted(name)`. `on_change(kind, names)` runs on the cache's thread after each
    list (LISTED, the names found) or applied event (ADDED, MODIFIED, DELETED, and its
    name). `start()` runs it in a daemon thread; `state()` is cheap and never blocks."""

    def __init__(
        self,
        api_client: client.ApiClient,
        cfg: KubernetesConfig,
        path: str,
        convert: Callable[[Mapping[str, Any]], T],
        *,
        what: str,
        wanted: Callable[[str], bool] = lambda name: True,
        query: list[tuple[str, Any]] | None = None,
        on_change: Callable[[str, list[str]], None] | None = None,
        on_up: Callable[[WatchState[T]], None] | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        thread_name: str = "batchctl-kube-cache",
    ) -> None:
        self.cfg = cfg
        self.path = path
        self.what = what
        self._client = api_client
        self._convert = convert
        self._wanted = wanted
        self._query = list(query or [])
        self._on_change = on_change
        self._on_up = on_up
        self._secrets = client_secrets(api_client)
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._thread_name = thread_name
        self._lock = threading.Lock()
        self._state: WatchState[T] = WatchState()
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._watch: OpenWatch | None = None
        self.thread: threading.Thread | None = None
        self._progressed = False  # the current watch has delivered an event

    # ------------------------------------------------------------------ public

    def start(self) -> None:
        if self.thread is not None:
            return
        self.thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
        self.thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stopping.set()
        limit = self.cfg.request_timeout_seconds + 1 if timeout is None else timeout
        deadline = time.monotonic() + limit
        while self.thread is not None and self.thread.is_alive():
            # OpenWatch.stop() shuts the socket down so a blocked read returns now;
            # a watch still waiting for its headers has no socket yet, so try again.
            w = self._watch
            if w is not None:
                w.stop()
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.thread.join(min(left, 0.05))

    def state(self) -> WatchState[T]:
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
                log.info("watch expired, relisting", namespace=self.cfg.namespace, what=self.what)
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
        body = as_dict(
            call_json(
                self._client,
                "GET",
                self.path,
                timeout=self.cfg.request_timeout_seconds,
                query=list(self._query),
            )
        )
        items = body.get("items") or []
        found = {
            name: self._convert(item)
            for item in items
            if (name := name_of(item)) is not None and self._wanted(name)
        }
        self._succeeded(found)
        self._synced.set()
        if self._on_change is not None:
            self._on_change(LISTED, sorted(found))
        return str(as_dict(body.get("metadata")).get("resourceVersion") or "")

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
            raw = open_watch(
                self._client,
                self.path,
                w,
                rv,
                request_timeout=self.cfg.request_timeout_seconds,
                watch_timeout=self.cfg.watch_timeout_seconds,
                query=self._query,
            )
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
        if name is None or not self._wanted(name) or kind not in ("ADDED", "MODIFIED", "DELETED"):
            return
        with self._lock:
            items = dict(self._state.items)
        if kind == "DELETED":
            items.pop(name, None)
        else:
            items[name] = self._convert(obj)
        self._succeeded(items)
        if self._on_change is not None:
            self._on_change(kind, [name])

    # ------------------------------------------------------------------ state

    def _succeeded(self, items: dict[str, T] | None) -> None:
        with self._lock:
            was_up = self._state.up
            changes: dict[str, Any] = {"up": True, "error": None, "last_success": time.time()}
            if items is not None:
                changes["items"] = items
                changes["synced"] = True
            self._state = replace(self._state, **changes)
            state = self._state
        if not was_up and state.synced and self._on_up is not None:
            self._on_up(state)

    def _failed(self, exc: BaseException) -> None:
        error = describe_error(exc, self._secrets)
        with self._lock:
            was = self._state
            self._state = replace(was, up=False, error=error)
        # Warn on the way down and when the reason changes, not on every retry.
        if was.up or was.error != error:
            log.warning(
                f"kubernetes api read failed; keeping last known {self.what}",
                namespace=self.cfg.namespace,
                error=error,
            )
        else:
            log.debug(
                "kubernetes api still failing",
                namespace=self.cfg.namespace,
                what=self.what,
                error=error,
            )


__all__ = ["LISTED", "Reflector", "WatchState"]
