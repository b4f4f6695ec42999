"""What a batch cost: replica-seconds, and from the site's prices the money and the CO2e.

Pure. The autoscaler counts replica-seconds (every second a replica of the batch was
asked for, `celery_autoscaler_replica_seconds_total`, and per claim in the claim
record); the site configures what a replica-hour costs (`cost:` and `batches[]`:
`price_per_replica_hour`, `co2e_grams_per_replica_hour`, docs/configuration.md). With a
price unset only replica-hours are shown: batchctl never guesses a price.
"""

from __future__ import annotations

from dataclasses import dataclass

HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Prices:
    """What one replica-hour of a batch costs; None: not configured."""

    per_replica_hour: float | None = None  # in `currency`
    co2e_grams_per_replica_hour: float | None = None
    currency: str = "USD"


@dataclass(frozen=True, slots=True)
class Cost:
    """Replica-seconds used, and what they cost at `prices` (None where no price is set)."""

    replica_seconds: float
    prices: Prices = Prices()

    @property
    def replica_hours(self) -> float:
        return self.replica_seconds / HOUR

    @property
    def money(self) -> float | None:
        p = self.prices.per_replica_hour
        return None if p is None else self.replica_hours * p

    @property
    def co2e_grams(self) -> float | None:
        g = self.prices.co2e_grams_per_replica_hour
        return None if g is None else self.replica_hours * g

    def to_json(self) -> dict[str, object]:
        """{"replica_seconds", "replica_hours", "cost", "currency", "co2e_grams"}; cost
        and co2e_grams are null without a price."""
        money, grams = self.money, self.co2e_grams
        return {
            "replica_seconds": round(self.replica_seconds, 1),
            "replica_hours": round(self.replica_hours, 3),
            "cost": None if money is None else round(money, 2),
            "currency": self.prices.currency if money is not None else None,
            "co2e_grams": None if grams is None else round(grams, 1),
        }

    def __str__(self) -> str:
        """'2.50 replica-hours, 1.25 USD, 310 g CO2e' (the parts with a price set)."""
        parts = [f"{self.replica_hours:.2f} replica-hours"]
        if (money := self.money) is not None:
            parts.append(f"{format_money(money)} {self.prices.currency}")
        if (grams := self.co2e_grams) is not None:
            parts.append(format_co2e(grams))
        return ", ".join(parts)


def format_money(amount: float) -> str:
    """'12.34', '0.60', or '0.0026' under a dime (a short demo still shows a price)."""
    return f"{amount:.2f}" if amount >= 0.1 or amount == 0 else f"{amount:.4f}"


def format_co2e(grams: float) -> str:
    """'310 g CO2e', '12.4 kg CO2e'."""
    return f"{grams / 1000:.1f} kg CO2e" if grams >= 10_000 else f"{grams:.0f} g CO2e"
