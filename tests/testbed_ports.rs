//! End to end on scripts/testbed.sh (root): builds the three-namespace test bed in `tap`
//! and `afpacket` modes under its own prefix, runs a stand-in forwarder on the port
//! backends in the router namespace (a MAC rewrite between the two sides, no routing: the
//! routing pipeline is tested elsewhere), and checks that ping (IPv4 and IPv6) and a TCP
//! transfer (iperf3) cross it. This checks the script (addresses, static neighbours,
//! offloads off, bridges and taps) together with the tap and afpacket backends.
//!
//! Without root or a needed tool the tests print `SKIPPED: <reason>`; with `CI=true` they
//! fail instead.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use steerd::port::afpacket::{self, AfPacketConfig};
use steerd::port::tap::{self, TapConfig};
use steerd::port::{Buf, Mac, PktBuf, Pool, RxQueue, TxQueue};

fn skip(reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("test cannot run: {reason} (CI=true turns skips into failures)");
    }
    println!("SKIPPED: {reason}");
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

const MAC_A: &str = "02:00:00:00:01:02";
const MAC_B: &str = "02:00:00:00:02:02";

/// A test bed of our own (prefix `sdt<pid><n>-`), torn down on drop.
struct Testbed {
    prefix: String,
}

impl Testbed {
    fn script() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/testbed.sh")
    }

    fn cmd(&self, args: &[&str]) -> Output {
        Command::new(Self::script())
            .args(args)
            .env("STEERD_TESTBED_PREFIX", &self.prefix)
            .output()
            .expect("run scripts/testbed.sh")
    }

    fn up_or_skip(mode: &str) -> Option<Testbed> {
        // SAFETY: geteuid() has no arguments and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            skip("needs root (network namespaces)");
            return None;
        }
        for (cmd, pkg) in [
            ("ip", "iproute2"),
            ("ethtool", "ethtool"),
            ("ping", "iputils-ping"),
            ("iperf3", "iperf3"),
        ] {
            if !have(cmd) {
                skip(&format!(
                    "{cmd} is missing (scripts/install-testbed-deps.sh installs {pkg})"
                ));
                return None;
            }
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let tb = Testbed {
            prefix: format!(
                "sdt{}{}-",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ),
        };
        let o = tb.cmd(&["up", mode, "--static-arp", "auto"]);
        assert!(
            o.status.success(),
            "testbed.sh up {mode}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        Some(tb)
    }

    /// Runs `f` on a thread inside the router namespace.
    fn in_router<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let path = format!("/run/netns/{}r", self.prefix);
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                // SAFETY: setns() on a valid namespace descriptor; it affects this thread only.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {path}");
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let _ = self.cmd(&["down"]);
    }
}

/// The stand-in forwarder: frames from side A go to host B and back, with the Ethernet
/// addresses rewritten as a router would (source = our MAC on the egress side);
/// broadcast and multicast frames are not forwarded.
fn rewrite_and_forward<R, T>(
    sides: [(&mut R, &mut T); 2],
    our: [Mac; 2],
    hosts: [Mac; 2],
    stop: &AtomicBool,
) -> u64
where
    R: RxQueue<Buf = PktBuf, Pool = Pool>,
    T: TxQueue<Buf = PktBuf, Pool = Pool>,
{
    let mut pool = Pool::new(1024);
    let mut v: Vec<PktBuf> = Vec::with_capacity(64);
    let mut out: Vec<PktBuf> = Vec::with_capacity(64);
    let [(ra, ta), (rb, tb)] = sides;
    let mut moved = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut idle = true;
        for (rx, tx, egress) in [(&mut *ra, &mut *tb, 1usize), (&mut *rb, &mut *ta, 0usize)] {
            if rx.rx_burst(&mut pool, &mut v, 32) == 0 {
                continue;
            }
            idle = false;
            for mut b in v.drain(..) {
                let d = b.data_mut();
                if d[0] & 1 != 0 {
                    pool.put(b);
                    continue;
                }
                d[..6].copy_from_slice(&hosts[egress].0);
                d[6..12].copy_from_slice(&our[egress].0);
                out.push(b);
            }
            let mut tries = 0;
            while !out.is_empty() && tries < 100 {
                let n = tx.tx_burst(&mut pool, &mut out);
                moved += n as u64;
                tries += usize::from(n == 0);
            }
            for b in out.drain(..) {
                pool.put(b);
            }
            tx.flush();
        }
        if idle {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    moved
}

/// Pings and a one-second iperf3 TCP run from host A to host B through the forwarder.
fn traffic_crosses(tb: &Testbed, label: &str) {
    for dst in ["10.2.0.2", "fd02::2"] {
        let o = tb.cmd(&[
            "run", "a", "--", "ping", "-c", "3", "-i", "0.2", "-W", "2", dst,
        ]);
        assert!(
            o.status.success(),
            "{label}: ping {dst}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let mut server = Command::new(Testbed::script())
        .args(["run", "b", "--", "iperf3", "-s", "-1", "-B", "10.2.0.2"])
        .env("STEERD_TESTBED_PREFIX", &tb.prefix)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 server");
    let t0 = Instant::now();
    let mut client;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        client = tb.cmd(&[
            "run", "a", "--", "iperf3", "-c", "10.2.0.2", "-t", "1", "-J",
        ]);
        if client.status.success() || t0.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    let json = String::from_utf8_lossy(&client.stdout);
    assert!(
        client.status.success(),
        "{label}: iperf3 TCP failed: {json}"
    );
    // "sum_received": { ... "bits_per_second": X ... }
    let bps = json
        .split("\"sum_received\"")
        .nth(1)
        .and_then(|s| s.split("\"bits_per_second\":").nth(1))
        .and_then(|s| s.split([',', '\n', '}']).next())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    println!(
        "{label}: ping v4/v6 ok, iperf3 TCP {:.0} Mbit/s (debug or release build, shared machine)",
        bps / 1e6
    );
    assert!(bps > 0.0, "{label}: TCP moved no data");
}

#[test]
fn afpacket_mode_carries_ping_and_tcp() {
    let Some(tb) = Testbed::up_or_skip("afpacket") else {
        return;
    };
    let stop = AtomicBool::new(false);
    tb.in_router(|| {
        let mut a = afpacket::open("side-a", &AfPacketConfig::new("veth-ra"), 0).unwrap();
        let mut b = afpacket::open("side-b", &AfPacketConfig::new("veth-rb"), 1).unwrap();
        assert_eq!(a.info.mac.to_string(), "02:00:00:00:01:01");
        let our = [a.info.mac, b.info.mac];
        let hosts = [Mac::parse(MAC_A).unwrap(), Mac::parse(MAC_B).unwrap()];
        std::thread::scope(|s| {
            let fw = s.spawn(|| {
                let (ra, ta) = (&mut a.rx[0], &mut a.tx[0]);
                let (rb, tb_) = (&mut b.rx[0], &mut b.tx[0]);
                rewrite_and_forward([(ra, ta), (rb, tb_)], our, hosts, &stop)
            });
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                traffic_crosses(&tb, "afpacket")
            }));
            stop.store(true, Ordering::Relaxed);
            let moved = fw.join().unwrap();
            println!("afpacket: forwarder moved {moved} frames");
            if let Err(p) = r {
                std::panic::resume_unwind(p);
            }
        });
        let (ta, tb_) = (a.counters.totals(), b.counters.totals());
        println!("afpacket: side-a {ta:?}\nafpacket: side-b {tb_:?}");
        assert_eq!(
            ta.rx_csum_not_ready + tb_.rx_csum_not_ready,
            0,
            "offloads are off"
        );
        assert_eq!(ta.rx_truncated + tb_.rx_truncated, 0);
    });
}

