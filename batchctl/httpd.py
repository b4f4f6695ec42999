"""The HTTP handler both of batchctl's servers (the exporter's and the autoscaler's)
start from: read-only endpoints, no access log, bounded waits.

Every endpoint is GET (and HEAD); anything else (OPTIONS and TRACE too) is 405 with
`Allow: GET, HEAD`. Each answer has a Content-Length and `Cache-Control: no-store` (a
scrape or a probe must see the present, never a proxy's copy).
"""

from __future__ import annotations

from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler
from typing import Any

TEXT = "text/plain; charset=utf-8"


class ReadOnlyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # a client that sends nothing does not keep its thread forever

    def log_message(self, format: str, *args: Any) -> None:
        pass  # access logs would drown the structured log; Prometheus has its own

    def send_body(
        self,
        code: int,
        parts: Iterable[bytes],
        length: int,
        content_type: str,
        encoding: str | None = None,
    ) -> None:
        """An answer of `length` bytes, written part by part (HEAD: the headers only);
        `encoding`: its Content-Encoding (gzip)."""
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        if encoding is not None:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(length))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command == "HEAD":
            return
        for part in parts:
            self.wfile.write(part)

    def _send(self, code: int, body: bytes, content_type: str = TEXT) -> None:
        self.send_body(code, (body,), len(body), content_type)

    def do_GET(self) -> None:
        self._send(404, b"not found\n")

    def do_HEAD(self) -> None:
        self.do_GET()

    def _read_only(self) -> None:
        # No endpoint changes state: anything but GET and HEAD is 405. The body is read
        # first (up to 1 MiB), so that a client, TLS included, gets the answer rather
        # than a reset.
        length = self.headers.get("Content-Length", "0")
        self.rfile.read(min(int(length) if length.isdigit() else 0, 1 << 20))
        self.send_response(405)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _read_only
