//! Safe Rust API for [Labyrinth](../../README.md), a user-space page allocator
//! whose pages have exactly one owner.
//!
//! # Ownership in the type system
//!
//! The C library records, for every exclusive page, the *thread* that owns
//! it, and refuses (`NOT_OWNER`) a free or a transfer by any other thread.
//! This crate makes those refusals impossible to reach in safe code:
//!
//! * [`Page`] owns one exclusive block. It derefs to `[u8]`, frees itself on
//!   drop, and is neither `Send` nor `Sync`: it cannot leave the thread that
//!   owns it, because only that thread could free it.
//! * To hand a page to another thread, that thread first names itself with
//!   [`Owner::current`] (an `Owner` is `Send` and `Copy`); the current owner
//!   calls [`Page::transfer`], which *consumes* the `Page` and returns an
//!   [`InTransit`]. `InTransit` is `Send`; it cannot be read or written; only
//!   the named owner's thread can turn it back into a `Page` with
//!   [`InTransit::claim`]. Using or freeing a page after it was handed on
//!   does not compile: the value has moved.
//! * Every page borrows its [`Pool`], so no page outlives its pool.
//! * Errors are [`Error`]: the C status as an enum, with the C message.
//!
//! ```
//! use labyrinth::{Owner, Pool, PoolOptions};
//! use std::sync::mpsc;
//! use std::thread;
//!
//! let pool = Pool::new(PoolOptions::new(4 << 20).pin(false))?;
//! let mut page = pool.alloc_page()?;          // atomic, exclusive, 4 KiB
//! page[..5].copy_from_slice(b"hello");
//!
//! thread::scope(|s| {
//!     let (id_tx, id_rx) = mpsc::channel();
//!     let (page_tx, page_rx) = mpsc::channel();
//!     let worker = s.spawn(move || {
//!         id_tx.send(Owner::current()).unwrap();   // "send pages to me"
//!         let page = page_rx.recv().unwrap();      // an InTransit
//!         let page = labyrinth::InTransit::claim(page).expect("we are its owner");
//!         assert_eq!(&page[..5], b"hello");
//!         // dropped here: freed by its owner
//!     });
//!     let to = id_rx.recv().unwrap();
//!     page_tx.send(page.transfer(to).unwrap()).unwrap();
//!     // `page` has moved: using it here would not compile.
//!     worker.join().unwrap();
//! });
//! assert_eq!(pool.stats()?.allocated_pages, 0);
//! # Ok::<(), labyrinth::Error>(())
//! ```
//!
//! Using a page after handing it on is a compile error:
//!
//! ```compile_fail,E0382
//! # use labyrinth::{Owner, Pool, PoolOptions};
//! let pool = Pool::new(PoolOptions::new(1 << 20).pin(false)).unwrap();
//! let page = pool.alloc_page().unwrap();
//! let gone = page.transfer(Owner::current()).unwrap();
//! let first = page[0]; // error[E0382]: use of moved value: `page`
//! ```
//!
//! and so is sending a `Page` to another thread without a transfer:
//!
//! ```compile_fail,E0277
//! # use labyrinth::{Pool, PoolOptions};
//! let pool = Pool::new(PoolOptions::new(1 << 20).pin(false)).unwrap();
//! let page = pool.alloc_page().unwrap();
//! std::thread::scope(|s| { s.spawn(move || drop(page)); }); // error: `Page` is not `Send`
//! ```
//!
//! The io_uring ring is in [`ring`]: operations take pages by value and
//! completions give them back.
//!
//! Linking: the build script links `liblabyrinth.so` from `$LABYRINTH_LIB_DIR`,
//! or by default from the repository's CMake build tree (`build/cpp`, or
//! `$BUILD_DIR/cpp`), and sets an rpath to it. Build the C library first
//! (`bash scripts/build.sh`).

pub mod ring;

use labyrinth_sys as sys;
use std::ffi::CStr;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// What went wrong, from the C library's status; each carries the library's
/// message for the failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No page available without waiting (`LABYRINTH_ERR_NOMEM`).
    OutOfPages(String),
    /// A bad argument (`LABYRINTH_ERR_INVALID`).
    Invalid(String),
    /// The page belongs to another owner (`LABYRINTH_ERR_NOT_OWNER`).
    NotOwner(String),
    /// The page is already free (`LABYRINTH_ERR_DOUBLE_FREE`).
    DoubleFree(String),
    /// The pointer is not from this pool (`LABYRINTH_ERR_FOREIGN`).
    Foreign(String),
    /// In use: in flight in the kernel, or the pool has live pages (`LABYRINTH_ERR_BUSY`).
    Busy(String),
    /// A waiting allocation timed out (`LABYRINTH_ERR_TIMEOUT`).
    Timeout(String),
    /// The kernel, CPU or build lacks a feature (`LABYRINTH_ERR_UNSUPPORTED`).
    Unsupported(String),
    /// A system call failed (`LABYRINTH_ERR_SYSTEM`).
    System(String),
    /// A status this crate does not know (a newer library).
    Unknown(u32, String),
}

