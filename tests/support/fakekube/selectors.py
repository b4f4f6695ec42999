"""fieldSelector and labelSelector, as the API parses and applies them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.support.fakekube.routes import JSON


def _field_value(obj: JSON, path: str) -> str | None:
    cur: Any = obj
    for p in path.split("."):
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return None if cur is None else str(cur)


def parse_field_selector(text: str) -> Callable[[JSON], bool]:
    """`a=b,c!=d` (also `==`): the subset of field selectors the apiserver supports."""
    tests: list[tuple[str, str, bool]] = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            tests.append((k.strip(), v.strip(), False))
        elif "==" in term:
            k, v = term.split("==", 1)
            tests.append((k.strip(), v.strip(), True))
        elif "=" in term:
            k, v = term.split("=", 1)
            tests.append((k.strip(), v.strip(), True))
        else:
            raise ValueError(f"invalid field selector term {term!r}")
    return lambda obj: all((_field_value(obj, k) == v) == eq for k, v, eq in tests)


_SET_TERM = re.compile(r"^\s*(\S+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def parse_label_selector(text: str) -> Callable[[JSON], bool]:
    """Equality (`=`, `==`, `!=`), set (`in`, `notin`) and existence (`k`, `!k`) terms."""
    # Split on commas outside parentheses.
    terms, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    terms.append(cur)
    # (key, op, values) with op one of in, notin, exists, absent.
    tests: list[tuple[str, str, frozenset[str]]] = []
    for term in filter(None, (t.strip() for t in terms)):
        if m := _SET_TERM.match(term):
            vals = frozenset(v.strip() for v in m[3].split(","))
            tests.append((m[1], m[2], vals))
        elif "!=" in term:
            k, v = (x.strip() for x in term.split("!=", 1))
            tests.append((k, "notin", frozenset([v])))
        elif "=" in term:
            k, v = (x.strip() for x in term.replace("==", "=").split("=", 1))
            tests.append((k, "in", frozenset([v])))
        elif term.startswith("!"):
            tests.append((term[1:].strip(), "absent", frozenset()))
        else:
            tests.append((term, "exists", frozenset()))

    def ok(labels: dict[str, str], key: str, op: str, vals: frozenset[str]) -> bool:
        if op == "exists":
            return key in labels
        if op == "absent":
            return key not in labels
        return (labels.get(key) in vals) == (op == "in")

    return lambda obj: all(ok(obj.get("metadata", {}).get("labels") or {}, *t) for t in tests)
