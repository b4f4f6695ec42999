"""The batchctl Grafana dashboard, built with grafana-foundation-sdk from the Config.

It replaces the old "Keep-It-Up" page: depth per queue against the 100/500/1000 tiers,
in flight, oldest age, queue memory against Redis maxmemory, replicas per batch (ready,
asked for, autoscaler's desired and cap), claims, firing alerts and scrape health; and,
from Celery's task events, throughput, failures, run times, active tasks, workers and
the ETA to drain (panels say "no events" when events are off).
Selectors, thresholds and the uid come from the same config as the alert rules.
"""

from __future__ import annotations

import json

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat, table
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from batchctl import metrics as n
from batchctl.config import Config
from grafana.cost_panels import cost_panels
from grafana.events_panels import events_panels
from grafana.panels import (
    ALL,
    DATASOURCE,
    QUEUES,
    SCOPE,
    TIER_COLORS,
    AnyPanel,
    _query,
    _sel,
    _timeseries,
)


def _tiers(cfg: Config) -> db.ThresholdsConfig:
    """Green below the first tier, then yellow, orange, red at 100, 500, 1000."""
    steps = [dm.Threshold(value=None, color=TIER_COLORS[0])]
    steps += [
        dm.Threshold(value=float(t), color=c)
        for t, c in zip(cfg.thresholds, TIER_COLORS[1:], strict=True)
    ]
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps)


def _variables(cfg: Config) -> list[Builder[dm.VariableModel]]:
    sel = cfg.alerts.selector
    return [
        db.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        db.QueryVariable("namespace")
        .label("Namespace")
        .datasource(DATASOURCE)
        .query(f"label_values({n.BUILD_INFO.name}{{{sel}}}, namespace)")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .include_all(True)
        .all_value(".*")
        .current(ALL),
        db.QueryVariable("queue")
        .label("Queue")
        .datasource(DATASOURCE)
        .query(f"label_values({n.QUEUE_LENGTH.name}{{{sel}, {SCOPE}}}, queue)")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.NATURAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(ALL),
    ]


