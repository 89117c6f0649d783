//! io_uring zero-copy I/O on Labyrinth pages, with ownership passing.
//!
//! Every operation takes the [`Page`] *by value*: while the kernel holds it,
//! the application has no handle to it, so touching, freeing or resubmitting
//! a page in flight does not compile. [`Ring::complete`] hands each page back
//! inside its [`Completion`], with the result. If a submission fails, the
//! page comes straight back in the error. Dropping the ring cancels what is
//! in flight, waits for the kernel to let go, and frees the pages whose
//! completions were never taken.
//!
//! ```no_run
//! # use labyrinth::{Pool, PoolOptions, ring::{Ring, RingOptions}};
//! # use std::os::fd::AsRawFd;
//! let pool = Pool::new(PoolOptions::new(16 << 20))?;
//! let mut ring = Ring::new(&pool, RingOptions::default())?;
//! let file = std::fs::File::open("/etc/hostname").unwrap();
//! let page = pool.alloc_page()?;
//! let id = ring.read_fixed(file.as_raw_fd(), page, 4096, 0).map_err(|(_, e)| e)?;
//! // `page` has moved into the ring: using it here would not compile.
//! for c in ring.complete(1, u32::MAX)? {
//!     assert_eq!(c.id, id);
//!     let page = c.page.expect("a read hands its page back");
//!     println!("read {} bytes: {:?}", c.result, &page[..c.result.max(0) as usize]);
//! }
//! # Ok::<(), labyrinth::Error>(())
//! ```
//!
//! ```compile_fail,E0382
//! # use labyrinth::{Pool, PoolOptions, ring::{Ring, RingOptions}};
//! let pool = Pool::new(PoolOptions::new(16 << 20)).unwrap();
//! let mut ring = Ring::new(&pool, RingOptions::default()).unwrap();
//! let page = pool.alloc_page().unwrap();
//! let _ = ring.recv(0, page, 4096, 0);
//! let byte = page[0]; // error[E0382]: the page is the kernel's now
//! ```
use crate::{check, Error, Page, Pool};
use labyrinth_sys as sys;
use labyrinth_sys::uring as u;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::os::fd::RawFd;
use std::ptr::NonNull;

/// Options for [`Ring::new`].
#[derive(Clone, Copy, Debug)]
pub struct RingOptions(u::labyrinth_ring_options);

impl Default for RingOptions {
    fn default() -> Self {
        let mut o = std::mem::MaybeUninit::<u::labyrinth_ring_options>::zeroed();
        unsafe { u::labyrinth_ring_options_init(o.as_mut_ptr()) };
        RingOptions(unsafe { o.assume_init() })
    }
}

impl RingOptions {
    /// Submission queue entries.
    pub fn sq_entries(mut self, n: u32) -> Self { self.0.sq_entries = n; self }
    /// Pages in the provided-buffer ring for multishot receive (power of two; 0: none).
    pub fn provided_buffers(mut self, n: u32) -> Self { self.0.pbuf_entries = n; self }
    /// Incremental consumption (Linux 6.12): each provided block of
    /// 2^`order` pages takes many receives, each handed out as a [`Slice`].
    /// `Ring::new` returns `Error::Unsupported` where the kernel lacks it.
    pub fn incremental(mut self, order: u32) -> Self {
        self.0.flags |= u::LABYRINTH_RING_PBUF_INCREMENTAL;
        self.0.pbuf_order = order;
        self
    }
    /// With incremental consumption: the largest datagram to receive whole.
    /// The kernel then never starts a receive in a block with less room
    /// left (`Error::Unsupported` where it cannot); without it a longer
    /// datagram is cut at the block's end and `Completion::maybe_trunc` says so.
    pub fn max_datagram(mut self, bytes: u32) -> Self { self.0.max_datagram = bytes; self }
    /// Only this thread will use the ring: batched completions (best for receive loops).
    pub fn single_thread(mut self, on: bool) -> Self {
        if on { self.0.flags |= u::LABYRINTH_RING_SINGLE_THREAD } else { self.0.flags &= !u::LABYRINTH_RING_SINGLE_THREAD }
        self
    }
}

/// Which operation a completion belongs to (returned by every submission).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpId(pub u64);

