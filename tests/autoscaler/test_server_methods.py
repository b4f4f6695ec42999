"""The sidecar's HTTP changes nothing: anything but GET and HEAD is 405, as on the exporter."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from autoscaler.server import ROUTES
from tests.support.autoscaler import Served, make
from tests.support.servers.redis import RedisServer


def test_methods_that_would_change_state_are_405(
    redis_server: RedisServer,
    serve: list[Served],
) -> None:
    served = Served(make(redis_server.url))
    serve.append(served)
    where = urlsplit(served.url)
    for path in (*ROUTES, "/", "/nope"):
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            conn = http.client.HTTPConnection(where.hostname or "", where.port, timeout=5)
            conn.request(method, path, body=b"{}")
            resp = conn.getresponse()
            assert (resp.status, resp.getheader("Allow")) == (405, "GET, HEAD"), (method, path)
            resp.read()
            # The connection stays usable: the body was read, the answer is complete.
            conn.request("GET", "/readyz")
            assert conn.getresponse().status in (200, 503)
            conn.close()
