"""Rendering the kustomizations with the real kubectl, and validating what they hold.

Built-in kinds are validated by kubernetes-validate (strict: unknown fields fail). It has
no schemas for custom resources, so ServiceMonitor and PrometheusRule are validated
against the prometheus-operator's own CRDs, shipped in tests/k8s/schemas/ (see the
README there), made strict the same way.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from tests.support.paths import ROOT
from tests.support.tools import require_tool

K8S = ROOT / "k8s"
SCHEMAS = ROOT / "tests" / "k8s" / "schemas"
KUBERNETES_VERSION = "1.30"  # the oldest minor we promise to run on (docs/deploy.md)

Doc = dict[str, Any]


def kustomize(path: Path) -> list[Doc]:
    """`kubectl kustomize path` as a list of objects; fails the test with kubectl's error."""
    kubectl = require_tool("kubectl")
    out = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120
    )
    if out.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed: {out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def copy_tree(dest: Path) -> Path:
    """A copy of k8s/ in `dest` as a clean clone has it."""
    tree = dest / "k8s"
    shutil.copytree(K8S, tree)
    return tree


def _strict(schema: Any) -> Any:
    """Unknown fields fail, as kubernetes-validate's strict schemas do: every object
    schema that lists its properties gets additionalProperties: false."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """(apiVersion, kind) -> a strict validator from the CRDs in tests/k8s/schemas/."""
    out = {}
    for path in sorted(SCHEMAS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = _strict(version["schema"]["openAPIV3Schema"])
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
            out[(f"{group}/{version['name']}", kind)] = cls(schema)
    return out


def validate(doc: Doc) -> None:
    """Raise jsonschema.ValidationError when `doc` is not a valid object of its kind."""
    validator = crd_validators().get((doc["apiVersion"], doc["kind"]))
    if validator is not None:
        validator.validate(doc)
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [
        d
        for d in docs
        if d["kind"] == kind and (name is None or d["metadata"]["name"].startswith(name))
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]
