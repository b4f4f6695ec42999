"""The Deployments of one namespace as the cache reads them: list and watch, as JSON.

The official client provides the plumbing only (kubeconfig and in-cluster loading, auth,
TLS, the urllib3 pool, timeouts, its ApiException); the list and the watch are plain
`ApiClient.call_api` requests whose JSON is read here, keeping just the four fields the
cache needs. The generated `AppsV1Api` and its pydantic models are never imported: they
cost the exporter more memory than everything else it holds (benchmarks/README.md).

One request covers all batches: field selectors cannot OR several names, so with more
than one Deployment the namespace is listed and watched and the names are filtered by
the caller. That needs `list` and `watch` on `deployments` in the namespace (with one
name, `resourceNames` could restrict it).
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

from batchctl.config import KubernetesConfig
from exporter.snapshot import Deployment

GONE = 410
_DEPLOYMENTS_PATH = "/apis/apps/v1/namespaces/{namespace}/deployments"


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def name_of(obj: Any) -> str | None:
    """metadata.name of an object's JSON; None when it has none."""
    name = _dict(_dict(obj).get("metadata")).get("name")
    return name if isinstance(name, str) else None


def deployment_from(obj: Mapping[str, Any]) -> Deployment:
    """A Deployment from its JSON: spec.replicas (nil means 1, as the API defaults it),
    status.readyReplicas (omitted when 0) and spec.selector.matchLabels."""
    replicas = _dict(obj.get("spec")).get("replicas")
    ready = _dict(obj.get("status")).get("readyReplicas")
    labels = _dict(_dict(_dict(obj.get("spec")).get("selector")).get("matchLabels"))
    return Deployment(
        name=name_of(obj) or "",
        replicas=int(1 if replicas is None else replicas),
        ready_replicas=int(ready or 0),
        selector=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
    )


def _raise_for_status(resp: Any) -> None:
    """The ApiException (with the Status body) the generated API raises for non-2xx."""
    if not 200 <= resp.status <= 299:
        resp.read()
        raise ApiException.from_response(http_resp=resp, body=None, data=None)


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
    obj = _dict(event.get("object"))
    if kind == "ERROR":
        raise ApiException(
            status=obj.get("code"), reason=f"{obj.get('reason')}: {obj.get('message')}"
        )
    return kind, obj


def resource_version(obj: Mapping[str, Any]) -> str | None:
    rv = _dict(obj.get("metadata")).get("resourceVersion")
    return str(rv) if rv else None


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


class DeploymentsApi:
    """GET list and GET watch of `cfg.namespace`'s Deployments (a field selector when
    only one name is wanted)."""

    def __init__(
        self, api_client: client.ApiClient, cfg: KubernetesConfig, names: frozenset[str]
    ) -> None:
        self.client = api_client
        self.cfg = cfg
        self.names = names

    def _field_selector(self) -> str | None:
        if len(self.names) == 1:
            (name,) = self.names
            return f"metadata.name={name}"
        return None

    def _get(self, query: list[tuple[str, Any]], timeout: Any) -> Any:
        """GET the namespace's Deployments through the official client's plumbing (auth,
        TLS, pool, timeouts) and return its RESTResponse, unread; non-2xx raises the
        ApiException the generated API would."""
        if (fs := self._field_selector()) is not None:
            query.append(("fieldSelector", fs))
        request = self.client.param_serialize(
            "GET",
            _DEPLOYMENTS_PATH,
            path_params={"namespace": self.cfg.namespace},
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        resp = self.client.call_api(*request, _request_timeout=timeout)
        try:
            _raise_for_status(resp)
        except BaseException:
            resp.response.release_conn()
            raise
        return resp

    def list_deployments(self) -> tuple[dict[str, Deployment], str]:
        """The wanted Deployments that exist, by name, and the list's resourceVersion
        (where a watch starts). Raises ApiException or whatever urllib3 raises."""
        resp = self._get([], self.cfg.request_timeout_seconds)
        try:
            body = json.loads(resp.read())
        finally:
            resp.response.release_conn()
        items = _dict(body).get("items") or []
        found = {
            name: deployment_from(item)
            for item in items
            if (name := name_of(item)) is not None and name in self.names
        }
        return found, str(_dict(_dict(body).get("metadata")).get("resourceVersion") or "")

    def open_watch(self, w: OpenWatch, rv: str) -> urllib3.HTTPResponse:
        """The watch request from `rv`, with a read timeout that outlasts a quiet watch
        once the headers are in; `w` holds it for `OpenWatch.stop`.

        The server ends a watch by itself at timeout_seconds, so between events the
        stream may be silent that long; but a server that does not even answer must
        show as down within the request timeout. urllib3 applies its read timeout to
        the socket before reading the headers and leaves it there while streaming.
        """
        query: list[tuple[str, Any]] = [
            ("allowWatchBookmarks", True),
            ("resourceVersion", rv),
            ("timeoutSeconds", self.cfg.watch_timeout_seconds),
            ("watch", True),
        ]
        # Connecting and the response headers get the request timeout like any request.
        resp = self._get(query, (self.cfg.request_timeout_seconds,) * 2)
        raw: urllib3.HTTPResponse = resp.response
        w.raw = raw
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(self.cfg.watch_timeout_seconds + self.cfg.request_timeout_seconds)
        return raw
