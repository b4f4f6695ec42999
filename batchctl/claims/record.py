"""The claim record of a batch, as stored in the broker's Redis (pure, no I/O).

One hash per batch, `batchctl:claim:<queue>` (after the broker's global_keyprefix),
with the fields holder, purpose, contact, since and expires (unix seconds), and, when
set: `draining_since` (the holder released it with --drain: no growth, the autoscaler
finishes the work, scales to min_replicas and ends the claim), the manual override of
`batchctl scale` (`override_replicas`, `override_until`, `override_by`,
`override_reason`, `override_since`), `expiry_noted` (the expiry is in the history),
`finish_by` (the holder's deadline, `batchctl claim --finish-by`: the autoscaler paces
the batch to finish by then) and `replica_seconds` (what the claim has used so far, added
by the autoscaler as it goes; batchctl/cost.py turns it into money and CO2e).
The exporter reads these records in its scrape and the autoscaler acts on them; the
rules for changing a claim are in batchctl/claims/rules.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

KEY = "batchctl:claim:{queue}"

# Times from this on (unix seconds: 9999-01-01) are garbage, like inf and nan: dates
# that Python's datetime cannot print in every time zone.
MAX_TIME = 253_370_764_800.0
# Kubernetes keeps replicas in an int32: an override past it is garbage too.
MAX_REPLICAS = 2**31 - 1


def claim_key(queue: str, prefix: str = "") -> str:
    return prefix + KEY.format(queue=queue)


@dataclass(frozen=True)
class Override:
    """`batchctl scale`: `replicas` for the batch until `until`, set by `by`."""

    replicas: int
    until: float  # unix seconds
    by: str
    reason: str = ""
    since: float = 0.0

    def active(self, now: float) -> bool:
        return now < self.until


@dataclass(frozen=True)
class Claim:
    queue: str
    holder: str
    purpose: str
    contact: str
    since: float  # unix seconds
    expires: float  # unix seconds
    draining_since: float | None = None
    override: Override | None = None
    expiry_noted: bool = False
    # Whether the cluster verified that the holder is who they say (the kubernetes store:
    # SelfSubjectReview); False: a name from --holder/$USER on a cluster without it;
    # None: the store does not verify holders (the Redis store).
    holder_verified: bool | None = None

    @property
    def holder_shown(self) -> str:
        """The holder as outputs print it: marked when the cluster could not verify it."""
        return f"{self.holder} (unverified)" if self.holder_verified is False else self.holder

    finish_by: float | None = None  # unix seconds: the work should be done by then
    replica_seconds: float = 0.0  # used under this claim so far (the autoscaler's count)

    @property
    def draining(self) -> bool:
        return self.draining_since is not None

    def expired(self, now: float) -> bool:
        return now >= self.expires

    def remaining(self, now: float) -> float:
        """Seconds until expiry; negative once expired."""
        return self.expires - now

    def active_override(self, now: float) -> Override | None:
        """The manual override in force at `now`: set, not past, and the claim still live."""
        o = self.override
        if o is None or not o.active(now) or self.expired(now) or self.draining:
            return None
        return o

    def same_claim(self, other: Claim | None) -> bool:
        """Whether `other` is this claim (same holder and start), whatever changed since.
        The record keeps times to the millisecond: a claim as taken and as read back are
        the same claim."""
        return (
            other is not None
            and other.holder == self.holder
            and abs(other.since - self.since) < 0.001
        )

    def to_fields(self) -> dict[str, str]:
        out = {
            "holder": self.holder,
            "purpose": self.purpose,
            "contact": self.contact,
            "since": f"{self.since:.3f}",
            "expires": f"{self.expires:.3f}",
        }
        if self.draining_since is not None:
            out["draining_since"] = f"{self.draining_since:.3f}"
        if self.override is not None:
            o = self.override
            out["override_replicas"] = str(o.replicas)
            out["override_until"] = f"{o.until:.3f}"
            out["override_by"] = o.by
            out["override_reason"] = o.reason
            out["override_since"] = f"{o.since:.3f}"
        if self.expiry_noted:
            out["expiry_noted"] = "1"
        if self.holder_verified is not None:
            out["holder_verified"] = "1" if self.holder_verified else "0"
        if self.finish_by is not None:
            out["finish_by"] = f"{self.finish_by:.3f}"
        if self.replica_seconds > 0:
            out["replica_seconds"] = f"{self.replica_seconds:.3f}"
        return out

    @classmethod
    def from_fields(cls, queue: str, fields: Mapping[Any, Any]) -> Claim | None:
        """Decode a hash as read (bytes or str); None when empty or unusable.

        Times that are not numbers, not finite (inf, nan) or out of range are garbage:
        the claim counts as long expired (since and expires 0) rather than as one that
        blocks the batch forever; a garbage drain time is no drain, and a garbage
        override no override."""
        f = {_text(k): _text(v) for k, v in fields.items()}
        if not f.get("holder"):
            return None
        since, expires = _time(f.get("since") or 0.0), _time(f.get("expires") or 0.0)
        if since is None or expires is None:
            since, expires = 0.0, 0.0
        override = None
        if f.get("override_replicas"):
            override = _override(
                f["override_replicas"],
                f.get("override_until") or 0.0,
                f.get("override_by", ""),
                f.get("override_reason", ""),
                f.get("override_since") or 0.0,
            )
        return cls(
            queue,
            f["holder"],
            f.get("purpose", ""),
            f.get("contact", ""),
            since,
            expires,
            draining_since=_time(f.get("draining_since") or None),
            override=override,
            expiry_noted=f.get("expiry_noted") == "1",
            holder_verified=_flag(f.get("holder_verified")),
            finish_by=_time(f.get("finish_by") or None),
            replica_seconds=_amount(f.get("replica_seconds")),
        )

    def to_json(self, now: float) -> dict[str, object]:
        out: dict[str, object] = asdict(self)
        out["expired"] = self.expired(now)
        out["expires_in_seconds"] = round(self.remaining(now), 3)
        out["draining"] = self.draining
        return out

    @classmethod
    def from_json(cls, queue: str, data: Mapping[str, Any]) -> Claim:
        """The inverse of `to_json` (the snapshot API). Fields this version does not know
        are ignored and missing optional ones take their defaults, so neighbouring
        versions of the exporter and the sidecar understand each other. Raises KeyError,
        TypeError or ValueError for something that is not a claim; garbage times (inf,
        nan, out of range) are decoded as `from_fields` decodes them."""
        o = data.get("override")
        override = None
        if o:
            override = _override(
                o["replicas"],
                o["until"],
                str(o.get("by", "")),
                str(o.get("reason", "")),
                o.get("since", 0.0),
            )
        since, expires = _time(data["since"]), _time(data["expires"])
        if since is None or expires is None:
            since, expires = 0.0, 0.0
        draining = data.get("draining_since")
        finish_by = data.get("finish_by")
        return cls(
            queue,
            str(data["holder"]),
            str(data.get("purpose", "")),
            str(data.get("contact", "")),
            since,
            expires,
            draining_since=None if draining is None else _time(draining),
            override=override,
            expiry_noted=bool(data.get("expiry_noted", False)),
            holder_verified=_flag(data.get("holder_verified")),
            finish_by=None if finish_by is None else _time(finish_by),
            replica_seconds=_amount(data.get("replica_seconds")),
        )


def _flag(value: Any) -> bool | None:
    """ "1"/"0" (a stored field) or a JSON bool as True/False; anything else None."""
    if isinstance(value, bool):
        return value
    return {"1": True, "0": False}.get(value) if isinstance(value, str) else None


def _time(value: Any) -> float | None:
    """Unix seconds, or None for garbage: not a number, not finite, or out of range."""
    if value is None:
        return None
    try:
        t = float(value)
    except (TypeError, ValueError):
        return None
    return t if math.isfinite(t) and 0.0 <= t < MAX_TIME else None


def _amount(value: Any) -> float:
    """A non-negative finite number of seconds used; 0.0 for garbage or none."""
    try:
        n = float(value)
    except (TypeError, ValueError):
        return 0.0
    return n if math.isfinite(n) and 0.0 <= n < MAX_TIME else 0.0


def _override(replicas: Any, until: Any, by: str, reason: str, since: Any) -> Override | None:
    """An override whose every number reads; None otherwise (no override rather than a
    wrong one)."""
    try:
        count = int(replicas)
    except (TypeError, ValueError, OverflowError):
        return None
    end, start = _time(until), _time(since)
    if end is None or start is None or not 0 <= count <= MAX_REPLICAS:
        return None
    return Override(count, end, by, reason, start)


def _text(value: Any) -> str:
    # A hand-edited record may hold anything: never fail a scrape over it.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
