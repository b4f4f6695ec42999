"""The live loop over a real Redis: holds on missing data, reports, acts, exports."""

from __future__ import annotations

import io
import itertools
import time
from pathlib import Path

import pytest
import redis
import structlog
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from autoscaler.backends import ScaleNote
from autoscaler.backends.dryrun import DryRunBackend
from autoscaler.loop import Autoscaler
from autoscaler.metrics import AutoscalerMetrics
from autoscaler.policy import GuardResult, GuardStatus, Reason
from batchctl.claims.redis_store import RedisClaimStore
from batchctl.cli import cli
from batchctl.config import parse_config
from batchctl.demo.runner import DemoOptions, run_demo
from batchctl.demo.tasks import enqueue, make_app
from exporter.broker.redis.reader import RedisReader
from exporter.collect import InProcessSource
from tests.support.autoscaler import RecordingBackend, dry_run_config, reasons, scaler_for
from tests.support.servers.redis import RedisServer


def test_claimed_batch_scales_from_zero_unclaimed_does_not(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    app = make_app(redis_server.url)
    enqueue(app, "batch0", 20, seconds=0)
    enqueue(app, "batch1", 20, seconds=0)
    RedisClaimStore(redis_db).claim("batch1", "alice", "reindex", 3600, time.time())
    backend = RecordingBackend({"batch0": 0, "batch1": 0})
    a = scaler_for(dry_run_config(redis_server.url), redis_db, backend)
    a.tick()
    assert backend.calls == [("batch1", 1)]
    assert reasons(a) == {"batch0": Reason.UNCLAIMED, "batch1": Reason.FROM_ZERO}

    registry = CollectorRegistry()
    registry.register(AutoscalerMetrics(a))
    get = registry.get_sample_value
    assert get("celery_autoscaler_desired_replicas", {"queue": "batch1"}) == 1
    assert get("celery_autoscaler_max_replicas", {"queue": "batch1"}) == 5
    # Claims are published by the exporter, from the same snapshot (test_broker.py).
    assert get("celery_batch_claimed", {"queue": "batch1", "holder": "alice"}) is None
    assert get("celery_autoscaler_hold", {"queue": "batch0", "reason": "unclaimed"}) == 1
    assert (
        get(
            "celery_autoscaler_decisions_total",
            {"queue": "batch1", "action": "up", "reason": "from_zero"},
        )
        == 1
    )
    assert get("celery_autoscaler_is_leader") == 1


def test_observe_only_batch_decides_reports_and_never_acts(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    app = make_app(redis_server.url)
    enqueue(app, "batch0", 20, seconds=0)
    enqueue(app, "batch1", 20, seconds=0)
    for q in ("batch0", "batch1"):
        RedisClaimStore(redis_db).claim(q, "alice", "reindex", 3600, time.time())
    cfg = parse_config(
        {
            "broker": {"url": redis_server.url},
            "kubernetes": {"enabled": False},
            "batches": [
                {"queue": "batch0", "deployment": "celery-batch0", "autoscale": False},
                {"queue": "batch1", "deployment": "celery-batch1"},
            ],
            "autoscaler": {"backend": "dry-run"},
        },
        env={},
    )
    backend = RecordingBackend({"batch0": 0, "batch1": 0})
    a = scaler_for(cfg, redis_db, backend)
    with structlog.testing.capture_logs() as logs:
        a.tick()
        a.tick()  # still observe_only, not taken for a manual change; logged once
    # The batch next to it is scaled as usual.
    assert backend.calls == [("batch1", 1)]
    assert reasons(a) == {"batch0": Reason.OBSERVE_ONLY, "batch1": Reason.STEP_LIMIT}
    (d,) = [d for d in a.last_decisions if d.queue == "batch0"]
    assert (d.current, d.desired, str(d.action)) == (0, 0, "hold")
    assert "would go 0 -> 1 (from_zero)" in d.detail
    observed = [e for e in logs if e["event"] == "observe only: would scale"]
    assert [(e["queue"], e["replicas_to"], e["reason"]) for e in observed] == [
        ("batch0", 1, "from_zero")
    ]
    registry = CollectorRegistry()
    registry.register(AutoscalerMetrics(a))
    get = registry.get_sample_value
    assert get("celery_autoscaler_hold", {"queue": "batch0", "reason": "observe_only"}) == 1
    assert get("celery_autoscaler_desired_replicas", {"queue": "batch0"}) == 0
    assert (
        get(
            "celery_autoscaler_decisions_total",
            {"queue": "batch0", "action": "hold", "reason": "observe_only"},
        )
        == 2
    )


def test_broker_down_holds_everything(own_redis: RedisServer) -> None:
    client = own_redis.client()
    enqueue(make_app(own_redis.url), "batch1", 5, seconds=0)
    RedisClaimStore(client).claim("batch1", "alice", "x", 3600, time.time())
    backend = RecordingBackend({"batch0": 2, "batch1": 0})
    a = scaler_for(dry_run_config(own_redis.url), client, backend)
    own_redis.stop()
    a.tick()
    assert backend.calls == []
    assert set(reasons(a).values()) == {Reason.NO_DATA}
    # Held blind, and the hold series says so (it is not only for chosen holds).
    registry = CollectorRegistry()
    registry.register(AutoscalerMetrics(a))
    for b in ("batch0", "batch1"):
        assert (
            registry.get_sample_value("celery_autoscaler_hold", {"queue": b, "reason": "no_data"})
            == 1
        )


def test_unhealthy_guard_holds_scale_up(redis_server: RedisServer, redis_db: redis.Redis) -> None:
    enqueue(make_app(redis_server.url), "batch1", 50, seconds=0)
    RedisClaimStore(redis_db).claim("batch1", "alice", "x", 3600, time.time())
    cfg = dry_run_config(
        redis_server.url,
        guards=[{"name": "es_latency", "query": "es_search_latency_seconds > 1"}],
        prometheus_url="http://127.0.0.1:9",
    )
    seen: list[list[str]] = []

    def guards(gs: object, url: object, timeout: float) -> list[GuardResult]:
        seen.append([g.name for g in gs])  # type: ignore[attr-defined]
        return [GuardResult("es_latency", GuardStatus.UNHEALTHY)]

    backend = RecordingBackend({"batch0": 0, "batch1": 0})
    a = scaler_for(cfg, redis_db, backend, guards=guards)
    a.tick()
    assert seen == [["es_latency"]]
    assert backend.calls == []
    assert reasons(a)["batch1"] == Reason.GUARD_HOLD


def test_actuator_failure_is_counted_not_fatal(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    enqueue(make_app(redis_server.url), "batch1", 5, seconds=0)
    RedisClaimStore(redis_db).claim("batch1", "alice", "x", 3600, time.time())

    class Failing(RecordingBackend):
        broken = True

        def set_replicas(self, queue: str, n: int, note: ScaleNote | None = None) -> None:
            if self.broken:
                raise PermissionError("deployments/scale patch forbidden")
            super().set_replicas(queue, n, note)

    backend = Failing({"batch0": 0, "batch1": 0})
    a = scaler_for(dry_run_config(redis_server.url), redis_db, backend)
    a.tick()
    assert a.errors_total[("batch1", "backend")] == 1
    # Once the actuator works again the decision is retried, not taken for a manual change.
    backend.broken = False
    a.tick()
    assert reasons(a)["batch1"] == Reason.FROM_ZERO
    assert backend.calls == [("batch1", 1)]


def test_cli_once_dry_run_without_kubernetes_tracks_its_own_replicas(
    redis_server: RedisServer, redis_db: redis.Redis, tmp_path: Path
) -> None:
    """No cluster, no exporter: --once reads Redis itself and decides from 0 replicas."""
    enqueue(make_app(redis_server.url), "batch1", 7, seconds=0)
    RedisClaimStore(redis_db).claim("batch1", "bob", "x", 3600, time.time())
    cfg = tmp_path / "c.yml"
    cfg.write_text(
        f"broker:\n  url: {redis_server.url}\nkubernetes:\n  enabled: false\n"
        "autoscaler:\n  backend: dry-run\n  snapshot_url: null\n"
    )
    res = CliRunner().invoke(cli, ["autoscaler", "-c", str(cfg), "--once"])
    assert res.exit_code == 0, res.output
    rows = [ln.split() for ln in res.stdout.splitlines()]
    assert rows[0][:5] == ["QUEUE", "REPLICAS", "DESIRED", "ACTION", "REASON"]
    table = {r[0]: r for r in rows[1:]}
    assert set(table) == {"batch0", "batch1", "batch2", "batch3"}
    assert table["batch1"][1:5] == ["0", "1", "up", "from_zero"]
    assert table["batch0"][1:5] == ["0", "0", "none", "steady"]


def test_cli_once_names_what_did_not_answer(redis_server: RedisServer, tmp_path: Path) -> None:
    from tests.support.servers.redis import free_port

    cfg = tmp_path / "c.yml"
    cfg.write_text(
        f"broker:\n  url: {redis_server.url}\nkubernetes:\n  enabled: false\n"
        f"autoscaler:\n  backend: dry-run\n  startup_timeout_seconds: 0.5\n"
        f"  snapshot_url: http://127.0.0.1:{free_port()}\n"
    )
    res = CliRunner().invoke(cli, ["autoscaler", "-c", str(cfg), "--once"])
    assert res.exit_code == 3, res.output
    assert "not ready after 0.5s: exporter at http://127.0.0.1:" in res.output
    assert "Traceback" not in res.output


@pytest.mark.slow
@pytest.mark.integration
def test_demo_end_to_end_loses_nothing() -> None:
    """The demo's whole story, smaller: real workers, 0 -> up -> 0, every task by id."""
    out = io.StringIO()
    summary = run_demo(
        DemoOptions(tasks=500, task_seconds=0.2, max_replicas=3, timeout_seconds=120, out=out),
    )
    text = out.getvalue()
    assert summary.ok, text
    assert summary.completed == 500 and summary.lost == 0
    assert summary.peak_replicas >= 2, text  # it did scale beyond one
    assert summary.replicas_at_end == 0
    assert "/status" in text and "/metrics" in text
    # The workers send events: every scale-down stopped idle workers only.
    assert summary.busy_stops == 0
    assert "tasks running on stopped workers  0" in text
    assert "cost (demo prices)" in text and "USD" in text and "g CO2e" in text
    # The autoscaler wrote what the claim used into it: its release says so.
    assert "released batch1: used " in text and " replica-hours" in text
    # Step-up never faster than configured: one replica per 5 s step interval.
    ups = [
        s.t
        for a, s in zip(summary.samples, summary.samples[1:], strict=False)
        if s.replicas > a.replicas
    ]
    assert all(b - a >= 4.0 for a, b in itertools.pairwise(ups)), ups


def test_dry_run_without_kubernetes_steps_up_tick_after_tick(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    """ "What would it do" is answered over several ticks: its own counts follow its decisions."""
    enqueue(make_app(redis_server.url), "batch1", 500, seconds=0)
    RedisClaimStore(redis_db).claim("batch1", "bob", "x", 3600, time.time())
    cfg = dry_run_config(redis_server.url)
    step = cfg.batches[1].step_interval_seconds
    clock = [time.time()]
    backend = DryRunBackend(["batch0", "batch1"], track=True)
    source = InProcessSource(cfg, RedisReader(cfg.broker), clock=lambda: clock[0])
    a = Autoscaler(cfg, source, backend, clock=lambda: clock[0])
    seen = []
    for _ in range(7):
        (d0, d1) = a.tick()
        seen.append((d1.current, d1.desired, str(d1.reason)))
        assert d0.reason == Reason.STEADY  # nothing waiting: nothing to do
        clock[0] += step
    # No workers drain it, so every interval asks for one more, up to the cap of 5.
    assert [s[1] for s in seen] == [1, 2, 3, 4, 5, 5, 5]
    assert seen[0][2] == "from_zero" and seen[4][2] == "backlog" and seen[-1][2] == "at_cap"
    assert backend.replicas == {"batch0": 0, "batch1": 5}


def test_a_drained_claim_is_ended_by_the_autoscaler(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    """release --drain with nothing left in Redis: down to 0 after two idle ticks, then the
    loop ends the claim (the very claim it saw) and the history says so."""
    from batchctl.claims import Work

    store = RedisClaimStore(redis_db)
    store.claim("batch1", "alice", "reindex", 3600, time.time())
    store.give_back("batch1", "alice", False, time.time(), work=Work(3, 0), drain=True)
    clock = [time.time()]
    cfg = dry_run_config(redis_server.url)
    backend = RecordingBackend({"batch0": 0, "batch1": 2})
    source = InProcessSource(cfg, RedisReader(cfg.broker), clock=lambda: clock[0])
    a = Autoscaler(cfg, source, backend, clock=lambda: clock[0], claims=store)
    a.tick()  # the first idle tick only starts the timer
    assert reasons(a)["batch1"] == Reason.IDLE and store.get("batch1") is not None
    clock[0] += 15
    a.tick()
    assert reasons(a)["batch1"] == Reason.DRAINED and backend.calls == [("batch1", 0)]
    assert store.get("batch1") is not None  # ended once it is at min_replicas
    clock[0] += 15
    a.tick()
    assert store.get("batch1") is None
    events = store.events("batch1")
    assert [(e.kind, e.who) for e in events] == [
        ("claimed", "alice"),
        ("draining", "alice"),
        ("drained", "autoscaler"),
    ]


def test_expiry_recorded_once_and_unclaimed_work_logged_every_ten_minutes(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    app = make_app(redis_server.url)
    enqueue(app, "batch0", 3, seconds=0)
    enqueue(app, "batch1", 3, seconds=0)
    store = RedisClaimStore(redis_db)
    store.claim("batch1", "alice", "forgotten", 60, time.time() - 3600)
    clock = [time.time()]
    cfg = dry_run_config(redis_server.url)
    source = InProcessSource(cfg, RedisReader(cfg.broker), clock=lambda: clock[0])
    backend = RecordingBackend({"batch0": 0, "batch1": 0})
    a = Autoscaler(cfg, source, backend, clock=lambda: clock[0], claims=store)
    with structlog.testing.capture_logs() as logs:
        for step in (0, 60, 541):  # t, t+1m, t+10m01s
            clock[0] += step
            a.tick()
    assert [e.kind for e in store.events("batch1")] == ["claimed", "expired"]
    c = store.get("batch1")
    assert c is not None and c.expiry_noted
    unclaimed = [e for e in logs if e["event"] == "work in a batch nobody claimed"]
    assert [(e["queue"], e["expired_claim_of"]) for e in unclaimed] == [
        ("batch0", None),
        ("batch1", "alice"),
        ("batch0", None),
        ("batch1", "alice"),
    ]
    assert unclaimed[0]["waiting"] == 3
    assert [e["kind"] for e in logs if e["event"] == "claim event"] == ["expired"]


def test_once_exits_1_when_a_change_is_not_applied(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    """A write to the handover record that fails: nothing is scaled, and --once says so."""
    from autoscaler.leadership import SoleLeader
    from autoscaler.runtime import once_exit_code

    enqueue(make_app(redis_server.url), "batch1", 5, seconds=0)
    RedisClaimStore(redis_db).claim("batch1", "alice", "x", 3600, time.time())

    class BrokenLease(SoleLeader):
        def write_state(self, text: str) -> None:
            raise OSError("the API server went away")

    backend = RecordingBackend({"batch0": 0, "batch1": 0})
    a = scaler_for(dry_run_config(redis_server.url), redis_db, backend, leadership=BrokenLease())
    decisions = a.tick()
    assert backend.calls == [] and a.unapplied == ["batch1"]
    assert once_exit_code(decisions, a.unapplied) == 1
    assert once_exit_code(decisions, []) == 0


def test_cli_backend_local_needs_the_local_app_too(tmp_path: Path) -> None:
    """`--backend local` over a config written for another backend: the same check as
    backend: local in the file, before anything starts."""
    cfg = tmp_path / "c.yml"
    cfg.write_text("kubernetes:\n  enabled: false\nautoscaler:\n  snapshot_url: null\n")
    res = CliRunner().invoke(cli, ["autoscaler", "-c", str(cfg), "--once", "--backend", "local"])
    assert res.exit_code == 2, res.output
    assert "autoscaler.local_app: required with the local backend" in res.output
    assert "Traceback" not in res.output


def test_cli_backend_dry_run_over_a_kubernetes_config_without_kubernetes(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """--backend dry-run on a config written for the kubernetes backend, with Kubernetes
    off: no leader election (it follows the backend in use), a decision per batch."""
    cfg = tmp_path / "c.yml"
    cfg.write_text(
        f"broker:\n  url: {redis_server.url}\nkubernetes:\n  enabled: false\n"
        "autoscaler:\n  backend: kubernetes\n  snapshot_url: null\n"
    )
    for flags in (["--backend", "dry-run"], ["--dry-run"]):  # kubectl's spelling too
        res = CliRunner().invoke(cli, ["autoscaler", "-c", str(cfg), "--once", *flags])
        assert res.exit_code == 0, res.output
        assert "Traceback" not in res.output
        batches = [ln.split()[0] for ln in res.stdout.splitlines()[1:]]
        assert batches == [f"batch{i}" for i in range(4)]
    res = CliRunner().invoke(cli, ["autoscaler", "-c", str(cfg), "--dry-run", "--backend", "local"])
    assert res.exit_code == 2 and "--dry-run and --backend local contradict" in res.stderr