/// One completion; `page` is the page handed back, owned by this thread again.
#[derive(Debug)]
pub struct Completion<'pool> {
    /// The operation.
    pub id: OpId,
    /// Bytes transferred, or `-errno`.
    pub result: i32,
    /// `LABYRINTH_OP_*`.
    pub op: u32,
    /// More completions follow for this operation (multishot goes on, or a
    /// zero-copy send still holds its page until its notification).
    pub more: bool,
    /// The page, if this completion hands one back.
    pub page: Option<Page<'pool>>,
    /// With incremental consumption: the received bytes, in place.
    pub slice: Option<Slice<'pool>>,
    /// The last page of one kernel completion of a bundle
    /// ([`Ring::recv_bundle`], [`Ring::send_bundle`]).
    pub bundle_end: bool,
    /// A datagram's slice that reached its block's end: it may have been cut
    /// (see [`RingOptions::max_datagram`]).
    pub maybe_trunc: bool,
}

/// The bytes one receive put into a provided block (incremental
/// consumption), read in place as `&[u8]`. Owned by this thread (not
/// `Send`); dropping it releases it, and the block goes back to the pool
/// after its last slice. Drop every slice before its ring: a ring dropped
/// while slices are alive is refused by the library and stays (its pages
/// with it) until the process ends.
pub struct Slice<'pool> {
    ring: NonNull<u::labyrinth_ring>,
    ptr: NonNull<u8>,
    len: usize,
    gen: u32,
    _pool: PhantomData<&'pool Pool>,
    _not_send: PhantomData<*mut u8>,
}

impl Slice<'_> {
    /// The slice's generation (the completion's `slice_gen`): with the
    /// address it names this slice and no later one at the same address.
    pub fn generation(&self) -> u32 {
        self.gen
    }
}

impl std::ops::Deref for Slice<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // The kernel has stopped writing these bytes (their completion came)
        // and the block stays out of the pool until this slice is released.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::fmt::Debug for Slice<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slice({:p}, {} bytes)", self.ptr, self.len)
    }
}

impl Drop for Slice<'_> {
    fn drop(&mut self) {
        // By generation: never a newer slice that took this address.
        unsafe { u::labyrinth_ring_slice_release_gen(self.ring.as_ptr(), self.ptr.as_ptr().cast(), self.gen) };
    }
}

/// A managed io_uring bound to a pool. Not `Send`: pages come back to the
/// thread that submitted them.
pub struct Ring<'pool> {
    raw: NonNull<u::labyrinth_ring>,
    pool: &'pool Pool,
    inflight: HashMap<usize, usize>, // address -> size of each page the kernel holds
    next: u64,
    _not_send: PhantomData<*mut u8>,
}

type Submit = unsafe extern "C" fn(*mut u::labyrinth_ring, i32, *mut core::ffi::c_void, u32, u64, u64) -> sys::labyrinth_status;
type SubmitNet = unsafe extern "C" fn(*mut u::labyrinth_ring, i32, *mut core::ffi::c_void, u32, i32, u64) -> sys::labyrinth_status;

