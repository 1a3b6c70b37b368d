//! The `tap` port: a Linux TAP interface through `/dev/net/tun` (`IFF_TAP | IFF_NO_PI`).
//!
//! The interface is created when missing or attached to when it exists (for example
//! made persistent with `ip tuntap add dev NAME mode tap`, or bridged with a veth in the
//! test bed), then brought up. With more than one queue it is opened `IFF_MULTI_QUEUE`,
//! one file descriptor per queue (the kernel spreads flows over them by hash). If the
//! kernel refuses multi-queue (an existing device made without `multi_queue`), the port
//! falls back to one receive queue and says so in [`TapInfo::note`]; every worker still
//! gets a transmit queue, sharing that descriptor (each `write()` is one whole packet).
//!
//! Hot: [`TapRx::rx_burst`] reads packets with non-blocking `read()` until `EAGAIN` or the
//! burst is full; [`TapTx::tx_burst`] writes one packet per `write()` until `EAGAIN`.
//! Cold: [`open`].
//!
//! MAC: the tap's own MAC ([`TapInfo::kernel_mac`]) belongs to the kernel side of the
//! interface: a bridge holding the tap treats frames to it as its own and never hands
//! them to steerd. steerd therefore answers and sends as [`TapInfo::mac`]: the configured
//! MAC, or by default [`Mac::derived`] from the port and interface names (`02:5d:..`,
//! stable across restarts).
//!
//! Kernel drops on the way in (steerd not reading fast enough, the tap's queue to user
//! space full) are the interface's `tx_dropped` (`ip -s link show NAME`). Receive queue 0
//! reads that counter from `/proc/net/dev` (of the network namespace it was opened in)
//! every few thousand bursts and when it is dropped, and adds what grew since the port
//! was opened to its `drops` counter, as AF_PACKET does with `PACKET_STATISTICS`. The
//! queue's depth is the interface's `txqueuelen` (500 by default; `ip link set NAME
//! txqueuelen 4096` absorbs longer stalls).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

use super::netdev::{self, Mac, PortOpenError};
use super::stats::{PortCounters, RxTally, bump};
use super::{Buf, MAX_FRAME, PktBuf, Pool, RxQueue, TxQueue};

/// Largest number of queues a tap port may ask for (the kernel allows 256).
pub const MAX_QUEUES: usize = 64;
/// Largest interface MTU the port accepts (a full frame must fit a packet buffer).
pub const MAX_MTU: u32 = (MAX_FRAME - 18) as u32;
/// Receive bursts between two reads of the kernel's drop counter.
const STATS_EVERY: u32 = 4096;
/// Room for `/proc/net/dev` (about 130 bytes an interface).
const PROC_NET_DEV_ROOM: usize = 64 * 1024;

/// The tap interface's kernel-side drop counter: frames the kernel could not queue for
/// steerd. Owned by receive queue 0, the only writer of that queue's `drops`.
struct KernelDrops {
    file: File,
    buf: Box<[u8]>,
    ifname: String,
    last: u64,
}

impl KernelDrops {
    /// Opens `/proc/thread-self/net/dev` (the opening thread's network namespace, which the
    /// file keeps when other threads read it) and takes the current count as the baseline.
    fn open(ifname: &str) -> io::Result<KernelDrops> {
        let mut k = KernelDrops {
            file: File::open("/proc/thread-self/net/dev")?,
            buf: vec![0; PROC_NET_DEV_ROOM].into_boxed_slice(),
            ifname: ifname.to_string(),
            last: 0,
        };
        k.last = k.read().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{ifname} is not in /proc/net/dev"),
            )
        })?;
        Ok(k)
    }

    /// The interface's `tx_dropped` now, or None when it cannot be read.
    fn read(&mut self) -> Option<u64> {
        let mut len = 0;
        while len < self.buf.len() {
            match self.file.read_at(&mut self.buf[len..], len as u64) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return None,
            }
        }
        proc_net_dev_tx_dropped(&self.buf[..len], &self.ifname)
    }

    /// What the counter grew by since the last call (0 when unreadable; a counter that
    /// went backwards, the interface recreated, restarts the baseline).
    fn delta(&mut self) -> u64 {
        let Some(now) = self.read() else {
            return 0;
        };
        let d = now.saturating_sub(self.last);
        self.last = now;
        d
    }
}

