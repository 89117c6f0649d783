"""Fast reading of CSV traces straight into the int64 columns the C++
runner reads, without a Python object per event (about 1 s per million
events instead of several). :class:`labyrinth.workload.Trace` builds its
events from these columns only when asked for them."""

from __future__ import annotations

import csv
import gc
from array import array
from collections.abc import Callable
from typing import Any

from .errors import InvalidArgument

#: The columns, in the order the C++ runner reads them.
COLUMNS = ("op", "thread", "block", "order", "gfp", "timeout_ms", "to")
OP_CODES = {"alloc": 0, "free": 1, "transfer": 2}
NO_TARGET = -1  # the "to" of an event that is not a transfer


class CsvTrace:
    """A CSV trace as columns, plus what turns them back into events: the
    block names (``block`` indexes ``names``), each alloc's flags text
    (``flags`` indexes ``flag_texts``) and each ``to`` (NO_TARGET if none)."""

    def __init__(self) -> None:
        self.cols: dict[str, array[int]] = {k: array("q") for k in COLUMNS}
        self.names: list[int | str] = []
        self.flags: array[int] = array("q")
        self.flag_texts: list[str] = []
        self.to_given: array[int] = array("q")

    def __len__(self) -> int:
        return len(self.cols["op"])


def _block_key(text: str) -> int | str:
    t = text.strip()
    return int(t) if t.lstrip("-").isdigit() else t


def read_csv(
    lines: list[str],
    parse_flags: Callable[[str], int],
    timeout_max: int,
    progress: Callable[[int], None] | None = None,
) -> CsvTrace:
    """Parse CSV lines (header first; blank and ``#`` lines skipped) a column
    at a time: each distinct text of a column is converted once.
    ``progress(rows)`` is called after each stage. Raises InvalidArgument
    naming the event and the field for a bad value."""
    report = progress if progress is not None else (lambda n: None)
    # Millions of small lists: the cyclic GC would rescan them all many
    # times over (none of them can form a cycle).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _read(lines, parse_flags, timeout_max, report)
    finally:
        if collecting:
            gc.enable()


def _read(
    lines: list[str], parse_flags: Callable[[str], int], timeout_max: int, report: Callable[[int], None]
) -> CsvTrace:
    rows = _rows([ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")])
    header = [h.strip().lower() for h in rows[0]] if rows else []
    del rows[:1]
    if "id" in header and "block" not in header:
        header[header.index("id")] = "block"
    for need in ("op", "block"):
        if need not in header:
            raise InvalidArgument(f"trace: the CSV header has no {need!r} column (header: {','.join(header)})")
    report(len(rows))
    width = len(header)
    if rows and min(map(len, rows)) < width:  # short rows: the missing fields are empty
        rows = [r + [""] * (width - len(r)) if len(r) < width else r for r in rows]
    columns = dict(zip(header, zip(*rows))) if rows else {}
    empty = ("",) * len(rows)
    out = CsvTrace()
    _fill(out, lambda name: columns.get(name, empty), parse_flags, timeout_max)
    report(len(rows))
    return out


def _rows(lines: list[str]) -> list[list[str]]:
    """Split CSV lines: str.split where no field is quoted, else the csv module."""
    if any('"' in ln for ln in lines):
        return list(csv.reader(lines))
    return [ln.split(",") for ln in lines]


def _convert(texts: tuple[str, ...], name: str, convert: Callable[[str], Any]) -> list[Any]:
    """convert() each distinct text once; InvalidArgument names the first bad event."""
    table = {}
    for t in set(texts):
        try:
            table[t] = convert(t)
        except (ValueError, InvalidArgument) as exc:
            raise InvalidArgument(f"trace event {texts.index(t)}: {name}: {exc}") from None
    return list(map(table.__getitem__, texts))


def _int_or(default: int) -> Callable[[str], int]:
    return lambda t: int(t) if t.strip() else default


def _op_code(text: str) -> int:
    try:
        return OP_CODES[text.strip().lower()]
    except KeyError:
        raise ValueError(f"op must be alloc, free or transfer, got {text!r}") from None


def _fill(
    out: CsvTrace,
    column: Callable[[str], tuple[str, ...]],
    parse_flags: Callable[[str], int],
    timeout_max: int,
) -> None:
    ops = _convert(column("op"), "op", _op_code)
    threads = _convert(column("thread"), "thread", _int_or(0))
    to_given = _convert(column("to"), "to", _int_or(NO_TARGET))
    for n, (thread, op, to) in enumerate(zip(threads, ops, to_given)):
        if thread < 0:
            raise InvalidArgument(f"trace event {n}: thread must be >= 0")
        if op == 2 and to < 0:
            raise InvalidArgument(f"trace event {n}: a transfer needs 'to' (a trace thread)")
    blocks = column("block")
    ids = _convert(blocks, "block", _block_key)
    if "" in ids:
        raise InvalidArgument(f"trace event {ids.index('')}: no block (or id)")
    index: dict[int | str, int] = {}
    c = out.cols
    c["block"] = array("q", [index.setdefault(k, len(index)) for k in ids])
    out.names = list(index)
    flag_texts = tuple(t.strip() or "atomic|exclusive" for t in column("flags"))
    flag_index: dict[str, int] = {}
    out.flags = array("q", [flag_index.setdefault(t, len(flag_index)) for t in flag_texts])
    out.flag_texts = list(flag_index)
    gfps = _convert(flag_texts, "flags", parse_flags)
    c["op"] = array("q", ops)
    c["thread"] = array("q", threads)
    c["order"] = array("q", [o if op == 0 else 0 for o, op in zip(_convert(column("order"), "order", _int_or(0)), ops)])
    c["gfp"] = array("q", [g if op == 0 else 0 for g, op in zip(gfps, ops)])
    timeouts = _convert(column("timeout_ms"), "timeout_ms", lambda t: min(max(_int_or(0)(t), 0), timeout_max))
    c["timeout_ms"] = array("q", timeouts)
    c["to"] = array("q", [t if op == 2 else 0 for t, op in zip(to_given, ops)])
    out.to_given = array("q", to_given)
