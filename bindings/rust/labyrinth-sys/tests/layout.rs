//! The hand-written declarations must match labyrinth.h: a C program compiled
//! against the header prints every struct size and offset and every constant;
//! they are compared with this crate's. The header's function list is compared
//! with DECLARED_FUNCTIONS.
use labyrinth_sys::*;
use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};
use std::process::Command;

fn c_facts() -> BTreeMap<String, u64> {
    let include = env!("LABYRINTH_INCLUDE_DIR");
    let out_dir = std::env::temp_dir().join(format!("labyrinth-sys-layout-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let src = out_dir.join("facts.c");
    let mut c = String::from("#include <labyrinth/labyrinth.h>\n#include <labyrinth/labyrinth_uring.h>\n#include <stddef.h>\n#include <stdio.h>\nint main(void) {\n");
    let mut p = |name: &str, expr: &str| {
        c.push_str(&format!("  printf(\"{} %llu\\n\", (unsigned long long)({}));\n", name, expr));
    };
    for f in OPTIONS_FIELDS { p(&format!("opts.{f}"), &format!("offsetof(labyrinth_pool_options, {f})")); }
    for f in STATS_FIELDS { p(&format!("stats.{f}"), &format!("offsetof(labyrinth_stats, {f})")); }
    p("sizeof.opts", "sizeof(labyrinth_pool_options)");
    p("sizeof.stats", "sizeof(labyrinth_stats)");
    p("sizeof.status", "sizeof(labyrinth_status)");
    for (st, fields) in LISTED_STRUCTS {
        for f in *fields { p(&format!("{st}.{f}"), &format!("offsetof({st}, {f})")); }
        p(&format!("sizeof.{st}"), &format!("sizeof({st})"));
    }
    for (name, _) in constants() { p(&format!("const.{name}"), name); }
    c.push_str("  return 0;\n}\n");
    std::fs::write(&src, c).unwrap();
    let exe = out_dir.join("facts");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let st = Command::new(cc)
        .args(["-std=c99", "-I", include, src.to_str().unwrap(), "-o", exe.to_str().unwrap()])
        .status()
        .expect("a C compiler (cc) is needed for the layout check");
    assert!(st.success(), "compiling the layout probe failed");
    let out = Command::new(&exe).output().unwrap();
    let _ = std::fs::remove_dir_all(&out_dir);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

const OPTIONS_FIELDS: &[&str] = &[
    "struct_size", "size_bytes", "atomic_reserve_pages", "flags", "numa_node",
    "watermark_min_pages", "watermark_low_pages", "watermark_high_pages",
    "max_thread_caches", "thread_cache_pages", "thread_cache_batch", "arena_provider",
];
const STATS_FIELDS: &[&str] = &[
    "struct_size", "total_pages", "free_pages", "reserve_pages", "reserve_target", "cached_pages",
    "allocated_pages", "inflight_pages", "orphaned_pages", "free_blocks", "shared_free_pages",
    "reserve_uses", "failures", "waits", "timeouts", "refills", "drains", "pressure_events",
    "watermark_min", "watermark_low", "watermark_high", "thread_caches_in_use", "metadata_bytes",
    "flags", "huge_pages", "cache_reclaims", "reclaimed_pages", "arena_provider",
    "arena_unused_bytes", "arena_flags",
];

const LISTED_STRUCTS: &[(&str, &[&str])] = &[
    ("labyrinth_ring_options", &["struct_size", "sq_entries", "max_inflight", "pbuf_entries", "pbuf_group", "reserved0", "flags", "pbuf_order"]),
    ("labyrinth_completion", &["user_data", "page", "result", "op", "flags", "reserved"]),
    ("labyrinth_ring_stats", &["struct_size", "submitted", "submit_failures", "completions", "ops_inflight",
        "pages_inflight", "pbuf_entries", "pbuf_pages", "pbuf_refills", "pbuf_refill_failures", "pbuf_enobufs",
        "sq_entries", "cq_entries", "registered", "fixed_buffers", "recv_starvations", "recv_rearms",
        "recv_starved_ns", "recv_starved_now", "pbuf_incremental", "pbuf_block_bytes",
        "slices_live", "slice_blocks_held"]),
    ("labyrinth_order_slots", &["count", "limit", "blocks"]),
    ("labyrinth_thread_cache", &["count", "limit", "capacity", "order_hint", "reserved", "orders"]),
    ("labyrinth_fast_record", &["pool", "cache", "side_table", "arena", "arena_pages", "alloc_word", "reserved"]),
];

fn constants() -> Vec<(&'static str, u64)> {
    use uring::*;
    vec![
        ("LABYRINTH_RING_MANUAL_REFILL", LABYRINTH_RING_MANUAL_REFILL as u64),
        ("LABYRINTH_RING_NO_REGISTER", LABYRINTH_RING_NO_REGISTER as u64),
        ("LABYRINTH_RING_SINGLE_THREAD", LABYRINTH_RING_SINGLE_THREAD as u64),
        ("LABYRINTH_RING_REPORT_STARVED", LABYRINTH_RING_REPORT_STARVED as u64),
        ("LABYRINTH_RING_PBUF_INCREMENTAL", LABYRINTH_RING_PBUF_INCREMENTAL as u64),
        ("LABYRINTH_RING_PBUF_INCREMENTAL_IF_AVAILABLE", LABYRINTH_RING_PBUF_INCREMENTAL_IF_AVAILABLE as u64),
        ("LABYRINTH_COMPLETION_MORE", LABYRINTH_COMPLETION_MORE as u64),
        ("LABYRINTH_COMPLETION_NOTIF", LABYRINTH_COMPLETION_NOTIF as u64),
        ("LABYRINTH_COMPLETION_STARVED", LABYRINTH_COMPLETION_STARVED as u64),
        ("LABYRINTH_COMPLETION_SLICE", LABYRINTH_COMPLETION_SLICE as u64),
        ("LABYRINTH_OP_READ_FIXED", LABYRINTH_OP_READ_FIXED as u64),
        ("LABYRINTH_OP_WRITE_FIXED", LABYRINTH_OP_WRITE_FIXED as u64),
        ("LABYRINTH_OP_SEND", LABYRINTH_OP_SEND as u64),
        ("LABYRINTH_OP_RECV", LABYRINTH_OP_RECV as u64),
        ("LABYRINTH_OP_SEND_ZC", LABYRINTH_OP_SEND_ZC as u64),
        ("LABYRINTH_OP_RECV_MULTISHOT", LABYRINTH_OP_RECV_MULTISHOT as u64),
        ("LABYRINTH_OK", LABYRINTH_OK as u64),
        ("LABYRINTH_ERR_NOMEM", LABYRINTH_ERR_NOMEM as u64),
        ("LABYRINTH_ERR_INVALID", LABYRINTH_ERR_INVALID as u64),
        ("LABYRINTH_ERR_NOT_OWNER", LABYRINTH_ERR_NOT_OWNER as u64),
        ("LABYRINTH_ERR_DOUBLE_FREE", LABYRINTH_ERR_DOUBLE_FREE as u64),
        ("LABYRINTH_ERR_FOREIGN", LABYRINTH_ERR_FOREIGN as u64),
        ("LABYRINTH_ERR_BUSY", LABYRINTH_ERR_BUSY as u64),
        ("LABYRINTH_ERR_TIMEOUT", LABYRINTH_ERR_TIMEOUT as u64),
        ("LABYRINTH_ERR_UNSUPPORTED", LABYRINTH_ERR_UNSUPPORTED as u64),
        ("LABYRINTH_ERR_SYSTEM", LABYRINTH_ERR_SYSTEM as u64),
        ("LABYRINTH_STATUS_COUNT", LABYRINTH_STATUS_COUNT as u64),
        ("LABYRINTH_GFP_ATOMIC", LABYRINTH_GFP_ATOMIC as u64),
        ("LABYRINTH_GFP_WAIT", LABYRINTH_GFP_WAIT as u64),
        ("LABYRINTH_GFP_ZERO", LABYRINTH_GFP_ZERO as u64),
        ("LABYRINTH_GFP_EXCLUSIVE", LABYRINTH_GFP_EXCLUSIVE as u64),
        ("LABYRINTH_OWNER_NONE", LABYRINTH_OWNER_NONE),
        ("LABYRINTH_OWNER_MAX", LABYRINTH_OWNER_MAX),
        ("LABYRINTH_AUTO", LABYRINTH_AUTO as u64),
        ("LABYRINTH_PAGE_SIZE", LABYRINTH_PAGE_SIZE as u64),
        ("LABYRINTH_MAX_ORDER", LABYRINTH_MAX_ORDER as u64),
        ("LABYRINTH_TIMEOUT_INFINITE", LABYRINTH_TIMEOUT_INFINITE as u64),
        ("LABYRINTH_POOL_PIN", LABYRINTH_POOL_PIN as u64),
        ("LABYRINTH_POOL_HUGEPAGES", LABYRINTH_POOL_HUGEPAGES as u64),
        ("LABYRINTH_POOL_SCRUB", LABYRINTH_POOL_SCRUB as u64),
        ("LABYRINTH_POOL_POISON", LABYRINTH_POOL_POISON as u64),
        ("LABYRINTH_POOL_GUARD", LABYRINTH_POOL_GUARD as u64),
        ("LABYRINTH_POOL_PKEYS", LABYRINTH_POOL_PKEYS as u64),
        ("LABYRINTH_POOL_NO_RECLAIM", LABYRINTH_POOL_NO_RECLAIM as u64),
        ("LABYRINTH_POOL_PIN_BEST_EFFORT", LABYRINTH_POOL_PIN_BEST_EFFORT as u64),
        ("LABYRINTH_POOL_PIN_MASK", LABYRINTH_POOL_PIN_MASK as u64),
        ("LABYRINTH_POOL_DEFAULT_FLAGS", LABYRINTH_POOL_DEFAULT_FLAGS as u64),
        ("LABYRINTH_DESTROY_FORCE", LABYRINTH_DESTROY_FORCE as u64),
        ("LABYRINTH_ABI_VERSION_MAJOR", LABYRINTH_ABI_VERSION_MAJOR as u64),
        ("LABYRINTH_ORDER_CACHE_SLOTS", inline::LABYRINTH_ORDER_CACHE_SLOTS as u64),
        ("LABYRINTH_SIDE_CACHED_V1", inline::LABYRINTH_SIDE_CACHED_V1),
        ("LABYRINTH_SIDE_ALLOC_V1", inline::LABYRINTH_SIDE_ALLOC_V1),
        ("LABYRINTH_SIDE_OWNER_SHIFT_V1", inline::LABYRINTH_SIDE_OWNER_SHIFT_V1 as u64),
    ]
}

#[test]
fn structs_and_constants_match_the_header() {
    let c = c_facts();
    let opts: &[(&str, usize)] = &[
        ("struct_size", offset_of!(labyrinth_pool_options, struct_size)),
        ("size_bytes", offset_of!(labyrinth_pool_options, size_bytes)),
        ("atomic_reserve_pages", offset_of!(labyrinth_pool_options, atomic_reserve_pages)),
        ("flags", offset_of!(labyrinth_pool_options, flags)),
        ("numa_node", offset_of!(labyrinth_pool_options, numa_node)),
        ("watermark_min_pages", offset_of!(labyrinth_pool_options, watermark_min_pages)),
        ("watermark_low_pages", offset_of!(labyrinth_pool_options, watermark_low_pages)),
        ("watermark_high_pages", offset_of!(labyrinth_pool_options, watermark_high_pages)),
        ("max_thread_caches", offset_of!(labyrinth_pool_options, max_thread_caches)),
        ("thread_cache_pages", offset_of!(labyrinth_pool_options, thread_cache_pages)),
        ("thread_cache_batch", offset_of!(labyrinth_pool_options, thread_cache_batch)),
        ("arena_provider", offset_of!(labyrinth_pool_options, arena_provider)),
    ];
    assert_eq!(opts.len(), OPTIONS_FIELDS.len());
    for (f, off) in opts {
        assert_eq!(c[&format!("opts.{f}")], *off as u64, "labyrinth_pool_options.{f}");
    }
    let stats: &[(&str, usize)] = &[
        ("struct_size", offset_of!(labyrinth_stats, struct_size)),
        ("total_pages", offset_of!(labyrinth_stats, total_pages)),
        ("free_pages", offset_of!(labyrinth_stats, free_pages)),
        ("reserve_pages", offset_of!(labyrinth_stats, reserve_pages)),
        ("reserve_target", offset_of!(labyrinth_stats, reserve_target)),
        ("cached_pages", offset_of!(labyrinth_stats, cached_pages)),
        ("allocated_pages", offset_of!(labyrinth_stats, allocated_pages)),
        ("inflight_pages", offset_of!(labyrinth_stats, inflight_pages)),
        ("orphaned_pages", offset_of!(labyrinth_stats, orphaned_pages)),
        ("free_blocks", offset_of!(labyrinth_stats, free_blocks)),
        ("shared_free_pages", offset_of!(labyrinth_stats, shared_free_pages)),
        ("reserve_uses", offset_of!(labyrinth_stats, reserve_uses)),
        ("failures", offset_of!(labyrinth_stats, failures)),
        ("waits", offset_of!(labyrinth_stats, waits)),
        ("timeouts", offset_of!(labyrinth_stats, timeouts)),
        ("refills", offset_of!(labyrinth_stats, refills)),
        ("drains", offset_of!(labyrinth_stats, drains)),
        ("pressure_events", offset_of!(labyrinth_stats, pressure_events)),
        ("watermark_min", offset_of!(labyrinth_stats, watermark_min)),
        ("watermark_low", offset_of!(labyrinth_stats, watermark_low)),
        ("watermark_high", offset_of!(labyrinth_stats, watermark_high)),
        ("thread_caches_in_use", offset_of!(labyrinth_stats, thread_caches_in_use)),
        ("metadata_bytes", offset_of!(labyrinth_stats, metadata_bytes)),
        ("flags", offset_of!(labyrinth_stats, flags)),
        ("huge_pages", offset_of!(labyrinth_stats, huge_pages)),
        ("cache_reclaims", offset_of!(labyrinth_stats, cache_reclaims)),
        ("reclaimed_pages", offset_of!(labyrinth_stats, reclaimed_pages)),
        ("arena_provider", offset_of!(labyrinth_stats, arena_provider)),
        ("arena_unused_bytes", offset_of!(labyrinth_stats, arena_unused_bytes)),
        ("arena_flags", offset_of!(labyrinth_stats, arena_flags)),
    ];
    assert_eq!(stats.len(), STATS_FIELDS.len());
    for (f, off) in stats {
        assert_eq!(c[&format!("stats.{f}")], *off as u64, "labyrinth_stats.{f}");
    }
    assert_eq!(c["sizeof.opts"], size_of::<labyrinth_pool_options>() as u64, "sizeof(labyrinth_pool_options)");
    assert_eq!(c["sizeof.stats"], size_of::<labyrinth_stats>() as u64, "sizeof(labyrinth_stats)");
    assert_eq!(c["sizeof.status"], size_of::<labyrinth_status>() as u64);
    for (name, value) in constants() {
        assert_eq!(c[&format!("const.{name}")], value, "{name}");
    }
    use uring::*;
    let rust: &[(&str, &[(&str, usize)], usize)] = &[
        ("labyrinth_ring_options", &[
            ("struct_size", offset_of!(labyrinth_ring_options, struct_size)),
            ("sq_entries", offset_of!(labyrinth_ring_options, sq_entries)),
            ("max_inflight", offset_of!(labyrinth_ring_options, max_inflight)),
            ("pbuf_entries", offset_of!(labyrinth_ring_options, pbuf_entries)),
            ("pbuf_group", offset_of!(labyrinth_ring_options, pbuf_group)),
            ("reserved0", offset_of!(labyrinth_ring_options, reserved0)),
            ("flags", offset_of!(labyrinth_ring_options, flags)),
            ("pbuf_order", offset_of!(labyrinth_ring_options, pbuf_order)),
        ], size_of::<labyrinth_ring_options>()),
        ("labyrinth_completion", &[
            ("user_data", offset_of!(labyrinth_completion, user_data)),
            ("page", offset_of!(labyrinth_completion, page)),
            ("result", offset_of!(labyrinth_completion, result)),
            ("op", offset_of!(labyrinth_completion, op)),
            ("flags", offset_of!(labyrinth_completion, flags)),
            ("reserved", offset_of!(labyrinth_completion, reserved)),
        ], size_of::<labyrinth_completion>()),
        ("labyrinth_ring_stats", &[
            ("struct_size", offset_of!(labyrinth_ring_stats, struct_size)),
            ("submitted", offset_of!(labyrinth_ring_stats, submitted)),
            ("submit_failures", offset_of!(labyrinth_ring_stats, submit_failures)),
            ("completions", offset_of!(labyrinth_ring_stats, completions)),
            ("ops_inflight", offset_of!(labyrinth_ring_stats, ops_inflight)),
            ("pages_inflight", offset_of!(labyrinth_ring_stats, pages_inflight)),
            ("pbuf_entries", offset_of!(labyrinth_ring_stats, pbuf_entries)),
            ("pbuf_pages", offset_of!(labyrinth_ring_stats, pbuf_pages)),
            ("pbuf_refills", offset_of!(labyrinth_ring_stats, pbuf_refills)),
            ("pbuf_refill_failures", offset_of!(labyrinth_ring_stats, pbuf_refill_failures)),
            ("pbuf_enobufs", offset_of!(labyrinth_ring_stats, pbuf_enobufs)),
            ("sq_entries", offset_of!(labyrinth_ring_stats, sq_entries)),
            ("cq_entries", offset_of!(labyrinth_ring_stats, cq_entries)),
            ("registered", offset_of!(labyrinth_ring_stats, registered)),
            ("fixed_buffers", offset_of!(labyrinth_ring_stats, fixed_buffers)),
            ("recv_starvations", offset_of!(labyrinth_ring_stats, recv_starvations)),
            ("recv_rearms", offset_of!(labyrinth_ring_stats, recv_rearms)),
            ("recv_starved_ns", offset_of!(labyrinth_ring_stats, recv_starved_ns)),
            ("recv_starved_now", offset_of!(labyrinth_ring_stats, recv_starved_now)),
            ("pbuf_incremental", offset_of!(labyrinth_ring_stats, pbuf_incremental)),
            ("pbuf_block_bytes", offset_of!(labyrinth_ring_stats, pbuf_block_bytes)),
            ("slices_live", offset_of!(labyrinth_ring_stats, slices_live)),
            ("slice_blocks_held", offset_of!(labyrinth_ring_stats, slice_blocks_held)),
        ], size_of::<labyrinth_ring_stats>()),
        ("labyrinth_order_slots", &[
            ("count", offset_of!(inline::labyrinth_order_slots, count)),
            ("limit", offset_of!(inline::labyrinth_order_slots, limit)),
            ("blocks", offset_of!(inline::labyrinth_order_slots, blocks)),
        ], size_of::<inline::labyrinth_order_slots>()),
        ("labyrinth_thread_cache", &[
            ("count", offset_of!(inline::labyrinth_thread_cache, count)),
            ("limit", offset_of!(inline::labyrinth_thread_cache, limit)),
            ("capacity", offset_of!(inline::labyrinth_thread_cache, capacity)),
            ("order_hint", offset_of!(inline::labyrinth_thread_cache, order_hint)),
            ("reserved", offset_of!(inline::labyrinth_thread_cache, reserved)),
            ("orders", offset_of!(inline::labyrinth_thread_cache, orders)),
        ], size_of::<inline::labyrinth_thread_cache>()),
        ("labyrinth_fast_record", &[
            ("pool", offset_of!(inline::labyrinth_fast_record, pool)),
            ("cache", offset_of!(inline::labyrinth_fast_record, cache)),
            ("side_table", offset_of!(inline::labyrinth_fast_record, side_table)),
            ("arena", offset_of!(inline::labyrinth_fast_record, arena)),
            ("arena_pages", offset_of!(inline::labyrinth_fast_record, arena_pages)),
            ("alloc_word", offset_of!(inline::labyrinth_fast_record, alloc_word)),
            ("reserved", offset_of!(inline::labyrinth_fast_record, reserved)),
        ], size_of::<inline::labyrinth_fast_record>()),
    ];
    for (st, fields, size) in rust {
        let c_fields = LISTED_STRUCTS.iter().find(|(n, _)| n == st).unwrap().1;
        assert_eq!(fields.len(), c_fields.len(), "{st}: field count");
        for (f, off) in *fields {
            assert_eq!(c[&format!("{st}.{f}")], *off as u64, "{st}.{f}");
        }
        assert_eq!(c[&format!("sizeof.{st}")], *size as u64, "sizeof({st})");
    }
}

#[test]
fn every_function_in_the_header_is_declared() {
    compare_functions("labyrinth.h", DECLARED_FUNCTIONS);
    compare_functions("labyrinth_uring.h", uring::DECLARED_FUNCTIONS);
}

fn compare_functions(file: &str, declared_fns: &[&str]) {
    let header = std::fs::read_to_string(format!("{}/labyrinth/{}", env!("LABYRINTH_INCLUDE_DIR"), file)).unwrap();
    // Declarations start a line with "LABYRINTH_API <type> <name>(", the
    // name possibly on the next line.
    let lines: Vec<&str> = header.lines().collect();
    let mut in_header: Vec<String> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim_start();
        if !line.starts_with("LABYRINTH_API ") || line.starts_with("LABYRINTH_API extern") {
            continue;
        }
        let mut text = line.to_string();
        let mut j = i + 1;
        while !text.contains('(') && j < lines.len() {
            text.push(' ');
            text.push_str(lines[j]);
            j += 1;
        }
        let head = text.split('(').next().unwrap();
        let name = head
            .split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
            .filter(|s| !s.is_empty())
            .last()
            .unwrap();
        // Second names for exported functions (labyrinth_call_*_v1_, aliases
        // the header's inline code calls) are not functions of their own.
        if name.starts_with("labyrinth_call_") && name.ends_with("_v1_") {
            continue;
        }
        in_header.push(name.to_string());
    }
    in_header.sort();
    let mut declared: Vec<String> = declared_fns.iter().map(|s| s.to_string()).collect();
    declared.sort();
    assert_eq!(in_header, declared, "{file} functions vs labyrinth-sys");
}

#[test]
fn the_library_is_the_one_declared() {
    assert_eq!(unsafe { labyrinth_abi_version() } >> 16, LABYRINTH_ABI_VERSION_MAJOR);
}