/// The transmit `drop` column of `ifname`'s line in a `/proc/net/dev` text: for a tap, the
/// frames the kernel dropped on their way to user space.
fn proc_net_dev_tx_dropped(text: &[u8], ifname: &str) -> Option<u64> {
    // "  NAME: rx bytes packets errs drop fifo frame compressed multicast tx bytes packets
    //  errs drop ..."; the first two lines are headers without a ':' after a name.
    text.split(|&b| b == b'\n').find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        if line[..colon].trim_ascii() != ifname.as_bytes() {
            return None;
        }
        let field = line[colon + 1..]
            .split(|b| b.is_ascii_whitespace())
            .filter(|f| !f.is_empty())
            .nth(11)?;
        std::str::from_utf8(field).ok()?.parse().ok()
    })
}

/// Settings of a `tap` port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapConfig {
    /// Interface name; created when missing.
    pub ifname: String,
    /// Queues wanted (one per worker); more than one opens the tap multi-queue.
    pub queues: usize,
    /// Set the interface MTU (at most [`MAX_MTU`]).
    pub mtu: Option<u32>,
    /// The MAC steerd uses on this port; default [`Mac::derived`].
    pub mac: Option<Mac>,
}

impl TapConfig {
    /// Defaults for `ifname`: one queue, MTU left alone, derived MAC.
    pub fn new(ifname: &str) -> Self {
        TapConfig {
            ifname: ifname.to_string(),
            queues: 1,
            mtu: None,
            mac: None,
        }
    }
}

/// What [`open`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapInfo {
    /// Interface name.
    pub ifname: String,
    /// True when the interface did not exist and was created (it disappears when the
    /// port closes, unless someone made it persistent meanwhile).
    pub created: bool,
    /// The tap's own MAC, used by the kernel side; steerd must not use it.
    pub kernel_mac: Mac,
    /// The MAC steerd uses on this port.
    pub mac: Mac,
    /// Interface MTU.
    pub mtu: u32,
    /// Receive queues opened (1 after a multi-queue fallback).
    pub queues: usize,
    /// True when opened with `IFF_MULTI_QUEUE`.
    pub multi_queue: bool,
    /// Set when the port opened fewer receive queues than asked for, saying why.
    pub note: Option<String>,
}

/// An open `tap` port: receive queues ([`TapInfo::queues`] of them), transmit queues (as
/// many as asked for) and counters.
pub struct TapPort {
    /// What the port runs on.
    pub info: TapInfo,
    /// Receive queues, one per worker that receives from this port.
    pub rx: Vec<TapRx>,
    /// Transmit queues, one per worker.
    pub tx: Vec<TapTx>,
    /// Counters of all queues, readable from any thread.
    pub counters: Arc<PortCounters>,
}

fn flags(multi_queue: bool) -> i16 {
    let mut f = libc::IFF_TAP | libc::IFF_NO_PI;
    if multi_queue {
        f |= libc::IFF_MULTI_QUEUE;
    }
    f as i16
}

/// Opens `/dev/net/tun` and attaches it to `ifname` with `flags` (creating the device).
fn attach(ifname: &str, flags: i16) -> Result<OwnedFd, (bool, io::Error)> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/net/tun")
        .map_err(|e| (true, e))?;
    let fd = OwnedFd::from(f);
    let mut r = netdev::ifreq(ifname);
    r.ifr_ifru.ifru_flags = flags;
    // SAFETY: TUNSETIFF takes a pointer to an ifreq, which `r` is; the kernel may write
    // the final name back into it.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut r as *mut libc::ifreq) };
    if rc < 0 {
        return Err((false, io::Error::last_os_error()));
    }
    Ok(fd)
}

