use std::time::{Duration, Instant};

use super::*;
use crate::port::testnet::{Netns, RawSock, frame, frame_seq};

const KMAC: [u8; 6] = [2, 0, 0, 0, 0xb, 1];

fn rx_until(q: &mut TapRx, pool: &mut Pool, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
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
fn config_errors_say_what_is_accepted() {
    let msg = |c: TapConfig| match open("lan0", &c, 0) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("opened"),
    };
    assert_eq!(
        msg(TapConfig {
            queues: 0,
            ..TapConfig::new("tap0")
        }),
        "port lan0: queues must be 1..=64, not 0"
    );
    assert!(
        msg(TapConfig {
            mtu: Some(9000),
            ..TapConfig::new("tap0")
        })
        .contains("mtu must be")
    );
    assert!(msg(TapConfig::new("tap/0")).contains("invalid interface name"));
    let mc = Mac::parse("01:00:5e:00:00:01");
    assert!(
        msg(TapConfig {
            mac: mc,
            ..TapConfig::new("tap0")
        })
        .contains("not a unicast")
    );
}

#[test]
fn creates_the_tap_brings_it_up_and_uses_its_own_mac() {
    let Some(ns) = Netns::new_or_skip("tap-new") else {
        return;
    };
    ns.run(|| {
        let port = open("lan0", &TapConfig::new("sdtap0"), 0).unwrap();
        let i = &port.info;
        assert!(i.created);
        assert!(netdev::is_up("sdtap0").unwrap());
        assert_eq!(i.kernel_mac, netdev::hwaddr("sdtap0").unwrap());
        assert_eq!(i.mac, Mac::derived("lan0", "sdtap0"));
        assert_ne!(i.mac, i.kernel_mac);
        assert_eq!((i.queues, i.multi_queue, i.mtu), (1, false, 1500));
        assert!(i.note.is_none());
        drop(port);
        // Not persistent: gone with the port. Other tests in this process
        // spawn `ip` at any moment, and a child holds a copy of every fd
        // (this one too) from its fork until its exec closes the CLOEXEC
        // ones; the device goes when the last copy does, so allow for that.
        let end = Instant::now() + Duration::from_secs(2);
        while netdev::ifindex("sdtap0").is_ok() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            netdev::ifindex("sdtap0").is_err(),
            "sdtap0 still there 2 s after its only port closed"
        );

        let cfg = TapConfig {
            mtu: Some(1400),
            mac: Mac::parse("02:aa:00:00:00:01"),
            ..TapConfig::new("sdtap0")
        };
        let port = open("lan0", &cfg, 0).unwrap();
        assert_eq!(port.info.mtu, 1400);
        assert_eq!(netdev::mtu("sdtap0").unwrap(), 1400);
        assert_eq!(port.info.mac.to_string(), "02:aa:00:00:00:01");
    });
}

#[test]
fn kernel_sends_reach_rx_and_tx_reaches_the_kernel_intact() {
    let Some(ns) = Netns::new_or_skip("tap-io") else {
        return;
    };
    ns.run(|| {
        let mut port = open("lan0", &TapConfig::new("sdtap0"), 4).unwrap();
        let mac = port.info.mac.0;
        let raw = RawSock::bind("sdtap0");
        // Kernel → tap fd: a frame sent on the interface comes out of our fd.
        let sent: Vec<Vec<u8>> = (0..50u32)
            .map(|i| frame(mac, KMAC, i, 60 + (i as usize * 89) % 1455))
            .collect();
        for s in &sent {
            raw.send(s);
        }
        let mut pool = Pool::new(128);
        let got = rx_until(
            &mut port.rx[0],
            &mut pool,
            sent.len(),
            Duration::from_secs(5),
        );
        assert_eq!(got, sent);
        // Tap fd → kernel: what we write arrives on the interface.
        let mut bufs = Vec::with_capacity(64);
        let back: Vec<Vec<u8>> = (0..50u32)
            .map(|i| frame(KMAC, mac, 1000 + i, 60 + (i as usize * 53) % 1455))
            .collect();
        for f in &back {
            let mut b = pool.get().unwrap();
            b.fill(f);
            bufs.push(b);
        }
        let mut bad = pool.get().unwrap();
        bad.fill(&[0u8; 10]);
        bufs.insert(10, bad);
        let mut n = 0;
        while !bufs.is_empty() {
            n += port.tx[0].tx_burst(&mut pool, &mut bufs);
        }
        assert_eq!(n, 51);
        assert_eq!(pool.available(), 128);
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 2048];
        while seen.len() < back.len() {
            let Some(k) = raw.recv(&mut buf, Duration::from_secs(2)) else {
                break;
            };
            if frame_seq(&buf[..k]).is_some() {
                seen.push(buf[..k].to_vec());
            }
        }
        assert_eq!(seen, back);
        let t = port.counters.totals();
        assert_eq!(t.rx_packets, 50);
        assert_eq!(t.rx_bytes, sent.iter().map(|s| s.len() as u64).sum::<u64>());
        assert_eq!(t.tx_packets, 50);
        assert_eq!(t.tx_errors, 1);
        assert_eq!((t.rx_errors, t.rx_truncated), (0, 0));
    });
}

