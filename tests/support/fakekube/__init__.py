"""A fake Kubernetes API server that the official `kubernetes` client talks to unchanged.

Tests cannot reach a real cluster, but the client speaks plain HTTP/JSON, so this
server stands in for kube-apiserver on 127.0.0.1: the code under test loads a
generated kubeconfig (`FakeKube.write_kubeconfig`) exactly as it would in production.

What it serves, shaped like the real API (kinds, apiVersions, Status errors):
- apps/v1 Deployments: list (DeploymentList with metadata.resourceVersion), get, patch,
  and watch (`?watch=true`, chunked newline-delimited JSON events, replay from
  `resourceVersion`, `timeoutSeconds`, bookmarks, 410 "Expired" once compacted);
- the `scale` subresource (autoscaling/v1 Scale): get, put, and patch as merge,
  strategic merge or JSON patch, with resourceVersion preconditions -> 409;
- coordination.k8s.io/v1 Leases: list/watch, get, create, replace, patch, delete, with
  the real optimistic-concurrency rules (409 on a stale resourceVersion);
- autoscaling/v2 HorizontalPodAutoscalers and keda.sh/v1alpha1 ScaledObjects: list,
  watch and get (`add_hpa`, `add_scaled_object`); the keda.sh group answers 404, as
  the apiserver does for a CRD that is not installed, until a ScaledObject is added.

Test-side controls: `set_replicas` plays the Deployment controller; `fail`/`delay` inject
faults per method and path; `down`/`up` stop and restart the listener on the same port
(open connections, watches included, are cut); `expire_watches` sends 410 to watchers;
`requests` records what the client sent (method, path, query, headers, content type, body).

Strategic merge patch is applied as a JSON merge patch: right for every field here,
since Scale and Lease hold no lists that merge by key.
"""

from __future__ import annotations

import contextlib
import copy
import json
import queue
import re
import secrets
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import yaml

JSON = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
_PATCH_TYPES = (MERGE_PATCH, STRATEGIC_MERGE_PATCH, JSON_PATCH)

_ROUTE = re.compile(
    r"^/(?:apis/(?P<group>apps|coordination\.k8s\.io|autoscaling|keda\.sh)"
    r"/(?P<version>v1|v2|v1alpha1)|api/v1)"
    r"(?:/namespaces/(?P<ns>[^/]+))?"
    r"/(?P<resource>deployments|leases|events|horizontalpodautoscalers|scaledobjects)"
    r"(?:/(?P<name>[^/]+))?(?:/(?P<sub>scale|status))?/?$"
)
# Resource, kind, group and apiVersion per collection: error texts and Scale need them.
# Events are the core group's (""), served under /api/v1 like the real ones.
_KINDS = {
    "deployments": ("Deployment", "apps", "apps/v1"),
    "leases": ("Lease", "coordination.k8s.io", "coordination.k8s.io/v1"),
    "events": ("Event", "", "v1"),
    "horizontalpodautoscalers": ("HorizontalPodAutoscaler", "autoscaling", "autoscaling/v2"),
    # KEDA's custom resource: served only while its CRD is "installed" (keda_installed).
    "scaledobjects": ("ScaledObject", "keda.sh", "keda.sh/v1alpha1"),
}
_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """A MicroTime, the format of Lease acquireTime/renewTime."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def status_body(code: int, reason: str, message: str, details: JSON | None = None) -> JSON:
    """A metav1.Status failure, the body of every API error."""
    body: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: JSON | None = None):
        super().__init__(message)
        self.code = code
        self.body = status_body(code, reason, message, details)


def _not_found(resource: str, name: str) -> ApiError:
    _, group, _ = _KINDS[resource]
    return ApiError(
        404,
        "NotFound",
        f'{resource}.{group} "{name}" not found',
        {"name": name, "group": group, "kind": resource},
    )


def _conflict(resource: str, name: str) -> ApiError:
    _, group, _ = _KINDS[resource]
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource}.{group} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        {"name": name, "group": group, "kind": resource},
    )


def _invalid(resource: str, name: str, field_path: str, message: str) -> ApiError:
    kind, group, _ = _KINDS[resource]
    return ApiError(
        422,
        "Invalid",
        f'{kind}.{group} "{name}" is invalid: {field_path}: {message}',
        {
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field_path}],
        },
    )


def forbidden_message(method: str, path: str, user: str) -> str:
    """The apiserver's RBAC denial text for a request, naming verb, resource and group."""
    m = _ROUTE.match(path)
    if not m:
        return f'forbidden: User "{user}" cannot {method.lower()} path "{path}"'
    resource, name, sub, ns = m["resource"], m["name"], m["sub"], m["ns"]
    verb = _VERBS.get(method, method.lower())
    if method == "GET" and not name:
        verb = "list"
    full = f"{resource}/{sub}" if sub else resource
    _, group, _ = _KINDS[resource]
    subject = f'{resource}.{group} "{name}"' if name else f"{resource}.{group}"
    where = f' in the namespace "{ns}"' if ns else " at the cluster scope"
    return (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{full}" '
        f'in API group "{group}"{where}'
    )


_DEFAULT_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