impl Error {
    /// The error for `status`, with this thread's last message.
    pub(crate) fn last(status: sys::labyrinth_status) -> Error {
        let msg = unsafe { CStr::from_ptr(sys::labyrinth_last_error_message()) }
            .to_string_lossy()
            .into_owned();
        match status {
            sys::LABYRINTH_ERR_NOMEM => Error::OutOfPages(msg),
            sys::LABYRINTH_ERR_INVALID => Error::Invalid(msg),
            sys::LABYRINTH_ERR_NOT_OWNER => Error::NotOwner(msg),
            sys::LABYRINTH_ERR_DOUBLE_FREE => Error::DoubleFree(msg),
            sys::LABYRINTH_ERR_FOREIGN => Error::Foreign(msg),
            sys::LABYRINTH_ERR_BUSY => Error::Busy(msg),
            sys::LABYRINTH_ERR_TIMEOUT => Error::Timeout(msg),
            sys::LABYRINTH_ERR_UNSUPPORTED => Error::Unsupported(msg),
            sys::LABYRINTH_ERR_SYSTEM => Error::System(msg),
            other => Error::Unknown(other, msg),
        }
    }

    /// The C status code.
    pub fn status(&self) -> u32 {
        match self {
            Error::OutOfPages(_) => sys::LABYRINTH_ERR_NOMEM,
            Error::Invalid(_) => sys::LABYRINTH_ERR_INVALID,
            Error::NotOwner(_) => sys::LABYRINTH_ERR_NOT_OWNER,
            Error::DoubleFree(_) => sys::LABYRINTH_ERR_DOUBLE_FREE,
            Error::Foreign(_) => sys::LABYRINTH_ERR_FOREIGN,
            Error::Busy(_) => sys::LABYRINTH_ERR_BUSY,
            Error::Timeout(_) => sys::LABYRINTH_ERR_TIMEOUT,
            Error::Unsupported(_) => sys::LABYRINTH_ERR_UNSUPPORTED,
            Error::System(_) => sys::LABYRINTH_ERR_SYSTEM,
            Error::Unknown(s, _) => *s,
        }
    }

    /// The library's message.
    pub fn message(&self) -> &str {
        match self {
            Error::OutOfPages(m) | Error::Invalid(m) | Error::NotOwner(m) | Error::DoubleFree(m)
            | Error::Foreign(m) | Error::Busy(m) | Error::Timeout(m) | Error::Unsupported(m)
            | Error::System(m) | Error::Unknown(_, m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = unsafe { CStr::from_ptr(sys::labyrinth_status_name(self.status())) };
        write!(f, "{}: {}", name.to_string_lossy(), self.message())
    }
}

impl std::error::Error for Error {}

pub(crate) fn check(status: sys::labyrinth_status) -> Result<(), Error> {
    if status == sys::LABYRINTH_OK { Ok(()) } else { Err(Error::last(status)) }
}

/// Options for [`Pool::new`], starting from the library's defaults.
#[derive(Clone, Copy)]
pub struct PoolOptions(sys::labyrinth_pool_options);

impl PoolOptions {
    /// Defaults for an arena of `size_bytes` (a multiple of 4 KiB).
    pub fn new(size_bytes: usize) -> Self {
        let mut o = std::mem::MaybeUninit::<sys::labyrinth_pool_options>::zeroed();
        unsafe { sys::labyrinth_pool_options_init(o.as_mut_ptr()) };
        let mut o = unsafe { o.assume_init() };
        o.size_bytes = size_bytes;
        PoolOptions(o)
    }
    fn flag(mut self, flag: u32, on: bool) -> Self {
        if on { self.0.flags |= flag } else { self.0.flags &= !flag }
        self
    }
    /// `pin(true)`: strict `mlock` of the arena (pool creation fails when the
    /// memlock limit refuses); `pin(false)`: never pin. The default pins when
    /// the limit allows and otherwise runs unpinned with one warning.
    pub fn pin(self, strict: bool) -> Self {
        self.flag(sys::LABYRINTH_POOL_PIN_MASK, false).flag(sys::LABYRINTH_POOL_PIN, strict)
    }
    /// Zero every freed block (default off).
    pub fn scrub(self, on: bool) -> Self { self.flag(sys::LABYRINTH_POOL_SCRUB, on) }
    /// Ask for transparent huge pages (default on).
    pub fn huge_pages(self, on: bool) -> Self { self.flag(sys::LABYRINTH_POOL_HUGEPAGES, on) }
    /// Let an allocation without ATOMIC that would fail take back idle
    /// threads' cached pages (default on; a `membarrier` system call that
    /// briefly interrupts the process's other threads).
    pub fn reclaim(self, on: bool) -> Self { self.flag(sys::LABYRINTH_POOL_NO_RECLAIM, !on) }
    /// Pages only atomic allocations may take.
    pub fn atomic_reserve_pages(mut self, pages: usize) -> Self {
        self.0.atomic_reserve_pages = pages;
        self
    }
    /// The raw options, for fields this builder does not cover.
    pub fn raw(&mut self) -> &mut sys::labyrinth_pool_options { &mut self.0 }
}

/// A pool of pages. `Send + Sync`: every call may be made from any thread.
/// Dropping it destroys it; pages borrow it, so none can outlive it.
pub struct Pool {
    raw: NonNull<sys::labyrinth_pool>,
}

unsafe impl Send for Pool {}
unsafe impl Sync for Pool {}

/// Allocation flags for [`Pool::alloc`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Gfp {
    /// Never block; may use the atomic reserve.
    pub atomic: bool,
    /// Wait up to `timeout_ms` for pages to be freed.
    pub wait: bool,
    /// Zero-fill.
    pub zero: bool,
}

impl Pool {
    /// Create a pool (reserves and, by default, pins the arena).
    pub fn new(options: PoolOptions) -> Result<Pool, Error> {
        let mut raw = std::ptr::null_mut();
        check(unsafe { sys::labyrinth_pool_create(&options.0, &mut raw) })?;
        Ok(Pool { raw: NonNull::new(raw).expect("labyrinth_pool_create returned NULL with OK") })
    }

