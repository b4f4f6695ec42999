"""Which queue a worker consumes, from its Celery node name (pure).

Celery's task events name the worker (`hostname`, the node name `name@host`) but not
the queue: only `task-sent` carries it, and producers send that event only with
`task_send_sent_event` (docs/design.md, "Celery events"). Batch workers are one
Deployment per batch, so their node names say which batch they serve:

- `batch1@...` or `batch1-3@...`: the name part is the queue, or starts with it and a
  dash (`--hostname batch1@%h`, what k8s/overlays/example/workers.yaml passes; the
  local backend's `batch1-<token>-<n>@%h`);
- `celery@celery-batch1-6d9f8c7b5-x2x4q`: Celery's default name `celery@%h` in a pod,
  whose host name is the pod's, `<deployment>-<replicaset hash>-<suffix>`.

A worker that matches neither keeps the queue of the tasks it ran when their
`task-sent` event named it, else it is `unknown`.
"""

from __future__ import annotations

from collections.abc import Mapping

from celery.utils.nodenames import nodesplit


class WorkerNames:
    """Node name -> configured batch queue, remembered per node (a few dozen at most)."""

    def __init__(self, batches: Mapping[str, str], cache_size: int = 4096) -> None:
        """`batches` maps each configured queue to its Deployment's name."""
        self._by_queue = dict(batches)
        # Longest queue names first, as for Deployments below.
        self._queues = sorted(batches, key=len, reverse=True)
        # Longest Deployment names first: celery-batch1 must not claim celery-batch10's pods.
        self._deployments = sorted(
            ((d, q) for q, d in batches.items()), key=lambda dq: len(dq[0]), reverse=True
        )
        self._cache: dict[str, str | None] = {}
        self._cache_size = cache_size

    def queue_of(self, node: str) -> str | None:
        """The configured queue whose worker `node` is, or None when its name does not say."""
        try:
            return self._cache[node]
        except KeyError:
            pass
        found = self._match(node)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()  # a flood of made-up names must not grow memory
        self._cache[node] = found
        return found

    def _match(self, node: str) -> str | None:
        name, host = nodesplit(node)
        if name is not None:
            if name in self._by_queue:
                return name
            for queue in self._queues:
                if name.startswith(queue + "-"):
                    return queue
        for deployment, queue in self._deployments:
            if host.startswith(deployment + "-"):
                return queue
        return None
