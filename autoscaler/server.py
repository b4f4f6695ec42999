"""The sidecar's own HTTP: /metrics, /healthz, /readyz and /api/v1/decisions on one port (9809).

prometheus_client's `start_http_server` serves /metrics only; Kubernetes also needs a
liveness and a readiness path on a port the container serves, so this small server
replaces it. What the probes mean (docs/operations.md):

- /readyz 200 once the loop has ended its first tick, whatever it decided (a hold for
  missing data included). A pod is only in the Service's endpoints while every
  container is ready, so readiness must not depend on Redis or the API server being up:
  the exporter beside it reports those.
- /healthz 200 while the loop is running and a tick has ended within `stall_after`
  (three intervals, at least a minute); 503 when the loop is stuck, so the kubelet
  restarts the container.
- /api/v1/decisions: the latest decision per batch (batchctl/decisions.py), for the
  exporter's status page beside us; a standby serves the leader's copy from the Lease.
"""

from __future__ import annotations

import socket
import threading
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from autoscaler.loop import Autoscaler
from batchctl import jsonout
from batchctl.httpd import ReadOnlyHandler
from batchctl.log import get_logger

log = get_logger("batchctl.autoscaler.http")

ROUTES = ("/metrics", "/healthz", "/readyz", "/api/v1/decisions")


class ListenError(OSError):
    """The HTTP port cannot be bound (taken, or not ours to bind)."""


class _Handler(ReadOnlyHandler):
    server: _HTTPServer

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        scaler = self.server.scaler
        try:
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._send(200, encoder(self.server.registry), content_type)
            elif path == "/healthz":
                ok, why = scaler.health()
                self._send(200 if ok else 503, f"{why}\n".encode())
            elif path == "/readyz":
                ready = scaler.ticked.is_set()
                self._send(
                    200 if ready else 503, b"ready\n" if ready else b"waiting for a first tick\n"
                )
            elif path == "/api/v1/decisions":
                body = jsonout.dumps(scaler.decisions_view().to_json(), indent=1).encode()
                self._send(200, body, "application/json")
            elif path == "/":
                links = " ".join(ROUTES)
                self._send(200, f"batchctl autoscaler: {links}\n".encode())
            else:
                self._send(404, f"not found; try {' '.join(ROUTES)}\n".encode())
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away
        except Exception:
            log.exception("request failed", path=path)
            self._send(500, b"internal error (see the autoscaler's log)\n")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], scaler: Autoscaler, registry: CollectorRegistry
    ) -> None:
        self.scaler = scaler
        self.registry = registry
        # An IPv6 host ("[::]:9809", "[::1]:9809") needs an IPv6 socket.
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)


class AutoscalerServer:
    """Serve the autoscaler's metrics and probes in a thread; stop cleanly."""

    def __init__(self, scaler: Autoscaler, registry: CollectorRegistry) -> None:
        self.scaler = scaler
        self.registry = registry
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def listen(self, listen: str) -> tuple[str, int]:
        """Bind HOST:PORT (port 0: any free port); raises ListenError."""
        host, _, port = listen.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        try:
            self._httpd = _HTTPServer((host, int(port)), self.scaler, self.registry)
        except OSError as e:
            raise ListenError(e.errno, e.strerror) from None
        bound = self._httpd.server_address
        return str(bound[0]), int(bound[1])

    def serve_in_thread(self) -> None:
        assert self._httpd is not None, "call listen() first"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="autoscaler-http", daemon=True
        )
        self._thread.start()

    def shutdown(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
