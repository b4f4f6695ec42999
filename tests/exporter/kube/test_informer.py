"""The Deployment cache end to end: the official client against the fake API server."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import Any

import pytest
import structlog
from kubernetes.client.exceptions import ApiException

from batchctl.config import KubernetesConfig
from batchctl.kube import KubeConfigError, describe_error, new_api_client
from batchctl.kuberest import stream_lines
from exporter.kube.informer import DeploymentCache, KubeState
from exporter.snapshot import Deployment
from tests.support.fakekube import FakeKube, Request
from tests.support.isolation import starts_servers
from tests.support.paths import ROOT
from tests.support.waits import wait_for

NS = "court-listener"
NAMES = ["celery-batch0", "celery-batch1", "celery-batch2"]

MakeCache = Callable[..., DeploymentCache]


@pytest.fixture
@starts_servers
def kube() -> Iterator[FakeKube]:
    with FakeKube(NS) as k:
        k.add_deployment("celery-batch0", replicas=2, ready=2)
        k.add_deployment("celery-batch1", replicas=0, ready=0)
        k.add_deployment("celery-batch2", replicas=5, ready=3)
        k.add_deployment("web", replicas=3, ready=3)  # not a batch: never in the cache
        yield k


@pytest.fixture
def kcfg(kube: FakeKube, tmp_path: Path) -> KubernetesConfig:
    return KubernetesConfig(
        namespace=NS,
        kubeconfig=str(kube.write_kubeconfig(tmp_path)),
        request_timeout_seconds=1.0,
        watch_timeout_seconds=60,
    )


@pytest.fixture
def make_cache(kcfg: KubernetesConfig) -> Iterator[MakeCache]:
    caches: list[DeploymentCache] = []

    def make(names: list[str] = NAMES, cfg: KubernetesConfig | None = None) -> DeploymentCache:
        cache = DeploymentCache(cfg or kcfg, names, backoff_initial=0.05, backoff_max=0.5)
        caches.append(cache)
        cache.start()
        return cache

    yield make
    for c in caches:
        c.stop()


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """structlog events emitted during the test (configuration restored afterwards)."""
    with structlog.testing.capture_logs() as captured:
        yield captured


def deps(cache: DeploymentCache) -> dict[str, tuple[int, int]]:
    return {n: (d.replicas, d.ready_replicas) for n, d in cache.state().deployments.items()}


def lists(kube: FakeKube) -> list[Request]:
    return kube.requests_to("GET", r"/deployments$", watch=False)


def test_initial_list_reads_spec_and_ready_replicas(kube: FakeKube, make_cache: MakeCache) -> None:
    cache = make_cache()
    assert cache.wait_synced(5)
    state = cache.state()
    assert state.up and state.synced and state.error is None
    # With each Deployment's spec.selector.matchLabels (the fake's: app=<name>), by which
    # the autoscaler lists its pods.
    assert state.deployments == {
        "celery-batch0": Deployment("celery-batch0", 2, 2, (("app", "celery-batch0"),)),
        # readyReplicas is omitted by the API when 0.
        "celery-batch1": Deployment("celery-batch1", 0, 0, (("app", "celery-batch1"),)),
        "celery-batch2": Deployment("celery-batch2", 5, 3, (("app", "celery-batch2"),)),
    }
    assert "readyReplicas" not in kube.deployment("celery-batch1")["status"]


def test_state_is_immutable_and_unsynced_before_start(kcfg: KubernetesConfig) -> None:
    cache = DeploymentCache(kcfg, NAMES)
    state = cache.state()
    assert state == KubeState(deployments={}, up=False, error=None, synced=False)
    with pytest.raises(FrozenInstanceError):
        state.up = True  # type: ignore[misc]
    assert not cache.wait_synced(0.05)
    cache.stop()


def test_watch_delivers_modified_deleted_and_added(kube: FakeKube, make_cache: MakeCache) -> None:
    cache = make_cache()
    assert cache.wait_synced(5)
    wait_for(lambda: kube.open_watches == 1, 5, what="a watch")

    kube.set_replicas("celery-batch1", spec=4, ready=1)
    wait_for(lambda: deps(cache)["celery-batch1"] == (4, 1), 5, what="MODIFIED")

    kube.delete_deployment("celery-batch2")
    wait_for(lambda: "celery-batch2" not in deps(cache), 5, what="DELETED")

    kube.add_deployment("celery-batch2", replicas=1, ready=0)
    wait_for(lambda: deps(cache).get("celery-batch2") == (1, 0), 5, what="ADDED")

    # Events of other Deployments change nothing, and all came over one list.
    kube.set_replicas("web", spec=9, ready=9)
    kube.set_replicas("celery-batch0", spec=3)
    wait_for(lambda: deps(cache)["celery-batch0"] == (3, 2), 5, what="MODIFIED batch0")
    assert "web" not in deps(cache)
    assert len(lists(kube)) == 1
    assert cache.state().up


def test_watch_resumes_from_the_list_resource_version(
    kube: FakeKube, make_cache: MakeCache
) -> None:
    listed_rv = kube.resource_version
    cache = make_cache()
    assert cache.wait_synced(5)
    wait_for(lambda: kube.open_watches == 1, 5, what="a watch")
    (watch_req,) = kube.requests_to("GET", r"/deployments$", watch=True)
    assert watch_req.query["resourceVersion"] == str(listed_rv)
    assert watch_req.query["allowWatchBookmarks"] == "true"
    assert watch_req.query["timeoutSeconds"] == "60"


def test_clean_watch_end_rewatches_without_relisting(kube: FakeKube, make_cache: MakeCache) -> None:
    cache = make_cache()
    assert cache.wait_synced(5)
    wait_for(lambda: kube.open_watches == 1, 5, what="a watch")
    kube.set_replicas("celery-batch0", spec=7)
    wait_for(lambda: deps(cache)["celery-batch0"][0] == 7, 5, what="MODIFIED")
    rv_after_event = kube.resource_version

    kube.end_watches()  # what the server does at timeoutSeconds
    wait_for(
        lambda: len(kube.requests_to("GET", r"/deployments$", watch=True)) == 2,
        5,
        what="a second watch",
    )
    second = kube.requests_to("GET", r"/deployments$", watch=True)[1]
    # The fake ends a watch with a bookmark at the current rv: resume from there.
    assert int(second.query["resourceVersion"]) >= rv_after_event
    assert len(lists(kube)) == 1
    kube.set_replicas("celery-batch0", spec=8)
    wait_for(lambda: deps(cache)["celery-batch0"][0] == 8, 5, what="event on the new watch")


def test_single_name_is_selected_by_field(kube: FakeKube, make_cache: MakeCache) -> None:
    cache = make_cache(["celery-batch2"])
    assert cache.wait_synced(5)
    assert deps(cache) == {"celery-batch2": (5, 3)}
    wait_for(lambda: kube.open_watches == 1, 5, what="a watch")
    for req in kube.requests_to("GET", r"/deployments$"):
        assert req.query["fieldSelector"] == "metadata.name=celery-batch2"


def test_missing_deployment_is_absent_and_logged_once(
    kube: FakeKube, make_cache: MakeCache
) -> None:
    with structlog.testing.capture_logs() as logs:
        cache = make_cache([*NAMES, "celery-batch9"])
        assert cache.wait_synced(5)
        assert "celery-batch9" not in cache.state().deployments
        assert set(cache.state().deployments) == set(NAMES)
        # A relist (after 410) must not report it again.
        wait_for(lambda: kube.open_watches == 1, 5, what="a watch")
        kube.expire_watches()
        wait_for(lambda: len(lists(kube)) == 2, 5, what="a relist")
        wait_for(lambda: kube.open_watches == 1, 5, what="a new watch")
        kube.add_deployment("celery-batch9", replicas=1, ready=1)
        wait_for(lambda: "celery-batch9" in deps(cache), 5, what="ADDED")
    missing = [e for e in logs if e["event"].startswith("deployment not found")]
    assert [e["deployment"] for e in missing] == ["celery-batch9"]
    assert missing[0]["log_level"] == "warning"
    assert any(e["event"] == "deployment found" for e in logs)


@pytest.mark.parametrize("how", ["event", "status", "injected"])
def test_410_gone_relists(
    kube: FakeKube, make_cache: MakeCache, logs: list[MutableMapping[str, Any]], how: str
) -> None:
    cache = make_cache()
    assert cache.wait_synced(5)
    wait_for(lambda: kube.open_watches == 1, 5, what="a watch")
    if how == "event":
        # The open watch gets an ERROR event with a 410 Status.
        kube.set_replicas("celery-batch0", spec=6)
        kube.expire_watches()
    elif how == "status":
        # The watch ends without a bookmark; resuming from the compacted rv is
        # answered with a plain HTTP 410.
        kube.expired_watch = "status"
        kube.bookmark_on_end = False
        gate = kube.hold(watch=True, times=1)
        kube.end_watches()
        wait_for(lambda: gate.held == 1, 5, what="the re-watch to arrive")
        kube.set_replicas("celery-batch0", spec=6)
        kube.compact()
        gate.release()
    else:
        kube.fail(410, watch=True, times=1)
        kube.end_watches()
        kube.set_replicas("celery-batch0", spec=6)
    wait_for(lambda: len(lists(kube)) == 2, 5, what="a relist after 410")
    wait_for(lambda: deps(cache)["celery-batch0"][0] == 6, 5, what="fresh values")
    wait_for(lambda: kube.open_watches == 1, 5, what="a new watch")
    assert cache.state().up
    # A 410 is routine: relist at once, without reporting the API as failing.
    events = [(e["log_level"], e["event"]) for e in logs]
    assert ("info", "watch expired, relisting") in events
    assert not [e for e in events if e[0] == "warning"]


def test_a_server_that_always_answers_410_is_not_hammered(
    kube: FakeKube, make_cache: MakeCache
) -> None:
    gone = kube.fail(410, watch=True)
    cache = make_cache()  # backoff 0.05 s doubling to 0.5 s
    assert cache.wait_synced(5)
    wait_for(lambda: gone.held >= 4, 5, what="repeated 410s")
    n0 = len(lists(kube))
    time.sleep(1.0)  # a rate is measured over a window: nothing to await here
    # Without backoff this loop would relist hundreds of times a second.
    assert len(lists(kube)) - n0 <= 4
    kube.clear_faults()
    wait_for(lambda: kube.open_watches == 1, 5, what="a watch again")


def test_api_down_marks_up_false_fast_then_recovers_fresh(
    kube: FakeKube, make_cache: MakeCache
) -> None:
    cache = make_cache()
    assert cache.wait_synced(5)
    wait_for(lambda: kube.open_watches == 1, 5, what="a watch")
    before = cache.state().deployments

    t0 = time.monotonic()
    kube.down()
    wait_for(lambda: not cache.state().up, 3, what="up=False")
    assert time.monotonic() - t0 < 3
    state = cache.state()
    assert state.deployments == before  # last known values are kept
    assert state.synced
    assert state.error

    # The world moves on while the cache cannot see it.
    kube.set_replicas("celery-batch1", spec=3, ready=3)
    kube.compact()
    # Still retrying, and never blocking a reader.
    wait_for(lambda: len(lists(kube)) >= 1, 1)
    t1 = time.monotonic()
    cache.state()
    assert time.monotonic() - t1 < 0.05

    kube.up()
    wait_for(lambda: cache.state().up, 5, what="up=True after recovery")
    wait_for(lambda: deps(cache)["celery-batch1"] == (3, 3), 5, what="fresh values")
    assert cache.state().error is None
    assert cache._thread is not None and cache._thread.is_alive()


def test_refused_from_the_start_then_syncs(kube: FakeKube, make_cache: MakeCache) -> None:
    kube.down()
    cache = make_cache()
    wait_for(lambda: cache.state().error, 3, what="an error")
    state = cache.state()
    assert not state.up and not state.synced and state.deployments == {}
    assert "refused" in (state.error or "").lower()
    kube.up()
    assert cache.wait_synced(5)
    assert cache.state().up


def test_403_is_reported_with_the_rbac_message_and_retried(
    kube: FakeKube, make_cache: MakeCache
) -> None:
    fault = kube.fail(403, method="GET", path=r"/deployments$")
    cache = make_cache()
    wait_for(lambda: cache.state().error, 3, what="an error")
    error = cache.state().error or ""
    assert error.startswith("HTTP 403")
    assert 'cannot list resource "deployments" in API group "apps"' in error
    assert not cache.state().up and not cache.state().synced
    wait_for(lambda: fault.held >= 3, 3, what="retries with backoff")
    kube.clear_faults()
    assert cache.wait_synced(5)
    assert cache.state().up and cache.state().error is None


def test_500_on_watch_keeps_values_and_recovers(kube: FakeKube, make_cache: MakeCache) -> None:
    cache = make_cache()
    assert cache.wait_synced(5)
    wait_for(lambda: kube.open_watches == 1, 5, what="a watch")
    kube.fail(500, watch=True, message="etcdserver: leader changed")
    kube.end_watches()
    wait_for(lambda: not cache.state().up, 3, what="up=False on 500")
    assert cache.state().error == "HTTP 500: etcdserver: leader changed"
    assert set(cache.state().deployments) == set(NAMES)
    kube.clear_faults()
    kube.set_replicas("celery-batch2", spec=5, ready=5)
    wait_for(lambda: cache.state().up and kube.open_watches == 1, 5, what="recovery")
    wait_for(lambda: deps(cache)["celery-batch2"] == (5, 5), 5, what="fresh values")


def test_slow_list_beyond_request_timeout(kube: FakeKube, make_cache: MakeCache) -> None:
    kube.delay(5, method="GET", path=r"/deployments$", watch=False)
    cache = make_cache()  # request timeout is 1 s
    t0 = time.monotonic()
    wait_for(lambda: cache.state().error, 3, what="a timeout error")
    assert time.monotonic() - t0 < 2.5
    assert "timed out" in (cache.state().error or "").lower()
    assert not cache.state().synced
    kube.clear_faults()
    assert cache.wait_synced(5)


def test_unanswered_watch_beyond_request_timeout(kube: FakeKube, make_cache: MakeCache) -> None:
    cache = make_cache()
    assert cache.wait_synced(5)
    wait_for(lambda: kube.open_watches == 1, 5, what="a watch")
    # The next watch request gets no answer at all, not even headers.
    kube.delay(30, watch=True)
    t0 = time.monotonic()
    kube.end_watches()
    wait_for(lambda: not cache.state().up, 3, what="up=False")
    assert time.monotonic() - t0 < 2.5  # request timeout 1 s, not the 60 s watch timeout
    assert "timed out" in (cache.state().error or "").lower()
    assert set(cache.state().deployments) == set(NAMES)
    kube.clear_faults()
    kube.down()  # cut the held requests
    kube.up()
    wait_for(lambda: cache.state().up and kube.open_watches == 1, 5, what="recovery")


def test_quiet_watch_outlasts_the_request_timeout(kube: FakeKube, make_cache: MakeCache) -> None:
    cache = make_cache()
    assert cache.wait_synced(5)
    wait_for(lambda: kube.open_watches == 1, 5, what="a watch")
    # No events for longer than the 1 s request timeout: a healthy, quiet watch.
    time.sleep(1.6)
    assert cache.state().up
    assert len(kube.requests_to("GET", r"/deployments$", watch=True)) == 1
    kube.set_replicas("celery-batch0", spec=1)
    wait_for(lambda: deps(cache)["celery-batch0"][0] == 1, 5, what="event on the same watch")
    assert len(kube.requests_to("GET", r"/deployments$", watch=True)) == 1


def test_stop_ends_the_thread_mid_watch(kube: FakeKube, kcfg: KubernetesConfig) -> None:
    cache = DeploymentCache(kcfg, NAMES)
    cache.start()
    assert cache.wait_synced(5)
    wait_for(lambda: kube.open_watches == 1, 5, what="a watch")
    t0 = time.monotonic()
    cache.stop()
    assert cache._thread is not None and not cache._thread.is_alive()
    assert time.monotonic() - t0 < 2
    wait_for(lambda: kube.open_watches == 0, 5, what="the watch to close")


def test_bearer_token_is_sent_but_never_logged(
    kube: FakeKube,
    make_cache: MakeCache,
    kcfg: KubernetesConfig,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        cache = make_cache()
        assert cache.wait_synced(5)
        wait_for(lambda: kube.open_watches == 1, 5, what="a watch")
        kube.fail(403, watch=False)
        kube.fail(500, watch=True, message=f"echo Authorization: Bearer {kube.token}")
        kube.end_watches()
        wait_for(lambda: not cache.state().up, 3, what="failure")
        wait_for(lambda: "403" in (cache.state().error or ""), 3)
        errors = [cache.state().error]
        kube.clear_faults()
        kube.down()
        wait_for(lambda: "refused" in (cache.state().error or ""), 3)
        errors.append(cache.state().error)
        kube.up()
        wait_for(lambda: cache.state().up, 5, what="recovery")

        # A wrong token: 401 from the server, reported without either token.
        bad = kube.write_kubeconfig(tmp_path, token="wrong-token-123", filename="bad")
        bad_cfg = kcfg.model_copy(update={"kubeconfig": str(bad)})
        bad_cache = make_cache(cfg=bad_cfg)
        wait_for(lambda: bad_cache.state().error, 3, what="401")
        errors.append(bad_cache.state().error)
    assert errors[-1] is not None and errors[-1].startswith("HTTP 401")
    # Every request carried the token...
    sent = {r.headers.get("authorization") for r in kube.requests}
    assert sent == {f"Bearer {kube.token}", "Bearer wrong-token-123"}
    # ...and no log line, stdlib or structlog, nor any error string, shows it.
    text = json.dumps(logs, default=str) + caplog.text + json.dumps(errors)
    assert logs, "expected log events"
    assert any(e["log_level"] == "warning" for e in logs)
    assert kube.token not in text
    assert "wrong-token-123" not in text
    # The echoed token was scrubbed, not the whole message dropped.
    assert "echo Authorization: ***" in text


def test_describe_error_scrubs_tokens() -> None:
    exc = ApiException(status=500, reason="Internal Server Error")
    exc.body = json.dumps({"kind": "Status", "message": "saw Authorization: Bearer abc.def-g"})
    assert describe_error(exc) == "HTTP 500: saw Authorization: Bearer ***"
    plain = RuntimeError("token s3cr3t leaked")
    assert describe_error(plain, ["s3cr3t"]) == "RuntimeError: token *** leaked"


def test_kubeconfig_context_is_honoured(kube: FakeKube, kcfg: KubernetesConfig) -> None:
    default = new_api_client(kcfg)
    assert default.configuration.host == kube.url
    nowhere = new_api_client(kcfg.model_copy(update={"context": "nowhere"}))
    assert nowhere.configuration.host == "http://127.0.0.1:9"
    default.close()
    nowhere.close()


def test_in_cluster_is_chosen_only_without_a_kubeconfig(
    kube: FakeKube, kcfg: KubernetesConfig
) -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    # An explicit kubeconfig wins even inside a pod.
    api = new_api_client(kcfg, env=env)
    assert api.configuration.host == kube.url
    api.close()
    # Without one, the service account is used; there is none here, which says so.
    with pytest.raises(KubeConfigError, match="in-cluster service account"):
        new_api_client(kcfg.model_copy(update={"kubeconfig": None}), env=env)


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"kubeconfig": "/nonexistent/kubeconfig"}, "/nonexistent/kubeconfig"),
        ({"context": "no-such-context"}, "context no-such-context"),
    ],
)
def test_bad_kubeconfig_raises_a_clear_error(
    kcfg: KubernetesConfig, kube: FakeKube, update: dict[str, str], message: str
) -> None:
    with pytest.raises(KubeConfigError, match=message) as info:
        new_api_client(kcfg.model_copy(update=update))
    assert kube.token not in str(info.value)


_NO_MODELS_SCRIPT = """
import sys, time
from batchctl.config import KubernetesConfig
from exporter.kube.informer import DeploymentCache