# ---------------------------------------------------------------------------- patches


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, null deletes, the rest replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for p in parts:
        doc = doc[int(p)] if isinstance(doc, list) else doc[p]
    return doc


def json_patch(doc: Any, ops: list[JSON]) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    doc = copy.deepcopy(doc)
    for op in ops:
        kind = op.get("op")
        parts = _pointer(op.get("path", ""))
        if kind == "test":
            if _walk(doc, parts) != op.get("value"):
                raise ValueError(f"test failed at {op.get('path')!r}")
            continue
        if kind in ("move", "copy"):
            src = _pointer(op["from"])
            value = copy.deepcopy(_walk(doc, src))
            if kind == "move":
                doc = json_patch(doc, [{"op": "remove", "path": op["from"]}])
            doc = json_patch(doc, [{"op": "add", "path": op["path"], "value": value}])
            continue
        if not parts:
            if kind in ("add", "replace"):
                doc = copy.deepcopy(op["value"])
                continue
            raise ValueError("cannot remove the whole document")
        parent = _walk(doc, parts[:-1])
        last = parts[-1]
        if kind == "add":
            if isinstance(parent, list):
                idx = len(parent) if last == "-" else int(last)
                parent.insert(idx, copy.deepcopy(op["value"]))
            else:
                parent[last] = copy.deepcopy(op["value"])
        elif kind == "replace":
            if isinstance(parent, list):
                parent[int(last)] = copy.deepcopy(op["value"])
            else:
                if last not in parent:
                    raise ValueError(f"replace of missing path {op.get('path')!r}")
                parent[last] = copy.deepcopy(op["value"])
        elif kind == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                del parent[last]
        else:
            raise ValueError(f"unknown JSON patch op {kind!r}")
    return doc


def apply_patch(doc: JSON, content_type: str, body: Any) -> JSON:
    if content_type == JSON_PATCH:
        if not isinstance(body, list):
            raise ValueError("a JSON patch must be a list of operations")
        out = json_patch(doc, body)
    else:
        if not isinstance(body, dict):
            raise ValueError("a merge patch must be a JSON object")
        out = merge_patch(doc, body)
    if not isinstance(out, dict):
        raise ValueError("the patch did not produce an object")
    return out


# ---------------------------------------------------------------------------- selectors


def _field_value(obj: JSON, path: str) -> str | None:
    cur: Any = obj
    for p in path.split("."):
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return None if cur is None else str(cur)


def parse_field_selector(text: str) -> Callable[[JSON], bool]:
    """`a=b,c!=d` (also `==`): the subset of field selectors the apiserver supports."""
    tests: list[tuple[str, str, bool]] = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            tests.append((k.strip(), v.strip(), False))
        elif "==" in term:
            k, v = term.split("==", 1)
            tests.append((k.strip(), v.strip(), True))
        elif "=" in term:
            k, v = term.split("=", 1)
            tests.append((k.strip(), v.strip(), True))
        else:
            raise ValueError(f"invalid field selector term {term!r}")
    return lambda obj: all((_field_value(obj, k) == v) == eq for k, v, eq in tests)


