"""Labyrinth: a user-space page allocator, from Python.

The real allocator (the C++ core, compiled into ``labyrinth._core``), not an
imitation::

    import labyrinth

    with labyrinth.Pool(64 << 20) as pool:          # a 64 MiB arena
        page = pool.alloc_page()                   # atomic, exclusive, 4 KiB
        view = memoryview(page)                    # the page itself, no copy
        view[:5] = b"hello"
        view.release()
        page.free()
        print(pool.stats().free_pages)

Every failure raises a subclass of :class:`LabyrinthError` (see
:mod:`labyrinth.errors`) carrying the C status and message. Workloads that
run on many threads in C++ are in :mod:`labyrinth.workload`; Hypothesis
strategies in :mod:`labyrinth.testing`; the command line is
``python -m labyrinth`` (or ``labyrinth``).
"""

from __future__ import annotations

import dataclasses
from types import TracebackType
from typing import Any, Literal, Union

from . import errors
from ._core import (
    MAX_ORDER,
    OWNER_MAX,
    OWNER_NONE,
    PAGE_SIZE,
    Page,
    __version__,
    abi_version,
    owner_self,
)
from ._core import Pool as _CorePool
from .ring import Completion, Ring, RingStats
from .errors import (
    Busy,
    DoubleFree,
    ForeignPage,
    InvalidArgument,
    LabyrinthError,
    MemlockLimitError,
    NotOwner,
    OutOfPages,
    Status,
    SystemFailure,
    Timeout,
    Unsupported,
)

__all__ = [
    "__version__",
    "Pool",
    "Page",
    "Stats",
    "Ring",
    "RingStats",
    "Completion",
    "owner_self",
    "abi_version",
    "PAGE_SIZE",
    "MAX_ORDER",
    "OWNER_NONE",
    "OWNER_MAX",
    "Status",
    "LabyrinthError",
    "OutOfPages",
    "MemlockLimitError",
    "InvalidArgument",
    "NotOwner",
    "DoubleFree",
    "ForeignPage",
    "Busy",
    "Timeout",
    "Unsupported",
    "SystemFailure",
    "errors",
]


#: ``Pool(pin=...)``: "auto" (pin when the memlock limit allows), True
#: (strict) or False (never).
PinMode = Union[Literal["auto"], bool]


