"""One rendered /metrics body per (snapshot, format, encoding), shared by every concurrent
scrape.

Rendering thousands of series costs more than reading Redis does; when many scrapes
are answered from the same snapshot (single-flight, `exporter.snapshot_reuse_seconds`),
the first renders and the others wait for its body instead of rendering again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any, TypeVar

from exporter.snapshot import Snapshot

T = TypeVar("T")


class SharedBodies:
    """Bodies of the latest snapshot only, by format (a rendered Body, or its gzipped
    bytes); older snapshots' are dropped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snap: Snapshot | None = None
        self._bodies: dict[Hashable, Future[Any]] = {}
        # How many bodies were rendered (for tests and the benchmark).
        self.renders = 0

    def get(self, snap: Snapshot, fmt: Hashable, render: Callable[[], T]) -> T:
        with self._lock:
            if snap is not self._snap:
                self._snap, self._bodies = snap, {}
            fut = self._bodies.get(fmt)
            leader = fut is None
            if fut is None:
                fut = self._bodies[fmt] = Future()
                self.renders += 1
        if leader:
            try:
                fut.set_result(render())
            except BaseException as e:
                fut.set_exception(e)
                with self._lock:
                    if self._bodies.get(fmt) is fut:
                        del self._bodies[fmt]
                raise
        result: T = fut.result()
        return result
