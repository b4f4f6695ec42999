"""`batchctl render k8s` (batchctl/overlay.py), the pure part: what the overlay may hold.

The rendered overlay is committed to a site's repository and deployed as a ConfigMap:
a password written in the site's config must not travel into it. The exporter takes
the broker URL from the Secret batchctl-broker (BATCHCTL_BROKER_URL), so the fix is to
write the URL without its password.
"""

from __future__ import annotations

import pytest
import yaml

from batchctl.config import parse_config
from batchctl.overlay import OverlayError, Site, render_overlay

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


def test_a_config_without_a_password_renders_it_as_written() -> None:
    data, text = _config({"url": "redis://redis:6379/0"})
    cfg = parse_config({**data, "claims": {"store": "kubernetes"}}, "site.yml", env={})
    files = render_overlay(cfg, text, SITE)
    assert files["batchctl.yml"] == text
