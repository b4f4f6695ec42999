"""HTTP as the fake API server speaks it: routes, recorded requests, injected faults, the
threaded server and its handler (JSON answers, chunked watch streams)."""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.fakekube.auth import Attributes
from tests.support.fakekube.errors import ApiError
from tests.support.fakekube.patches import PATCH_TYPES, apply_patch
from tests.support.fakekube.routes import JSON, KINDS, VERBS

if TYPE_CHECKING:
    from tests.support.fakekube.server import FakeKube


@dataclass(frozen=True)
class Request:
    """One request as the server received it."""

    method: str
    path: str  # without the query string
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float = field(default_factory=time.monotonic)

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    @property
    def is_watch(self) -> bool:
        return self.query.get("watch") in ("true", "1")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Fault:
    """An injected failure or delay for requests matching method, path and watch-ness."""

    path: re.Pattern[str]
    method: str | None = None
    watch: bool | None = None
    status: int | None = None  # forced response code; None: only delay
    delay: float = 0.0
    message: str | None = None
    remaining: int | None = None  # None: forever
    gate: threading.Event | None = None  # hold(): wait for release()
    held: int = 0  # requests that reached this fault

    def release(self) -> None:
        if self.gate is not None:
            self.gate.set()

    def matches(self, method: str, path: str, is_watch: bool) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.method is not None and self.method != method:
            return False
        if self.watch is not None and self.watch != is_watch:
            return False
        return self.path.search(path) is not None


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeKube

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Cut connections are the point of several tests; stay quiet about them.
        pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HTTPServer

    def setup(self) -> None:
        super().setup()
        # As Go's net/http (the real apiserver) does: no Nagle. Without it the body, a
        # second small write after the headers, waits for the client's delayed ACK
        # (40 ms a request on Linux).
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            req = Request(
                method=self.command,
                path=parts.path,
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            self.server.fake._serve(req, self)
        except OSError:
            self.close_connection = True

    def send_json(self, code: int, body: JSON) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def send_raw(self, code: int, content_type: str, data: bytes) -> None:
        """An answer passed through as it came (the service proxy's)."""
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_chunked(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def send_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")


def peer_closed(sock: socket.socket) -> bool:
    """True when the client closed its end (readable with nothing to read)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def json_body(req: Request) -> JSON:
    try:
        body = json.loads(req.body or b"null")
    except ValueError as e:
        raise ApiError(400, "BadRequest", f"the body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "the body must be a JSON object")
    return body


def patched(cur: JSON, req: Request) -> JSON:
    ctype = (req.content_type or "").split(";")[0].strip()
    if ctype not in PATCH_TYPES:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(PATCH_TYPES)}",
        )
    try:
        body = json.loads(req.body or b"null")
        return apply_patch(cur, ctype, body)
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise ApiError(422, "Invalid", f"the patch could not be applied: {e}") from None


def request_attributes(req: Request, m: re.Match[str]) -> Attributes:
    """A resource request (a ROUTE match) as RBAC sees it: the verb (a GET of a collection
    is list, or watch), group, resource/subresource, name and namespace."""
    if req.method == "GET":
        verb = "get" if m["name"] else ("watch" if req.is_watch else "list")
    else:
        verb = VERBS.get(req.method, req.method.lower())
    resource = m["resource"] + (f"/{m['sub']}" if m["sub"] else "")
    return Attributes(verb, KINDS[m["resource"]][1], resource, m["name"], m["ns"])
