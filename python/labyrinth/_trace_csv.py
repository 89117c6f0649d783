"""Fast reading of CSV traces straight into the int64 columns the C++
runner reads, without a Python object per event (about 1 s per million
events instead of several). :class:`labyrinth.workload.Trace` builds its
events from these columns only when asked for them."""

from __future__ import annotations

import csv
from array import array
from collections.abc import Callable, Iterable
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
    lines: Iterable[str],
    parse_flags: Callable[[str], int],
    timeout_max: int,
    progress: Callable[[int], None] | None = None,
) -> CsvTrace:
    """Parse CSV lines (header first; blank and ``#`` lines skipped).
    ``progress(rows)`` is called every 65536 rows. Raises InvalidArgument
    naming the event and the field for a bad value."""
    rows = csv.reader(ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#"))
    header = [h.strip().lower() for h in next(rows, [])]
    if "id" in header and "block" not in header:
        header[header.index("id")] = "block"
    for need in ("op", "block"):
        if need not in header:
            raise InvalidArgument(f"trace: the CSV header has no {need!r} column (header: {','.join(header)})")
    col = {name: header.index(name) if name in header else None for name in
           ("op", "thread", "block", "order", "flags", "timeout_ms", "to")}
    out = CsvTrace()
    _fill(out, rows, col, parse_flags, timeout_max, progress)
    return out


def _fill(
    out: CsvTrace,
    rows: Any,
    col: dict[str, int | None],
    parse_flags: Callable[[str], int],
    timeout_max: int,
    progress: Callable[[int], None] | None,
) -> None:
    c = out.cols
    ops, threads, blocks, orders, gfps, timeouts, tos = (c[k] for k in COLUMNS)
    block_ids: dict[int | str, int] = {}
    flag_ids: dict[str, tuple[int, int]] = {}  # text -> (index in flag_texts, gfp)

    def field(row: list[str], name: str) -> str:
        i = col[name]
        return row[i].strip() if i is not None and i < len(row) else ""

    for n, row in enumerate(rows):
        try:
            op = OP_CODES[field(row, "op").lower()]
        except KeyError:
            raise InvalidArgument(f"trace event {n}: op must be alloc, free or transfer, "
                                  f"got {field(row, 'op')!r}") from None
        try:
            thread = int(field(row, "thread") or 0)
            key = _block_key(field(row, "block"))
            order = int(field(row, "order") or 0) if op == 0 else 0
            timeout = int(field(row, "timeout_ms") or 0)
            to_text = field(row, "to")
            to = int(to_text) if to_text else NO_TARGET
        except ValueError as exc:
            raise InvalidArgument(f"trace event {n}: {exc}") from None
        if key == "":
            raise InvalidArgument(f"trace event {n}: no block (or id)")
        if thread < 0:
            raise InvalidArgument(f"trace event {n}: thread must be >= 0")
        if op == 2 and to < 0:
            raise InvalidArgument(f"trace event {n}: a transfer needs 'to' (a trace thread)")
        text = field(row, "flags") or "atomic|exclusive"
        fid = flag_ids.get(text)
        if fid is None:
            fid = flag_ids[text] = (len(out.flag_texts), parse_flags(text))
            out.flag_texts.append(text)
        b = block_ids.get(key)
        if b is None:
            b = block_ids[key] = len(out.names)
            out.names.append(key)
        ops.append(op)
        threads.append(thread)
        blocks.append(b)
        orders.append(order)
        gfps.append(fid[1] if op == 0 else 0)
        timeouts.append(min(max(timeout, 0), timeout_max))
        tos.append(to if op == 2 else 0)
        out.flags.append(fid[0])
        out.to_given.append(to)
        if progress is not None and n & 0xFFFF == 0xFFFF:
            progress(n + 1)