cfg = KubernetesConfig(namespace=sys.argv[1], kubeconfig=sys.argv[2], request_timeout_seconds=1.0)
cache = DeploymentCache(cfg, ["celery-batch0", "celery-batch1"])
cache.start()
assert cache.wait_synced(10), cache.state()
print("synced", flush=True)
deadline = time.monotonic() + 10
while cache.state().deployments["celery-batch0"].replicas != 7:
    assert time.monotonic() < deadline, cache.state()
    time.sleep(0.02)
cache.stop()
print("\\n".join("module " + m for m in sorted(sys.modules)))
"""


def test_cache_never_loads_the_generated_api_or_models(kube: FakeKube, tmp_path: Path) -> None:
    """AppsV1Api and the pydantic models cost ~20 MB: only the plumbing is used."""
    kubeconfig = str(kube.write_kubeconfig(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-c", _NO_MODELS_SCRIPT, NS, kubeconfig],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        # Its log lines go to stdout too.
        while (line := proc.stdout.readline()) and line.strip() != "synced":
            pass
        assert line, "the subprocess ended before syncing"
        # A watch event must reach it too: events were deserialized into models before.
        wait_for(lambda: kube.open_watches == 1, 5, what="a watch")
        kube.set_replicas("celery-batch0", spec=7)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    loaded = {line.split()[1] for line in out.splitlines() if line.startswith("module ")}
    assert "kubernetes.client.api_client" in loaded  # the plumbing, as intended
    generated = sorted(
        m
        for m in loaded
        if m.startswith(("kubernetes.client.models.", "kubernetes.client.api."))
        or m == "kubernetes.client.api"
    )
    assert generated == []


def test_watch_lines_are_rejoined_across_chunks() -> None:
    class Raw:
        def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
            yield from [b'{"a":', b"1}\n", b'{"b":2}\n{"c"', b":3}\n\n", b'{"torn"']

    # The blank line is kept (and skipped by the parser); a line the stream never
    # finished is dropped, as the official Watch drops it.
    assert list(stream_lines(Raw())) == [b'{"a":1}', b'{"b":2}', b'{"c":3}', b""]  # type: ignore[arg-type]
