"""Plain JSON requests to the Kubernetes API through the official client's plumbing.

The client provides kubeconfig and in-cluster loading, auth, TLS, the urllib3 pool,
timeouts and its ApiException; the requests here are plain `ApiClient.call_api` calls
whose JSON is read as dicts. The generated APIs and their models are never imported:
they cost more memory than everything else a process of ours holds
(benchmarks/README.md), and we read a few fields of each object.

Also the pieces of a watch: a streamed response cut into lines, one line as an event,
and `OpenWatch`, which lets another thread cut a watch that blocks in a read.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator, Mapping
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

GONE = 410
CONFLICT = 409
NOT_FOUND = 404
Timeout = float | tuple[float, float]


def as_dict(value: Any) -> Mapping[str, Any]:
    """`value` when it is a JSON object, else an empty one (for reading optional fields)."""
    return value if isinstance(value, dict) else {}


def name_of(obj: Any) -> str | None:
    """metadata.name of an object's JSON; None when it has none."""
    name = as_dict(as_dict(obj).get("metadata")).get("name")
    return name if isinstance(name, str) else None


def resource_version(obj: Mapping[str, Any]) -> str | None:
    rv = as_dict(obj.get("metadata")).get("resourceVersion")
    return str(rv) if rv else None


def raise_for_status(resp: Any) -> None:
    """The ApiException (with the Status body) the generated API raises for non-2xx."""
    if not 200 <= resp.status <= 299:
        resp.read()
        raise ApiException.from_response(http_resp=resp, body=None, data=None)


def open_request(
    api_client: client.ApiClient,
    method: str,
    path: str,
    *,
    timeout: Timeout,
    query: list[tuple[str, Any]] | None = None,
    body: Any = None,
    content_type: str = "application/json",
) -> Any:
    """Send one request and return the client's RESTResponse, unread (the caller reads
    and releases it); non-2xx raises the ApiException the generated API would."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    request = api_client.param_serialize(
        method,
        path,
        query_params=query or [],
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    resp = api_client.call_api(*request, _request_timeout=timeout)
    try:
        raise_for_status(resp)
    except BaseException:
        resp.response.release_conn()
        raise
    return resp


def call_json(api_client: client.ApiClient, method: str, path: str, **request: Any) -> Any:
    """One request (`open_request`'s arguments), its JSON answer decoded (None for an
    empty body). Raises ApiException for a non-2xx answer, whatever urllib3 raises when
    there is none, and ValueError when the answer is not JSON."""
    resp = open_request(api_client, method, path, **request)
    try:
        data = resp.read()
    finally:
        resp.response.release_conn()
    return json.loads(data) if data else None


def stream_lines(raw: urllib3.HTTPResponse) -> Iterator[bytes]:
    """The newline-terminated lines of a streamed response, as they arrive."""
    pending: list[bytes] = []  # the start of a line split across chunks
    for chunk in raw.stream(amt=None, decode_content=False):
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            pending.append(chunk[start:end])
            yield b"".join(pending)
            pending.clear()
            start = end + 1
        if start < len(chunk):
            pending.append(chunk[start:])


def watch_event(line: bytes) -> tuple[Any, Mapping[str, Any]] | None:
    """One line of a watch stream -> (type, object); None for a blank or torn line (as
    the official Watch skips them). Raises ApiException for an ERROR event, whose object
    is a Status: code 410 when the resourceVersion is compacted."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    kind = event.get("type")
    obj = as_dict(event.get("object"))
    if kind == "ERROR":
        raise ApiException(
            status=obj.get("code"), reason=f"{obj.get('reason')}: {obj.get('message')}"
        )
    return kind, obj


class OpenWatch:
    """The watch request in flight, so that another thread can cut its socket."""

    def __init__(self) -> None:
        self.raw: urllib3.HTTPResponse | None = None

    def stop(self) -> None:
        # Shut the raw socket down so a blocked read returns now (closing it from
        # another thread could hang on the SSL lock the reader holds).
        sock = getattr(getattr(self.raw, "connection", None), "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def open_watch(
    api_client: client.ApiClient,
    path: str,
    w: OpenWatch,
    rv: str,
    *,
    request_timeout: float,
    watch_timeout: int,
    query: list[tuple[str, Any]] | None = None,
) -> urllib3.HTTPResponse:
    """The watch of the collection at `path` from `rv`, with a read timeout that outlasts
    a quiet watch once the headers are in; `w` holds it for `OpenWatch.stop`.

    The server ends a watch by itself at `watch_timeout`, so between events the stream
    may be silent that long; but a server that does not even answer must show as down
    within `request_timeout`. urllib3 applies its read timeout to the socket before
    reading the headers and leaves it there while streaming.
    """
    full = [
        *(query or []),
        ("allowWatchBookmarks", True),
        ("resourceVersion", rv),
        ("timeoutSeconds", watch_timeout),
        ("watch", True),
    ]
    # Connecting and the response headers get the request timeout like any request.
    resp = open_request(api_client, "GET", path, timeout=(request_timeout,) * 2, query=full)
    raw: urllib3.HTTPResponse = resp.response
    w.raw = raw
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is not None:
        sock.settimeout(watch_timeout + request_timeout)
    return raw


__all__ = [
    "CONFLICT",
    "GONE",
    "NOT_FOUND",
    "OpenWatch",
    "as_dict",
    "call_json",
    "name_of",
    "open_request",
    "open_watch",
    "raise_for_status",
    "resource_version",
    "stream_lines",
    "watch_event",
]
