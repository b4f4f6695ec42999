"""Check PromQL expressions with the real parser: `promtool check rules` on a throwaway file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml


def check_promql(promtool: str, exprs: dict[str, str], tmp_path: Path) -> None:
    """Fail naming the first expression that promtool cannot parse; `exprs` maps name -> expr."""
    for i, (name, expr) in enumerate(exprs.items()):
        # One file per expression, so a failure names its expression.
        path = tmp_path / f"promql-{i}.yml"
        rule = {"record": f"batchctl:check_{i}", "expr": expr}
        path.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": [rule]}]}))
        out = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, f"{name}: {expr!r} does not parse:\n{out.stdout}{out.stderr}"
