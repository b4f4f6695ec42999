"""How the fake API server answers: authentication, injected faults, then get, list,
watch, create, replace, patch and delete of each resource, and the scale subresource,
with the real optimistic-concurrency rules (409 on a stale resourceVersion)."""

from __future__ import annotations

import copy
import json
import queue
import re
import threading
import time
from collections.abc import Callable
from typing import Literal

from tests.support.fakekube.admission import AdmissionPolicies, Write
from tests.support.fakekube.auth import (
    Attributes,
    Rbac,
    UserInfo,
    access_review_attributes,
    forbidden_text,
    self_subject_access_review,
    self_subject_review,
)
from tests.support.fakekube.errors import (
    DEFAULT_REASONS,
    ApiError,
    conflict,
    forbidden_message,
    invalid,
    not_found,
    status_body,
)
from tests.support.fakekube.objects import (
    MANAGED,
    VERSION,
    new_object,
    object_key,
    scale_of,
    set_status,
    validate,
)
from tests.support.fakekube.proxy import (
    METHOD_VERBS,
    PROXY,
    Service,
    backend_url,
    forward,
    split_name,
)
from tests.support.fakekube.replicasets import ReplicaSets, validate_pod
from tests.support.fakekube.routes import JSON, KINDS, REVIEWS, ROUTE, TOP_LEVEL
from tests.support.fakekube.selectors import parse_field_selector, parse_label_selector
from tests.support.fakekube.store import CUT, END, EXPIRE, Watcher
from tests.support.fakekube.wire import (
    Fault,
    Handler,
    Request,
    json_body,
    patched,
    peer_closed,
    request_attributes,
)


