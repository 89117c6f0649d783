//! The io_uring ring: pages go in by value and come back in completions.
//! Tests skip (with the library's reason) where io_uring is unavailable.
use labyrinth::ring::{OpId, Ring, RingOptions};
use labyrinth::{Error, Pool, PoolOptions};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

fn pool() -> Pool {
    Pool::new(PoolOptions::new(16 << 20).pin(false)).unwrap()
}

fn ring<'p>(pool: &'p Pool, opts: RingOptions) -> Option<Ring<'p>> {
    match Ring::new(pool, opts) {
        Ok(r) => Some(r),
        Err(Error::Unsupported(why)) => {
            eprintln!("SKIPPED: io_uring unavailable: {why}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}


/// A UDP receiver with a multishot receive on it, and a sender; None (the
/// test skips) where the kernel lacks multishot receive.
fn udp_multishot(r: &mut Ring<'_>) -> Option<(UdpSocket, UdpSocket, OpId)> {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    match r.recv_multishot(rx.as_raw_fd(), 0) {
        Ok(op) => Some((rx, tx, op)),
        Err(Error::Unsupported(why)) => {
            eprintln!("SKIPPED: {why}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn fixed_write_then_read_round_trip() {
    let p = pool();
    let Some(mut r) = ring(&p, RingOptions::default()) else { return };
    let path = std::env::temp_dir().join(format!("labyrinth-rs-ring-{}", std::process::id()));
    let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    let mut out = p.alloc_page().unwrap();
    for (i, b) in out.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let w = r.write_fixed(file.as_raw_fd(), out, 4096, 0).map_err(|(_, e)| e).unwrap();
    let done = r.complete(1, 10_000).unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].id, done[0].result), (w, 4096));
    drop(done); // the page comes back inside the completion and is freed here
    let inp = p.alloc(0, labyrinth::Gfp { zero: true, ..Default::default() }, 0).unwrap();
    let rd = r.read_fixed(file.as_raw_fd(), inp, 4096, 0).map_err(|(_, e)| e).unwrap();
    let mut done = r.complete(1, 10_000).unwrap();
    assert_eq!((done[0].id, done[0].result), (rd, 4096));
    let page = done.pop().unwrap().page.expect("the read hands its page back");
    assert!(page.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    drop(page);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(p.stats().unwrap().inflight_pages, 0);
}

#[test]
fn a_refused_submission_gives_the_page_back() {
    let p = pool();
    let Some(mut r) = ring(&p, RingOptions::default()) else { return };
    let page = p.alloc_page().unwrap();
    let addr = page.as_ptr();
    let (back, err) = r.recv(0, page, 0, 0).expect_err("len 0 is invalid");
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    assert_eq!(back.as_ptr(), addr);
    assert_eq!(p.stats().unwrap().inflight_pages, 0);
}

#[test]
fn multishot_udp_receive_hands_out_pages() {
    let p = pool();
    let Some(mut r) = ring(&p, RingOptions::default().provided_buffers(64)) else { return };
    let Some((rx, tx, op)) = udp_multishot(&mut r) else { return };
    for i in 0..20u32 {
        tx.send_to(format!("datagram {i:04}").as_bytes(), rx.local_addr().unwrap()).unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 20 {
        for c in r.complete(1, 5_000).unwrap() {
            assert_eq!(c.id, op);
            let page = c.page.expect("each datagram arrives in a page");
            got.push(String::from_utf8_lossy(&page[..c.result as usize]).into_owned());
        }
    }
    got.sort();
    assert_eq!(got[0], "datagram 0000");
    assert_eq!(got[19], "datagram 0019");
    r.cancel(op).unwrap();
    drop(r); // provided pages go back to the pool
    assert_eq!(p.stats().unwrap().allocated_pages, 0);
}

#[test]
fn dropping_the_ring_returns_pages_still_in_flight() {
    let p = pool();
    let Some(mut r) = ring(&p, RingOptions::default()) else { return };
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let page = p.alloc_page().unwrap();
    r.recv(rx.as_raw_fd(), page, 4096, 0).map_err(|(_, e)| e).unwrap(); // nothing will arrive
    assert_eq!(p.stats().unwrap().inflight_pages, 1);
    drop(r); // cancels, waits, frees the page
    let s = p.stats().unwrap();
    assert_eq!((s.inflight_pages, s.allocated_pages), (0, 0));
}

#[test]
fn incremental_receives_come_as_slices_sharing_a_page() {
    let p = pool();
    let Some(mut r) = ring(&p, RingOptions::default().provided_buffers(4).incremental(0)) else { return };
    let Some((rx, tx, op)) = udp_multishot(&mut r) else { return };
    for i in 0..8u8 {
        tx.send_to(&[i; 64], rx.local_addr().unwrap()).unwrap();
    }
    let mut slices = Vec::new();
    while slices.len() < 8 {
        for c in r.complete(1, 5_000).unwrap() {
            assert_eq!(c.id, op);
            assert!(c.page.is_none());
            slices.push(c.slice.expect("each datagram arrives as a slice"));
        }
    }
    for (i, s) in slices.iter().enumerate() {
        assert_eq!(&s[..], &[i as u8; 64][..]);
        assert_eq!(s.as_ptr() as usize / 4096, slices[0].as_ptr() as usize / 4096, "one page");
        // Drop releases by address and generation: never a later slice there.
        assert_ne!(s.generation(), 0);
        assert!(slices[..i].iter().all(|t| t.generation() != s.generation()), "generations repeat");
    }
    assert_eq!(r.stats().unwrap().slices_live, 8);
    slices.reverse();
    drop(slices); // released out of order
    assert_eq!(r.stats().unwrap().slices_live, 0);
    r.cancel(op).unwrap();
    drop(r);
    assert_eq!(p.stats().unwrap().allocated_pages, 0);
}

#[test]
fn long_datagrams_are_flagged_or_kept_whole() {
    // Five 1000-byte datagrams into one-page blocks: without max_datagram
    // the fifth finds 96 bytes of room and is cut (flagged); with it the
    // kernel moves on to the next block and every datagram arrives whole.
    for max in [0u32, 1000] {
        let p = pool();
        let opts = RingOptions::default().provided_buffers(4).incremental(0).max_datagram(max);
        let Some(mut r) = ring(&p, opts) else { return };
        let Some((rx, tx, op)) = udp_multishot(&mut r) else { return };
        for i in 0..5u8 {
            tx.send_to(&[i; 1000], rx.local_addr().unwrap()).unwrap();
        }
        let mut got = Vec::new();
        while got.len() < 5 {
            for c in r.complete(1, 5_000).unwrap() {
                let s = c.slice.expect("a slice");
                got.push((s.len(), c.maybe_trunc));
            }
        }
        let whole = vec![(1000, false); 5];
        let cut = vec![(1000, false), (1000, false), (1000, false), (1000, false), (96, true)];
        assert_eq!(got, if max > 0 { whole } else { cut }, "max_datagram {max}");
        r.cancel(op).unwrap();
        drop(r);
        assert_eq!(p.stats().unwrap().allocated_pages, 0);
    }
}
