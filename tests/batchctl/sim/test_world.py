"""The simulator and the KEDA+HPA model: invariants of the model, the baseline's rules, the CLI."""

from __future__ import annotations

import json
import math
import random
import statistics
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from batchctl.config import BatchConfig, Config, parse_config
from batchctl.sim import keda
from batchctl.sim.world import (
    BASELINE,
    OURS,
    KedaController,
    PolicyController,
    Trace,
    TraceError,
    World,
    lognormal_params,
    parse_trace,
    run,
    simulate,
)

TRACES = Path(__file__).resolve().parents[3] / "benchmarks" / "traces"


def trace(**kw: Any) -> Trace:
    base: dict[str, Any] = {
        "task_seconds": {"mean": 2.0, "p99": 8.0},
        "worker_concurrency": 4,
        "prefetch_multiplier": 4,
        "pod_start_seconds": 20,
        "arrivals": [[0, 600]],
    }
    base.update(kw)
    return parse_trace(base, "test")


def cfg(**batch: Any) -> Config:
    return parse_config({"batches": [{"queue": "batch0", "deployment": "celery-batch0", **batch}]})


# --- the worker model ------------------------------------------------------------------


@pytest.mark.parametrize("acks_late", [False, True])
def test_messages_are_conserved_every_second(acks_late: bool) -> None:
    """waiting + prefetched + running + pending redelivery + completed + lost == enqueued."""
    t = trace(
        arrivals=[[0, 400], [50, 30], [400, 200]],
        priorities={0: 0.5, 3: 0.2, 9: 0.3},
        task_seconds={"mean": 20.0, "p99": 100.0},
        acks_late=acks_late,
        visibility_timeout_seconds=120,
    )
    results = simulate(t, cfg(max_replicas=4), check=True)  # check asserts it every second
    for r in results.values():
        m = r.metrics
        assert m["completed"] + m["lost"] + m["left_undone"] == m["messages"] == 630


def test_our_policy_loses_nothing_and_keeps_its_promises() -> None:
    t = trace(arrivals=[[0, 1500], [600, 300]], task_seconds={"mean": 30.0, "p99": 200.0})
    m = simulate(t, cfg(), check=True)[OURS].metrics
    assert m["completed"] == 1800 and m["lost"] == 0 and m["left_undone"] == 0
    assert m["inflight_interrupted"] == 0
    assert m["cap_violations"] == 0 and m["peak_replicas"] <= 5
    assert m["max_step_up_per_minute"] <= 1
    assert m["drain_seconds"] is not None


def test_step_up_follows_the_config() -> None:
    m = simulate(trace(arrivals=[[0, 5000]]), cfg(step_up=2), baseline=None)[OURS].metrics
    assert m["max_step_up_per_minute"] == 2


def test_keda_cuts_off_long_tasks_and_ours_does_not() -> None:
    """Tasks longer than the 30 s grace period: KEDA+HPA's scale-down kills them."""
    t = trace(arrivals=[[0, 150]], task_seconds={"mean": 60.0, "p99": 280.0})
    results = simulate(t, cfg())
    assert results[OURS].metrics["inflight_interrupted"] == 0
    keda_m = results[BASELINE].metrics
    assert keda_m["inflight_interrupted"] > 0
    assert keda_m["lost"] == keda_m["inflight_interrupted"]  # early acks: gone


def test_late_acks_redeliver_cut_off_tasks_after_the_visibility_timeout() -> None:
    t = trace(
        arrivals=[[0, 150]],
        task_seconds={"mean": 60.0, "p99": 280.0},
        acks_late=True,
        visibility_timeout_seconds=600,
    )
    m = simulate(t, cfg(), check=True)[BASELINE].metrics
    assert m["inflight_interrupted"] > 0 and m["lost"] == 0


def test_keda_sees_only_the_base_list() -> None:
    """All messages at priority 9: LLEN of the base list stays 0, KEDA never starts a pod."""
    t = trace(arrivals=[[0, 200]], priorities={9: 1.0}, tail_seconds=900)
    results = simulate(t, cfg())
    theirs = results[BASELINE].metrics
    assert theirs["replica_seconds"] == 0 and theirs["drain_seconds"] is None
    assert theirs["left_undone"] == 200
    ours = results[OURS].metrics
    assert ours["completed"] == 200 and ours["drain_seconds"] is not None


