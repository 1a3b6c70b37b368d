use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use super::*;
use crate::port::testnet::{Netns, RawSock, frame, frame_seq, send_frames, wait_carrier};

// ---------------------------------------------------------------------------------------
// Ring logic on rings built in memory (no kernel, no root)

fn rx_walk(frames: usize) -> (RxWalk, RingMem) {
    let n = (frames / 2) as u32;
    let mut w = RxWalk {
        rx: XskRing::fake(n, DESC),
        fill: XskRing::fake(n, 8),
        rx_frames: frames / 2,
    };
    // As at set-up: every receive frame on the fill ring.
    for i in 0..n {
        let s = w.fill.slot(i, 8);
        w.fill.mem.write_u64(s, u64::from(i) * FRAME_SIZE as u64);
    }
    w.fill.prod = n;
    w.fill.producer().store(n, Ordering::Release);
    (w, RingMem::alloc(frames * FRAME_SIZE))
}

/// The kernel's side: takes a frame off the fill ring, writes `data` into it after the
/// headroom and posts it on the rx ring.
fn kernel_receives(w: &mut RxWalk, umem: &RingMem, data: &[u8]) {
    let fcons = w.fill.consumer().load(Ordering::Acquire);
    assert_ne!(
        fcons,
        w.fill.producer().load(Ordering::Acquire),
        "fill ring empty"
    );
    let base = w.fill.mem.read_u64(w.fill.slot(fcons, 8));
    w.fill.consumer().store(fcons + 1, Ordering::Release);
    let addr = base + XDP_PACKET_HEADROOM as u64;
    umem.copy_in(addr as usize, data);
    let p = w.rx.producer().load(Ordering::Acquire);
    let s = w.rx.slot(p, DESC);
    w.rx.mem.write_u64(s, addr);
    w.rx.mem.write_u32(s + 8, data.len() as u32);
    w.rx.producer().store(p + 1, Ordering::Release);
}

fn f(seq: u32, len: usize) -> Vec<u8> {
    frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], seq, len)
}

#[test]
fn rx_copies_frames_and_returns_them_to_the_fill_ring() {
    let (mut w, umem) = rx_walk(8); // 4 receive frames
    let mut pool = Pool::new(16);
    let mut out = Vec::with_capacity(32);
    let mut t = RxTally::default();
    assert_eq!(w.burst(&umem, &mut pool, &mut out, 32, 5, &mut t), 0);
    // More frames than the ring holds over time: frames must come back to be reused.
    let mut seq = 0;
    for round in 0..5 {
        for _ in 0..3 {
            kernel_receives(&mut w, &umem, &f(seq, 60 + seq as usize * 100));
            seq += 1;
        }
        let n = w.burst(&umem, &mut pool, &mut out, 2, 5, &mut t);
        assert_eq!(n, 2, "round {round}: burst limited to max");
        assert_eq!(w.burst(&umem, &mut pool, &mut out, 32, 5, &mut t), 1);
        for b in out.drain(..) {
            assert_eq!(b.port, 5);
            assert!(frame_seq(b.data()).is_some());
            pool.put(b);
        }
    }
    assert_eq!(t.packets, 15);
    assert_eq!(w.fill.producer().load(Ordering::Acquire), 4 + 15);
    // Returned frames are chunk bases, never the headroom-shifted address.
    for i in 0..4 {
        assert_eq!(
            w.fill.mem.read_u64(w.fill.slot(i, 8)) % FRAME_SIZE as u64,
            0
        );
    }
}

#[test]
fn rx_counts_bad_descriptors_and_stops_when_the_pool_is_empty() {
    let (mut w, umem) = rx_walk(8);
    kernel_receives(&mut w, &umem, &f(1, 60));
    // A descriptor pointing into the transmit half is refused.
    let p = w.rx.producer().load(Ordering::Acquire);
    let s = w.rx.slot(p, DESC);
    w.rx.mem.write_u64(s, 6 * FRAME_SIZE as u64);
    w.rx.mem.write_u32(s + 8, 60);
    w.rx.producer().store(p + 1, Ordering::Release);
    kernel_receives(&mut w, &umem, &f(2, 60));
    let mut pool = Pool::new(1);
    let mut out = Vec::with_capacity(4);
    let mut t = RxTally::default();
    assert_eq!(w.burst(&umem, &mut pool, &mut out, 32, 0, &mut t), 1);
    assert_eq!(t.errors, 1);
    // Frame 2 waits in the ring for a buffer.
    assert_eq!(w.rx.consumer().load(Ordering::Acquire), 2);
    let mut pool2 = Pool::new(2);
    assert_eq!(w.burst(&umem, &mut pool2, &mut out, 32, 0, &mut t), 1);
    assert_eq!(frame_seq(out[1].data()), Some(2));
}

