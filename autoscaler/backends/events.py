"""Kubernetes Events on a batch's Deployment: every scale change, with its reason, and
every change of its claim (mirrored from the claim Leases: autoscaler/claimmirror.py).

`kubectl describe deployment celery-batch1` then tells the story: who scaled, from
how many to how many, why, and for whose claim. Events are core/v1 objects created with
a plain `ApiClient.call_api` POST (no generated models); the involvedObject carries the
Deployment's uid, which kubectl's describe matches on. Recording is best effort: a
failure is logged and counted, never raised.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from autoscaler.backends import ScaleNote
from batchctl.config import KubernetesConfig
from batchctl.kube import client_secrets, describe_error
from batchctl.log import get_logger

log = get_logger("batchctl.events")

COMPONENT = "batchctl-autoscaler"
_PATH = "/api/v1/namespaces/{namespace}/events"


def event_body(
    namespace: str,
    deployment: str,
    uid: str | None,
    note: ScaleNote,
    instance: str,
    now: datetime,
    *,
    reason: str | None = None,
    message: str | None = None,
    type_: str = "Normal",
    action: str = "Scale",
) -> dict[str, Any]:
    """The core/v1 Event for one scale change (pure); `reason` and `message` default to
    the autoscaler's (ScaledUp/ScaledDown, the note's sentence)."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    involved: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment,
        "namespace": namespace,
    }
    if uid:
        involved["uid"] = uid
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{deployment}.{secrets.token_hex(8)}", "namespace": namespace},
        "involvedObject": involved,
        "reason": reason or ("ScaledUp" if note.desired > note.current else "ScaledDown"),
        "message": message or note.message(),
        "type": type_,
        "action": action,
        "source": {"component": COMPONENT},
        "reportingComponent": f"batchctl.io/{COMPONENT}",
        "reportingInstance": instance,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class EventRecorder:
    def __init__(self, api_client: client.ApiClient, cfg: KubernetesConfig, instance: str) -> None:
        self.api_client = api_client
        self.cfg = cfg
        self.instance = instance
        self.failures = 0
        self._secrets = client_secrets(api_client)

    def scaled(self, deployment: str, uid: str | None, note: ScaleNote) -> bool:
        """Record `note` on `deployment`; False (logged) when the API refused or failed."""
        body = event_body(
            self.cfg.namespace, deployment, uid, note, self.instance, datetime.now(UTC)
        )
        return self._post(deployment, body)

    def manual(self, deployment: str, uid: str | None, replicas: int, message: str) -> bool:
        """Record a `batchctl scale` by hand (reason ManualScale); best effort as above."""
        note = ScaleNote(current=replicas, desired=replicas, reason="manual_override")
        return self._tell(deployment, uid, note, "ManualScale", message)

    def waiting(self, deployment: str, uid: str | None, note: ScaleNote) -> bool:
        """Record that a step down waits for an idle replica (reason ScaleDownWaiting);
        best effort as above."""
        message = f"batchctl autoscaler: {note.detail}"
        return self._tell(deployment, uid, note, "ScaleDownWaiting", message)

    def other_controller(self, deployment: str, message: str) -> bool:
        """Record that the autoscaler holds the batch because another controller scales
        the Deployment (reason OtherController, a Warning); best effort as above."""
        note = ScaleNote(current=0, desired=0, reason="other_controller")
        return self._tell(deployment, None, note, "OtherController", message, "Warning")

    def _tell(
        self,
        deployment: str,
        uid: str | None,
        note: ScaleNote,
        reason: str,
        message: str,
        type_: str = "Normal",
    ) -> bool:
        body = event_body(
            self.cfg.namespace,
            deployment,
            uid,
            note,
            self.instance,
            datetime.now(UTC),
            reason=reason,
            message=message,
            type_=type_,
        )
        return self._post(deployment, body)

    def claim(
        self, deployment: str, uid: str | None, reason: str, message: str, type_: str, at: float
    ) -> bool:
        """Record a change of the batch's claim (batchctl/claims/text.py EVENT_REASONS),
        dated when it happened; best effort as above."""
        note = ScaleNote(current=0, desired=0, reason="claim")
        body = event_body(
            self.cfg.namespace,
            deployment,
            uid,
            note,
            self.instance,
            datetime.fromtimestamp(at, UTC),
            reason=reason,
            message=message,
            type_=type_,
            action="Claim",
        )
        return self._post(deployment, body)

    def _post(self, deployment: str, body: dict[str, Any]) -> bool:
        try:
            request = self.api_client.param_serialize(
                "POST",
                _PATH,
                path_params={"namespace": self.cfg.namespace},
                body=body,
                header_params={"Accept": "application/json", "Content-Type": "application/json"},
                auth_settings=["BearerToken"],
            )
            resp = self.api_client.call_api(
                *request, _request_timeout=self.cfg.request_timeout_seconds
            )
            try:
                resp.read()
                status = resp.status
            finally:
                resp.response.release_conn()
            if not 200 <= status <= 299:
                raise RuntimeError(f"HTTP {status}")
            return True
        except Exception as e:
            self.failures += 1
            log.warning(
                "could not record the scale event",
                deployment=deployment,
                error=describe_error(e, self._secrets),
            )
            return False
