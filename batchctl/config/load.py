"""From a YAML file (or decoded data) to a validated `Config`, or one line per problem.

Every problem is reported at once, each naming the key path, what was found and the
fix ("did you mean ..."). Nothing here ever echoes a broker password.
"""

from __future__ import annotations

import difflib
import os
import re
import reprlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from batchctl.brokerparse import parse_broker_url
from batchctl.config.model import Config
from batchctl.config.written import (
    ENV_SENTINEL_PASSWORD,
    broker_secrets,
    with_sentinel_password,
)
from batchctl.redact import register_secret, scrub

ENV_BROKER_URL = "BATCHCTL_BROKER_URL"
# The claim store when the file names none: the shipped Deployment sets it to kubernetes
# (the claims in Leases wherever batchctl runs in the cluster); a file's own
# claims.store wins.
ENV_CLAIMS_STORE = "BATCHCTL_CLAIMS_STORE"

# Keys that were renamed: (old path, new path). The old name keeps working, with a
# deprecation warning naming the new one.
RENAMED: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    # Celery's transport option is `master_name` (kombu's SentinelChannel).
    (("broker", "sentinel_master_name"), ("broker", "master_name")),
    (("autoscaler", "claim_default_ttl_seconds"), ("claims", "default_ttl")),
)


class ConfigError(Exception):
    """A configuration that cannot be used. `problems` holds one line per problem.

    `whole_file`: the file itself cannot be used (unreadable, not text, empty, not
    YAML): rendered as one line, `FILE: problem`.
    """

    def __init__(
        self, problems: list[str], source: str = "config", whole_file: bool = False
    ) -> None:
        # All of them are counted; the first MAX_PROBLEMS are listed, then "and N more".
        self.total = len(problems)
        if self.total > MAX_PROBLEMS:
            problems = [*problems[:MAX_PROBLEMS], f"... and {self.total - MAX_PROBLEMS} more"]
        self.problems = problems
        self.source = source
        self.whole_file = whole_file
        super().__init__(self.render())

    def render(self) -> str:
        if self.whole_file and len(self.problems) == 1:
            return f"{self.source}: {self.problems[0]}"
        head = f"{self.source}: {self.total} problem(s)"
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])


# A problem never echoes more of the input than this (a YAML alias bomb expands to
# gigabytes), and at most this many problems are listed.
MAX_ECHO_CHARS = 80
MAX_PROBLEMS = 50
_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = MAX_ECHO_CHARS
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = _REPR.maxfrozenset = 4


