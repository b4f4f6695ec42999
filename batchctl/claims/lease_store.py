"""Claims kept in the cluster: one coordination.k8s.io/v1 Lease per batch (`claims.store:
kubernetes`).

The second `ClaimStore` (batchctl/claims/store.py): reachable from anywhere a kubeconfig
reaches, no broker credentials needed. Each change reads the batch's Lease, asks its
rule (batchctl/claims/rules.py), and writes the Lease back with the resourceVersion it
read (a create when there is none yet): a Lease changed in between answers 409, and the
change is decided again on a fresh read, so two people never both win a batch and
`--any` never gives one twice. The event the rule made rides in the same write (the
Lease's events annotation, batchctl/claims/lease_record.py); the leading sidecar copies
it into the history ring (batchctl/claims/ring.py) and onto the batch's Deployment as a
Kubernetes Event.

What RBAC decides and what this store adds (docs/deploy.md, "Who may claim"): reading
needs get/list on leases, changing create/update; releasing or scaling someone else's
live claim (`--force`) needs the custom verb `force` on the batch's Lease, which the
store asks the cluster about (SelfSubjectAccessReview) when `check_force` is on (the
CLI's stores). Every API failure leaves as a StoreError (batchctl/claims/
kube_errors.py): unreachable 3, refused (401/403, no such namespace) 2, other 1.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from batchctl.claims.errors import StoreError, StoreFault, StoreRefused
from batchctl.claims.history import AUTOSCALER, ClaimEvent, HistoryRead, newest, select
from batchctl.claims.kube_errors import api_error
from batchctl.claims.lease_record import (
    SELECTOR,
    claim_of,
    lease_body,
    lease_name,
    merge_events,
    new_event_id,
    outbox_of,
    queue_of,
)
from batchctl.claims.record import Claim
from batchctl.claims.ring import HistoryRing
from batchctl.claims.rules import (
    Outcome,
    Refused,
    decide_copy,
)
from batchctl.claims.store import RuleStore, unchanged
from batchctl.config import KubernetesConfig
from batchctl.identity import Identity, may
from batchctl.kube import KubeConfigError, client_secrets, new_api_client
from batchctl.kuberest import CONFLICT, NOT_FOUND, as_dict, call_json
from batchctl.log import get_logger

log = get_logger("batchctl.claims")

LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
FORCE_VERB = "force"
RING_TTL_SECONDS = 15.0
_MAX_RETRIES = 20
_API_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError, json.JSONDecodeError)


class _Lost(Exception):
    """The Lease changed between our read and our write (409): decide again."""


class LeaseClaimStore(RuleStore):
    """Claims as Leases in `cfg.namespace`, through the kubeconfig (or the pod's service
    account) that `cfg` names, or through `api_client`.

    `identity`: who writes through this store (the CLI's verified caller): their claims
    and events are stamped verified or not. `check_force`: ask the cluster before a
    change of someone else's live claim (the custom RBAC verb `force` on its Lease)."""

    def __init__(
        self,
        cfg: KubernetesConfig,
        api_client: client.ApiClient | None = None,
        *,
        identity: Identity | None = None,
        check_force: bool = False,
        history_max_events: int = 10_000,
    ) -> None:
        self.cfg = cfg
        self.namespace = cfg.namespace
        self.identity = identity
        self.check_force = check_force
        self.history_max_events = history_max_events
        self._client = api_client
        self._own_client = api_client is None
        self._ring_read: tuple[float, HistoryRead] | None = None  # (when, what)

    # -- plumbing ----------------------------------------------------------------------

    @property
    def api_client(self) -> client.ApiClient:
        """The client, made on first use: opening the store raises nothing."""
        if self._client is None:
            try:
                self._client = new_api_client(self.cfg)
            except KubeConfigError as e:
                raise StoreRefused(
                    f"the claims are kept in Kubernetes (claims.store: kubernetes), but {e}: "
                    "give --kubeconfig/--context (or set $KUBECONFIG), or run in a pod"
                ) from None
        return self._client

    @property
    def where(self) -> str:
        host = getattr(self._client.configuration, "host", "") if self._client else ""
        return f"{host or 'the API server'} (namespace {self.namespace})"

    @property
    def ring(self) -> HistoryRing:
        return HistoryRing(
            self.api_client,
            self.namespace,
            self.cfg.request_timeout_seconds,
            max_events=self.history_max_events,
            where=self.where,
        )

    @contextmanager
    def _errors(self, doing: str = "") -> Iterator[None]:
        """The API's errors as the store-neutral StoreError, the error as its cause."""
        try:
            yield
        except StoreError:
            raise
        except _API_ERRORS as e:
            api = self._client
            raise api_error(self.where, e, client_secrets(api) if api else (), doing) from e

    def _call(self, method: str, suffix: str = "", body: Any = None, query: Any = None) -> Any:
        path = LEASES.format(namespace=self.namespace) + suffix
        return call_json(
            self.api_client,
            method,
            path,
            timeout=self.cfg.request_timeout_seconds,
            body=body,
            query=query,
        )

    def close(self) -> None:
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None

    # -- reading -----------------------------------------------------------------------

    def _lease(self, queue: str) -> Mapping[str, Any] | None:
        try:
            return as_dict(self._call("GET", f"/{lease_name(queue)}"))
        except ApiException as e:
            if e.status == NOT_FOUND and "namespaces" not in str(e.body or ""):
                return None
            raise

    def leases(self) -> list[Mapping[str, Any]]:
        """Every claim Lease of the namespace (one list request, by label)."""
        with self._errors("listing the claim Leases"):
            body = as_dict(self._call("GET", query=[("labelSelector", SELECTOR)]))
        return [as_dict(item) for item in body.get("items") or []]

    def get(self, queue: str) -> Claim | None:
        with self._errors(f"reading the claim on {queue}"):
            return claim_of(self._lease(queue), queue)

    def all(self, queues: Iterable[str]) -> dict[str, Claim | None]:
        """Every queue's claim (None when free), in one list request."""
        return claims_of(self.leases(), queues)

    def history(self, queue: str | None = None, since: float | None = None) -> HistoryRead:
        """The ring's events and those the Leases carry (not yet copied), each once,
        oldest first; of one batch with `queue`; from `since` on."""
        return select(self._events(), queue, since)

    def recent(self, count: int) -> HistoryRead:
        return newest(self._events(), count)

    def _events(self) -> HistoryRead:
        leases = self.leases()
        return merge_events([self.ring_history(), *(outbox_of(lease) for lease in leases)])

    def ring_history(self) -> HistoryRead:
        """The ring's events, read at most every RING_TTL_SECONDS: a page that reloads
        every few seconds costs ten GETs that often, and the newest events come from
        the Leases themselves anyway."""
        now = time.monotonic()
        if self._ring_read is None or now - self._ring_read[0] > RING_TTL_SECONDS:
            self._ring_read = (now, self.ring.read().history)
        read = self._ring_read[1]
        return HistoryRead(list(read.events), read.skipped)

    # -- changes (RuleStore: each one write of the Lease) -------------------------------

    # A Lease of something else under a batch's name: take_any passes it by.
    _skipped_by_any = (StoreFault,)

    def _claims_for_any(self, queues: Sequence[str]) -> dict[str, Claim | None]:
        return claims_of(self.leases(), queues)

    def copy_in(self, claim: Claim, who: str, now: float, source: str) -> Outcome:
        """`batchctl claims migrate`: `claim`, read from another store, into its Lease as
        it is (`rules.decide_copy`)."""
        return self._transact(
            claim.queue, lambda existing: decide_copy(existing, claim, who, now, source)
        )

    # -- the write ---------------------------------------------------------------------

    def _transact(
        self,
        queue: str,
        decide: Callable[[Claim | None], Outcome],
        forcing: str | None = None,
    ) -> Outcome:
        """Read, decide purely, write the Lease with the event; on a 409 read and decide
        again. Nothing is written when the rule decided no change; a change without an
        event (usage) writes the record alone, with the same precondition. `forcing`:
        the caller asked --force, checked when it changes someone else's claim."""
        name = lease_name(queue)
        for _ in range(_MAX_RETRIES):
            with self._errors(f"reading the claim on {queue}"):
                lease = self._lease(queue)
            if lease is not None and queue_of(lease) != queue:
                raise StoreFault(
                    f"the Lease {name} in {self.where} is not batchctl's claim of {queue} "
                    f"(it names queue {queue_of(lease)!r}): look at it with "
                    f"`kubectl get lease {name} -o yaml` and remove it"
                )
            existing = claim_of(lease, queue)
            out = decide(existing)
            if unchanged(out, existing):
                return out
            if forcing is not None and out.previous is not None and out.previous.holder != forcing:
                self._may_force(queue, forcing, out.previous)
            out = self._stamped(out)
            body = lease_body(queue, out.claim, out.event, lease, self.namespace, by=self._writer)
            try:
                with self._errors(f"writing the claim on {queue}"):
                    self._write(name, body, create=lease is None)
            except _Lost:
                continue
            if out.event is not None:
                log.info("claim event", **_log_fields(out.event))
            return out
        raise StoreFault(f"the claim on {queue} kept changing under us; try again")

    def _write(self, name: str, body: Mapping[str, Any], create: bool) -> None:
        try:
            if create:
                self._call("POST", body=body)
            else:
                self._call("PUT", f"/{name}", body=body)
        except ApiException as e:
            # 409: AlreadyExists (a create lost the race) or Conflict (a stale
            # resourceVersion): someone changed it since we read it.
            if e.status == CONFLICT:
                raise _Lost from None
            raise

    @property
    def _writer(self) -> str:
        """Who writes a change that has no event to name them: the CLI's verified caller,
        else the autoscaler (the sidecar's store, batchctl's own service account)."""
        return self.identity.name if self.identity is not None else AUTOSCALER

    def _stamped(self, out: Outcome) -> Outcome:
        """The event with its id, and both stamped with the identity the cluster verified
        (or not) when they are the writer's own."""
        me = self.identity
        event = out.event
        if event is not None:
            event = replace(event, id=new_event_id(event.at))
        claim = out.claim
        if me is not None:
            if event is not None and event.who == me.name:
                event = replace(event, verified=me.verified)
            if claim is not None and claim.holder == me.name:
                claim = replace(claim, holder_verified=me.verified)
        return replace(out, event=event, claim=claim)

    def _may_force(self, queue: str, who: str, theirs: Claim) -> None:
        """Refused unless RBAC lets the caller force this batch's Lease (checked only with
        `check_force`: the CLI; the table of rules runs without it)."""
        if not self.check_force:
            return
        with self._errors(f"asking whether you may force {queue}"):
            allowed, _ = may(
                self.api_client,
                self.cfg.request_timeout_seconds,
                verb=FORCE_VERB,
                group="coordination.k8s.io",
                resource="leases",
                namespace=self.namespace,
                name=lease_name(queue),
            )
        if not allowed:
            raise Refused(
                f"{who} may not --force {theirs.holder}'s claim on {queue}: that takes the "
                f"Role batchctl-admin (the RBAC verb `{FORCE_VERB}` on Lease "
                f"{lease_name(queue)} in {self.namespace}); ask {theirs.holder}"
                + (f" ({theirs.contact})" if theirs.contact else "")
                + " or an admin"
            )


def claims_of(
    leases: Iterable[Mapping[str, Any]], queues: Iterable[str]
) -> dict[str, Claim | None]:
    """Each queue's claim among `leases` (None when free or without a Lease)."""
    by_queue = {queue_of(lease): lease for lease in leases}
    return {q: claim_of(by_queue.get(q), q) for q in queues}


def _log_fields(e: ClaimEvent) -> dict[str, object]:
    return {
        "kind": e.kind,
        "queue": e.queue,
        "who": e.who,
        "verified": e.verified,
        "holder": e.holder,
        "purpose": e.purpose,
        "detail": e.detail,
    }


__all__ = ["FORCE_VERB", "LeaseClaimStore", "claims_of"]
