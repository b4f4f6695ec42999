"""What the claim commands share when the claims live in Kubernetes: the kubeconfig
options, the site's config, who you are, and the exporter's snapshot through the API
server.

With `claims.store: kubernetes` an engineer needs a kubeconfig and one RoleBinding, no
broker URL and no password (docs/deploy.md, "Engineers' machines"):

- `--kubeconfig`, `--context`, `-n/--namespace` as kubectl spells them (and
  $KUBECONFIG, which the Kubernetes client reads itself). Giving one of them points the
  command at the cluster: without a config file (-c, $BATCHCTL_CONFIG) the site's
  config comes from the exporter (its /api/v1/config: batches, claims, nothing
  secret), and a config that does not name its store keeps its claims in the cluster.
  The namespace is -n, else the config's kubernetes.namespace, else the context's, as
  kubectl takes it.
- Who you are is what the cluster says (SelfSubjectReview: `kubectl auth whoami`):
  --holder and $USER cannot change it. A cluster that does not serve it (older than
  1.28) answers 404; then --holder or $USER is used, marked "unverified" on every output.
- What is waiting and in flight is the exporter's snapshot, read through the service
  proxy (/api/v1/namespaces/NS/services/batchctl:9808/proxy/api/v1/snapshot), read-only
  (RBAC: get services/proxy on that name).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from batchctl.claims import ClaimRefused, StoreError, StoreUnavailable, Work
from batchctl.claims.kube_errors import api_error
from batchctl.claims.rules import check_holder
from batchctl.cli.common import default_holder, holder_or_exit, store_exit_code
from batchctl.cli.options import EXIT_USAGE, Printer, load_or_exit
from batchctl.config import Config, ConfigError
from batchctl.identity import Identity

if TYPE_CHECKING:
    from kubernetes import client

    from batchctl.claims.lease_store import LeaseClaimStore
    from exporter.snapshot import Snapshot

F = TypeVar("F", bound=Callable[..., Any])
PROXY = "/api/v1/namespaces/{namespace}/services/{service}/proxy{path}"


@dataclass(frozen=True)
class Cluster:
    """The kubectl-style options as given (None: not given)."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.kubeconfig, self.context, self.namespace))


