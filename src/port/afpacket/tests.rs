use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use super::*;
use crate::port::testnet::{Netns, RawSock, frame, frame_seq, send_frames, wait_carrier};

// ---------------------------------------------------------------------------------------
// Ring logic on rings built in memory (no kernel, no root)

const BS: usize = 4096;
/// Where the kernel puts the MAC header of an Ethernet frame in a V3 frame:
/// TPACKET_ALIGN(TPACKET3_HDRLEN + 16) - 14.
const MACOFF: usize = 82;

struct FakeFrame {
    data: Vec<u8>,
    wire: usize,
    status: u32,
    vlan: Option<(u16, u16)>,
}

fn ff(data: Vec<u8>) -> FakeFrame {
    let wire = data.len();
    FakeFrame {
        data,
        wire,
        status: libc::TP_STATUS_USER,
        vlan: None,
    }
}

/// Fills block `b` the way the kernel does and hands it to user space.
fn put_block(mem: &RingMem, b: usize, frames: &[FakeFrame]) {
    let base = b * BS;
    let mut off = BD_SIZE;
    for (i, f) in frames.iter().enumerate() {
        let h = base + off;
        let flen = (MACOFF + f.data.len() + 15) & !15;
        let next = if i + 1 == frames.len() {
            0
        } else {
            flen as u32
        };
        mem.write_u32(h + H3_NEXT, next);
        mem.write_u32(h + H3_SNAPLEN, f.data.len() as u32);
        mem.write_u32(h + H3_LEN, f.wire as u32);
        let mut st = f.status;
        if let Some((tpid, tci)) = f.vlan {
            st |= libc::TP_STATUS_VLAN_VALID | libc::TP_STATUS_VLAN_TPID_VALID;
            mem.write_u32(h + H3_VLAN_TCI, u32::from(tci));
            mem.copy_in(h + H3_VLAN_TPID, &tpid.to_ne_bytes());
        }
        mem.write_u32(h + H3_STATUS, st);
        mem.copy_in(h + H3_MAC, &(MACOFF as u16).to_ne_bytes());
        mem.copy_in(h + MACOFF, &f.data);
        off += flen;
    }
    mem.write_u32(base + BD_NUM_PKTS, frames.len() as u32);
    mem.write_u32(base + BD_FIRST, BD_SIZE as u32);
    mem.atomic_u32(base + BD_STATUS)
        .store(libc::TP_STATUS_USER, Ordering::Release);
}

fn block_status(r: &V3Ring, b: usize) -> u32 {
    r.mem.atomic_u32(b * BS + BD_STATUS).load(Ordering::Acquire)
}

fn fake_ring(blocks: usize) -> V3Ring {
    V3Ring::new(RingMem::alloc(BS * blocks), BS, blocks)
}

fn f(seq: u32, len: usize) -> Vec<u8> {
    frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], seq, len)
}

#[test]
fn v3_walks_blocks_in_order_and_returns_each_when_done() {
    let mut r = fake_ring(2);
    put_block(&r.mem, 0, &[ff(f(0, 60)), ff(f(1, 1514)), ff(f(2, 100))]);
    put_block(&r.mem, 1, &[ff(f(3, 64)), ff(f(4, 200))]);
    let mut pool = Pool::new(16);
    let mut out = Vec::with_capacity(32);
    let mut t = RxTally::default();

    // A burst smaller than the block leaves the block with user space.
    assert_eq!(r.burst(&mut pool, &mut out, 2, 7, &mut t), 2);
    assert_eq!(block_status(&r, 0), libc::TP_STATUS_USER);
    // The next one finishes block 0 (returned) and all of block 1 (returned).
    assert_eq!(r.burst(&mut pool, &mut out, 32, 7, &mut t), 3);
    assert_eq!(block_status(&r, 0), libc::TP_STATUS_KERNEL);
    assert_eq!(block_status(&r, 1), libc::TP_STATUS_KERNEL);
    assert_eq!(r.burst(&mut pool, &mut out, 32, 7, &mut t), 0);

    let seqs: Vec<u32> = out.iter().map(|b| frame_seq(b.data()).unwrap()).collect();
    assert_eq!(seqs, [0, 1, 2, 3, 4]);
    assert!(out.iter().all(|b| b.port == 7));
    assert_eq!(out[1].len(), 1514);
    assert_eq!(t.packets, 5);
    assert_eq!(t.bytes, 60 + 1514 + 100 + 64 + 200);

    // The ring wraps: block 0 again.
    put_block(&r.mem, 0, &[ff(f(5, 80))]);
    assert_eq!(r.burst(&mut pool, &mut out, 32, 7, &mut t), 1);
    assert_eq!(frame_seq(out[5].data()), Some(5));
    assert_eq!(block_status(&r, 0), libc::TP_STATUS_KERNEL);
}

