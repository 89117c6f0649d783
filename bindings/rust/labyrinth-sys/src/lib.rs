//! Raw declarations of the Labyrinth C ABI (`cpp/include/labyrinth/labyrinth.h`),
//! written by hand. `tests/layout.rs` compiles a C program against the header
//! and checks every struct size and field offset, every constant and the list
//! of functions against these declarations, so they cannot drift.
//!
//! Everything here is `unsafe` to call; the `labyrinth` crate is the safe API.
//! Ownership, blocking and signal-safety rules are those documented in the
//! header for each function.
#![allow(non_camel_case_types)]
#![no_std]

use core::ffi::{c_char, c_int, c_uint, c_void};

/// Opaque pool handle.
#[repr(C)]
pub struct labyrinth_pool {
    _private: [u8; 0],
}

pub type labyrinth_status = c_uint;
pub const LABYRINTH_OK: labyrinth_status = 0;
pub const LABYRINTH_ERR_NOMEM: labyrinth_status = 1;
pub const LABYRINTH_ERR_INVALID: labyrinth_status = 2;
pub const LABYRINTH_ERR_NOT_OWNER: labyrinth_status = 3;
pub const LABYRINTH_ERR_DOUBLE_FREE: labyrinth_status = 4;
pub const LABYRINTH_ERR_FOREIGN: labyrinth_status = 5;
pub const LABYRINTH_ERR_BUSY: labyrinth_status = 6;
pub const LABYRINTH_ERR_TIMEOUT: labyrinth_status = 7;
pub const LABYRINTH_ERR_UNSUPPORTED: labyrinth_status = 8;
pub const LABYRINTH_ERR_SYSTEM: labyrinth_status = 9;
pub const LABYRINTH_STATUS_COUNT: usize = 10;

pub type labyrinth_gfp = u32;
pub const LABYRINTH_GFP_ATOMIC: labyrinth_gfp = 1 << 0;
pub const LABYRINTH_GFP_WAIT: labyrinth_gfp = 1 << 1;
pub const LABYRINTH_GFP_ZERO: labyrinth_gfp = 1 << 2;
pub const LABYRINTH_GFP_EXCLUSIVE: labyrinth_gfp = 1 << 3;

pub type labyrinth_owner = u64;
pub const LABYRINTH_OWNER_NONE: labyrinth_owner = 0;
pub const LABYRINTH_OWNER_MAX: labyrinth_owner = 0xFFFF_FFFF_FFF0;

pub const LABYRINTH_AUTO: usize = usize::MAX;
pub const LABYRINTH_PAGE_SIZE: usize = 4096;
pub const LABYRINTH_MAX_ORDER: c_uint = 10;
pub const LABYRINTH_TIMEOUT_INFINITE: u32 = u32::MAX;

pub const LABYRINTH_POOL_PIN: u32 = 1 << 0;
pub const LABYRINTH_POOL_HUGEPAGES: u32 = 1 << 1;
pub const LABYRINTH_POOL_SCRUB: u32 = 1 << 2;
pub const LABYRINTH_POOL_POISON: u32 = 1 << 3;
pub const LABYRINTH_POOL_GUARD: u32 = 1 << 4;
pub const LABYRINTH_POOL_PKEYS: u32 = 1 << 5;
pub const LABYRINTH_POOL_NO_RECLAIM: u32 = 1 << 6;
pub const LABYRINTH_POOL_PIN_BEST_EFFORT: u32 = 1 << 7;
pub const LABYRINTH_POOL_PIN_MASK: u32 = LABYRINTH_POOL_PIN | LABYRINTH_POOL_PIN_BEST_EFFORT;
pub const LABYRINTH_POOL_DEFAULT_FLAGS: u32 = LABYRINTH_POOL_PIN_BEST_EFFORT | LABYRINTH_POOL_HUGEPAGES;
pub const LABYRINTH_DESTROY_FORCE: u32 = 1 << 0;

