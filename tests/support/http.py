"""Plain HTTP requests to the servers under test (exporter, sidecar, fake API server)."""

from __future__ import annotations

import urllib.error
import urllib.request


def get(url: str, accept: str = "", timeout: float = 5.0) -> tuple[int, str, str]:
    """(status, Content-Type, body) of a GET; an HTTP error status is an answer, not raised."""
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()
