"""labyrinth.Ring with incremental consumption: receives come back as Slice
objects, zero-copy memoryviews with the C library's ownership rules.
Skipped where io_uring or incremental consumption (Linux 6.12) is missing."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

import labyrinth
from labyrinth import PAGE_SIZE


def _udp_pair() -> tuple[socket.socket, socket.socket]:
    """A bound UDP receiver and a sender connected to it."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.connect(rx.getsockname())
    return rx, tx


@pytest.fixture
def inc_ring() -> Iterator[tuple[labyrinth.Pool, labyrinth.Ring, socket.socket, socket.socket]]:
    rx, tx = _udp_pair()
    with labyrinth.Pool(64 * PAGE_SIZE) as pool:
        try:
            ring = labyrinth.Ring(pool, sq_entries=8, pbuf_entries=4, incremental=True)
        except labyrinth.Unsupported as exc:
            pytest.skip(f"incremental consumption is not available here: {exc.message}")
        try:
            ring.recv_multishot(rx.fileno(), user_data=5)
        except labyrinth.Unsupported as exc:
            ring.close()
            pytest.skip(f"multishot receive is not available here: {exc.message}")
        yield pool, ring, rx, tx
        ring.close()
        assert pool.stats().allocated_pages == 0
    rx.close()
    tx.close()


def _take(ring: labyrinth.Ring, n: int) -> list[labyrinth.Completion]:
    got: list[labyrinth.Completion] = []
    for _ in range(50):
        got += ring.complete(max=n - len(got), wait_nr=n - len(got), timeout=5)
        if len(got) >= n:
            break
    assert len(got) == n
    return got


def test_slices_share_a_page_and_read_in_place(inc_ring) -> None:  # type: ignore[no-untyped-def]
    pool, ring, rx, tx = inc_ring
    msgs = [bytes([i]) * 64 for i in range(8)]
    for m in msgs:
        tx.send(m)
    got = _take(ring, len(msgs))
    slices = [c.page for c in got]
    assert all(isinstance(s, labyrinth.ring.Slice) for s in slices)
    assert all(c.flags & labyrinth.ring.COMPLETION_SLICE for c in got)
    assert [bytes(memoryview(s)) for s in slices] == msgs
    assert len({s.address // PAGE_SIZE for s in slices}) == 1  # one page, eight receives
    assert ring.stats().slices_live == 8
    for s in reversed(slices):
        s.release()
    assert ring.stats().slices_live == 0


def test_release_refused_while_a_view_is_alive_and_twice(inc_ring) -> None:  # type: ignore[no-untyped-def]
    pool, ring, rx, tx = inc_ring
    tx.send(b"x" * 64)
    (c,) = _take(ring, 1)
    s = c.page
    view = memoryview(s)
    with pytest.raises(labyrinth.Busy, match="memoryview"):
        s.release()
    with pytest.raises(labyrinth.Busy):
        ring.close()  # a slice is alive
    view.release()
    s.release()
    with pytest.raises(labyrinth.DoubleFree):
        s.release()
    with pytest.raises(labyrinth.DoubleFree):
        memoryview(s)


def test_transfer_to_another_thread(inc_ring) -> None:  # type: ignore[no-untyped-def]
    pool, ring, rx, tx = inc_ring
    tx.send(b"y" * 64)
    (c,) = _take(ring, 1)
    s = c.page
    ready = threading.Event()
    go = threading.Event()
    owner: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        owner.append(labyrinth.owner_self())
        ready.set()
        go.wait(5)
        try:
            with s:
                assert bytes(memoryview(s)) == b"y" * 64
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    ready.wait(5)
    s.transfer(owner[0])
    with pytest.raises(labyrinth.NotOwner):
        s.release()
    go.set()
    t.join()
    assert not errors and s.released


def test_a_slice_has_a_generation_and_is_released_once(inc_ring) -> None:  # type: ignore[no-untyped-def]
    """A slice carries its generation (the completion's slice_gen), distinct
    and never 0; release and transfer name the slice by address and
    generation, so a stale handle never reaches a newer slice there."""
    _pool, ring, _rx, tx = inc_ring
    for i in range(3):
        tx.send(b"g%d" % i)
    slices = [c.page for c in _take(ring, 3)]
    gens = [s.generation for s in slices]
    assert all(g != 0 for g in gens) and len(set(gens)) == 3
    for s in slices:
        s.release()
    with pytest.raises(labyrinth.DoubleFree):
        slices[0].release()
    assert ring.stats().slices_live == 0
    assert ring.stats().recv_maybe_trunc == 0


@pytest.mark.parametrize("via", ["Ring", "Pool.ring"])
@pytest.mark.parametrize("max_datagram", [0, 1000])
def test_long_datagrams_are_flagged_or_kept_whole(max_datagram: int, via: str) -> None:
    """Five 1000-byte datagrams into 4 KiB blocks: without max_datagram the
    fifth finds 96 bytes of room, is cut and says maybe_trunc; with it, the
    kernel moves to the next block and every datagram arrives whole. Ring()
    and Pool.ring() take the same options."""
    rx, tx = _udp_pair()
    with labyrinth.Pool(64 * PAGE_SIZE) as pool:
        try:
            make = pool.ring if via == "Pool.ring" else lambda **kw: labyrinth.Ring(pool, **kw)
            ring = make(pbuf_entries=4, incremental=True, max_datagram=max_datagram)
            ring.recv_multishot(rx.fileno(), user_data=5)
        except labyrinth.Unsupported as exc:
            pytest.skip(f"not available here: {exc.message}")
        for i in range(5):
            tx.send(bytes([i]) * 1000)
        got = _take(ring, 5)
        sizes = [c.result for c in got]
        cut = [c.maybe_trunc for c in got]
        for c in got:
            c.page.release()
        assert ring.stats().pbuf_min_left == max_datagram
        ring.close()
    rx.close()
    tx.close()
    if max_datagram:
        assert sizes == [1000] * 5 and not any(cut)
    else:
        assert sizes == [1000] * 4 + [PAGE_SIZE - 4000] and cut == [False] * 4 + [True]
