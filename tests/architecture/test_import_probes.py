"""What importing a module drags in, measured in a fresh interpreter (sys.modules).

The pure policy must stay importable without the config machinery or any client: the
simulator, the benchmarks and a reader of the policy need none of them. The loop must not
load the Kubernetes client, which only the kubernetes backend and leader election use.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration  # real servers, subprocesses or tools

HEAVY = ("kombu", "pydantic", "yaml", "redis", "kubernetes", "celery")


def loaded_after(module: str) -> set[str]:
    """Top-level packages in sys.modules after `import module`, in a fresh interpreter."""
    code = (
        "import json, sys\n"
        f"import {module}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(out.stdout))


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("autoscaler.policy", HEAVY),
        ("autoscaler.loop", ("kubernetes",)),
    ],
)
def test_import_loads_nothing_it_does_not_need(module: str, forbidden: tuple[str, ...]) -> None:
    loaded = loaded_after(module)
    assert module.split(".")[0] in loaded  # the probe imported what it says
    assert sorted(loaded & set(forbidden)) == []


def test_the_probe_sees_a_heavy_import() -> None:
    """The probe can fail: the kubernetes backend does load the client."""
    assert "kubernetes" in loaded_after("autoscaler.backends.kubernetes")
    assert {"pydantic", "yaml", "kombu"} <= loaded_after("batchctl.config")
