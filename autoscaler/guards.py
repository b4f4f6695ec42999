"""Guard signals: PromQL conditions on the services a batch leans on (DB, Elasticsearch, Redis).

A guard is written as a condition: any sample returned means "unhealthy". Prometheus
unreachable, an error or a malformed answer means "unknown", which the policy treats
like unhealthy: when in doubt, do not scale up.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from autoscaler.policy import GuardResult, GuardStatus
from batchctl.config import GuardConfig
from batchctl.log import get_logger

log = get_logger("batchctl.guards")


def judge(guard: GuardConfig, answer: Mapping[str, Any] | None) -> GuardResult:
    """Pure: a guard's status from a decoded /api/v1/query answer (None: no answer).

    Any sample means unhealthy; none means healthy. A sample that is NaN or +/-Inf is
    no answer at all (typically a division by a zero, such as Redis' `maxmemory 0`):
    unknown, and the detail says so, rather than a hold that never ends.
    """
    if not answer:
        return GuardResult(guard.name, GuardStatus.UNKNOWN, guard.shed, "no answer")
    if answer.get("status") != "success":
        error = str(answer.get("error") or answer.get("status") or "failed")[:200]
        return GuardResult(guard.name, GuardStatus.UNKNOWN, guard.shed, f"query failed: {error}")
    data = answer.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind in ("vector", "matrix") and isinstance(result, list):
        values = [_value(s) for s in result]
        odd = [v for v in values if v is None or not math.isfinite(v)]
        if odd:
            return GuardResult(
                guard.name, GuardStatus.UNKNOWN, guard.shed, f"returned {_show(odd[0])}"
            )
        status = GuardStatus.UNHEALTHY if result else GuardStatus.HEALTHY
        detail = f"{len(result)} sample(s)" if result else ""
        return GuardResult(guard.name, status, guard.shed, detail)
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        # A bare number: nonzero means the condition holds.
        v = _number(result[1])
        if v is None or not math.isfinite(v):
            return GuardResult(guard.name, GuardStatus.UNKNOWN, guard.shed, f"returned {_show(v)}")
        status = GuardStatus.UNHEALTHY if v != 0 else GuardStatus.HEALTHY
        return GuardResult(guard.name, status, guard.shed, f"scalar {v:g}")
    return GuardResult(guard.name, GuardStatus.UNKNOWN, guard.shed, f"unexpected {kind} result")


def _number(raw: Any) -> float | None:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


def _value(sample: Any) -> float | None:
    """A vector sample's value ({"value": [t, "v"]}) or a matrix's last one."""
    if not isinstance(sample, Mapping):
        return None
    if isinstance(sample.get("value"), list) and len(sample["value"]) == 2:
        return _number(sample["value"][1])
    values = sample.get("values")
    if isinstance(values, list) and values and isinstance(values[-1], list):
        return _number(values[-1][1])
    return None


def _show(v: float | None) -> str:
    if v is None:
        return "a sample without a number"
    return "NaN" if math.isnan(v) else ("+Inf" if v > 0 else "-Inf")


def query(base_url: str, promql: str, timeout: float) -> Mapping[str, Any] | None:
    url = base_url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as e:
        # Prometheus answers 400/422 with a JSON error body for bad queries.
        try:
            return json.loads(e.read())  # type: ignore[no-any-return]
        except (ValueError, OSError):
            return None
    except (OSError, ValueError) as e:
        log.warning("guard query failed", error=f"{type(e).__name__}: {e}")
        return None


def evaluate(
    guards: Sequence[GuardConfig], prometheus_url: str | None, timeout: float
) -> list[GuardResult]:
    """Evaluate every guard now; with no Prometheus configured a guard is unknown."""
    results = []
    for g in guards:
        answer = query(prometheus_url, g.query, timeout) if prometheus_url else None
        result = judge(g, answer)
        if result.status != GuardStatus.HEALTHY:
            log.info("guard not healthy", guard=g.name, status=str(result.status))
        results.append(result)
    return results