#[test]
fn v3_drops_truncated_and_oversize_frames_and_counts_flags() {
    let mut r = fake_ring(2);
    let mut cut = ff(f(0, 100));
    cut.wire = 1500; // snaplen 100 < len 1500
    let big = ff(f(1, MAX_FRAME + 1));
    let mut csum = ff(f(2, 90));
    csum.status |= libc::TP_STATUS_CSUMNOTREADY | libc::TP_STATUS_LOSING;
    let runt = ff(vec![0u8; 10]);
    put_block(&r.mem, 0, &[cut, ff(f(3, 60)), runt]);
    put_block(&r.mem, 1, &[big, csum]);
    let mut pool = Pool::new(8);
    let mut out = Vec::with_capacity(32);
    let mut t = RxTally::default();
    assert_eq!(r.burst(&mut pool, &mut out, 32, 0, &mut t), 2);
    let seqs: Vec<u32> = out.iter().map(|b| frame_seq(b.data()).unwrap()).collect();
    assert_eq!(seqs, [3, 2]);
    assert_eq!(t.truncated, 1);
    assert_eq!(t.oversize, 1);
    assert_eq!(t.errors, 1);
    assert_eq!(t.csum_not_ready, 1);
    assert!(t.losing);
    assert_eq!(t.packets, 2);
    // Dropped frames took no buffers.
    assert_eq!(pool.available(), 6);
    assert_eq!(block_status(&r, 0), libc::TP_STATUS_KERNEL);
    assert_eq!(block_status(&r, 1), libc::TP_STATUS_KERNEL);
}

#[test]
fn v3_puts_a_stripped_vlan_tag_back() {
    let mut r = fake_ring(2);
    let inner = f(9, 60);
    let mut tagged = ff(inner.clone());
    tagged.vlan = Some((0x8100, 0x2064)); // PCP 1, VID 100
    put_block(&r.mem, 0, &[tagged]);
    let mut pool = Pool::new(2);
    let mut out = Vec::with_capacity(4);
    let mut t = RxTally::default();
    assert_eq!(r.burst(&mut pool, &mut out, 4, 0, &mut t), 1);
    let d = out[0].data();
    assert_eq!(d.len(), 64);
    assert_eq!(&d[..12], &inner[..12]);
    assert_eq!(&d[12..16], &[0x81, 0x00, 0x20, 0x64]);
    assert_eq!(&d[16..], &inner[12..]);
    assert_eq!(t.bytes, 64);
}

#[test]
fn v3_leaves_frames_in_the_ring_when_the_pool_is_empty() {
    let mut r = fake_ring(2);
    put_block(&r.mem, 0, &[ff(f(0, 60)), ff(f(1, 60)), ff(f(2, 60))]);
    let mut pool = Pool::new(1);
    let mut out = Vec::with_capacity(4);
    let mut t = RxTally::default();
    assert_eq!(r.burst(&mut pool, &mut out, 32, 0, &mut t), 1);
    assert_eq!(block_status(&r, 0), libc::TP_STATUS_USER);
    for b in out.drain(..) {
        pool.put(b);
    }
    let mut pool2 = Pool::new(4);
    assert_eq!(r.burst(&mut pool2, &mut out, 32, 0, &mut t), 2);
    let seqs: Vec<u32> = out.iter().map(|b| frame_seq(b.data()).unwrap()).collect();
    assert_eq!(seqs, [1, 2]);
    assert_eq!(block_status(&r, 0), libc::TP_STATUS_KERNEL);
}

