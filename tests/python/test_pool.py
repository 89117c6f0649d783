"""The basic API: pools, pages, exceptions, stats, closing."""

from __future__ import annotations

import ctypes
import gc
import platform
import re
import threading
import time
import warnings

import pytest

import labyrinth
from labyrinth import PAGE_SIZE


def test_version_and_abi() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", labyrinth.__version__)
    assert labyrinth.abi_version() >> 16 == 1


def test_flagship_page(pool: labyrinth.Pool) -> None:
    page = pool.alloc_page()
    assert isinstance(page, labyrinth.Page)
    assert page.order == 0 and page.size == PAGE_SIZE == len(page)
    assert page.address % PAGE_SIZE == 0
    assert pool.base <= page.address < pool.base + pool.size_bytes
    assert page.owner == labyrinth.owner_self() != labyrinth.OWNER_NONE
    assert pool.page_at(page.address) is page
    page.write(b"abc", offset=10)
    assert page.read(3, offset=10) == b"abc"
    page.free()
    assert page.freed and pool.page_at(page.address) is None


def test_alloc_general_form(pool: labyrinth.Pool) -> None:
    big = pool.alloc(3, zero=True)
    assert big.order == 3 and big.size == 8 * PAGE_SIZE
    assert (big.address - pool.base) % big.size == 0
    assert big.read() == bytes(big.size)
    shared = pool.alloc(0, exclusive=False)
    assert shared.owner == labyrinth.OWNER_NONE
    waited = pool.alloc(1, atomic=False, wait=True, timeout=1.0)
    assert waited.order == 1
    for p in (big, shared, waited):
        p.free()


@pytest.mark.parametrize(
    "call, exc, text",
    [
        (lambda p: p.alloc(11), labyrinth.InvalidArgument, "order must be 0..10, got 11"),
        (lambda p: p.alloc(-1), labyrinth.InvalidArgument, "order"),
        (lambda p: p.alloc(0, atomic=True, wait=True), labyrinth.InvalidArgument, "exclude"),
        (lambda p: p.alloc(0, atomic=False, wait=True, timeout=-1), labyrinth.InvalidArgument, "timeout"),
        (lambda p: p.free_address(p.base - PAGE_SIZE), labyrinth.ForeignPage, "not from this pool"),
        (lambda p: p.free_address(p.base + 7), labyrinth.InvalidArgument, "not the start"),
        (lambda p: p.free_address(p.base), labyrinth.DoubleFree, "free"),
    ],
)
def test_misuse_raises_its_exception_and_changes_nothing(pool, call, exc, text) -> None:  # type: ignore[no-untyped-def]
    before = pool.stats()
    with pytest.raises(exc) as info:
        call(pool)
    err = info.value
    assert isinstance(err, labyrinth.LabyrinthError)
    assert text in err.message and err.status == exc.STATUS
    assert str(err).startswith(err.status.c_name)
    after = pool.stats()
    assert (after.free_pages, after.allocated_pages, after.free_blocks) == (
        before.free_pages, before.allocated_pages, before.free_blocks)


def test_free_with_the_order_checks_it(pool: labyrinth.Pool) -> None:
    block = pool.alloc(2)
    before = pool.stats()
    for wrong in (0, 1, 3):
        with pytest.raises(labyrinth.InvalidArgument) as info:
            pool.free_address(block.address, order=wrong)
        assert f"is an order-2 block, not order {wrong}" in info.value.message
    with pytest.raises(labyrinth.InvalidArgument):
        pool.free_address(block, order=11)
    assert not block.freed and pool.stats().allocated_pages == before.allocated_pages
    pool.free_address(block, order=2)
    assert block.freed and pool.stats().allocated_pages == before.allocated_pages - 4
    with pytest.raises(labyrinth.DoubleFree):
        pool.free_address(block.address, order=2)
    # Page.free states the Page's own order.
    page = pool.alloc(3)
    page.free()
    assert pool.stats().allocated_pages == before.allocated_pages - 4


def test_exception_hierarchy() -> None:
    assert issubclass(labyrinth.InvalidArgument, ValueError)
    assert issubclass(labyrinth.Timeout, TimeoutError)
    for cls in (labyrinth.OutOfPages, labyrinth.InvalidArgument, labyrinth.NotOwner, labyrinth.DoubleFree,
                labyrinth.ForeignPage, labyrinth.Busy, labyrinth.Timeout, labyrinth.Unsupported,
                labyrinth.SystemFailure):
        assert issubclass(cls, labyrinth.LabyrinthError)
        assert labyrinth.errors.error_class(cls.STATUS) is cls
        assert cls.STATUS is not None
        assert labyrinth._core.status_name(cls.STATUS) == cls.STATUS.c_name
    import pickle

    e = labyrinth.NotOwner("x", 3)
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is labyrinth.NotOwner and e2.status == labyrinth.Status.NOT_OWNER and e2.message == "x"


