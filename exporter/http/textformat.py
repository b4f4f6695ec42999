"""Prometheus' text format (0.0.4) and OpenMetrics, written line by line: the writer the
exposition (exporter/http/exposition.py) renders each family with, its line cache and
the body it yields (chunked, gzipped on request).

Written by hand rather than through prometheus_client's families because of the cost at
thousands of queues (benchmarks/README.md); tests/exporter/http/test_exposition.py
proves the output equal to prometheus_client's for the same samples.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping

from prometheus_client.utils import floatToGoString

from batchctl.metrics import Spec

# One histogram series: its label values, (upper bound, cumulative count) per bucket
# with +Inf last, and the sum of the observations.
HistogramRow = tuple[tuple[str, ...], list[tuple[float, int]], float]


def _escape(value: str) -> str:
    """A label value (both formats), or HELP text in OpenMetrics: \\, newline and "."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


def _escape_help(value: str) -> str:
    """HELP text in the text format, where only \\ and newline are escapes: Prometheus'
    parser rejects any other escape, so a quote must stay bare."""
    return value.replace("\\", "\\\\").replace("\n", "\\n")


# zlib's fastest level: a 1,000-queue body (~420 KB) shrinks ~14x in ~1 ms, 10,000
# queues ~17x in ~11 ms; the default level 6 is 4x slower for 7% less, 9 (what
# prometheus_client uses) 12x slower (benchmarks/README.md).
GZIP_LEVEL = 1

# A line's value follows its last space (indexing bytes gives ints).
_SPACE = ord(" ")

# Python's repr of non-finite floats -> the spelling both formats define.
_NON_FINITE = {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}


def _num(value: float) -> str:
    if type(value) is int:
        return str(value)
    value = float(value)
    if value.is_integer():
        # 3.0 -> 3; from 1e16 on repr's 1e+16 rather than seventeen digits or more.
        return str(int(value)) if -1e16 < value < 1e16 else repr(value)
    text = repr(value)
    return _NON_FINITE.get(text, text)


class LineCache:
    """Sample lines of the last render, by family and label: an idle queue's lines are
    reused rather than formatted again (most batch queues are idle most of the time).
    Kept as UTF-8 bytes, the form the body is joined from: no str body and no second
    copy when it is encoded (with 10,000 queues the body is ~4 MB; benchmarks/)."""

    def __init__(self) -> None:
        self.lines: dict[str, dict[tuple[str, ...] | str, bytes]] = {}
        # Whole families of the last snapshot generation: (generation, their lines).
        self.blocks: dict[str, tuple[Hashable, list[bytes]]] = {}
        # Per-queue families (the priority lists): queue -> (its mapping, its lines as
        # one block). One object per queue instead of a line and a key per series.
        self.groups: dict[str, dict[str, tuple[Mapping[int, int], bytes]]] = {}
        # Per-queue integer families (`_Writer.counts`): queue -> (value, line).
        self.counts: dict[str, dict[str, tuple[int, bytes]]] = {}


class Body:
    """A rendered exposition: its lines (UTF-8, each without its newline), written out in
    chunks and never joined whole. With 10,000 queues the body is ~4 MB; its lines are
    those the LineCache keeps anyway, so serving it costs one chunk at a time
    (benchmarks/README.md)."""

    __slots__ = ("length", "lines")

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines
        self.length = sum(map(len, lines)) + len(lines)  # bytes, with every newline

    def chunks(self, size: int = 512) -> Iterator[bytes]:
        """The body in order, `size` lines (or per-queue blocks) per chunk."""
        lines = self.lines
        for i in range(0, len(lines), size):
            part = lines[i : i + size]
            part.append(b"")  # the newline after the chunk's last line
            yield b"\n".join(part)

    def __bytes__(self) -> bytes:
        return b"".join(self.chunks())

    def gzipped(self, level: int = GZIP_LEVEL) -> bytes:
        """The body gzipped, compressed chunk by chunk (never joined whole first)."""
        z = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: the gzip container
        out = [z.compress(chunk) for chunk in self.chunks()]
        out.append(z.flush())
        return b"".join(out)


