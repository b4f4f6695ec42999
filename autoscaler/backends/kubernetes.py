"""The kubernetes backend: scale a Deployment through its `scale` subresource, nothing more.

The autoscaler needs only `deployments/scale` get and patch (docs/design.md, least-privilege
RBAC), so replicas are read and written there, never through the Deployment itself.
`ScaleClient` reads and writes one Deployment's replicas; `KubernetesBackend` maps the
batches onto their Deployments for the autoscaler loop.

Writes are JSON merge patches of `spec.replicas`. With `expected`, the patch carries the
resourceVersion just read, so a change by someone else in between fails with 409
instead of being overwritten; the actuator then re-reads and, if the count is still the
expected one, tries again. Conflicts and transient errors (429, 5xx, connection
failures, timeouts) are retried with capped exponential backoff; 403 and 404 are not,
and say what is missing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from autoscaler.backends import ScaleNote
from autoscaler.backends.controllers import ControllerFinder
from autoscaler.backends.events import EventRecorder
from autoscaler.backends.pods import PodClient, PodsError
from autoscaler.backends.ranking import Replica
from batchctl import __version__
from batchctl.config import Config, ConfigError, KubernetesConfig
from batchctl.kube import KubeConfigError, client_secrets, describe_error, new_api_client
from batchctl.log import get_logger
from exporter.events.workload import WorkerLoad

log = get_logger("batchctl.backends.kubernetes")

MERGE_PATCH = "application/merge-patch+json"
_RETRYABLE = frozenset({409, 429, 500, 502, 503, 504})
T = TypeVar("T")


class ScaleError(Exception):
    """Scaling failed; the message says why, free of credentials."""


class ScalePermissionError(ScaleError):
    """403: the service account lacks an RBAC verb on deployments/scale."""

    def __init__(self, verb: str, deployment: str, namespace: str, detail: str) -> None:
        self.verb = verb
        super().__init__(
            f"not allowed to {verb} deployments/scale of {deployment!r} in namespace "
            f"{namespace!r}: grant the service account a Role rule with apiGroups: [apps], "
            f"resources: [deployments/scale], verbs: [{verb}] "
            f"(resourceNames may list the batch Deployments). Server said: {detail}"
        )


class DeploymentNotFoundError(ScaleError):
    pass


class ReplicasChangedError(ScaleError):
    """spec.replicas is not what the caller expected: someone else scaled it."""

    def __init__(self, deployment: str, expected: int, actual: int) -> None:
        self.deployment = deployment
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{deployment}: expected {expected} replicas but found {actual}; "
            "changed by someone else, not overwriting"
        )


class ScaleClient:
    """get/set `spec.replicas` of Deployments in `cfg.namespace` via the scale subresource."""

    def __init__(
        self,
        cfg: KubernetesConfig,
        api_client: client.ApiClient | None = None,
        *,
        max_attempts: int = 5,
        backoff_initial: float = 0.1,
        backoff_max: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.cfg = cfg
        self._own_client = api_client is None
        self._client = api_client if api_client is not None else new_api_client(cfg)
        self._api = client.AppsV1Api(self._client)
        self._secrets = client_secrets(self._client)
        self.max_attempts = max_attempts
        self.uids: dict[str, str] = {}  # deployment -> uid, from the last scale write
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._sleep = sleep

    @property
    def api_client(self) -> client.ApiClient:
        return self._client

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    # ------------------------------------------------------------------ interface

    def get_replicas(self, deployment: str) -> int:
        """spec.replicas of `deployment`: what is asked for, not what is ready."""
        return self._retrying(deployment, lambda: _replicas(self._read(deployment)))

    def set_replicas(self, deployment: str, n: int, *, expected: int | None = None) -> int:
        """Set spec.replicas to `n` and return the value now in effect.

        With `expected`, only if spec.replicas is still `expected` (else
        ReplicasChangedError, nothing written); without, unconditionally.
        """
        if n < 0:
            raise ValueError(f"replicas must be >= 0, got {n}")

        def attempt() -> int:
            if expected is None:
                return _replicas(self._patch(deployment, {"spec": {"replicas": n}}))
            scale = self._read(deployment)
            current = _replicas(scale)
            if current != expected:
                raise ReplicasChangedError(deployment, expected, current)
            if current == n:
                return n
            rv = scale.metadata.resource_version if scale.metadata else None
            body = {"metadata": {"resourceVersion": rv}, "spec": {"replicas": n}}
            return _replicas(self._patch(deployment, body))

        result = self._retrying(deployment, attempt)
        log.info(
            "scaled deployment",
            deployment=deployment,
            namespace=self.cfg.namespace,
            replicas=result,
            expected=expected,
        )
        return result

    # ------------------------------------------------------------------ calls

    def _read(self, deployment: str) -> client.V1Scale:
        try:
            return self._api.read_namespaced_deployment_scale(
                deployment,
                self.cfg.namespace,
                _request_timeout=self.cfg.request_timeout_seconds,
            )
        except ApiException as e:
            raise self._final(e, "get", deployment) or e from None

    def _patch(self, deployment: str, body: dict[str, Any]) -> client.V1Scale:
        try:
            scale = self._api.patch_namespaced_deployment_scale(
                deployment,
                self.cfg.namespace,
                body,
                _content_type=MERGE_PATCH,
                _request_timeout=self.cfg.request_timeout_seconds,
            )
            # A Scale's metadata is its Deployment's: the uid an Event must name.
            if scale.metadata is not None and scale.metadata.uid:
                self.uids[deployment] = scale.metadata.uid
            return scale
        except ApiException as e:
            raise self._final(e, "patch", deployment) or e from None

    def _final(self, e: ApiException, verb: str, deployment: str) -> ScaleError | None:
        """The error to raise at once for responses that retrying cannot fix."""
        detail = describe_error(e, self._secrets)
        if e.status == 403:
            return ScalePermissionError(verb, deployment, self.cfg.namespace, detail)
        if e.status == 404:
            return DeploymentNotFoundError(
                f"deployment {deployment!r} not found in namespace {self.cfg.namespace!r}"
            )
        if e.status not in _RETRYABLE:
            return ScaleError(f"{verb} deployments/scale {deployment!r}: {detail}")
        return None

    def _retrying(self, deployment: str, op: Callable[[], T]) -> T:
        delay = self._backoff_initial
        for attempt in range(1, self.max_attempts + 1):
            try:
                return op()
            except ApiException as e:  # only retryable ones get here (see _final)
                error = describe_error(e, self._secrets)
                what = "conflict" if e.status == 409 else "transient error"
            except urllib3.exceptions.HTTPError as e:  # refused, cut, timed out
                error = describe_error(e, self._secrets)
                what = "connection error"
            if attempt == self.max_attempts:
                raise ScaleError(
                    f"{deployment}: gave up after {attempt} attempts ({what}): {error}"
                )
            log.info(
                f"scale {what}, retrying",
                deployment=deployment,
                namespace=self.cfg.namespace,
                attempt=attempt,
                error=error,
            )
            self._sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self._backoff_max)
        raise AssertionError("unreachable")


def _replicas(scale: client.V1Scale) -> int:
    spec = scale.spec
    return int(spec.replicas or 0) if spec is not None else 0


class KubernetesBackend:
    """Replicas are Deployments': read from the snapshot (the exporter's watch cache),
    written through the scale subresource, each change also told as an Event on the
    Deployment (`kubectl describe deployment` shows it). Before a scale-down with the
    busy map, each pod's pod-deletion-cost says which go first: the idle ones
    (autoscaler/backends/pods.py)."""

    name = "kubernetes"

    def __init__(
        self,
        cfg: Config,
        api_client: client.ApiClient | None = None,
        identity: str = "batchctl-autoscaler",
    ) -> None:
        try:
            self.api_client = (
                api_client if api_client is not None else new_api_client(cfg.kubernetes)
            )
        except KubeConfigError as e:
            raise ConfigError([f"kubernetes: {e}"], "kubernetes") from None
        self._own_client = api_client is None
        # Our requests say who sent them (audit logs, and the tests count writers by it).
        self.api_client.user_agent = f"batchctl/{__version__} (autoscaler; {identity})"
        self.scale = ScaleClient(cfg.kubernetes, self.api_client)
        self.events = EventRecorder(self.api_client, cfg.kubernetes, identity)
        self.deployments = {b.queue: b.deployment for b in cfg.batches}
        self.finder = ControllerFinder(
            self.api_client, cfg.kubernetes.namespace, cfg.kubernetes.request_timeout_seconds
        )
        self.pods = PodClient(self.api_client, cfg.kubernetes)
        self._told: dict[str, tuple[str, ...]] = {}  # deployment -> controllers in its Event

    def other_controllers(self) -> dict[str, list[str]]:
        """Deployment -> the HPAs and ScaledObjects that scale it (autoscaler/
        othercontrollers.py), with an Event on each batch Deployment the first time
        (and whenever the controllers change). Raises when the lists fail."""
        found = self.finder.find()
        for dep in self.deployments.values():
            now = tuple(found.get(dep, ()))
            if now and self._told.get(dep) != now:
                self.events.other_controller(
                    dep,
                    f"batchctl autoscaler: {' and '.join(now)} scales this Deployment; the "
                    "autoscaler keeps its hands off it (remove one of the two controllers)",
                )
            self._told[dep] = now
        return found

    def observed(self) -> Mapping[str, tuple[int, int]] | None:
        return None

    def busy_map(
        self, queue: str, workers: Sequence[WorkerLoad], selector: Mapping[str, str]
    ) -> list[Replica]:
        """The batch's pods with their load; PodsError when they cannot be listed."""
        return self.pods.replicas(self.deployments[queue], selector, workers)

    def set_replicas(self, queue: str, n: int, note: ScaleNote | None = None) -> None:
        deployment = self.deployments[queue]
        if note is not None and note.replicas is not None and n < note.current:
            try:
                self.pods.rank(note.replicas)
            except PodsError as e:
                # Scale all the same: the ReplicaSet then picks as it would without us.
                log.error("cannot rank the pods before scaling down", error=str(e))
        self.scale.set_replicas(deployment, n, expected=None)
        if note is not None:
            # Best effort: the scale happened whether or not its story could be told.
            self.events.scaled(deployment, self.scale.uids.get(deployment), note)

    def waiting(self, queue: str, note: ScaleNote) -> None:
        deployment = self.deployments[queue]
        self.events.waiting(deployment, self.scale.uids.get(deployment), note)

    def close(self) -> None:
        self.scale.close()
        if self._own_client:
            self.api_client.close()