/// A UDP/IPv4 frame of flow `flow`, for the kernel's queue selection hash.
fn udp_frame(dst: [u8; 6], flow: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&KMAC);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[
        0x45, 0, 0, 46, 0, 0, 0, 0, 64, 17, 0, 0, 10, 1, 0, 2, 10, 2, 0, 2,
    ]);
    f.extend_from_slice(&(20000 + flow).to_be_bytes());
    f.extend_from_slice(&[0x13, 0x88, 0, 26, 0, 0]);
    f.resize(60, 0xcd);
    f
}

#[test]
fn multi_queue_tap_has_one_fd_per_queue() {
    let Some(ns) = Netns::new_or_skip("tap-mq") else {
        return;
    };
    ns.run(|| {
        let cfg = TapConfig {
            queues: 2,
            ..TapConfig::new("sdtap0")
        };
        let mut port = open("lan0", &cfg, 0).unwrap();
        assert_eq!((port.info.queues, port.info.multi_queue), (2, true));
        assert_eq!((port.rx.len(), port.tx.len()), (2, 2));
        let raw = RawSock::bind("sdtap0");
        let mac = port.info.mac.0;
        for fl in 0..64 {
            raw.send(&udp_frame(mac, fl));
        }
        let mut pool = Pool::new(256);
        let mut per_q = [0usize; 2];
        let mut v = Vec::with_capacity(64);
        let end = Instant::now() + Duration::from_secs(5);
        while per_q.iter().sum::<usize>() < 64 && Instant::now() < end {
            for (qi, q) in port.rx.iter_mut().enumerate() {
                per_q[qi] += q.rx_burst(&mut pool, &mut v, 32);
                for b in v.drain(..) {
                    pool.put(b);
                }
            }
        }
        println!("tap multi-queue: flows per queue {per_q:?}");
        assert_eq!(per_q.iter().sum::<usize>(), 64);
        assert!(
            per_q[0] > 0 && per_q[1] > 0,
            "both queues get flows: {per_q:?}"
        );
    });
}

#[test]
fn single_queue_device_falls_back_to_one_rx_queue_and_says_so() {
    let Some(ns) = Netns::new_or_skip("tap-fb") else {
        return;
    };
    ns.ip(&["tuntap", "add", "dev", "sdtap1", "mode", "tap"]);
    ns.run(|| {
        let cfg = TapConfig {
            queues: 2,
            ..TapConfig::new("sdtap1")
        };
        let mut port = open("lan0", &cfg, 0).unwrap();
        let i = &port.info;
        assert!(!i.created);
        assert_eq!((i.queues, i.multi_queue), (1, false));
        let note = i.note.clone().unwrap();
        assert!(
            note.contains("using 1 receive queue instead of 2"),
            "{note}"
        );
        assert_eq!((port.rx.len(), port.tx.len()), (1, 2));
        // Both tx queues write through the one descriptor.
        let raw = RawSock::bind("sdtap1");
        let mut pool = Pool::new(16);
        for (k, q) in port.tx.iter_mut().enumerate() {
            let mut b = pool.get().unwrap();
            b.fill(&frame(KMAC, [2, 0, 0, 0, 0xc, 1], k as u32, 80));
            let mut v = vec![b];
            assert_eq!(q.tx_burst(&mut pool, &mut v), 1);
        }
        let mut buf = vec![0u8; 2048];
        let mut seqs = Vec::new();
        while seqs.len() < 2 {
            let k = raw
                .recv(&mut buf, Duration::from_secs(2))
                .expect("frame from tap tx");
            if let Some(s) = frame_seq(&buf[..k]) {
                seqs.push(s);
            }
        }
        assert_eq!(seqs, [0, 1]);
        drop(port);
        // Persistent device made by `ip tuntap add`: still there.
        assert!(netdev::ifindex("sdtap1").is_ok());
    });
}

