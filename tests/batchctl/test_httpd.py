"""The read-only handler both servers start from, over a real socket."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any

import pytest

from batchctl.httpd import ReadOnlyHandler
from tests.support.isolation import starts_servers


class _Parts(ReadOnlyHandler):
    def do_GET(self) -> None:
        if self.path == "/parts":
            self.send_body(200, iter([b"ab", b"", b"cde\n"]), 6, "text/plain")
        else:
            super().do_GET()


@pytest.fixture
@starts_servers
def server() -> Iterator[tuple[str, int]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Parts)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield "127.0.0.1", httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def ask(where: tuple[str, int], method: str, path: str, body: bytes | None = None) -> Any:
    conn = http.client.HTTPConnection(*where, timeout=5)
    conn.request(method, path, body=body)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def test_parts_get_head_404_and_405(server: tuple[str, int]) -> None:
    resp, data = ask(server, "GET", "/parts")
    assert (resp.status, data, resp.headers["Content-Length"]) == (200, b"abcde\n", "6")
    assert resp.headers["Cache-Control"] == "no-store"
    resp, data = ask(server, "HEAD", "/parts")
    assert (resp.status, data, resp.headers["Content-Length"]) == (200, b"", "6")
    resp, data = ask(server, "GET", "/elsewhere")
    assert (resp.status, data) == (404, b"not found\n")
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
        resp, data = ask(server, method, "/parts", body=b"x" * 100)
        assert (resp.status, resp.headers["Allow"], data) == (405, "GET, HEAD", b"")
    assert ReadOnlyHandler.timeout == 60  # a silent client does not hold a thread forever
