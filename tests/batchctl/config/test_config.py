"""Config validation: every bad input names its key path and the fix; exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from batchctl.cli import cli
from batchctl.config import ConfigError, load_config, parse_config
from batchctl.redact import redact_url
from tests.support.paths import ROOT

GOOD = {
    "broker": {"url": "redis://localhost:6379/0"},
    "kubernetes": {"namespace": "court-listener"},
    "batches": [{"queue": "batch0", "deployment": "celery-batch0"}],
    "thresholds": [100, 500, 1000],
}


def problems(data: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={})
    return info.value.problems


def test_defaults_have_four_batches() -> None:
    cfg = parse_config({}, env={})
    assert [b.queue for b in cfg.batches] == ["batch0", "batch1", "batch2", "batch3"]
    assert [b.deployment for b in cfg.batches] == [f"celery-batch{i}" for i in range(4)]
    assert cfg.broker.priority_steps == (0, 3, 6, 9)
    assert cfg.exporter.listen == "0.0.0.0:9808"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            {**GOOD, "brokr": {}}, ["brokr: unknown key; did you mean 'broker'?"], id="typo-top"
        ),
        pytest.param(
            {**GOOD, "broker": {"url": "redis://x:1/0", "max_queue": 5}},
            ["broker.max_queue: unknown key; did you mean 'max_queues'?"],
            id="typo-nested",
        ),
        pytest.param(
            {**GOOD, "broker": {"url": "http://localhost:6379"}},
            ["broker.url: expected a redis://, rediss://, redis+socket://, unix:// or sentinel://"],
            id="bad-scheme",
        ),
        pytest.param(
            {**GOOD, "broker": {"url": "redis://localhost:6379/zero"}},
            ["broker.url: the database must be a number, got 'zero'"],
            id="bad-db",
        ),
        pytest.param(
            {**GOOD, "broker": {"url": "redis://localhost:port/0"}},
            ["broker.url: bad port"],
            id="bad-port",
        ),
        pytest.param(
            {**GOOD, "broker": {"max_queues": "many"}},
            ["broker.max_queues: Input should be a valid integer"],
            id="wrong-type",
        ),
        pytest.param(
            {**GOOD, "broker": {"priority_steps": [3, 0]}},
            ["broker.priority_steps: steps must be unique and ascending"],
            id="steps-order",
        ),
        pytest.param(
            {**GOOD, "thresholds": [500, 100, 1000]},
            ["thresholds: expected three ascending positive numbers"],
            id="thresholds-order",
        ),
        pytest.param(
            {
                **GOOD,
                "batches": [
                    {"queue": "batch0", "deployment": "celery-batch0"},
                    {"queue": "batch0", "deployment": "celery-batch1"},
                ],
            },
            ["batches[1].queue: duplicate queue 'batch0'"],
            id="duplicate-queue",
        ),
        pytest.param(
            {**GOOD, "batches": [{"queue": "batch0"}]},
            ["batches[0].deployment: required key is missing"],
            id="missing-key",
        ),
        pytest.param(
            {**GOOD, "batches": [{"queue": "batch0", "deployment": "Celery_Batch0"}]},
            ["batches[0].deployment: must be a Kubernetes Deployment name"],
            id="bad-deployment-name",
        ),
        pytest.param(
            {**GOOD, "batches": [{"queue": "b", "deployment": "d", "max_replicas": 25}]},
            ["batches[0]: max_replicas 25 is over 20: set allow_over_20: true"],
            id="over-20",
        ),
        pytest.param(
            {**GOOD, "batches": [{"queue": "b", "deployment": "d", "max_replicas": 12}]},
            ["batches[0]: max_replicas 12 is over 10: set allow_big: true"],
            id="big",
        ),
        pytest.param(
            {**GOOD, "exporter": {"listen": "9808"}},
            ["exporter.listen: expected HOST:PORT, e.g. 0.0.0.0:9808"],
            id="listen",
        ),
        pytest.param(
            {**GOOD, "kubernetes": {"namespace": "Court Listener"}},
            ["kubernetes.namespace: must be a Kubernetes namespace name"],
            id="namespace",
        ),
        pytest.param([1, 2], ["(top level): expected a mapping of keys, got list"], id="not-a-map"),
    ],
)
def test_bad_config_names_key_and_fix(data: object, expected: list[str]) -> None:
    got = problems(data)
    assert len(got) == len(expected), got
    for line, want in zip(got, expected, strict=True):
        assert line.startswith(want), (line, want)


@pytest.mark.parametrize(
    ("data", "line"),
    [
        ({"broker": {"max_queues": 0}},
         "broker.max_queues: Input should be greater than or equal to 1 (got 0)"),
        ({"thresholds": [100, 500]}, "thresholds: too few items, item 3 is missing"),
        ({"autoscaler": {"guards": [{"name": "Bad Name", "query": "up"}]}},
         "autoscaler.guards[0].name: String should match pattern '^[a-z][a-z0-9_]*$' "
         "(got 'Bad Name')"),
        ({"batches": [{"queue": "q w", "deployment": "d"}]},
         "batches[0].queue: must be 1-200 characters of letters, digits and _ . : @ -, got 'q w'"),
    ],
)  # fmt: skip
def test_a_problem_quotes_what_it_found(data: dict[str, object], line: str) -> None:
    assert problems(data) == [line]


def test_every_problem_reported_at_once() -> None:
    got = problems({"brokr": {}, "thresholds": [1, 1, 1], "exporter": {"listen": "x"}})
    assert len(got) == 3
    assert {p.split(":")[0] for p in got} == {"brokr", "thresholds", "exporter.listen"}


def test_checks_across_sections_are_listed_with_the_field_problems() -> None:
    """Duplicates and the lease margin come in the same pass as a wrong type elsewhere,
    one line each; a check whose section has a problem of its own is not run against
    defaults (the lease margin needs kubernetes.request_timeout_seconds)."""
    lease = {"enabled": True, "lease_duration_seconds": 5, "renew_deadline_seconds": 4.5}
    twice = [{"queue": "b1", "deployment": "d1"}, {"queue": "b1", "deployment": "d1"}]
    got = problems(
        {"exporter": {"listen": "x"}, "autoscaler": {"leader_election": lease}, "batches": twice}
    )
    assert [p.split(":")[0] for p in got] == [
        "exporter.listen",
        "batches[1].queue",
        "batches[1].deployment",
        "autoscaler.leader_election",
    ]
    got = problems(
        {
            "kubernetes": {"request_timeout_seconds": "x"},
            "autoscaler": {"leader_election": lease},
            "batches": twice,
        }
    )
    assert [p.split(":")[0] for p in got] == [
        "kubernetes.request_timeout_seconds",
        "batches[1].queue",
        "batches[1].deployment",
    ]


def test_password_never_echoed() -> None:
    got = problems({"broker": {"url": "redis://:s3cret@host:6379/zero"}})
    assert got and all("s3cret" not in p for p in got)


def test_env_overrides_broker_url() -> None:
    cfg = parse_config(GOOD, env={"BATCHCTL_BROKER_URL": "rediss://:pw@redis.example:6380/2"})
    assert cfg.broker.url == "rediss://:pw@redis.example:6380/2"


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("redis://:hunter2@host:6379/0", "redis://:***@host:6379/0"),
        ("rediss://user:hunter2@host/1", "rediss://user:***@host/1"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("unix:///run/redis.sock", "unix:///run/redis.sock"),
    ],
)
def test_redact_url(url: str, safe: str) -> None:
    assert redact_url(url) == safe


def test_cli_config_check(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text("broker:\n  url: redis://:pw@localhost:6379/0\nthresholds: [100, 500, 1000]\n")
    bad = tmp_path / "bad.yml"
    bad.write_text("broker:\n  url: redis://localhost:6379/0\n  discover_queue: true\n")
    broken = tmp_path / "broken.yml"
    broken.write_text("broker: [unclosed\n")
    runner = CliRunner()

    ok = runner.invoke(cli, ["config", "check", str(good)])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output and "pw" not in ok.output

    res = runner.invoke(cli, ["config", "check", str(bad)])
    assert res.exit_code == 2
    assert "broker.discover_queue: unknown key; did you mean 'discover_queues'?" in res.output
    assert "Traceback" not in res.output

    res = runner.invoke(cli, ["config", "check", str(broken)])
    assert res.exit_code == 2
    assert "not valid YAML at line" in res.output

    res = runner.invoke(cli, ["config", "check", str(tmp_path / "missing.yml")])
    assert res.exit_code == 2
    assert "cannot read the file" in res.output


def test_load_config_file(tmp_path: Path) -> None:
    f = tmp_path / "c.yml"
    f.write_text("batches:\n  - queue: q1\n    deployment: d1\n    max_replicas: 3\n")
    cfg = load_config(f, env={})
    assert cfg.batches[0].max_replicas == 3
    assert cfg.batch("q1") is cfg.batches[0]
    assert cfg.batch("nope") is None


def test_example_config_is_valid() -> None:
    example = ROOT / "docs" / "batchctl.example.yml"
    cfg = load_config(example, env={})
    assert len(cfg.batches) == 4


def test_namespace_defaults_to_the_pods_own(tmp_path: Path) -> None:
    from batchctl.config.model import pod_namespace

    sa = tmp_path / "serviceaccount"
    assert pod_namespace(sa) == "default"  # not in a pod
    sa.mkdir()
    (sa / "namespace").write_text("batch-jobs\n")
    assert pod_namespace(sa) == "batch-jobs"
    (sa / "namespace").write_text("")
    assert pod_namespace(sa) == "default"


@pytest.mark.parametrize(
    ("data", "want_steps", "warned"),
    [
        # The old name alone: moved to the new one, with a warning that names both.
        ({"broker": {"old_steps": [0, 5]}}, (0, 5), ["broker.old_steps: deprecated, use"]),
        # Both: the new one wins, and the warning says the old one was ignored.
        (
            {"broker": {"old_steps": [0, 5], "priority_steps": [0, 9]}},
            (0, 9),
            ["broker.old_steps: deprecated and ignored"],
        ),
        ({"broker": {"priority_steps": [0, 9]}}, (0, 9), []),
    ],
)
def test_a_renamed_key_keeps_working_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, data: dict, want_steps: tuple[int, ...], warned: list[str]
) -> None:
    from batchctl.config import load

    monkeypatch.setattr(load, "RENAMED", ((("broker", "old_steps"), ("broker", "priority_steps")),))
    warnings: list[str] = []
    cfg = parse_config(data, env={}, warnings=warnings)
    assert cfg.broker.priority_steps == want_steps
    assert len(warnings) == len(warned)
    for got, prefix in zip(warnings, warned, strict=True):
        assert got.startswith(prefix) and "broker.priority_steps" in got
    # The caller's data is not modified.
    assert "old_steps" in data["broker"] or not warned


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b"\x7fELF\x02\x01\x01\x00", "a binary file, not a YAML", id="binary"),
        pytest.param(b"broker: {} # caf\xe9", "not UTF-8 text (byte 0xe9 at offset 16)", id="l1"),
        pytest.param(b"", "empty config (no keys)", id="empty"),
        pytest.param(b"# nothing but a comment\n\n", "empty config (no keys)", id="comments-only"),
        pytest.param(b"broker: [unclosed\n", "not valid YAML at line 2", id="bad-yaml"),
        # PyYAML would keep the last silently: the first block's URL would be lost.
        pytest.param(
            b"broker:\n  url: redis://a:6379/0\nbroker:\n  timeout_seconds: 2\n",
            "not valid YAML at line 3, column 1: duplicate key 'broker' (first on line 1)",
            id="duplicate-section",
        ),
        pytest.param(
            b"broker:\n  url: redis://a:6379/0\n  url: redis://b:6379/0\n",
            "not valid YAML at line 3, column 3: duplicate key 'url' (first on line 2)",
            id="duplicate-key",
        ),
    ],
)  # fmt: skip
def test_an_unusable_file_is_one_line_and_exit_2(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    f = tmp_path / "c.yml"
    f.write_bytes(content)
    res = CliRunner().invoke(cli, ["config", "check", str(f)])
    assert res.exit_code == 2, res.output
    assert res.output.count("\n") == 1 and "Traceback" not in res.output
    assert res.output.startswith(f"{f}: {expected}"), res.output
    with pytest.raises(ConfigError):
        load_config(f, env={})


def test_yaml_merge_keys_may_repeat_what_they_merge(tmp_path: Path) -> None:
    f = tmp_path / "c.yml"
    f.write_text(
        "batches:\n"
        "  - &b {queue: batch0, deployment: celery-batch0, max_replicas: 3}\n"
        "  - <<: *b\n"
        "    queue: batch1\n"
        "    deployment: celery-batch1\n"
    )
    cfg = load_config(f, env={})
    assert [(b.queue, b.max_replicas) for b in cfg.batches] == [("batch0", 3), ("batch1", 3)]


def test_a_bom_is_fine_and_a_directory_is_unreadable(tmp_path: Path) -> None:
    f = tmp_path / "c.yml"
    f.write_bytes(b"\xef\xbb\xbfthresholds: [100, 500, 1000]\n")
    assert load_config(f, env={}).thresholds == (100, 500, 1000)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, env={})
    assert info.value.render().startswith(f"{tmp_path}: cannot read the file")
    assert "\n" not in info.value.render()


def test_the_old_master_name_key_still_works(tmp_path: Path) -> None:
    warnings: list[str] = []
    cfg = parse_config({"broker": {"sentinel_master_name": "cluster-a"}}, env={}, warnings=warnings)
    assert cfg.broker.master_name == "cluster-a"
    assert warnings == ["broker.sentinel_master_name: deprecated, use broker.master_name instead"]


def test_kombu_transport_options_are_checked() -> None:
    assert problems({"broker": {"sep": ""}})[0].startswith("broker.sep: must not be empty")
    got = problems({"broker": {"sentinel_kwargs": {"password": "s3cret-x", "colour": "red"}}})
    assert got[0].startswith("broker.sentinel_kwargs: unknown key 'colour'")
    got = problems({"broker": {"sentinel_kwargs": {"password": ["s3cret-y"]}}})
    assert got and all("s3cret" not in p for p in got)


@pytest.mark.parametrize(
    ("url", "note"),
    [
        ("rediss://h:6380/0", "the server's certificate is not verified"),
        ("redis+socket:///run/r.sock?db=3", "ignores ?db= (kombu reads database 0)"),
    ],
)
def test_urls_with_a_surprising_meaning_warn(url: str, note: str) -> None:
    warnings: list[str] = []
    parse_config({"broker": {"url": url}}, env={}, warnings=warnings)
    assert any(note in w for w in warnings), warnings


def _float_fields(model: type, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every float field of `model` and its sections (batches: the first)."""
    from pydantic import BaseModel

    out: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        if ann is float or float in args:
            out.append((*path, name))
        for sub in (ann, *args):
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                out.extend(_float_fields(sub, (*path, name)))
    return out


