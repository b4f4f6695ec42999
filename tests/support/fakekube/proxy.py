"""The API server's service proxy: /api/v1/namespaces/NS/services/[SCHEME:]NAME[:PORT]/proxy/PATH.

As kube-apiserver does it: the caller needs `get` (or the method's verb) on
`services/proxy` for the name segment exactly as written ("batchctl:9808": RBAC's
resourceNames match it whole, port included), the request goes on to the Service's
backend with its method, path, query and body but without the caller's Authorization
header (the apiserver drops it once it has authenticated the caller: the backend never
learns who called), and the backend's answer comes back as it is: status, content type,
body. A Service that does not exist is a 404 Status; a port it does not have, or a
backend that cannot be reached, a 503 Status ("no endpoints available", "error trying
to reach service").

Here a Service is a name and its ports, each forwarded to a real local server
(`FakeKube.add_service`).
"""

from __future__ import annotations

import http.client
import re
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from tests.support.fakekube.errors import ApiError

PROXY = re.compile(
    r"^/api/v1/namespaces/(?P<ns>[^/]+)/services/(?P<name>[^/]+)/proxy(?P<rest>/.*)?$"
)
METHOD_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update",
                "PATCH": "patch", "DELETE": "delete"}  # fmt: skip


@dataclass
class Service:
    name: str
    namespace: str
    # port -> the backend's base URL (http://127.0.0.1:PORT); names -> port
    ports: dict[int, str] = field(default_factory=dict)
    port_names: dict[str, int] = field(default_factory=dict)


def split_name(segment: str) -> tuple[str, str, str]:
    """`[scheme:]name[:port]` -> (scheme, name, port) as the apiserver splits it."""
    parts = segment.split(":")
    if len(parts) == 1:
        return "", parts[0], ""
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return parts[0], parts[1], parts[2]


def backend_url(service: Service | None, segment: str) -> str:
    """The base URL the named port forwards to. Raises ApiError 404/503."""
    scheme, name, port = split_name(segment)
    if service is None:
        raise ApiError(
            404, "NotFound", f'services "{name}" not found', {"name": name, "kind": "services"}
        )
    if port == "":
        number = next(iter(service.ports)) if len(service.ports) == 1 else None
    elif port.isdigit():
        number = int(port)
    else:
        number = service.port_names.get(port)
    if number is None or number not in service.ports:
        raise ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{segment}"')
    base = service.ports[number]
    if scheme and not base.startswith(f"{scheme}://"):
        raise ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{segment}"')
    return base


def forward(
    base: str,
    method: str,
    rest: str,
    query: dict[str, str],
    headers: dict[str, str],
    body: bytes,
    timeout: float = 30.0,
) -> tuple[int, str, bytes]:
    """Send the request on to `base` + `rest`; (status, content type, body) of the answer.
    Raises ApiError 503 when the backend cannot be reached."""
    target = urlsplit(base)
    path = rest or "/"
    if query:
        path += "?" + urlencode(query)
    sent = {
        k: v
        for k, v in headers.items()
        if k not in ("authorization", "host", "connection", "content-length", "accept-encoding")
    }
    conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=timeout)
    try:
        conn.request(method, path, body=body or None, headers=sent)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.getheader("Content-Type") or "text/plain", data
    except OSError as e:
        reason = "connect: connection refused" if isinstance(e, ConnectionRefusedError) else str(e)
        raise ApiError(
            503,
            "ServiceUnavailable",
            f"error trying to reach service: dial tcp {target.hostname}:{target.port}: {reason}",
        ) from None
    finally:
        conn.close()
