"""HTTP: /metrics, / (landing), /healthz, /readyz, /api/v1/snapshot, /api/v1/config and /status.

Every scrape collects at scrape time through the shared single-flight snapshot source, and
always answers: a backend that is down shows up as `*_up 0`, never as a 500.
"""

from __future__ import annotations

import socket
import threading
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import choose_encoder, gzip_accepted

from batchctl import __version__, jsonout
from batchctl.claims.service import store_for
from batchctl.config import Config
from batchctl.config.site import site_json
from batchctl.httpd import TEXT, ReadOnlyHandler
from batchctl.log import get_logger
from exporter.collect import InProcessSource
from exporter.http.bodies import SharedBodies
from exporter.http.exposition import render_body
from exporter.http.runbooks import PREFIX, runbook_page
from exporter.http.textformat import Body, LineCache
from exporter.http.webconfig import WebConfig
from exporter.snapshot import Snapshot
from exporter.status.board import status_page
from exporter.status.claim_history import ClaimHistory, render_history
from exporter.status.page import render_landing

log = get_logger("batchctl.server")


def build_registry() -> CollectorRegistry:
    """Metrics beside the snapshot's own: process metrics, and whatever a caller
    (the autoscaler) registers. The snapshot itself is rendered by render_body."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    return registry


def exposition(
    app: ExporterApp, accept: str, accept_encoding: str = ""
) -> tuple[Body | bytes, str, str | None]:
    """The /metrics answer for the Accept and Accept-Encoding headers: text format 0.0.4
    or OpenMetrics, gzipped (bytes, encoding "gzip") when the scraper accepts it and
    exporter.gzip is on. Concurrent scrapes share one collection, and one rendered (and
    one gzipped) body per format."""
    encoder, content_type = choose_encoder(accept)
    openmetrics = content_type.startswith("application/openmetrics-text")
    snap = app.source.collect(max_age=app.cfg.exporter.snapshot_reuse_seconds)

    def render() -> Body:
        with app.render_lock:  # the line cache is shared by the formats
            return _render(app, snap, openmetrics, encoder)

    body = app.bodies.get(snap, content_type, render)
    if app.cfg.exporter.gzip and gzip_accepted(accept_encoding):
        return app.bodies.get(snap, (content_type, "gzip"), body.gzipped), content_type, "gzip"
    return body, content_type, None


def _render(app: ExporterApp, snap: Snapshot, openmetrics: bool, encoder: Any) -> Body:
    # The registry's exposition (with OpenMetrics' one `# EOF`) follows the snapshot's
    # lines; the body is written in chunks, never joined whole.
    return render_body(
        snap,
        version=__version__,
        kubernetes_enabled=app.source.kube is not None,
        openmetrics=openmetrics,
        cache=app.line_cache,
        extra=encoder(app.registry),
        broker=app.cfg.broker.kind,
    )


def status_history(app: ExporterApp, snap: Snapshot) -> str:
    """The recent claim events block of /status; read only while the broker answers."""
    if not snap.broker_up:
        return ""
    recent = app.claim_history.recent([b.queue for b in app.cfg.batches])
    if recent is None:
        return ""
    return render_history(recent.by_queue, snap.taken_at, recent.skipped)


class _Handler(ReadOnlyHandler):
    server: ExporterHTTPServer

    def _send(
        self, code: int, body: bytes | Body, content_type: str = TEXT, encoding: str | None = None
    ) -> None:
        if isinstance(body, Body):  # /metrics: written in chunks, never joined whole
            self.send_body(code, body.chunks(), body.length, content_type)
        else:
            self.send_body(code, (body,), len(body), content_type, encoding)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        app = self.server.app
        # Basic auth (--web.config.file) on every endpoint but the probes, which say
        # nothing but "ok" and "ready".
        if path not in ("/healthz", "/readyz") and not app.web.authorized(
            self.headers.get("Authorization")
        ):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="batchctl", charset="UTF-8"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        try:
            if path == "/metrics":
                metrics, content_type, encoding = exposition(
                    app, self.headers.get("Accept", ""), self.headers.get("Accept-Encoding", "")
                )
                self._send(200, metrics, content_type, encoding)
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
                body = jsonout.dumps(snap.to_json(), indent=1).encode()
                self._send(200, body, "application/json")
            elif path == "/api/v1/config":
                # What a CLI with only a kubeconfig needs of the site's config (no
                # secrets), read through the API server's service proxy.
                body = jsonout.dumps(site_json(app.cfg), indent=1).encode()
                self._send(200, body, "application/json")
            elif path == "/status":
                snap = app.source.collect()
                page = status_page(
                    app.cfg, snap, app.source.live, history=status_history(app, snap)
                )
                self._send(200, page.encode(), "text/html; charset=utf-8")
            elif path == PREFIX or path.startswith(PREFIX + "/"):
                code, text = runbook_page(path)
                self._send(code, text.encode(), "text/html; charset=utf-8")
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
    # socketserver's default backlog of 5 makes a burst of scrapers wait for SYN retries.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: ExporterApp) -> None:
        self.app = app
        # An IPv6 host ("[::]:9808", "[::1]:9808") needs an IPv6 socket.
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # TLS (--web.config.file): the handshake runs here, in the request's thread.
        try:
            request = self.app.web.wrap(request)
        except OSError:  # ssl.SSLError included: a client that cannot speak our TLS
            request.close()
            return
        super().finish_request(request, client_address)


class ExporterApp:
    """The HTTP side of the exporter: serve in a thread, stop cleanly."""

    def __init__(
        self,
        cfg: Config,
        source: InProcessSource,
        registry: CollectorRegistry | None = None,
        web: WebConfig | None = None,
    ) -> None:
        self.cfg = cfg
        self.source = source
        self.web = web if web is not None else WebConfig()
        self.registry = registry if registry is not None else build_registry()
        self.line_cache = LineCache()
        self.bodies = SharedBodies()
        self.render_lock = threading.Lock()
        self.claim_history = ClaimHistory(lambda: store_for(cfg))
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
        self.claim_history.close()