    /// The flagship: one 4 KiB page, atomic (never blocks) and exclusive.
    pub fn alloc_page(&self) -> Result<Page<'_>, Error> {
        let p = unsafe { sys::labyrinth_void_alloc_page_gfp_atomic_exclusive(self.raw.as_ptr()) };
        match NonNull::new(p.cast::<u8>()) {
            Some(ptr) => Ok(Page { pool: self, ptr, len: sys::LABYRINTH_PAGE_SIZE, _not_send: PhantomData }),
            None => Err(Error::last(unsafe { sys::labyrinth_last_status() })),
        }
    }

    /// An exclusive block of `2^order` pages, aligned to its size.
    pub fn alloc(&self, order: u32, gfp: Gfp, timeout_ms: u32) -> Result<Page<'_>, Error> {
        let mut flags = sys::LABYRINTH_GFP_EXCLUSIVE;
        if gfp.atomic { flags |= sys::LABYRINTH_GFP_ATOMIC }
        if gfp.wait { flags |= sys::LABYRINTH_GFP_WAIT }
        if gfp.zero { flags |= sys::LABYRINTH_GFP_ZERO }
        let mut p = std::ptr::null_mut();
        check(unsafe { sys::labyrinth_alloc_pages(self.raw.as_ptr(), order, flags, timeout_ms, &mut p) })?;
        let ptr = NonNull::new(p.cast::<u8>()).expect("OK without a page");
        Ok(Page { pool: self, ptr, len: sys::LABYRINTH_PAGE_SIZE << order, _not_send: PhantomData })
    }

    /// Statistics.
    pub fn stats(&self) -> Result<sys::labyrinth_stats, Error> {
        let mut s = sys::labyrinth_stats { struct_size: std::mem::size_of::<sys::labyrinth_stats>(), ..Default::default() };
        check(unsafe { sys::labyrinth_pool_stats(self.raw.as_ptr(), &mut s) })?;
        Ok(s)
    }

    /// Return this thread's cached pages and the depot to the buddy allocator.
    pub fn trim(&self) -> Result<(), Error> { check(unsafe { sys::labyrinth_pool_trim(self.raw.as_ptr()) }) }

    /// Free the blocks of owners whose threads exited; returns how many.
    pub fn reclaim_orphans(&self) -> Result<usize, Error> {
        let mut n = 0usize;
        check(unsafe { sys::labyrinth_pool_reclaim_orphans(self.raw.as_ptr(), &mut n) })?;
        Ok(n)
    }

    /// The raw handle, for the C API (borrowed: valid while `self` lives).
    pub fn as_raw(&self) -> *mut sys::labyrinth_pool { self.raw.as_ptr() }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Every Page borrows the pool, so none is alive here; InTransit values
        // also borrow it. Orphans of exited threads may remain: force.
        unsafe { sys::labyrinth_pool_destroy_ex(self.raw.as_ptr(), sys::LABYRINTH_DESTROY_FORCE) };
    }
}

