"""labyrinth.Ring bundles: recv_bundle (one kernel completion fills several
pages, each its own Completion) and send_bundle (a list of pages in one
submission, each Busy until its own completion). Skipped where io_uring or
bundles (Linux 6.10) are missing."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

import labyrinth
from labyrinth import PAGE_SIZE
from labyrinth.ring import COMPLETION_BUNDLE, COMPLETION_BUNDLE_END, RING_OP_RECV_BUNDLE, RING_OP_SEND_BUNDLE


@pytest.fixture
def tcp() -> Iterator[tuple[socket.socket, socket.socket]]:
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    a = socket.create_connection(lst.getsockname())
    b, _ = lst.accept()
    lst.close()
    yield a, b
    a.close()
    b.close()


def _ring(pool: labyrinth.Pool, **kw: object) -> labyrinth.Ring:
    try:
        return labyrinth.Ring(pool, sq_entries=16, **kw)  # type: ignore[arg-type]
    except labyrinth.Unsupported as exc:
        pytest.skip(f"io_uring is not available here: {exc.message}")


def _take_until_end(ring: labyrinth.Ring) -> list[labyrinth.Completion]:
    got: list[labyrinth.Completion] = []
    for _ in range(500):
        got += ring.complete(max=64, wait_nr=1, timeout=0.01)
        if got and not got[-1].more:
            break
    return got


def test_recv_bundle_tcp_pages_in_order(tcp: tuple[socket.socket, socket.socket]) -> None:
    a, b = tcp
    data = bytes(range(256)) * 64  # 16 KiB: four pages
    a.sendall(data)
    a.shutdown(socket.SHUT_WR)
    time.sleep(0.01)
    with labyrinth.Pool(64 * PAGE_SIZE) as pool:
        with _ring(pool, pbuf_entries=16) as ring:
            try:
                ring.recv_bundle(b.fileno(), user_data=3)
            except labyrinth.Unsupported as exc:
                pytest.skip(f"bundles are not available here: {exc.message}")
            got = _take_until_end(ring)
            pages = [c for c in got if c.page is not None]
            assert b"".join(bytes(memoryview(c.page)[: c.result]) for c in pages) == data
            assert all(c.op == RING_OP_RECV_BUNDLE and c.flags & COMPLETION_BUNDLE for c in pages)
            assert pages[-1].flags & COMPLETION_BUNDLE_END
            stats = ring.stats()
            assert stats.recv_bundle_pages > stats.recv_bundles  # some completion carried several pages
            for c in pages:
                c.page.free()
        assert pool.stats().allocated_pages == 0


def test_send_bundle_busy_in_flight_then_returned(tcp: tuple[socket.socket, socket.socket]) -> None:
    a, b = tcp
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with labyrinth.Pool(64 * PAGE_SIZE) as pool:
        with _ring(pool) as ring:
            pages = [pool.alloc_page() for _ in range(16)]
            for i, p in enumerate(pages):
                memoryview(p)[:] = bytes([i]) * PAGE_SIZE
            try:
                ring.send_bundle(a.fileno(), pages, user_data=9)
            except labyrinth.Unsupported as exc:
                pytest.skip(f"bundles are not available here: {exc.message}")
            with pytest.raises(labyrinth.Busy):
                pages[-1].free()
            with pytest.raises(labyrinth.Busy):
                ring.send_bundle(a.fileno(), [pool.alloc_page()])
            received = bytearray()

            def read() -> None:
                while len(received) < 16 * PAGE_SIZE:
                    chunk = b.recv(1 << 16)
                    if not chunk:
                        break
                    received.extend(chunk)

            reader = threading.Thread(target=read)
            reader.start()
            got = _take_until_end(ring)
            reader.join()
            assert [c.page for c in got] == pages
            assert all(c.op == RING_OP_SEND_BUNDLE and c.result == PAGE_SIZE for c in got)
            assert bytes(received) == b"".join(bytes([i]) * PAGE_SIZE for i in range(16))
            for p in pages:
                p.free()


def test_send_bundle_misuse(tcp: tuple[socket.socket, socket.socket]) -> None:
    a, _ = tcp
    with labyrinth.Pool(64 * PAGE_SIZE) as pool, labyrinth.Pool(16 * PAGE_SIZE) as other:
        with _ring(pool) as ring:
            page = pool.alloc_page()
            try:
                with pytest.raises(labyrinth.InvalidArgument):  # empty queue
                    ring.send_bundle(a.fileno(), [])
            except labyrinth.Unsupported as exc:
                pytest.skip(f"bundles are not available here: {exc.message}")
            with pytest.raises(labyrinth.InvalidArgument):  # listed twice
                ring.send_bundle(a.fileno(), [page, page])
            with pytest.raises(labyrinth.ForeignPage):
                ring.send_bundle(a.fileno(), [page, other.alloc_page()])
            with pytest.raises(ValueError):
                ring.send_bundle(a.fileno(), [page], lengths=[1, 2])
            assert ring.stats().submitted == 0
            page.free()  # still the caller's
