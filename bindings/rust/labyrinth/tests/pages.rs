use labyrinth::{Error, Gfp, InTransit, Owner, Pool, PoolOptions};
use std::sync::mpsc;
use std::thread;

fn pool(bytes: usize) -> Pool {
    Pool::new(PoolOptions::new(bytes).pin(false)).expect("pool")
}

#[test]
fn pages_are_owned_writable_and_freed_on_drop() {
    let p = pool(1 << 20);
    {
        let mut a = p.alloc_page().unwrap();
        assert_eq!(a.len(), 4096);
        assert_eq!(a.as_ptr() as usize % 4096, 0);
        a.fill(0xAB);
        let big = p.alloc(3, Gfp { zero: true, ..Default::default() }, 0).unwrap();
        assert_eq!(big.len(), 8 * 4096);
        assert_eq!(big.order(), 3);
        assert!(big.iter().all(|&b| b == 0));
        assert_eq!(p.stats().unwrap().allocated_pages, 9);
    }
    assert_eq!(p.stats().unwrap().allocated_pages, 0);
}

#[test]
fn pages_move_across_threads_only_by_transfer() {
    let p = pool(4 << 20);
    let (id_tx, id_rx) = mpsc::channel::<Owner>();
    let (tx, rx) = mpsc::channel::<InTransit<'_>>();
    thread::scope(|s| {
        let consumer = s.spawn(move || {
            id_tx.send(Owner::current()).unwrap();
            let mut seen = 0u32;
            for t in rx {
                let page = InTransit::claim(t).expect("sent to us");
                seen += u32::from(page[0]);
            }
            seen
        });
        let me = id_rx.recv().unwrap();
        for _ in 0..3000 {
            let mut page = loop {
                match p.alloc_page() {
                    Ok(pg) => break pg,
                    Err(Error::OutOfPages(_)) => thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            };
            page[0] = 1;
            tx.send(page.transfer(me).unwrap()).unwrap();
        }
        drop(tx);
        assert_eq!(consumer.join().unwrap(), 3000);
    });
    assert_eq!(p.stats().unwrap().allocated_pages, 0);
}

#[test]
fn only_the_named_owner_can_claim() {
    let p = pool(1 << 20);
    // A real join (pthread_join): thread::scope returns when the closure is
    // done, possibly before the thread has exited and run its exit hooks.
    let other = thread::spawn(Owner::current).join().unwrap();
    let t = p.alloc_page().unwrap().transfer(other).unwrap();
    let t = InTransit::claim(t).expect_err("we are not the owner");
    assert_eq!(t.owner(), other);
    drop(t); // not ours to free: left to its (exited) owner, an orphan
    assert_eq!(p.stats().unwrap().orphaned_pages, 1);
    assert_eq!(p.reclaim_orphans().unwrap(), 1);
    assert_eq!(p.stats().unwrap().allocated_pages, 0);
}

#[test]
fn errors_carry_status_and_message() {
    let p = pool(1 << 20);
    let e = p.alloc(11, Gfp::default(), 0).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert!(e.message().contains("order 11"), "{e}");
    assert!(e.to_string().starts_with("LABYRINTH_ERR_INVALID: "));
    let e = p.alloc(0, Gfp { atomic: true, wait: true, ..Default::default() }, 0).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)));
    assert!(matches!(Pool::new(PoolOptions::new(123)), Err(Error::Invalid(_))));
    // Exhaustion: atomic allocations fail at once with OutOfPages.
    let mut held = Vec::new();
    let err = loop {
        match p.alloc_page() {
            Ok(pg) => held.push(pg),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::OutOfPages(_)), "{err}");
    assert_eq!(held.len(), 256);
    let e = p.alloc(0, Gfp { wait: true, ..Default::default() }, 10).unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e}");
    drop(held);
}

#[test]
fn free_reports_what_the_library_says() {
    let p = pool(1 << 20);
    let page = p.alloc_page().unwrap();
    assert_eq!(page.free(), Ok(()));
    // The raw API still sees every misuse.
    let raw = p.alloc_page().unwrap();
    let ptr = raw.as_ptr();
    drop(raw);
    let st = unsafe { labyrinth_sys::labyrinth_free_pages(p.as_raw(), ptr.cast()) };
    assert_eq!(st, labyrinth_sys::LABYRINTH_ERR_DOUBLE_FREE);
    // Owner ids made in safe code are always valid; the library rejects others.
    let page = p.alloc_page().unwrap();
    let st = unsafe { labyrinth_sys::labyrinth_page_transfer(p.as_raw(), page.as_ptr().cast(), 0) };
    assert_eq!(st, labyrinth_sys::LABYRINTH_ERR_INVALID);
    assert_eq!(page.free(), Ok(()));
    // Page::free says the block's order (labyrinth_free_pages_order); the raw
    // call refuses a wrong one and leaves the block allocated.
    let block = p.alloc(2, Gfp::default(), 0).unwrap();
    let st = unsafe { labyrinth_sys::labyrinth_free_pages_order(p.as_raw(), block.as_ptr() as *mut _, 1) };
    assert_eq!(st, labyrinth_sys::LABYRINTH_ERR_INVALID);
    assert_eq!(p.stats().unwrap().allocated_pages, 4);
    assert_eq!(block.free(), Ok(()));
    assert_eq!(p.stats().unwrap().allocated_pages, 0);
}

#[test]
fn reclaim_can_be_turned_off() {
    let off = Pool::new(PoolOptions::new(1 << 20).pin(false).reclaim(false)).expect("pool");
    assert_ne!(off.stats().unwrap().flags & labyrinth_sys::LABYRINTH_POOL_NO_RECLAIM, 0);
    let on = pool(1 << 20);
    assert_eq!(on.stats().unwrap().flags & labyrinth_sys::LABYRINTH_POOL_NO_RECLAIM, 0);
    assert_eq!(on.stats().unwrap().cache_reclaims, 0);
}