def test_out_of_pages_and_timeout() -> None:
    with labyrinth.Pool(16 * PAGE_SIZE, atomic_reserve_pages=2) as pool:
        pages = []
        with pytest.raises(labyrinth.OutOfPages) as info:
            while True:
                pages.append(pool.alloc_page())
        assert len(pages) == 16  # everything, reserve included (atomic caller)
        assert "no" in info.value.message
        assert pool.stats().reserve_uses >= 2
        with pytest.raises(labyrinth.Timeout):
            pool.alloc(0, atomic=False, wait=True, timeout=0.01)
        with pytest.raises(labyrinth.OutOfPages):
            pool.alloc(0, atomic=False)
        for p in pages:
            p.free()


def test_reserve_is_for_atomic_callers_only() -> None:
    with labyrinth.Pool(32 * PAGE_SIZE, atomic_reserve_pages=4) as pool:
        held = []
        while True:  # non-atomic callers stop short of the reserve
            try:
                held.append(pool.alloc(0, atomic=False))
            except labyrinth.OutOfPages:
                break
        s = pool.stats()
        assert s.reserve_pages == 4 and s.reserve_uses == 0
        for _ in range(4):  # atomic callers get it
            held.append(pool.alloc_page())
        s = pool.stats()
        assert s.reserve_pages == 0 and s.reserve_uses == 4
        for p in held:
            p.free()


def test_stats_dataclass(pool: labyrinth.Pool) -> None:
    s = pool.stats()
    assert isinstance(s, labyrinth.Stats)
    assert s.total_pages == 256 and s.reserve_target == 4
    assert len(s.free_blocks) == labyrinth.MAX_ORDER + 1 and len(s.failures) == 10
    assert s.available_pages + s.allocated_pages == s.total_pages
    with pytest.raises(Exception):
        s.total_pages = 3  # type: ignore[misc]
    d = s.to_dict()
    assert d["free_blocks"] == list(s.free_blocks)
    with pytest.raises(labyrinth.OutOfPages):
        pool.alloc(10)
    assert pool.stats().failures_by_status == {labyrinth.Status.NOMEM: 1}


def test_page_context_manager(pool: labyrinth.Pool) -> None:
    with pool.alloc_page() as page:
        assert not page.freed
    assert page.freed
    with pytest.raises(RuntimeError):
        with pool.alloc_page() as page2:
            raise RuntimeError("boom")
    assert page2.freed


def test_double_free_through_page_object(pool: labyrinth.Pool) -> None:
    page = pool.alloc_page()
    page.free()
    with pytest.raises(labyrinth.DoubleFree, match="already freed"):
        page.free()
    with pytest.raises(labyrinth.InvalidArgument, match="freed"):
        page.owner
    with pytest.raises(labyrinth.InvalidArgument, match="freed"):
        page.read()


def test_collected_page_frees_itself(pool: labyrinth.Pool) -> None:
    used = pool.stats().allocated_pages
    page = pool.alloc(2)
    assert pool.stats().allocated_pages == used + 4
    del page
    gc.collect()
    assert pool.stats().allocated_pages == used


def _orphans_appear(pool: labyrinth.Pool, n: int) -> bool:
    """Python's Thread.join() returns when the thread's Python state is
    gone, a moment before the OS thread runs its exit hooks (where the core
    records the exit): wait for them."""
    deadline = time.monotonic() + 10
    while pool.stats().orphaned_pages != n and time.monotonic() < deadline:
        time.sleep(0.001)
    return pool.stats().orphaned_pages == n


def _exited_thread_owner(pool: labyrinth.Pool, use_pool: bool) -> int:
    box: list[int] = []

    def body() -> None:
        box.append(labyrinth.owner_self())
        if use_pool:
            pool.alloc_page().free()

    t = threading.Thread(target=body)
    t.start()
    t.join()
    return box[0]


def test_collected_page_of_another_owner_warns(pool: labyrinth.Pool) -> None:
    page = pool.alloc_page()
    addr = page.address
    gone = _exited_thread_owner(pool, use_pool=True)
    page.transfer(gone)  # to a thread that has exited: an orphan
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        del page
        gc.collect()
    assert any(issubclass(x.category, ResourceWarning) and "NOT_OWNER" in str(x.message) for x in w)
    assert pool.page_info(addr)[0] == gone
    assert _orphans_appear(pool, 1)
    assert pool.reclaim_orphans() == 1
    assert pool.stats().allocated_pages == 0


def test_transfer_to_exited_thread_that_never_allocated_is_an_orphan(pool: labyrinth.Pool) -> None:
    """A thread that only asked for its owner id and exited (a receiver that
    never allocated): blocks transferred to it are orphans (a core bug this
    test found, fixed on main in owner_self())."""
    page = pool.alloc_page()
    gone = _exited_thread_owner(pool, use_pool=False)
    page.transfer(gone)
    assert _orphans_appear(pool, 1)
    assert pool.reclaim_orphans() == 1