def _queue_panels(cfg: Config) -> list[AnyPanel]:
    sel = cfg.alerts.selector
    info, warning, critical = cfg.thresholds
    depth = (
        _timeseries(
            "Waiting messages per queue",
            f"Messages waiting, summed over all priority lists. Under {info} is good, under "
            f"{warning} fine; at {critical} or more Redis memory is at risk (the dashed lines "
            "are the CeleryQueueLengthHigh tiers).",
            dm.GridPos(h=9, w=16, x=0, y=1),
        )
        .with_target(_query(_sel(n.QUEUE_LENGTH.name, sel, QUEUES), "{{queue}}"))
        .thresholds(_tiers(cfg))
        .thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED))
        .unit("short")
    )
    now = (
        stat.Panel()
        .title("Waiting now")
        .description("Current depth per queue, coloured by tier.")
        .datasource(DATASOURCE)
        .grid_pos(dm.GridPos(h=9, w=8, x=16, y=1))
        .with_target(_query(_sel(n.QUEUE_LENGTH.name, sel, QUEUES), "{{queue}}", instant=True))
        .thresholds(_tiers(cfg))
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .text_mode(cm.BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    in_flight = (
        _timeseries(
            "In flight (delivered, not acknowledged)",
            "Messages workers hold: running or prefetched. A queue with 0 waiting can still "
            "be busy. Of them: scheduled (ETA and countdown tasks held until their time) "
            "and stranded (past the visibility timeout with no worker to restore them).",
            dm.GridPos(h=8, w=8, x=0, y=10),
        )
        .with_target(_query(_sel(n.QUEUE_UNACKED.name, sel, QUEUES), "{{queue}}"))
        .with_target(
            _query(_sel(n.QUEUE_SCHEDULED.name, sel, QUEUES), "{{queue}} scheduled", ref="B")
        )
        .with_target(
            _query(_sel(n.QUEUE_UNACKED_STRANDED.name, sel, QUEUES), "{{queue}} stranded", ref="C")
        )
        .unit("short")
    )
    age = (
        _timeseries(
            "Oldest waiting message age",
            "Age of the oldest waiting message (since first seen). It should stay steady "
            "while a queue is consumed; steady growth with ready workers is CeleryQueueStuck.",
            dm.GridPos(h=8, w=8, x=8, y=10),
        )
        .with_target(_query(_sel(n.QUEUE_OLDEST_AGE.name, sel, QUEUES), "{{queue}}"))
        .unit("s")
    )
    memory = (
        _timeseries(
            "Queue memory vs broker maxmemory",
            "Redis memory held by each queue's lists, with Redis used memory and maxmemory "
            "(no maxmemory line when Redis has no limit).",
            dm.GridPos(h=8, w=8, x=16, y=10),
        )
        .with_target(_query(_sel(n.QUEUE_MEMORY.name, sel, QUEUES), "{{queue}}", "A"))
        .with_target(_query(f"max({_sel(n.BROKER_MEMORY_USED.name, sel)})", "Redis used", "B"))
        .with_target(
            _query(f"max({_sel(n.BROKER_MEMORY_MAX.name, sel)} > 0)", "Redis maxmemory", "C")
        )
        .unit("bytes")
    )
    return [depth, now, in_flight, age, memory]


def _batch_panels(cfg: Config) -> list[AnyPanel]:
    sel = cfg.alerts.selector
    asel = cfg.alerts.autoscaler_selector
    replicas = (
        _timeseries(
            "Replicas: ready vs desired vs cap — $queue",
            "Ready replicas and what the Deployment asks for (Kubernetes), the autoscaler's "
            "desired count and its cap. One panel per queue.",
            dm.GridPos(h=8, w=8, x=0, y=19),
        )
        .repeat("queue")
        .repeat_direction("h")
        .max_per_row(3)
        .with_target(_query(_sel(n.DEPLOYMENT_READY.name, sel, 'queue=~"$queue"'), "ready", "A"))
        .with_target(_query(_sel(n.DEPLOYMENT_REPLICAS.name, sel, 'queue=~"$queue"'), "asked", "B"))
        .with_target(
            _query(_sel(n.AUTOSCALER_DESIRED.name, asel, 'queue=~"$queue"'), "desired", "C")
        )
        .with_target(_query(_sel(n.AUTOSCALER_MAX.name, asel, 'queue=~"$queue"'), "cap", "D"))
        .unit("short")
        .decimals(0)
    )
    claims = (
        table.Panel()
        .title("Claims")
        .description(
            "Who holds each batch and for how long the claim is still valid (negative: "
            "expired). `batchctl status` shows purpose and contact."
        )
        .datasource(DATASOURCE)
        .grid_pos(dm.GridPos(h=8, w=12, x=0, y=27))
        .with_target(
            _query(
                f"{_sel(n.BATCH_CLAIMED.name, sel, QUEUES)} == 1",
                ref="A",
                instant=True,
                as_table=True,
            )
        )
        .with_target(
            _query(
                f"{_sel(n.BATCH_CLAIM_EXPIRY.name, sel, QUEUES)} - time()",
                ref="B",
                instant=True,
                as_table=True,
            )
        )
        .with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            dm.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True, "Value #A": True, "__name__": True},
                    "renameByName": {"Value #B": "expires in"},
                },
            )
        )
        .unit("s")
    )
    holds = (
        _timeseries(
            "Autoscaler holds and decisions",
            "Holds (1 while a guard blocks scale-up) and scaling decisions per minute.",
            dm.GridPos(h=8, w=12, x=12, y=27),
        )
        .with_target(
            _query(
                f"{_sel(n.AUTOSCALER_HOLD.name, asel, QUEUES)} > 0",
                "hold {{queue}}: {{reason}}",
                "A",
            )
        )
        .with_target(
            _query(
                "sum by (queue, action) (increase("
                f"{_sel(n.AUTOSCALER_DECISIONS.name, asel, QUEUES)}[$__rate_interval]))",
                "{{queue}} {{action}}",
                "B",
            )
        )
        .unit("short")
    )
    return [replicas, claims, holds]


