"""`batchctl config check`: the file as written, and $BATCHCTL_BROKER_URL on its own line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchctl.cli import cli

ENV_OK = "redis://:env-s3cret@redis.example:6379/2"
ENV_BAD = "http://:env-s3cret@redis.example:6379/2"
SCHEME = "expected a redis://, rediss://, redis+socket://, unix:// or sentinel:// URL"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    good = tmp_path / "good.yml"
    good.write_text("broker:\n  url: redis://:file-s3cret@localhost:6379/0\n")
    http = tmp_path / "http.yml"
    http.write_text("broker:\n  url: http://localhost:6379\n")
    return {"good": str(good), "http": str(http)}


def check(*args: str, env: str | None) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, ["config", "check", *args], env={"BATCHCTL_BROKER_URL": env})
    assert res.exit_code in (0, 2) and "Traceback" not in res.output, res.output
    assert "s3cret" not in res.output, res.output
    return res.exit_code, res.stdout, res.stderr


def test_the_file_is_checked_as_written_even_with_the_variable_set(
    files: dict[str, str],
) -> None:
    code, stdout, stderr = check(files["http"], env=ENV_OK)
    assert code == 2
    assert stderr.splitlines()[:2] == [
        f"{files['http']}: 1 problem(s)",
        f"  - broker.url: {SCHEME}, got scheme 'http' (e.g. redis://localhost:6379/0)",
    ]
    assert stdout == "BATCHCTL_BROKER_URL: OK, redis://:***@redis.example:6379/2 " + (
        "(overrides broker.url)\n"
    )


def test_a_bad_variable_is_blamed_on_the_variable_not_the_file(files: dict[str, str]) -> None:
    code, stdout, stderr = check(files["good"], env=ENV_BAD)
    assert code == 2
    assert stdout == f"{files['good']}: OK (4 batches, broker redis://:***@localhost:6379/0)\n"
    assert stderr.startswith(f"BATCHCTL_BROKER_URL: {SCHEME}, got scheme 'http'")
    assert stderr.rstrip().endswith("(overrides broker.url)") and stderr.count("\n") == 1

    code, stdout, _ = check(files["good"], "-o", "json", env=ENV_BAD)
    doc = json.loads(stdout)
    assert code == 2 and doc["error"].startswith("BATCHCTL_BROKER_URL: expected")
    assert len(doc["problems"]) == 1 and doc["problems"][0] == doc["error"]


def test_both_good_say_so_on_two_lines(files: dict[str, str]) -> None:
    code, stdout, _ = check(files["good"], env=ENV_OK)
    assert code == 0
    assert stdout.splitlines() == [
        f"{files['good']}: OK (4 batches, broker redis://:***@localhost:6379/0)",
        "BATCHCTL_BROKER_URL: OK, redis://:***@redis.example:6379/2 (overrides broker.url)",
    ]
    code, stdout, _ = check(files["good"], "-o", "json", env=ENV_OK)
    doc = json.loads(stdout)
    assert doc["broker"] == "redis://:***@localhost:6379/0"
    assert doc["env"] == {"BATCHCTL_BROKER_URL": "redis://:***@redis.example:6379/2"}
    # Without the variable: the file alone, as before.
    code, stdout, _ = check(files["good"], env=None)
    assert code == 0 and stdout.count("\n") == 1


def test_both_bad_report_both(files: dict[str, str]) -> None:
    code, stdout, stderr = check(files["http"], env=ENV_BAD)
    assert code == 2 and stdout == ""
    assert [ln.split(":")[0] for ln in stderr.splitlines()] == [
        files["http"],
        "  - broker.url",
        "BATCHCTL_BROKER_URL",
    ]
    code, stdout, _ = check(files["http"], "-o", "json", env=ENV_BAD)
    doc = json.loads(stdout)
    assert code == 2 and doc["error"] == f"{files['http']}: 1 problem(s)"
    assert [p.split(":")[0] for p in doc["problems"]] == ["broker.url", "BATCHCTL_BROKER_URL"]


def test_the_file_may_be_given_as_the_other_commands_take_it(files: dict[str, str]) -> None:
    assert check("-c", files["good"], env=None)[:2] == check(files["good"], env=None)[:2]
    assert check("--config", files["http"], env=None)[0] == 2
    code, _, stderr = check(files["good"], "-c", files["http"], env=None)
    assert code == 2
    assert stderr == f"error: two files to check: {files['good']} and {files['http']}; give one\n"


def test_a_directory_or_a_missing_file_is_one_line(tmp_path: Path) -> None:
    for path, why in ((tmp_path, "Is a directory"), (tmp_path / "nope.yml", "No such file")):
        code, stdout, stderr = check(str(path), env=None)
        assert code == 2 and stdout == ""
        assert stderr.startswith(f"{path}: cannot read the file: {why}") and stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("claims", "env_store", "warned"),
    [
        ({"store": "kubernetes", "history_max_events": 1_111}, None, True),
        ({"history_max_events": 500}, "kubernetes", True),
        ({"store": "kubernetes", "history_max_events": 1_112}, None, False),
        ({"store": "redis", "history_max_events": 500}, "kubernetes", False),  # the file wins
        ({"history_max_events": 500}, None, False),  # the redis store keeps what it says
    ],
)
def test_a_short_kubernetes_history_is_a_warning_naming_the_key_and_the_fix(
    tmp_path: Path, claims: dict[str, object], env_store: str | None, warned: bool
) -> None:
    """Issue 21: the kubernetes store keeps >= 1,000 entries only from 1,112 on."""
    path = tmp_path / "batchctl.yml"
    path.write_text(json.dumps({"broker": {"url": "redis://localhost:6379/0"}, "claims": claims}))
    res = CliRunner().invoke(
        cli, ["config", "check", str(path)], env={"BATCHCTL_CLAIMS_STORE": env_store}
    )
    assert res.exit_code == 0, res.output
    logs = [json.loads(line) for line in res.stderr.splitlines()]  # the JSON log lines
    said = [e["problem"] for e in logs if e["event"] == "config" and e["level"] == "warning"]
    if warned:
        (line,) = said
        assert line.startswith("claims.history_max_events: ")
        assert "kubernetes store" in line and line.endswith("set it to 1112 or more")
    else:
        assert said == []