/// Opens the `tap` port `name` (for messages and counters) on `cfg.ifname`; received
/// buffers get `port = port_index`. Works in the calling thread's network namespace.
pub fn open(name: &str, cfg: &TapConfig, port_index: u16) -> Result<TapPort, PortOpenError> {
    let ifname = cfg.ifname.as_str();
    let bad = |what: String| PortOpenError::BadConfig {
        port: name.to_string(),
        what,
    };
    netdev::check_ifname(ifname)
        .map_err(|why| bad(format!("invalid interface name {ifname:?}: {why}")))?;
    if cfg.queues == 0 || cfg.queues > MAX_QUEUES {
        return Err(bad(format!(
            "queues must be 1..={MAX_QUEUES}, not {}",
            cfg.queues
        )));
    }
    if let Some(m) = cfg.mtu
        && !(68..=MAX_MTU).contains(&m)
    {
        return Err(bad(format!("mtu must be 68..={MAX_MTU}, not {m}")));
    }
    if let Some(m) = cfg.mac
        && (m.0[0] & 1 != 0 || m.0 == [0; 6])
    {
        return Err(bad(format!("mac {m} is not a unicast address")));
    }
    let map = |(opening, e): (bool, io::Error)| -> PortOpenError {
        match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) if opening => {
                PortOpenError::TunMissing {
                    port: name.to_string(),
                }
            }
            Some(libc::EPERM) | Some(libc::EACCES) => PortOpenError::NeedsPrivilege {
                port: name.to_string(),
                action: if opening {
                    "opening /dev/net/tun"
                } else {
                    "creating or attaching a tap"
                },
                capability: "CAP_NET_ADMIN",
            },
            Some(libc::EBUSY) => PortOpenError::TapBusy {
                port: name.to_string(),
                ifname: ifname.to_string(),
            },
            Some(libc::EINVAL) if !opening => PortOpenError::NotATap {
                port: name.to_string(),
                ifname: ifname.to_string(),
            },
            _ => PortOpenError::Setup {
                port: name.to_string(),
                ifname: ifname.to_string(),
                what: if opening {
                    "opening /dev/net/tun"
                } else {
                    "attaching the tap (TUNSETIFF)"
                },
                source: e,
            },
        }
    };
    let created = netdev::ifindex(ifname).is_err();
    let want_mq = cfg.queues > 1;
    // An existing device must be attached in the mode it was made with; try the other
    // mode once when the kernel says EINVAL.
    let (first, multi_queue) = match attach(ifname, flags(want_mq)) {
        Ok(fd) => (fd, want_mq),
        Err((false, e)) if e.raw_os_error() == Some(libc::EINVAL) => {
            (attach(ifname, flags(!want_mq)).map_err(map)?, !want_mq)
        }
        Err(e) => return Err(map(e)),
    };
    let mut fds = vec![Arc::new(first)];
    let mut note = None;
    if want_mq && !multi_queue {
        note = Some(format!(
            "port {name}: the kernel refused a multi-queue tap on {ifname} (an existing device \
             made without multi_queue?): using 1 receive queue instead of {}",
            cfg.queues
        ));
    }
    if multi_queue {
        for _ in 1..cfg.queues {
            fds.push(Arc::new(attach(ifname, flags(true)).map_err(map)?));
        }
    }
    let setup = |what: &'static str| {
        move |source: io::Error| PortOpenError::Setup {
            port: name.to_string(),
            ifname: ifname.to_string(),
            what,
            source,
        }
    };
    if let Some(m) = cfg.mtu {
        netdev::set_mtu(ifname, m).map_err(setup("setting the MTU"))?;
    }
    let mtu = netdev::mtu(ifname).map_err(setup("reading the MTU"))?;
    if mtu > MAX_MTU {
        return Err(bad(format!(
            "tap {ifname} has MTU {mtu}, steerd's buffers hold frames of an MTU up to {MAX_MTU}: \
             set mtu on the port"
        )));
    }
    netdev::set_up(ifname).map_err(setup("bringing the interface up"))?;
    let kernel_mac = netdev::hwaddr(ifname).map_err(setup("reading the MAC address"))?;
    let mut mac = cfg.mac.unwrap_or_else(|| Mac::derived(name, ifname));
    if mac == kernel_mac && cfg.mac.is_none() {
        mac.0[5] ^= 1;
    }
    let counters = PortCounters::new(name, fds.len(), cfg.queues);
    let mut kernel_drops =
        Some(KernelDrops::open(ifname).map_err(setup("reading its counters in /proc/net/dev"))?);
    let rx = fds
        .iter()
        .enumerate()
        .map(|(q, fd)| TapRx {
            fd: Arc::clone(fd),
            port: port_index,
            queue: q,
            counters: Arc::clone(&counters),
            kernel_drops: kernel_drops.take(),
            calls: 0,
        })
        .collect();
    let max_len = mtu as usize + 18;
    let tx = (0..cfg.queues)
        .map(|q| TapTx {
            fd: Arc::clone(&fds[q % fds.len()]),
            queue: q,
            max_len,
            counters: Arc::clone(&counters),
        })
        .collect();
    Ok(TapPort {
        info: TapInfo {
            ifname: ifname.to_string(),
            created,
            kernel_mac,
            mac,
            mtu,
            queues: fds.len(),
            multi_queue,
            note,
        },
        rx,
        tx,
        counters,
    })
}

/// Receive queue of a `tap` port (one tap file descriptor), owned by one worker.
pub struct TapRx {
    fd: Arc<OwnedFd>,
    port: u16,
    queue: usize,
    counters: Arc<PortCounters>,
    /// Queue 0 only: the interface's kernel drop counter.
    kernel_drops: Option<KernelDrops>,
    calls: u32,
}

