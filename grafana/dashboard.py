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
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

from batchctl import metrics as n
from batchctl.config import Config

DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
# Matchers every exporter panel adds; "All" is ".*", which also matches series that
# have no namespace label (a Prometheus outside Kubernetes).
SCOPE = 'namespace=~"$namespace"'
QUEUES = 'queue=~"$queue"'
TIER_COLORS = ("green", "yellow", "orange", "red")
AnyPanel = timeseries.Panel | stat.Panel | table.Panel
ALL = dm.VariableOption(selected=True, text="All", value="$__all")


def _sel(metric: str, selector: str, *extra: str) -> str:
    matchers = ", ".join(x for x in (selector, SCOPE, *extra) if x)
    return f"{metric}{{{matchers}}}"


def _query(
    expr: str, legend: str = "", ref: str = "A", instant: bool = False, as_table: bool = False
) -> prom.Dataquery:
    q = prom.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend:
        q = q.legend_format(legend)
    if instant:
        q = q.instant()
    if as_table:
        q = q.format(pm.PromQueryFormat.TABLE)
    return q


def _tiers(cfg: Config) -> db.ThresholdsConfig:
    """Green below the first tier, then yellow, orange, red at 100, 500, 1000."""
    steps = [dm.Threshold(value=None, color=TIER_COLORS[0])]
    steps += [
        dm.Threshold(value=float(t), color=c)
        for t, c in zip(cfg.thresholds, TIER_COLORS[1:], strict=True)
    ]
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps)


def _legend() -> cb.VizLegendOptions:
    return (
        cb.VizLegendOptions()
        .display_mode(cm.LegendDisplayMode.TABLE)
        .placement(cm.LegendPlacement.RIGHT)
        .show_legend(True)
        .calcs(["lastNotNull", "max"])
    )


def _timeseries(title: str, description: str, pos: dm.GridPos) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .grid_pos(pos)
        .legend(_legend())
        .tooltip(
            cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING)
        )
        .line_width(1)
        .fill_opacity(10)
        .min(0)
    )


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
            "be busy.",
            dm.GridPos(h=8, w=8, x=0, y=10),
        )
        .with_target(_query(_sel(n.QUEUE_UNACKED.name, sel, QUEUES), "{{queue}}"))
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


NO_EVENTS = "no events"
FINISHED = 'state=~"succeeded|failed"'
FAILED = 'state="failed"'


def _events_panels(cfg: Config) -> list[AnyPanel]:
    """From Celery's task events (events.enabled, workers with -E). Each exporter counts
    the same events: per queue the largest of their values, never their sum."""
    sel = cfg.alerts.selector
    events = n.TASK_EVENTS.name

    def per_queue(expr: str) -> str:
        return f"max by (queue) (\n  {expr}\n)"

    def completions(which: str, window: str = "$__rate_interval") -> str:
        return f"sum without (task, state) (rate({_sel(events, sel, QUEUES, which)}[{window}]))"

    throughput = (
        _timeseries(
            "Completed per minute",
            "Tasks that succeeded or failed, per minute, from Celery's task events. "
            "Without events the status page estimates it from the fall of the queue.",
            dm.GridPos(h=8, w=8, x=0, y=45),
        )
        .with_target(_query(per_queue(completions(FINISHED)) + " * 60", "{{queue}}", "A"))
        .unit("short")
        .no_value(NO_EVENTS)
    )
    failures = (
        _timeseries(
            "Failure ratio (10 min)",
            "failed / (succeeded + failed) over the last 10 minutes, per queue: what "
            "CeleryTaskFailureRatioHigh alerts on.",
            dm.GridPos(h=8, w=8, x=8, y=45),
        )
        .with_target(
            _query(
                per_queue(f"{completions(FAILED, '10m')}\n  /\n  {completions(FINISHED, '10m')}"),
                "{{queue}}",
                "A",
            )
        )
        .unit("percentunit")
        .max(1)
        .no_value(NO_EVENTS)
    )
    bucket = _sel(f"{n.TASK_RUNTIME.name}_bucket", sel, QUEUES)
    buckets = f"max by (queue, le) (rate({bucket}[$__rate_interval]))"
    runtime = (
        _timeseries(
            "Task run time p50 / p95",
            "Run time of tasks that succeeded (their task-succeeded event), per queue.",
            dm.GridPos(h=8, w=8, x=16, y=45),
        )
        .with_target(
            _query(
                f"histogram_quantile(0.5, {buckets})",
                "p50 {{queue}}",
                "A",
            )
        )
        .with_target(
            _query(
                f"histogram_quantile(0.95, {buckets})",
                "p95 {{queue}}",
                "B",
            )
        )
        .unit("s")
        .no_value(NO_EVENTS)
    )
    active = (
        _timeseries(
            "Active tasks",
            "Tasks executing now (task events, reconciled with the workers' heartbeats). "
            "With Celery's default early acknowledgement they are in no Redis structure.",
            dm.GridPos(h=8, w=8, x=0, y=53),
        )
        .with_target(
            _query(f"max by (queue) ({_sel(n.QUEUE_ACTIVE.name, sel, QUEUES)})", "{{queue}}")
        )
        .unit("short")
        .decimals(0)
        .no_value(NO_EVENTS)
    )
    workers = (
        _timeseries(
            "Workers (by heartbeats)",
            "Celery workers consuming each queue now, alive by their heartbeats.",
            dm.GridPos(h=8, w=8, x=8, y=53),
        )
        .with_target(
            _query(f"max by (queue) ({_sel(n.QUEUE_WORKERS.name, sel, QUEUES)})", "{{queue}}")
        )
        .unit("short")
        .decimals(0)
        .no_value(NO_EVENTS)
    )
    work = (
        f"max by (queue) ({_sel(n.QUEUE_LENGTH.name, sel, QUEUES)})\n"
        f"  + max by (queue) ({_sel(n.QUEUE_UNACKED.name, sel, QUEUES)})\n"
        f"  + max by (queue) ({_sel(n.QUEUE_ACTIVE.name, sel, QUEUES)})"
    )
    eta = (
        _timeseries(
            "ETA to drain",
            "Waiting + in flight + active, at the completions of the last 5 minutes. "
            "Missing while nothing completes (a stalled batch has no ETA).",
            dm.GridPos(h=8, w=8, x=16, y=53),
        )
        .with_target(
            _query(
                f"(\n  {work}\n)\n/\n({per_queue(completions(FINISHED, '5m'))} > 0)",
                "{{queue}}",
            )
        )
        .unit("s")
        .no_value(NO_EVENTS)
    )
    return [throughput, failures, runtime, active, workers, eta]


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
        ("Tasks (Celery events)", _events_panels(cfg), 44),
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
