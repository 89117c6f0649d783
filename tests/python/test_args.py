"""The Python boundary: every public method of Pool, Page and Ring given a
wrong type raises TypeError, and an out-of-range value InvalidArgument, each
naming the argument (never a pybind11 cast error or signature dump); pinning
modes and MemlockLimitError."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

import labyrinth
from labyrinth import InvalidArgument, MemlockLimitError, OutOfPages

PAGE = labyrinth.PAGE_SIZE
#: Words that only pybind11's own conversion errors contain.
PYBIND_LEAKS = ("incompatible function arguments", "Unable to cast", "Invoked with", "C++ type")

Call = Callable[[labyrinth.Pool, labyrinth.Page], Any]

#: (call, exception, words the message must contain)
BAD_CALLS: list[tuple[str, Call, type[Exception], str]] = [
    ("Pool(str)", lambda p, g: labyrinth.Pool("1M"), TypeError, "size_bytes"),  # type: ignore[arg-type]
    ("Pool(-1)", lambda p, g: labyrinth.Pool(-PAGE), InvalidArgument, "size_bytes"),
    ("Pool(2**64)", lambda p, g: labyrinth.Pool(2**64), InvalidArgument, "size_bytes"),
    ("Pool(pin='yes')", lambda p, g: labyrinth.Pool(PAGE * 16, pin="yes"), InvalidArgument, "pin"),  # type: ignore[arg-type]
    ("Pool(pin=2)", lambda p, g: labyrinth.Pool(PAGE * 16, pin=2), TypeError, "pin"),  # type: ignore[arg-type]
    ("Pool(scrub='x')", lambda p, g: labyrinth.Pool(PAGE * 16, scrub="x"), TypeError, "scrub"),  # type: ignore[arg-type]
    ("Pool(numa_node='0')", lambda p, g: labyrinth.Pool(PAGE * 16, numa_node="0"), TypeError, "numa_node"),  # type: ignore[arg-type]
    ("Pool(atomic_reserve_pages=-1)", lambda p, g: labyrinth.Pool(PAGE * 16, atomic_reserve_pages=-1),
     InvalidArgument, "atomic_reserve_pages"),
    ("Pool(thread_cache_pages=2**40)", lambda p, g: labyrinth.Pool(PAGE * 16, thread_cache_pages=2**40),
     InvalidArgument, "thread_cache_pages"),
    ("Pool(watermark_low_pages=1.5)", lambda p, g: labyrinth.Pool(PAGE * 16, watermark_low_pages=1.5),  # type: ignore[arg-type]
     TypeError, "watermark_low_pages"),
    ("Pool(unknown=1)", lambda p, g: labyrinth.Pool(PAGE * 16, unknown=1), TypeError, "unknown"),  # type: ignore[call-arg]
    ("alloc(2**64)", lambda p, g: p.alloc(2**64), InvalidArgument, "order"),
    ("alloc(-1)", lambda p, g: p.alloc(-1), InvalidArgument, "order"),
    ("alloc('1')", lambda p, g: p.alloc("1"), TypeError, "order"),  # type: ignore[arg-type]
    ("alloc(True)", lambda p, g: p.alloc(True), TypeError, "order"),
    ("alloc(atomic='yes')", lambda p, g: p.alloc(0, atomic="yes"), TypeError, "atomic"),  # type: ignore[arg-type]
    ("alloc(zero=None)", lambda p, g: p.alloc(0, zero=None), TypeError, "zero"),  # type: ignore[arg-type]
    ("alloc(timeout='x')", lambda p, g: p.alloc(0, atomic=False, wait=True, timeout="x"),  # type: ignore[arg-type]
     TypeError, "timeout"),
    ("alloc(timeout=-1)", lambda p, g: p.alloc(0, atomic=False, wait=True, timeout=-1), InvalidArgument, "timeout"),
    ("free_address('0x1000')", lambda p, g: p.free_address("0x1000"), TypeError, "address"),  # type: ignore[arg-type]
    ("free_address(-1)", lambda p, g: p.free_address(-1), InvalidArgument, "address"),
    ("free_address(order='0')", lambda p, g: p.free_address(g, order="0"), TypeError, "order"),  # type: ignore[arg-type]
    ("free_address(order=11)", lambda p, g: p.free_address(g, order=11), InvalidArgument, "order"),
    ("transfer_address(owner='me')", lambda p, g: p.transfer_address(g, "me"), TypeError, "owner"),  # type: ignore[arg-type]
    ("transfer_address(owner=2**70)", lambda p, g: p.transfer_address(g, 2**70), InvalidArgument, "owner"),
    ("page_at(None)", lambda p, g: p.page_at(None), TypeError, "address"),  # type: ignore[arg-type]
    ("page_info(1.5)", lambda p, g: p.page_info(1.5), TypeError, "address"),  # type: ignore[arg-type]
    ("close(force='no')", lambda p, g: p.close(force="no"), TypeError, "force"),  # type: ignore[arg-type]
    ("transfer(-3)", lambda p, g: g.transfer(-3), InvalidArgument, "owner"),
    ("transfer('x')", lambda p, g: g.transfer("x"), TypeError, "owner"),  # type: ignore[arg-type]
    ("read(offset='a')", lambda p, g: g.read(offset="a"), TypeError, "offset"),  # type: ignore[arg-type]
    ("read(size=2**80)", lambda p, g: g.read(size=2**80), InvalidArgument, "size"),
    ("read(size=[])", lambda p, g: g.read(size=[]), TypeError, "size"),  # type: ignore[arg-type]
    ("write(offset=None)", lambda p, g: g.write(b"x", offset=None), TypeError, "offset"),  # type: ignore[arg-type]
    ("write('str')", lambda p, g: g.write("abc"), TypeError, "bytes-like"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("name,call,exc,word", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_wrong_argument_is_named_and_changes_nothing(
    pool: labyrinth.Pool, name: str, call: Call, exc: type[Exception], word: str
) -> None:
    page = pool.alloc_page()
    before = pool.stats()
    with pytest.raises(exc) as info:
        call(pool, page)
    text = str(info.value)
    assert word in text, text
    assert not any(leak in text for leak in PYBIND_LEAKS), text
    assert "\n" not in text, text  # no signature dump
    after = pool.stats()
    assert (after.allocated_pages, after.free_pages) == (before.allocated_pages, before.free_pages)
    assert not page.freed
    page.free()


def _ring_or_skip(pool: labyrinth.Pool) -> labyrinth.Ring:
    try:
        return pool.ring(sq_entries=8)
    except labyrinth.LabyrinthError as exc:
        pytest.skip(f"no io_uring here: {exc}")


RING_CALLS: list[tuple[str, Callable[[labyrinth.Ring, labyrinth.Page], Any], type[Exception], str]] = [
    ("write_fixed(fd='1')", lambda r, g: r.write_fixed("1", g), TypeError, "fd"),  # type: ignore[arg-type]
    ("write_fixed(fd=-1)", lambda r, g: r.write_fixed(-1, g), InvalidArgument, "fd"),
    ("write_fixed(page=b'')", lambda r, g: r.write_fixed(1, b""), TypeError, "page"),  # type: ignore[arg-type]
    ("write_fixed(length=0)", lambda r, g: r.write_fixed(1, g, 0), InvalidArgument, "length"),
    ("write_fixed(length='1')", lambda r, g: r.write_fixed(1, g, "1"), TypeError, "length"),  # type: ignore[arg-type]
    ("read_fixed(offset=-1)", lambda r, g: r.read_fixed(0, g, offset=-1), InvalidArgument, "offset"),
    ("send(flags='x')", lambda r, g: r.send(1, g, flags="x"), TypeError, "flags"),  # type: ignore[arg-type]
    ("recv(user_data=-1)", lambda r, g: r.recv(0, g, user_data=-1), InvalidArgument, "user_data"),
    ("send_zc(user_data=2**64)", lambda r, g: r.send_zc(1, g, user_data=2**64), InvalidArgument, "user_data"),
    ("recv_multishot(fd=None)", lambda r, g: r.recv_multishot(None), TypeError, "fd"),  # type: ignore[arg-type]
    ("cancel('x')", lambda r, g: r.cancel("x"), TypeError, "user_data"),  # type: ignore[arg-type]
    ("provide(1)", lambda r, g: r.provide(1), TypeError, "page"),  # type: ignore[arg-type]
    ("complete(max=0)", lambda r, g: r.complete(max=0), InvalidArgument, "max"),
    ("complete(wait_nr='1')", lambda r, g: r.complete(wait_nr="1"), TypeError, "wait_nr"),  # type: ignore[arg-type]
    ("complete(timeout='x')", lambda r, g: r.complete(timeout="x"), TypeError, "timeout"),  # type: ignore[arg-type]
    ("Ring(pool=1)", lambda r, g: labyrinth.Ring(1), TypeError, "pool"),  # type: ignore[arg-type]
    ("Ring(sq_entries=-1)", lambda r, g: labyrinth.Ring(g_pool(g), sq_entries=-1), InvalidArgument, "sq_entries"),
    ("Ring(pbuf_group=2**16)", lambda r, g: labyrinth.Ring(g_pool(g), pbuf_group=2**16), InvalidArgument,
     "pbuf_group"),
    ("Ring(register='no')", lambda r, g: labyrinth.Ring(g_pool(g), register="no"), TypeError, "register"),  # type: ignore[arg-type]
]

_POOLS: dict[int, labyrinth.Pool] = {}


def g_pool(page: labyrinth.Page) -> labyrinth.Pool:
    return _POOLS[id(page)]


@pytest.mark.parametrize("name,call,exc,word", RING_CALLS, ids=[c[0] for c in RING_CALLS])
def test_ring_wrong_argument_is_named(
    pool: labyrinth.Pool, name: str, call: Callable[..., Any], exc: type[Exception], word: str
) -> None:
    with _ring_or_skip(pool) as ring:
        page = pool.alloc_page()
        _POOLS[id(page)] = pool
        try:
            with pytest.raises(exc) as info:
                call(ring, page)
        finally:
            del _POOLS[id(page)]
        text = str(info.value)
        assert word in text and not any(leak in text for leak in PYBIND_LEAKS), text
        assert ring.stats().ops_inflight == 0 and not page.in_flight
        page.free()


def test_pin_modes_and_stats(capfd: pytest.CaptureFixture[str]) -> None:
    with labyrinth.Pool(16 * PAGE, pin=False) as off:
        assert not off.stats().pinned
    with labyrinth.Pool(16 * PAGE) as auto:  # 64 KiB: within any memlock limit
        assert auto.stats().pinned
    assert "unpinned" not in capfd.readouterr().err


def test_memlock_error_class() -> None:
    assert issubclass(MemlockLimitError, labyrinth.LabyrinthError)
    assert not issubclass(MemlockLimitError, OutOfPages)
    assert MemlockLimitError("m").status == labyrinth.Status.NOMEM


UNPRIVILEGED = textwrap.dedent(
    """
    import labyrinth, sys
    mode = {"auto": "auto", "strict": True, "off": False}[sys.argv[1]]
    try:
        with labyrinth.Pool(8 << 20, pin=mode) as pool:
            page = pool.alloc_page(); page.write(b"x"); page.free()
            print("created", pool.stats().pinned)
            if len(sys.argv) > 2:  # then a ring, which registers the 8 MiB arena
                ring = pool.ring(sq_entries=8)
                print("ring register_fallback", ring.stats().register_fallback)
                ring.close()
    except labyrinth.LabyrinthError as exc:
        print("raised", type(exc).__name__, exc.message)
    """
)


def _unprivileged(mode: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run UNPRIVILEGED with a 64 KiB memlock limit and no CAP_IPC_LOCK."""
    if not (shutil.which("prlimit") and shutil.which("setpriv")):
        pytest.skip("needs prlimit and setpriv (util-linux) to lower the memlock limit")
    cmd = ["prlimit", "--memlock=65536:65536"]
    if os.geteuid() == 0:
        cmd += ["setpriv", "--bounding-set=-ipc_lock", "--inh-caps=-ipc_lock", "--"]
    r = subprocess.run([*cmd, sys.executable, "-c", UNPRIVILEGED, mode, *extra], capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0 and "setpriv" in r.stderr:
        pytest.skip(f"cannot drop CAP_IPC_LOCK here: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    return r


def test_pin_auto_runs_unpinned_under_a_small_limit_and_says_so_once() -> None:
    r = _unprivileged("auto")
    assert r.stdout.strip() == "created False", r.stdout + r.stderr
    warnings = [ln for ln in r.stderr.splitlines() if "runs unpinned" in ln]
    assert len(warnings) == 1, r.stderr
    assert "RLIMIT_MEMLOCK is 65536 bytes" in warnings[0] and "pin=False" in warnings[0]


def test_pin_strict_raises_memlock_error_naming_the_python_fix() -> None:
    r = _unprivileged("strict")
    out = r.stdout.strip()
    assert out.startswith("raised MemlockLimitError"), out + r.stderr
    assert "8388608" in out and "65536" in out
    assert 'pin="auto"' in out and "pin=False" in out and "LABYRINTH_POOL" not in out


def test_pin_off_never_pins_or_warns() -> None:
    r = _unprivileged("off")
    assert r.stdout.strip() == "created False" and r.stderr == "", r.stdout + r.stderr


def test_a_ring_whose_registration_the_limit_refuses_runs_unregistered_and_says_so() -> None:
    """The arena's registration as fixed buffers is over the 64 KiB limit: the
    ring is created anyway, does its fixed I/O unregistered, says so once on
    stderr (with the limit) and in its statistics."""
    r = _unprivileged("off", "ring")
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "created False", r.stdout + r.stderr
    if "Unsupported" in lines[-1]:
        pytest.skip(f"no io_uring for this process: {lines[-1]}")
    assert lines[-1] == "ring register_fallback 1", r.stdout + r.stderr
    said = [ln for ln in r.stderr.splitlines() if "falls back to unregistered fixed I/O" in ln]
    assert len(said) == 1, r.stderr
    assert "65536" in r.stderr, r.stderr
