"""What a batch cost: replica-seconds priced per replica-hour, in money and CO2e (pure)."""

from __future__ import annotations

import pytest

from batchctl.config import ConfigError, parse_config
from batchctl.cost import Cost, Prices


def test_unset_prices_show_replica_hours_only() -> None:
    c = Cost(5400.0)
    assert str(c) == "1.50 replica-hours"
    assert c.to_json() == {
        "replica_seconds": 5400.0,
        "replica_hours": 1.5,
        "cost": None,
        "currency": None,
        "co2e_grams": None,
    }


def test_prices_give_money_and_emissions() -> None:
    c = Cost(7200.0, Prices(0.35, 120.0, "EUR"))
    assert (c.money, c.co2e_grams) == (0.7, 240.0)
    assert str(c) == "2.00 replica-hours, 0.70 EUR, 240 g CO2e"
    assert str(Cost(360_000.0, Prices(None, 120.0))) == "100.00 replica-hours, 12.0 kg CO2e"
    assert str(Cost(36.0, Prices(0.05))) == "0.01 replica-hours, 0.0005 USD"


def test_a_batch_price_overrides_the_cost_section() -> None:
    cfg = parse_config(
        {
            "cost": {"price_per_replica_hour": 0.2, "co2e_grams_per_replica_hour": 40},
            "batches": [
                {"queue": "cpu", "deployment": "cpu"},
                {"queue": "gpu", "deployment": "gpu", "price_per_replica_hour": 2.5},
            ],
        },
        env={},
    )
    assert cfg.prices_of("cpu") == Prices(0.2, 40.0, "USD")
    assert cfg.prices_of("gpu") == Prices(2.5, 40.0, "USD")


@pytest.mark.parametrize(
    ("cost", "key"),
    [
        ({"price_per_replica_hour": -1}, "cost.price_per_replica_hour"),
        ({"currency": "euros"}, "cost.currency"),
    ],
)
def test_bad_prices_name_the_key(cost: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"cost": cost}, env={})
    assert key in str(e.value)
