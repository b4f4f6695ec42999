"""Docs that must not drift: every config key documented, README opens with two commands."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from batchctl.config import Config

ROOT = Path(__file__).resolve().parents[2]


def keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        nested = [
            a
            for a in (ann, *getattr(ann, "__args__", ()))
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        out.append(prefix + name)
        if nested:
            out.extend(keys(nested[0], prefix + name + "."))
    return out


def test_every_config_key_is_documented() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    missing = [k for k in keys(Config) if f"`{k.rsplit('.', 1)[-1]}`" not in doc]
    assert missing == []
    # And each section exists.
    for section in ("broker", "kubernetes", "batches", "thresholds", "exporter", "alerts"):
        assert f"## `{section}`" in doc


def test_readme_opens_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    first_block = text.split("```")[1]
    assert [ln.strip() for ln in first_block.strip().splitlines()] == ["make demo", "make test"]