class _Writer:
    """Exposition text for one family at a time, in the text or OpenMetrics format."""

    def __init__(self, openmetrics: bool, cache: LineCache | None) -> None:
        self.openmetrics = openmetrics
        self.cache = cache
        self.lines: list[bytes] = []

    def _head(self, spec: Spec, meta: str) -> None:
        """A family's HELP and TYPE lines, under `meta` (OpenMetrics counters lose
        `_total` there)."""
        help_text = _escape(spec.help) if self.openmetrics else _escape_help(spec.help)
        self.lines.append(f"# HELP {meta} {help_text}".encode())
        self.lines.append(f"# TYPE {meta} {spec.kind}".encode())

    def family(self, spec: Spec, samples: Iterable[tuple[tuple[str, ...], float]]) -> None:
        rows = list(samples)
        if not rows:
            return
        name = spec.name
        meta = name.removesuffix("_total") if self.openmetrics and spec.kind == "counter" else name
        self._head(spec, meta)
        out = self.lines
        keys = spec.labels
        if not keys:
            out.extend(f"{name} {_num(value)}".encode() for _, value in rows)
            return
        # Labelled samples: the last render's line is reused when the value is unchanged,
        # and its name-and-labels part when only the value moved (the ages). Only the
        # lines are kept: the value is the text after the line's last space.
        old = self.cache.lines.get(name, {}) if self.cache is not None else {}
        new: dict[tuple[str, ...] | str, bytes] = {}
        single = len(keys) == 1
        for values, value in rows:
            num = _num(value).encode()
            key = values[0] if single else values  # one label: its value (no tuple kept)
            line = old.get(key)
            if line is None:
                labels = ",".join(f'{k}="{_escape(v)}"' for k, v in zip(keys, values, strict=True))
                line = f"{name}{{{labels}}} ".encode() + num
            elif not line.endswith(num) or line[-len(num) - 1] != _SPACE:
                line = line[: line.rindex(b" ") + 1] + num
            new[key] = line
            out.append(line)
        if self.cache is not None:
            # Replaced, not merged: series that went away do not linger in memory.
            self.cache.lines[name] = new

    def per_queue(self, spec: Spec, groups: Iterable[tuple[str, Mapping[int, int]]]) -> None:
        """A family labelled (queue, step) from each queue's mapping step -> value, the
        steps in order: a queue's lines are kept as one block, reused while its mapping
        is unchanged (equal to family() over the same series: tests/exporter/
        test_exposition.py)."""
        name = spec.name
        old = self.cache.groups.get(name, {}) if self.cache is not None else {}
        new: dict[str, tuple[Mapping[int, int], bytes]] = {}
        blocks: list[bytes] = []
        queue_label, step_label = spec.labels
        for queue, mapping in groups:
            if not mapping:
                continue
            hit = old.get(queue)
            if hit is not None and (hit[0] is mapping or hit[0] == mapping):
                block = hit[1]
            else:
                head = f'{name}{{{queue_label}="{_escape(queue)}",{step_label}="'
                block = "\n".join(
                    f'{head}{step}"}} {_num(n)}' for step, n in sorted(mapping.items())
                ).encode()
            new[queue] = (mapping, block)
            blocks.append(block)
        if self.cache is not None:
            self.cache.groups[name] = new
        if not blocks:
            return
        self._head(spec, name)
        self.lines.extend(blocks)

    def counts(self, spec: Spec, rows: Iterable[tuple[str, int]]) -> None:
        """A family with one label and integer values (queue -> count): a line is reused
        while its value is the same, without formatting the value again (equal to
        family() over the same series). Cheaper than family() when most values stay put
        but the snapshot's generation moved, as on a busy broker."""
        name = spec.name
        old = self.cache.counts.get(name, {}) if self.cache is not None else {}
        new: dict[str, tuple[int, bytes]] = {}
        lines: list[bytes] = []
        label = spec.labels[0]
        for key, value in rows:
            hit = old.get(key)
            if hit is not None and hit[0] == value:
                line = hit[1]
            else:
                line = f'{name}{{{label}="{_escape(key)}"}} {value}'.encode()
            new[key] = (value, line)
            lines.append(line)
        if self.cache is not None:
            self.cache.counts[name] = new
        if not lines:
            return
        self._head(spec, name)
        self.lines.extend(lines)

    def histogram(self, spec: Spec, rows: Iterable[HistogramRow]) -> None:
        """A histogram family: `_bucket` per bound (`le`), `_count` and `_sum`."""
        series = list(rows)
        if not series:
            return
        out = self.lines
        self._head(spec, spec.name)
        for values, buckets, total in series:
            labels = ",".join(
                f'{k}="{_escape(v)}"' for k, v in zip(spec.labels, values, strict=True)
            )
            sep = "," if labels else ""
            for bound, n in buckets:
                le = floatToGoString(bound)
                out.append(f'{spec.name}_bucket{{{labels}{sep}le="{le}"}} {n}'.encode())
            count = buckets[-1][1] if buckets else 0
            out.append(f"{spec.name}_count{{{labels}}} {count}".encode())
            out.append(f"{spec.name}_sum{{{labels}}} {_num(total)}".encode())

    def family_of(self, spec: Spec, generation: Hashable | None, write: Callable[[], None]) -> None:
        """A family that only changes with the snapshot's generation: written by
        `write` once per generation, its lines reused verbatim while only the ages move."""
        cache = self.cache
        if cache is None or generation is None:
            write()
            return
        hit = cache.blocks.get(spec.name)
        if hit is not None and hit[0] == generation:
            self.lines.extend(hit[1])
            return
        start = len(self.lines)
        write()
        cache.blocks[spec.name] = (generation, self.lines[start:])

    def body(self, extra: bytes | None) -> Body:
        """The lines, then `extra` (a whole exposition in the same format, with its own
        `# EOF` in OpenMetrics) or our own `# EOF`."""
        if extra is not None:
            if extra:
                self.lines.append(extra.removesuffix(b"\n"))
        elif self.openmetrics:
            self.lines.append(b"# EOF")
        return Body(self.lines)
