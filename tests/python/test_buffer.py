"""The buffer protocol: views see the page itself, and never a freed one."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

import labyrinth
from labyrinth import PAGE_SIZE


def _view_address(view: memoryview) -> int:
    # The address of a writable memoryview's first byte, via ctypes.
    return ctypes.addressof(ctypes.c_char.from_buffer(view))


def test_memoryview_is_the_page_itself(pool: labyrinth.Pool) -> None:
    page = pool.alloc(1)
    view = memoryview(page)
    assert not view.readonly and view.nbytes == 2 * PAGE_SIZE and view.format == "B"
    assert _view_address(view) == page.address
    view[100:105] = b"hello"
    assert page.read(5, offset=100) == b"hello"  # written through the view, read by copy
    page.write(b"world", offset=200)
    assert bytes(view[200:205]) == b"world"  # written by copy, seen through the view
    assert page.exports == 1 and pool.exports == 1
    view.release()
    assert page.exports == 0 and pool.exports == 0
    page.free()


def test_numpy_frombuffer_is_zero_copy(pool: labyrinth.Pool) -> None:
    page = pool.alloc_page()
    arr = np.frombuffer(page, dtype=np.uint64)
    assert arr.__array_interface__["data"][0] == page.address
    assert arr.size == PAGE_SIZE // 8 and arr.flags.writeable
    arr[:] = np.arange(arr.size, dtype=np.uint64)
    again = np.frombuffer(page, dtype=np.uint64)
    assert again[511] == 511 and again.__array_interface__["data"][0] == page.address
    assert int.from_bytes(page.read(8, offset=8 * 7), "little") == 7
    del arr, again
    page.free()


def test_free_with_live_view_is_refused(pool: labyrinth.Pool) -> None:
    page = pool.alloc_page()
    arr = np.frombuffer(page, dtype=np.uint8)
    before = pool.stats()
    with pytest.raises(labyrinth.Busy, match="buffer export"):
        page.free()
    with pytest.raises(labyrinth.Busy):
        pool.free_address(page.address)  # the raw form goes through the Page too
    assert not page.freed and pool.stats().allocated_pages == before.allocated_pages
    arr[0] = 1  # still ours, still valid
    del arr
    page.free()
    assert page.freed


def test_freed_page_refuses_new_views(pool: labyrinth.Pool) -> None:
    page = pool.alloc_page()
    page.free()
    with pytest.raises(labyrinth.InvalidArgument, match="freed"):
        memoryview(page)
    with pytest.raises(labyrinth.InvalidArgument):
        np.frombuffer(page, dtype=np.uint8)


def test_view_keeps_page_alive(pool: labyrinth.Pool) -> None:
    page = pool.alloc_page()
    addr = page.address
    view = memoryview(page)
    del page  # the view holds the Page object: nothing is freed
    assert pool.page_at(addr) is not None and pool.stats().allocated_pages == 1
    view[0] = 42
    view.release()  # last reference: the Page is collected and frees itself
    import gc

    gc.collect()
    assert pool.stats().allocated_pages == 0


def test_read_write_bounds(pool: labyrinth.Pool) -> None:
    page = pool.alloc_page()
    assert page.write(b"ab", offset=PAGE_SIZE - 2) == 2
    assert page.read(offset=PAGE_SIZE - 2) == b"ab"
    for call in (lambda: page.write(b"abc", offset=PAGE_SIZE - 2), lambda: page.write(b"a", offset=-1),
                 lambda: page.read(-1), lambda: page.read(2, offset=PAGE_SIZE - 1)):
        with pytest.raises(labyrinth.InvalidArgument, match="does not fit"):
            call()
    page.write(np.arange(4, dtype=np.uint32))
    assert page.read(16) == np.arange(4, dtype=np.uint32).tobytes()
    with pytest.raises((BufferError, ValueError)):
        page.write(np.arange(8, dtype=np.uint8)[::2])  # not contiguous
    view = memoryview(page)
    page.write(view[0:100], offset=50)  # overlapping: a memmove
    view.release()
    page.free()
