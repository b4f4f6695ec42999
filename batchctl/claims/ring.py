"""The claim history that survives: a ring of ConfigMaps in batchctl's namespace.

Each Lease carries its batch's newest events (batchctl/claims/lease_record.py, at most
20); the leading autoscaler sidecar copies every event into this ring as soon as it sees
it (autoscaler/claimmirror.py), so the history outlives the Leases' short memory and
nobody but batchctl's service account can write it (people read it with `get` on these
names: the Role batchctl-viewer).

The ring is `RING_SEGMENTS` ConfigMaps, `batchctl-claim-history-0` .. `-9`, each holding
events as JSON lines under the key `events.jsonl` and its place in the ring as the
annotation `batchctl.io/ring-generation` (1, 2, 3...: the newest segment has the
highest). Events are appended to the newest segment until it holds `per_segment`
events (claims.history_max_events / 10) or `SEGMENT_MAX_BYTES`; then the next index,
with the next generation, replaces the oldest segment. So the ring keeps at least the
newest 90% of min(claims.history_max_events, ~4,000 events of the largest size):
with the default 10,000 and events of typical size, over 9,000 entries, years of
claims at a site's pace, and never fewer than 1,000 while history_max_events is at
least 1,112. Every write carries the segment's resourceVersion (a create, none): a
writer that lost a race re-reads and tries again, and an event already in the ring (by
id) is never written twice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from batchctl.claims.errors import StoreFault
from batchctl.claims.history import ClaimEvent, HistoryRead
from batchctl.claims.kube_errors import api_error
from batchctl.claims.lease_record import entries_read, event_entry
from batchctl.kube import client_secrets
from batchctl.kuberest import CONFLICT, NOT_FOUND, as_dict, call_json

RING_SEGMENTS = 10
SEGMENT_NAME = "batchctl-claim-history-{index}"
KEY = "events.jsonl"
GENERATION = "batchctl.io/ring-generation"
LABELS = {"app.kubernetes.io/name": "batchctl", "app.kubernetes.io/component": "claim-history"}
# Half of a ConfigMap's 1 MiB: room to spare for the largest event.
SEGMENT_MAX_BYTES = 512 * 1024
_PATH = "/api/v1/namespaces/{namespace}/configmaps"
_MAX_TRIES = 10


def segment_names() -> list[str]:
    """The ConfigMaps of the ring (the viewer Role's resourceNames)."""
    return [SEGMENT_NAME.format(index=i) for i in range(RING_SEGMENTS)]


@dataclass
class Segment:
    index: int
    generation: int = 0  # 0: the ConfigMap does not exist
    resource_version: str | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return SEGMENT_NAME.format(index=self.index)

    @property
    def size(self) -> int:
        return sum(len(line.encode()) + 1 for line in self.lines)


def parse_lines(lines: Iterable[str]) -> HistoryRead:
    """The events of a segment's lines, and how many lines are not events of ours."""
    decoded: list[Any] = []
    for line in lines:
        try:
            decoded.append(json.loads(line))
        except ValueError:
            decoded.append(None)  # counted as unreadable
    return entries_read(decoded)


@dataclass(frozen=True)
class RingRead:
    """The ring as read: its segments, its events (oldest first) and what it covers."""

    segments: list[Segment]
    history: HistoryRead

    @property
    def ids(self) -> set[str]:
        return {e.id for e in self.history.events}

    @property
    def full(self) -> bool:
        """Every segment exists: the next new segment replaces the oldest."""
        return all(s.generation for s in self.segments)

    @property
    def oldest_at(self) -> float | None:
        return min((e.at for e in self.history.events), default=None)


class HistoryRing:
    """The ring in `namespace`, read by anyone with `get` on its ConfigMaps, written by
    the sidecar's service account. Errors are StoreError (batchctl/claims/errors.py)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        timeout: float,
        *,
        max_events: int = 10_000,
        where: str = "",
    ) -> None:
        self.client = api_client
        self.namespace = namespace
        self.timeout = timeout
        self.per_segment = max(10, math.ceil(max_events / RING_SEGMENTS))
        self.where = where or namespace
        self._secrets = client_secrets(api_client)

    # -- reading ---------------------------------------------------------------------

    def read(self) -> RingRead:
        """Every segment (one GET each; a missing one is empty)."""
        segments = [self._get(i) for i in range(RING_SEGMENTS)]
        reads = [parse_lines(s.lines) for s in sorted(segments, key=lambda s: s.generation)]
        history = HistoryRead([e for r in reads for e in r.events], sum(r.skipped for r in reads))
        history.events.sort(key=lambda e: (e.at, e.id))
        return RingRead(segments, history)

    def _get(self, index: int) -> Segment:
        seg = Segment(index)
        try:
            obj = as_dict(self._call("GET", f"/{seg.name}"))
        except ApiException as e:
            if e.status == NOT_FOUND:
                return seg
            raise api_error(self.where, e, self._secrets, "reading the claim history") from e
        except Exception as e:
            raise api_error(self.where, e, self._secrets, "reading the claim history") from e
        meta = as_dict(obj.get("metadata"))
        try:
            seg.generation = max(1, int(as_dict(meta.get("annotations")).get(GENERATION, 1)))
        except (TypeError, ValueError):
            seg.generation = 1
        seg.resource_version = meta.get("resourceVersion")
        text = as_dict(obj.get("data")).get(KEY) or ""
        seg.lines = [line for line in str(text).split("\n") if line]
        return seg

    # -- writing ---------------------------------------------------------------------

    def append(self, events: Sequence[ClaimEvent]) -> int:
        """Add the events the ring does not hold yet (by id), oldest first; how many were
        added. Retries a write that lost a race on a fresh read."""
        for _ in range(_MAX_TRIES):
            ring = self.read()
            have = ring.ids
            pending = sorted(
                (e for e in events if e.id and e.id not in have), key=lambda e: (e.at, e.id)
            )
            if not pending:
                return 0
            try:
                self._write(ring.segments, pending)
            except _Lost:
                continue
            return len(pending)
        raise StoreFault(
            f"the claim history in {self.where} kept changing while we wrote it; "
            "the next attempt tries again"
        )

    def _write(self, segments: list[Segment], pending: list[ClaimEvent]) -> None:
        newest = max(segments, key=lambda s: s.generation)
        lines = [json.dumps(event_entry(e), separators=(",", ":"), ensure_ascii=False)
                 for e in pending]  # fmt: skip
        target = newest if newest.generation else Segment(0, 1)
        batch: list[str] = list(target.lines)
        size = sum(len(x.encode()) + 1 for x in batch)
        dirty = False
        for line in lines:
            grown = size + len(line.encode()) + 1
            if batch and (len(batch) >= self.per_segment or grown > SEGMENT_MAX_BYTES):
                if dirty:
                    self._put(target, batch, segments)
                # The next segment in the ring, a generation on: it replaces the oldest.
                nxt = segments[(target.index + 1) % RING_SEGMENTS]
                target = Segment(nxt.index, target.generation + 1, nxt.resource_version)
                batch, size = [], 0
            batch.append(line)
            size += len(line.encode()) + 1
            dirty = True
        self._put(target, batch, segments)

    def _put(self, seg: Segment, lines: list[str], segments: list[Segment]) -> None:
        """Create or replace one segment (with its resourceVersion); _Lost on a 409."""
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": seg.name,
                "namespace": self.namespace,
                "labels": LABELS,
                "annotations": {GENERATION: str(seg.generation)},
            },
            "data": {KEY: "\n".join(lines) + "\n"},
        }
        existing = segments[seg.index]
        try:
            if existing.resource_version is None:
                answer = self._call("POST", "", body)
            else:
                body["metadata"]["resourceVersion"] = existing.resource_version
                answer = self._call("PUT", f"/{seg.name}", body)
        except ApiException as e:
            if e.status == CONFLICT:  # changed (or created) since we read it
                raise _Lost from None
            raise api_error(self.where, e, self._secrets, "writing the claim history") from e
        except Exception as e:
            raise api_error(self.where, e, self._secrets, "writing the claim history") from e
        meta = as_dict(as_dict(answer).get("metadata"))
        segments[seg.index] = Segment(seg.index, seg.generation, meta.get("resourceVersion"), lines)

    def _call(self, method: str, suffix: str, body: Any = None) -> Any:
        path = _PATH.format(namespace=self.namespace) + suffix
        return call_json(self.client, method, path, timeout=self.timeout, body=body)


class _Lost(Exception):
    """A segment changed between our read and our write."""


__all__ = ["RING_SEGMENTS", "HistoryRing", "RingRead", "Segment", "segment_names"]
