"""FakeKube: the fake API server's lifecycle and the controls a test holds (objects,
watches, faults, the requests it received); serving.py answers the requests."""

from __future__ import annotations

import contextlib
import copy
import re
import secrets
import socket
import threading
from pathlib import Path
from typing import Literal

import yaml

from tests.support.fakekube.admission import AdmissionPolicies
from tests.support.fakekube.auth import Rbac, UserInfo
from tests.support.fakekube.kubeconfig import kubeconfig_dict
from tests.support.fakekube.objects import new_deployment, new_object, set_status
from tests.support.fakekube.proxy import Service
from tests.support.fakekube.routes import JSON
from tests.support.fakekube.serving import Api
from tests.support.fakekube.store import CUT, END, EXPIRE
from tests.support.fakekube.wire import Fault, Handler, HTTPServer, Request


class FakeKube(Api):
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
        pods: bool = False,
    ) -> None:
        super().__init__()
        # Play the ReplicaSet controller: pods follow each Deployment's replicas, and a
        # scale-down removes them in the ReplicaSet's order (replicasets.py).
        self.pods_enabled = pods
        self._init_pods()
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
        # Whether SelfSubjectReview is served (GA in 1.28; False: an older cluster's 404).
        self.self_subject_review = True
        # RBAC: None allows every authenticated request; apply_rbac/bind load rules.
        self.rbac: Rbac | None = None
        # ValidatingAdmissionPolicies: none until apply_admission loads some.
        self.admission: AdmissionPolicies | None = None
        # Bearer token -> user: the service account of `token`/`user`, and add_user's.
        sa = user.split(":")
        groups = ("system:serviceaccounts", f"system:serviceaccounts:{sa[2]}") if (
            len(sa) == 4 and sa[:2] == ["system", "serviceaccount"]) else ()  # fmt: skip
        self._users: dict[str, UserInfo] = {self.token: UserInfo(user, groups)}
        self._services: dict[tuple[str, str], Service] = {}
        self._faults: list[Fault] = []
        self._requests: list[Request] = []
        self._conns: set[socket.socket] = set()
        self._server: HTTPServer | None = None
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
        server = HTTPServer(("127.0.0.1", self.port), Handler)
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
                w.events.put(CUT)
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

    # ------------------------------------------------------------------ users, RBAC

    def add_user(self, name: str, groups: tuple[str, ...] = (), token: str | None = None) -> str:
        """A user the API knows by a bearer token (returned), in `groups`; what they may do
        is RBAC's once loaded (apply_rbac, bind)."""
        token = token or f"fake-token-{secrets.token_hex(16)}"
        with self._lock:
            self._users[token] = UserInfo(name, tuple(groups))
        return token

    def apply_rbac(self, docs: list[JSON], namespace: str | None = None) -> None:
        """Load the Roles, ClusterRoles and bindings among `docs` (e.g. a rendered overlay)
        and from now on authorize every request by RBAC (403 when no rule allows it)."""
        with self._lock:
            rbac = self.rbac or Rbac()
            rbac.load(docs, namespace or self.namespace)
            self.rbac = rbac

    def apply_admission(self, docs: list[JSON]) -> None:
        """Load the ValidatingAdmissionPolicies and their bindings among `docs` (e.g. a
        rendered admission-claims.yaml): from now on they judge every write they match
        (admission.py says which parts of the API are implemented)."""
        with self._lock:
            admission = self.admission or AdmissionPolicies()
            admission.load(docs)
            self.admission = admission

    def bind(
        self,
        role: str,
        *,
        user: str | None = None,
        group: str | None = None,
        cluster_role: bool = False,
        namespace: str | None = None,
    ) -> None:
        """`kubectl create rolebinding --role=ROLE --user=USER|--group=GROUP` (a ClusterRole
        with `cluster_role`): RBAC is on from now on."""
        subject = {"kind": "User", "name": user} if user else {"kind": "Group", "name": group}
        with self._lock:
            rbac = self.rbac or Rbac()
            rbac.bind(subject, role, namespace or self.namespace, cluster_role=cluster_role)
            self.rbac = rbac

    def add_service(
        self,
        name: str,
        ports: dict[int, str],
        *,
        port_names: dict[str, int] | None = None,
        namespace: str | None = None,
    ) -> None:
        """A Service whose ports (port -> a local backend's base URL, http://127.0.0.1:P)
        the service proxy forwards to."""
        ns = namespace or self.namespace
        with self._lock:
            self._services[(ns, name)] = Service(name, ns, dict(ports), dict(port_names or {}))

    # ------------------------------------------------------------------ objects

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
            obj = new_deployment(ns, name, replicas, labels or {"app": name}, rv)
            set_status(obj, pods=ready, ready=ready)
            self._objects["deployments"][(ns, name)] = obj
            self._emit("deployments", "ADDED", obj)
            self._reconcile_pods(ns, name)
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
            set_status(obj, pods=n_pods, ready=new_ready)
            rv = self._store("deployments", obj)
            self._reconcile_pods(ns, name)
            return rv

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
            obj = new_object("HorizontalPodAutoscaler", ns, name, self._rv + 1)
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
            obj = new_object("ScaledObject", ns, name, self._rv + 1)
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

    def pods(self, deployment: str, *, namespace: str | None = None) -> list[JSON]:
        """The Deployment's pods (with pods=True), oldest first."""
        ns = namespace or self.namespace
        with self._lock:
            found = self._pods_of(ns, deployment)
            return [
                copy.deepcopy(p)
                for p in sorted(found, key=lambda p: self._created[p["metadata"]["name"]])
            ]

    def set_pod_ready(self, name: str, ready: bool = True, *, namespace: str | None = None) -> None:
        """Play the kubelet: the pod becomes ready (Running) or not."""
        with self._lock:
            self._pod_ready(namespace or self.namespace, name, ready)

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

    def leases(self, *, namespace: str | None = None) -> list[JSON]:
        """Every Lease of `namespace`, by name."""
        ns = namespace or self.namespace
        with self._lock:
            found = [
                copy.deepcopy(o) for (ons, _), o in self._objects["leases"].items() if ons == ns
            ]
        return sorted(found, key=lambda o: o["metadata"]["name"])

    def configmap(self, name: str, *, namespace: str | None = None) -> JSON | None:
        with self._lock:
            obj = self._objects["configmaps"].get((namespace or self.namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def put_lease(self, name: str, spec: JSON, *, namespace: str | None = None) -> JSON:
        """Create or overwrite a Lease as if another client wrote it."""
        ns = namespace or self.namespace
        with self._lock:
            old = self._objects["leases"].get((ns, name))
            obj = copy.deepcopy(old) if old is not None else new_object("Lease", ns, name, 0)
            obj["spec"] = copy.deepcopy(spec)
            self._store("leases", obj, created=old is None)
            return copy.deepcopy(obj)

    # ------------------------------------------------------------------ watch control

    @property
    def open_watches(self) -> int:
        with self._lock:
            return len(self._watchers)

    def end_watches(self) -> None:
        """End every open watch cleanly, as the apiserver does at timeoutSeconds."""
        with self._lock:
            for w in self._watchers:
                w.events.put(END)

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
                w.events.put(EXPIRE)

    def bookmark(self) -> None:
        """Send a BOOKMARK with the current resourceVersion to watches that asked for them."""
        with self._lock:
            for w in self._watchers:
                if w.bookmarks:
                    w.events.put(self._bookmark_event(w.resource))

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