impl TapRx {
    /// Queue index within the port.
    pub fn queue(&self) -> usize {
        self.queue
    }

    /// Adds what the kernel dropped on the way to steerd since the last read to this
    /// queue's `drops` (queue 0 only: the counter is the interface's). `rx_burst` does
    /// this by itself every few thousand bursts, and dropping the queue does it once more.
    pub fn read_kernel_stats(&mut self) {
        if let Some(k) = &mut self.kernel_drops {
            bump(&self.counters.rx[self.queue].drops, k.delta());
        }
    }
}

impl Drop for TapRx {
    fn drop(&mut self) {
        self.read_kernel_stats();
    }
}

impl RxQueue for TapRx {
    type Buf = PktBuf;
    type Pool = Pool;

    /// Reads packets until the burst is full, the fd has nothing more (`EAGAIN`) or the
    /// pool is empty. A read that fills the whole buffer may have been cut short by the
    /// kernel: it is counted as truncated and dropped.
    #[inline]
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut Vec<PktBuf>, max: usize) -> usize {
        let mut t = RxTally::default();
        let mut n = 0;
        while n < max {
            let Some(mut b) = pool.get() else {
                break;
            };
            let room = b.room_mut();
            let cap = room.len();
            // SAFETY: reading at most `cap` bytes into the buffer's writable room.
            let r = unsafe { libc::read(self.fd.as_raw_fd(), room.as_mut_ptr().cast(), cap) };
            if r <= 0 {
                pool.put(b);
                if r < 0 {
                    let e = io::Error::last_os_error().raw_os_error();
                    if e == Some(libc::EINTR) {
                        continue;
                    }
                    if e != Some(libc::EAGAIN) {
                        t.errors += 1;
                    }
                }
                break;
            }
            let len = r as usize;
            if len >= cap {
                t.truncated += 1;
                pool.put(b);
                continue;
            }
            if len < 14 {
                t.errors += 1;
                pool.put(b);
                continue;
            }
            b.set_len(len);
            b.port = self.port;
            out.push(b);
            n += 1;
            t.packets += 1;
            t.bytes += len as u64;
        }
        t.commit(&self.counters.rx[self.queue]);
        self.calls = self.calls.wrapping_add(1);
        if self.calls.is_multiple_of(STATS_EVERY) {
            self.read_kernel_stats();
        }
        n
    }
}

/// Transmit queue of a `tap` port, owned by one worker.
pub struct TapTx {
    fd: Arc<OwnedFd>,
    queue: usize,
    max_len: usize,
    counters: Arc<PortCounters>,
}

impl TapTx {
    /// Queue index within the port.
    pub fn queue(&self) -> usize {
        self.queue
    }
}

impl TxQueue for TapTx {
    type Buf = PktBuf;
    type Pool = Pool;

    /// Writes packets one `write()` each; returns how many were taken off the front of
    /// `bufs` (written, or discarded as unsendable and counted in `errors`). Stops at
    /// `EAGAIN`, leaving the rest.
    #[inline]
    fn tx_burst(&mut self, pool: &mut Pool, bufs: &mut Vec<PktBuf>) -> usize {
        let (mut done, mut pkts, mut bytes, mut errors, mut full) =
            (0usize, 0u64, 0u64, 0u64, 0u64);
        while done < bufs.len() {
            let d = bufs[done].data();
            if d.len() < 14 || d.len() > self.max_len {
                errors += 1;
                done += 1;
                continue;
            }
            // SAFETY: writing `d.len()` bytes from a live slice.
            let r = unsafe { libc::write(self.fd.as_raw_fd(), d.as_ptr().cast(), d.len()) };
            if r == d.len() as isize {
                pkts += 1;
                bytes += d.len() as u64;
            } else if r < 0 {
                match io::Error::last_os_error().raw_os_error() {
                    Some(libc::EAGAIN) => {
                        full += 1;
                        break;
                    }
                    Some(libc::EINTR) => continue,
                    _ => errors += 1,
                }
            } else {
                errors += 1;
            }
            done += 1;
        }
        for b in bufs.drain(..done) {
            pool.put(b);
        }
        let c = &self.counters.tx[self.queue];
        bump(&c.packets, pkts);
        bump(&c.bytes, bytes);
        bump(&c.errors, errors);
        bump(&c.full, full);
        done
    }
}

#[cfg(test)]
mod tests;