#[test]
fn v3_skips_a_block_with_corrupt_offsets_without_panicking() {
    let mut r = fake_ring(2);
    put_block(&r.mem, 0, &[ff(f(0, 60)), ff(f(1, 60))]);
    // First frame's MAC offset points past the block.
    r.mem.copy_in(BD_SIZE + H3_MAC, &(4000u16).to_ne_bytes());
    put_block(&r.mem, 1, &[ff(f(2, 60))]);
    r.mem.write_u32(BS + BD_FIRST, 5000);
    let mut pool = Pool::new(4);
    let mut out = Vec::with_capacity(4);
    let mut t = RxTally::default();
    assert_eq!(r.burst(&mut pool, &mut out, 32, 0, &mut t), 0);
    assert_eq!(t.errors, 2);
    assert_eq!(block_status(&r, 0), libc::TP_STATUS_KERNEL);
    assert_eq!(block_status(&r, 1), libc::TP_STATUS_KERNEL);
}

#[test]
fn v2_tx_fills_frames_in_order_and_stops_when_full() {
    let fs = 2048;
    let mut r = V2TxRing::new(RingMem::alloc(fs * 4), fs, 4, 1518);
    for i in 0..4 {
        assert_eq!(r.push(&f(i, 60 + i as usize)), Push::Queued);
    }
    assert_eq!(r.push(&f(4, 60)), Push::Full);
    assert_eq!(r.pending, 4);
    for i in 0..4usize {
        let base = i * fs;
        assert_eq!(
            r.mem.atomic_u32(base).load(Ordering::Acquire),
            libc::TP_STATUS_SEND_REQUEST
        );
        let len = r.mem.read_u32(base + H2_LEN) as usize;
        assert_eq!(len, 60 + i);
        let mut d = vec![0u8; len];
        r.mem.copy_out(base + TX_DATA_OFF, &mut d);
        assert_eq!(frame_seq(&d), Some(i as u32));
    }
    // The kernel finishes frame 0: the ring takes the next packet there.
    r.mem
        .atomic_u32(0)
        .store(libc::TP_STATUS_AVAILABLE, Ordering::Release);
    assert_eq!(r.push(&f(4, 70)), Push::Queued);
    assert_eq!(r.mem.read_u32(H2_LEN), 70);
    assert_eq!(r.push(&f(5, 60)), Push::Full);
    // Unsendable sizes are refused before looking at the ring.
    assert_eq!(r.push(&[0u8; 13]), Push::Refused);
    assert_eq!(r.push(&vec![0u8; 1519]), Push::Refused);
}