/// The owner id of a thread; [`Owner::current`] on the thread that should
/// receive pages, then send it to the thread that has them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Owner(sys::labyrinth_owner);

impl Owner {
    /// The calling thread's owner id (never reused in this process).
    pub fn current() -> Owner { Owner(unsafe { sys::labyrinth_owner_self() }) }
    /// The raw id.
    pub fn id(self) -> u64 { self.0 }
}

/// One exclusive block, owned by the current thread. Derefs to its bytes;
/// freed on drop. Not `Send`: use [`Page::transfer`] to hand it on.
pub struct Page<'pool> {
    pub(crate) pool: &'pool Pool,
    pub(crate) ptr: NonNull<u8>,
    pub(crate) len: usize,
    pub(crate) _not_send: PhantomData<*mut u8>,
}

impl<'pool> Page<'pool> {
    /// The block's address.
    pub fn as_ptr(&self) -> *mut u8 { self.ptr.as_ptr() }
    /// Size in bytes (4096 << order).
    pub fn len_bytes(&self) -> usize { self.len }
    /// Its order (log2 of its pages).
    pub fn order(&self) -> u32 { (self.len / sys::LABYRINTH_PAGE_SIZE).trailing_zeros() }

    /// Hand the block to `to`. The page is consumed; the returned
    /// [`InTransit`] can cross threads and becomes a `Page` again only on
    /// `to`'s thread ([`InTransit::claim`]).
    pub fn transfer(self, to: Owner) -> Result<InTransit<'pool>, (Page<'pool>, Error)> {
        let st = unsafe { sys::labyrinth_page_transfer(self.pool.raw.as_ptr(), self.ptr.as_ptr().cast(), to.0) };
        if st != sys::LABYRINTH_OK {
            return Err((self, Error::last(st)));
        }
        let t = InTransit { pool: self.pool, ptr: self.ptr, len: self.len, owner: to };
        std::mem::forget(self);
        Ok(t)
    }

    /// Free now, and see the library's answer (drop frees too, silently).
    pub fn free(self) -> Result<(), Error> {
        let st = unsafe { sys::labyrinth_free_pages_order(self.pool.raw.as_ptr(), self.ptr.as_ptr().cast(), self.order()) };
        std::mem::forget(self);
        check(st)
    }
}

impl Deref for Page<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] { unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) } }
}

impl DerefMut for Page<'_> {
    fn deref_mut(&mut self) -> &mut [u8] { unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) } }
}

impl Drop for Page<'_> {
    fn drop(&mut self) {
        // Cannot fail for a Page (we own it, on its thread); never panic here.
        unsafe { sys::labyrinth_free_pages_order(self.pool.raw.as_ptr(), self.ptr.as_ptr().cast(), self.order()) };
    }
}

impl fmt::Debug for Page<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Page").field("ptr", &self.ptr).field("len", &self.len).finish()
    }
}

/// A block on its way to another owner: `Send`, not readable, not writable.
/// Only the owner's thread can [`claim`](InTransit::claim) it. Dropped
/// unclaimed, it is freed if dropped on the owner's thread; elsewhere it is
/// left to its owner (it becomes an orphan when that thread exits, see
/// [`Pool::reclaim_orphans`]).
pub struct InTransit<'pool> {
    pool: &'pool Pool,
    ptr: NonNull<u8>,
    len: usize,
    owner: Owner,
}

unsafe impl Send for InTransit<'_> {}

impl<'pool> InTransit<'pool> {
    /// The owner it was handed to.
    pub fn owner(&self) -> Owner { self.owner }

    /// On the owner's thread: the page. Elsewhere: `Err(self)`, unchanged.
    pub fn claim(this: Self) -> Result<Page<'pool>, InTransit<'pool>> {
        if Owner::current() != this.owner {
            return Err(this);
        }
        let page = Page { pool: this.pool, ptr: this.ptr, len: this.len, _not_send: PhantomData };
        std::mem::forget(this);
        Ok(page)
    }
}

impl Drop for InTransit<'_> {
    fn drop(&mut self) {
        if Owner::current() == self.owner {
            let order = (self.len / sys::LABYRINTH_PAGE_SIZE).trailing_zeros();
            unsafe { sys::labyrinth_free_pages_order(self.pool.raw.as_ptr(), self.ptr.as_ptr().cast(), order) };
        }
    }
}

impl fmt::Debug for InTransit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InTransit").field("ptr", &self.ptr).field("owner", &self.owner).finish()
    }
}