#[test]
fn a_second_opener_of_a_single_queue_tap_is_told_it_is_busy() {
    let Some(ns) = Netns::new_or_skip("tap-busy") else {
        return;
    };
    ns.run(|| {
        let _first = open("lan0", &TapConfig::new("sdtap0"), 0).unwrap();
        let Err(e) = open("lan1", &TapConfig::new("sdtap0"), 1) else {
            panic!("second open succeeded");
        };
        assert_eq!(
            e.to_string(),
            "port lan1: tap sdtap0 is already in use (another process or port holds it)"
        );
    });
}

#[test]
fn an_interface_that_is_not_a_tap_is_reported() {
    let Some(ns) = Netns::new_or_skip("tap-veth") else {
        return;
    };
    ns.veth("v0", "v1", false);
    let e = ns.run(|| open("lan0", &TapConfig::new("v0"), 0).err().unwrap());
    assert!(
        e.to_string()
            .starts_with("port lan0: interface v0 exists but is not a tap device"),
        "{e}"
    );
}

#[test]
fn proc_net_dev_drop_column_is_read_for_the_named_interface_only() {
    let text = b"Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0\n \
tap-ab: 100 2 0 7 0 0 0 0 200 3 0 999 0 0 0 0\n  \
tap-a:1234 5 0 6 0 0 0 0 4321 9 1 42 0 0 0 0\n";
    assert_eq!(proc_net_dev_tx_dropped(text, "tap-a"), Some(42));
    assert_eq!(proc_net_dev_tx_dropped(text, "tap-ab"), Some(999));
    assert_eq!(proc_net_dev_tx_dropped(text, "lo"), Some(0));
    assert_eq!(proc_net_dev_tx_dropped(text, "tap"), None);
    assert_eq!(proc_net_dev_tx_dropped(b"  eth0: 1 2 3\n", "eth0"), None);
    assert_eq!(proc_net_dev_tx_dropped(b"", "eth0"), None);
}

#[test]
fn frames_the_kernel_drops_while_steerd_does_not_read_are_counted() {
    let Some(ns) = Netns::new_or_skip("tap-drops") else {
        return;
    };
    ns.run(|| {
        let mut port = open("lan0", &TapConfig::new("sdtap3"), 0).unwrap();
        let mac = port.info.mac.0;
        // A queue of 8 frames towards steerd; nothing reads while 40 are sent.
        ns.ip(&["link", "set", "sdtap3", "txqueuelen", "8"]);
        let raw = RawSock::bind("sdtap3");
        for i in 0..40u32 {
            raw.send(&frame(mac, KMAC, i, 60));
        }
        let mut pool = Pool::new(128);
        let got = rx_until(&mut port.rx[0], &mut pool, 40, Duration::from_millis(500));
        assert!(!got.is_empty() && got.len() < 40, "{} received", got.len());
        port.rx[0].read_kernel_stats();
        let t = port.counters.totals();
        assert_eq!(t.rx_packets, got.len() as u64);
        assert_eq!(
            t.rx_drops,
            40 - got.len() as u64,
            "every frame received or counted"
        );
        // Read again: nothing new was dropped, nothing is counted twice.
        port.rx[0].read_kernel_stats();
        assert_eq!(port.counters.totals().rx_drops, 40 - got.len() as u64);
    });
}
