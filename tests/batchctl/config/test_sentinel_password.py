"""The sentinels' password from the environment: BATCHCTL_SENTINEL_PASSWORD.

The base Deployment fills it from the Secret batchctl-broker (key sentinel_password,
optional), so that a Sentinel site's config, committed and deployed as a ConfigMap,
holds no password (`render k8s` refuses one: tests/batchctl/test_overlay.py). The real
sentinels that require it: tests/batchctl/test_brokerurl.py.
"""

from __future__ import annotations

import pytest

from batchctl.config import ConfigError, parse_config
from batchctl.redact import scrub

SENTINELS = "sentinel://:master-pw@sentinel-0:26379;sentinel://:master-pw@sentinel-1:26379"
ENV = "BATCHCTL_SENTINEL_PASSWORD"


def broker(**keys: object) -> dict[str, object]:
    return {"broker": {"url": SENTINELS, **keys}, "kubernetes": {"enabled": False}}


def test_the_variable_is_the_sentinels_password() -> None:
    cfg = parse_config(broker(), env={ENV: "from-the-secret-1"})
    assert cfg.broker.sentinel_kwargs == {"password": "from-the-secret-1"}


def test_it_joins_the_files_other_sentinel_kwargs_and_overrides_its_password() -> None:
    data = broker(sentinel_kwargs={"socket_timeout": 2, "password": "in-the-file"})
    cfg = parse_config(data, env={ENV: "from-the-secret-2"})
    assert cfg.broker.sentinel_kwargs == {"socket_timeout": 2, "password": "from-the-secret-2"}


@pytest.mark.parametrize("env", [{}, {ENV: ""}])
def test_unset_or_empty_leaves_the_file_as_written(env: dict[str, str]) -> None:
    # An optional key the Secret does not have leaves the variable unset.
    cfg = parse_config(broker(sentinel_kwargs={"socket_timeout": 2}), env=env)
    assert cfg.broker.sentinel_kwargs == {"socket_timeout": 2}
    assert parse_config(broker(), env=env).broker.sentinel_kwargs is None


def test_it_is_masked_from_then_on() -> None:
    parse_config(broker(), env={ENV: "from-the-secret-3"})
    assert scrub("AUTH failed: from-the-secret-3") == "AUTH failed: ***"


def test_without_sentinels_it_is_unused_and_said() -> None:
    warnings: list[str] = []
    data = {"broker": {"url": "redis://redis:6379/0"}, "kubernetes": {"enabled": False}}
    cfg = parse_config(data, env={ENV: "from-the-secret-4"}, warnings=warnings)
    assert cfg.broker.sentinel_kwargs is None
    assert warnings == [
        f"{ENV}: set, but broker.url is not a sentinel:// URL: the sentinels' password is not used"
    ]


def test_a_problem_never_echoes_it() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(broker(sentinel_kwargs={"colour": "red"}), env={ENV: "from-the-secret-5"})
    assert "from-the-secret-5" not in e.value.render()