def test_reclaim_orphans_ignores_exports_of_pages_that_are_not_orphans(pool: labyrinth.Pool) -> None:
    """Live buffer exports refuse reclaim_orphans only when they are of an
    orphan's page: with none of those, it reclaims as in C."""
    mine = pool.alloc_page()
    view = memoryview(mine)
    assert pool.reclaim_orphans() == 0  # an export alive, no orphan at all
    lost = pool.alloc_page()
    lost.transfer(_exited_thread_owner(pool, use_pool=False))
    assert _orphans_appear(pool, 1)
    assert pool.reclaim_orphans() == 1  # the export is of a page that is no orphan
    assert pool.stats().orphaned_pages == 0
    view.release()
    mine.free()


def test_transfer_between_threads(pool: labyrinth.Pool, worker) -> None:  # type: ignore[no-untyped-def]
    page = pool.alloc_page()
    with pytest.raises(labyrinth.NotOwner):
        worker.call(page.free)
    page.transfer(worker.owner)
    assert page.owner == worker.owner
    with pytest.raises(labyrinth.NotOwner, match="exclusive to owner"):
        page.free()
    with pytest.raises(labyrinth.InvalidArgument):
        worker.call(lambda: page.transfer(0))
    worker.call(page.free)
    assert page.freed


def test_close_semantics() -> None:
    pool = labyrinth.Pool(64 * PAGE_SIZE)
    page = pool.alloc_page()
    with pytest.raises(labyrinth.Busy):
        pool.close()  # a block is still allocated
    assert not pool.closed
    view = memoryview(page)
    with pytest.raises(labyrinth.Busy, match="buffer export"):
        pool.close(force=True)  # a view would dangle
    view.release()
    pool.close(force=True)
    assert pool.closed and page.freed
    with pytest.raises(labyrinth.InvalidArgument, match="closed"):
        page.free()
    with pytest.raises(labyrinth.InvalidArgument, match="closed"):
        memoryview(page)
    with pytest.raises(labyrinth.InvalidArgument, match="closed"):
        pool.alloc_page()
    pool.close()  # again: nothing to do


def test_with_block_closes_even_with_pages() -> None:
    with labyrinth.Pool(64 * PAGE_SIZE) as pool:
        page = pool.alloc_page()
    assert pool.closed and page.freed
    assert "closed" in repr(pool)


def test_pool_creation_errors() -> None:
    with pytest.raises(labyrinth.InvalidArgument):
        labyrinth.Pool(0)
    with pytest.raises(labyrinth.InvalidArgument):
        labyrinth.Pool(PAGE_SIZE + 1)
    with pytest.raises(labyrinth.InvalidArgument):
        labyrinth.Pool(-PAGE_SIZE)

def _pkey_alloc_works() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    key = libc.syscall(330, 0, 0)  # SYS_pkey_alloc (x86_64)
    if key >= 0:
        libc.syscall(331, key)  # SYS_pkey_free
    return bool(key >= 0)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="pkey syscall numbers are x86_64's")
def test_pkeys_pool_exists_where_the_machine_has_keys_else_unsupported() -> None:
    if _pkey_alloc_works():
        with labyrinth.Pool(64 * PAGE_SIZE, pkeys=True, pin=False) as pool:
            page = pool.alloc_page()
            page.write(b"\x01" * 16)  # the owner (this thread) may touch it
            assert page.read(16) == b"\x01" * 16
            page.free()
    else:
        with pytest.raises(labyrinth.Unsupported):
            labyrinth.Pool(64 * PAGE_SIZE, pkeys=True)


def test_scrub_zeroes_freed_blocks() -> None:
    with labyrinth.Pool(16 * PAGE_SIZE, scrub=True, atomic_reserve_pages=0) as pool:
        page = pool.alloc_page()
        page.write(b"\xff" * PAGE_SIZE)
        addr = page.address
        page.free()
        for _ in range(16):
            p = pool.alloc_page()
            assert p.read() == bytes(PAGE_SIZE)
            if p.address == addr:
                break


def test_reclaim_orphans_retires_stale_page_objects() -> None:
    # A thread allocates a page and exits while Python still holds its Page:
    # after reclaim_orphans the block is the pool's again, the stale Page is
    # freed, and the block can be handed out anew.
    import threading
    import time

    import labyrinth

    pool = labyrinth.Pool(4 << 20, pin=False)
    held: list = []
    th = threading.Thread(target=lambda: held.append(pool.alloc_page()))
    th.start()
    th.join()
    deadline = time.monotonic() + 10
    while pool.stats().orphaned_pages == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    view = memoryview(held[0])
    try:
        pool.reclaim_orphans()
        raise AssertionError("reclaim with a live view must be refused")
    except labyrinth.Busy as e:
        assert "release them" in str(e), str(e)
    assert pool.stats().orphaned_pages == 1  # nothing was reclaimed
    view.release()
    assert pool.reclaim_orphans() == 1
    pages = [pool.alloc_page() for _ in range(1000)]
    assert len(pages) == 1000
    for p in pages:
        p.free()
    pool.close(force=True)
