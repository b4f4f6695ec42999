"""The Grafana dashboard's panels and their queries as Prometheus receives them."""

from __future__ import annotations

from typing import Any

# What Grafana substitutes before a query reaches Prometheus ("All" is ".*").
SUBSTITUTIONS = {"$namespace": ".*", "$queue": ".*", "$__rate_interval": "1m", "$__range": "6h"}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """The dashboard's panels, rows left out."""
    return [p for p in board["panels"] if p["type"] != "row"]


def substitute(expr: str) -> str:
    for var, value in SUBSTITUTIONS.items():
        expr = expr.replace(var, value)
    assert "$" not in expr, f"unsubstituted variable in {expr!r}"
    return expr


def panel_queries(board: dict[str, Any]) -> dict[str, str]:
    """Every panel query with the variables substituted, keyed by panel title and refId."""
    return {
        f"{p['title']} / {t['refId']}": substitute(t["expr"])
        for p in panels(board)
        for t in p["targets"]
    }
