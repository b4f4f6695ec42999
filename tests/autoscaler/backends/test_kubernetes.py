"""The kubernetes backend end to end: the official client against the fake API server."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

from autoscaler.backends.kubernetes import (
    MERGE_PATCH,
    DeploymentNotFoundError,
    ReplicasChangedError,
    ScaleClient,
    ScaleError,
    ScalePermissionError,
)
from batchctl.config import KubernetesConfig
from tests.support.fakekube import FakeKube
from tests.support.isolation import starts_servers
from tests.support.waits import wait_for

NS = "court-listener"
DEP = "celery-batch1"
SCALE = rf"/apis/apps/v1/namespaces/{NS}/deployments/{DEP}/scale$"

MakeClient = Callable[..., ScaleClient]


@pytest.fixture
@starts_servers
def kube() -> Iterator[FakeKube]:
    with FakeKube(NS) as k:
        k.add_deployment(DEP, replicas=2, ready=2)
        yield k


@pytest.fixture
def make_client(kube: FakeKube, tmp_path: Path) -> Iterator[MakeClient]:
    cfg = KubernetesConfig(
        namespace=NS,
        kubeconfig=str(kube.write_kubeconfig(tmp_path)),
        request_timeout_seconds=0.5,
        watch_timeout_seconds=60,
    )
    made: list[ScaleClient] = []

    def make(**kwargs: object) -> ScaleClient:
        kwargs.setdefault("backoff_initial", 0.01)
        kwargs.setdefault("backoff_max", 0.05)
        actuator = ScaleClient(cfg, **kwargs)  # type: ignore[arg-type]
        made.append(actuator)
        return actuator

    yield make
    for a in made:
        a.close()


def test_get_replicas_reads_the_scale_subresource(kube: FakeKube, make_client: MakeClient) -> None:
    kube.set_replicas(DEP, spec=3, ready=1)
    assert make_client().get_replicas(DEP) == 3  # desired, not ready
    (req,) = kube.requests_to(path=SCALE)
    assert req.method == "GET"
    assert req.headers["authorization"] == f"Bearer {kube.token}"


def test_set_replicas_sends_a_merge_patch_of_spec_replicas(
    kube: FakeKube, make_client: MakeClient
) -> None:
    generation = kube.deployment(DEP)["metadata"]["generation"]
    assert make_client().set_replicas(DEP, 4, expected=None) == 4
    (req,) = kube.requests_to(path=SCALE)
    assert req.method == "PATCH"
    assert req.content_type == MERGE_PATCH == "application/merge-patch+json"
    assert req.json() == {"spec": {"replicas": 4}}
    dep = kube.deployment(DEP)
    assert dep["spec"]["replicas"] == 4
    assert dep["metadata"]["generation"] == generation + 1
    # Only the scale subresource is ever touched.
    assert all(r.path.endswith("/scale") for r in kube.requests)


def test_set_replicas_with_expected_patches_with_a_resource_version(
    kube: FakeKube, make_client: MakeClient
) -> None:
    rv = kube.deployment(DEP)["metadata"]["resourceVersion"]
    assert make_client().set_replicas(DEP, 5, expected=2) == 5
    get, patch = kube.requests_to(path=SCALE)
    assert (get.method, patch.method) == ("GET", "PATCH")
    assert patch.content_type == MERGE_PATCH
    assert patch.json() == {"metadata": {"resourceVersion": rv}, "spec": {"replicas": 5}}
    assert kube.replicas(DEP) == 5


def test_set_replicas_to_the_current_value_writes_nothing(
    kube: FakeKube, make_client: MakeClient
) -> None:
    assert make_client().set_replicas(DEP, 2, expected=2) == 2
    assert [r.method for r in kube.requests_to(path=SCALE)] == ["GET"]


def test_unexpected_replicas_are_not_overwritten(kube: FakeKube, make_client: MakeClient) -> None:
    kube.set_replicas(DEP, spec=7)  # someone scaled by hand
    with pytest.raises(ReplicasChangedError) as info:
        make_client().set_replicas(DEP, 3, expected=2)
    assert (info.value.expected, info.value.actual) == (2, 7)
    assert kube.replicas(DEP) == 7
    assert not kube.requests_to("PATCH")


def test_injected_409s_are_retried_with_a_re_read(kube: FakeKube, make_client: MakeClient) -> None:
    kube.fail(409, method="PATCH", path=SCALE, times=2)
    assert make_client().set_replicas(DEP, 3, expected=2) == 3
    assert [r.method for r in kube.requests_to(path=SCALE)] == ["GET", "PATCH"] * 3
    assert kube.replicas(DEP) == 3


def test_a_real_conflict_is_detected_and_retried(kube: FakeKube, make_client: MakeClient) -> None:
    # The first patch is held until the controller has written the Deployment's status,
    # so the resourceVersion the actuator read is stale by the time the patch lands.
    gate = kube.hold(method="PATCH", path=SCALE, times=1)
    result: list[int | BaseException] = []

    def scale() -> None:
        try:
            result.append(make_client().set_replicas(DEP, 4, expected=2))
        except BaseException as e:
            result.append(e)

    t = threading.Thread(target=scale)
    t.start()
    wait_for(lambda: gate.held == 1, 5, what="the first patch")
    kube.set_replicas(DEP, ready=1)  # status only: spec.replicas is still 2
    gate.release()
    t.join(5)
    assert result == [4]
    patches = kube.requests_to("PATCH", SCALE)
    assert len(patches) == 2
    assert (
        patches[0].json()["metadata"]["resourceVersion"]
        != (patches[1].json()["metadata"]["resourceVersion"])
    )
    assert kube.replicas(DEP) == 4


def test_a_conflicting_scale_by_someone_else_wins(kube: FakeKube, make_client: MakeClient) -> None:
    gate = kube.hold(method="PATCH", path=SCALE, times=1)
    result: list[int | BaseException] = []
    t = threading.Thread(
        target=lambda: result.append(
            _capture(lambda: make_client().set_replicas(DEP, 4, expected=2))
        )
    )
    t.start()
    wait_for(lambda: gate.held == 1, 5, what="the first patch")
    kube.set_replicas(DEP, spec=9)  # a person scaled it meanwhile
    gate.release()
    t.join(5)
    (outcome,) = result
    assert isinstance(outcome, ReplicasChangedError)
    assert outcome.actual == 9
    assert kube.replicas(DEP) == 9


def _capture(fn: Callable[[], int]) -> int | BaseException:
    try:
        return fn()
    except BaseException as e:
        return e


def test_conflicts_give_up_after_max_attempts(kube: FakeKube, make_client: MakeClient) -> None:
    kube.fail(409, method="PATCH", path=SCALE)
    with pytest.raises(ScaleError, match=r"gave up after 3 attempts \(conflict\)"):
        make_client(max_attempts=3).set_replicas(DEP, 3)
    assert len(kube.requests_to("PATCH", SCALE)) == 3
    assert kube.replicas(DEP) == 2


def test_backoff_grows_and_is_capped(kube: FakeKube, make_client: MakeClient) -> None:
    kube.fail(503, method="PATCH", path=SCALE)
    slept: list[float] = []
    actuator = make_client(max_attempts=6, backoff_initial=0.1, backoff_max=0.4, sleep=slept.append)
    with pytest.raises(ScaleError, match="transient error"):
        actuator.set_replicas(DEP, 3)
    assert len(slept) == 5
    for got, base in zip(slept, [0.1, 0.2, 0.4, 0.4, 0.4], strict=True):
        assert base * 0.8 <= got <= base * 1.2


def test_a_500_is_retried(kube: FakeKube, make_client: MakeClient) -> None:
    kube.fail(500, method="PATCH", path=SCALE, times=1)
    assert make_client().set_replicas(DEP, 1) == 1
    assert len(kube.requests_to("PATCH", SCALE)) == 2


@pytest.mark.parametrize(("method", "verb"), [("PATCH", "patch"), ("GET", "get")])
def test_403_names_the_missing_rbac_verb_and_is_not_retried(
    kube: FakeKube, make_client: MakeClient, method: str, verb: str
) -> None:
    kube.fail(403, method=method, path=SCALE)
    with pytest.raises(ScalePermissionError) as info:
        make_client().set_replicas(DEP, 3, expected=2)
    message = str(info.value)
    assert info.value.verb == verb
    assert f"verbs: [{verb}]" in message
    assert "resources: [deployments/scale]" in message
    assert f"namespace '{NS}'" in message
    # The server's own words are kept: they name the user.
    assert f'cannot {verb} resource "deployments/scale"' in message
    assert len(kube.requests_to(method, SCALE)) == 1


def test_missing_deployment(kube: FakeKube, make_client: MakeClient) -> None:
    with pytest.raises(DeploymentNotFoundError, match="celery-nope"):
        make_client().get_replicas("celery-nope")
    assert len(kube.requests_to("GET")) == 1


def test_slow_api_times_out_within_bounds(kube: FakeKube, make_client: MakeClient) -> None:
    kube.delay(10, method="PATCH", path=SCALE)
    t0 = time.monotonic()
    with pytest.raises(ScaleError, match=r"(?i)timed out"):
        make_client(max_attempts=2).set_replicas(DEP, 3)
    assert time.monotonic() - t0 < 2.5  # 2 attempts x 0.5 s, plus backoff


def test_api_down_is_a_clear_error_then_recovers(kube: FakeKube, make_client: MakeClient) -> None:
    actuator = make_client(max_attempts=2)
    assert actuator.get_replicas(DEP) == 2
    kube.down()
    with pytest.raises(ScaleError, match=r"connection error.*refused"):
        actuator.set_replicas(DEP, 3)
    kube.up()
    assert actuator.set_replicas(DEP, 3) == 3


def test_negative_replicas_are_refused_locally(kube: FakeKube, make_client: MakeClient) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        make_client().set_replicas(DEP, -1)
    assert not kube.requests


def test_token_is_sent_but_never_logged_or_raised(
    kube: FakeKube, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f"Authorization: Bearer {kube.token}"
    kube.fail(503, method="PATCH", path=SCALE, times=1, message=echo)
    kube.fail(500, method="GET", path=SCALE, message=echo)
    actuator = make_client(max_attempts=2)
    with structlog.testing.capture_logs() as logs:
        assert actuator.set_replicas(DEP, 3) == 3
        with pytest.raises(ScaleError) as info:
            actuator.get_replicas(DEP)
    assert {r.headers["authorization"] for r in kube.requests} == {f"Bearer {kube.token}"}
    text = json.dumps(logs, default=str) + caplog.text + str(info.value)
    assert any(e["event"] == "scale transient error, retrying" for e in logs)
    assert "Authorization: ***" in text
    assert kube.token not in text
