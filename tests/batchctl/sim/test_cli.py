"""`batchctl simulate`: the table, the JSON document, the plot and explained errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchctl.sim import BASELINE, OURS


def test_cli_writes_json_and_plot(tmp_path: Path) -> None:
    from batchctl.cli import cli

    tr = tmp_path / "t.yaml"
    tr.write_text(
        "task_seconds: {mean: 2.0, p99: 8.0}\nworker_concurrency: 4\nprefetch_multiplier: 4\n"
        "pod_start_seconds: 20\npriorities: {0: 0.8, 9: 0.2}\narrivals: [[0, 500], [300, 100]]\n"
    )
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    res = CliRunner().invoke(
        cli, ["simulate", str(tr), "--json", str(out_json), "--plot", str(out_png)]
    )
    assert res.exit_code == 0, res.output
    assert "replica-seconds" in res.output and "keda_hpa" in res.output
    doc = json.loads(out_json.read_text())
    required = {
        "replica_seconds",
        "drain_seconds",
        "peak_waiting",
        "peak_replicas",
        "max_step_up_per_minute",
        "scale_actions",
        "inflight_interrupted",
        "cap_violations",
        "seconds_above_1000",
    }
    for name in (OURS, BASELINE):
        assert required <= set(doc["policies"][name])
    assert set(doc["ratios"]) == {"replica_seconds", "drain_seconds"}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_without_baseline_and_with_config(tmp_path: Path) -> None:
    from batchctl.cli import cli

    tr = tmp_path / "t.yaml"
    tr.write_text("task_seconds: {mean: 1.0, p99: 3.0}\narrivals: [[0, 100]]\n")
    conf = tmp_path / "c.yaml"
    conf.write_text("batches:\n  - {queue: batch0, deployment: celery-batch0, max_replicas: 2}\n")
    res = CliRunner().invoke(
        cli, ["simulate", str(tr), "--config", str(conf), "--baseline", "none"]
    )
    assert res.exit_code == 0, res.output
    assert "keda_hpa" not in res.output and "cap 2" in res.output


def test_cli_explains_a_bad_trace(tmp_path: Path) -> None:
    from batchctl.cli import cli

    tr = tmp_path / "t.yaml"
    tr.write_text("arrivals: [[0, 1]]\ntask_seconds: {mean: 1.0, p99: 500.0}\n")
    res = CliRunner().invoke(cli, ["simulate", str(tr)])
    assert res.exit_code == 2 and "too skewed" in res.output


def _trace(tmp_path: Path) -> Path:
    tr = tmp_path / "t.yaml"
    tr.write_text("task_seconds: {mean: 1.0, p99: 3.0}\narrivals: [[0, 100]]\n")
    return tr


@pytest.mark.parametrize("output", ["table", "json"])
def test_cli_refuses_a_plot_it_cannot_write_before_running(tmp_path: Path, output: str) -> None:
    from batchctl.cli import cli

    png = tmp_path / "nonexistent" / "dir" / "x.png"
    res = CliRunner().invoke(
        cli, ["simulate", str(_trace(tmp_path)), "--plot", str(png), "-o", output]
    )
    assert res.exit_code == 2, res.output
    message = f"--plot {png}: no such directory: {png.parent}"
    if output == "json":
        assert json.loads(res.stdout) == {"error": message}
    else:
        assert (res.stdout, res.stderr) == ("", f"error: {message}\n")


def test_cli_a_plot_that_fails_to_save_is_the_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import batchctl.sim
    from batchctl.cli import cli

    def full(*args: object, **kw: object) -> None:
        raise OSError(28, "No space left on device", str(tmp_path / "x.png"))

    monkeypatch.setattr(batchctl.sim, "plot", full)
    res = CliRunner().invoke(
        cli, ["simulate", str(_trace(tmp_path)), "--plot", str(tmp_path / "x.png"), "-o", "json"]
    )
    assert res.exit_code == 2, res.output
    # One JSON document: the error, not the results followed by a traceback.
    assert json.loads(res.stdout) == {
        "error": f"cannot write {tmp_path / 'x.png'}: No space left on device"
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"\x00\x01binary", "a binary file"), (b"arrivals: [[0, 1]]\n", "task_seconds is missing")],
)
def test_cli_explains_an_unusable_trace(tmp_path: Path, content: bytes, message: str) -> None:
    from batchctl.cli import cli

    tr = tmp_path / "t.yaml"
    tr.write_bytes(content)
    res = CliRunner().invoke(cli, ["simulate", str(tr)])
    assert res.exit_code == 2 and message in res.stderr and res.stderr.count("\n") == 1
