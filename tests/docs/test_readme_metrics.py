"""README's metrics tables name every family batchctl publishes, with its labels."""

from __future__ import annotations

import re

from batchctl.metrics import ALL_SPECS
from tests.support.paths import ROOT


def readme_metrics() -> dict[str, tuple[str, ...]]:
    """Every family in README's "Metrics" tables, with the labels of its row."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Metrics\n", 1)[1].split("\n## ", 1)[0]
    out: dict[str, tuple[str, ...]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 3 or cells[0] in ("metric", "---"):
            continue
        labels = tuple(x.strip() for x in cells[1].split(",") if x.strip())
        for name in re.findall(r"`(celery_[a-z_]+)`", cells[0]):
            assert name not in out, f"{name} is in the table twice"
            out[name] = labels
    return out


def test_every_family_is_in_the_readme_with_its_labels() -> None:
    documented = readme_metrics()
    published = {s.name: s.labels for s in ALL_SPECS}
    assert set(documented) == set(published), (
        sorted(set(published) - set(documented)),  # missing from the README
        sorted(set(documented) - set(published)),  # no longer published
    )
    wrong = {
        n: (documented[n], labels) for n, labels in published.items() if documented[n] != labels
    }
    assert wrong == {}, "README labels differ from batchctl/metrics.py: {name: (README, code)}"
