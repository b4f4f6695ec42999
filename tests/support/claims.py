"""Claims for the claim tests, around one instant `NOW`."""

from __future__ import annotations

from typing import Any

from batchctl.claims import Claim

NOW = 1_800_000_000.0
HOUR = 3600.0


def claim(holder: str = "alice", expires: float = NOW + HOUR, **kw: Any) -> Claim:
    """batch1 held by `holder` for a reindex since an hour before NOW; `kw` overrides."""
    fields: dict[str, Any] = {
        "queue": "batch1",
        "holder": holder,
        "purpose": "reindex",
        "contact": "#infra",
        "since": NOW - HOUR,
        "expires": expires,
    }
    fields.update(kw)
    return Claim(**fields)
