"""How many examples a hypothesis property runs: all of them in `make test`, a tenth in
the inner loop (`make test-fast`, which sets BATCHCTL_TEST_INNER_LOOP=1), where a quick
answer is worth more than depth. tests/conftest.py loads the matching profile for the
properties that keep hypothesis' default."""

from __future__ import annotations

import os

INNER_LOOP = os.environ.get("BATCHCTL_TEST_INNER_LOOP", "") == "1"

# The inner loop's default for properties that do not set max_examples (hypothesis: 100).
INNER_LOOP_DEFAULT = 10


def examples(n: int) -> int:
    """`n`, or a tenth of it (at least 10) in the inner loop."""
    return max(10, n // 10) if INNER_LOOP else n