def _clip(line: str, limit: int = 500) -> str:
    """A problem line of at most `limit` characters (a last guard: every message quotes
    at most MAX_ECHO_CHARS of the input already)."""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _echo(value: Any) -> str:
    """`value` as a problem quotes it: a repr of at most about MAX_ECHO_CHARS characters,
    never built from the whole of a huge value."""
    text = _REPR.repr(value)
    return text if len(text) <= MAX_ECHO_CHARS else text[: MAX_ECHO_CHARS - 3] + "..."


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if len(part) <= 40 else part[:37] + "..."
            out += f".{name}" if out else name
    return out or "(top level)"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that owns the key at `loc`, to suggest valid keys."""
    model: Any = Config
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        candidates = [ann, *args]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if model is None:
            return None
    return model


# pydantic error types whose message does not say what it found: it is quoted.
_QUOTES_INPUT = frozenset(
    {
        "literal_error",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "multiple_of",
        "string_pattern_mismatch",
        "string_too_short",
        "string_too_long",
        "too_short",
        "too_long",
    }
)


def _describe(err: Mapping[str, Any]) -> str:
    loc = tuple(err["loc"])
    path = _path(loc)
    kind = err["type"]
    got = err.get("input")
    if kind == "extra_forbidden":
        owner = _model_at(loc)
        valid = sorted(owner.model_fields) if owner else []
        hint = difflib.get_close_matches(str(loc[-1])[:100], valid, n=1)
        fix = f"did you mean {hint[0]!r}?" if hint else f"valid keys: {', '.join(valid)}"
        return f"{path}: unknown key; {fix}"
    if kind == "missing" and loc and isinstance(loc[-1], int):
        # A fixed-length list given too short (thresholds: [100, 500]).
        return f"{_path(loc[:-1])}: too few items, item {loc[-1] + 1} is missing"
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind == "finite_number":
        return f"{path}: must be a finite number, not {_echo(got)}: .inf and .nan are not allowed"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if not loc:  # cross-field checks already name their keys
        return msg
    if kind.endswith(("_type", "_parsing")) or kind in _QUOTES_INPUT:
        return f"{path}: {msg} (got {_echo(got)})"
    return f"{path}: {msg}"


def parse_config(
    data: Any,
    source: str = "config",
    env: Mapping[str, str] | None = None,
    warnings: list[str] | None = None,
) -> Config:
    """Validate raw (YAML-decoded) data; raise ConfigError listing every problem.

    Renamed keys are moved to their new name, and `warnings` (when given) gets one
    line per old name used.
    """
    env = os.environ if env is None else env
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [f"(top level): expected a mapping of keys, got {type(data).__name__}"], source
        )
    warnings = warnings if warnings is not None else []
    data = _apply_renames(data, warnings)
    from_env = bool(env.get(ENV_BROKER_URL))
    if from_env:
        broker = dict(data.get("broker") or {})
        broker["url"] = env[ENV_BROKER_URL]
        data = {**data, "broker": broker}
    register_secret(env.get(ENV_SENTINEL_PASSWORD))  # used or not: masked
    data = with_sentinel_password(data, env.get(ENV_SENTINEL_PASSWORD), warnings)
    claims = data.get("claims")
    unnamed = claims is None or (isinstance(claims, dict) and "store" not in claims)
    if env.get(ENV_CLAIMS_STORE) and unnamed:
        data = {**data, "claims": {**(claims or {}), "store": env[ENV_CLAIMS_STORE]}}
    _register_secrets(data.get("broker"))
    try:
        cfg = Config.model_validate(data)
    except ValidationError as e:
        errors = e.errors(include_url=False)
        problems = [_describe(err) for err in errors] + _whole_config_problems(data, errors)
        # A check across sections may find several problems: one line each.
        problems = [line for p in problems for line in p.split("\n")]
        # The URL's problems name where it came from; never echo it (a password).
        problems = [_clip(scrub(env_blamed(p) if from_env else p)) for p in problems]
        raise ConfigError(problems, source) from None
    notes = []
    if cfg.broker.kind == "redis":
        notes = [f"broker.url: {note}" for note in parse_broker_url(cfg.broker.url).notes]
    warnings.extend(env_blamed(n) if from_env else n for n in notes)
    warnings.extend(cfg.claims.warnings())
    return cfg


def _whole_config_problems(data: dict[str, Any], errors: list[Any]) -> list[str]:
    """The checks across sections (duplicate batches, the lease margin), which pydantic
    runs only once every field is valid: run again with the sections that failed left
    out (at their defaults), keeping only the problems that name none of them, so that
    one pass lists them all and a default never stands in for what the file says."""
    bad = {str(err["loc"][0]) for err in errors if err["loc"]}
    if not bad or any(not err["loc"] for err in errors):
        return []
    try:
        Config.model_validate({k: v for k, v in data.items() if k not in bad})
    except ValidationError as e:
        out = []
        for err in e.errors(include_url=False):
            if err["loc"]:
                continue
            for line in _describe(err).split("\n"):
                named = set(_SECTION.findall(line)) & set(Config.model_fields)
                if named and not named & bad:
                    out.append(line)
        return out
    return []


# A top-level section as a problem line names it: `batches[1].queue`, `autoscaler.x`.
_SECTION = re.compile(r"\b([a-z_]+)[.\[]")


def env_blamed(line: str) -> str:
    """A `broker.url: ...` line said of $BATCHCTL_BROKER_URL, which set the URL."""
    if not line.startswith("broker.url: "):
        return line
    return f"{ENV_BROKER_URL}: {line.removeprefix('broker.url: ')} (overrides broker.url)"


def _register_secrets(broker: Any) -> None:
    """Every password in the broker settings, masked by value from now on (logs, errors)."""
    for secrets in broker_secrets(broker).values():
        register_secret(*secrets)


def _apply_renames(data: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """A copy of `data` with every old key name moved to its new one (see RENAMED)."""
    for old, new in RENAMED:
        parent = data
        for part in old[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None  # type: ignore[assignment]
        if not isinstance(parent, dict) or old[-1] not in parent:
            continue
        data = _with(data, old, None)
        if _lookup(data, new) is None:
            data = _with(data, new, parent[old[-1]])
            warnings.append(f"{'.'.join(old)}: deprecated, use {'.'.join(new)} instead")
        else:
            warnings.append(f"{'.'.join(old)}: deprecated and ignored, {'.'.join(new)} is set too")
    return data


def _lookup(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _with(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of `data` with `path` set to `value` (None removes it)."""
    out = dict(data)
    head, rest = path[0], path[1:]
    if rest:
        child = out.get(head)
        out[head] = _with(child if isinstance(child, dict) else {}, rest, value)
    elif value is None:
        out.pop(head, None)
    else:
        out[head] = value
    return out


def load_config(
    path: str | Path | None,
    env: Mapping[str, str] | None = None,
    warnings: list[str] | None = None,
) -> Config:
    """Read and validate a config file; None means all defaults."""
    if path is None:
        return parse_config({}, "defaults", env, warnings)
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(
            [f"cannot read the file: {e.strerror}"], source, whole_file=True
        ) from None
    data = _yaml(_text(raw, source), source)
    return parse_config(data, source, env, warnings)


def _text(raw: bytes, source: str) -> str:
    """The file as text: UTF-8 (a BOM allowed), not binary, not empty."""
    if b"\x00" in raw:
        raise ConfigError(["a binary file, not a YAML config"], source, whole_file=True)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(
            [f"not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); save it as UTF-8"],
            source,
            whole_file=True,
        ) from None
    return text


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load's reading, except that a key given twice in one mapping is an
    error: PyYAML keeps the last one silently, so a second `broker:` block would drop
    the first block's keys (the URL among them) without a word."""


def _unique_keys(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> Any:
    first: dict[Any, int] = {}
    for key_node, _value in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor`: keys merged in may be given again, as YAML says
        key = loader.construct_object(key_node, deep=True)
        try:
            line = first.setdefault(key, key_node.start_mark.line)
        except TypeError:  # an unhashable key: construct_mapping says so
            continue
        if line != key_node.start_mark.line:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {_echo(key)} (first on line {line + 1})",
                key_node.start_mark,
            )  # fmt: skip
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_keys)


def _yaml(text: str, source: str) -> Any:
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(
            [scrub(f"not valid YAML{where}: {problem}")], source, whole_file=True
        ) from None
    if data is None:
        raise ConfigError(
            ["empty config (no keys); write at least one key, e.g. broker: {url: ...}"],
            source,
            whole_file=True,
        )
    return data
