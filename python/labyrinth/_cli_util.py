"""Helpers of the ``labyrinth`` command: argument types (each refuses a bad
value with an argparse error that says what is wanted), the progress bar and
plain text tables."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from .workload import Distribution, Exponential, Fixed, Uniform


def parse_size(text: str) -> int:
    """'64M', '1G', '512K', '4096' -> bytes."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if t and t[-1] in mult:
        return int(float(t[:-1]) * mult[t[-1]])
    return int(t)


def _bounded(convert: Callable[[str], Any], ok: Callable[[Any], bool], what: str) -> Callable[[str], Any]:
    """An argparse type: ``convert(text)``, refused unless ``ok(value)``;
    ``what`` says what is wanted in the error."""

    def parse(text: str) -> Any:
        try:
            v = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return v

    return parse


positive_int = _bounded(int, lambda v: v >= 1, "an integer >= 1")
nonneg_int = _bounded(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _bounded(float, lambda v: 0 < v < float("inf"), "a number > 0")
share = _bounded(float, lambda v: 0.0 <= v <= 1.0, "a number between 0 and 1")


def parse_dist(text: str) -> Distribution:
    """'8' or 'fixed:8', 'uniform:1:16', 'exp:64' / 'exponential:64'."""
    parts = text.split(":")
    kind = parts[0].lower()
    try:
        if len(parts) == 1:
            return Fixed(int(kind))
        if kind == "fixed":
            return Fixed(int(parts[1]))
        if kind in ("uniform", "u"):
            return Uniform(int(parts[1]), int(parts[2]))
        if kind in ("exp", "exponential", "e"):
            return Exponential(float(parts[1]))
    except (ValueError, IndexError):
        pass
    raise argparse.ArgumentTypeError(f"bad distribution {text!r} (N, fixed:N, uniform:LO:HI, exp:MEAN)")


def parse_orders(text: str) -> dict[int, float]:
    """'0' or '0:0.9,2:0.1' -> {order: weight}."""
    out: dict[int, float] = {}
    try:
        for item in text.split(","):
            if ":" in item:
                o, w = item.split(":", 1)
                out[int(o)] = float(w)
            else:
                out[int(item)] = 1.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad orders {text!r} (e.g. 0:0.9,2:0.1)") from None
    return out


class Progress:
    """A one-line progress bar on stderr (only when stderr is a terminal)."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, fraction: float, calls: int, elapsed: float) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and fraction < 1.0:
            return
        self.last = now
        width = 30
        filled = int(round(width * min(max(fraction, 0.0), 1.0)))
        rate = calls / elapsed if elapsed > 0 else 0.0
        sys.stderr.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {fraction * 100:5.1f}% "
            f"{calls:>12,} calls {rate / 1e6:7.2f} M/s {elapsed:6.1f}s"
        )
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A plain text table."""
    if not rows:
        return "(nothing)"
    cols = list(columns or rows[0].keys())

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.3g}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    cells = [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    out = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cols, widths)))]
    out.append("  ".join("-" * w for w in widths))
    for row in cells:
        out.append("  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))))
    return "\n".join(out)
