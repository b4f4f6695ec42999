"""The claim record of a batch, as stored in the broker's Redis (pure, no I/O).

One hash per batch, `batchctl:claim:<queue>` (after the broker's global_keyprefix),
with the fields holder, purpose, contact, since and expires (unix seconds). The
exporter reads these records in its scrape and the autoscaler acts on them; the rules
for taking and giving back a claim are in batchctl/claims/rules.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

KEY = "batchctl:claim:{queue}"


def claim_key(queue: str, prefix: str = "") -> str:
    return prefix + KEY.format(queue=queue)


@dataclass(frozen=True)
class Claim:
    queue: str
    holder: str
    purpose: str
    contact: str
    since: float  # unix seconds
    expires: float  # unix seconds

    def expired(self, now: float) -> bool:
        return now >= self.expires

    def remaining(self, now: float) -> float:
        """Seconds until expiry; negative once expired."""
        return self.expires - now

    def to_fields(self) -> dict[str, str]:
        return {
            "holder": self.holder,
            "purpose": self.purpose,
            "contact": self.contact,
            "since": f"{self.since:.3f}",
            "expires": f"{self.expires:.3f}",
        }

    @classmethod
    def from_fields(cls, queue: str, fields: Mapping[Any, Any]) -> Claim | None:
        """Decode a hash as read (bytes or str); None when empty or unusable."""
        f = {_text(k): _text(v) for k, v in fields.items()}
        if not f.get("holder"):
            return None
        try:
            since = float(f.get("since") or 0.0)
            expires = float(f.get("expires") or 0.0)
        except ValueError:
            # A hand-edited record with garbage times: treat it as long expired
            # rather than as a claim that blocks the batch forever.
            since, expires = 0.0, 0.0
        return cls(queue, f["holder"], f.get("purpose", ""), f.get("contact", ""), since, expires)

    def to_json(self, now: float) -> dict[str, object]:
        out: dict[str, object] = asdict(self)
        out["expired"] = self.expired(now)
        out["expires_in_seconds"] = round(self.remaining(now), 3)
        return out


def _text(value: Any) -> str:
    # A hand-edited record may hold anything: never fail a scrape over it.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
