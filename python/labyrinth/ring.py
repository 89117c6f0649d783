"""Zero-copy I/O with io_uring on Labyrinth pages (``labyrinth_uring.h``).

::

    with labyrinth.Pool(1 << 20) as pool, pool.ring() as ring:
        page = pool.alloc_page()
        ring.read_fixed(fd, page, 4096, offset=0, user_data=1)
        (c,) = ring.complete(wait_nr=1)       # releases the GIL while waiting
        assert c.page is page and c.result == 4096

Ownership is enforced: while the kernel holds a page (from submission to
the completion that hands it back; for ``send_zc``, to its notification),
``page.free()``, ``page.transfer()`` and a second submission raise
:class:`~labyrinth.Busy`. The ring keeps the in-flight Page objects alive and
returns the same objects in the completions; pages received by
``recv_multishot`` come back as new Page objects owned by the thread that
takes the completion. Where io_uring or a feature is missing, calls raise
:class:`~labyrinth.Unsupported` saying which.

With ``incremental=True`` (Linux 6.12; ``"auto"``: where the kernel has it)
one provided page takes many receives, and each comes back as a
:class:`Slice`: ``memoryview(slice)`` reads the bytes in place; the thread
that took the completion owns it until ``slice.release()`` (or a ``with``
block) or ``slice.transfer(owner)``. ``release()`` raises Busy while
memoryviews of the slice are alive; the page goes back to the pool after its
last slice. Closing the ring raises Busy while slices are alive.

Bundles (Linux 6.10): ``recv_bundle(fd)`` receives where one kernel
completion fills several provided pages (TCP; on UDP one datagram per
page); each page still comes back as its own Completion, in byte order,
flagged ``COMPLETION_BUNDLE`` (the last of a kernel completion also
``COMPLETION_BUNDLE_END``). ``send_bundle(fd, pages)`` sends a list of
pages in one submission; each page is Busy until its own completion.

One thread at a time may use a ring; ``complete(wait_nr>0)`` releases the
GIL, and meanwhile other threads' calls on the ring raise Busy.
"""

from __future__ import annotations

import dataclasses
from types import TracebackType


from ._core import (
    COMPLETION_BUNDLE,
    COMPLETION_BUNDLE_END,
    COMPLETION_MORE,
    COMPLETION_NOTIF,
    COMPLETION_SLICE,
    RING_OP_READ_FIXED,
    RING_OP_RECV,
    RING_OP_RECV_BUNDLE,
    RING_OP_RECV_MULTISHOT,
    RING_OP_SEND,
    RING_OP_SEND_BUNDLE,
    RING_OP_SEND_ZC,
    SEND_BUNDLE_MAX,
    RING_OP_WRITE_FIXED,
    Completion,
    Slice,
)
from . import _core
from .errors import LabyrinthError

__all__ = [
    "Ring",
    "RingStats",
    "Completion",
    "COMPLETION_MORE",
    "COMPLETION_NOTIF",
    "COMPLETION_SLICE",
    "COMPLETION_BUNDLE",
    "COMPLETION_BUNDLE_END",
    "SEND_BUNDLE_MAX",
    "Slice",
    "RING_OP_READ_FIXED",
    "RING_OP_WRITE_FIXED",
    "RING_OP_SEND",
    "RING_OP_RECV",
    "RING_OP_SEND_ZC",
    "RING_OP_RECV_MULTISHOT",
    "RING_OP_RECV_BUNDLE",
    "RING_OP_SEND_BUNDLE",
]


@dataclasses.dataclass(frozen=True)
class RingStats:
    """``labyrinth_ring_stats``."""

    submitted: int
    submit_failures: int
    completions: int
    ops_inflight: int
    pages_inflight: int
    pbuf_entries: int
    pbuf_pages: int
    pbuf_refills: int
    pbuf_refill_failures: int
    pbuf_enobufs: int
    sq_entries: int
    cq_entries: int
    registered: int
    fixed_buffers: int
    #: multishot receives starved by an empty provided-buffer ring; the ring
    #: re-arms each one by itself once pages are back
    recv_starvations: int
    #: starved receives re-armed
    recv_rearms: int
    #: total nanoseconds receives spent starved
    recv_starved_ns: int
    #: receives starved right now
    recv_starved_now: int
    #: 1 if incremental consumption is in effect (slices)
    pbuf_incremental: int
    #: size of a provided block
    pbuf_block_bytes: int
    #: slices handed out and not yet released
    slices_live: int
    #: blocks the kernel has finished that wait for their last slice
    slice_blocks_held: int
    #: 1 if RLIMIT_MEMLOCK refused the arena's registration at creation:
    #: fixed reads and writes then run unregistered
    register_fallback: int
    #: fixed buffers of the ring's own registration the kernel still holds
    buffers_pinned: int
    #: fixed reads and writes sent unregistered because of the fallback
    fallback_ops: int
    #: bundle receive completions with data, and the pages they carried
    recv_bundles: int
    recv_bundle_pages: int
    #: kernel completions of bundled sends, and the pages they handed back
    send_bundles: int
    send_bundle_pages: int
    #: slices of datagrams that reached the end of their block: maybe cut
    recv_maybe_trunc: int
    #: max_datagram in effect (0: none)
    pbuf_min_left: int


class Ring(_core.Ring):
    """A managed io_uring bound to a pool; create it with ``Pool.ring()`` or
    ``Ring(pool, ...)``. Keyword arguments: ``sq_entries`` (default 256),
    ``max_inflight`` (0: twice sq_entries), ``pbuf_entries`` (provided-buffer
    ring size for ``recv_multishot``, a power of two, 0: none),
    ``pbuf_group``, ``manual_refill``, ``register`` (register the arena as
    fixed buffers, default True), ``single_thread``, ``incremental``
    (False, True or ``"auto"``), ``pbuf_order`` (blocks of 2**order
    pages, with incremental consumption) and ``max_datagram`` (with
    incremental consumption: the largest datagram to receive whole; the
    kernel never starts a receive in a block with less room left. Without
    it a datagram longer than the room left is cut and its Slice's
    completion says ``maybe_trunc``).

    Closing (``close()`` or leaving a ``with`` block) cancels what is in
    flight and waits for the kernel to let go of every page; pages of
    completions never taken are their submitter's again."""

    def __enter__(self) -> Ring:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
            return
        try:
            self.close()
        except LabyrinthError:
            pass

    def stats(self) -> RingStats:
        return RingStats(**self._stats())




