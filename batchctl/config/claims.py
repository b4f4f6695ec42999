"""The `claims:` section: where claims are kept, how long one may last, how much history.

Durations are written as people write them (`8h`, `7d`, `1h30m`) or as a number of
seconds; both are stored as seconds.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from batchctl.units import MAX_DURATION_SECONDS, format_duration, parse_duration

# The kubernetes store's ring of ten ConfigMaps (batchctl/claims/ring.py) keeps at least
# 90% of history_max_events: from 1,112 on that is the 1,000 entries issue 21 promises.
KUBERNETES_HISTORY_FLOOR = 1_112


class ClaimsConfig(BaseModel):
    # As in every section (config/base.py): no NaN or +/-Inf.
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False
    )

    # Where claims and their history live (batchctl.claims.service.STORES): "redis", the
    # broker's Redis; "kubernetes", one Lease per batch in kubernetes.namespace (the
    # shipped manifests' choice: the CLI then needs only a kubeconfig); "sqlite", a file
    # on this machine (local runs, any broker).
    store: Literal["redis", "kubernetes", "sqlite"] = "redis"
    # claims.store: sqlite: the database file; None: $XDG_STATE_HOME/batchctl/claims.sqlite3
    # (~/.local/state/batchctl/claims.sqlite3 without $XDG_STATE_HOME).
    sqlite_path: str | None = None
    # `batchctl claim` without --ttl (was autoscaler.claim_default_ttl_seconds).
    # Both at most 100 years (in seconds, what parse_duration accepts).
    default_ttl: float = Field(8 * 3600.0, gt=0, le=MAX_DURATION_SECONDS)
    # No claim, new or renewed, may last longer: a forgotten claim must run out.
    max_ttl: float = Field(7 * 86400.0, gt=0, le=MAX_DURATION_SECONDS)
    # The claim history keeps about this many events: the Redis stream (XADD MAXLEN ~),
    # or the kubernetes store's ring of ConfigMaps (at least 90% of it; docs/deploy.md).
    history_max_events: int = Field(10_000, ge=100)

    def warnings(self) -> list[str]:
        """Settings that are valid but keep less than batchctl promises (one line each,
        naming the key and the fix); a warning, not a refusal: a site may want less."""
        if self.store == "kubernetes" and self.history_max_events < KUBERNETES_HISTORY_FLOOR:
            return [
                f"claims.history_max_events: {self.history_max_events} keeps fewer than "
                "1,000 history entries in the kubernetes store (its ring of ConfigMaps "
                f"keeps at least 90%): set it to {KUBERNETES_HISTORY_FLOOR} or more"
            ]
        return []

    @field_validator("default_ttl", "max_ttl", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                return parse_duration(v)
            except ValueError as e:
                raise ValueError(str(e)) from None
        return v

    @model_validator(mode="after")
    def _order(self) -> ClaimsConfig:
        if self.default_ttl > self.max_ttl:
            raise ValueError(
                f"claims.default_ttl ({format_duration(self.default_ttl)}) is longer than "
                f"claims.max_ttl ({format_duration(self.max_ttl)}): lower it or raise max_ttl"
            )
        return self
