"""RabbitMQ collection time: batchctl's reader beside one bare management API request,
and beside celery-exporter on the same broker.

    .venv/bin/python -m benchmarks.rabbitmq_collection [--queues 100,1000] [--runs 40]
        [--celery-exporter DIR --celery-exporter-python PYTHON]

A RabbitMQ node of its own (Debian's rabbitmq-server, tests/support/servers/rabbitmq.py:
loopback, statistics every second, the management plugin's query cache off: scrapes
come seconds apart, not within the cache's lifetime), one vhost with N durable queues holding 0-6
messages each (published with AMQP, no consumer), and on the first queue a consumer
that holds 5 messages unacknowledged (prefetch 5, never acks): what a busy worker
looks like. Per N, one after the other on the same data:

- floor: one bare `GET /api/queues/{vhost}?columns=...` (the same columns batchctl asks
  for, every queue in one unpaginated answer) over a kept-alive connection, JSON
  decoded: the least any reader of the management API can spend;
- floor, paginated: the same listing in pages of 500 (what batchctl sends);
- batchctl: `InProcessSource.collect()`, the whole collection (the reader's request,
  the node figures when due, the stats, the snapshot), with discovery done first;

the three taking turns, one of each per round, so that the load of a shared machine
falls on all three alike; then
- celery-exporter (optional): its `/metrics` scrape with `--queues` naming every queue,
  from a checkout given with --celery-exporter (e.g. `fetch`ed from
  github.com/danihodovic/celery-exporter and unpacked outside this repository) run by a
  Python that has its dependencies (--celery-exporter-python; a virtualenv of its own).
  Nothing of it is kept here. What it reports for the held queue is printed beside
  batchctl's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import urllib3
from kombu import Connection

from batchctl.config import parse_config
from exporter.broker import open_reader
from exporter.broker.rabbitmq.figures import QUEUE_COLUMNS
from exporter.collect import InProcessSource
from tests.support.servers.rabbitmq import RabbitNode, RabbitVhost, new_vhost
from tests.support.servers.redis import free_port

HELD = 5  # messages the consumer on the first queue holds unacknowledged


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p * (len(xs) - 1)))]


def fill(v: RabbitVhost, n: int) -> tuple[list[str], int]:
    """N queues with i % 7 messages each; returns their names and the messages."""
    names = [f"bench.q{i:05d}" for i in range(n)]
    total = 0
    with Connection(v.url) as conn:
        ch = conn.channel()
        for i, name in enumerate(names):
            ch.queue_declare(name, durable=True, auto_delete=False)
            for _ in range(i % 7 or (HELD + 2 if i == 0 else 0)):
                ch.basic_publish(ch.prepare_message(b'{"x": 1}'), exchange="", routing_key=name)
                total += 1
    return names, total


def hold(v: RabbitVhost, queue: str) -> Connection:
    """A consumer that takes HELD messages of `queue` and never acknowledges them."""
    conn = Connection(v.url)
    ch = conn.channel()
    ch.basic_qos(0, HELD, False)
    ch.basic_consume(queue, callback=lambda m: None)
    conn.drain_events(timeout=2)
    return conn


def settle(v: RabbitVhost, n: int, total: int) -> None:
    """Until the API's statistics count every queue and message (refreshed each second)."""
    path = f"/api/queues/{v.vhost}?columns=name,messages"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        items = [q for q in v.node.api("GET", path) if q["name"].startswith("bench.")]
        if len(items) == n and sum(q.get("messages", 0) for q in items) == total:
            return
        time.sleep(0.5)
    raise RuntimeError("the management API's statistics did not settle")


def floor_request(v: RabbitVhost, paginated: bool) -> tuple[Any, urllib3.HTTPConnectionPool]:
    """One bare listing (unpaginated, or in pages of 500) on a kept-alive connection,
    JSON decoded: the function, and the pool to close."""
    http = urllib3.HTTPConnectionPool(
        "127.0.0.1", v.node.management_port, maxsize=1,
        headers=urllib3.make_headers(basic_auth=f"{v.monitor_user}:{v.monitor_password}"),
    )  # fmt: skip
    base = f"/api/queues/{v.vhost}?columns={','.join(QUEUE_COLUMNS)}"

    def once() -> None:
        if not paginated:
            json.loads(http.request("GET", base).data)
            return
        page, count = 1, 1
        while page <= count:
            doc = json.loads(http.request("GET", f"{base}&page={page}&page_size=500").data)
            count, page = doc["page_count"], page + 1

    return once, http


def interleaved(fns: dict[str, Any], runs: int) -> dict[str, list[float]]:
    """Each function `runs` times, taking turns (one of each per round), so that the
    load of a shared machine falls on all of them alike."""
    for fn in fns.values():
        fn()  # warm: connections, caches
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            out[name].append((time.perf_counter() - t0) * 1000)
    return out


