"""The alerts section's selectors and durations: `config check` accepts exactly what
promtool accepts, so that a rendered rule file never fails in Prometheus."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from alerts.common import series
from batchctl.config import ConfigError, parse_config
from tests.support.tools import require_tool

pytestmark = pytest.mark.integration

SELECTORS = [
    'job="batchctl"',
    "job=batchctl",
    'job="a",',
    ' job=~"batch.*" , env!="dev"',
    "job='a'",
    "job=`a`",
    'job="a" env="b"',
    '1job="a"',
    'job="a\\"b"',
    'job=="a"',
]
DURATIONS = ["5m", "1h30m", "1m1h", "5s5m", "1y1y", "500ms", "1m500ms", "292y", "293y", "1.5h"]


def _config_accepts(alerts: dict[str, object]) -> bool:
    try:
        parse_config({"alerts": alerts}, env={})
    except ConfigError:
        return False
    return True


def _promtool_accepts(promtool: str, expr: str, for_: str, tmp_path: Path) -> bool:
    rule = {"alert": "A", "expr": expr, "for": for_}
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [rule]}]}))
    out = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    return out.returncode == 0


@pytest.mark.parametrize("selector", SELECTORS)
def test_a_selector_is_accepted_as_promtool_accepts_it(selector: str, tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    # As the rules use it: with further matchers after it.
    expr = series("celery_queue_length", selector, 'queue="batch1"') + " > 0"
    want = _promtool_accepts(promtool, expr, "5m", tmp_path)
    assert _config_accepts({"selector": selector}) == want, (selector, want)


@pytest.mark.parametrize("duration", DURATIONS)
def test_a_duration_is_accepted_as_promtool_accepts_it(duration: str, tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    want = _promtool_accepts(promtool, "up == 0", duration, tmp_path)
    assert _config_accepts({"down_for": duration}) == want, (duration, want)
    assert _config_accepts({"for_tier": [duration, "10m", "5m"]}) == want
