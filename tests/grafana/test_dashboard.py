"""The Grafana dashboard: drift of the committed JSON, variables, panels, and PromQL that parses."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from batchctl.cli import cli
from batchctl.config import Config, parse_config
from batchctl.metrics import ALL_SPECS, UP
from grafana.dashboard import render_dashboard
from tests.support.dashboard import panel_queries, panels, substitute
from tests.support.paths import ROOT
from tests.support.promql import check_promql
from tests.support.tools import require_tool

COMMITTED = ROOT / "grafana" / "batchctl.json"


def _dashboard(cfg: Config | None = None) -> dict[str, Any]:
    return json.loads(render_dashboard(cfg or Config()))


def _panel(board: dict[str, Any], title_start: str) -> dict[str, Any]:
    found = [p for p in panels(board) if p["title"].startswith(title_start)]
    assert len(found) == 1, f"no single panel titled {title_start!r}"
    return found[0]


def test_committed_dashboard_matches_the_renderer() -> None:
    assert COMMITTED.read_text() == render_dashboard(Config()), (
        "grafana/batchctl.json drifted from the renderer: run `make render`"
    )


def test_cli_renders_the_same_dashboard(tmp_path: Path) -> None:
    out = CliRunner().invoke(cli, ["dashboard", "render"])
    assert out.exit_code == 0, out.output
    assert out.stdout == render_dashboard(Config())
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("alerts:\n  dashboard_uid: my-uid\n")
    target = tmp_path / "d.json"
    args = ["dashboard", "render", "-c", str(cfg_file), "--output", str(target)]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, out.output
    assert json.loads(target.read_text())["uid"] == "my-uid"


def test_variables_datasource_namespace_queue() -> None:
    variables = {v["name"]: v for v in _dashboard()["templating"]["list"]}
    assert list(variables) == ["datasource", "namespace", "queue"]
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "queue"):
        v = variables[name]
        assert v["type"] == "query"
        assert v["includeAll"] is True and v["allValue"] == ".*"
        assert v["datasource"]["uid"] == "${datasource}"
        assert v["current"]["value"] == "$__all"
    assert variables["queue"]["multi"] is True
    assert variables["queue"]["query"] == (
        'label_values(celery_queue_length{job="batchctl", namespace=~"$namespace"}, queue)'
    )


def test_every_panel_uses_the_datasource_variable() -> None:
    for p in panels(_dashboard()):
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", p["title"]


def test_depth_panel_draws_the_configured_tiers() -> None:
    for thresholds in ([100, 500, 1000], [50, 200, 800]):
        board = _dashboard(parse_config({"thresholds": thresholds}))
        depth = _panel(board, "Waiting messages per queue")
        defaults = depth["fieldConfig"]["defaults"]
        steps = defaults["thresholds"]["steps"]
        assert [s["value"] for s in steps] == [None, *map(float, thresholds)]
        assert [s["color"] for s in steps] == ["green", "yellow", "orange", "red"]
        assert defaults["custom"]["thresholdsStyle"]["mode"] == "dashed"
        assert str(thresholds[0]) in depth["description"]
        assert depth["targets"][0]["expr"].startswith("celery_queue_length{")


def test_required_panels_and_their_metrics() -> None:
    board = _dashboard()
    expect = {
        "Waiting messages per queue": ["celery_queue_length"],
        "In flight": ["celery_queue_unacked"],
        "Oldest waiting message age": ["celery_queue_oldest_message_age_seconds"],
        "Queue memory vs broker maxmemory": [
            "celery_queue_memory_bytes",
            "celery_broker_memory_used_bytes",
            "celery_broker_memory_max_bytes",
        ],
        "Replicas: ready vs desired vs cap": [
            "celery_deployment_ready_replicas",
            "celery_deployment_replicas",
            "celery_autoscaler_desired_replicas",
            "celery_autoscaler_max_replicas",
        ],
        "Claims": ["celery_batch_claimed", "celery_batch_claim_expiry_timestamp_seconds"],
        "Firing alerts": ['ALERTS{alertname=~"Celery.*"'],
        "Scrape health": ["up{", "celery_broker_up", "celery_kubernetes_up"],
        "Completed per minute": ['celery_task_events_total{job="batchctl"'],
        "Failure ratio (10 min)": ['state="failed"', 'state=~"succeeded|failed"'],
        "Task run time p50 / p95": ["histogram_quantile(0.5,", "histogram_quantile(0.95,"],
        "Active tasks": ["celery_queue_active_tasks"],
        "Workers (by heartbeats)": ["celery_queue_workers"],
        "ETA to drain": ["celery_queue_length", "celery_queue_active_tasks", "rate("],
    }
    for title, needles in expect.items():
        exprs = " ".join(t["expr"] for t in _panel(board, title)["targets"])
        for needle in needles:
            assert needle in exprs, f"{title}: {needle} not queried"
    replicas = _panel(board, "Replicas: ready vs desired vs cap")
    assert replicas["repeat"] == "queue", "one replica panel per batch"
    # Without events the event panels say so instead of showing nothing, or zeros.
    for title in ("Completed per minute", "Active tasks", "ETA to drain"):
        assert _panel(board, title)["fieldConfig"]["defaults"]["noValue"] == "no events"


def test_panel_ids_unique_and_layout_in_the_grid() -> None:
    board = _dashboard()
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in board["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        mine = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & mine, f"{p['title']} overlaps another panel"
        cells |= mine


@pytest.mark.integration
def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    board = _dashboard()
    exprs = panel_queries(board)
    for v in board["templating"]["list"]:
        m = (
            re.fullmatch(r"label_values\((.*), (\w+)\)", v["query"])
            if v["type"] == "query"
            else None
        )
        if v["type"] == "query":
            assert m, v["query"]
            exprs[f"variable {v['name']}"] = substitute(m.group(1))
    assert len(exprs) >= 20
    check_promql(promtool, exprs, tmp_path)


def test_queries_use_only_known_metric_names() -> None:
    known = {s.name for s in ALL_SPECS} | {UP, "ALERTS"}
    known |= {f"{s.name}_bucket" for s in ALL_SPECS if s.kind == "histogram"}
    words = {"max", "min", "sum", "by", "increase", "time", "queue", "action"}
    words |= {"rate", "without", "task", "state", "histogram_quantile", "le"}
    for title, expr in panel_queries(_dashboard()).items():
        bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", "", expr)
        unknown = set(re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", bare)) - known - words
        assert not unknown, f"{title}: unknown names {unknown}"


def test_dashboard_uid_and_selector_come_from_the_config() -> None:
    cfg = parse_config({"alerts": {"dashboard_uid": "x1", "selector": 'job="celery"'}})
    board = _dashboard(cfg)
    assert board["uid"] == "x1"
    exprs = panel_queries(board)
    assert 'celery_queue_length{job="celery"' in exprs["Waiting messages per queue / A"]
    assert 'job="batchctl"' not in json.dumps(board)


@pytest.mark.integration  # promtool
def test_cost_panels_price_each_batch_and_only_when_a_price_is_set(tmp_path: Path) -> None:
    """Replica-hours always; money and CO2e only with prices, each batch at its own."""
    board = _dashboard()
    titles = {p["title"] for p in panels(board)}
    assert "Replica-hours (time range)" in titles
    assert not any(t.startswith(("Cost in", "CO2e")) for t in titles)
    cfg = parse_config(
        {
            "cost": {"price_per_replica_hour": 0.2, "currency": "EUR"},
            "batches": [
                {"queue": "cpu", "deployment": "cpu"},
                {"queue": "gpu", "deployment": "gpu", "price_per_replica_hour": 2.5,
                 "co2e_grams_per_replica_hour": 400},
            ],
        },
        env={},
    )  # fmt: skip
    board = _dashboard(cfg)
    money = _panel(board, "Cost in EUR")["targets"][0]["expr"]
    assert 'queue=~"cpu"' in money and ") * 0.2" in money
    assert 'queue=~"gpu"' in money and ") * 2.5" in money
    co2 = _panel(board, "CO2e")["targets"][0]["expr"]
    assert 'queue=~"gpu"' in co2 and 'queue=~"cpu"' not in co2  # only gpu has emissions set
    promtool = require_tool("promtool")
    check_promql(promtool, {"money": substitute(money), "co2": substitute(co2)}, tmp_path)