#[test]
fn v2_tx_discards_only_the_frames_the_kernel_has_not_taken() {
    let fs = 2048;
    let mut r = V2TxRing::new(RingMem::alloc(fs * 4), fs, 4, 1518);
    for i in 0..3 {
        assert_eq!(r.push(&f(i, 60)), Push::Queued);
    }
    let status = |r: &V2TxRing, i: usize| r.mem.atomic_u32(i * fs).load(Ordering::Acquire);
    // The kernel took frame 0 (still sending) and then refused frame 1: 1 and 2 wait.
    r.mem
        .atomic_u32(0)
        .store(libc::TP_STATUS_SENDING, Ordering::Release);
    assert_eq!(r.discard_unsent(), 2);
    assert_eq!(r.pending, 0);
    assert_eq!(
        status(&r, 0),
        libc::TP_STATUS_SENDING,
        "in flight: untouched"
    );
    assert_eq!(status(&r, 1), libc::TP_STATUS_AVAILABLE);
    assert_eq!(status(&r, 2), libc::TP_STATUS_AVAILABLE);
    // The next packet goes where the kernel looks next: frame 1.
    assert_eq!(r.push(&f(9, 61)), Push::Queued);
    assert_eq!(status(&r, 1), libc::TP_STATUS_SEND_REQUEST);
    assert_eq!(r.mem.read_u32(fs + H2_LEN), 61);
    assert_eq!(r.discard_unsent(), 1);
    // A ring full of waiting frames (wrapped): all four go, and the position stays.
    r.mem
        .atomic_u32(0)
        .store(libc::TP_STATUS_AVAILABLE, Ordering::Release);
    for i in 0..4 {
        assert_eq!(r.push(&f(i, 60)), Push::Queued);
    }
    assert_eq!(r.push(&f(4, 60)), Push::Full);
    assert_eq!(r.discard_unsent(), 4);
    assert!((0..4).all(|i| status(&r, i) == libc::TP_STATUS_AVAILABLE));
    assert_eq!(r.push(&f(5, 60)), Push::Queued);
    assert_eq!(
        status(&r, 1),
        libc::TP_STATUS_SEND_REQUEST,
        "head was at frame 1"
    );
    // Nothing waiting: nothing to discard.
    r.mem
        .atomic_u32(fs)
        .store(libc::TP_STATUS_AVAILABLE, Ordering::Release);
    assert_eq!(r.discard_unsent(), 0);
}

#[test]
fn tx_data_offset_matches_the_kernel() {
    // The kernel puts V2 tx data at tp_hdrlen - sizeof(sockaddr_ll).
    assert_eq!(
        TX_DATA_OFF,
        libc::TPACKET2_HDRLEN - size_of::<libc::sockaddr_ll>()
    );
    assert_eq!(TX_DATA_OFF, 32);
}

#[test]
fn config_errors_say_what_is_accepted() {
    let msg = |c: AfPacketConfig| c.check("lan0").unwrap_err().to_string();
    let base = AfPacketConfig::new("eth0");
    assert!(base.check("lan0").is_ok());
    assert_eq!(
        msg(AfPacketConfig {
            queues: 0,
            ..base.clone()
        }),
        "port lan0: queues must be 1..=64, not 0"
    );
    assert!(
        msg(AfPacketConfig {
            rx_block_size: 5000,
            ..base.clone()
        })
        .contains("power of two")
    );
    assert!(
        msg(AfPacketConfig {
            rx_block_nr: 1,
            ..base.clone()
        })
        .contains("rx_block_nr")
    );
    assert!(
        msg(AfPacketConfig {
            tx_frame_nr: 100,
            ..base.clone()
        })
        .contains("multiple of 32")
    );
    assert!(
        msg(AfPacketConfig {
            mtu: Some(9000),
            ..base.clone()
        })
        .contains("mtu must be 68..=1902")
    );
    assert!(
        msg(AfPacketConfig {
            rx_block_timeout_ms: 0,
            ..base
        })
        .contains("rx_block_timeout_ms")
    );
}

#[test]
fn missing_interface_is_reported_before_any_privilege_check() {
    let Err(e) = open("lan0", &AfPacketConfig::new("sdnoexist9"), 0) else {
        panic!("opened a missing interface");
    };
    assert_eq!(
        e.to_string(),
        "port lan0: interface sdnoexist9 does not exist"
    );
}

// ---------------------------------------------------------------------------------------
// On real veth pairs in a throw-away namespace (root)

const MAC0: [u8; 6] = [2, 0, 0, 0, 0xa, 1];
const MAC1: [u8; 6] = [2, 0, 0, 0, 0xa, 2];

/// Receives from `q` until `n` test frames arrived or `timeout` passed.
fn rx_until(q: &mut AfPacketRx, pool: &mut Pool, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
    let end = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut v = Vec::with_capacity(64);
    while got.len() < n && Instant::now() < end {
        if q.rx_burst(pool, &mut v, 32) == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
        for b in v.drain(..) {
            got.push(b.data().to_vec());
            pool.put(b);
        }
    }
    got
}

