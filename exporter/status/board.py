"""The /status page's inputs beyond the snapshot: the autoscaler's decisions, fetched
from the sidecar beside us, and the last snapshot in which the broker answered.

The exporter does not decide anything (one observer per pod): the sidecar serves its
latest decisions at /api/v1/decisions (a standby serves the leader's copy from the
Lease). The fetch has a short timeout (`exporter.autoscaler_timeout_seconds`); when it
fails the page says "autoscaler: unknown" and why.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from batchctl.config import Config
from batchctl.decisions import Decisions
from batchctl.redact import scrub_urls
from exporter.live import Live
from exporter.snapshot import Snapshot
from exporter.status.page import render_status

PATH = "/api/v1/decisions"


def fetch_decisions(url: str | None, timeout: float) -> tuple[Decisions | None, str]:
    """The sidecar's decisions, or None and why not (never a credential)."""
    if url is None:
        return None, "exporter.autoscaler_url is not set"
    target = url.rstrip("/") + PATH
    try:
        with urllib.request.urlopen(target, timeout=timeout) as resp:
            return Decisions.from_json(json.loads(resp.read())), ""
    except urllib.error.HTTPError as e:
        return None, f"HTTP {e.code} from the autoscaler"
    except (OSError, ValueError) as e:  # refused, timed out, not JSON
        return None, scrub_urls(f"no answer from {target}: {type(e).__name__}")
    except (KeyError, TypeError, AttributeError):
        return None, "the autoscaler's answer is not a decisions document"


def status_page(
    cfg: Config,
    snap: Snapshot,
    live: Live | None,
    now: float | None = None,
    history: str = "",
) -> str:
    decisions, note = fetch_decisions(
        cfg.exporter.autoscaler_url, cfg.exporter.autoscaler_timeout_seconds
    )
    return render_status(
        snap,
        cfg.thresholds,
        cfg.exporter.status_refresh_seconds,
        now,
        batches=cfg.batches,
        last_good=live.last_good if live is not None else None,
        decisions=decisions,
        decisions_note=note,
        history=history,
        prices=cfg.prices_of,
    )