#[test]
fn tx_uses_its_own_frames_and_reclaims_completions() {
    let frames = 8;
    let umem = RingMem::alloc(frames * FRAME_SIZE);
    let mut w = TxWalk::new(XskRing::fake(4, DESC), XskRing::fake(4, 8), 4, 8, 1518);
    for i in 0..4 {
        assert_eq!(w.push(&umem, &f(i, 100)), Push::Queued);
    }
    assert_eq!(w.push(&umem, &f(9, 100)), Push::Full);
    assert_eq!(
        w.tx.producer().load(Ordering::Acquire),
        0,
        "not published yet"
    );
    w.publish();
    assert_eq!(w.tx.producer().load(Ordering::Acquire), 4);
    let mut addrs = Vec::new();
    for i in 0..4u32 {
        let s = w.tx.slot(i, DESC);
        let a = w.tx.mem.read_u64(s);
        assert!(
            (4 * FRAME_SIZE..8 * FRAME_SIZE).contains(&(a as usize)),
            "transmit half"
        );
        let len = w.tx.mem.read_u32(s + 8) as usize;
        let mut d = vec![0u8; len];
        umem.copy_out(a as usize, &mut d);
        assert_eq!(frame_seq(&d), Some(i));
        addrs.push(a);
    }
    // The kernel consumes two descriptors and completes them.
    w.tx.consumer().store(2, Ordering::Release);
    assert_eq!(w.outstanding(), 2);
    for (k, a) in addrs[..2].iter().enumerate() {
        let s = w.comp.slot(k as u32, 8);
        w.comp.mem.write_u64(s, *a);
    }
    w.comp.producer().store(2, Ordering::Release);
    w.reclaim();
    assert_eq!(w.comp.consumer().load(Ordering::Acquire), 2);
    assert_eq!(w.push(&umem, &f(10, 60)), Push::Queued);
    assert_eq!(w.push(&umem, &f(11, 60)), Push::Queued);
    assert_eq!(w.push(&umem, &f(12, 60)), Push::Full);
    assert_eq!(w.push(&umem, &[0u8; 10]), Push::Refused);
    assert_eq!(w.push(&umem, &vec![0u8; 1519]), Push::Refused);
}

