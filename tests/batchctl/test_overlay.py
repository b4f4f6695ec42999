"""`batchctl render k8s` (batchctl/overlay.py), the pure part: what the overlay may hold.

The rendered overlay is committed to a site's repository and deployed as a ConfigMap:
a password written in the site's config must not travel into it. The exporter takes
the broker URL from the Secret batchctl-broker (BATCHCTL_BROKER_URL), so the fix is to
write the URL without its password; the sentinels' own password from the same Secret's
key sentinel_password (BATCHCTL_SENTINEL_PASSWORD).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml

from batchctl.config import parse_config
from batchctl.overlay import OverlayError, Site, notes, render_overlay
from batchctl.overlay_objects import check_broker_secret

SITE = Site(base="../base", namespace="jobs", image="registry.example.com/b/batchctl:1.0")
PASSWORD = "hunter2-in-the-file"


def _config(broker: dict[str, object]) -> tuple[dict[str, object], str]:
    data = {"broker": broker, "kubernetes": {"enabled": True, "namespace": "jobs"}}
    return data, yaml.safe_dump(data)


SECRETS = {
    "broker.url": {"url": f"redis://:{PASSWORD}@redis:6379/0"},
    "broker.url, a user's": {"url": f"redis://app:{PASSWORD}@redis:6379/0"},
    "broker.url, ssl_password": {
        "url": f"rediss://redis:6380/0?ssl_cert_reqs=required&ssl_password={PASSWORD}"
    },
    "broker.management_url": {
        "url": "amqp://rabbit:5672/jobs",
        "management_url": f"http://monitor:{PASSWORD}@rabbit:15672",
    },
    "broker.sentinel_kwargs.password": {
        "url": "sentinel://sentinel-0:26379;sentinel://sentinel-1:26379",
        "sentinel_kwargs": {"password": PASSWORD, "socket_timeout": 1},
    },
}


@pytest.mark.parametrize("case", list(SECRETS))
def test_a_password_in_the_config_is_refused_naming_the_key(case: str) -> None:
    data, text = _config(SECRETS[case])
    cfg = parse_config({**data, "claims": {"store": "kubernetes"}}, "site.yml", env={})
    with pytest.raises(OverlayError) as e:
        render_overlay(cfg, text, SITE)
    message = str(e.value)
    assert case.split(",")[0] in message
    assert "Secret batchctl-broker" in message
    assert PASSWORD not in message


def test_the_sentinels_password_is_refused_naming_the_secrets_key() -> None:
    """The sentinels' own password has a key of its own in the Secret (read as
    BATCHCTL_SENTINEL_PASSWORD): one line naming the config key, the Secret and its key."""
    data, text = _config(SECRETS["broker.sentinel_kwargs.password"])
    cfg = parse_config({**data, "claims": {"store": "kubernetes"}}, "site.yml", env={})
    with pytest.raises(OverlayError) as e:
        render_overlay(cfg, text, SITE)
    (line,) = str(e.value).splitlines()
    assert line.startswith("broker.sentinel_kwargs.password: holds a password")
    assert "Secret batchctl-broker (key sentinel_password" in line
    assert "BATCHCTL_SENTINEL_PASSWORD" in line
    assert PASSWORD not in line


def test_other_sentinel_kwargs_are_rendered_as_written() -> None:
    data, text = _config(
        {"url": "sentinel://sentinel-0:26379", "sentinel_kwargs": {"socket_timeout": 1}}
    )
    cfg = parse_config({**data, "claims": {"store": "kubernetes"}}, "site.yml", env={})
    assert render_overlay(cfg, text, SITE)["batchctl.yml"] == text


def test_a_config_without_a_password_renders_it_as_written() -> None:
    data, text = _config({"url": "redis://redis:6379/0"})
    cfg = parse_config({**data, "claims": {"store": "kubernetes"}}, "site.yml", env={})
    files = render_overlay(cfg, text, SITE)
    assert files["batchctl.yml"] == text


def test_with_the_sites_own_secret_the_fix_names_it() -> None:
    """With --broker-secret, the fix for a password in the config names the Secret the
    Deployment reads: the site's, under its key."""
    data, text = _config(SECRETS["broker.url"])
    cfg = parse_config({**data, "claims": {"store": "kubernetes"}}, "site.yml", env={})
    site = replace(SITE, broker_secret="redis-credentials", broker_secret_key="broker-url")
    with pytest.raises(OverlayError) as e:
        render_overlay(cfg, text, site)
    message = str(e.value)
    assert "Secret redis-credentials (key broker-url" in message
    assert "batchctl-broker" not in message and PASSWORD not in message


@pytest.mark.parametrize("key", [".", "..", "..url"])
def test_a_secret_key_kubernetes_refuses_is_refused(key: str) -> None:
    """Kubernetes refuses a Secret key (and a secretKeyRef's key) of '.', '..' or one
    starting with '..' (IsConfigMapKey): the overlay would build, and the Deployment
    would then fail to apply. The render refuses it, naming the option."""
    with pytest.raises(OverlayError, match=r"--broker-secret-key \.\.?(url)?: not a Secret key"):
        check_broker_secret("redis-credentials", key)


def test_a_secret_key_with_single_dots_is_taken() -> None:
    """Dots are allowed elsewhere in a key (Kubernetes': '.a', 'broker.url', 'a..b')."""
    for key in (".url", "broker.url", "a..b", "url."):
        check_broker_secret("redis-credentials", key)


def test_the_autoscalers_rules_select_the_job_the_servicemonitor_gives_it() -> None:
    """The rendered ServiceMonitor scrapes the autoscaler as job batchctl-autoscaler: a
    site that did not choose alerts.autoscaler_selector gets rules and panels on that job
    (with the default job="batchctl" its alerts would never fire); one that chose keeps it."""
    data, text = _config({"url": "redis://redis:6379/0"})
    cfg = parse_config(data, "site.yml", env={})
    files = render_overlay(cfg, text, SITE)
    rules = files["prometheusrule.yaml"]
    assert 'celery_autoscaler_desired_replicas{job="batchctl-autoscaler"' in rules
    assert 'celery_autoscaler_desired_replicas{job="batchctl"' not in rules
    assert 'job=\\"batchctl-autoscaler\\"' in files["dashboards/batchctl.json"]
    assert files["batchctl.yml"] == text  # the site's config itself is not changed
    assert not [n for n in notes(cfg, SITE) if "autoscaler_selector" in n]
    chosen = parse_config(
        {**data, "alerts": {"autoscaler_selector": 'job="batchctl"'}}, "site.yml", env={}
    )
    kept = render_overlay(chosen, text, SITE)["prometheusrule.yaml"]
    assert 'celery_autoscaler_desired_replicas{job="batchctl"' in kept
    assert [n for n in notes(chosen, SITE) if "autoscaler_selector" in n]
    without_operator = replace(SITE, prometheus_operator=False)
    plain = render_overlay(cfg, text, without_operator)["batchctl.rules.yml"]
    assert 'celery_autoscaler_desired_replicas{job="batchctl"' in plain