#[test]
fn down_interface_is_reported() {
    let Some(ns) = Netns::new_or_skip("afp-down") else {
        return;
    };
    ns.veth("d0", "d1", false);
    let e = ns.run(|| open("lan0", &AfPacketConfig::new("d1"), 0).err().unwrap());
    assert_eq!(
        e.to_string(),
        "port lan0: interface d1 is down (ip link set d1 up)"
    );
}

#[test]
fn receives_frames_from_the_peer_intact_and_counts_them() {
    let Some(ns) = Netns::new_or_skip("afp-rx") else {
        return;
    };
    ns.veth("p0", "p1", true);
    ns.run(|| {
        let mut port = open("lan0", &AfPacketConfig::new("p1"), 3).unwrap();
        assert_eq!(port.info.queues, 1);
        assert_eq!(port.info.mac, netdev::hwaddr("p1").unwrap());
        assert_eq!(port.info.mtu, 1500);
        let inj = RawSock::bind("p0");
        let sizes: Vec<usize> = (0..100).map(|i| 60 + (i * 97) % 1455).collect();
        let sent: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| frame(MAC1, MAC0, i as u32, n))
            .collect();
        for s in &sent {
            inj.send(s);
        }
        let mut pool = Pool::new(256);
        let mut q = port.rx.remove(0);
        let got = rx_until(&mut q, &mut pool, sent.len(), Duration::from_secs(5));
        assert_eq!(got.len(), sent.len(), "frames received");
        assert_eq!(got, sent, "frames arrive intact and in order");
        drop(q);
        let t = port.counters.totals();
        assert_eq!(t.rx_packets, 100);
        assert_eq!(t.rx_bytes, sizes.iter().sum::<usize>() as u64);
        assert_eq!(
            (t.rx_truncated, t.rx_oversize, t.rx_errors, t.rx_drops),
            (0, 0, 0, 0)
        );
    });
}

#[test]
fn sends_frames_to_the_peer_intact_and_does_not_read_them_back() {
    let Some(ns) = Netns::new_or_skip("afp-tx") else {
        return;
    };
    ns.veth("p0", "p1", true);
    ns.run(|| {
        let mut port = open("lan0", &AfPacketConfig::new("p1"), 0).unwrap();
        let cap = RawSock::bind("p0");
        let mut pool = Pool::new(256);
        let mut bufs = Vec::with_capacity(256);
        let mut sent = Vec::new();
        for i in 0..100u32 {
            let fr = frame(MAC0, MAC1, i, 60 + (i as usize * 131) % 1455);
            let mut b = pool.get().unwrap();
            b.fill(&fr);
            bufs.push(b);
            sent.push(fr);
        }
        // One too large for the MTU: discarded and counted, never stuck at the front.
        let mut big = pool.get().unwrap();
        big.fill(&frame(MAC0, MAC1, 999, 1500 + 18 + 1));
        bufs.insert(50, big);
        let mut tx = port.tx.remove(0);
        let mut n = 0;
        while !bufs.is_empty() {
            n += tx.tx_burst(&mut pool, &mut bufs);
            tx.flush();
        }
        assert_eq!(n, 101);
        assert_eq!(pool.available(), 256);
        let mut got = Vec::new();
        let mut buf = vec![0u8; 2048];
        while let Some(k) = cap.recv(&mut buf, Duration::from_secs(2)) {
            if frame_seq(&buf[..k]).is_some() {
                got.push(buf[..k].to_vec());
            }
            if got.len() == sent.len() {
                break;
            }
        }
        assert_eq!(got, sent, "frames arrive intact and in order");
        // Our own sends never come back on our rx queue.
        let mut rxq = port.rx.remove(0);
        assert!(rx_until(&mut rxq, &mut pool, 1, Duration::from_millis(100)).is_empty());
        let t = port.counters.totals();
        assert_eq!(t.tx_packets, 100);
        assert_eq!(t.tx_errors, 1);
        assert!(
            t.tx_kicks >= 1 && t.tx_kicks <= 4,
            "one kick per flush: {}",
            t.tx_kicks
        );
        assert_eq!(t.rx_packets, 0);
    });
}