def _nest(path: tuple[str, ...], value: object) -> dict[str, object]:
    if path[0] == "batches":
        return {"batches": [{"queue": "b", "deployment": "d", path[1]: value}]}
    return {path[0]: _nest(path[1:], value)} if len(path) > 1 else {path[0]: value}


FLOAT_FIELDS = _float_fields(parse_config({}, env={}).__class__)


def test_every_float_field_is_found() -> None:
    # The walk above sees every section, so the test below covers every float field.
    assert ("claims", "default_ttl") in FLOAT_FIELDS
    assert ("batches", "step_interval_seconds") in FLOAT_FIELDS
    assert ("autoscaler", "leader_election", "renew_deadline_seconds") in FLOAT_FIELDS
    assert len(FLOAT_FIELDS) > 25


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
@pytest.mark.parametrize("path", FLOAT_FIELDS, ids=".".join)
def test_no_float_field_takes_inf_or_nan(path: tuple[str, ...], value: float) -> None:
    got = problems(_nest(path, value))
    key = ".".join(path).replace("batches.", "batches[0].")
    assert any(p.startswith(f"{key}: must be a finite number") for p in got), got


def test_inf_durations_and_sentinel_numbers_are_one_line_each(tmp_path: Path) -> None:
    f = tmp_path / "c.yml"
    f.write_text("claims: {default_ttl: .inf, max_ttl: .inf}\n")
    res = CliRunner().invoke(cli, ["config", "check", str(f)])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "claims.default_ttl: must be a finite number, not inf" in res.output
    assert "claims.max_ttl: must be a finite number" in res.output
    got = problems({"broker": {"sentinel_kwargs": {"socket_timeout": float("inf")}}})
    assert got == [
        "broker.sentinel_kwargs: socket_timeout: must be a finite number (not .inf or .nan)"
    ]


