"""What every config section shares: strict models, and the name and duration rules."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

# \Z, not $: "$" also matches before a final newline ("batch1\n").
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,200}\Z")
# RFC 1123 label, which is what Kubernetes requires of a Deployment name.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
# RFC 1123 subdomain: most other object names (a Lease's).
_DNS_SUBDOMAIN = re.compile(
    r"^(?=.{1,253}\Z)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z"
)


class _Strict(BaseModel):
    # No NaN or +/-Inf in any number: `.inf` seconds is a claim that never expires or a
    # thread that sleeps forever, and `.nan` compares false with every bound.
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False
    )


# A Prometheus duration such as 30s, 5m, 1h30m (what a rule's `for` and a range accept):
# each unit at most once, largest first, as Prometheus's own parser requires.
_PROM_DURATION = re.compile(
    r"^(?=[0-9])([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?\Z"
)
_PROM_UNITS_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)
# Prometheus holds a duration in int64 nanoseconds: about 292 years at most.
_PROM_MAX_MS = (2**63 - 1) // 1_000_000


def _prom_duration_ms(v: str) -> int | None:
    """`v` in milliseconds if Prometheus accepts it as a duration (its form and range),
    else None."""
    m = _PROM_DURATION.match(v)
    if m is None:
        return None
    ms = 0
    for part, unit in zip(m.groups(), _PROM_UNITS_MS, strict=True):
        if part:
            ms += int(part.rstrip("ywdhms")) * unit
    return ms if ms <= _PROM_MAX_MS else None


def _prom_duration(v: str) -> bool:
    """Whether Prometheus accepts `v` as a duration: its form, and its range."""
    return _prom_duration_ms(v) is not None


# PromQL label matchers without the braces: `job="batchctl"`, `job=~"batch.*",env!="dev"`;
# a value is a PromQL string ("...", '...' or `...`).
_PROM_STRING = r""""([^"\\\n]|\\.)*"|'([^'\\\n]|\\.)*'|`[^`]*`"""
_MATCHER = rf"\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*({_PROM_STRING})\s*"
_MATCHERS = re.compile(rf"^({_MATCHER}(,{_MATCHER})*)?\Z")


def _base_url(v: str, example: str, api: str, *, path_ok: bool = True) -> str:
    """An http(s) URL with a host and no query, to which batchctl appends an API path;
    with `path_ok` false, no path either (the API path would be appended twice). The
    problem never quotes the URL: it may hold a password."""
    parts = urlsplit(v)
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise ValueError(f"bad port; expected a URL such as {example}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL with a host, e.g. {example}")
    if parts.query or parts.fragment or (not path_ok and parts.path not in ("", "/")):
        what = "query" if path_ok else "path or query"
        raise ValueError(
            f"expected the base URL without a {what}, e.g. {example}: batchctl adds {api} itself"
        )
    return v