/// The peer goes down with frames queued: the kicks fail, and after `CARRIER_CHECK` the
/// queue sees no carrier and discards them, so they are not sent, stale, when the peer
/// comes back; later frames are.
#[test]
fn frames_queued_without_a_carrier_are_discarded_not_sent_when_it_returns() {
    let Some(ns) = Netns::new_or_skip("afp-carrier") else {
        return;
    };
    ns.veth("p0", "p1", true);
    ns.run(|| {
        let mut port = open("lan0", &AfPacketConfig::new("p1"), 0).unwrap();
        let mut tx = port.tx.remove(0);
        let mut pool = Pool::new(64);
        ns.ip(&["link", "set", "p0", "down"]);
        wait_carrier("p1", false);
        send_frames(&mut tx, &mut pool, MAC0, MAC1, 0..10);
        // Keep kicking past the carrier check.
        let t0 = std::time::Instant::now();
        while port.counters.totals().tx_discarded < 10 {
            assert!(
                t0.elapsed() < Duration::from_secs(2),
                "not discarded: {:?}",
                port.counters.totals()
            );
            std::thread::sleep(Duration::from_millis(2));
            tx.flush();
        }
        let t = port.counters.totals();
        assert_eq!(t.tx_discarded, 10, "{t:?}");
        assert!(t.tx_kick_errors > 0, "{t:?}");
        ns.ip(&["link", "set", "p0", "up"]);
        let cap = RawSock::bind("p0");
        wait_carrier("p1", true);
        send_frames(&mut tx, &mut pool, MAC0, MAC1, 20..25);
        let got = cap.recv_seqs(Duration::from_millis(500), 5);
        assert_eq!(got, vec![20, 21, 22, 23, 24], "only the frames sent after");
    });
}

#[test]
fn vlan_tagged_frames_keep_their_tag() {
    let Some(ns) = Netns::new_or_skip("afp-vlan") else {
        return;
    };
    ns.veth("p0", "p1", true);
    ns.run(|| {
        let mut port = open("lan0", &AfPacketConfig::new("p1"), 0).unwrap();
        let inner = frame(MAC1, MAC0, 5, 100);
        let mut tagged = inner[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a]); // VID 42
        tagged.extend_from_slice(&inner[12..]);
        RawSock::bind("p0").send(&tagged);
        let mut pool = Pool::new(8);
        let got = rx_until(&mut port.rx[0], &mut pool, 1, Duration::from_secs(5));
        assert_eq!(got, [tagged]);
    });
}

#[test]
fn frames_the_kernel_sends_on_the_interface_are_not_received() {
    let Some(ns) = Netns::new_or_skip("afp-out") else {
        return;
    };
    ns.veth("p0", "p1", true);
    ns.run(|| {
        for queues in [1, 2] {
            let cfg = AfPacketConfig {
                queues,
                ..AfPacketConfig::new("p1")
            };
            let mut port = open("lan0", &cfg, 0).unwrap();
            // Another socket's sends on p1 pass the packet taps as PACKET_OUTGOING.
            let other = RawSock::bind("p1");
            for i in 0..20 {
                other.send(&udp_frame(i, 0));
            }
            // And one frame really coming in, to know the queues are live.
            RawSock::bind("p0").send(&udp_frame(99, 1));
            let mut pool = Pool::new(64);
            let mut v = Vec::with_capacity(64);
            let mut got = 0;
            let end = Instant::now() + Duration::from_millis(500);
            while Instant::now() < end {
                for q in port.rx.iter_mut() {
                    got += q.rx_burst(&mut pool, &mut v, 32);
                    for b in v.drain(..) {
                        pool.put(b);
                    }
                }
            }
            assert_eq!(got, 1, "{queues} queue(s): only the incoming frame");
        }
    });
}

