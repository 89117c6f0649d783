"""labyrinth.Ring: io_uring with enforced page ownership. Skipped where
io_uring is not available (the reason is printed)."""

from __future__ import annotations

import gc
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import labyrinth
from labyrinth import PAGE_SIZE


@pytest.fixture
def ring_pool() -> Iterator[labyrinth.Pool]:
    with labyrinth.Pool(64 * PAGE_SIZE, atomic_reserve_pages=2) as pool:
        try:
            pool.ring(sq_entries=8).close()
        except labyrinth.Unsupported as exc:
            pytest.skip(f"io_uring is not available here: {exc.message}")
        yield pool


def test_read_and_write_fixed(ring_pool: labyrinth.Pool, tmp_path: Path) -> None:
    data = bytes(range(256)) * 16
    path = tmp_path / "f"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDWR)
    try:
        with ring_pool.ring(sq_entries=8) as ring:
            page = ring_pool.alloc_page()
            ring.read_fixed(fd, page, PAGE_SIZE, offset=0, user_data=11)
            assert page.in_flight and ring.inflight_pages == 1
            # The kernel owns it: free, transfer and a second submission are refused.
            with pytest.raises(labyrinth.Busy, match="in flight"):
                page.free()
            with pytest.raises(labyrinth.Busy):
                page.transfer(12345)
            with pytest.raises(labyrinth.Busy):
                ring.read_fixed(fd, page, 16)
            (c,) = ring.complete(wait_nr=1, timeout=10)
            assert c.user_data == 11 and c.result == PAGE_SIZE and c.op == labyrinth.ring.RING_OP_READ_FIXED
            assert c.page is page and not page.in_flight
            assert page.read() == data
            page.write(b"XYZ")
            ring.write_fixed(fd, page, 3, offset=100, user_data=12)
            (c,) = ring.complete(wait_nr=1, timeout=10)
            assert c.result == 3 and c.page is page
            assert ring.stats().completions == 2
            page.free()
        assert path.read_bytes()[100:103] == b"XYZ"
    finally:
        os.close(fd)


def test_in_flight_page_cannot_be_collected(ring_pool: labyrinth.Pool) -> None:
    a, b = socket.socketpair()
    try:
        with ring_pool.ring(sq_entries=8) as ring:
            page = ring_pool.alloc_page()
            addr = page.address
            ring.recv(a.fileno(), page, 100, user_data=5)
            del page
            gc.collect()  # the ring holds the Page while the kernel does
            assert ring_pool.page_at(addr) is not None
            b.send(b"ping")
            (c,) = ring.complete(wait_nr=1, timeout=10)
            assert c.result == 4 and c.page is not None and c.page.read(4) == b"ping"
            assert c.page.address == addr
            c.page.free()
    finally:
        a.close()
        b.close()


def test_multishot_receive_hands_out_new_pages(ring_pool: labyrinth.Pool) -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        with ring_pool.ring(sq_entries=8, pbuf_entries=8, manual_refill=True) as ring:
            # Manual refill: the application feeds the provided-buffer ring.
            fed = [ring_pool.alloc_page() for _ in range(4)]
            for page in fed:
                ring.provide(page)
                assert page.freed  # the kernel's now: the Page object is retired
            assert ring.stats().pbuf_pages == 4
            ring.recv_multishot(a.fileno(), user_data=9)
            for msg in (b"one", b"two", b"three"):
                b.send(msg)
            got: list[labyrinth.Completion] = []
            for _ in range(10):
                got += ring.complete(wait_nr=3 - len(got), timeout=10)
                if len(got) >= 3:
                    break
            assert [c.page.read(c.result) for c in got if c.page] == [b"one", b"two", b"three"]
            for c in got:
                assert c.more and c.page is not None and c.page.owner == labyrinth.owner_self()
                assert c.page.address in {p.address for p in fed}
            got[0].page.free()  # type: ignore[union-attr]
            ring.provide(got[1].page)  # type: ignore[arg-type]  # recycled
            got[2].page.free()  # type: ignore[union-attr]
            ring.cancel(9)
            for _ in range(10):
                if not ring.complete(max=16, wait_nr=1, timeout=10):
                    break
        # Closing the ring gave the pages it still held back to the pool.
        assert ring_pool.stats().allocated_pages == 0
    finally:
        a.close()
        b.close()


def test_pool_close_refused_while_ring_open(ring_pool: labyrinth.Pool) -> None:
    ring = ring_pool.ring(sq_entries=8)
    with pytest.raises(labyrinth.Busy, match="ring"):
        ring_pool.close(force=True)
    ring.close()
    assert ring.closed and ring.fd == -1
    with pytest.raises(labyrinth.InvalidArgument, match="closed"):
        ring.complete()


def test_ring_misuse(ring_pool: labyrinth.Pool) -> None:
    with ring_pool.ring(sq_entries=8) as ring:
        page = ring_pool.alloc_page()
        with pytest.raises(labyrinth.InvalidArgument, match="length"):
            ring.send(0, page, PAGE_SIZE + 1)
        with pytest.raises(labyrinth.InvalidArgument):
            ring.recv_multishot(0)  # no provided-buffer ring
        with pytest.raises(labyrinth.InvalidArgument):
            ring.complete(max=0)
        with labyrinth.Pool(16 * PAGE_SIZE) as other:
            foreign = other.alloc_page()
            with pytest.raises(labyrinth.ForeignPage):
                ring.send(0, foreign, 10)
            foreign.free()
        page.free()
        with pytest.raises(labyrinth.InvalidArgument, match="freed"):
            ring.send(0, page, 10)


def test_send_zc_page_comes_back_with_the_notification(ring_pool: labyrinth.Pool) -> None:
    # SEND_ZC posts two completions: the first carries the bytes sent and no
    # page (the network stack may still read it); the page comes back only
    # with the notification. TCP over loopback, as the C test does.
    server = socket.create_server(("127.0.0.1", 0))
    a = socket.create_connection(server.getsockname())
    b, _ = server.accept()
    server.close()
    try:
        with ring_pool.ring(sq_entries=8) as ring:
            for round_ in range(4):
                data = bytes((i * 7 + round_) & 0xFF for i in range(PAGE_SIZE))
                page = ring_pool.alloc_page()
                page.write(data)
                try:
                    ring.send_zc(a.fileno(), page, PAGE_SIZE, user_data=30 + round_)
                except labyrinth.Unsupported as exc:
                    page.free()
                    pytest.skip(f"SEND_ZC is not available here: {exc.message}")
                (first,) = ring.complete(max=1, wait_nr=1, timeout=10)
                assert first.user_data == 30 + round_ and first.op == labyrinth.ring.RING_OP_SEND_ZC
                assert first.result == PAGE_SIZE
                assert first.more and not first.notif and first.page is None
                # Between the two completions the page is still the kernel's.
                assert page.in_flight and ring.inflight_pages == 1
                with pytest.raises(labyrinth.Busy, match="in flight"):
                    page.free()
                got = b""
                while len(got) < PAGE_SIZE:
                    chunk = b.recv(PAGE_SIZE - len(got))
                    assert chunk, "the peer closed early"
                    got += chunk
                assert got == data
                (notif,) = ring.complete(max=1, wait_nr=1, timeout=10)
                assert notif.user_data == 30 + round_ and notif.notif and not notif.more
                assert notif.page is page and not page.in_flight and ring.inflight_pages == 0
                page.free()
        assert ring_pool.stats().allocated_pages == 0
    finally:
        a.close()
        b.close()
