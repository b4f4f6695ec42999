"""HTTP: /metrics, / (landing), /healthz, /readyz, /api/v1/snapshot and /status.

Every scrape collects at scrape time through the shared single-flight snapshot source, and
always answers: a backend that is down shows up as `*_up 0`, never as a 500.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import choose_encoder

from batchctl import __version__
from batchctl.config import Config
from batchctl.log import get_logger
from exporter.board import status_page
from exporter.collect import InProcessSource
from exporter.exposition import LineCache, render_snapshot
from exporter.status import render_landing

log = get_logger("batchctl.server")


def build_registry() -> CollectorRegistry:
    """Metrics beside the snapshot's own: process metrics, and whatever a caller
    (the autoscaler) registers. The snapshot itself is rendered by render_snapshot."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    return registry


def exposition(app: ExporterApp, accept: str) -> tuple[bytes, str]:
    """The /metrics body for an Accept header: text format 0.0.4 or OpenMetrics."""
    encoder, content_type = choose_encoder(accept)
    openmetrics = content_type.startswith("application/openmetrics-text")
    snap = app.source.collect()
    own = render_snapshot(
        snap,
        version=__version__,
        dropped_total=app.source.dropped_total,
        kubernetes_enabled=app.source.kube is not None,
        openmetrics=openmetrics,
        cache=app.line_cache,
    )
    extra = encoder(app.registry).decode()
    if openmetrics:
        own = own.removesuffix("# EOF\n")
    return (own + extra).encode(), content_type


class _Handler(BaseHTTPRequestHandler):
    server: ExporterHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # access logs would drown the structured logs; Prometheus has its own

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        app = self.server.app
        try:
            if path == "/metrics":
                body, content_type = exposition(app, self.headers.get("Accept", ""))
                self._send(200, body, content_type)
            elif path == "/":
                self._send(200, render_landing(__version__).encode(), "text/html; charset=utf-8")
            elif path == "/healthz":
                self._send(200, b"ok\n", "text/plain; charset=utf-8")
            elif path == "/readyz":
                # Ready once a first collection has finished, even one that found Redis
                # down: that is reported as celery_broker_up 0, and Prometheus only
                # scrapes (and alerts on) a pod that is in the Service's endpoints.
                ready = app.source.attempted.is_set()
                self._send(
                    200 if ready else 503,
                    b"ready\n" if ready else b"waiting for a first collection\n",
                    "text/plain; charset=utf-8",
                )
            elif path == "/api/v1/snapshot":
                snap = app.source.collect()
                body = json.dumps(snap.to_json(), indent=1).encode()
                self._send(200, body, "application/json")
            elif path == "/status":
                snap = app.source.collect()
                page = status_page(app.cfg, snap, app.source.live)
                self._send(200, page.encode(), "text/html; charset=utf-8")
            else:
                self._send(404, b"not found; see /\n", "text/plain; charset=utf-8")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away
        except Exception:
            log.exception("request failed", path=path)
            self._send(500, b"internal error (see the exporter's log)\n", "text/plain")


class ExporterHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: ExporterApp) -> None:
        self.app = app
        super().__init__(address, _Handler)


class ExporterApp:
    """The HTTP side of the exporter: serve in a thread, stop cleanly."""

    def __init__(
        self,
        cfg: Config,
        source: InProcessSource,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.cfg = cfg
        self.source = source
        self.registry = registry if registry is not None else build_registry()
        self.line_cache = LineCache()
        self._httpd: ExporterHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def listen(self, listen: str) -> tuple[str, int]:
        host, _, port = listen.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        self._httpd = ExporterHTTPServer((host, int(port)), self)
        bound = self._httpd.server_address
        return str(bound[0]), int(bound[1])

    def serve_in_thread(self) -> None:
        assert self._httpd is not None, "call listen() first"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="http", daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        assert self._httpd is not None, "call listen() first"
        self._httpd.serve_forever()

    def shutdown(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