/// A UDP/IPv4 frame of flow `flow` (source port), for the fanout hash.
fn udp_frame(flow: u16, seq: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&MAC1);
    f.extend_from_slice(&MAC0);
    f.extend_from_slice(&[0x08, 0x00]);
    let ip = [
        0x45, 0, 0, 46, 0, 0, 0, 0, 64, 17, 0, 0, 10, 1, 0, 2, 10, 2, 0, 2,
    ];
    f.extend_from_slice(&ip);
    f.extend_from_slice(&(10000 + flow).to_be_bytes());
    f.extend_from_slice(&[0x13, 0x88, 0, 26, 0, 0]);
    f.extend_from_slice(&seq.to_be_bytes());
    f.resize(60, 0xab);
    f
}

#[test]
fn fanout_spreads_flows_over_queues_and_keeps_each_flow_on_one() {
    let Some(ns) = Netns::new_or_skip("afp-fan") else {
        return;
    };
    ns.veth("p0", "p1", true);
    ns.run(|| {
        let cfg = AfPacketConfig {
            queues: 2,
            ..AfPacketConfig::new("p1")
        };
        let mut port = open("lan0", &cfg, 0).unwrap();
        assert!(port.info.fanout_group.is_some());
        let inj = RawSock::bind("p0");
        let (flows, per) = (64u16, 4u16);
        for s in 0..per {
            for fl in 0..flows {
                inj.send(&udp_frame(fl, s));
            }
        }
        let total = usize::from(flows * per);
        let mut pool = Pool::new(512);
        let mut seen: HashMap<u16, usize> = HashMap::new();
        let mut per_q = [0usize; 2];
        let end = Instant::now() + Duration::from_secs(5);
        let mut v = Vec::with_capacity(64);
        while per_q.iter().sum::<usize>() < total && Instant::now() < end {
            for (qi, q) in port.rx.iter_mut().enumerate() {
                q.rx_burst(&mut pool, &mut v, 32);
                for b in v.drain(..) {
                    let d = b.data();
                    let flow = u16::from_be_bytes([d[34], d[35]]) - 10000;
                    let prev = *seen.entry(flow).or_insert(qi);
                    assert_eq!(prev, qi, "flow {flow} seen on two queues");
                    per_q[qi] += 1;
                    pool.put(b);
                }
            }
        }
        assert_eq!(per_q.iter().sum::<usize>(), total);
        assert!(
            per_q[0] > 0 && per_q[1] > 0,
            "both queues get flows: {per_q:?}"
        );
        assert_eq!(port.counters.rx[0].packets.load(Relaxed) as usize, per_q[0]);
        assert_eq!(port.counters.rx[1].packets.load(Relaxed) as usize, per_q[1]);
    });
}

/// Moves frames rx → tx between two ports, the loop a worker runs; returns what it moved
/// and dropped (tx ring still full after retries).
fn forward(a: &mut AfPacketPort, b: &mut AfPacketPort, stop: &AtomicBool) -> (u64, u64) {
    let mut pool = Pool::new(4096);
    let mut v = Vec::with_capacity(64);
    let (mut moved, mut dropped) = (0u64, 0u64);
    let (ar, at) = (&mut a.rx[0], &mut a.tx[0]);
    let (br, bt) = (&mut b.rx[0], &mut b.tx[0]);
    let mut idle = 0u32;
    while !stop.load(Relaxed) {
        let mut any = false;
        for (rx, tx) in [(&mut *ar, &mut *bt), (&mut *br, &mut *at)] {
            if rx.rx_burst(&mut pool, &mut v, 32) == 0 {
                continue;
            }
            any = true;
            let mut tries = 0;
            while !v.is_empty() {
                let n = tx.tx_burst(&mut pool, &mut v);
                moved += n as u64;
                if n == 0 {
                    tries += 1;
                    if tries == 4 {
                        dropped += v.len() as u64;
                        for x in v.drain(..) {
                            pool.put(x);
                        }
                    }
                }
            }
            tx.flush();
        }
        if any {
            idle = 0;
        } else {
            idle += 1;
            if idle > 1000 {
                std::thread::yield_now();
            }
        }
    }
    (moved, dropped)
}

