"""The alert rules: drift of the committed file, promtool checks and unit tests, config flags.

The promtool unit tests live in tests/alerts/promtool/*.yaml and run against the committed
alerts/batchctl.rules.yml; the mutation test below proves they fail when a threshold,
a selector or a runbook link changes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from alerts.common import queue_regex, scale_duration
from alerts.render import render_rules
from alerts.rules import ALL_ALERTS, alert_names, groups
from batchctl.cli import cli
from batchctl.config import Config, parse_config
from batchctl.metrics import ALL_SPECS, UP
from tests.support.paths import ROOT
from tests.support.promql import check_promql
from tests.support.tools import require_tool

COMMITTED = ROOT / "alerts" / "batchctl.rules.yml"
PROMTOOL_TESTS = sorted((ROOT / "tests" / "alerts" / "promtool").glob("*.yaml"))
RUNBOOKS = ROOT / "batchctl" / "runbooks"
SEVERITIES = {"info", "warning", "critical"}


def _rules(cfg: Config) -> list[dict[str, Any]]:
    return [r for g in groups(cfg) for r in g["rules"]]


def _check_rules(promtool: str, text: str, tmp_path: Path, name: str = "rules.yml") -> str:
    path = tmp_path / name
    path.write_text(text)
    out = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_committed_rules_match_the_renderer() -> None:
    assert COMMITTED.read_text() == render_rules(Config()), (
        "alerts/batchctl.rules.yml drifted from the renderer: run `make render`"
    )


def test_cli_renders_the_same_rules(tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["alerts", "render"])
    assert out.exit_code == 0, out.output
    assert out.stdout == render_rules(Config())

    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("thresholds: [10, 20, 30]\n")
    target = tmp_path / "out.yml"
    out = runner.invoke(cli, ["alerts", "render", "--config", str(cfg_file), "-o", str(target)])
    assert out.exit_code == 0, out.output
    assert (
        'celery_queue_length{job="batchctl",queue=~"batch0|batch1|batch2|batch3"}[2m]) >= 30'
        in (target.read_text())
    )


def test_cli_bad_config_exits_2(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("alerts:\n  down_for: two minutes\n")
    out = CliRunner().invoke(cli, ["alerts", "render", "--config", str(cfg_file)])
    assert out.exit_code == 2
    assert "alerts.down_for" in out.output


BAD_HOLDS = {
    "not a duration": ("one minute", "expected a Prometheus duration"),
    "no unit": ("60", "expected a Prometheus duration"),
    # PromQL rejects an empty range, and no hold means no stagger.
    "zero": ("0s", "longer than 0"),
    "zero in two units": ("0m0s", "longer than 0"),
}


@pytest.mark.parametrize("case", list(BAD_HOLDS))
def test_tier_resolve_hold_is_a_positive_duration(case: str, tmp_path: Path) -> None:
    value, message = BAD_HOLDS[case]
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(yaml.safe_dump({"alerts": {"tier_resolve_hold": value}}))
    out = CliRunner().invoke(cli, ["alerts", "render", "--config", str(cfg_file)])
    assert out.exit_code == 2, out.output
    assert "alerts.tier_resolve_hold" in out.output
    assert message in out.output


SCALED = {
    "minutes": ("1m", 2, "2m"),
    "seconds": ("2s", 2, "4s"),
    "seconds into minutes": ("90s", 2, "3m"),
    "not a whole minute": ("45s", 2, "90s"),
    "two units": ("1h30m", 2, "3h"),
    "milliseconds": ("500ms", 2, "1s"),
    "days into weeks": ("3d12h", 2, "1w"),
    "factor one": ("1h30m", 1, "90m"),
}


@pytest.mark.parametrize("case", list(SCALED))
def test_scale_duration(case: str) -> None:
    duration, factor, expected = SCALED[case]
    assert scale_duration(duration, factor) == expected


VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "no kubernetes": {"kubernetes": {"enabled": False}},
    "no autoscaler": {"autoscaler": {"enabled": False}},
    "optional alerts off": {
        "alerts": {
            "idle_replicas_alert": False,
            "stuck_alert": False,
            "queue_memory_alert": False,
            "autoscaler_alerts": False,
            "claim_alerts": False,
        }
    },
    "custom": {
        "thresholds": [50, 200, 800],
        "batches": [
            {"queue": "reindex.dockets", "deployment": "celery-reindex"},
            {"queue": "free", "deployment": "celery-free", "require_claim": False},
        ],
        "alerts": {
            "selector": 'job=~"batchctl|celery", namespace="court-listener"',
            "for_tier": ["3s", "2s", "1s"],
            "growth_window": "30s",
        },
    },
    "no batch needs a claim": {
        "batches": [{"queue": "batch0", "deployment": "celery-batch0", "require_claim": False}]
    },
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.integration
def test_promtool_check_rules_on_every_variant(variant: str, tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    cfg = parse_config(VARIANTS[variant])
    out = _check_rules(promtool, render_rules(cfg), tmp_path)
    assert f"SUCCESS: {len(_rules(cfg))} rules found" in out


@pytest.mark.integration
def test_promtool_check_rules_on_the_committed_file() -> None:
    promtool = require_tool("promtool")
    out = subprocess.run(
        [promtool, "check", "rules", str(COMMITTED)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 23 rules found" in out.stdout


def _promtool_test(promtool: str, files: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, "test", "rules", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.integration
def test_promtool_unit_tests_pass() -> None:
    promtool = require_tool("promtool")
    assert len(PROMTOOL_TESTS) >= 4
    out = _promtool_test(promtool, PROMTOOL_TESTS)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("SUCCESS") == len(PROMTOOL_TESTS)


MUTATIONS: dict[str, dict[str, Any]] = {
    "warning tier one higher": {"thresholds": [100, 501, 1000]},
    "critical tier one lower": {"thresholds": [100, 500, 999]},
    "info tier inclusive": {"thresholds": [99, 500, 1000]},
    "other runbook base": {"alerts": {"runbook_url": "https://wiki.example/{alert}"}},
    "other selector": {"alerts": {"selector": 'job="celery"'}},
    "broker warning at 79%": {"alerts": {"broker_memory_warning": 0.79}},
    "queue memory share 30%": {"alerts": {"queue_memory_share": 0.3}},
    "no-consumer for 6m": {"alerts": {"no_consumers_for": "6m"}},
    "idle after 31m": {"alerts": {"idle_replicas_for": "31m"}},
    "workers not ready for 11m": {"alerts": {"workers_not_ready_for": "11m"}},
    "claim expiry for 9m": {"alerts": {"claim_expired_for": "9m"}},
    "resolve hold 30s": {"alerts": {"tier_resolve_hold": "30s"}},
    "resolve hold 2m": {"alerts": {"tier_resolve_hold": "2m"}},
    "failure ratio 6%": {"alerts": {"failure_ratio": 0.06}},
    "failure ratio 5.5%": {"alerts": {"failure_ratio": 0.055}},
    "failure volume 21": {"alerts": {"failure_min_tasks": 21}},
    "failure window 5m": {"alerts": {"failure_window": "5m"}},
    "failure for 6m": {"alerts": {"failure_for": "6m"}},
    "no progress for 16m": {"alerts": {"no_progress_for": "16m"}},
}


@pytest.mark.slow
@pytest.mark.parametrize("mutation", list(MUTATIONS))
@pytest.mark.integration
def test_promtool_unit_tests_catch_a_changed_rule(mutation: str, tmp_path: Path) -> None:
    """The same unit tests against rules rendered from a slightly different config fail."""
    promtool = require_tool("promtool")
    (tmp_path / "alerts").mkdir()
    (tmp_path / "tests" / "alerts" / "promtool").mkdir(parents=True)
    rendered = render_rules(parse_config(MUTATIONS[mutation]))
    (tmp_path / "alerts" / "batchctl.rules.yml").write_text(rendered)
    copies = []
    for f in PROMTOOL_TESTS:
        copies.append(tmp_path / "tests" / "alerts" / "promtool" / f.name)
        shutil.copy(f, copies[-1])
    out = _promtool_test(promtool, copies)
    assert out.returncode != 0, f"the promtool tests did not notice: {mutation}"
    assert "FAILED" in out.stdout + out.stderr


def _tested_alerts() -> set[tuple[str, str]]:
    """(alertname, severity) pairs that some promtool test expects to fire."""
    seen = set()
    for f in PROMTOOL_TESTS:
        doc = yaml.safe_load(f.read_text())
        assert doc["rule_files"] == ["../../../alerts/batchctl.rules.yml"], f
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                for exp in case.get("exp_alerts") or []:
                    ann = exp["exp_annotations"]
                    assert ann["runbook_url"].endswith(f"/runbooks/{case['alertname']}")
                    assert set(ann) == {"summary", "description", "runbook_url"}
                    seen.add((case["alertname"], exp["exp_labels"]["severity"]))
    return seen


def test_every_alert_and_severity_has_a_firing_promtool_case() -> None:
    rendered = {(r["alert"], r["labels"]["severity"]) for r in _rules(Config())}
    assert rendered == _tested_alerts()


def test_every_alert_is_rendered_by_default_and_complete() -> None:
    assert alert_names(Config()) == list(ALL_ALERTS)
    for rule in _rules(Config()):
        assert rule["labels"]["severity"] in SEVERITIES, rule
        ann = rule["annotations"]
        assert set(ann) == {"summary", "description", "runbook_url"}, rule["alert"]
        assert "$value" in ann["description"] or rule["alert"] in {
            "CeleryBrokerDown",
            "CeleryKubernetesApiDown",
            "CeleryExporterDown",
            "CeleryAutoscalerHeld",
            "CeleryBrokerResourceAlarm",  # names the alarm; its value is always 1
        }, f"{rule['alert']}: the description should show the value"
        assert ann["runbook_url"] == f"http://localhost:9808/runbooks/{rule['alert']}"


def test_queue_alerts_name_the_queue() -> None:
    per_queue = set(ALL_ALERTS) - {
        "CeleryBrokerMemoryHigh",
        "CeleryBrokerDown",
        "CeleryBrokerResourceAlarm",
        "CeleryKubernetesApiDown",
        "CeleryExporterDown",
    }
    for rule in _rules(Config()):
        if rule["alert"] in per_queue:
            assert "{{ $labels.queue }}" in rule["annotations"]["description"], rule["alert"]


def test_every_alert_has_a_runbook_page() -> None:
    for alert in ALL_ALERTS:
        page = RUNBOOKS / f"{alert}.md"
        assert page.exists(), f"missing runbook {page}"
        text = page.read_text()
        assert text.startswith(f"# {alert}\n"), page
        for section in ("## Meaning", "## Check", "## Fix", "## Escalate"):
            assert section in text, f"{page}: no {section!r} section"
        assert "kubectl" in text, page
        assert "batchctl" in text, page
        assert "```promql" in text, page


@pytest.mark.integration
def test_runbook_promql_parses(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    exprs = {}
    for page in sorted(RUNBOOKS.glob("*.md")):
        for block in re.findall(r"```promql\n(.*?)```", page.read_text(), flags=re.S):
            for n, line in enumerate(block.splitlines()):
                expr = line.split("#", 1)[0].strip()
                if expr:
                    exprs[f"{page.name} block line {n}"] = expr
    assert len(exprs) > 30
    check_promql(promtool, exprs, tmp_path)


def test_expressions_use_only_known_metric_names() -> None:
    known = {s.name for s in ALL_SPECS} | {UP}
    functions = {
        "delta",
        "deriv",
        "absent",
        "time",
        "max",
        "max_over_time",
        "by",
        "on",
        "ignoring",
        "unless",
        "increase",
        "sum",
        "min",
        "without",
    }
    keywords = {"and", "or", "group_left", "queue", "deployment", "holder", "task", "state"}
    keywords |= {"job", "namespace", "instance", "pod"}  # target labels: matched on, aggregated
    for rule in _rules(Config()):
        expr = re.sub(r'"[^"]*"', '""', rule["expr"])  # drop string literals
        expr = re.sub(r"\{[^}]*\}", "", expr)  # and matchers
        expr = re.sub(r"\[[^\]]*\]", "", expr)  # and ranges
        idents = set(re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", expr))
        unknown = idents - known - functions - keywords
        assert not unknown, f"{rule['alert']}: unknown metric names {unknown}"


def test_config_flags_switch_alerts_off() -> None:
    off = {
        "kubernetes": (
            {"kubernetes": {"enabled": False}},
            {
                "CeleryQueueNoConsumers",
                "CeleryIdleReplicas",
                "CeleryQueueStuck",
                "CeleryWorkersNotReady",
                "CeleryKubernetesApiDown",
                "CeleryBatchNoProgress",
            },
        ),
        "autoscaler": (
            {"autoscaler": {"enabled": False}},
            {
                "CeleryAutoscalerAtCap",
                "CeleryAutoscalerHeld",
                "CeleryBatchClaimExpired",
                "CeleryUnclaimedBatchInUse",
                "CeleryBatchBehindDeadline",
            },
        ),
        "idle": ({"alerts": {"idle_replicas_alert": False}}, {"CeleryIdleReplicas"}),
        "stuck": ({"alerts": {"stuck_alert": False}}, {"CeleryQueueStuck"}),
        "memory": ({"alerts": {"queue_memory_alert": False}}, {"CeleryQueueMemoryHigh"}),
        "scaler": (
            {"alerts": {"autoscaler_alerts": False}},
            {"CeleryAutoscalerAtCap", "CeleryAutoscalerHeld"},
        ),
        "claims": (
            {"alerts": {"claim_alerts": False}},
            {"CeleryBatchClaimExpired", "CeleryUnclaimedBatchInUse", "CeleryBatchBehindDeadline"},
        ),
        "events": (
            {"alerts": {"event_alerts": False}},
            {"CeleryTaskFailureRatioHigh", "CeleryBatchNoProgress"},
        ),
        "no claim needed": (
            {"batches": [{"queue": "b", "deployment": "celery-b", "require_claim": False}]},
            {"CeleryUnclaimedBatchInUse"},
        ),
    }
    for name, (data, gone) in off.items():
        rendered = set(alert_names(parse_config(data)))
        assert rendered == set(ALL_ALERTS) - gone, name


def test_groups_without_rules_are_left_out() -> None:
    cfg = parse_config({"autoscaler": {"enabled": False}})
    assert [g["name"] for g in groups(cfg)] == [
        "batchctl.queues",
        "batchctl.broker",
        "batchctl.tasks",
    ]
    cfg = parse_config({"autoscaler": {"enabled": False}, "alerts": {"event_alerts": False}})
    assert [g["name"] for g in groups(cfg)] == ["batchctl.queues", "batchctl.broker"]


def test_each_tier_holds_longer_than_the_tiers_it_inhibits() -> None:
    """Resolve order comes from the holds, not from rule order (see alerts/queue_rules.py).

    The promtool cases prove the timing; this checks the rendered ranges for a hold
    other than the default, so a hard-coded range cannot pass.
    """
    cfg = parse_config({"alerts": {"tier_resolve_hold": "45s"}})
    depth = {
        r["labels"]["severity"]: r["expr"]
        for r in _rules(cfg)
        if r["alert"] == "CeleryQueueLengthHigh"
    }
    assert list(depth) == ["info", "warning", "critical"]
    assert "max_over_time" not in depth["info"]
    assert "[45s])" in depth["warning"]
    assert "[90s])" in depth["critical"]
    nc = {
        r["labels"]["severity"]: r["expr"]
        for r in _rules(cfg)
        if r["alert"] == "CeleryQueueNoConsumers"
    }
    assert "max_over_time" not in nc["warning"]
    assert nc["critical"].count(")[45s:]") == 1


def test_thresholds_and_durations_come_from_the_config() -> None:
    cfg = parse_config(
        {
            "thresholds": [10, 20, 30],
            "alerts": {
                "for_tier": ["3s", "2s", "1s"],
                "no_consumers_for": "4s",
                "tier_resolve_hold": "2s",
            },
        }
    )
    tiers = [r for r in _rules(cfg) if r["alert"] == "CeleryQueueLengthHigh"]
    one = "max without (instance, pod) (\n  {}\n)".format
    assert [(r["expr"], r["for"]) for r in tiers] == [
        (
            one('celery_queue_length{job="batchctl",queue=~"batch0|batch1|batch2|batch3"} > 10'),
            "3s",
        ),
        (
            one(
                'max_over_time(celery_queue_length{job="batchctl",'
                'queue=~"batch0|batch1|batch2|batch3"}[2s]) > 20'
            ),
            "2s",
        ),
        (
            one(
                'max_over_time(celery_queue_length{job="batchctl",'
                'queue=~"batch0|batch1|batch2|batch3"}[4s]) >= 30'
            ),
            "1s",
        ),
    ]
    # Without replica labels: one alert per target, the bare condition.
    raw = parse_config({"thresholds": [10, 20, 30], "alerts": {"replica_labels": []}})
    tiers = [r for r in _rules(raw) if r["alert"] == "CeleryQueueLengthHigh"]
    assert (
        tiers[0]["expr"]
        == 'celery_queue_length{job="batchctl",queue=~"batch0|batch1|batch2|batch3"} > 10'
    )
    custom = parse_config({"alerts": {"replica_labels": ["instance", "kubernetes_pod_name"]}})
    assert all(
        r["expr"].startswith("max without (instance, kubernetes_pod_name) (")
        for r in _rules(custom)
        if r["alert"] == "CeleryQueueLengthHigh"
    )
    nc = [r for r in _rules(cfg) if r["alert"] == "CeleryQueueNoConsumers"]
    assert {r["for"] for r in nc} == {"4s"}
    assert ">= 30" in nc[1]["expr"]


def test_runbook_link_pass_keeps_an_existing_link() -> None:
    from alerts.rules import add_runbook_links

    raw = [
        {
            "name": "g",
            "rules": [
                {"alert": "A", "expr": "1", "annotations": {"runbook_url": "keep"}},
                {"alert": "B", "expr": "1"},
                {"record": "r", "expr": "1"},
            ],
        }
    ]
    out = add_runbook_links(raw, "https://rb/{alert}")
    assert [r.get("annotations") for r in out[0]["rules"]] == [
        {"runbook_url": "keep"},
        {"runbook_url": "https://rb/B"},
        None,
    ]
    assert "annotations" not in raw[0]["rules"][1], "the input must not be modified"


@pytest.mark.integration
def test_queue_regex_is_exact(tmp_path: Path) -> None:
    assert queue_regex(["batch0", "a.b"]) == "batch0|a\\\\.b"
    promtool = require_tool("promtool")
    cfg = parse_config({"batches": [{"queue": "a.b", "deployment": "celery-ab"}]})
    rules = tmp_path / "rules.yml"
    rules.write_text(render_rules(cfg))
    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'celery_queue_length{job="batchctl",queue="a.b"}', "values": "5x20"},
                    {"series": 'celery_queue_length{job="batchctl",queue="aXb"}', "values": "5x20"},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "20m",
                        "alertname": "CeleryUnclaimedBatchInUse",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "queue": "a.b"},
                                "exp_annotations": {
                                    "summary": "Batch a.b is in use but nobody has claimed it.",
                                    "description": (
                                        "Batch a.b has had work or workers for 15m (5 waiting "
                                        "messages, or replicas when none wait) but no claim. "
                                        "Claim it so colleagues know whose it is, or stop the "
                                        "producer and scale it to 0."
                                    ),
                                    "runbook_url": (
                                        "http://localhost:9808/runbooks/CeleryUnclaimedBatchInUse"
                                    ),
                                },
                            }
                        ],
                    }
                ],
            }
        ],
    }
    test_file = tmp_path / "t.yaml"
    test_file.write_text(yaml.safe_dump(test))
    out = _promtool_test(promtool, [test_file])
    assert out.returncode == 0, out.stdout + out.stderr