@pytest.mark.parametrize("value", ["9" * 400 + "w", "36501d", 1e300])
def test_claim_durations_are_at_most_100_years(value: object) -> None:
    got = problems({"claims": {"max_ttl": value}})
    assert len(got) == 1 and got[0].startswith("claims.max_ttl: "), got
    assert len(got[0]) < 200


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"alerts": {"selector": "job=batchctl"}}, "alerts.selector: expected PromQL label"),
        ({"alerts": {"autoscaler_selector": 'job="a",'}}, "alerts.autoscaler_selector: expected"),
        ({"alerts": {"for_tier": ["1m1h", "10m", "5m"]}}, "alerts.for_tier: expected three"),
        ({"alerts": {"down_for": "5s5m"}}, "alerts.down_for: expected a Prometheus duration"),
        ({"alerts": {"down_for": "293y"}}, "alerts.down_for: expected a Prometheus duration"),
        ({"alerts": {"dashboard_uid": "a b"}}, "alerts.dashboard_uid: a Grafana dashboard uid"),
        ({"alerts": {"dashboard_uid": "u" * 41}}, "alerts.dashboard_uid: a Grafana dashboard uid"),
        ({"autoscaler": {"prometheus_url": "ftp://x"}}, "autoscaler.prometheus_url: expected an"),
        ({"autoscaler": {"prometheus_url": "http://p:9090?x=1"}}, "autoscaler.prometheus_url"),
        (
            {"autoscaler": {"guards": [{"name": "db", "query": "up == 0"}]}},
            "autoscaler: guards need prometheus_url",
        ),
        (
            {"autoscaler": {"snapshot_url": "http://127.0.0.1:9808/api/v1/snapshot"}},
            "autoscaler.snapshot_url: expected the base URL without a path or query, "
            "e.g. http://127.0.0.1:9808: batchctl adds /api/v1/snapshot itself",
        ),
        (
            {"exporter": {"autoscaler_url": "http://127.0.0.1:9809/api/v1/decisions"}},
            "exporter.autoscaler_url: expected the base URL without a path",
        ),
        ({"exporter": {"autoscaler_url": "http://:9809"}}, "exporter.autoscaler_url: expected"),
    ],
)
def test_values_that_would_fail_later_are_refused_now(data: object, expected: str) -> None:
    got = problems(data)
    assert len(got) == 1 and got[0].startswith(expected), got