@dataclasses.dataclass(frozen=True)
class Stats:
    """A pool's statistics (``labyrinth_stats``), from :meth:`Pool.stats`.

    Under concurrent use every counter is exact but they are not one
    snapshot. Page counts: ``free_pages + reserve_pages + cached_pages +
    allocated_pages == total_pages`` when the pool is quiet.
    """

    total_pages: int
    """Pages in the arena."""
    free_pages: int
    """Free in the buddy allocator and the depot (reserve not included)."""
    reserve_pages: int
    """Pages now in the atomic reserve (only atomic allocations take them)."""
    reserve_target: int
    """The reserve's configured size."""
    cached_pages: int
    """Free pages sitting in thread caches."""
    allocated_pages: int
    """Pages in allocated blocks (in flight included)."""
    inflight_pages: int
    """Allocated pages the kernel holds now (io_uring)."""
    orphaned_pages: int
    """Exclusive pages whose owner thread exited (see Pool.reclaim_orphans)."""
    free_blocks: tuple[int, ...]
    """Free blocks in the buddy allocator, per order 0..MAX_ORDER (fragmentation)."""
    shared_free_pages: int
    """Order-0 pages in the shared (depot) list; included in free_pages."""
    reserve_uses: int
    """Allocations served from the atomic reserve."""
    failures: tuple[int, ...]
    """Failed calls by status (index: :class:`Status`)."""
    waits: int
    """WAIT allocations that had to sleep."""
    timeouts: int
    """WAIT allocations that timed out."""
    refills: int
    """Thread-cache refills (batches)."""
    drains: int
    """Thread-cache drains (batches)."""
    pressure_events: int
    """Times free pages fell below the low watermark."""
    watermark_min: int
    watermark_low: int
    watermark_high: int
    thread_caches_in_use: int
    """Thread caches handed out now."""
    metadata_bytes: int
    """Bytes of side table (per-page metadata)."""
    flags: int
    """The pool's LABYRINTH_POOL_* flags in effect."""
    huge_pages: int
    """1 if the kernel accepted MADV_HUGEPAGE for the arena."""
    cache_reclaims: int
    """Other threads' caches taken back by allocations without ATOMIC that
    would otherwise have failed or slept (a thread that went idle keeps its
    cache until then)."""
    reclaimed_pages: int
    """Free pages those caches held."""

    @property
    def failures_by_status(self) -> dict[Status, int]:
        """Non-zero failure counters, keyed by :class:`Status`."""
        return {Status(i): n for i, n in enumerate(self.failures) if n and i < len(Status)}

    @property
    def pinned(self) -> bool:
        """Whether the arena is locked in memory (``pin="auto"`` that the
        memlock limit refused: False)."""
        return bool(self.flags & 1)  # LABYRINTH_POOL_PIN

    @property
    def available_pages(self) -> int:
        """Free pages anywhere: buddy, depot, reserve and thread caches."""
        return self.free_pages + self.reserve_pages + self.cached_pages

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (tuples become lists), e.g. for JSON."""
        d = dataclasses.asdict(self)
        d["free_blocks"] = list(self.free_blocks)
        d["failures"] = list(self.failures)
        return d


class Pool(_CorePool):
    """A page pool: one arena of ``size_bytes`` (a multiple of 4096) and
    everything that manages it.

    Keyword arguments (``None``: the library's default):

    * ``atomic_reserve_pages``: pages only atomic callers may take (default
      1/64 of the pool, at most 256).
    * ``pin``: ``mlock`` the arena so no page faults or is swapped.
      ``"auto"`` (the default) pins when RLIMIT_MEMLOCK (or CAP_IPC_LOCK)
      allows and otherwise runs unpinned, saying so once on stderr and in
      :attr:`Stats.pinned`; unpinned pages may fault on first touch and be
      swapped out, and a ring's buffer registration then pins them itself and
      may fail on the same limit. ``True`` pins or raises
      :class:`MemlockLimitError`; ``False`` never pins.
    * ``scrub``: zero every block when it is freed.
    * ``hugepages``: ask for transparent huge pages.
    * ``guard``: debug mode, freed blocks are ``mprotect``-ed (atomic calls
      then make system calls).
    * ``poison``: debug mode, freed blocks are filled with a pattern checked at
      the next hand-out; a write after free is reported and aborts the process.
    * ``pkeys``: hardware-enforced exclusivity with memory protection keys:
      another thread touching an exclusive page faults (raises
      :class:`Unsupported` where the CPU or kernel has no keys).
    * ``reclaim``: an allocation without ``atomic`` that would fail first
      takes back the free pages in idle threads' caches (a ``membarrier``
      system call that briefly interrupts the process's other threads);
      ``reclaim=False`` never does (``LABYRINTH_POOL_NO_RECLAIM``).
    * ``numa_node``: bind the arena to a NUMA node.
    * ``watermark_min_pages``, ``watermark_low_pages``,
      ``watermark_high_pages``, ``max_thread_caches``, ``thread_cache_pages``,
      ``thread_cache_batch``: see ``labyrinth_pool_options`` in labyrinth.h.

    Creating a pool may block (it reserves and pins the arena) and releases
    the GIL meanwhile.

    As a context manager, leaving the ``with`` block closes the pool even if
    blocks are still allocated: their :class:`Page` objects become unusable
    (InvalidArgument), never dangling. Closing is refused (:class:`Busy`) while
    buffer exports of its pages (memoryviews, numpy arrays) are alive or other
    threads are inside calls on it; :meth:`close` without ``force`` is also
    refused while blocks are allocated.
    """

    def __init__(
        self,
        size_bytes: int,
        *,
        atomic_reserve_pages: int | None = None,
        pin: PinMode = "auto",
        scrub: bool = False,
        hugepages: bool = True,
        guard: bool = False,
        poison: bool = False,
        pkeys: bool = False,
        reclaim: bool = True,
        numa_node: int | None = None,
        watermark_min_pages: int | None = None,
        watermark_low_pages: int | None = None,
        watermark_high_pages: int | None = None,
        max_thread_caches: int | None = None,
        thread_cache_pages: int | None = None,
        thread_cache_batch: int | None = None,
    ) -> None:
        options = dict(locals())
        for name in ("self", "size_bytes", "__class__"):
            options.pop(name, None)
        super().__init__(size_bytes, options)

    def __enter__(self) -> Pool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close(force=True)
            return
        try:
            self.close(force=True)
        except LabyrinthError:
            pass  # do not hide the exception that is leaving the block

    def stats(self) -> Stats:
        """The pool's statistics (read without stopping other threads: exact
        when none is allocating or freeing). May block briefly."""
        return Stats(**self._stats())

    def ring(
        self,
        *,
        sq_entries: int = 256,
        max_inflight: int = 0,
        pbuf_entries: int = 0,
        pbuf_group: int = 0,
        manual_refill: bool = False,
        register: bool = True,
        single_thread: bool = False,
        incremental: bool | str = False,
        pbuf_order: int = 0,
        max_datagram: int = 0,
    ) -> Ring:
        """A managed io_uring on this pool, with the options of :class:`Ring`
        (see :mod:`labyrinth.ring`). Raises :class:`Unsupported` where
        io_uring (or an asked feature) is not available."""
        return Ring(
            self,
            sq_entries=sq_entries,
            max_inflight=max_inflight,
            pbuf_entries=pbuf_entries,
            pbuf_group=pbuf_group,
            manual_refill=manual_refill,
            register=register,
            single_thread=single_thread,
            incremental=incremental,
            pbuf_order=pbuf_order,
            max_datagram=max_datagram,
        )

    def __repr__(self) -> str:
        if self.closed:
            return "<labyrinth.Pool closed>"
        return (
            f"<labyrinth.Pool {self.size_bytes // PAGE_SIZE} pages at {self.base:#x}, "
            f"{self.live_pages} live Page objects>"
        )
