"""Guard signals: PromQL conditions on the services a batch leans on (DB, Elasticsearch, Redis).

A guard is written as a condition: any sample returned means "unhealthy". Prometheus
unreachable, an error or a malformed answer means "unknown", which the policy treats
like unhealthy: when in doubt, do not scale up.
"""

from __future__ import annotations

import json
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
    """Pure: a guard's status from a decoded /api/v1/query answer (None: no answer)."""
    if not answer or answer.get("status") != "success":
        return GuardResult(guard.name, GuardStatus.UNKNOWN, guard.shed)
    data = answer.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind in ("vector", "matrix") and isinstance(result, list):
        status = GuardStatus.UNHEALTHY if result else GuardStatus.HEALTHY
    elif kind == "scalar" and isinstance(result, list) and len(result) == 2:
        # A bare number: nonzero means the condition holds.
        status = GuardStatus.UNHEALTHY if float(result[1]) != 0 else GuardStatus.HEALTHY
    else:
        status = GuardStatus.UNKNOWN
    return GuardResult(guard.name, status, guard.shed)


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