def test_the_forms_prometheus_grafana_and_the_sidecar_take_are_accepted() -> None:
    cfg = parse_config(
        {
            "alerts": {
                "selector": ' job=~"batchctl|celery" , namespace!="dev",env=\'prod\'',
                "autoscaler_selector": "",
                "for_tier": ["1h30m", "10m", "5m30s"],
                "down_for": "1y2w3d4h5m6s7ms",
                "dashboard_uid": "A_b-" + "c" * 36,
            },
            "autoscaler": {
                "prometheus_url": "https://prometheus.example/prom/",
                "snapshot_url": "http://[::1]:9808/",
                "guards": [{"name": "db", "query": "up == 0"}],
            },
        },
        env={},
    )
    assert cfg.alerts.for_tier[0] == "1h30m"


def test_a_url_problem_never_echoes_its_password() -> None:
    got = problems({"autoscaler": {"prometheus_url": "ftp://u:s3cret@p:9090"}})
    assert got and all("s3cret" not in p for p in got)


def test_a_bad_broker_url_variable_is_blamed_on_the_variable() -> None:
    env = {"BATCHCTL_BROKER_URL": "http://:env-s3cret@h:6379/0"}
    with pytest.raises(ConfigError) as info:
        parse_config(GOOD, env=env)
    (line,) = info.value.problems
    assert line.startswith("BATCHCTL_BROKER_URL: expected a redis://")
    assert line.endswith("(overrides broker.url)") and "s3cret" not in line


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"batches": [{"queue": "batch1\n", "deployment": "celery-batch1"}]}, "batches[0].queue"),
        ({"batches": [{"queue": "b1", "deployment": "celery-b1\n"}]}, "batches[0].deployment"),
        ({"autoscaler": {"leader_election": {"lease_name": "lease\n"}}}, "lease_name"),
        ({"exporter": {"listen": "h\udce9st:9808"}}, "exporter.listen"),
    ],
)
def test_a_trailing_newline_or_a_non_ascii_host_is_refused(data: dict, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(data, env={})
    assert any(key in p for p in e.value.problems), e.value.problems


def test_leader_election_follows_the_backend_in_use() -> None:
    cfg = parse_config({"autoscaler": {"backend": "kubernetes"}}, env={}).autoscaler
    assert cfg.leader_election_on() and not cfg.leader_election_on("dry-run")
    forced = parse_config({"autoscaler": {"leader_election": {"enabled": True}}}, env={})
    assert forced.autoscaler.leader_election_on("dry-run")


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("0.0.0.0:9808", "http://127.0.0.1:9808"),
        ("127.0.0.1:19808", "http://127.0.0.1:19808"),
        ("[::]:9900", "http://[::1]:9900"),
        ("[::1]:9900", "http://[::1]:9900"),
        ("10.1.2.3:9100", "http://10.1.2.3:9100"),
        ("127.0.0.1:0", "http://127.0.0.1:9808"),  # any free port: the default
        ("0.0.0.0:00", "http://127.0.0.1:9808"),
        ("0.0.0.0:09808", "http://127.0.0.1:9808"),
        ("[fe80::1%eth0]:9808", "http://[fe80::1%25eth0]:9808"),
    ],
)
def test_snapshot_url_follows_the_exporter_listen_address(listen: str, expected: str) -> None:
    cfg = parse_config({"exporter": {"listen": listen}}, env={})
    assert cfg.snapshot_url == expected
    # Set explicitly, it wins, null included (read in process).
    explicit = {"exporter": {"listen": listen}, "autoscaler": {"snapshot_url": None}}
    assert parse_config(explicit, env={}).snapshot_url is None
    explicit["autoscaler"] = {"snapshot_url": "http://exporter:9808"}
    assert parse_config(explicit, env={}).snapshot_url == "http://exporter:9808"
