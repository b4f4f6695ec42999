"""How much a config's problems print: each echoes at most ~80 characters of the input,
and at most 50 are listed, however big or broken the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchctl.cli import cli
from batchctl.config import ConfigError, parse_config


def _alias_bomb(levels: int = 6, width: int = 10) -> str:
    """YAML whose `batches` expands to width**levels values (10**6: megabytes as text; the
    9 levels a user tried print the same few lines, but would exhaust memory unfixed)."""
    lines = ["l0: &l0 [" + ", ".join(["1"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    lines.append(f"batches: *l{levels - 1}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("output", ["table", "json"])
def test_an_alias_bomb_prints_a_few_lines(tmp_path: Path, output: str) -> None:
    f = tmp_path / "bomb.yml"
    f.write_text(_alias_bomb())
    res = CliRunner().invoke(cli, ["config", "check", str(f), "-o", output])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert len(res.output) < 10_000, len(res.output)
    text = json.loads(res.stdout)["problems"] if output == "json" else res.stderr.splitlines()
    assert any("batches[0]: Input should be a valid dictionary" in p for p in text)


@pytest.mark.parametrize(
    ("data", "start"),
    [
        ({"broker": {"max_queues": "x" * 1_000_000}}, "broker.max_queues: Input should be"),
        ({"batches": [["x" * 1_000_000] * 1000]}, "batches[0]: Input should be a valid"),
        ({"k" * 1_000_000: 1}, "kkkk"),
        ({"alerts": {"selector": "x" * 1_000_000}}, "alerts.selector: expected PromQL"),
        ({"broker": {"url": "redis://h/" + "0x" * 500_000}}, "broker.url:"),
    ],
)
def test_a_problem_echoes_little_of_a_huge_value(data: object, start: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={})
    assert all(len(p) <= 500 for p in info.value.problems), info.value.problems
    assert info.value.problems[0].startswith(start)


def test_at_most_50_problems_are_listed(tmp_path: Path) -> None:
    f = tmp_path / "many.yml"
    f.write_text("".join(f"unknown_{i}: 1\n" for i in range(120)))
    res = CliRunner().invoke(cli, ["config", "check", str(f)])
    lines = res.stderr.splitlines()
    assert res.exit_code == 2 and lines[0] == f"{f}: 120 problem(s)"
    assert len(lines) == 52 and lines[-1] == "  - ... and 70 more"
    res = CliRunner().invoke(cli, ["config", "check", str(f), "-o", "json"])
    doc = json.loads(res.stdout)
    assert doc["error"] == f"{f}: 120 problem(s)"
    assert len(doc["problems"]) == 51 and doc["problems"][-1] == "... and 70 more"
