//! Test-only helpers for port tests that need root: the skip rule, throw-away network
//! namespaces with veth pairs, a plain AF_PACKET socket to inject and capture frames
//! independently of the code under test, and recognisable test frames.
//!
//! Skip rule: a test that cannot run here (not root, no `ip`, no namespaces) prints
//! `SKIPPED: <reason>` and returns, unless the environment has `CI=true`, where it panics
//! so that CI never passes by skipping.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Prints `SKIPPED: reason`, or panics when `CI=true`.
pub(crate) fn skip(reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("test cannot run: {reason} (CI=true turns skips into failures)");
    }
    println!("SKIPPED: {reason}");
}

/// True when running as root (uid 0).
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid() has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A network namespace created for one test and deleted (with its interfaces) on drop,
/// also when the test panics.
pub(crate) struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `sdt-<tag>-<pid>-<n>` with `lo` up and IPv6 off (so the kernel sends no
    /// neighbour discovery noise on test links); or prints SKIPPED and returns `None`.
    pub(crate) fn new_or_skip(tag: &str) -> Option<Netns> {
        if !is_root() {
            skip("needs root (network namespaces, veth, AF_PACKET, /dev/net/tun)");
            return None;
        }
        if Command::new("ip").arg("-V").output().is_err() {
            skip("the ip command is missing (apt-get install iproute2)");
            return None;
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "sdt-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        match Command::new("ip").args(["netns", "add", &name]).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                skip(&format!(
                    "cannot create a network namespace: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
                return None;
            }
            Err(e) => {
                skip(&format!("cannot run ip: {e}"));
                return None;
            }
        }
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns.run(|| {
            for k in ["all", "default"] {
                // Absent when the kernel has no IPv6: then there is no noise either.
                let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{k}/disable_ipv6"), "1");
            }
        });
        Some(ns)
    }

    /// Runs `ip -n NS args...`, panicking with its error output on failure.
    pub(crate) fn ip(&self, args: &[&str]) {
        if let Err(e) = self.try_ip(args) {
            panic!("{e}");
        }
    }

    /// Runs `ip -n NS args...`.
    pub(crate) fn try_ip(&self, args: &[&str]) -> Result<(), String> {
        let o = Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run ip: {e}"))?;
        if o.status.success() {
            Ok(())
        } else {
            Err(format!(
                "ip -n {} {}: {}",
                self.name,
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
    }

    /// Creates the veth pair `a`–`b` in the namespace, both ends up unless `up` is false.
    pub(crate) fn veth(&self, a: &str, b: &str, up: bool) {
        self.ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
        if up {
            self.ip(&["link", "set", a, "up"]);
            self.ip(&["link", "set", b, "up"]);
        }
    }

    /// Moves the calling thread into the namespace (sockets, taps and interface ioctls
    /// made afterwards by this thread belong to it).
    pub(crate) fn enter(&self) {
        let path = format!("/run/netns/{}", self.name);
        let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns() on a valid namespace descriptor; it affects only this thread.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", io::Error::last_os_error());
    }

    /// Runs `f` on a thread inside the namespace; a panic in `f` is re-raised here.
    pub(crate) fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        std::thread::scope(|s| {
            s.spawn(|| {
                self.enter();
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A plain, blocking-free AF_PACKET socket bound to one interface, for injecting and
/// capturing test traffic without the code under test.
pub(crate) struct RawSock(OwnedFd);

impl RawSock {
    /// Opens and binds to `ifname` (all protocols) in the calling thread's namespace.
    pub(crate) fn bind(ifname: &str) -> RawSock {
        let idx = super::netdev::ifindex(ifname).unwrap_or_else(|e| panic!("{ifname}: {e}"));
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: socket() takes no pointers; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(proto),
            )
        };
        assert!(fd >= 0, "raw socket: {}", io::Error::last_os_error());
        // SAFETY: fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_ll is plain data; all-zero is valid.
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_protocol = proto;
        sa.sll_ifindex = idx as i32;
        // SAFETY: valid sockaddr_ll and its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(rc, 0, "bind raw socket: {}", io::Error::last_os_error());
        RawSock(fd)
    }

    /// Sends one frame; retries briefly while the device queue is full.
    pub(crate) fn send(&self, frame: &[u8]) {
        for _ in 0..1000 {
            // SAFETY: `frame` is a valid buffer of the length given.
            let n =
                unsafe { libc::send(self.0.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
            if n == frame.len() as isize {
                return;
            }
            let e = io::Error::last_os_error();
            if !matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::ENOBUFS)) {
                panic!("raw send of {} bytes: {e}", frame.len());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("raw send: device queue stayed full");
    }

    /// Receives the next incoming frame (not our own sends) within `timeout`.
    pub(crate) fn recv(&self, buf: &mut [u8], timeout: Duration) -> Option<usize> {
        let end = Instant::now() + timeout;
        loop {
            // SAFETY: sockaddr_ll is plain data; all-zero is valid.
            let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut sl = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: `buf`, `sa` and `sl` are valid for writes of the sizes given.
            let n = unsafe {
                libc::recvfrom(
                    self.0.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&mut sa as *mut libc::sockaddr_ll).cast(),
                    &mut sl,
                )
            };
            if n >= 0 {
                if sa.sll_pkttype == libc::PACKET_OUTGOING {
                    continue;
                }
                return Some(n as usize);
            }
            if Instant::now() >= end {
                return None;
            }
            let mut p = libc::pollfd {
                fd: self.0.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut p, 1, 10) };
        }
    }

    /// The sequence numbers of the test frames received, in order, until `max` have
    /// arrived or none has for `quiet`.
    pub(crate) fn recv_seqs(&self, quiet: Duration, max: usize) -> Vec<u32> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 2048];
        while got.len() < max {
            let Some(k) = self.recv(&mut buf, quiet) else {
                break;
            };
            if let Some(seq) = frame_seq(&buf[..k]) {
                got.push(seq);
            }
        }
        got
    }
}

/// Queues test frames `seqs` ([`frame`], 60 bytes, `dst` ← `src`) on `tx`, bursting and
/// flushing until it has taken them all or a second has passed; what it did not take
/// goes back to `pool`.
pub(crate) fn send_frames<Q: super::TxQueue<Buf = super::PktBuf, Pool = super::Pool>>(
    tx: &mut Q,
    pool: &mut super::Pool,
    dst: [u8; 6],
    src: [u8; 6],
    seqs: std::ops::Range<u32>,
) {
    let mut bufs = Vec::with_capacity(seqs.len());
    for i in seqs {
        let mut b = pool.get().expect("a free test buffer");
        b.fill(&frame(dst, src, i, 60));
        bufs.push(b);
    }
    let t0 = Instant::now();
    while !bufs.is_empty() && t0.elapsed() < Duration::from_secs(1) {
        tx.tx_burst(pool, &mut bufs);
        tx.flush();
    }
    for b in bufs {
        pool.put(b);
    }
}

/// EtherType of test frames (IEEE local experimental).
pub(crate) const TEST_ETHERTYPE: u16 = 0x88b5;

/// Waits (at most 2 s, then panics) until interface `ifname` of the calling thread's
/// namespace has (`up`) or has lost its carrier, as `netdev::carrier` reads it.
pub(crate) fn wait_carrier(ifname: &str, up: bool) {
    let t0 = Instant::now();
    while super::netdev::carrier(ifname).ok() != Some(up) {
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "{ifname}: carrier still not {}",
            if up { "up" } else { "down" }
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A test frame of `len` bytes (at least 18): Ethernet header with [`TEST_ETHERTYPE`], a
/// big-endian sequence number, then a pattern derived from it.
pub(crate) fn frame(dst: [u8; 6], src: [u8; 6], seq: u32, len: usize) -> Vec<u8> {
    assert!(len >= 18);
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&TEST_ETHERTYPE.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    for i in 18..len {
        f.push((seq as usize).wrapping_mul(7).wrapping_add(i) as u8);
    }
    f
}

/// The sequence number of a test frame whose pattern is intact, else `None` (other
/// traffic, or a damaged frame).
pub(crate) fn frame_seq(f: &[u8]) -> Option<u32> {
    if f.len() < 18 || f[12..14] != TEST_ETHERTYPE.to_be_bytes() {
        return None;
    }
    let seq = u32::from_be_bytes([f[14], f[15], f[16], f[17]]);
    let ok = f[18..]
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (seq as usize).wrapping_mul(7).wrapping_add(i + 18) as u8);
    ok.then_some(seq)
}

#[test]
fn test_frames_round_trip() {
    let f = frame([2; 6], [4; 6], 77, 100);
    assert_eq!(f.len(), 100);
    assert_eq!(frame_seq(&f), Some(77));
    let mut g = f.clone();
    g[50] ^= 1;
    assert_eq!(frame_seq(&g), None);
}