class Api(ReplicaSets):
    """The request handling of FakeKube (server.py), which sets these attributes."""

    user: str
    token: str
    auto_ready: bool
    expired_watch: Literal["event", "status"]
    bookmark_on_end: bool
    keda_installed: bool
    self_subject_review: bool
    rbac: Rbac | None
    admission: AdmissionPolicies | None
    _users: dict[str, UserInfo]
    _services: dict[tuple[str, str], Service]
    _faults: list[Fault]
    _requests: list[Request]
    _closing: threading.Event

    def _serve(self, req: Request, h: Handler) -> None:
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
            h.send_json(code, status_body(code, DEFAULT_REASONS.get(code, "Unknown"), message))
            return
        user = self._authenticate(req)
        if user is None:
            h.send_json(401, status_body(401, "Unauthorized", "Unauthorized"))
            return
        try:
            if req.path == "/version":
                h.send_json(200, VERSION)
                return
            if req.path in REVIEWS:
                code, body = self._review(req, user)
                h.send_json(code, body)
                return
            if (p := PROXY.match(req.path)) is not None:
                self._proxy(req, p, user, h)
                return
            m = ROUTE.match(req.path)
            if m is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            self._authorize(user, request_attributes(req, m))
            if req.method == "GET" and m["name"] is None and req.is_watch:
                self._watch(req, m, h)
                return
            code, body = self._handle(req, m, user)
        except ApiError as e:
            code, body = e.code, e.body
        h.send_json(code, body)

    # -- who calls, and what they may do (auth.py) -----------------------------------

    def _authenticate(self, req: Request) -> UserInfo | None:
        header = req.headers.get("authorization") or ""
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        with self._lock:
            return self._users.get(token) if token else None

    def _authorize(self, user: UserInfo, a: Attributes) -> None:
        """403 with the apiserver's Status body unless RBAC (once loaded) allows `a`."""
        with self._lock:
            rbac = self.rbac
        if rbac is not None and not rbac.allows(user, a):
            name = a.name or ""
            raise ApiError(
                403,
                "Forbidden",
                forbidden_text(user.username, a),
                {"name": name, "group": a.group, "kind": a.resource.split("/")[0]},
            )

    def _admit(
        self, operation: str, resource: str, ns: str, obj: JSON, old: JSON | None, user: UserInfo
    ) -> None:
        """The loaded ValidatingAdmissionPolicies (admission.py) on a write, after RBAC
        and the object's own validation, before it is stored (called under the lock)."""
        if self.admission is None:
            return
        _, group, api_version = KINDS[resource]
        rbac = self.rbac
        w = Write(operation, group, api_version.split("/")[-1], resource, ns, obj, old, user)
        self.admission.check(w, lambda a: rbac is None or rbac.allows(user, a))

    def _review(self, req: Request, user: UserInfo) -> tuple[int, JSON]:
        """POST a SelfSubjectReview (who am I) or SelfSubjectAccessReview (may I)."""
        if self.self_subject_review is False and req.path.startswith("/apis/authentication"):
            # A cluster older than 1.28 (or with the API turned off) does not serve it.
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if req.method != "POST":
            raise ApiError(405, "MethodNotAllowed", f"{req.method} is not allowed here")
        group, resource = REVIEWS[req.path]
        self._authorize(user, Attributes("create", group, resource, None, None))
        body = json_body(req)
        if resource == "selfsubjectreviews":
            return 201, self_subject_review(user)
        try:
            wanted = access_review_attributes(body)
        except ValueError as e:
            raise ApiError(422, "Invalid", f"SelfSubjectAccessReview is invalid: {e}") from None
        with self._lock:
            rbac = self.rbac
        allowed = rbac is None or rbac.allows(user, wanted)
        reason = "RBAC: allowed by a rule" if allowed and rbac is not None else ""
        return 201, self_subject_access_review(body, allowed, reason)

    def _proxy(self, req: Request, p: re.Match[str], user: UserInfo, h: Handler) -> None:
        """The service proxy (proxy.py): authorize services/proxy, then forward."""
        verb = METHOD_VERBS.get(req.method, req.method.lower())
        self._authorize(user, Attributes(verb, "", "services/proxy", p["name"], p["ns"]))
        _, name, _ = split_name(p["name"])
        with self._lock:
            service = self._services.get((p["ns"], name))
        base = backend_url(service, p["name"])
        code, ctype, data = forward(base, req.method, p["rest"] or "/", req.query, req.headers,
                                    req.body)  # fmt: skip
        h.send_raw(code, ctype, data)

    def _handle(self, req: Request, m: re.Match[str], user: UserInfo) -> tuple[int, JSON]:
        resource, ns, name, sub = m["resource"], m["ns"], m["name"], m["sub"]
        if (m["group"] or "") != KINDS[resource][1] or (
            m["group"] and f"{m['group']}/{m['version']}" != KINDS[resource][2]
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
            if (
                req.method == "POST"
                and ns is not None
                and resource
                in (
                    "leases",
                    "events",
                    "configmaps",
                )
            ):
                return self._create(resource, ns, req, user)
            raise ApiError(405, "MethodNotAllowed", f"{req.method} is not allowed here")
        if ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if sub == "scale":
            return self._scale(req, ns, name)
        if req.method == "GET":
            with self._lock:
                obj = self._objects[resource].get((ns, name))
                if obj is None:
                    raise not_found(resource, name)
                return 200, copy.deepcopy(obj)
        if req.method == "PATCH":
            return self._patch(resource, ns, name, req, user)
        if req.method == "PUT":
            return self._replace(resource, ns, name, req, user)
        if req.method == "DELETE" and resource in ("leases", "configmaps"):
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
        kind, _, api_version = KINDS[resource]
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

    def _watch(self, req: Request, m: re.Match[str], h: Handler) -> None:
        resource, ns = m["resource"], m["ns"]
        match = self._selector(req.query)
        rv_text = req.query.get("resourceVersion", "")
        timeout = float(req.query.get("timeoutSeconds") or 1800)
        w = Watcher(resource, ns, match, req.query.get("allowWatchBookmarks") == "true")
        with self._lock:
            if rv_text in ("", "0"):
                # No resourceVersion: synthetic ADDED events for the current state first.
                for o in sorted(self._objects[resource].values(), key=object_key):
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
                    w.events.put(EXPIRE)
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
                    item: JSON | str = END
                else:
                    try:
                        item = w.events.get(timeout=min(left, 0.1))
                    except queue.Empty:
                        # Like Go's server, notice a client that hung up on an idle watch.
                        if peer_closed(h.connection):
                            h.close_connection = True
                            return
                        continue
                if item == CUT:
                    h.close_connection = True
                    return
                if item == END:
                    if w.bookmarks and self.bookmark_on_end:
                        with self._lock:
                            ev = self._bookmark_event(resource)
                        h.send_chunk(json.dumps(ev).encode() + b"\n")
                    h.end_chunked()
                    return
                if item == EXPIRE:
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

    def _create(self, resource: str, ns: str, req: Request, user: UserInfo) -> tuple[int, JSON]:
        body = json_body(req)
        meta = body.get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise invalid(resource, "", "metadata.name", "Required value: name is required")
        if meta.get("resourceVersion"):
            raise invalid(
                resource, name, "metadata.resourceVersion", "must not be set on objects to create"
            )
        if meta.get("namespace") not in (None, ns):
            raise ApiError(400, "BadRequest", "the namespace of the object does not match the URL")
        validate(resource, name, body)
        with self._lock:
            if (ns, name) in self._objects[resource]:
                _, group, _ = KINDS[resource]
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{resource}.{group} "{name}" already exists',
                    {"name": name, "group": group, "kind": resource},
                )
            obj = new_object(KINDS[resource][0], ns, name, 0)
            obj["metadata"].update(
                {k: v for k, v in meta.items() if k in ("labels", "annotations")}
            )
            if resource in TOP_LEVEL:
                # An Event or a ConfigMap has no spec: its fields sit at the top level.
                del obj["spec"]
                obj.update(_content(resource, body))
            else:
                obj["spec"] = copy.deepcopy(body.get("spec") or {})
            self._admit("CREATE", resource, ns, obj, None, user)
            self._store(resource, obj, created=True)
            return 201, copy.deepcopy(obj)

    def _replace(
        self, resource: str, ns: str, name: str, req: Request, user: UserInfo
    ) -> tuple[int, JSON]:
        body = json_body(req)
        meta = body.get("metadata") or {}
        if meta.get("name") not in (None, name):
            raise ApiError(400, "BadRequest", "the name of the object does not match the URL")
        with self._lock:
            cur = self._objects[resource].get((ns, name))
            if cur is None:
                raise not_found(resource, name)
            if resource == "leases" and not meta.get("resourceVersion"):
                raise invalid(
                    resource, name, "metadata.resourceVersion", "must be specified for an update"
                )
            if (
                meta.get("resourceVersion")
                and meta["resourceVersion"] != cur["metadata"]["resourceVersion"]
            ):
                raise conflict(resource, name)
            validate(resource, name, body)
            if resource == "pods":
                validate_pod(name, body)
            obj = copy.deepcopy(cur)
            for k in ("labels", "annotations"):
                if k in meta:
                    obj["metadata"][k] = copy.deepcopy(meta[k])
                else:
                    obj["metadata"].pop(k, None)
            _set_content(resource, obj, body)
            if resource == "deployments" and obj["spec"] != cur["spec"]:
                obj["metadata"]["generation"] += 1
            self._admit("UPDATE", resource, ns, obj, cur, user)
            self._store(resource, obj)
            return 200, copy.deepcopy(obj)

    def _patch(
        self, resource: str, ns: str, name: str, req: Request, user: UserInfo
    ) -> tuple[int, JSON]:
        with self._lock:
            cur = self._objects[resource].get((ns, name))
            if cur is None:
                raise not_found(resource, name)
            new = patched(cur, req)
            if new["metadata"].get("resourceVersion") != cur["metadata"]["resourceVersion"]:
                raise conflict(resource, name)
            validate(resource, name, new)
            if resource == "pods":
                validate_pod(name, new)
            obj = copy.deepcopy(cur)
            _set_content(resource, obj, new)
            for k in ("labels", "annotations"):
                if k in new["metadata"]:
                    obj["metadata"][k] = new["metadata"][k]
                else:
                    obj["metadata"].pop(k, None)
            if obj == cur:
                return 200, copy.deepcopy(cur)  # a no-op patch writes nothing
            if resource == "deployments" and obj["spec"] != cur["spec"]:
                obj["metadata"]["generation"] += 1
            self._admit("UPDATE", resource, ns, obj, cur, user)
            self._store(resource, obj)
            return 200, copy.deepcopy(obj)

    def _scale(self, req: Request, ns: str, name: str) -> tuple[int, JSON]:
        with self._lock:
            dep = self._objects["deployments"].get((ns, name))
            if dep is None:
                raise not_found("deployments", name)
            scale = scale_of(dep)
            if req.method == "GET":
                return 200, scale
            if req.method == "PATCH":
                new = patched(scale, req)
            elif req.method == "PUT":
                new = json_body(req)
                if (new.get("metadata") or {}).get("name") not in (None, name):
                    raise ApiError(400, "BadRequest", "the name of the object does not match")
                new.setdefault("metadata", {}).setdefault(
                    "resourceVersion", scale["metadata"]["resourceVersion"]
                )
            else:
                raise ApiError(405, "MethodNotAllowed", f"{req.method} is not allowed here")
            new_rv = (new.get("metadata") or {}).get("resourceVersion")
            if new_rv and new_rv != scale["metadata"]["resourceVersion"]:
                raise conflict("deployments", name)
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
                    set_status(dep, pods=replicas, ready=replicas)
                self._store("deployments", dep)
                self._reconcile_pods(ns, name)
            return 200, scale_of(dep)


def _content(resource: str, body: JSON) -> JSON:
    """The top-level fields a kind without spec keeps from a request body."""
    kept = TOP_LEVEL[resource]
    return {
        k: copy.deepcopy(v)
        for k, v in body.items()
        if k not in MANAGED and (kept is None or k in kept)
    }


def _set_content(resource: str, obj: JSON, body: JSON) -> None:
    """Replace what an update may change besides metadata: spec, or a ConfigMap's data."""
    if resource in TOP_LEVEL:
        for k in TOP_LEVEL[resource] or ():
            obj.pop(k, None)
        obj.update(_content(resource, body))
    else:
        obj["spec"] = copy.deepcopy(body.get("spec") or {})
