"""JSON as we emit it: standard JSON only, never the `NaN` or `Infinity` of Python's json.

Every JSON document batchctl writes (the exporter's /api/v1/snapshot, the sidecar's
/api/v1/decisions, the CLI's `-o json`) goes through `dumps`: a float that is not finite
becomes null first, and `allow_nan=False` makes sure nothing else slips through.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """`value` with every float that is not finite (inf, -inf, nan) replaced by None,
    through dicts, lists and tuples (tuples become lists, as JSON has them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """json.dumps of `finite(value)`, standard JSON only (`allow_nan=False`)."""
    return json.dumps(finite(value), allow_nan=False, **kwargs)