#[test]
fn program_encoding() {
    let p = redirect_program(7);
    assert_eq!(p[0], [0x61, 0x12, 16, 0, 0, 0, 0, 0]);
    assert_eq!(p[1], [0x18, 0x11, 0, 0, 7, 0, 0, 0]);
    assert_eq!(p[3], [0xb7, 0x03, 0, 0, 2, 0, 0, 0]);
    assert_eq!(p[4], [0x85, 0, 0, 0, 51, 0, 0, 0]);
    assert_eq!(p[5], [0x95, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn config_errors_and_missing_interface() {
    let msg = |c: AfXdpConfig| c.check("lan0").unwrap_err().to_string();
    assert!(AfXdpConfig::new("eth0").check("lan0").is_ok());
    assert!(
        msg(AfXdpConfig {
            frames: 1000,
            ..AfXdpConfig::new("eth0")
        })
        .contains("power of two")
    );
    assert!(
        msg(AfXdpConfig {
            queues: 0,
            ..AfXdpConfig::new("eth0")
        })
        .contains("queues")
    );
    assert!(
        msg(AfXdpConfig {
            bind: XdpBind::ZeroCopy,
            xdp_mode: XdpMode::Generic,
            ..AfXdpConfig::new("eth0")
        })
        .contains("xdp_bind = \"zerocopy\" needs the XDP program in the driver")
    );
    let Err(e) = open("lan0", &AfXdpConfig::new("sdnoexist9"), 0) else {
        panic!("opened a missing interface");
    };
    assert_eq!(
        e.to_string(),
        "port lan0: interface sdnoexist9 does not exist"
    );
}

// ---------------------------------------------------------------------------------------
// On real veth pairs in a throw-away namespace (root)

const MAC0: [u8; 6] = [2, 0, 0, 0, 0xd, 1];
const MAC1: [u8; 6] = [2, 0, 0, 0, 0xd, 2];

fn rx_until(q: &mut AfXdpRx, pool: &mut Pool, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
    let end = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut v = Vec::with_capacity(64);
    while got.len() < n && Instant::now() < end {
        if q.rx_burst(pool, &mut v, 32) == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
        for b in v.drain(..) {
            if frame_seq(b.data()).is_some() {
                got.push(b.data().to_vec());
            }
            pool.put(b);
        }
    }
    got
}

#[test]
fn receives_and_sends_on_a_veth_in_both_xdp_modes() {
    let Some(ns) = Netns::new_or_skip("xdp-io") else {
        return;
    };
    ns.veth("p0", "p1", true);
    ns.run(|| {
        for mode in [XdpMode::Native, XdpMode::Generic] {
            let cfg = AfXdpConfig {
                xdp_mode: mode,
                ..AfXdpConfig::new("p1")
            };
            let mut port = open("lan0", &cfg, 2).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
            assert_eq!(port.info.xdp_mode, mode);
            assert_eq!(port.info.mac, netdev::hwaddr("p1").unwrap());
            let raw = RawSock::bind("p0");
            let sent: Vec<Vec<u8>> = (0..100u32)
                .map(|i| frame(MAC1, MAC0, i, 60 + (i as usize * 97) % 1455))
                .collect();
            for s in &sent {
                raw.send(s);
            }
            let mut pool = Pool::new(256);
            let got = rx_until(
                &mut port.rx[0],
                &mut pool,
                sent.len(),
                Duration::from_secs(5),
            );
            assert_eq!(got, sent, "{mode:?}: received intact and in order");

            let back: Vec<Vec<u8>> = (0..3000u32)
                .map(|i| frame(MAC0, MAC1, 10_000 + i, 60 + (i as usize * 131) % 1455))
                .collect();
            let mut bufs = Vec::with_capacity(64);
            let mut seen = Vec::new();
            let mut buf = vec![0u8; 2048];
            for chunk in back.chunks(32) {
                for fr in chunk {
                    let mut b = pool.get().unwrap();
                    b.fill(fr);
                    bufs.push(b);
                }
                while !bufs.is_empty() {
                    port.tx[0].tx_burst(&mut pool, &mut bufs);
                    port.tx[0].flush();
                }
                // Drain the capture as we go so its socket buffer never overflows.
                while let Some(k) = raw.recv(&mut buf, Duration::from_millis(0)) {
                    if frame_seq(&buf[..k]).is_some() {
                        seen.push(buf[..k].to_vec());
                    }
                }
            }
            while seen.len() < back.len() {
                let Some(k) = raw.recv(&mut buf, Duration::from_secs(2)) else {
                    break;
                };
                if frame_seq(&buf[..k]).is_some() {
                    seen.push(buf[..k].to_vec());
                }
            }
            assert_eq!(seen.len(), back.len(), "{mode:?}: all sent frames arrive");
            assert_eq!(seen, back, "{mode:?}: sent intact and in order");
            let t = port.counters.totals();
            assert_eq!((t.rx_packets, t.tx_packets), (100, 3000), "{mode:?}");
            assert_eq!(
                (t.rx_errors, t.tx_errors, t.rx_drops),
                (0, 0, 0),
                "{mode:?}"
            );
            drop(port);
        }
    });
}

/// Frames sent while the peer has no carrier are not sent, stale, when it returns: only
/// the frames sent after arrive (in both XDP modes).
#[test]
fn frames_sent_without_a_carrier_do_not_arrive_late() {
    let Some(ns) = Netns::new_or_skip("xdp-carrier") else {
        return;
    };
    ns.veth("p0", "p1", true);
    ns.run(|| {
        for mode in [XdpMode::Native, XdpMode::Generic] {
            let cfg = AfXdpConfig {
                xdp_mode: mode,
                ..AfXdpConfig::new("p1")
            };
            let mut port = open("lan0", &cfg, 1).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
            let mut pool = Pool::new(256);
            ns.ip(&["link", "set", "p0", "down"]);
            wait_carrier("p1", false);
            send_frames(&mut port.tx[0], &mut pool, MAC0, MAC1, 0..10);
            for _ in 0..25 {
                std::thread::sleep(Duration::from_millis(2));
                port.tx[0].flush();
            }
            ns.ip(&["link", "set", "p0", "up"]);
            let raw = RawSock::bind("p0");
            wait_carrier("p1", true);
            send_frames(&mut port.tx[0], &mut pool, MAC0, MAC1, 20..25);
            let got = raw.recv_seqs(Duration::from_millis(500), usize::MAX);
            assert_eq!(
                got,
                vec![20, 21, 22, 23, 24],
                "{mode:?}: {:?}",
                port.counters.totals()
            );
            drop(port);
        }
    });
}

#[test]
fn a_second_port_on_the_same_interface_is_refused_clearly() {
    let Some(ns) = Netns::new_or_skip("xdp-busy") else {
        return;
    };
    ns.veth("p0", "p1", true);
    ns.run(|| {
        let _first = open("lan0", &AfXdpConfig::new("p1"), 0).unwrap();
        let Err(e) = open("lan1", &AfXdpConfig::new("p1"), 1) else {
            panic!("second port opened");
        };
        assert_eq!(
            e.to_string(),
            "port lan1: rx queue 0 of p1 already has an AF_XDP socket (another port or process; \
             still taken after 1000 ms)"
        );
    });
}

#[test]
fn forwards_both_directions_between_two_veth_pairs() {
    let Some(ns) = Netns::new_or_skip("xdp-fwd") else {
        return;
    };
    ns.veth("g0", "f0", true);
    ns.veth("g1", "f1", true);
    const N: u64 = 100_000;
    const WINDOW: u64 = 1024;
    ns.run(|| {
        let mut f0 = open("f0", &AfXdpConfig::new("f0"), 0).unwrap();
        let mut f1 = open("f1", &AfXdpConfig::new("f1"), 1).unwrap();
        let mode = f0.info.xdp_mode;
        // The generator uses afpacket on the outer ends.
        use crate::port::afpacket::{self, AfPacketConfig};
        let mut g = [
            afpacket::open("g0", &AfPacketConfig::new("g0"), 0).unwrap(),
            afpacket::open("g1", &AfPacketConfig::new("g1"), 1).unwrap(),
        ];
        let (c0, c1) = (Arc::clone(&f0.counters), Arc::clone(&f1.counters));
        let stop = AtomicBool::new(false);
        // Stops the forwarder however the generator's part ends (a panic in it would
        // otherwise leave the scope waiting for a forwarder that never stops).
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Relaxed);
            }
        }
        std::thread::scope(|s| {
            let fw = s.spawn(|| {
                let mut pool = Pool::new(4096);
                let mut v = Vec::with_capacity(64);
                let (mut moved, mut dropped) = (0u64, 0u64);
                let (ar, at) = (&mut f0.rx[0], &mut f0.tx[0]);
                let (br, bt) = (&mut f1.rx[0], &mut f1.tx[0]);
                while !stop.load(Relaxed) {
                    let mut any = false;
                    for (rx, tx) in [(&mut *ar, &mut *bt), (&mut *br, &mut *at)] {
                        if rx.rx_burst(&mut pool, &mut v, 32) == 0 {
                            continue;
                        }
                        any = true;
                        let mut tries = 0;
                        while !v.is_empty() && tries < 4 {
                            let n = tx.tx_burst(&mut pool, &mut v);
                            moved += n as u64;
                            tries += usize::from(n == 0);
                        }
                        dropped += v.len() as u64;
                        for x in v.drain(..) {
                            pool.put(x);
                        }
                        tx.flush();
                    }
                    if !any {
                        std::thread::yield_now();
                    }
                }
                (moved, dropped)
            });
            let _stop = StopOnDrop(&stop);
            let templ = [frame(MAC1, MAC0, 0, 64), frame(MAC0, MAC1, 0, 64)];
            let mut pool = Pool::new(8192);
            let mut v = Vec::with_capacity(64);
            let (mut sent, mut got, mut bad, mut lost) = ([0u64; 2], [0u64; 2], 0u64, [0u64; 2]);
            let mut last_progress = Instant::now();
            let t0 = Instant::now();
            let end = t0 + Duration::from_secs(30);
            while (got[0] + lost[0] < N || got[1] + lost[1] < N) && Instant::now() < end {
                for d in 0..2 {
                    // Frames counted lost after a 50 ms pause may still arrive later.
                    let inflight = sent[d].saturating_sub(got[d] + lost[d]);
                    let room = (N - sent[d]).min(WINDOW.saturating_sub(inflight)).min(32);
                    for k in 0..room {
                        let mut b = pool.get().unwrap();
                        b.fill(&templ[d]);
                        b.data_mut()[14..18].copy_from_slice(&((sent[d] + k) as u32).to_be_bytes());
                        v.push(b);
                    }
                    sent[d] += g[d].tx[0].tx_burst(&mut pool, &mut v) as u64;
                    for b in v.drain(..) {
                        pool.put(b);
                    }
                    g[d].tx[0].flush();
                }
                let mut progress = false;
                for d in 0..2 {
                    if g[1 - d].rx[0].rx_burst(&mut pool, &mut v, 64) > 0 {
                        progress = true;
                    }
                    for b in v.drain(..) {
                        let x = b.data();
                        if x.len() == 64 && x[..14] == templ[d][..14] && x[18..] == templ[d][18..] {
                            got[d] += 1;
                        } else {
                            bad += 1;
                        }
                        pool.put(b);
                    }
                }
                if progress {
                    last_progress = Instant::now();
                } else if last_progress.elapsed() > Duration::from_millis(50) {
                    for d in 0..2 {
                        lost[d] = sent[d].saturating_sub(got[d]);
                    }
                    last_progress = Instant::now();
                }
            }
            let secs = t0.elapsed().as_secs_f64();
            stop.store(true, Relaxed);
            let (moved, dropped) = fw.join().unwrap();
            println!(
                "afxdp forward ({mode:?} XDP, copy mode): sent {sent:?} received {got:?} lost \
                 {lost:?} bad {bad} forwarder moved {moved} dropped {dropped} in {secs:.2} s: \
                 {:.0} kpps total (64 B, window {WINDOW}, generator on afpacket, shared 2-core machine)",
                (got[0] + got[1]) as f64 / secs / 1e3
            );
            println!("afxdp forward: f0 {:?}\nafxdp forward: f1 {:?}", c0.totals(), c1.totals());
            assert_eq!(bad, 0, "every forwarded frame intact");
            assert!(got[0] > 0 && got[1] > 0, "both directions forward");
            assert!(
                got[0] + got[1] >= (2 * N) * 99 / 100,
                "at most 1% lost: received {got:?} of {N} each way"
            );
        });
    });
}