pub const LABYRINTH_ABI_VERSION_MAJOR: u32 = 1;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct labyrinth_pool_options {
    pub struct_size: usize,
    pub size_bytes: usize,
    pub atomic_reserve_pages: usize,
    pub flags: u32,
    pub numa_node: c_int,
    pub watermark_min_pages: usize,
    pub watermark_low_pages: usize,
    pub watermark_high_pages: usize,
    pub max_thread_caches: u32,
    pub thread_cache_pages: u32,
    pub thread_cache_batch: u32,
    /// ABI 1.1: `const labyrinth_arena_provider *` (labyrinth_arena.h); null: anonymous.
    pub arena_provider: *const c_void,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct labyrinth_stats {
    pub struct_size: usize,
    pub total_pages: u64,
    pub free_pages: u64,
    pub reserve_pages: u64,
    pub reserve_target: u64,
    pub cached_pages: u64,
    pub allocated_pages: u64,
    pub inflight_pages: u64,
    pub orphaned_pages: u64,
    pub free_blocks: [u64; LABYRINTH_MAX_ORDER as usize + 1],
    pub shared_free_pages: u64,
    pub reserve_uses: u64,
    pub failures: [u64; LABYRINTH_STATUS_COUNT],
    pub waits: u64,
    pub timeouts: u64,
    pub refills: u64,
    pub drains: u64,
    pub pressure_events: u64,
    pub watermark_min: u64,
    pub watermark_low: u64,
    pub watermark_high: u64,
    pub thread_caches_in_use: u64,
    pub metadata_bytes: u64,
    pub flags: u32,
    pub huge_pages: u32,
    pub cache_reclaims: u64,
    pub reclaimed_pages: u64,
    /// ABI 1.1: the arena provider's name ("anonymous" without one); borrowed
    /// while the pool lives.
    pub arena_provider: *const c_char,
    pub arena_unused_bytes: u64,
    pub arena_flags: u32,
}

impl Default for labyrinth_stats {
    /// All zero (a null arena_provider), like C's memset.
    fn default() -> Self {
        // SAFETY: every field is an integer, an array of integers or a raw pointer.
        unsafe { core::mem::zeroed() }
    }
}

extern "C" {
    pub fn labyrinth_pool_options_init(opts: *mut labyrinth_pool_options);
    pub fn labyrinth_pool_create(
        opts: *const labyrinth_pool_options,
        out: *mut *mut labyrinth_pool,
    ) -> labyrinth_status;
    pub fn labyrinth_pool_destroy(pool: *mut labyrinth_pool) -> labyrinth_status;
    pub fn labyrinth_pool_destroy_ex(pool: *mut labyrinth_pool, flags: u32) -> labyrinth_status;
    pub fn labyrinth_pool_trim(pool: *mut labyrinth_pool) -> labyrinth_status;
    pub fn labyrinth_pool_arena(
        pool: *const labyrinth_pool,
        base: *mut *mut c_void,
        size_bytes: *mut usize,
    ) -> labyrinth_status;
    pub fn labyrinth_void_alloc_page_gfp_atomic_exclusive(pool: *mut labyrinth_pool) -> *mut c_void;
    pub fn labyrinth_alloc_pages(
        pool: *mut labyrinth_pool,
        order: c_uint,
        gfp: labyrinth_gfp,
        timeout_ms: u32,
        out_page: *mut *mut c_void,
    ) -> labyrinth_status;
    pub fn labyrinth_free_pages(pool: *mut labyrinth_pool, page: *mut c_void) -> labyrinth_status;
    pub fn labyrinth_free_pages_order(pool: *mut labyrinth_pool, page: *mut c_void, order: c_uint) -> labyrinth_status;
    pub fn labyrinth_page_transfer(
        pool: *mut labyrinth_pool,
        page: *mut c_void,
        new_owner: labyrinth_owner,
    ) -> labyrinth_status;
    pub fn labyrinth_page_info(
        pool: *const labyrinth_pool,
        page: *const c_void,
        owner: *mut labyrinth_owner,
        order: *mut c_uint,
    ) -> labyrinth_status;
    pub fn labyrinth_owner_self() -> labyrinth_owner;
    pub fn labyrinth_pool_reclaim_orphans(
        pool: *mut labyrinth_pool,
        reclaimed: *mut usize,
    ) -> labyrinth_status;
    pub fn labyrinth_pool_stats(
        pool: *const labyrinth_pool,
        out: *mut labyrinth_stats,
    ) -> labyrinth_status;
    pub fn labyrinth_last_status() -> labyrinth_status;
    pub fn labyrinth_last_error_message() -> *const c_char;
    pub fn labyrinth_clear_last_error();
    pub fn labyrinth_status_name(status: labyrinth_status) -> *const c_char;
    pub fn labyrinth_abi_version() -> u32;
}

/// Every function declared above, for the drift check in tests/layout.rs.
pub const DECLARED_FUNCTIONS: &[&str] = &[
    "labyrinth_pool_options_init",
    "labyrinth_pool_create",
    "labyrinth_pool_destroy",
    "labyrinth_pool_destroy_ex",
    "labyrinth_pool_trim",
    "labyrinth_pool_arena",
    "labyrinth_void_alloc_page_gfp_atomic_exclusive",
    "labyrinth_alloc_pages",
    "labyrinth_free_pages",
    "labyrinth_free_pages_order",
    "labyrinth_page_transfer",
    "labyrinth_page_info",
    "labyrinth_owner_self",
    "labyrinth_pool_reclaim_orphans",
    "labyrinth_pool_stats",
    "labyrinth_last_status",
    "labyrinth_last_error_message",
    "labyrinth_clear_last_error",
    "labyrinth_status_name",
    "labyrinth_abi_version",
];

/// Declarations of `labyrinth_uring.h`: io_uring zero-copy I/O.
pub mod uring {
    use super::{labyrinth_owner, labyrinth_pool, labyrinth_status};
    use core::ffi::{c_int, c_void};

    /// Opaque managed ring.
    #[repr(C)]
    pub struct labyrinth_ring {
        _private: [u8; 0],
    }

    pub const LABYRINTH_RING_MANUAL_REFILL: u32 = 1 << 0;
    pub const LABYRINTH_RING_NO_REGISTER: u32 = 1 << 1;
    pub const LABYRINTH_RING_SINGLE_THREAD: u32 = 1 << 2;
    pub const LABYRINTH_RING_REPORT_STARVED: u32 = 1 << 3;
    pub const LABYRINTH_RING_PBUF_INCREMENTAL: u32 = 1 << 4;
    pub const LABYRINTH_RING_PBUF_INCREMENTAL_IF_AVAILABLE: u32 = 1 << 5;
    pub const LABYRINTH_COMPLETION_MORE: u32 = 1 << 0;
    pub const LABYRINTH_COMPLETION_NOTIF: u32 = 1 << 1;
    pub const LABYRINTH_COMPLETION_STARVED: u32 = 1 << 2;
    pub const LABYRINTH_COMPLETION_SLICE: u32 = 1 << 3;

    pub const LABYRINTH_OP_NONE: u32 = 0;
    pub const LABYRINTH_OP_READ_FIXED: u32 = 1;
    pub const LABYRINTH_OP_WRITE_FIXED: u32 = 2;
    pub const LABYRINTH_OP_SEND: u32 = 3;
    pub const LABYRINTH_OP_RECV: u32 = 4;
    pub const LABYRINTH_OP_SEND_ZC: u32 = 5;
    pub const LABYRINTH_OP_RECV_MULTISHOT: u32 = 6;

    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    pub struct labyrinth_ring_options {
        pub struct_size: usize,
        pub sq_entries: u32,
        pub max_inflight: u32,
        pub pbuf_entries: u32,
        pub pbuf_group: u16,
        pub reserved0: u16,
        pub flags: u32,
        pub pbuf_order: u32,
    }

    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    pub struct labyrinth_completion {
        pub user_data: u64,
        pub page: *mut c_void,
        pub result: i32,
        pub op: u32,
        pub flags: u32,
        pub reserved: u32,
    }

    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default)]
    pub struct labyrinth_ring_stats {
        pub struct_size: usize,
        pub submitted: u64,
        pub submit_failures: u64,
        pub completions: u64,
        pub ops_inflight: u64,
        pub pages_inflight: u64,
        pub pbuf_entries: u64,
        pub pbuf_pages: u64,
        pub pbuf_refills: u64,
        pub pbuf_refill_failures: u64,
        pub pbuf_enobufs: u64,
        pub sq_entries: u32,
        pub cq_entries: u32,
        pub registered: u32,
        pub fixed_buffers: u32,
        pub recv_starvations: u64,
        pub recv_rearms: u64,
        pub recv_starved_ns: u64,
        pub recv_starved_now: u64,
        pub pbuf_incremental: u32,
        pub pbuf_block_bytes: u32,
        pub slices_live: u64,
        pub slice_blocks_held: u64,
    }

    extern "C" {
        pub fn labyrinth_pool_register_io_uring(pool: *mut labyrinth_pool, ring_fd: c_int) -> labyrinth_status;
        pub fn labyrinth_pool_unregister_io_uring(pool: *mut labyrinth_pool, ring_fd: c_int) -> labyrinth_status;
        pub fn labyrinth_page_buf_index(pool: *const labyrinth_pool, page: *const c_void, buf_index: *mut u16) -> labyrinth_status;
        pub fn labyrinth_pool_io_uring_buffers(pool: *const labyrinth_pool, count: *mut u32) -> labyrinth_status;
        pub fn labyrinth_ring_options_init(opts: *mut labyrinth_ring_options);
        pub fn labyrinth_ring_create(pool: *mut labyrinth_pool, opts: *const labyrinth_ring_options, out: *mut *mut labyrinth_ring) -> labyrinth_status;
        pub fn labyrinth_ring_destroy(ring: *mut labyrinth_ring) -> labyrinth_status;
        pub fn labyrinth_ring_fd(ring: *const labyrinth_ring) -> c_int;
        pub fn labyrinth_ring_read_fixed(ring: *mut labyrinth_ring, fd: c_int, page: *mut c_void, len: u32, offset: u64, user_data: u64) -> labyrinth_status;
        pub fn labyrinth_ring_write_fixed(ring: *mut labyrinth_ring, fd: c_int, page: *mut c_void, len: u32, offset: u64, user_data: u64) -> labyrinth_status;
        pub fn labyrinth_ring_send(ring: *mut labyrinth_ring, fd: c_int, page: *mut c_void, len: u32, msg_flags: c_int, user_data: u64) -> labyrinth_status;
        pub fn labyrinth_ring_recv(ring: *mut labyrinth_ring, fd: c_int, page: *mut c_void, len: u32, msg_flags: c_int, user_data: u64) -> labyrinth_status;
        pub fn labyrinth_ring_send_zc(ring: *mut labyrinth_ring, fd: c_int, page: *mut c_void, len: u32, msg_flags: c_int, user_data: u64) -> labyrinth_status;
        pub fn labyrinth_ring_recv_multishot(ring: *mut labyrinth_ring, fd: c_int, msg_flags: c_int, user_data: u64) -> labyrinth_status;
        pub fn labyrinth_ring_cancel(ring: *mut labyrinth_ring, user_data: u64) -> labyrinth_status;
        pub fn labyrinth_ring_provide(ring: *mut labyrinth_ring, page: *mut c_void) -> labyrinth_status;
        pub fn labyrinth_ring_slice_release(ring: *mut labyrinth_ring, slice: *mut c_void) -> labyrinth_status;
        pub fn labyrinth_ring_slice_transfer(ring: *mut labyrinth_ring, slice: *mut c_void, new_owner: labyrinth_owner) -> labyrinth_status;
        pub fn labyrinth_ring_complete(ring: *mut labyrinth_ring, out: *mut labyrinth_completion, max: usize, wait_nr: usize, timeout_ms: u32, count: *mut usize) -> labyrinth_status;
        pub fn labyrinth_ring_get_stats(ring: *const labyrinth_ring, out: *mut labyrinth_ring_stats) -> labyrinth_status;
    }

    /// Every function declared above, for the drift check.
    pub const DECLARED_FUNCTIONS: &[&str] = &[
        "labyrinth_pool_register_io_uring", "labyrinth_pool_unregister_io_uring",
        "labyrinth_page_buf_index", "labyrinth_pool_io_uring_buffers",
        "labyrinth_ring_options_init", "labyrinth_ring_create", "labyrinth_ring_destroy",
        "labyrinth_ring_fd", "labyrinth_ring_read_fixed", "labyrinth_ring_write_fixed",
        "labyrinth_ring_send", "labyrinth_ring_recv", "labyrinth_ring_send_zc",
        "labyrinth_ring_recv_multishot", "labyrinth_ring_cancel", "labyrinth_ring_provide",
        "labyrinth_ring_complete", "labyrinth_ring_get_stats",
        "labyrinth_ring_slice_release", "labyrinth_ring_slice_transfer",
    ];
}