#[test]
fn forwards_both_directions_between_two_veth_pairs() {
    let Some(ns) = Netns::new_or_skip("afp-fwd") else {
        return;
    };
    // g0 -- f0 [forwarder] f1 -- g1; the generator owns g0 and g1.
    ns.veth("g0", "f0", true);
    ns.veth("g1", "f1", true);
    const N: u64 = 100_000;
    const WINDOW: u64 = 1024;
    ns.run(|| {
        let mut f0 = open("f0", &AfPacketConfig::new("f0"), 0).unwrap();
        let mut f1 = open("f1", &AfPacketConfig::new("f1"), 1).unwrap();
        let mut g = [
            open("g0", &AfPacketConfig::new("g0"), 0).unwrap(),
            open("g1", &AfPacketConfig::new("g1"), 1).unwrap(),
        ];
        let (c0, c1) = (Arc::clone(&f0.counters), Arc::clone(&f1.counters));
        let stop = AtomicBool::new(false);
        /// Stops the forwarder even when the generator panics (else the scope waits).
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Relaxed);
            }
        }
        std::thread::scope(|s| {
            let fw = s.spawn(|| forward(&mut f0, &mut f1, &stop));
            let _stop_fw = StopOnDrop(&stop);
            let templ = [frame(MAC1, MAC0, 0, 64), frame(MAC0, MAC1, 0, 64)];
            let mut pool = Pool::new(8192);
            let mut v = Vec::with_capacity(64);
            let (mut sent, mut got, mut bad, mut lost) = ([0u64; 2], [0u64; 2], 0u64, [0u64; 2]);
            let mut last_progress = Instant::now();
            let t0 = Instant::now();
            let end = t0 + Duration::from_secs(30);
            while (got[0] + lost[0] < N || got[1] + lost[1] < N) && Instant::now() < end {
                // Direction d: generated on g[d], forwarded, received on g[1 - d].
                for d in 0..2 {
                    // A frame given up as lost may still arrive: saturate.
                    let inflight = sent[d].saturating_sub(got[d] + lost[d]);
                    let room = (N - sent[d]).min(WINDOW.saturating_sub(inflight)).min(32);
                    for k in 0..room {
                        let mut b = pool.get().unwrap();
                        b.fill(&templ[d]);
                        b.data_mut()[14..18].copy_from_slice(&((sent[d] + k) as u32).to_be_bytes());
                        v.push(b);
                    }
                    let n = g[d].tx[0].tx_burst(&mut pool, &mut v) as u64;
                    sent[d] += n;
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
                    // Whatever is still out after 50 ms of silence is lost; reopen the window.
                    for d in 0..2 {
                        lost[d] = sent[d] - got[d];
                    }
                    last_progress = Instant::now();
                }
            }
            let secs = t0.elapsed().as_secs_f64();
            stop.store(true, Relaxed);
            let (moved, dropped) = fw.join().unwrap();
            let pps = (got[0] + got[1]) as f64 / secs;
            println!(
                "afpacket forward: sent {sent:?} received {got:?} lost {lost:?} bad {bad} \
                 forwarder moved {moved} dropped {dropped} in {secs:.2} s: {:.0} kpps total \
                 (64 B, window {WINDOW}, shared 2-core machine)",
                pps / 1e3
            );
            let t0c = c0.totals();
            let t1c = c1.totals();
            println!("afpacket forward: f0 {t0c:?}\nafpacket forward: f1 {t1c:?}");
            assert_eq!(bad, 0, "every forwarded frame intact");
            assert!(got[0] > 0 && got[1] > 0, "both directions forward");
            assert!(
                got[0] + got[1] >= (2 * N) * 99 / 100,
                "at most 1% lost: received {got:?} of {N} each way"
            );
        });
    });
}
