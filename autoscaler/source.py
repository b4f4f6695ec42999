"""The sidecar's snapshot source: the exporter beside it, over localhost.

One observer per pod: the exporter container is the only reader of Redis and the only
watcher of Deployments; the autoscaler takes the very snapshot the exporter serves at
/api/v1/snapshot. A snapshot that cannot be fetched or read raises SnapshotUnavailable,
which the loop turns into a hold (`no_data`) that names the cause.

When the exporter's endpoints need basic auth (`--web.config.file`), the sidecar sends
the user and password of `autoscaler.snapshot_url` (`http://user:password@...`), the
password preferably from the environment (`BATCHCTL_SNAPSHOT_PASSWORD`, a Secret) rather
than the config file. For an https:// exporter with a private CA, Python's usual
`SSL_CERT_FILE` names the CA bundle.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

from batchctl.redact import redact_url, register_secret, scrub_urls
from exporter.snapshot import Snapshot

PATH = "/api/v1/snapshot"
ENV_PASSWORD = "BATCHCTL_SNAPSHOT_PASSWORD"


def split_credentials(url: str, env: Mapping[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """The URL without its user and password, and the Authorization header they make
    (urllib would take `user:password@host` for a host name). The password of the
    environment's BATCHCTL_SNAPSHOT_PASSWORD wins over the URL's."""
    env = os.environ if env is None else env
    parts = urlsplit(url)
    user = unquote(parts.username) if parts.username else None
    password = env.get(ENV_PASSWORD) or (unquote(parts.password) if parts.password else None)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    bare = urlunsplit(parts._replace(netloc=netloc))
    if user is None and password is None:
        return bare, {}
    register_secret(password)
    token = base64.b64encode(f"{user or ''}:{password or ''}".encode()).decode()
    return bare, {"Authorization": f"Basic {token}"}


class SnapshotUnavailable(Exception):
    """No snapshot this time; the message says why (never a credential)."""


class ExporterSource:
    """A `SnapshotSource` that GETs the exporter's /api/v1/snapshot."""

    def __init__(
        self,
        url: str,
        timeout: float,
        opener: Callable[..., object] = urllib.request.urlopen,
        env: Mapping[str, str] | None = None,
    ) -> None:
        bare, self._headers = split_credentials(url, env)
        self.url = bare.rstrip("/") + PATH
        self.timeout = timeout
        self._open = opener
        self.last_error: str | None = None

    def collect(self) -> Snapshot:
        request = urllib.request.Request(self.url, headers=self._headers)
        try:
            with self._open(request, timeout=self.timeout) as resp:  # type: ignore[attr-defined]
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
        self.last_error = scrub_urls(f"exporter at {redact_url(self.url)} unreachable: {why}")
        return SnapshotUnavailable(self.last_error)

    def stop(self) -> None:
        pass