/// The structs the header's inline fast path reads (labyrinth.h, section
/// "Inline fast path"; ABI 1.x, docs/abi.md). This crate does not use them:
/// its calls go through the exported functions, which are the same calls.
/// Declared so that their layout is checked against the header here too.
pub mod inline {
    use super::{labyrinth_pool, LABYRINTH_MAX_ORDER};
    use core::ffi::c_void;

    pub const LABYRINTH_ORDER_CACHE_SLOTS: usize = 7;
    pub const LABYRINTH_SIDE_CACHED_V1: u64 = 4;
    pub const LABYRINTH_SIDE_ALLOC_V1: u64 = 2;
    pub const LABYRINTH_SIDE_OWNER_SHIFT_V1: u32 = 16;

    /// One order's part of a thread's order cache (one 64-byte line).
    #[repr(C)]
    pub struct labyrinth_order_slots {
        pub count: u32,
        pub limit: u32,
        pub blocks: [*mut c_void; LABYRINTH_ORDER_CACHE_SLOTS],
    }

    /// A thread's cache for one pool, followed in memory by `capacity` page
    /// slots (`*mut c_void`).
    #[repr(C)]
    pub struct labyrinth_thread_cache {
        pub count: u32,
        pub limit: u32,
        pub capacity: u32,
        pub order_hint: u32,
        pub reserved: [u64; 6],
        pub orders: [labyrinth_order_slots; LABYRINTH_MAX_ORDER as usize],
    }

    /// The thread's record (the C TLS variable `labyrinth_thread_fast`).
    #[repr(C)]
    pub struct labyrinth_fast_record {
        pub pool: *const labyrinth_pool,
        pub cache: *mut labyrinth_thread_cache,
        pub side_table: *mut u64,
        pub arena: usize,
        pub arena_pages: u64,
        pub alloc_word: u64,
        pub reserved: [u64; 2],
    }
}
