"""The sidecar's HTTP servers a test starts, closed at its end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.autoscaler import Served


@pytest.fixture
def serve() -> Iterator[list[Served]]:
    """Append each `Served` the test makes; every one is closed after the test."""
    made: list[Served] = []
    yield made
    for s in made:
        s.close()
