//! Bundles on the io_uring ring: a receive completion that fills several
//! pages, and a send of several pages in one submission. Tests skip (with
//! the library's reason) where io_uring or bundles (Linux 6.10) are missing.
use labyrinth::ring::{Ring, RingOptions};
use labyrinth::{Error, Pool, PoolOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    (a, b)
}

fn skipped<T>(r: Result<T, Error>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(Error::Unsupported(why)) => {
            eprintln!("SKIPPED: {why}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn recv_bundle_hands_out_the_stream_page_by_page() {
    let p = Pool::new(PoolOptions::new(16 << 20).pin(false)).unwrap();
    let Some(mut r) = skipped(Ring::new(&p, RingOptions::default().provided_buffers(16))) else { return };
    let (mut a, b) = tcp_pair();
    let data: Vec<u8> = (0..4 * 4096u32).map(|i| (i % 253) as u8).collect();
    a.write_all(&data).unwrap();
    drop(a); // EOF ends the receive
    std::thread::sleep(std::time::Duration::from_millis(10));
    let Some(op) = skipped(r.recv_bundle(b.as_raw_fd(), 0, false)) else { return };
    let mut got = Vec::new();
    let mut ended = false;
    while !ended {
        for c in r.complete(1, 5_000).unwrap() {
            assert_eq!(c.id, op);
            ended |= !c.more;
            if let Some(page) = c.page {
                got.extend_from_slice(&page[..c.result as usize]);
            }
        }
    }
    assert_eq!(got, data);
    let s = r.stats().unwrap();
    assert!(s.recv_bundle_pages > s.recv_bundles, "no completion carried several pages");
}

#[test]
fn send_bundle_sends_in_order_and_returns_every_page() {
    let p = Pool::new(PoolOptions::new(16 << 20).pin(false)).unwrap();
    let Some(mut r) = skipped(Ring::new(&p, RingOptions::default())) else { return };
    let (a, mut b) = tcp_pair();
    let mut pages = Vec::new();
    for i in 0..8u8 {
        let mut page = p.alloc_page().unwrap();
        page.iter_mut().for_each(|x| *x = i);
        pages.push((page, 4096 - u32::from(i)));
    }
    let want: Vec<u8> = (0..8u8).flat_map(|i| std::iter::repeat(i).take(4096 - usize::from(i))).collect();
    let addrs: Vec<usize> = pages.iter().map(|(pg, _)| pg.as_ptr() as usize).collect();
    let Some(op) = skipped(r.send_bundle(a.as_raw_fd(), pages, 0).map_err(|(_, e)| e)) else { return };
    let mut back = Vec::new();
    while back.last().map_or(true, |c: &labyrinth::ring::Completion<'_>| c.more) {
        back.extend(r.complete(1, 5_000).unwrap());
    }
    assert_eq!(back.len(), 8);
    for (i, c) in back.iter().enumerate() {
        assert_eq!(c.id, op);
        assert_eq!(c.result, 4096 - i as i32);
        assert_eq!(c.page.as_ref().map(|pg| pg.as_ptr() as usize), Some(addrs[i]));
    }
    let mut got = vec![0u8; want.len()];
    b.read_exact(&mut got).unwrap();
    assert_eq!(got, want);
}

#[test]
fn a_refused_bundle_gives_every_page_back() {
    let p = Pool::new(PoolOptions::new(16 << 20).pin(false)).unwrap();
    let Some(mut r) = skipped(Ring::new(&p, RingOptions::default())) else { return };
    let page = p.alloc_page().unwrap();
    match r.send_bundle(-1, vec![(page, 16)], 0) {
        Err((pages, Error::Unsupported(why))) => eprintln!("SKIPPED: {why} ({} pages back)", pages.len()),
        Err((pages, e)) => {
            assert_eq!(pages.len(), 1, "{e}");
            assert_eq!(r.stats().unwrap().submitted, 0);
        }
        Ok(_) => panic!("fd -1 was accepted"),
    };
}
