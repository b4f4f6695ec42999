"""The fake API server's objects, their resourceVersions and history, and the watchers
that are told of every change: one resourceVersion counter for all objects, as etcd's
revision is."""

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support.fakekube.errors import not_found
from tests.support.fakekube.routes import JSON, KINDS

END = "end"  # a watcher's stream ends cleanly (timeout, end_watches)
EXPIRE = "expire"  # a watcher gets a 410 ERROR event, then the stream ends
CUT = "cut"  # the connection is cut without a final chunk (down/stop)


@dataclass(eq=False)
class Watcher:
    resource: str
    namespace: str | None
    match: Callable[[JSON], bool]
    bookmarks: bool
    events: queue.Queue[JSON | str] = field(default_factory=queue.Queue)


class Store:
    """Objects by resource and (namespace, name); every change gets the next
    resourceVersion, goes to the history (what a watch from an older one replays) and
    to the open watches that select it. Callers hold `_lock` around changes."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._rv = 1000
        self._compacted = 0  # watches from a resourceVersion below this get 410
        self._objects: dict[str, dict[tuple[str, str], JSON]] = {r: {} for r in KINDS}
        self._history: list[tuple[int, str, str, JSON]] = []  # (rv, resource, type, obj)
        self._watchers: set[Watcher] = set()

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    def _store(self, resource: str, obj: JSON, *, created: bool = False) -> int:
        """Save obj with a new resourceVersion and tell the watchers. Lock held."""
        rv = self._next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        self._objects[resource][key] = obj
        self._emit(resource, "ADDED" if created else "MODIFIED", obj)
        return rv

    def _delete(self, resource: str, ns: str, name: str) -> JSON:
        obj = self._objects[resource].pop((ns, name), None)
        if obj is None:
            raise not_found(resource, name)
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self._next_rv())
        self._emit(resource, "DELETED", obj)
        return obj

    def _emit(self, resource: str, type_: str, obj: JSON) -> None:
        rv = int(obj["metadata"]["resourceVersion"])
        snapshot = copy.deepcopy(obj)
        self._history.append((rv, resource, type_, snapshot))
        for w in self._watchers:
            if w.resource == resource and self._visible(w, snapshot):
                w.events.put({"type": type_, "object": snapshot})

    @staticmethod
    def _visible(w: Watcher, obj: JSON) -> bool:
        if w.namespace is not None and obj["metadata"]["namespace"] != w.namespace:
            return False
        return w.match(obj)

    def _bookmark_event(self, resource: str) -> JSON:
        kind, _, api_version = KINDS[resource]
        return {
            "type": "BOOKMARK",
            "object": {
                "kind": kind,
                "apiVersion": api_version,
                "metadata": {"resourceVersion": str(self._rv)},
            },
        }
