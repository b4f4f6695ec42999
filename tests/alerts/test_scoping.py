"""Alerts scoped to what the site owns (issue 20), proven with promtool on rendered rules.

Queue discovery shows every queue, but only the configured batches (each with its own
tiers or the top-level ones) and the other_queues a site lists (with theirs) raise depth
alerts. A selector that would silence a rule is refused by the config check.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from alerts.render import render_rules
from batchctl.cli import cli
from batchctl.config import Config, load_config, parse_config
from tests.support.tools import require_tool

pytestmark = pytest.mark.integration  # real servers, subprocesses or tools

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "k8s" / "overlays" / "example" / "batchctl.yml"
SERIES = 'celery_queue_length{{job="batchctl",instance="exporter:9808",queue="{}"}}'


def promtool_test(cfg: Config, tests: list[dict[str, Any]], tmp_path: Path) -> None:
    """Render `cfg`'s rules and run promtool's unit `tests` on them; fail with its report."""
    promtool = require_tool("promtool")
    (tmp_path / "rules.yml").write_text(render_rules(cfg))
    doc = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    out = subprocess.run(
        [promtool, "test", "rules", str(tmp_path / "test.yml")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def depth(queue: str, severity: str) -> dict[str, Any]:
    """An expected CeleryQueueLengthHigh alert; `labels_only` adds its annotations."""
    return {"exp_labels": {"severity": severity, "job": "batchctl", "queue": queue}}


def labels_only(tests: list[dict[str, Any]], cfg: Config, tmp_path: Path) -> None:
    """promtool compares annotations too: fill them from the rendered rule per case."""
    rules = [r for g in yaml.safe_load(render_rules(cfg))["groups"] for r in g["rules"]]
    for case in tests:
        for art in case["alert_rule_test"]:
            for exp in art.get("exp_alerts", []):
                if "exp_annotations" in exp:
                    continue
                exp["exp_annotations"] = _annotations(rules, art["alertname"], exp, case)
    promtool_test(cfg, tests, tmp_path)


def _annotations(
    rules: list[dict[str, Any]], alert: str, exp: dict[str, Any], case: dict[str, Any]
) -> dict[str, str]:
    queue = exp["exp_labels"]["queue"]
    value = next(
        s["values"].split("x")[0] for s in case["input_series"] if f'queue="{queue}"' in s["series"]
    )
    rule = next(
        r
        for r in rules
        if r["alert"] == alert
        and r["labels"]["severity"] == exp["exp_labels"]["severity"]
        and (f'"{queue}' in r["expr"] or f"|{queue}" in r["expr"])
    )
    sub = {"{{ $labels.queue }}": queue, '{{ $value | printf "%.0f" }}': value}
    out = {}
    for k, v in rule["annotations"].items():
        for a, b in sub.items():
            v = v.replace(a, b)
        out[k] = v
    return out


def test_shipped_config_pages_for_a_batch_not_for_a_discovered_queue(tmp_path: Path) -> None:
    """The example site's config: `celery` (discovered, not a batch) at 1,500 for half an
    hour raises no depth alert; batch1 at 1,500 raises every tier, critical included."""
    cfg = load_config(SHIPPED, env={})
    assert cfg.batch("celery") is None and not cfg.other_queues
    assert cfg.broker.discover_queues
    tests = [
        {
            "interval": "1m",
            "input_series": [
                {"series": SERIES.format("celery"), "values": "1500x30"},
                {"series": SERIES.format("batch1"), "values": "1500x30"},
            ],
            "alert_rule_test": [
                {
                    "eval_time": "30m",
                    "alertname": "CeleryQueueLengthHigh",
                    "exp_alerts": [
                        depth("batch1", "info"),
                        depth("batch1", "warning"),
                        depth("batch1", "critical"),
                    ],
                }
            ],
        }
    ]
    labels_only(tests, cfg, tmp_path)


def test_per_batch_and_other_queue_thresholds(tmp_path: Path) -> None:
    """A batch with its own tiers, a listed other queue with its own, a discovered queue
    unlisted: each alerts by its own tiers, the unlisted one not at all."""
    cfg = parse_config(
        {
            "batches": [
                {"queue": "small", "deployment": "celery-small", "thresholds": [10, 20, 30]},
                {"queue": "batch1", "deployment": "celery-batch1"},
            ],
            "other_queues": [
                {"queue": "celery", "thresholds": [2000, 5000, 10000],
                 "deployment": "celery-default"},
            ],
        },
        env={},
    )  # fmt: skip
    tests = [
        {
            "interval": "1m",
            "input_series": [
                {"series": SERIES.format("small"), "values": "25x30"},
                {"series": SERIES.format("batch1"), "values": "25x30"},
                {"series": SERIES.format("celery"), "values": "6000x30"},
                {"series": SERIES.format("default"), "values": "50000x30"},
            ],
            "alert_rule_test": [
                {
                    "eval_time": "30m",
                    "alertname": "CeleryQueueLengthHigh",
                    "exp_alerts": [
                        depth("small", "info"),
                        depth("small", "warning"),
                        depth("celery", "info"),
                        depth("celery", "warning"),
                    ],
                }
            ],
        },
        # The no-consumer alert stays for a listed queue that names its Deployment, at
        # its own critical depth: celery at 12,000 with 0 ready replicas pages.
        {
            "interval": "1m",
            "input_series": [
                {"series": SERIES.format("celery"), "values": "12000x30"},
                {
                    "series": 'celery_deployment_ready_replicas{job="batchctl",instance='
                    '"exporter:9808",queue="celery",deployment="celery-default"}',
                    "values": "0x30",
                },
            ],
            "alert_rule_test": [
                {
                    "eval_time": "10m",
                    "alertname": "CeleryQueueNoConsumers",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "severity": s,
                                "job": "batchctl",
                                "queue": "celery",
                                "deployment": "celery-default",
                            }
                        }
                        for s in ("warning", "critical")
                    ],
                }
            ],
        },
    ]
    rules = [r for g in yaml.safe_load(render_rules(cfg))["groups"] for r in g["rules"]]
    for case in tests[1:]:
        for art in case["alert_rule_test"]:
            for exp in art["exp_alerts"]:
                rule = next(
                    r
                    for r in rules
                    if r["alert"] == "CeleryQueueNoConsumers"
                    and r["labels"]["severity"] == exp["exp_labels"]["severity"]
                    and (
                        'queue=~"celery"' in r["expr"] or exp["exp_labels"]["severity"] == "warning"
                    )
                )
                exp["exp_annotations"] = {
                    k: v.replace("{{ $labels.queue }}", "celery")
                    .replace("{{ $labels.deployment }}", "celery-default")
                    .replace('{{ $value | printf "%.0f" }}', "12000")
                    for k, v in rule["annotations"].items()
                }
    labels_only(tests, cfg, tmp_path)
    # Idle workers of an ordinary queue are normal: CeleryIdleReplicas is for batches.
    idle = next(r for r in rules if r["alert"] == "CeleryIdleReplicas")
    assert 'queue=~"small|batch1"' in idle["expr"]


def test_broker_down_keeps_its_meaning_with_a_namespace_selector(tmp_path: Path) -> None:
    cfg = parse_config({"alerts": {"selector": 'job="batchctl",namespace="court-listener"'}},
                       env={})  # fmt: skip
    up = 'celery_broker_up{job="batchctl",namespace="court-listener",instance="exporter:9808"}'
    tests = [
        {
            "interval": "1m",
            "input_series": [{"series": up, "values": "0x10"}],
            "alert_rule_test": [
                {
                    "eval_time": "5m",
                    "alertname": "CeleryBrokerDown",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "severity": "critical",
                                "job": "batchctl",
                                "namespace": "court-listener",
                                "instance": "exporter:9808",
                            },
                        }
                    ],
                }
            ],
        }
    ]
    rules = [r for g in yaml.safe_load(render_rules(cfg))["groups"] for r in g["rules"]]
    rule = next(r for r in rules if r["alert"] == "CeleryBrokerDown")
    tests[0]["alert_rule_test"][0]["exp_alerts"][0]["exp_annotations"] = {
        k: v.replace("{{ $labels.instance }}", "exporter:9808")
        for k, v in rule["annotations"].items()
    }
    promtool_test(cfg, tests, tmp_path)


def test_config_check_refuses_a_selector_that_would_silence_rules(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    for key, selector in (
        ("selector", 'job="batchctl",queue=~"batch.*"'),
        ("autoscaler_selector", 'job="batchctl-autoscaler", reason!="steady"'),
    ):
        path.write_text(yaml.safe_dump({"alerts": {key: selector}}))
        out = CliRunner().invoke(cli, ["config", "check", str(path)])
        assert out.exit_code == 2, out.output
        line = next(ln for ln in out.output.splitlines() if f"alerts.{key}" in ln)
        assert "CeleryBrokerDown" in line and "job, namespace" in line
    # Target labels are fine, values that merely contain a label name too.
    path.write_text(yaml.safe_dump({"alerts": {"selector": 'job="queue=x",namespace=~"a|b"'}}))
    assert CliRunner().invoke(cli, ["config", "check", str(path)]).exit_code == 0


def test_other_queues_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "batches": [{"queue": "batch1", "deployment": "celery-batch1"}],
                "other_queues": [
                    {"queue": "batch1", "thresholds": [1, 2, 3]},
                    {"queue": "celery"},
                    {"queue": "x", "thresholds": [3, 2, 1], "deployment": "celery-batch1"},
                ],
            }
        )
    )
    out = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert out.exit_code == 2, out.output
    assert "other_queues[1].thresholds" in out.output
    assert "other_queues[2].thresholds" in out.output