def _health_panels(cfg: Config) -> list[AnyPanel]:
    sel = cfg.alerts.selector
    firing = (
        table.Panel()
        .title("Firing alerts")
        .description("batchctl alerts firing now; each links a runbook in its annotations.")
        .datasource(DATASOURCE)
        .grid_pos(dm.GridPos(h=8, w=12, x=0, y=36))
        .with_target(
            _query(
                'ALERTS{alertname=~"Celery.*", alertstate="firing"}',
                ref="A",
                instant=True,
                as_table=True,
            )
        )
        .with_transformation(
            dm.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True, "Value": True, "__name__": True},
                    "indexByName": {"alertname": 0, "severity": 1, "queue": 2},
                },
            )
        )
    )
    up_mapping = dm.ValueMap(
        options={
            "0": dm.ValueMappingResult(text="DOWN", color="red", index=0),
            "1": dm.ValueMappingResult(text="UP", color="green", index=1),
        }
    )
    health = (
        stat.Panel()
        .title("Scrape health")
        .description(
            "Prometheus scraping the exporter (up), the exporter reading Redis and the "
            "Kubernetes API."
        )
        .datasource(DATASOURCE)
        .grid_pos(dm.GridPos(h=4, w=12, x=12, y=36))
        .with_target(_query(f"min({_sel(n.UP, sel)})", "exporter", "A", instant=True))
        .with_target(_query(f"min({_sel(n.BROKER_UP.name, sel)})", "Redis", "B", instant=True))
        .with_target(
            _query(f"min({_sel(n.KUBERNETES_UP.name, sel)})", "Kubernetes API", "C", instant=True)
        )
        .mappings([up_mapping])
        .thresholds(
            db.ThresholdsConfig()
            .mode(dm.ThresholdsMode.ABSOLUTE)
            .steps([dm.Threshold(value=None, color="red"), dm.Threshold(value=1.0, color="green")])
        )
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .text_mode(cm.BigValueTextMode.VALUE_AND_NAME)
        .no_value("absent")
    )
    duration = (
        _timeseries(
            "Exporter collection time",
            "How long one scrape's collection takes (one Redis round trip plus the cache).",
            dm.GridPos(h=4, w=12, x=12, y=40),
        )
        .with_target(_query(_sel(n.SCRAPE_DURATION.name, sel), "{{instance}}"))
        .unit("s")
    )
    return [firing, health, duration]


def build(cfg: Config) -> db.Dashboard:
    board = (
        db.Dashboard("Celery batch queues (batchctl)")
        .uid(cfg.alerts.dashboard_uid)
        .description("Celery batch queues on Redis and the Deployments that consume them.")
        .tags(["batchctl", "celery"])
        .editable()
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
    )
    for var in _variables(cfg):
        board = board.with_variable(var)
    rows = [
        ("Queues", _queue_panels(cfg), 0),
        ("Batches: replicas and claims", _batch_panels(cfg), 18),
        ("Alerts and health", _health_panels(cfg), 35),
        ("Tasks (Celery events)", events_panels(cfg), 44),
        ("Cost and deadlines", cost_panels(cfg), 61),
    ]
    panel_id = 1
    for title, panels, y in rows:
        board = board.with_row(db.Row(title).id(panel_id).grid_pos(dm.GridPos(h=1, w=24, x=0, y=y)))
        panel_id += 1
        for panel in panels:
            board = board.with_panel(panel.id(panel_id))
            panel_id += 1
    return board


def render_dashboard(cfg: Config) -> str:
    """The dashboard JSON, stable across runs (sorted keys) so the committed file diffs cleanly."""
    model = build(cfg).build()
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"
