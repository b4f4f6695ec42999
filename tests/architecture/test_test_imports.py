"""Tests do not lean on each other (issue 18): no module under tests/ imports a test module
(tests/**/test_*.py) or tests.conftest; shared helpers live in tests/support/.

Read from the source (ast), so that an import inside a function is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def imported(path: Path, root: Path) -> set[str]:
    """Every module `path` (under the package directory `root`) imports, absolute."""
    package = ".".join(path.relative_to(root.parent).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            out |= {module} | {f"{module}.{a.name}" for a in node.names}
    return out


def leaning(root: Path) -> list[str]:
    """'importer -> imported' for every import of a test module or of the conftest."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        for module in sorted(imported(path, root)):
            parts = module.split(".")
            if parts[0] == root.name and any(
                p == "conftest" or p.startswith("test_") for p in parts[1:]
            ):
                bad.append(f"{path.relative_to(root.parent)} -> {module}")
    return bad


def test_no_module_under_tests_imports_a_test_module() -> None:
    assert len(list(TESTS.rglob("test_*.py"))) > 100  # the walk found the suite
    assert leaning(TESTS) == []


def test_the_check_sees_a_test_module_imported(tmp_path: Path) -> None:
    root = tmp_path / "tests"
    (root / "exporter").mkdir(parents=True)
    (root / "exporter" / "test_a.py").write_text(
        "def f():\n    from tests.autoscaler.test_loop import helper\n"
    )
    (root / "exporter" / "test_b.py").write_text("from . import test_a\nimport tests.conftest\n")
    (root / "exporter" / "test_c.py").write_text("from tests.support.waits import wait_for\n")
    assert leaning(root) == [
        "tests/exporter/test_a.py -> tests.autoscaler.test_loop",
        "tests/exporter/test_a.py -> tests.autoscaler.test_loop.helper",
        "tests/exporter/test_b.py -> tests.conftest",
        "tests/exporter/test_b.py -> tests.exporter.test_a",
    ]
