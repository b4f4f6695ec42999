"""What an API error means for a claim command: the store-neutral errors, safe to show."""

from __future__ import annotations

import json

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from batchctl.claims import StoreError, StoreFault, StoreRefused, StoreUnavailable
from batchctl.claims.kube_errors import api_error

WHERE = "https://k8s.example.com (namespace court-listener)"


def answered(code: int, message: str) -> ApiException:
    e = ApiException(status=code, reason="x")
    e.body = json.dumps({"kind": "Status", "message": message, "code": code})
    return e


@pytest.mark.parametrize(
    ("exc", "kind", "says"),
    [
        (answered(401, "Unauthorized"), StoreRefused, "did not accept your credentials"),
        (answered(403, 'User "bob" cannot update'), StoreRefused, "batchctl-claimer"),
        (answered(404, 'namespaces "nope" not found'), StoreRefused, "-n/--namespace"),
        (answered(503, "no endpoints available"), StoreUnavailable, "cannot reach"),
        (answered(429, "slow down"), StoreUnavailable, "cannot reach"),
        (answered(500, "etcd is sad"), StoreFault, "answered with an error"),
        (answered(422, "invalid"), StoreFault, "HTTP 422: invalid"),
        (
            urllib3.exceptions.MaxRetryError(None, "/", ConnectionRefusedError(111, "refused")),
            StoreUnavailable,
            "cannot reach the API server",
        ),
        (ConnectionResetError(104, "reset"), StoreUnavailable, "cannot reach"),
    ],
)
def test_each_answer_means_one_thing(exc: BaseException, kind: type, says: str) -> None:
    err = api_error(WHERE, exc, doing="writing the claim on batch1")
    assert type(err) is kind and says in str(err)
    assert str(err).startswith(("the API server at", "cannot reach the API server at"))
    assert "(writing the claim on batch1)" in str(err) and err.cause is exc


def test_no_token_reaches_the_message() -> None:
    err: StoreError = api_error(
        WHERE, answered(401, "token Bearer abc.def rejected; sekret-token bad"), ["sekret-token"]
    )
    assert "abc.def" not in str(err) and "sekret-token" not in str(err)
