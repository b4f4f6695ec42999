"""The alerts' runbooks, one Markdown page per alert, shipped inside the package.

They travel with the code that raises the alerts, so the exporter serves them itself
at /runbooks/<Alert> (exporter/http/server.py): the default `alerts.runbook_url` resolves
wherever the exporter runs, without a documentation site. A site that publishes its
own copy points `alerts.runbook_url` there.
"""

from __future__ import annotations

import re
from importlib import resources

# An alert name as the rules spell it (CamelCase), nothing that could leave the folder.
_NAME = re.compile(r"^[A-Z][A-Za-z0-9]{0,80}\Z")


def runbook(alert: str) -> str | None:
    """The Markdown text of `alert`'s runbook, or None when there is none (or the name
    is not an alert name)."""
    if not _NAME.match(alert) or alert == "README":
        return None
    page = resources.files(__name__).joinpath(f"{alert}.md")
    return page.read_text(encoding="utf-8") if page.is_file() else None


def runbook_names() -> list[str]:
    """Every alert that has a runbook, sorted."""
    return sorted(
        p.name[:-3]
        for p in resources.files(__name__).iterdir()
        if p.name.endswith(".md") and p.name != "README.md" and _NAME.match(p.name[:-3])
    )
