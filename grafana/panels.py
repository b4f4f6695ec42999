"""What every dashboard panel shares: the data source, the matchers, query and panel builders."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

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