def test_priority_lists_are_served_in_step_order() -> None:
    t = trace(arrivals=[[0, 100]], priorities={0: 0.5, 9: 0.5})
    world = World(t, BatchConfig(queue="batch0", deployment="d"), grace_seconds=30)
    world.enqueue(0.0, 100)
    assert world.lengths == [50, 50]
    world.scale(1, 0.0)
    world.advance(20)  # the pod is ready: it prefetches 16 and starts 4, all from step 0
    assert world.lengths == [30, 50]


def test_arrivals_follow_the_shares_exactly() -> None:
    t = trace(priorities={0: 0.1, 3: 0.3, 9: 0.6})
    world = World(t, BatchConfig(queue="batch0", deployment="d"), grace_seconds=30)
    for s in range(1000):
        world.enqueue(float(s), 1)  # one at a time: the shares still hold on aggregate
    assert world.lengths == [100, 300, 600]
    world.enqueue(1000.0, 7)
    assert sum(world.lengths) == 1007


def test_warm_shutdown_returns_prefetched_and_finishes_running() -> None:
    t = trace(arrivals=[[0, 100]], task_seconds={"mean": 10.0, "p99": 20.0})
    world = World(t, BatchConfig(queue="batch0", deployment="d"), grace_seconds=300)
    world.enqueue(0.0, 100)
    world.scale(1, 0.0)
    world.advance(20)
    assert world.waiting == 80 and world.in_flight() == 20
    world.scale(0, 21.0)
    assert world.waiting == 96  # the 16 prefetched went back
    for s in range(21, 200):
        world.advance(s)
    assert world.completed == 4 and world.interrupted == 0 and not world.pods


def test_lognormal_matches_mean_and_p99() -> None:
    mu, sigma = lognormal_params(2.0, 8.0)
    rng = random.Random(7)
    xs = sorted(rng.lognormvariate(mu, sigma) for _ in range(200_000))
    assert statistics.fmean(xs) == pytest.approx(2.0, rel=0.02)
    assert xs[int(0.99 * len(xs))] == pytest.approx(8.0, rel=0.03)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"arrivals": []}, "arrivals"),
        ({"arrivals": [[0]]}, "arrivals[0]"),
        ({"arrivals": [[-1, 3]]}, ">= 0"),
        ({"task_seconds": {"mean": 1.0, "p99": 100.0}}, "too skewed"),
        ({"task_seconds": {"mean": 5.0, "p99": 1.0}}, "mean <= p99"),
        ({"priorities": {0: 0.0}}, "positive total"),
        ({"worker_concurency": 4}, "unknown key"),
        ({"worker_concurrency": 0}, "worker_concurrency"),
    ],
)
def test_bad_traces_are_explained(data: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"task_seconds": {"mean": 2.0, "p99": 8.0}, "arrivals": [[0, 1]]}
    base.update(data)
    with pytest.raises(TraceError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_trace(base, "t")


def test_priority_forms() -> None:
    assert trace(priorities=[0.5, 0, 0, 0.5]).priorities == ((0, 0.5), (9, 0.5))
    assert trace(priorities=[[0, 1], [3, 3]]).priorities == ((0, 0.25), (3, 0.75))


def test_the_standard_traces_load() -> None:
    names = {p.stem for p in TRACES.glob("*.yaml")}
    assert {"burst", "trickle", "diurnal", "spikes", "priority-heavy"} <= names
    from batchctl.sim.world import load_trace

    for path in TRACES.glob("*.yaml"):
        assert load_trace(path).total > 0


# --- the KEDA + HPA model ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "current", "want"),
    [
        (0, 1, 0),  # clamped to minReplicas by the caller
        (24, 5, 5),  # ratio 0.96: within the tolerance
        (27, 5, 5),  # ratio 1.08: within the tolerance
        (28, 5, 6),  # ratio 1.12: outside
        (1000, 1, 200),
    ],
)
def test_hpa_recommendation(metric: int, current: int, want: int) -> None:
    assert keda.hpa_recommendation(metric, current, 5, 0.1) == want


def _drive(lengths: list[int], settings: keda.KedaSettings, start: int = 0) -> list[int]:
    """Replicas per second under a given LLEN per second, applied at once."""
    state, replicas, out = keda.KedaState(), start, []
    for s, n in enumerate(lengths):
        desired, state = keda.step(state, settings, float(s), n, replicas)
        replicas = desired
        out.append(replicas)
    return out


