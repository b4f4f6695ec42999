"""The dashboard's row on what batches cost and their deadlines: replica-hours over the
dashboard's time range, priced from the config (`cost:`, and each batch's own prices),
tasks running on stopped replicas (0 with the busy map), and the time a batch with a
deadline has to spare. Unset prices show replica-hours only: no money or CO2e panel."""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.builders import stat
from grafana_foundation_sdk.models import dashboard as dm

from batchctl import metrics as n
from batchctl.config import Config
from batchctl.cost import Prices
from grafana.panels import DATASOURCE, QUEUES, AnyPanel, _query, _sel, _timeseries

Y = 62  # below the events row


def cost_panels(cfg: Config) -> list[AnyPanel]:
    asel, sel = cfg.alerts.autoscaler_selector, cfg.alerts.selector

    def hours(*extra: str) -> str:
        used = _sel(n.AUTOSCALER_REPLICA_SECONDS.name, asel, QUEUES, *extra)
        return f"sum by (queue) (increase({used}[$__range])) / 3600"

    def priced(price: Callable[[Prices], float | None]) -> str | None:
        """Replica-hours times each batch's price, one term per price; None: no price."""
        by_price: dict[float, list[str]] = {}
        for b in cfg.batches:
            p = price(cfg.prices_of(b.queue))
            if p is not None:
                by_price.setdefault(p, []).append(b.queue)
        if not by_price:
            return None
        terms = []
        for p, queues in sorted(by_price.items()):
            only = f'queue=~"{"|".join(queues)}"'
            terms.append(f"({hours(only)}) * {p:g}")
        return "\n  or\n".join(terms)

    panels: list[AnyPanel] = [
        _stat(
            "Replica-hours (time range)",
            "Replica-hours of each batch over the dashboard's time range, counted by the "
            "autoscaler (its replicas times the seconds they were asked for).",
            hours(),
            "short",
            0,
        )
    ]
    currency = cfg.cost.currency
    money = priced(lambda p: p.per_replica_hour)
    if money is not None:
        panels.append(
            _stat(
                f"Cost in {currency} (time range)",
                "Replica-hours times the price per replica-hour of the config (`cost:`, or "
                "the batch's own price_per_replica_hour).",
                money,
                "none",
                6,
            )
        )
    grams = priced(lambda p: p.co2e_grams_per_replica_hour)
    if grams is not None:
        panels.append(
            _stat(
                "CO2e (time range)",
                "Replica-hours times the grams of CO2e per replica-hour of the config.",
                f"({grams}) / 1000",
                "masskg",
                12,
            )
        )
    panels.append(
        _stat(
            "Tasks running on stopped replicas (time range)",
            "Tasks that were running on replicas the autoscaler told to stop, by the busy "
            "map of Celery's events: 0 is the aim (a step down waits for an idle replica).",
            "sum by (queue) (increase("
            f"{_sel(n.AUTOSCALER_BUSY_STOPS.name, asel, QUEUES)}[$__range]))",
            "short",
            18,
        )
    )
    finish_by = _sel(n.BATCH_FINISH_BY.name, sel, QUEUES)
    expected = _sel(n.BATCH_EXPECTED_FINISH.name, sel, QUEUES)
    spare = (
        _timeseries(
            "Deadline: time to spare",
            "For a claim with a deadline (batchctl claim --finish-by): the deadline minus "
            "when the work would be done at the batch's pace. Below 0 the batch is behind "
            "(CeleryBatchBehindDeadline).",
            dm.GridPos(h=8, w=24, x=0, y=Y + 6),
        )
        .with_target(
            _query(
                f"max by (queue) ({finish_by})\n- max by (queue) ({expected})",
                "{{queue}}",
            )
        )
        .unit("s")
        .min(None)  # type: ignore[arg-type]
    )
    panels.append(spare)
    return panels


def _stat(title: str, description: str, expr: str, unit: str, x: int) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .grid_pos(dm.GridPos(h=6, w=6, x=x, y=Y))
        .with_target(_query(expr, "{{queue}}", instant=True))
        .unit(unit)
        .decimals(2)
    )