impl<'pool> Ring<'pool> {
    /// Create a ring (registers the pool's arena as fixed buffers). Returns
    /// `Error::Unsupported` where io_uring or a needed feature is missing.
    pub fn new(pool: &'pool Pool, options: RingOptions) -> Result<Ring<'pool>, Error> {
        let mut raw = std::ptr::null_mut();
        check(unsafe { u::labyrinth_ring_create(pool.as_raw(), &options.0, &mut raw) })?;
        Ok(Ring { raw: NonNull::new(raw).unwrap(), pool, inflight: HashMap::new(), next: 1, _not_send: PhantomData })
    }

    fn take(&mut self, page: Page<'pool>, st: sys::labyrinth_status, id: u64) -> Result<OpId, (Page<'pool>, Error)> {
        if st != sys::LABYRINTH_OK {
            return Err((page, Error::last(st)));
        }
        self.inflight.insert(page.as_ptr() as usize, page.len_bytes());
        std::mem::forget(page); // the kernel's now; it comes back in a Completion
        Ok(OpId(id))
    }

    fn file_op(&mut self, f: Submit, fd: RawFd, page: Page<'pool>, len: u32, offset: u64) -> Result<OpId, (Page<'pool>, Error)> {
        let id = self.next;
        self.next += 1;
        let st = unsafe { f(self.raw.as_ptr(), fd, page.as_ptr().cast(), len, offset, id) };
        self.take(page, st, id)
    }

    fn net_op(&mut self, f: SubmitNet, fd: RawFd, page: Page<'pool>, len: u32, flags: i32) -> Result<OpId, (Page<'pool>, Error)> {
        let id = self.next;
        self.next += 1;
        let st = unsafe { f(self.raw.as_ptr(), fd, page.as_ptr().cast(), len, flags, id) };
        self.take(page, st, id)
    }

    /// Read `len` bytes at `offset` of `fd` into `page` (fixed buffer, O_DIRECT too).
    pub fn read_fixed(&mut self, fd: RawFd, page: Page<'pool>, len: u32, offset: u64) -> Result<OpId, (Page<'pool>, Error)> {
        self.file_op(u::labyrinth_ring_read_fixed, fd, page, len, offset)
    }
    /// Write `len` bytes of `page` at `offset` of `fd` (fixed buffer).
    pub fn write_fixed(&mut self, fd: RawFd, page: Page<'pool>, len: u32, offset: u64) -> Result<OpId, (Page<'pool>, Error)> {
        self.file_op(u::labyrinth_ring_write_fixed, fd, page, len, offset)
    }
    /// `send(2)` `len` bytes of `page`.
    pub fn send(&mut self, fd: RawFd, page: Page<'pool>, len: u32, flags: i32) -> Result<OpId, (Page<'pool>, Error)> {
        self.net_op(u::labyrinth_ring_send, fd, page, len, flags)
    }
    /// `recv(2)` up to `len` bytes into `page`.
    pub fn recv(&mut self, fd: RawFd, page: Page<'pool>, len: u32, flags: i32) -> Result<OpId, (Page<'pool>, Error)> {
        self.net_op(u::labyrinth_ring_recv, fd, page, len, flags)
    }
    /// Zero-copy send: the page comes back with the notification completion.
    pub fn send_zc(&mut self, fd: RawFd, page: Page<'pool>, len: u32, flags: i32) -> Result<OpId, (Page<'pool>, Error)> {
        self.net_op(u::labyrinth_ring_send_zc, fd, page, len, flags)
    }
    /// Multishot receive into pages from the provided-buffer ring; each
    /// completion carries a page owned by this thread.
    pub fn recv_multishot(&mut self, fd: RawFd, flags: i32) -> Result<OpId, Error> {
        let id = self.next;
        self.next += 1;
        check(unsafe { u::labyrinth_ring_recv_multishot(self.raw.as_ptr(), fd, flags, id) })?;
        Ok(OpId(id))
    }
    /// Receive with bundles (Linux 6.10): one kernel completion fills
    /// several provided pages (TCP; on UDP one datagram per page), and each
    /// page comes back in its own [`Completion`], in byte order. Multishot
    /// unless `oneshot`.
    pub fn recv_bundle(&mut self, fd: RawFd, flags: i32, oneshot: bool) -> Result<OpId, Error> {
        let id = self.next;
        self.next += 1;
        let bundle_flags = if oneshot { u::LABYRINTH_RECV_BUNDLE_ONESHOT } else { 0 };
        check(unsafe { u::labyrinth_ring_recv_bundle(self.raw.as_ptr(), fd, flags, bundle_flags, id) })?;
        Ok(OpId(id))
    }
    /// Send `pages` (`len` bytes of each) in one submission, in order. Each
    /// page comes back in its own [`Completion`] (same [`OpId`]). On error
    /// every page comes straight back.
    #[allow(clippy::type_complexity)]
    pub fn send_bundle(&mut self, fd: RawFd, pages: Vec<(Page<'pool>, u32)>, flags: i32) -> Result<OpId, (Vec<(Page<'pool>, u32)>, Error)> {
        let id = self.next;
        self.next += 1;
        let ptrs: Vec<*mut core::ffi::c_void> = pages.iter().map(|(p, _)| p.as_ptr().cast()).collect();
        let lens: Vec<u32> = pages.iter().map(|&(_, l)| l).collect();
        let st = unsafe { u::labyrinth_ring_send_bundle(self.raw.as_ptr(), fd, ptrs.as_ptr(), lens.as_ptr(), ptrs.len(), flags, id) };
        if st != sys::LABYRINTH_OK {
            return Err((pages, Error::last(st)));
        }
        for (page, _) in pages {
            self.inflight.insert(page.as_ptr() as usize, page.len_bytes());
            std::mem::forget(page); // the kernel's now
        }
        Ok(OpId(id))
    }
    /// Give a received page straight back to the provided-buffer ring.
    pub fn provide(&mut self, page: Page<'pool>) -> Result<(), (Page<'pool>, Error)> {
        let st = unsafe { u::labyrinth_ring_provide(self.raw.as_ptr(), page.as_ptr().cast()) };
        if st != sys::LABYRINTH_OK {
            return Err((page, Error::last(st)));
        }
        std::mem::forget(page);
        Ok(())
    }
    /// Ask the kernel to cancel an operation; its completion follows.
    pub fn cancel(&mut self, id: OpId) -> Result<(), Error> {
        check(unsafe { u::labyrinth_ring_cancel(self.raw.as_ptr(), id.0) })
    }

    /// Take completions: wait until `wait_nr` arrived or `timeout_ms` passed
    /// (`u32::MAX`: no limit); 0 never waits.
    pub fn complete(&mut self, wait_nr: usize, timeout_ms: u32) -> Result<Vec<Completion<'pool>>, Error> {
        let mut buf = vec![
            u::labyrinth_completion { user_data: 0, page: std::ptr::null_mut(), result: 0, op: 0, flags: 0, slice_gen: 0 };
            64.max(wait_nr)
        ];
        let mut n = 0usize;
        check(unsafe { u::labyrinth_ring_complete(self.raw.as_ptr(), buf.as_mut_ptr(), buf.len(), wait_nr, timeout_ms, &mut n) })?;
        let mut out = Vec::with_capacity(n);
        for c in &buf[..n] {
            let is_slice = c.flags & u::LABYRINTH_COMPLETION_SLICE != 0;
            let slice = NonNull::new(c.page.cast::<u8>()).filter(|_| is_slice).map(|ptr| Slice {
                ring: self.raw,
                ptr,
                len: c.result.max(0) as usize,
                gen: c.slice_gen,
                _pool: PhantomData,
                _not_send: PhantomData,
            });
            let page = NonNull::new(c.page.cast::<u8>()).filter(|_| !is_slice).map(|ptr| {
                // A submitted page has the size it was submitted with; a
                // provided (multishot) page is one 4 KiB page.
                let len = self.inflight.remove(&(ptr.as_ptr() as usize)).unwrap_or(sys::LABYRINTH_PAGE_SIZE);
                Page { pool: self.pool, ptr, len, _not_send: PhantomData }
            });
            out.push(Completion {
                id: OpId(c.user_data),
                result: c.result,
                op: c.op,
                more: c.flags & u::LABYRINTH_COMPLETION_MORE != 0,
                page,
                slice,
                bundle_end: c.flags & u::LABYRINTH_COMPLETION_BUNDLE_END != 0,
                maybe_trunc: c.flags & u::LABYRINTH_COMPLETION_MAYBE_TRUNC != 0,
            });
        }
        Ok(out)
    }

    /// The ring's statistics.
    pub fn stats(&self) -> Result<u::labyrinth_ring_stats, Error> {
        let mut s = u::labyrinth_ring_stats { struct_size: std::mem::size_of::<u::labyrinth_ring_stats>(), ..Default::default() };
        check(unsafe { u::labyrinth_ring_get_stats(self.raw.as_ptr(), &mut s) })?;
        Ok(s)
    }
}

impl Drop for Ring<'_> {
    fn drop(&mut self) {
        // Cancels and waits for the kernel; pages of operations whose
        // completions were never taken come back to us (their submitter):
        // free them.
        // Refused (nothing changes) while slices are alive: the kernel may
        // still hold the in-flight pages then, so they are not freed.
        if unsafe { u::labyrinth_ring_destroy(self.raw.as_ptr()) } != sys::LABYRINTH_OK {
            return;
        }
        for (addr, _) in self.inflight.drain() {
            unsafe { sys::labyrinth_free_pages(self.pool.as_raw(), addr as *mut core::ffi::c_void) };
        }
    }
}