def cluster_options(f: F) -> F:
    """--kubeconfig, --context and -n/--namespace, passed to the command as `cluster`."""

    @functools.wraps(f)
    def command(
        *args: Any, kubeconfig: str | None, context: str | None, namespace: str | None, **kw: Any
    ) -> Any:
        return f(*args, cluster=Cluster(kubeconfig, context, namespace), **kw)

    options = [
        click.option(
            "--kubeconfig",
            default=None,
            type=click.Path(dir_okay=False),
            help="The kubeconfig to use (as kubectl: else $KUBECONFIG, else ~/.kube/config). "
            "Points the command at the cluster's claims.",
        ),
        click.option("--context", default=None, help="The kubeconfig context to use."),
        click.option(
            "--namespace",
            "-n",
            default=None,
            help="batchctl's namespace (else kubernetes.namespace, else the context's).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command  # type: ignore[return-value]


# -- the config ------------------------------------------------------------------------


def load_for_claims(config_path: str | None, cluster: Cluster, out: Printer) -> Config:
    """The config a claim command works with: the file (or the defaults), or, when only
    the cluster options are given, the site's own from its exporter; then pointed at the
    cluster the options name. Exits 2 (or 3: the exporter cannot be reached)."""
    if config_path is None and cluster.given:
        return _site_config(cluster, out)
    return with_cluster(load_or_exit(config_path, out), cluster)


def with_cluster(cfg: Config, cluster: Cluster) -> Config:
    """`cfg` with the options applied: the kubeconfig and context, the namespace (-n, the
    config's own, or the context's), and, when options are given and the config does not
    name a store, the claims in the cluster."""
    kube = cfg.kubernetes
    changes: dict[str, Any] = {}
    if cluster.kubeconfig is not None:
        changes["kubeconfig"] = cluster.kubeconfig
    if cluster.context is not None:
        changes["context"] = cluster.context
    namespace = cluster.namespace
    if namespace is None and "namespace" not in kube.model_fields_set and cluster.given:
        namespace = context_namespace(changes.get("kubeconfig", kube.kubeconfig),
                                      changes.get("context", kube.context))  # fmt: skip
    if namespace is not None:
        changes["namespace"] = namespace
    updates: dict[str, Any] = {}
    if changes:
        updates["kubernetes"] = kube.model_copy(update=changes)
    if cluster.given and "store" not in cfg.claims.model_fields_set:
        updates["claims"] = cfg.claims.model_copy(update={"store": "kubernetes"})
    if updates.get("claims", cfg.claims).store == "kubernetes" and not kube.enabled:
        updates["kubernetes"] = updates.get("kubernetes", kube).model_copy(update={"enabled": True})
    return cfg.model_copy(update=updates) if updates else cfg


def context_namespace(kubeconfig: str | None, context: str | None) -> str | None:
    """The namespace the kubeconfig's context names (None: none, or no kubeconfig)."""
    from kubernetes import config

    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except Exception:  # no kubeconfig, or one that does not load: the client says why later
        return None
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
    ns = ((chosen or {}).get("context") or {}).get("namespace")
    return ns if isinstance(ns, str) and ns else None


def _site_config(cluster: Cluster, out: Printer) -> Config:
    """The site's config from its exporter, through the service proxy."""
    from batchctl.config.site import parse_site
    from batchctl.kuberest import call_json

    bootstrap = with_cluster(Config(), cluster)
    api = _api_client_or_exit(bootstrap, out)
    kube = bootstrap.kubernetes
    path = PROXY.format(namespace=kube.namespace, service=kube.exporter_service,
                        path="/api/v1/config")  # fmt: skip
    try:
        data = call_json(api, "GET", path, timeout=kube.request_timeout_seconds)
    except Exception as e:
        error = api_error(_where(api, kube.namespace), e, doing="reading the site's config "
                          f"from the exporter ({kube.exporter_service})")  # fmt: skip
        out.fail(
            f"{error}; or give the site's config file with -c (docs/deploy.md)",
            store_exit_code(error),
        )
    finally:
        api.close()
    try:
        cfg = parse_site(data)
    except ConfigError as e:
        out.fail(f"the site's config from the exporter: {'; '.join(e.problems)}", EXIT_USAGE)
    return with_cluster(cfg, cluster)


# -- the session -----------------------------------------------------------------------


@dataclass
class Session:
    """One command's access to the cluster: its client, and who it acts as."""

    cfg: Config
    api: client.ApiClient
    identity: Identity | None = None
    _stores: list[LeaseClaimStore] = field(default_factory=list)

    @property
    def where(self) -> str:
        return _where(self.api, self.cfg.kubernetes.namespace)

    def store(self) -> LeaseClaimStore:
        """The Lease store as this caller: their claims stamped verified (or not), and
        --force on another's claim asked of the cluster's RBAC."""
        from batchctl.claims.lease_store import LeaseClaimStore

        store = LeaseClaimStore(
            self.cfg.kubernetes,
            self.api,
            identity=self.identity,
            check_force=True,
            history_max_events=self.cfg.claims.history_max_events,
        )
        self._stores.append(store)
        return store

    def snapshot(self) -> Snapshot:
        """The exporter's snapshot through the service proxy. Raises StoreError."""
        from batchctl.kuberest import call_json
        from exporter.snapshot import Snapshot

        kube = self.cfg.kubernetes
        path = PROXY.format(namespace=kube.namespace, service=kube.exporter_service,
                            path="/api/v1/snapshot")  # fmt: skip
        try:
            data = call_json(self.api, "GET", path, timeout=kube.request_timeout_seconds * 3)
            return Snapshot.from_json(data)
        except Exception as e:
            raise api_error(
                self.where, e, doing=f"reading the exporter's snapshot ({kube.exporter_service})"
            ) from e

    def work(self, queue: str, snap: Snapshot | None = None) -> Work:
        """What is waiting and in flight in `queue`, as the exporter last read the broker
        (in `snap`, else a snapshot read now). Raises StoreError (StoreUnavailable while
        the exporter cannot read the broker)."""
        snap = snap if snap is not None else self.snapshot()
        stats = snap.queue(queue) if snap.broker_up else None
        if stats is None and snap.broker_up and queue in snap.queues_unpublished:
            raise StoreUnavailable(
                f"the broker has not published the figures of {queue} yet, so the work "
                "left in it is unknown; try again in a few seconds"
            )
        if stats is None:
            raise StoreUnavailable(
                f"the exporter cannot read the broker, so the work left in {queue} is "
                f"unknown: {snap.broker_error or 'no reading yet'}"
            )
        return Work(stats.waiting, stats.unacked)

    def close(self) -> None:
        self.api.close()


def _where(api: client.ApiClient, namespace: str) -> str:
    host = getattr(api.configuration, "host", "") or "the API server"
    return f"{host} (namespace {namespace})"


def _api_client_or_exit(cfg: Config, out: Printer) -> client.ApiClient:
    from batchctl.kube import KubeConfigError, new_api_client

    try:
        return new_api_client(cfg.kubernetes)
    except KubeConfigError as e:
        out.fail(f"{e}: give --kubeconfig/--context (or set $KUBECONFIG)", EXIT_USAGE)


def open_session(cfg: Config, out: Printer) -> Session:
    """A session without an identity (reading: status, history)."""
    return Session(cfg, _api_client_or_exit(cfg, out))


def session_as(cfg: Config, holder: str | None, out: Printer) -> Session:
    """A session acting as the caller the cluster knows: --holder may only repeat it.
    Exits 2 (credentials refused, --holder someone else) or 3 (no API server)."""
    session = open_session(cfg, out)
    try:
        session.identity = identify(session, holder, out)
    except BaseException:
        session.close()
        raise
    return session


def identify(session: Session, holder: str | None, out: Printer) -> Identity:
    from batchctl.identity import who_am_i

    try:
        me = who_am_i(session.api, session.cfg.kubernetes.request_timeout_seconds)
    except Exception as e:
        error = api_error(session.where, e, doing="asking who you are (SelfSubjectReview)")
        _fail(out, error)
    if me is None:
        # An older cluster: the names we are given, marked as such everywhere.
        name = holder_or_exit(holder, out)
        found = default_holder()
        source = "--holder" if holder is not None else (found[1] if found else "$USER")
        out.warn(
            f"the cluster does not answer SelfSubjectReview (Kubernetes older than 1.28): "
            f"acting as {name} from {source}, unverified"
        )
        return Identity(name, False, source)
    if holder is not None and holder != me.name:
        out.fail(
            f"--holder {holder}: the cluster knows you as {me.name}, and claims are made in "
            "the name the cluster knows; drop --holder (someone else's batch: --force "
            "--reason, with the Role batchctl-admin)",
            EXIT_USAGE,
            identity=me.name,
        )
    try:
        check_holder(me.name, "your name in the cluster")
    except ClaimRefused as e:
        out.fail(str(e), EXIT_USAGE)
    return me


def _fail(out: Printer, error: StoreError) -> NoReturn:
    out.fail(str(error), store_exit_code(error))


def identity_note(session: Session | None) -> dict[str, object]:
    """Who the command acted as, for its JSON: name, verified, source (empty without a
    session: the Redis store knows no verification)."""
    if session is None or session.identity is None:
        return {}
    return {"identity": session.identity.to_json()}


__all__ = [
    "Cluster",
    "Session",
    "cluster_options",
    "identity_note",
    "load_for_claims",
    "open_session",
    "session_as",
    "with_cluster",
]
