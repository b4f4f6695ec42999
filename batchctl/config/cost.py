"""The `cost:` section: what a replica-hour costs, in money and in CO2e, for every batch
that does not set its own (`batches[].price_per_replica_hour`,
`batches[].co2e_grams_per_replica_hour`)."""

from __future__ import annotations

from pydantic import Field

from batchctl.config.base import _Strict


class CostConfig(_Strict):
    # ISO 4217 code the prices are in, shown beside every amount.
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    # What one replica of a batch costs per hour (a pod's share of its node); None:
    # unknown, and only replica-hours are shown.
    price_per_replica_hour: float | None = Field(None, ge=0)
    # Grams of CO2e one replica emits per hour (the node's power x the grid's carbon
    # intensity, per replica); None: unknown.
    co2e_grams_per_replica_hour: float | None = Field(None, ge=0)