_SET_TERM = re.compile(r"^\s*(\S+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def parse_label_selector(text: str) -> Callable[[JSON], bool]:
    """Equality (`=`, `==`, `!=`), set (`in`, `notin`) and existence (`k`, `!k`) terms."""
    # Split on commas outside parentheses.
    terms, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    terms.append(cur)
    # (key, op, values) with op one of in, notin, exists, absent.
    tests: list[tuple[str, str, frozenset[str]]] = []
    for term in filter(None, (t.strip() for t in terms)):
        if m := _SET_TERM.match(term):
            vals = frozenset(v.strip() for v in m[3].split(","))
            tests.append((m[1], m[2], vals))
        elif "!=" in term:
            k, v = (x.strip() for x in term.split("!=", 1))
            tests.append((k, "notin", frozenset([v])))
        elif "=" in term:
            k, v = (x.strip() for x in term.replace("==", "=").split("=", 1))
            tests.append((k, "in", frozenset([v])))
        elif term.startswith("!"):
            tests.append((term[1:].strip(), "absent", frozenset()))
        else:
            tests.append((term, "exists", frozenset()))

    def ok(labels: dict[str, str], key: str, op: str, vals: frozenset[str]) -> bool:
        if op == "exists":
            return key in labels
        if op == "absent":
            return key not in labels
        return (labels.get(key) in vals) == (op == "in")

    return lambda obj: all(ok(obj.get("metadata", {}).get("labels") or {}, *t) for t in tests)


# ---------------------------------------------------------------------------- records


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


_END = "end"  # a watcher's stream ends cleanly (timeout, end_watches)
_EXPIRE = "expire"  # a watcher gets a 410 ERROR event, then the stream ends
_CUT = "cut"  # the connection is cut without a final chunk (down/stop)


@dataclass(eq=False)
class _Watcher:
    resource: str
    namespace: str | None
    match: Callable[[JSON], bool]
    bookmarks: bool
    events: queue.Queue[JSON | str] = field(default_factory=queue.Queue)


# ---------------------------------------------------------------------------- server


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeKube

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Cut connections are the point of several tests; stay quiet about them.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
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

    def start_chunked(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def send_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")


class FakeKube:
    """An in-process kube-apiserver stand-in; use as a context manager or start()/stop().

    One resourceVersion counter is shared by all objects, as etcd's revision is.
    """

    def __init__(
        self,
        namespace: str = "court-listener",
        *,
        token: str | None = None,
        user: str = "system:serviceaccount:court-listener:batchctl",
        auto_ready: bool = False,
        expired_watch: Literal["event", "status"] = "event",
    ) -> None:
        self.namespace = namespace
        self.token = token or f"fake-token-{secrets.token_hex(16)}"
        self.user = user
        # When True, a scale write is reflected in status at once (pods start instantly).
        self.auto_ready = auto_ready
        # How a watch from a compacted resourceVersion fails: the apiserver's watch cache
        # answers 200 plus an ERROR event; some paths answer a plain 410 response.
        self.expired_watch = expired_watch
        # The apiserver tries to send a bookmark just before a watch times out; the
        # client then resumes from the newest rv. Turn off to resume from older ones.
        self.bookmark_on_end = True
        # Whether KEDA's ScaledObject CRD exists (add_scaled_object installs it).
        self.keda_installed = False
        self._lock = threading.RLock()
        self._rv = 1000
        self._compacted = 0  # watches from a resourceVersion below this get 410
        self._objects: dict[str, dict[tuple[str, str], JSON]] = {r: {} for r in _KINDS}
        self._history: list[tuple[int, str, str, JSON]] = []  # (rv, resource, type, obj)
        self._watchers: set[_Watcher] = set()
        self._faults: list[Fault] = []
        self._requests: list[Request] = []
        self._conns: set[socket.socket] = set()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()  # set while down: wakes delayed handlers
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeKube:
        self._listen()
        return self

    def stop(self) -> None:
        self.down()

    def __enter__(self) -> FakeKube:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _listen(self) -> None:
        self._closing.clear()
        server = _HTTPServer(("127.0.0.1", self.port), _Handler)
        server.fake = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def down(self) -> None:
        """Stop listening (connections are refused) and cut every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        self._closing.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            for w in self._watchers:
                w.events.put(_CUT)
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def up(self) -> None:
        """Listen again on the same port, with the same objects."""
        if self._server is None:
            self._listen()

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    # ------------------------------------------------------------------ kubeconfig

    def kubeconfig(
        self, *, context: str = "fake", namespace: str | None = None, token: str | None = None
    ) -> JSON:
        """A kubeconfig document for this server; a second context points nowhere."""
        return kubeconfig_dict(
            self.url,
            token if token is not None else self.token,
            context,
            namespace or self.namespace,
        )

    def write_kubeconfig(
        self,
        directory: str | Path,
        *,
        context: str = "fake",
        namespace: str | None = None,
        token: str | None = None,
        filename: str = "kubeconfig",
    ) -> Path:
        path = Path(directory) / filename
        path.write_text(
            yaml.safe_dump(self.kubeconfig(context=context, namespace=namespace, token=token))
        )
        path.chmod(0o600)
        return path

    # ------------------------------------------------------------------ objects

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    def add_deployment(
        self,
        name: str,
        replicas: int = 0,
        ready: int = 0,
        *,
        namespace: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> JSON:
        """Create a Deployment (an ADDED event) that has `ready` ready pods."""
        ns = namespace or self.namespace
        with self._lock:
            if (ns, name) in self._objects["deployments"]:
                raise ValueError(f"deployment {ns}/{name} exists")
            rv = self._next_rv()
            obj = _deployment(ns, name, replicas, labels or {"app": name}, rv)
            _set_status(obj, pods=ready, ready=ready)
            self._objects["deployments"][(ns, name)] = obj
            self._emit("deployments", "ADDED", obj)
            return copy.deepcopy(obj)

    def set_replicas(
        self,
        name: str,
        spec: int | None = None,
        ready: int | None = None,
        *,
        pods: int | None = None,
        namespace: str | None = None,
    ) -> int:
        """Play the controller: set spec.replicas and/or ready pods; return the new rv.

        Bumps resourceVersion (and generation when the spec changes) and sends MODIFIED
        to open watches. `pods` (status.replicas) defaults to max(spec, ready).
        """
        ns = namespace or self.namespace
        with self._lock:
            obj = self._objects["deployments"].get((ns, name))
            if obj is None:
                raise KeyError(f"no deployment {ns}/{name}")
            obj = copy.deepcopy(obj)
            if spec is not None and spec != obj["spec"]["replicas"]:
                obj["spec"]["replicas"] = spec
                obj["metadata"]["generation"] += 1
            cur_ready = obj["status"].get("readyReplicas", 0)
            new_ready = cur_ready if ready is None else ready
            n_pods = pods if pods is not None else max(obj["spec"]["replicas"], new_ready)
            _set_status(obj, pods=n_pods, ready=new_ready)
            return self._store("deployments", obj)

    def add_hpa(
        self,
        name: str,
        target: str,
        *,
        kind: str = "Deployment",
        namespace: str | None = None,
        owner: JSON | None = None,
    ) -> JSON:
        """An autoscaling/v2 HorizontalPodAutoscaler whose scaleTargetRef is `target`,
        shaped as the apiserver stores one (a CPU target, min 1, max 10); `owner`, a
        ScaledObject, makes it the HPA KEDA creates for it."""
        ns = namespace or self.namespace
        with self._lock:
            obj = _new_meta_obj("HorizontalPodAutoscaler", ns, name, self._rv + 1)
            if owner is not None:
                so = owner["metadata"]["name"]
                obj["metadata"]["labels"] = {"scaledobject.keda.sh/name": so}
                obj["metadata"]["ownerReferences"] = [
                    {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": so,
                     "uid": owner["metadata"]["uid"], "controller": True}
                ]  # fmt: skip
            obj["spec"] = {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target},
                "minReplicas": 1,
                "maxReplicas": 10,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 80},
                        },
                    }
                ],
            }
            self._store("horizontalpodautoscalers", obj, created=True)
            return copy.deepcopy(obj)

    def add_scaled_object(
        self, name: str, target: str, *, namespace: str | None = None, with_hpa: bool = True
    ) -> JSON:
        """A keda.sh/v1alpha1 ScaledObject on Deployment `target` (installing KEDA's CRD:
        the group is served from now on) and, as KEDA's operator does, the HPA
        `keda-hpa-<name>` it owns."""
        ns = namespace or self.namespace
        with self._lock:
            self.keda_installed = True
            obj = _new_meta_obj("ScaledObject", ns, name, self._rv + 1)
            # scaleTargetRef's apiVersion and kind default to apps/v1 Deployment.
            obj["spec"] = {
                "scaleTargetRef": {"name": target},
                "minReplicaCount": 0,
                "maxReplicaCount": 20,
                "triggers": [
                    {"type": "redis", "metadata": {"listName": target, "listLength": "5"}}
                ],
            }
            self._store("scaledobjects", obj, created=True)
            if with_hpa:
                self.add_hpa(f"keda-hpa-{name}", target, namespace=ns, owner=obj)
            return copy.deepcopy(obj)

    def delete_deployment(self, name: str, *, namespace: str | None = None) -> None:
        ns = namespace or self.namespace
        with self._lock:
            self._delete("deployments", ns, name)

    def deployment(self, name: str, *, namespace: str | None = None) -> JSON:
        with self._lock:
            return copy.deepcopy(self._objects["deployments"][(namespace or self.namespace, name)])

    def replicas(self, name: str, *, namespace: str | None = None) -> int:
        return int(self.deployment(name, namespace=namespace)["spec"]["replicas"])

    def events(self, *, namespace: str | None = None) -> list[JSON]:
        """Every Event created in `namespace`, oldest first."""
        ns = namespace or self.namespace
        with self._lock:
            found = [
                copy.deepcopy(o) for (ons, _), o in self._objects["events"].items() if ons == ns
            ]
        return sorted(found, key=lambda o: int(o["metadata"]["resourceVersion"]))

    def lease(self, name: str, *, namespace: str | None = None) -> JSON | None:
        with self._lock:
            obj = self._objects["leases"].get((namespace or self.namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def put_lease(self, name: str, spec: JSON, *, namespace: str | None = None) -> JSON:
        """Create or overwrite a Lease as if another client wrote it."""
        ns = namespace or self.namespace
        with self._lock:
            old = self._objects["leases"].get((ns, name))
            obj = copy.deepcopy(old) if old is not None else _new_meta_obj("Lease", ns, name, 0)
            obj["spec"] = copy.deepcopy(spec)
            self._store("leases", obj, created=old is None)
            return copy.deepcopy(obj)

    def _store(self, resource: str, obj: JSON, *, created: bool = False) -> int:
        """Save obj with a new resourceVersion and tell the watchers. Lock held."""
        rv = self._next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        self._objects[resource][key] = obj
        self._emit(resource, "ADDED" if created else "MODIFIED", obj)
        return rv

    def _delete(self, resource: str, ns: str, name: str) -> JSON:
        obj = self._objects[resource].pop((ns, name), None)
        if obj is None:
            raise _not_found(resource, name)
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self._next_rv())
        self._emit(resource, "DELETED", obj)
        return obj

    def _emit(self, resource: str, type_: str, obj: JSON) -> None:
        rv = int(obj["metadata"]["resourceVersion"])
        snapshot = copy.deepcopy(obj)
        self._history.append((rv, resource, type_, snapshot))
        for w in self._watchers:
            if w.resource == resource and self._visible(w, snapshot):
                w.events.put({"type": type_, "object": snapshot})

    @staticmethod
    def _visible(w: _Watcher, obj: JSON) -> bool:
        if w.namespace is not None and obj["metadata"]["namespace"] != w.namespace:
            return False
        return w.match(obj)

    # ------------------------------------------------------------------ watch control

    @property
    def open_watches(self) -> int:
        with self._lock:
            return len(self._watchers)

    def end_watches(self) -> None:
        """End every open watch cleanly, as the apiserver does at timeoutSeconds."""
        with self._lock:
            for w in self._watchers:
                w.events.put(_END)

    def compact(self) -> None:
        """Forget history: watches from any older resourceVersion now get 410 Gone."""
        with self._lock:
            self._compacted = self._rv + 1
            self._history.clear()

    def expire_watches(self) -> None:
        """Compact, then send every open watch a 410 ERROR event and end it."""
        with self._lock:
            self.compact()
            for w in self._watchers:
                w.events.put(_EXPIRE)

    def bookmark(self) -> None:
        """Send a BOOKMARK with the current resourceVersion to watches that asked for them."""
        with self._lock:
            for w in self._watchers:
                if w.bookmarks:
                    w.events.put(self._bookmark_event(w.resource))

    def _bookmark_event(self, resource: str) -> JSON:
        kind, _, api_version = _KINDS[resource]
        return {
            "type": "BOOKMARK",
            "object": {
                "kind": kind,
                "apiVersion": api_version,
                "metadata": {"resourceVersion": str(self._rv)},
            },
        }

    # ------------------------------------------------------------------ faults

    def fail(
        self,
        status: int,
        *,
        method: str | None = None,
        path: str = ".*",
        watch: bool | None = None,
        times: int | None = None,
        message: str | None = None,
    ) -> Fault:
        """Answer matching requests with `status` (a Status body); `path` is a regex."""
        f = Fault(re.compile(path), method, watch, status, 0.0, message, times)
        with self._lock:
            self._faults.append(f)
        return f

    def delay(
        self,
        seconds: float,
        *,
        method: str | None = None,
        path: str = ".*",
        watch: bool | None = None,
        times: int | None = None,
    ) -> Fault:
        """Hold matching requests `seconds` before answering (cut short by down())."""
        f = Fault(re.compile(path), method, watch, None, seconds, None, times)
        with self._lock:
            self._faults.append(f)
        return f

    def hold(
        self,
        *,
        method: str | None = None,
        path: str = ".*",
        watch: bool | None = None,
        times: int | None = None,
    ) -> Fault:
        """Hold matching requests until `fault.release()` (or down()); `fault.held`
        counts arrivals, so a test can order its steps without sleeping."""
        f = Fault(re.compile(path), method, watch, None, 0.0, None, times, threading.Event())
        with self._lock:
            self._faults.append(f)
        return f

    def clear_faults(self) -> None:
        """Drop all faults; held requests go on."""
        with self._lock:
            faults, self._faults = self._faults, []
        for f in faults:
            f.release()

    # ------------------------------------------------------------------ records

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def requests_to(
        self, method: str | None = None, path: str = ".*", watch: bool | None = None
    ) -> list[Request]:
        pat = re.compile(path)
        return [
            r
            for r in self.requests
            if (method is None or r.method == method)
            and (watch is None or r.is_watch == watch)
            and pat.search(r.path)
        ]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # ------------------------------------------------------------------ serving

    def _serve(self, req: Request, h: _Handler) -> None:
        with self._lock:
            self._requests.append(req)
            faults = [f for f in self._faults if f.matches(req.method, req.path, req.is_watch)]
            for f in faults:
                f.held += 1
                if f.remaining is not None:
                    f.remaining -= 1
        for f in faults:
            if f.gate is not None:
                while not f.gate.wait(0.05):
                    if self._closing.is_set():
                        h.close_connection = True
                        return
        delay = sum(f.delay for f in faults)
        if delay > 0 and self._closing.wait(delay):
            # Went down while we waited: the connection is cut without an answer.
            h.close_connection = True
            return
        forced = next((f for f in faults if f.status is not None), None)
        if forced is not None and forced.status is not None:
            code = forced.status
            if code == 403 and forced.message is None:
                message = forbidden_message(req.method, req.path, self.user)
            else:
                message = forced.message or f"injected {code}"
            h.send_json(code, status_body(code, _DEFAULT_REASONS.get(code, "Unknown"), message))
            return
        if req.headers.get("authorization") != f"Bearer {self.token}":
            h.send_json(401, status_body(401, "Unauthorized", "Unauthorized"))
            return
        try:
            if req.path == "/version":
                h.send_json(200, _VERSION)
                return
            m = _ROUTE.match(req.path)
            if m is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            if req.method == "GET" and m["name"] is None and req.is_watch:
                self._watch(req, m, h)
                return
            code, body = self._handle(req, m)
        except ApiError as e:
            code, body = e.code, e.body
        h.send_json(code, body)

    def _handle(self, req: Request, m: re.Match[str]) -> tuple[int, JSON]:
        resource, ns, name, sub = m["resource"], m["ns"], m["name"], m["sub"]
        if (m["group"] or "") != _KINDS[resource][1] or (
            m["group"] and f"{m['group']}/{m['version']}" != _KINDS[resource][2]
        ):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if resource == "scaledobjects" and not self.keda_installed:
            # Without KEDA's CRD the apiserver knows no keda.sh group: 404, as for any path
            # it does not serve.
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if sub == "status" or (sub == "scale" and resource != "deployments"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if name is None:
            if req.method == "GET":
                return 200, self._list(resource, ns, req.query)
            if req.method == "POST" and ns is not None and resource in ("leases", "events"):
                return self._create(resource, ns, req)
            raise ApiError(405, "MethodNotAllowed", f"{req.method} is not allowed here")
        if ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if sub == "scale":
            return self._scale(req, ns, name)
        if req.method == "GET":
            with self._lock:
                obj = self._objects[resource].get((ns, name))
                if obj is None:
                    raise _not_found(resource, name)
                return 200, copy.deepcopy(obj)
        if req.method == "PATCH":
            return self._patch(resource, ns, name, req)
        if req.method == "PUT":
            return self._replace(resource, ns, name, req)
        if req.method == "DELETE" and resource == "leases":
            with self._lock:
                obj = self._delete(resource, ns, name)
            return 200, obj
        raise ApiError(405, "MethodNotAllowed", f"{req.method} is not allowed here")

    def _selector(self, query: dict[str, str]) -> Callable[[JSON], bool]:
        try:
            by_field = parse_field_selector(query.get("fieldSelector", ""))
            by_label = parse_label_selector(query.get("labelSelector", ""))
        except ValueError as e:
            raise ApiError(400, "BadRequest", str(e)) from None
        return lambda o: by_field(o) and by_label(o)

    def _list(self, resource: str, ns: str | None, query: dict[str, str]) -> JSON:
        match = self._selector(query)
        kind, _, api_version = _KINDS[resource]
        with self._lock:
            items = [
                copy.deepcopy(o)
                for (ons, _), o in sorted(self._objects[resource].items())
                if (ns is None or ons == ns) and match(o)
            ]
            rv = self._rv
        # Like the real API, list items carry no kind/apiVersion of their own.
        for o in items:
            o.pop("kind", None)
            o.pop("apiVersion", None)
        return {
            "kind": f"{kind}List",
            "apiVersion": api_version,
            "metadata": {"resourceVersion": str(rv)},
            "items": items,
        }

    def _watch(self, req: Request, m: re.Match[str], h: _Handler) -> None:
        resource, ns = m["resource"], m["ns"]
        match = self._selector(req.query)
        rv_text = req.query.get("resourceVersion", "")
        timeout = float(req.query.get("timeoutSeconds") or 1800)
        w = _Watcher(resource, ns, match, req.query.get("allowWatchBookmarks") == "true")
        with self._lock:
            if rv_text in ("", "0"):
                # No resourceVersion: synthetic ADDED events for the current state first.
                for o in sorted(self._objects[resource].values(), key=_key):
                    if self._visible(w, o):
                        w.events.put({"type": "ADDED", "object": copy.deepcopy(o)})
            else:
                try:
                    since = int(rv_text)
                except ValueError:
                    raise ApiError(
                        400, "BadRequest", f"invalid resourceVersion {rv_text!r}"
                    ) from None
                if since < self._compacted - 1:
                    expired = self._expired_status(since)
                    if self.expired_watch == "status":
                        raise ApiError(410, "Expired", expired["message"])
                    w.events.put(_EXPIRE)
                else:
                    for rv, res, type_, o in self._history:
                        if rv > since and res == resource and self._visible(w, o):
                            w.events.put({"type": type_, "object": copy.deepcopy(o)})
            self._watchers.add(w)
        try:
            h.start_chunked()
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    item: JSON | str = _END
                else:
                    try:
                        item = w.events.get(timeout=min(left, 0.1))
                    except queue.Empty:
                        # Like Go's server, notice a client that hung up on an idle watch.
                        if _peer_closed(h.connection):
                            h.close_connection = True
                            return
                        continue
                if item == _CUT:
                    h.close_connection = True
                    return
                if item == _END:
                    if w.bookmarks and self.bookmark_on_end:
                        with self._lock:
                            ev = self._bookmark_event(resource)
                        h.send_chunk(json.dumps(ev).encode() + b"\n")
                    h.end_chunked()
                    return
                if item == _EXPIRE:
                    with self._lock:
                        status = self._expired_status(int(rv_text or 0))
                    h.send_chunk(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
                    h.end_chunked()
                    return
                assert isinstance(item, dict)
                h.send_chunk(json.dumps(item).encode() + b"\n")
        finally:
            with self._lock:
                self._watchers.discard(w)

    def _expired_status(self, since: int) -> JSON:
        return status_body(
            410, "Expired", f"too old resource version: {since} ({max(self._compacted - 1, 0)})"
        )

    def _create(self, resource: str, ns: str, req: Request) -> tuple[int, JSON]:
        body = _json_body(req)
        meta = body.get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise _invalid(resource, "", "metadata.name", "Required value: name is required")
        if meta.get("resourceVersion"):
            raise _invalid(
                resource, name, "metadata.resourceVersion", "must not be set on objects to create"
            )
        if meta.get("namespace") not in (None, ns):
            raise ApiError(400, "BadRequest", "the namespace of the object does not match the URL")
        _validate(resource, name, body)
        with self._lock:
            if (ns, name) in self._objects[resource]:
                _, group, _ = _KINDS[resource]
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{resource}.{group} "{name}" already exists',
                    {"name": name, "group": group, "kind": resource},
                )
            obj = _new_meta_obj(_KINDS[resource][0], ns, name, 0)
            obj["metadata"].update(
                {k: v for k, v in meta.items() if k in ("labels", "annotations")}
            )
            if resource == "events":
                # An Event has no spec: its fields sit at the top level.
                del obj["spec"]
                obj.update({k: copy.deepcopy(v) for k, v in body.items() if k not in _MANAGED})
            else:
                obj["spec"] = copy.deepcopy(body.get("spec") or {})
            self._store(resource, obj, created=True)
            return 201, copy.deepcopy(obj)

    def _replace(self, resource: str, ns: str, name: str, req: Request) -> tuple[int, JSON]:
        body = _json_body(req)
        meta = body.get("metadata") or {}
        if meta.get("name") not in (None, name):
            raise ApiError(400, "BadRequest", "the name of the object does not match the URL")
        with self._lock:
            cur = self._objects[resource].get((ns, name))
            if cur is None:
                raise _not_found(resource, name)
            if resource == "leases" and not meta.get("resourceVersion"):
                raise _invalid(
                    resource, name, "metadata.resourceVersion", "must be specified for an update"
                )
            if (
                meta.get("resourceVersion")
                and meta["resourceVersion"] != cur["metadata"]["resourceVersion"]
            ):
                raise _conflict(resource, name)
            _validate(resource, name, body)
            obj = copy.deepcopy(cur)
            for k in ("labels", "annotations"):
                if k in meta:
                    obj["metadata"][k] = copy.deepcopy(meta[k])
                else:
                    obj["metadata"].pop(k, None)
            obj["spec"] = copy.deepcopy(body.get("spec") or {})
            if resource == "deployments" and obj["spec"] != cur["spec"]:
                obj["metadata"]["generation"] += 1
            self._store(resource, obj)
            return 200, copy.deepcopy(obj)

    def _patch(self, resource: str, ns: str, name: str, req: Request) -> tuple[int, JSON]:
        with self._lock:
            cur = self._objects[resource].get((ns, name))
            if cur is None:
                raise _not_found(resource, name)
            new = _patched(cur, req)
            if new["metadata"].get("resourceVersion") != cur["metadata"]["resourceVersion"]:
                raise _conflict(resource, name)
            _validate(resource, name, new)
            obj = copy.deepcopy(cur)
            obj["spec"] = new.get("spec") or {}
            for k in ("labels", "annotations"):
                if k in new["metadata"]:
                    obj["metadata"][k] = new["metadata"][k]
                else:
                    obj["metadata"].pop(k, None)
            if obj == cur:
                return 200, copy.deepcopy(cur)  # a no-op patch writes nothing
            if resource == "deployments" and obj["spec"] != cur["spec"]:
                obj["metadata"]["generation"] += 1
            self._store(resource, obj)
            return 200, copy.deepcopy(obj)

    def _scale(self, req: Request, ns: str, name: str) -> tuple[int, JSON]:
        with self._lock:
            dep = self._objects["deployments"].get((ns, name))
            if dep is None:
                raise _not_found("deployments", name)
            scale = _scale_of(dep)
            if req.method == "GET":
                return 200, scale
            if req.method == "PATCH":
                new = _patched(scale, req)
            elif req.method == "PUT":
                new = _json_body(req)
                if (new.get("metadata") or {}).get("name") not in (None, name):
                    raise ApiError(400, "BadRequest", "the name of the object does not match")
                new.setdefault("metadata", {}).setdefault(
                    "resourceVersion", scale["metadata"]["resourceVersion"]
                )
            else:
                raise ApiError(405, "MethodNotAllowed", f"{req.method} is not allowed here")
            new_rv = (new.get("metadata") or {}).get("resourceVersion")
            if new_rv and new_rv != scale["metadata"]["resourceVersion"]:
                raise _conflict("deployments", name)
            replicas = (new.get("spec") or {}).get("replicas", 0)
            if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
                raise ApiError(
                    422,
                    "Invalid",
                    f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                    f"{json.dumps(replicas)}: must be greater than or equal to 0",
                )
            if replicas != dep["spec"]["replicas"]:
                dep = copy.deepcopy(dep)
                dep["spec"]["replicas"] = replicas
                dep["metadata"]["generation"] += 1
                if self.auto_ready:
                    _set_status(dep, pods=replicas, ready=replicas)
                self._store("deployments", dep)
            return 200, _scale_of(dep)


# ---------------------------------------------------------------------------- objects


_VERSION = {
    "major": "1",
    "minor": "34",
    "gitVersion": "v1.34.0-fake",
    "gitCommit": "0" * 40,
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.24",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def _key(obj: JSON) -> tuple[str, str]:
    return obj["metadata"]["namespace"], obj["metadata"]["name"]


# Top-level fields the server owns on create.
_MANAGED = ("apiVersion", "kind", "metadata")


def _new_meta_obj(kind: str, ns: str, name: str, rv: int) -> JSON:
    api_version = next(v for k, _, v in _KINDS.values() if k == kind)
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": str(uuid.uuid4()),
            "resourceVersion": str(rv),
            "creationTimestamp": now_rfc3339(),
        },
        "spec": {},
    }


def _deployment(ns: str, name: str, replicas: int, labels: dict[str, str], rv: int) -> JSON:
    obj = _new_meta_obj("Deployment", ns, name, rv)
    obj["metadata"].update(
        {
            "generation": 1,
            "labels": dict(labels),
            "annotations": {"deployment.kubernetes.io/revision": "1"},
        }
    )
    obj["spec"] = {
        "replicas": replicas,
        "selector": {"matchLabels": dict(labels)},
        "template": {
            "metadata": {"labels": dict(labels)},
            "spec": {
                "containers": [
                    {
                        "name": "worker",
                        "image": "ghcr.io/example/celery-worker:1.0",
                        "args": ["celery", "worker", "--queues", name],
                        "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                        "imagePullPolicy": "IfNotPresent",
                    }
                ],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 300,
                "dnsPolicy": "ClusterFirst",
                "securityContext": {},
                "schedulerName": "default-scheduler",
            },
        },
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
        },
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    }
    obj["status"] = {}
    return obj


def _set_status(obj: JSON, *, pods: int, ready: int) -> None:
    """DeploymentStatus as the controller writes it: zero counts are omitted (omitempty)."""
    status: JSON = {"observedGeneration": obj["metadata"]["generation"]}
    counts = {
        "replicas": pods,
        "updatedReplicas": pods,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": max(pods - ready, 0),
    }
    status.update({k: v for k, v in counts.items() if v})
    stamp = now_rfc3339()
    available = ready >= obj["spec"]["replicas"]
    rs_name = f"{obj['metadata']['name']}-5d8f7c9b4"
    status["conditions"] = [
        {
            "type": "Available",
            "status": "True" if available else "False",
            "lastUpdateTime": stamp,
            "lastTransitionTime": stamp,
            "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
            "message": "Deployment has minimum availability."
            if available
            else "Deployment does not have minimum availability.",
        },
        {
            "type": "Progressing",
            "status": "True",
            "lastUpdateTime": stamp,
            "lastTransitionTime": stamp,
            "reason": "NewReplicaSetAvailable",
            "message": f'ReplicaSet "{rs_name}" has successfully progressed.',
        },
    ]
    obj["status"] = status


def _scale_of(dep: JSON) -> JSON:
    meta = dep["metadata"]
    selector = ",".join(
        f"{k}={v}" for k, v in sorted(dep["spec"]["selector"]["matchLabels"].items())
    )
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": dep["spec"]["replicas"]},
        "status": {"replicas": dep["status"].get("replicas", 0), "selector": selector},
    }


def _peer_closed(sock: socket.socket) -> bool:
    """True when the client closed its end (readable with nothing to read)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _json_body(req: Request) -> JSON:
    try:
        body = json.loads(req.body or b"null")
    except ValueError as e:
        raise ApiError(400, "BadRequest", f"the body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "the body must be a JSON object")
    return body


def _patched(cur: JSON, req: Request) -> JSON:
    ctype = (req.content_type or "").split(";")[0].strip()
    if ctype not in _PATCH_TYPES:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(_PATCH_TYPES)}",
        )
    try:
        body = json.loads(req.body or b"null")
        return apply_patch(cur, ctype, body)
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise ApiError(422, "Invalid", f"the patch could not be applied: {e}") from None


def _validate(resource: str, name: str, obj: JSON) -> None:
    spec = obj.get("spec") or {}
    if resource == "leases":
        d = spec.get("leaseDurationSeconds")
        if d is not None and (not isinstance(d, int) or d <= 0):
            raise _invalid(resource, name, "spec.leaseDurationSeconds", "must be greater than 0")
        holder = spec.get("holderIdentity")
        if holder is not None and not isinstance(holder, str):
            raise _invalid(resource, name, "spec.holderIdentity", "must be a string")
    elif resource == "events":
        involved = obj.get("involvedObject") or {}
        if not involved.get("name") or not involved.get("kind"):
            raise _invalid(resource, name, "involvedObject", "Required value: kind and name")
        if obj.get("type") not in ("Normal", "Warning"):
            raise _invalid(resource, name, "type", "must be Normal or Warning")
        if not obj.get("reason"):
            raise _invalid(resource, name, "reason", "Required value")
    elif resource == "deployments":
        r = spec.get("replicas")
        if not isinstance(r, int) or isinstance(r, bool) or r < 0:
            raise _invalid(resource, name, "spec.replicas", "must be greater than or equal to 0")


def kubeconfig_dict(
    server: str, token: str, context: str = "fake", namespace: str = "default"
) -> JSON:
    """A kubeconfig with a bearer token for `server`, plus an unreachable second context."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "fake", "cluster": {"server": server}},
            # Port 9 (discard) on loopback: nothing listens, connections are refused.
            {"name": "nowhere", "cluster": {"server": "http://127.0.0.1:9"}},
        ],
        "users": [{"name": "fake-user", "user": {"token": token}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": "fake", "user": "fake-user", "namespace": namespace},
            },
            {"name": "nowhere", "context": {"cluster": "nowhere", "user": "fake-user"}},
        ],
        "current-context": context,
    }
