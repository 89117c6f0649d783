"""Traces of labyrinth.workload: :class:`TraceEvent` and :class:`Trace`
(CSV or JSONL of alloc/free/transfer events). Import them from
labyrinth.workload."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from . import _core
from ._trace_csv import NO_TARGET, OP_CODES, CsvTrace, read_csv
from .errors import InvalidArgument

# --------------------------------------------------------------------------
# Traces

_FLAG_BITS = {
    "atomic": _core.GFP_ATOMIC,
    "wait": _core.GFP_WAIT,
    "zero": _core.GFP_ZERO,
    "exclusive": _core.GFP_EXCLUSIVE,
}


def _parse_flags(flags: str | int | None) -> int:
    if flags is None or flags == "":
        return _core.GFP_ATOMIC | _core.GFP_EXCLUSIVE
    if isinstance(flags, int):
        return flags
    if flags.strip().lower() in ("none", "0"):
        return 0
    bits = 0
    for tok in flags.replace("+", "|").replace(",", "|").replace(" ", "|").split("|"):
        tok = tok.strip().lower()
        if not tok:
            continue
        if tok.startswith("gfp_"):
            tok = tok[4:]
        if tok not in _FLAG_BITS:
            raise InvalidArgument(f"unknown allocation flag {tok!r} (atomic, wait, zero, exclusive)")
        bits |= _FLAG_BITS[tok]
    return bits


def _flags_str(bits: int) -> str:
    return "|".join(name for name, b in _FLAG_BITS.items() if bits & b) or "none"


@dataclasses.dataclass(frozen=True)
class TraceEvent:
    """One event of a trace.

    * ``op``: ``"alloc"``, ``"free"`` or ``"transfer"``;
    * ``thread``: the trace thread (0..N-1) that makes the call;
    * ``block``: the block's name in the trace (any int or string; an alloc
      binds it, later events refer to it, a free unbinds it);
    * ``order``, ``flags`` (``"atomic|exclusive"``, ``"wait"``, ...; ATOMIC
      and WAIT together are refused by the allocator, as in C; ``"none"``: no
      flag; empty or missing: ``"atomic|exclusive"``) and
      ``timeout_ms`` (for WAIT): alloc only;
    * ``to``: the receiving trace thread of a transfer.
    """

    op: str
    thread: int
    block: int | str
    order: int = 0
    flags: str = "atomic|exclusive"
    timeout_ms: int = 0
    to: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"op": self.op, "thread": self.thread, "block": self.block}
        if self.op == "alloc":
            d.update(order=self.order, flags=self.flags)
            if self.timeout_ms:
                d["timeout_ms"] = self.timeout_ms
        if self.op == "transfer":
            d["to"] = self.to
        return d


_CSV_FIELDS = ("thread", "op", "block", "order", "flags", "timeout_ms", "to")


class Trace:
    """A sequence of :class:`TraceEvent`, replayed in order with the same
    cross-thread dependencies: an event on a block runs after the previous
    event on that block (and after the previous event of its own thread).

    Files: CSV with a header naming (some of) ``thread,op,block,order,flags,
    timeout_ms,to`` (``id`` is accepted for ``block``), or JSON Lines with the
    same keys. Lines starting with ``#`` are comments.
    """

    def __init__(self, events: Iterable[TraceEvent]) -> None:
        self._events: list[TraceEvent] | None = list(events)
        self._csv: CsvTrace | None = None
        for i, e in enumerate(self._events):
            if e.op not in OP_CODES:
                raise InvalidArgument(f"trace event {i}: op must be alloc, free or transfer, got {e.op!r}")
            if e.thread < 0:
                raise InvalidArgument(f"trace event {i}: thread must be >= 0")
            if e.op == "transfer" and (e.to is None or e.to < 0):
                raise InvalidArgument(f"trace event {i}: a transfer needs 'to' (a trace thread)")
            if e.op == "alloc":
                _parse_flags(e.flags)

    @classmethod
    def _of_csv(cls, parsed: CsvTrace) -> Trace:
        t = cls.__new__(cls)
        t._events, t._csv = None, parsed
        return t

    @property
    def events(self) -> list[TraceEvent]:
        """The events (built on first use for a trace read from CSV)."""
        if self._events is None:
            assert self._csv is not None
            self._events = _csv_events(self._csv)
        return self._events

    def __len__(self) -> int:
        return len(self._csv) if self._events is None and self._csv is not None else len(self.events)

    def __repr__(self) -> str:
        return f"Trace({self.events!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Trace) and self.events == other.events

    __hash__ = None  # type: ignore[assignment]

    def __iter__(self) -> Iterator[TraceEvent]:
        return iter(self.events)

    @property
    def threads(self) -> int:
        """Trace threads (1 + the largest thread index named)."""
        if self._events is None and self._csv is not None:
            c = self._csv
            return max(1, max(c.cols["thread"], default=0) + 1, max(c.to_given, default=-1) + 1)
        n = 0
        for e in self.events:
            n = max(n, e.thread + 1, (e.to + 1) if e.to is not None else 0)
        return max(n, 1)

    # -- files
    @classmethod
    def load(cls, path: str | os.PathLike[str], progress: Callable[[int], None] | None = None) -> Trace:
        """Read a ``.csv`` or ``.jsonl`` / ``.ndjson`` file (else sniffed).
        ``progress(events_read)`` is called now and then while a CSV file is
        parsed."""
        text = Path(path).read_text()
        suffix = Path(path).suffix.lower()
        if suffix == ".csv":
            return cls.from_csv(text, progress)
        if suffix in (".jsonl", ".ndjson", ".json"):
            return cls.from_jsonl(text)
        first = next((ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")), "")
        return cls.from_jsonl(text) if first.lstrip().startswith("{") else cls.from_csv(text, progress)

    @classmethod
    def from_csv(cls, text: str, progress: Callable[[int], None] | None = None) -> Trace:
        """Parse CSV text (see the class for the columns) straight into
        columns; ``progress(events_read)`` as in :meth:`load`."""
        return cls._of_csv(read_csv(text.splitlines(), _parse_flags, _core.TIMEOUT_INFINITE, progress))

    @classmethod
    def from_jsonl(cls, text: str) -> Trace:
        events = []
        for i, line in enumerate(ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidArgument(f"trace line {i + 1}: not JSON: {exc}") from None
            events.append(_event_from_mapping(obj, i))
        return cls(events)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write CSV (``.csv``) or JSON Lines (anything else)."""
        p = Path(path)
        p.write_text(self.to_csv() if p.suffix.lower() == ".csv" else self.to_jsonl())

    def to_csv(self) -> str:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(_CSV_FIELDS)
        for e in self.events:
            w.writerow(
                [
                    e.thread,
                    e.op,
                    e.block,
                    e.order if e.op == "alloc" else "",
                    e.flags if e.op == "alloc" else "",
                    e.timeout_ms if e.op == "alloc" and e.timeout_ms else "",
                    e.to if e.op == "transfer" else "",
                ]
            )
        return out.getvalue()

    def to_jsonl(self) -> str:
        return "".join(json.dumps(e.to_dict()) + "\n" for e in self.events)

    def columns(self) -> dict[str, array[int]]:
        """The events as int64 columns (what the C++ runner reads)."""
        if self._events is None and self._csv is not None:
            return self._csv.cols
        names: dict[int | str, int] = {}
        cols = {k: array("q") for k in ("op", "thread", "block", "order", "gfp", "timeout_ms", "to")}
        for e in self.events:
            b = names.setdefault(e.block, len(names))
            cols["op"].append(OP_CODES[e.op])
            cols["thread"].append(e.thread)
            cols["block"].append(b)
            cols["order"].append(e.order if e.op == "alloc" else 0)
            cols["gfp"].append(_parse_flags(e.flags) if e.op == "alloc" else 0)
            cols["timeout_ms"].append(min(max(e.timeout_ms, 0), _core.TIMEOUT_INFINITE))
            cols["to"].append(e.to if (e.op == "transfer" and e.to is not None) else 0)
        return cols