#[test]
fn veth_has_no_zero_copy_auto_binds_copy_and_zerocopy_says_what_to_set() {
    let Some(ns) = Netns::new_or_skip("xdp-zc") else {
        return;
    };
    ns.veth("p0", "p1", true);
    ns.run(|| {
        // The default (auto) asks for zero-copy, is told no, and binds in copy mode.
        let port = open("lan0", &AfXdpConfig::new("p1"), 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(port.info.bind, XdpBind::Copy);
        assert_eq!(port.info.xdp_mode, XdpMode::Native);
        drop(port);
        let generic = AfXdpConfig {
            xdp_mode: XdpMode::Generic,
            ..AfXdpConfig::new("p1")
        };
        let port = open("lan0", &generic, 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(port.info.bind, XdpBind::Copy);
        drop(port);
        let zc = AfXdpConfig {
            bind: XdpBind::ZeroCopy,
            ..AfXdpConfig::new("p1")
        };
        let Err(e) = open("lan0", &zc, 0) else {
            panic!("veth bound zero-copy");
        };
        assert_eq!(
            e.to_string(),
            "port lan0: the driver of p1 has no AF_XDP zero-copy (XDP_ZEROCOPY: operation not \
             supported): set xdp_bind = \"copy\" or \"auto\""
        );
        // Nothing was left attached: copy mode opens again.
        let copy = AfXdpConfig {
            bind: XdpBind::Copy,
            ..AfXdpConfig::new("p1")
        };
        let port = open("lan0", &copy, 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(port.info.bind, XdpBind::Copy);
    });
}