#[test]
fn tap_mode_carries_ping_and_tcp() {
    let Some(tb) = Testbed::up_or_skip("tap") else {
        return;
    };
    let stop = AtomicBool::new(false);
    tb.in_router(|| {
        let cfg = |ifname: &str, mac: &str| TapConfig {
            mac: Mac::parse(mac),
            ..TapConfig::new(ifname)
        };
        let mut a = tap::open("side-a", &cfg("tap-a", "02:00:00:00:01:fe"), 0).unwrap();
        let mut b = tap::open("side-b", &cfg("tap-b", "02:00:00:00:02:fe"), 1).unwrap();
        assert!(!a.info.created, "the script made tap-a");
        let our = [a.info.mac, b.info.mac];
        let hosts = [Mac::parse(MAC_A).unwrap(), Mac::parse(MAC_B).unwrap()];
        std::thread::scope(|s| {
            let fw = s.spawn(|| {
                let (ra, ta) = (&mut a.rx[0], &mut a.tx[0]);
                let (rb, tb_) = (&mut b.rx[0], &mut b.tx[0]);
                rewrite_and_forward([(ra, ta), (rb, tb_)], our, hosts, &stop)
            });
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                traffic_crosses(&tb, "tap")
            }));
            stop.store(true, Ordering::Relaxed);
            let moved = fw.join().unwrap();
            println!("tap: forwarder moved {moved} frames");
            if let Err(p) = r {
                std::panic::resume_unwind(p);
            }
        });
        let (ta, tb_) = (a.counters.totals(), b.counters.totals());
        println!("tap: side-a {ta:?}\ntap: side-b {tb_:?}");
    });
}

#[cfg(feature = "afxdp")]
#[test]
fn afxdp_mode_carries_ping_and_tcp() {
    use steerd::port::afxdp::{self, AfXdpConfig};
    let Some(tb) = Testbed::up_or_skip("afxdp") else {
        return;
    };
    let stop = AtomicBool::new(false);
    tb.in_router(|| {
        let mut a = afxdp::open("side-a", &AfXdpConfig::new("veth-ra"), 0).unwrap();
        let mut b = afxdp::open("side-b", &AfXdpConfig::new("veth-rb"), 1).unwrap();
        println!("afxdp: XDP attached in {:?} mode", a.info.xdp_mode);
        let our = [a.info.mac, b.info.mac];
        let hosts = [Mac::parse(MAC_A).unwrap(), Mac::parse(MAC_B).unwrap()];
        std::thread::scope(|s| {
            let fw = s.spawn(|| {
                let (ra, ta) = (&mut a.rx[0], &mut a.tx[0]);
                let (rb, tb_) = (&mut b.rx[0], &mut b.tx[0]);
                rewrite_and_forward([(ra, ta), (rb, tb_)], our, hosts, &stop)
            });
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                traffic_crosses(&tb, "afxdp")
            }));
            stop.store(true, Ordering::Relaxed);
            let moved = fw.join().unwrap();
            println!("afxdp: forwarder moved {moved} frames");
            if let Err(p) = r {
                std::panic::resume_unwind(p);
            }
        });
        println!(
            "afxdp: side-a {:?}\nafxdp: side-b {:?}",
            a.counters.totals(),
            b.counters.totals()
        );
    });
}