def test_keda_activates_then_hpa_doubles_per_sync() -> None:
    reps = _drive([1000] * 120, keda.KedaSettings(max_replicas=20))
    assert reps[0] == 1  # poll at t=0 sees the list: 0 -> 1
    assert reps[15] == 4  # max(2 x 1, 4)
    assert reps[30] == 8 and reps[45] == 16 and reps[60] == 20


def test_keda_reaches_the_cap_within_a_minute() -> None:
    reps = _drive([5000] * 60, keda.KedaSettings(max_replicas=5))
    assert reps.index(5) <= 30


def test_scale_down_waits_for_the_stabilization_window_and_cooldown() -> None:
    settings = keda.KedaSettings(max_replicas=5)
    lengths = [100] * 60 + [0] * 600
    reps = _drive(lengths, settings)
    assert reps[59] == 5
    # The metric is 0 from t=60: the highest recommendation of the last 300 s keeps 5;
    # KEDA's cooldown counts from the last active poll (t=30) and scales to 0.
    assert reps[300] == 5
    assert reps[340] == 0
    assert min(reps[60:330]) == 5


def test_hpa_leaves_zero_to_keda() -> None:
    reps = _drive([0] * 100, keda.KedaSettings(max_replicas=5))
    assert reps == [0] * 100


def test_cached_metrics_follow_the_poll() -> None:
    settings = keda.KedaSettings(max_replicas=20, use_cached_metrics=True)
    lengths = [1] + [1000] * 40
    reps = _drive(lengths, settings)
    # The poll at t=0 saw 1; at t=15 the HPA still reads the cached 1 and keeps 1.
    assert reps[15] == 1
    assert reps[30] == 4


def test_controllers_share_the_world_rules() -> None:
    t = trace(arrivals=[[0, 50]])
    b = cfg().batches[0]
    for ctl in (PolicyController(cfg(), "batch0"), KedaController(keda.KedaSettings())):
        r = run(t, b, ctl, check=True)
        assert r.metrics["completed"] == 50
        assert r.series.replicas[-1] in (0, 1)
        assert math.isfinite(r.metrics["replica_seconds"])


# --- the CLI ------------------------------------------------------------------------------


def test_cli_writes_json_and_plot(tmp_path: Path) -> None:
    from batchctl.cli import cli

    tr = tmp_path / "t.yaml"
    tr.write_text(
        "task_seconds: {mean: 2.0, p99: 8.0}\nworker_concurrency: 4\nprefetch_multiplier: 4\n"
        "pod_start_seconds: 20\npriorities: {0: 0.8, 9: 0.2}\narrivals: [[0, 500], [300, 100]]\n"
    )
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    res = CliRunner().invoke(
        cli, ["simulate", str(tr), "--json", str(out_json), "--plot", str(out_png)]
    )
    assert res.exit_code == 0, res.output
    assert "replica-seconds" in res.output and "keda_hpa" in res.output
    doc = json.loads(out_json.read_text())
    required = {
        "replica_seconds",
        "drain_seconds",
        "peak_waiting",
        "peak_replicas",
        "max_step_up_per_minute",
        "scale_actions",
        "inflight_interrupted",
        "cap_violations",
        "seconds_above_1000",
    }
    for name in (OURS, BASELINE):
        assert required <= set(doc["policies"][name])
    assert set(doc["ratios"]) == {"replica_seconds", "drain_seconds"}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_without_baseline_and_with_config(tmp_path: Path) -> None:
    from batchctl.cli import cli

    tr = tmp_path / "t.yaml"
    tr.write_text("task_seconds: {mean: 1.0, p99: 3.0}\narrivals: [[0, 100]]\n")
    conf = tmp_path / "c.yaml"
    conf.write_text("batches:\n  - {queue: batch0, deployment: celery-batch0, max_replicas: 2}\n")
    res = CliRunner().invoke(
        cli, ["simulate", str(tr), "--config", str(conf), "--baseline", "none"]
    )
    assert res.exit_code == 0, res.output
    assert "keda_hpa" not in res.output and "cap 2" in res.output


def test_cli_explains_a_bad_trace(tmp_path: Path) -> None:
    from batchctl.cli import cli

    tr = tmp_path / "t.yaml"
    tr.write_text("arrivals: [[0, 1]]\ntask_seconds: {mean: 1.0, p99: 500.0}\n")
    res = CliRunner().invoke(cli, ["simulate", str(tr)])
    assert res.exit_code == 2 and "too skewed" in res.output
