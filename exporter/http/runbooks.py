"""/runbooks and /runbooks/<Alert>: the alerts' runbooks, served by the exporter itself.

The default `alerts.runbook_url` points here, so an alert's link resolves wherever the
exporter can be reached (through `kubectl port-forward`, an Ingress, the API server's
service proxy) without a documentation site. The page is the runbook's Markdown as
written, escaped, in a readable page: no Markdown renderer is needed to read it.
"""

from __future__ import annotations

from batchctl.runbooks import runbook, runbook_names
from exporter.status.parts import STYLE, esc

PREFIX = "/runbooks"


def runbook_page(path: str) -> tuple[int, str]:
    """(HTTP status, HTML) for a GET of `path` under /runbooks."""
    name = path[len(PREFIX) :].strip("/")
    if name.endswith(".md"):  # links written for the repository's copy work too
        name = name[:-3]
    if not name:
        items = "".join(
            f'<li><a href="{PREFIX}/{esc(n)}">{esc(n)}</a></li>' for n in runbook_names()
        )
        return 200, _page("batchctl runbooks", f"<ul>{items}</ul>")
    text = runbook(name)
    if text is None:
        body = f'<p>No runbook named {esc(name)}. <a href="{PREFIX}/">All runbooks</a>.</p>'
        return 404, _page("batchctl runbooks", body)
    body = (
        f'<p class="meta"><a href="{PREFIX}/">All runbooks</a> · <a href="/status">status</a></p>'
        f'<pre style="white-space: pre-wrap; font-family: inherit; max-width: 60rem">'
        f"{esc(text)}</pre>"
    )
    return 200, _page(f"Runbook: {name}", body)


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{esc(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>{body}</body></html>"
    )