def celery_exporter(
    v: RabbitVhost, names: list[str], checkout: Path, python: str, scrapes: int
) -> tuple[list[float], dict[str, float]]:
    port = free_port()
    args = [python, "cli.py", "--broker-url", v.url, "--port", str(port)]
    args += ["--queues", ",".join(names)]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(args, cwd=checkout, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise RuntimeError(log.read().decode()[-2000:]) from None
                    time.sleep(0.5)
            out, text = [], ""
            for _ in range(scrapes):
                t0 = time.perf_counter()
                text = (
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=600)
                    .read()
                    .decode()
                )
                out.append((time.perf_counter() - t0) * 1000)
        finally:
            proc.terminate()
            proc.wait(20)
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("celery_queue_length{") and 'queue_name="bench.q00000"' in line:
            values["length bench.q00000"] = float(line.rsplit(" ", 1)[1])
        if line.startswith("celery_active_consumer_count{") and "bench.q00000" in line:
            values["consumers bench.q00000"] = float(line.rsplit(" ", 1)[1])
        if line.startswith("celery_queue_length{"):
            values["sum of lengths"] = values.get("sum of lengths", 0.0) + float(
                line.rsplit(" ", 1)[1]
            )
    return out, values


def row(name: str, xs: list[float], base: float | None) -> str:
    p50 = statistics.median(xs)
    ratio = f"{p50 / base:.2f}x" if base else "1x"
    return f"| {name} | {p50:.1f} | {percentile(xs, 0.99):.1f} | {ratio} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queues", default="100,1000")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--celery-exporter", type=Path, help="a celery-exporter checkout")
    ap.add_argument("--celery-exporter-python", default=sys.executable)
    ap.add_argument("--celery-exporter-scrapes", type=int, default=3)
    args = ap.parse_args()
    load = os.getloadavg()
    print(
        f"{datetime.now().isoformat(timespec='minutes')} on {platform.node()} "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}), load {load[0]:.1f}"
    )
    # The management plugin caches a query's answer for db_cache_multiplier x the time it
    # took: the same listing asked twice in a row would be served from that cache.
    # Scrapes come seconds apart; so must the measurements: no cache.
    no_cache = "management.db_cache_multiplier = 0\n"
    with tempfile.TemporaryDirectory() as tmp, RabbitNode(Path(tmp) / "node", no_cache) as node:
        version = node.api("GET", "/api/overview")["rabbitmq_version"]
        print(f"RabbitMQ {version}, node started by the benchmark on loopback\n")
        for n in (int(x) for x in args.queues.split(",")):
            v = new_vhost(node)
            names, total = fill(v, n)
            held = hold(v, names[0])
            try:
                settle(v, n, total)
                cfg = parse_config(
                    {
                        "broker": {**v.broker(timeout_seconds=10), "max_queues": n + 10},
                        "kubernetes": {"enabled": False},
                        "claims": {"store": "sqlite", "sqlite_path": f"{tmp}/claims.sqlite3"},
                    },
                    env={},
                )
                bare, bare_pool = floor_request(v, paginated=False)
                paged, paged_pool = floor_request(v, paginated=True)
                source = InProcessSource(cfg, open_reader(cfg.broker))
                try:
                    source.reader.discover()
                    times = interleaved(
                        {"bare": bare, "paged": paged, "ours": source.collect}, args.runs
                    )
                    snap = source.collect()
                finally:
                    source.stop()
                    bare_pool.close()
                    paged_pool.close()
                base = statistics.median(times["bare"])
                print(f"### {n} queues, {total} messages ({args.runs} rounds, ms)\n")
                print("| reader | p50 | p99 | / floor p50 |\n|---|---:|---:|---:|")
                print(row("floor: one bare management API request", times["bare"], None))
                print(row("floor: the same in pages of 500", times["paged"], base))
                print(row("**batchctl collection**", times["ours"], base))
                q0 = snap.queue(names[0])
                assert q0 is not None
                print(
                    f"\nbatchctl on {names[0]}: waiting {q0.waiting}, unacked {q0.unacked}, "
                    f"consumers {q0.consumers}; {len(snap.queues)} queues; total waiting "
                    f"{sum(q.waiting for q in snap.queues)} + unacked "
                    f"{sum(q.unacked for q in snap.queues)} = {total}"
                )
                if args.celery_exporter is not None:
                    scraped, values = celery_exporter(
                        v, names, args.celery_exporter, args.celery_exporter_python,
                        args.celery_exporter_scrapes,
                    )  # fmt: skip
                    print(row("celery-exporter /metrics", scraped, base))
                    print(f"celery-exporter reports: {values}")
                print()
            finally:
                held.release()
                v.node.delete_vhost(v.vhost)


if __name__ == "__main__":
    main()