def _csv_events(c: CsvTrace) -> list[TraceEvent]:
    ops = {code: name for name, code in OP_CODES.items()}
    cols = c.cols
    return [
        TraceEvent(
            op=ops[cols["op"][i]],
            thread=cols["thread"][i],
            block=c.names[cols["block"][i]],
            order=cols["order"][i],
            flags=c.flag_texts[c.flags[i]],
            timeout_ms=cols["timeout_ms"][i],
            to=None if c.to_given[i] == NO_TARGET else c.to_given[i],
        )
        for i in range(len(c))
    ]


def _event_from_mapping(m: Mapping[str, Any], i: int) -> TraceEvent:
    def get(key: str, default: Any = None) -> Any:
        v = m.get(key, default)
        return default if v in (None, "") else v

    try:
        op = str(get("op", "")).strip().lower()
        block = get("block", get("id"))
        if block is None:
            raise InvalidArgument(f"trace event {i}: no block (or id)")
        if isinstance(block, str) and block.strip().lstrip("-").isdigit():
            block = int(block)
        to = get("to")
        flags = get("flags", "atomic|exclusive")
        if isinstance(flags, int):
            flags = _flags_str(flags)
        return TraceEvent(
            op=op,
            thread=int(get("thread", 0)),
            block=block,
            order=int(get("order", 0)),
            flags=str(flags),
            timeout_ms=int(get("timeout_ms", 0)),
            to=int(to) if to is not None else None,
        )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, InvalidArgument):
            raise
        raise InvalidArgument(f"trace event {i}: {exc}") from None
