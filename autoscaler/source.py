"""The sidecar's snapshot source: the exporter beside it, over localhost.

One observer per pod: the exporter container is the only reader of Redis and the only
watcher of Deployments; the autoscaler takes the very snapshot the exporter serves at
/api/v1/snapshot. A snapshot that cannot be fetched or read raises SnapshotUnavailable,
which the loop turns into a hold (`no_data`) that names the cause.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable

from batchctl.redact import scrub_urls
from exporter.snapshot import Snapshot

PATH = "/api/v1/snapshot"


class SnapshotUnavailable(Exception):
    """No snapshot this time; the message says why (never a credential)."""


class ExporterSource:
    """A `SnapshotSource` that GETs the exporter's /api/v1/snapshot."""

    def __init__(
        self, url: str, timeout: float, opener: Callable[..., object] = urllib.request.urlopen
    ) -> None:
        self.url = url.rstrip("/") + PATH
        self.timeout = timeout
        self._open = opener
        self.last_error: str | None = None

    def collect(self) -> Snapshot:
        try:
            with self._open(self.url, timeout=self.timeout) as resp:  # type: ignore[attr-defined]
                data = json.loads(resp.read())
            snap = Snapshot.from_json(data)
        except urllib.error.HTTPError as e:
            raise self._unavailable(f"HTTP {e.code} {e.reason}") from None
        except (OSError, ValueError) as e:  # refused, timed out, not JSON
            raise self._unavailable(f"{type(e).__name__}: {e}") from None
        except (KeyError, TypeError) as e:  # JSON, but not a snapshot
            raise self._unavailable(f"not a snapshot ({type(e).__name__}: {e})") from None
        self.last_error = None
        return snap

    def _unavailable(self, why: str) -> SnapshotUnavailable:
        self.last_error = scrub_urls(f"exporter at {self.url} unreachable: {why}")
        return SnapshotUnavailable(self.last_error)

    def stop(self) -> None:
        pass
