"""Loading the cluster configuration: any kubeconfig that does not load is one
KubeConfigError line that quotes none of the file (it may hold a token)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from batchctl.cli import cli
from batchctl.config import KubernetesConfig
from batchctl.kube import KubeConfigError, new_api_client
from tests.support.servers.redis import RedisServer

TOKEN = "tok-3f9a1c-secret"

KUBECONFIGS = {
    "unclosed flow mapping": (
        f"apiVersion: v1\nusers:\n- name: u\n  user: {{token: {TOKEN}\nclusters: [\n",
        "not valid YAML at line 5, column 9",
    ),
    "a tab for an indent": (
        f"apiVersion: v1\nusers:\n\t- {{name: u, user: {{token: {TOKEN}}}}}\n",
        "not valid YAML at line 3, column 1",
    ),
    "a list": (f"- {TOKEN}\n- b\n", "not a kubeconfig"),
    "a string": (f"{TOKEN}\n", "not a kubeconfig"),
    "not UTF-8": ("current-context: caf\udce9\n", "can't decode byte 0xe9"),
}


@pytest.mark.parametrize("case", list(KUBECONFIGS))
def test_a_kubeconfig_that_does_not_load_is_one_line(case: str, tmp_path: Path) -> None:
    text, message = KUBECONFIGS[case]
    path = tmp_path / "kubeconfig"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(KubeConfigError) as info:
        new_api_client(KubernetesConfig(namespace="ns", kubeconfig=str(path)), env={})
    line = str(info.value)
    assert line.startswith(f"cannot load the kubeconfig {path}: "), line
    assert message in line and "\n" not in line
    assert TOKEN not in line and "clusters" not in line


def test_status_with_a_malformed_kubeconfig_warns_in_one_line(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIGS["unclosed flow mapping"][0])
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"kubernetes:\n  namespace: ns\n  kubeconfig: {kubeconfig}\n")
    env = {"BATCHCTL_BROKER_URL": redis_server.url, "KUBERNETES_SERVICE_HOST": None}
    r = CliRunner().invoke(cli, ["status", "-c", str(cfg)], env=env)
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    # The test Redis keeps no data across a restart: `status` says so on a line of its own.
    (warning,) = [ln for ln in r.stderr.splitlines() if "not durable" not in ln]
    assert warning.startswith("warning: replicas unknown: kubernetes: cannot load the kubeconfig")
    assert "not valid YAML at line 5" in warning and TOKEN not in r.output
