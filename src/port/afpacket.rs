//! The `afpacket` port: any Linux interface through AF_PACKET sockets with mmap rings.
//!
//! Per queue (one per worker) there are two sockets:
//! - rx: a `TPACKET_V3` ring of blocks. The kernel fills a block with variable-size
//!   frames and hands it over (`block_status` gets `TP_STATUS_USER`) when it is full or
//!   after `rx_block_timeout_ms`; the worker copies the frames into pool buffers and
//!   gives the block back by storing `TP_STATUS_KERNEL`. With more than one queue, the
//!   rx sockets form one `PACKET_FANOUT_HASH` group, so a flow stays on one worker.
//!   `PACKET_IGNORE_OUTGOING` keeps the kernel's own sends on the interface out.
//! - tx: a `TPACKET_V2` ring of fixed frames. `tx_burst` copies packets into free frames
//!   and marks them `TP_STATUS_SEND_REQUEST`; `flush` kicks the kernel with one
//!   `send()` for all of them (`MSG_DONTWAIT`, `PACKET_QDISC_BYPASS`). `PACKET_LOSS` makes
//!   the kernel skip a malformed frame instead of stalling the ring.
//!
//! Hot: [`AfPacketRx::rx_burst`], [`AfPacketTx::tx_burst`] and `flush`; they never block
//! or allocate, and their only system calls are the kick and, every few thousand bursts
//! (or when a frame says the kernel is losing packets), reading `PACKET_STATISTICS`.
//! While kicks keep failing, a transmit queue reads the interface's carrier every
//! [`CARRIER_CHECK`]; without one it discards the frames waiting in its ring (counted
//! as `discarded`) instead of letting the kernel send them when the carrier returns.
//! Cold: [`open`].
//!
//! MAC: the interface's own MAC ([`AfPacketInfo::mac`]) is the appliance's MAC on this
//! port. The kernel of that namespace must not use the interface itself (no addresses on
//! it, `ip_forward` off), or it answers and forwards beside steerd.
//!
//! Ring layouts are walked by `V3Ring` and `V2TxRing`, which only see memory, so
//! their logic is tested on rings built in memory (see the tests).

use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::netdev::{self, Mac, PortOpenError};
use super::ringmem::RingMem;
use super::stats::{PortCounters, RxTally, bump};
use super::{Buf, MAX_FRAME, PktBuf, Pool, RxQueue, TxQueue};

/// Largest number of queues (fanout group members) a port may ask for.
pub const MAX_QUEUES: usize = 64;
/// Frame size of the tx ring: a 32-byte `tpacket2_hdr` and up to 2016 frame bytes.
pub const TX_FRAME_SIZE: u32 = 2048;
/// Frames per tx ring block (the tx frame count must be a multiple of this).
pub const TX_FRAMES_PER_BLOCK: u32 = 32;
/// Largest interface MTU the port accepts: a full frame (MTU + Ethernet + one VLAN tag)
/// must fit a packet buffer.
pub const MAX_MTU: u32 = (MAX_FRAME - 18) as u32;
/// Receive bursts between two reads of the kernel's drop counter.
const STATS_EVERY: u32 = 4096;

/// Settings of an `afpacket` port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// Interface to open (must exist and be up).
    pub ifname: String,
    /// Queues (one rx and one tx socket each, one per worker). More than one makes a
    /// `PACKET_FANOUT_HASH` group.
    pub queues: usize,
    /// Put the interface in promiscuous mode while the port is open (a NIC then passes
    /// frames for other MACs; veth delivers everything anyway).
    pub promisc: bool,
    /// Set the interface MTU before opening (at most [`MAX_MTU`]).
    pub mtu: Option<u32>,
    /// Bytes per rx ring block: a power of two, at least 4096 (default 64 KiB, about 450
    /// minimum-size or 40 full-size frames). Smaller blocks fill, and so reach the worker,
    /// sooner under light load.
    pub rx_block_size: u32,
    /// Blocks per rx ring, at least 2 (default 128: 8 MiB per queue).
    pub rx_block_nr: u32,
    /// Milliseconds after which the kernel hands over a block that is not full: the
    /// added latency under light load (default 1, which the kernel rounds up to one
    /// jiffy, 4 ms with HZ=250).
    pub rx_block_timeout_ms: u32,
    /// Frames in the tx ring, a multiple of 32 (default 1024: 2 MiB per queue).
    pub tx_frame_nr: u32,
}

impl AfPacketConfig {
    /// Defaults for `ifname`: one queue, no promiscuous mode, MTU left alone.
    pub fn new(ifname: &str) -> Self {
        AfPacketConfig {
            ifname: ifname.to_string(),
            queues: 1,
            promisc: false,
            mtu: None,
            rx_block_size: 1 << 16,
            rx_block_nr: 128,
            rx_block_timeout_ms: 1,
            tx_frame_nr: 1024,
        }
    }

    fn check(&self, port: &str) -> Result<(), PortOpenError> {
        let bad = |what: String| {
            Err(PortOpenError::BadConfig {
                port: port.to_string(),
                what,
            })
        };
        if self.queues == 0 || self.queues > MAX_QUEUES {
            return bad(format!(
                "queues must be 1..={MAX_QUEUES}, not {}",
                self.queues
            ));
        }
        let bs = self.rx_block_size;
        if !bs.is_power_of_two() || !(4096..=1 << 24).contains(&bs) {
            return bad(format!(
                "rx_block_size must be a power of two from 4096 to 16777216, not {bs}"
            ));
        }
        if self.rx_block_nr < 2 || u64::from(bs) * u64::from(self.rx_block_nr) > 1 << 30 {
            return bad(format!(
                "rx_block_nr must be at least 2 and the rx ring at most 1 GiB, not {} blocks of {bs}",
                self.rx_block_nr
            ));
        }
        if self.rx_block_timeout_ms == 0 || self.rx_block_timeout_ms > 1000 {
            return bad(format!(
                "rx_block_timeout_ms must be 1..=1000, not {}",
                self.rx_block_timeout_ms
            ));
        }
        let n = self.tx_frame_nr;
        if n == 0 || !n.is_multiple_of(TX_FRAMES_PER_BLOCK) || n > 1 << 18 {
            return bad(format!(
                "tx_frame_nr must be a multiple of {TX_FRAMES_PER_BLOCK} up to 262144, not {n}"
            ));
        }
        if let Some(m) = self.mtu
            && !(68..=MAX_MTU).contains(&m)
        {
            return bad(format!("mtu must be 68..={MAX_MTU}, not {m}"));
        }
        Ok(())
    }
}

/// What [`open`] found out about the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfPacketInfo {
    /// Interface name.
    pub ifname: String,
    /// Interface index.
    pub ifindex: u32,
    /// The interface MAC, which steerd uses as its own on this port.
    pub mac: Mac,
    /// Interface MTU.
    pub mtu: u32,
    /// Queues opened (always the number asked for).
    pub queues: usize,
    /// Fanout group id (kernel-chosen), when there is more than one queue.
    pub fanout_group: Option<u16>,
}

/// An open `afpacket` port: its queues, to be handed out one per worker, and its counters.
pub struct AfPacketPort {
    /// What the port runs on.
    pub info: AfPacketInfo,
    /// Receive queues, one per worker.
    pub rx: Vec<AfPacketRx>,
    /// Transmit queues, one per worker.
    pub tx: Vec<AfPacketTx>,
    /// Counters of all queues, readable from any thread.
    pub counters: Arc<PortCounters>,
}

/// Opens the `afpacket` port `name` (the name is for messages and counters) on
/// `cfg.ifname`; received buffers get `port = port_index`. Works in the calling thread's
/// network namespace.
pub fn open(
    name: &str,
    cfg: &AfPacketConfig,
    port_index: u16,
) -> Result<AfPacketPort, PortOpenError> {
    cfg.check(name)?;
    let ifname = cfg.ifname.as_str();
    let ifindex = netdev::resolve(name, ifname)?;
    let setup = |what: &'static str| {
        move |source: io::Error| PortOpenError::Setup {
            port: name.to_string(),
            ifname: ifname.to_string(),
            what,
            source,
        }
    };
    if let Some(m) = cfg.mtu {
        netdev::set_mtu(ifname, m).map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => PortOpenError::NeedsPrivilege {
                port: name.to_string(),
                action: "setting the interface MTU",
                capability: "CAP_NET_ADMIN",
            },
            _ => setup("setting the MTU")(e),
        })?;
    }
    if !netdev::is_up(ifname).map_err(setup("reading the interface flags"))? {
        return Err(PortOpenError::InterfaceDown {
            port: name.to_string(),
            ifname: ifname.to_string(),
        });
    }
    let mtu = netdev::mtu(ifname).map_err(setup("reading the MTU"))?;
    if mtu > MAX_MTU {
        return Err(PortOpenError::BadConfig {
            port: name.to_string(),
            what: format!(
                "interface {ifname} has MTU {mtu}, steerd's buffers hold frames of an MTU up to \
                 {MAX_MTU}: set mtu on the port or run ip link set {ifname} mtu 1500"
            ),
        });
    }
    let mac = netdev::hwaddr(ifname).map_err(setup("reading the MAC address"))?;
    let counters = PortCounters::new(name, cfg.queues, cfg.queues);
    let ctx = Ctx {
        port: name,
        ifname,
        ifindex,
    };
    let mut rx = Vec::with_capacity(cfg.queues);
    let mut fanout_group = None;
    for q in 0..cfg.queues {
        let (fd, ring) = ctx.rx_socket(cfg)?;
        if cfg.queues > 1 {
            fanout_group = Some(ctx.join_fanout(&fd, fanout_group)?);
        }
        rx.push(AfPacketRx {
            ring,
            fd,
            port: port_index,
            queue: q,
            counters: Arc::clone(&counters),
            calls: 0,
        });
    }
    let max_len = ((TX_FRAME_SIZE as usize) - TX_DATA_OFF).min(mtu as usize + 18);
    let mut tx = Vec::with_capacity(cfg.queues);
    for q in 0..cfg.queues {
        let (fd, mem) = ctx.tx_socket(cfg)?;
        tx.push(AfPacketTx {
            ring: V2TxRing::new(
                mem,
                TX_FRAME_SIZE as usize,
                cfg.tx_frame_nr as usize,
                max_len,
            ),
            fd,
            queue: q,
            counters: Arc::clone(&counters),
            ifname: ifname.to_string(),
            failing_since: None,
        });
    }
    Ok(AfPacketPort {
        info: AfPacketInfo {
            ifname: ifname.to_string(),
            ifindex,
            mac,
            mtu,
            queues: cfg.queues,
            fanout_group,
        },
        rx,
        tx,
        counters,
    })
}

/// Set-up context: names for messages and the interface to bind to.
struct Ctx<'a> {
    port: &'a str,
    ifname: &'a str,
    ifindex: u32,
}

impl Ctx<'_> {
    fn err(&self, what: &'static str, source: io::Error) -> PortOpenError {
        PortOpenError::Setup {
            port: self.port.to_string(),
            ifname: self.ifname.to_string(),
            what,
            source,
        }
    }

    /// A non-blocking AF_PACKET socket that receives nothing until bound.
    fn socket(&self) -> Result<OwnedFd, PortOpenError> {
        // SAFETY: socket() takes no pointers; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => PortOpenError::NeedsPrivilege {
                    port: self.port.to_string(),
                    action: "opening an AF_PACKET socket",
                    capability: "CAP_NET_RAW",
                },
                _ => self.err("opening an AF_PACKET socket", e),
            });
        }
        // SAFETY: fd is a freshly created descriptor nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn bind(&self, fd: &OwnedFd, protocol: u16) -> Result<(), PortOpenError> {
        // SAFETY: sockaddr_ll is plain data; all-zero is valid.
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_protocol = protocol.to_be();
        sa.sll_ifindex = self.ifindex as i32;
        // SAFETY: `sa` is a valid sockaddr_ll and the length passed is its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENODEV) || e.raw_os_error() == Some(libc::ENXIO) {
                return Err(netdev::lookup_error(self.port, self.ifname, e));
            }
            return Err(self.err("binding the packet socket", e));
        }
        Ok(())
    }

    fn rx_socket(&self, cfg: &AfPacketConfig) -> Result<(OwnedFd, V3Ring), PortOpenError> {
        let fd = self.socket()?;
        setsockopt(
            &fd,
            libc::PACKET_VERSION,
            &(libc::tpacket_versions::TPACKET_V3 as libc::c_int),
        )
        .map_err(|e| self.err("selecting TPACKET_V3", e))?;
        let frame_size: u32 = 2048;
        let req = libc::tpacket_req3 {
            tp_block_size: cfg.rx_block_size,
            tp_block_nr: cfg.rx_block_nr,
            tp_frame_size: frame_size,
            tp_frame_nr: cfg.rx_block_size / frame_size * cfg.rx_block_nr,
            tp_retire_blk_tov: cfg.rx_block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(&fd, libc::PACKET_RX_RING, &req)
            .map_err(|e| self.err("creating the rx ring", e))?;
        let len = cfg.rx_block_size as usize * cfg.rx_block_nr as usize;
        let mem = RingMem::map(&fd, len, 0).map_err(|e| self.err("mapping the rx ring", e))?;
        match setsockopt(&fd, libc::PACKET_IGNORE_OUTGOING, &(1 as libc::c_int)) {
            // Kernels before 4.20 lack it; the tx side bypasses the taps anyway.
            Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => {}
            r => r.map_err(|e| self.err("setting PACKET_IGNORE_OUTGOING", e))?,
        }
        self.bind(&fd, libc::ETH_P_ALL as u16)?;
        if cfg.promisc {
            let mr = libc::packet_mreq {
                mr_ifindex: self.ifindex as i32,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            // The membership ends with the socket, so the interface leaves promiscuous
            // mode when the port closes.
            setsockopt(&fd, libc::PACKET_ADD_MEMBERSHIP, &mr)
                .map_err(|e| self.err("entering promiscuous mode", e))?;
        }
        let ring = V3Ring::new(mem, cfg.rx_block_size as usize, cfg.rx_block_nr as usize);
        Ok((fd, ring))
    }

    /// Joins `group`, or creates a new group with a kernel-chosen id; returns the id.
    fn join_fanout(&self, fd: &OwnedFd, group: Option<u16>) -> Result<u16, PortOpenError> {
        // A fanout group receives through its own hook, which ignores outgoing frames
        // only with this flag (the socket option covers the socket's own hook).
        let kind = libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_IGNORE_OUTGOING;
        let val: u32 = match group {
            Some(id) => u32::from(id) | (kind << 16),
            None => (kind | libc::PACKET_FANOUT_FLAG_UNIQUEID) << 16,
        };
        setsockopt(fd, libc::PACKET_FANOUT, &val)
            .map_err(|e| self.err("joining the fanout group", e))?;
        if let Some(id) = group {
            return Ok(id);
        }
        let mut got: u32 = 0;
        let mut len = size_of::<u32>() as libc::socklen_t;
        // SAFETY: `got` and `len` are valid for writes of the sizes given.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_FANOUT,
                (&mut got as *mut u32).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            return Err(self.err("reading the fanout group id", io::Error::last_os_error()));
        }
        Ok((got & 0xffff) as u16)
    }

    fn tx_socket(&self, cfg: &AfPacketConfig) -> Result<(OwnedFd, RingMem), PortOpenError> {
        let fd = self.socket()?;
        setsockopt(
            &fd,
            libc::PACKET_VERSION,
            &(libc::tpacket_versions::TPACKET_V2 as libc::c_int),
        )
        .map_err(|e| self.err("selecting TPACKET_V2", e))?;
        setsockopt(&fd, libc::PACKET_LOSS, &(1 as libc::c_int))
            .map_err(|e| self.err("setting PACKET_LOSS", e))?;
        setsockopt(&fd, libc::PACKET_QDISC_BYPASS, &(1 as libc::c_int))
            .map_err(|e| self.err("setting PACKET_QDISC_BYPASS", e))?;
        let block_size = TX_FRAME_SIZE * TX_FRAMES_PER_BLOCK;
        let req = libc::tpacket_req {
            tp_block_size: block_size,
            tp_block_nr: cfg.tx_frame_nr / TX_FRAMES_PER_BLOCK,
            tp_frame_size: TX_FRAME_SIZE,
            tp_frame_nr: cfg.tx_frame_nr,
        };
        setsockopt(&fd, libc::PACKET_TX_RING, &req)
            .map_err(|e| self.err("creating the tx ring", e))?;
        let len = TX_FRAME_SIZE as usize * cfg.tx_frame_nr as usize;
        let mem = RingMem::map(&fd, len, 0).map_err(|e| self.err("mapping the tx ring", e))?;
        // Protocol 0: bound to the interface for sending, never receives.
        self.bind(&fd, 0)?;
        Ok((fd, mem))
    }
}

fn setsockopt<T>(fd: &OwnedFd, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a live T and the length passed is its size; the kernel only
    // reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// TPACKET_V3 receive ring

/// Offsets in `struct tpacket_block_desc` (with its `tpacket_hdr_v1`).
const BD_HDR: usize = offset_of!(libc::tpacket_block_desc, hdr);
const BD_STATUS: usize = BD_HDR + offset_of!(libc::tpacket_hdr_v1, block_status);
const BD_NUM_PKTS: usize = BD_HDR + offset_of!(libc::tpacket_hdr_v1, num_pkts);
const BD_FIRST: usize = BD_HDR + offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt);
const BD_SIZE: usize = size_of::<libc::tpacket_block_desc>();
/// Offsets in `struct tpacket3_hdr`.
const H3_NEXT: usize = offset_of!(libc::tpacket3_hdr, tp_next_offset);
const H3_SNAPLEN: usize = offset_of!(libc::tpacket3_hdr, tp_snaplen);
const H3_LEN: usize = offset_of!(libc::tpacket3_hdr, tp_len);
const H3_STATUS: usize = offset_of!(libc::tpacket3_hdr, tp_status);
const H3_MAC: usize = offset_of!(libc::tpacket3_hdr, tp_mac);
const H3_VLAN_TCI: usize = offset_of!(libc::tpacket3_hdr, hv1.tp_vlan_tci);
const H3_VLAN_TPID: usize = offset_of!(libc::tpacket3_hdr, hv1.tp_vlan_tpid);
const H3_SIZE: usize = size_of::<libc::tpacket3_hdr>();

/// Walker over a `TPACKET_V3` rx ring: the current block and where in it the next frame is.
pub(crate) struct V3Ring {
    mem: RingMem,
    block_size: usize,
    block_nr: usize,
    /// Index of the block being read or waited for.
    block: usize,
    /// True while the current block is ours (handed over and not yet returned).
    open: bool,
    /// Frames left in the open block.
    left: u32,
    /// Offset, within the block, of the next frame.
    off: usize,
}

impl V3Ring {
    pub(crate) fn new(mem: RingMem, block_size: usize, block_nr: usize) -> V3Ring {
        assert!(block_size * block_nr <= mem.len());
        V3Ring {
            mem,
            block_size,
            block_nr,
            block: 0,
            open: false,
            left: 0,
            off: 0,
        }
    }

    /// Gives the current block back to the kernel and moves to the next one.
    #[inline]
    fn release(&mut self) {
        self.mem
            .atomic_u32(self.block * self.block_size + BD_STATUS)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.block += 1;
        if self.block == self.block_nr {
            self.block = 0;
        }
        self.open = false;
    }

    /// Steps past the frame just handled; returns the block when it was the last one.
    #[inline]
    fn advance(&mut self, next: u32) {
        self.left -= 1;
        self.off = if next == 0 {
            self.block_size
        } else {
            self.off + next as usize
        };
        if self.left == 0 {
            self.release();
        }
    }

    /// Copies up to `max` frames into pool buffers appended to `out` (no allocation: `out`
    /// has capacity reserved by the caller). Truncated and oversize frames are counted in
    /// `t` and skipped. Stops early, leaving frames in the ring, when the pool is empty.
    #[inline]
    pub(crate) fn burst(
        &mut self,
        pool: &mut Pool,
        out: &mut Vec<PktBuf>,
        max: usize,
        port: u16,
        t: &mut RxTally,
    ) -> usize {
        let mut n = 0;
        while n < max {
            let base = self.block * self.block_size;
            if !self.open {
                let st = self
                    .mem
                    .atomic_u32(base + BD_STATUS)
                    .load(Ordering::Acquire);
                if st & libc::TP_STATUS_USER == 0 {
                    break;
                }
                self.left = self.mem.read_u32(base + BD_NUM_PKTS);
                self.off = self.mem.read_u32(base + BD_FIRST) as usize;
                self.open = true;
                if self.left == 0 {
                    self.release();
                    continue;
                }
                if self.off < BD_SIZE {
                    t.errors += 1;
                    self.release();
                    continue;
                }
            }
            // One frame: check the header and the data lie inside the block.
            if self.off + H3_SIZE > self.block_size {
                t.errors += 1;
                self.release();
                continue;
            }
            let h = base + self.off;
            let snap = self.mem.read_u32(h + H3_SNAPLEN) as usize;
            let wire = self.mem.read_u32(h + H3_LEN) as usize;
            let status = self.mem.read_u32(h + H3_STATUS);
            let mac = self.mem.read_u16(h + H3_MAC) as usize;
            let next = self.mem.read_u32(h + H3_NEXT);
            if mac < H3_SIZE || self.off + mac + snap > self.block_size {
                t.errors += 1;
                self.release();
                continue;
            }
            if status & libc::TP_STATUS_LOSING != 0 {
                t.losing = true;
            }
            // A stripped VLAN tag (veth and NICs with rx VLAN offload) goes back in.
            let vlan = status & libc::TP_STATUS_VLAN_VALID != 0;
            let total = snap + if vlan { 4 } else { 0 };
            if snap < wire {
                t.truncated += 1;
            } else if total > MAX_FRAME {
                t.oversize += 1;
            } else if snap < 14 {
                t.errors += 1;
            } else {
                let Some(mut b) = pool.get() else {
                    break;
                };
                if status & libc::TP_STATUS_CSUMNOTREADY != 0 {
                    t.csum_not_ready += 1;
                }
                let d = h + mac;
                let room = b.room_mut();
                if vlan {
                    let tci = self.mem.read_u32(h + H3_VLAN_TCI) as u16;
                    let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                        self.mem.read_u16(h + H3_VLAN_TPID)
                    } else {
                        0x8100
                    };
                    self.mem.copy_out(d, &mut room[..12]);
                    room[12..14].copy_from_slice(&tpid.to_be_bytes());
                    room[14..16].copy_from_slice(&tci.to_be_bytes());
                    self.mem.copy_out(d + 12, &mut room[16..total]);
                } else {
                    self.mem.copy_out(d, &mut room[..snap]);
                }
                b.set_len(total);
                b.port = port;
                out.push(b);
                n += 1;
                t.packets += 1;
                t.bytes += total as u64;
            }
            self.advance(next);
        }
        n
    }
}

// ---------------------------------------------------------------------------------------
// TPACKET_V2 transmit ring

/// Offset of the frame bytes in a tx frame: `TPACKET_ALIGN(sizeof(tpacket2_hdr))`.
const TX_DATA_OFF: usize = (size_of::<libc::tpacket2_hdr>() + 15) & !15;
const H2_LEN: usize = offset_of!(libc::tpacket2_hdr, tp_len);
const H2_STATUS: usize = offset_of!(libc::tpacket2_hdr, tp_status);

/// What [`V2TxRing::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    /// Copied into the ring and marked for sending.
    Queued,
    /// No free frame: the kernel has not finished with the next one.
    Full,
    /// Too short for Ethernet or too long for the frame/MTU: not sendable.
    Refused,
}

/// Walker over a `TPACKET_V2` tx ring of `frame_nr` contiguous frames.
pub(crate) struct V2TxRing {
    mem: RingMem,
    frame_size: usize,
    frame_nr: usize,
    /// Next frame to fill (the kernel sends in the same order).
    head: usize,
    /// Frames marked since the last kick.
    pending: usize,
    /// Longest frame accepted.
    max_len: usize,
}

impl V2TxRing {
    pub(crate) fn new(
        mem: RingMem,
        frame_size: usize,
        frame_nr: usize,
        max_len: usize,
    ) -> V2TxRing {
        assert!(frame_size * frame_nr <= mem.len() && max_len + TX_DATA_OFF <= frame_size);
        V2TxRing {
            mem,
            frame_size,
            frame_nr,
            head: 0,
            pending: 0,
            max_len,
        }
    }

    /// Copies `data` into the next free frame and marks it `TP_STATUS_SEND_REQUEST`.
    #[inline]
    pub(crate) fn push(&mut self, data: &[u8]) -> Push {
        if data.len() < 14 || data.len() > self.max_len {
            return Push::Refused;
        }
        let f = self.head * self.frame_size;
        let st = self.mem.atomic_u32(f + H2_STATUS);
        if st.load(Ordering::Acquire) != libc::TP_STATUS_AVAILABLE {
            return Push::Full;
        }
        self.mem.copy_in(f + TX_DATA_OFF, data);
        self.mem.write_u32(f + H2_LEN, data.len() as u32);
        st.store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.head += 1;
        if self.head == self.frame_nr {
            self.head = 0;
        }
        self.pending += 1;
        Push::Queued
    }

    /// Frames marked for sending that the kernel has not taken go back to free, and the
    /// fill position moves back to the oldest of them, which is where the kernel looks
    /// next (it sends in ring order and retries a frame it could not send at every
    /// kick). Returns how many. Only between kicks: the kernel touches marked frames
    /// only inside `send()`, which the owning worker alone calls.
    pub(crate) fn discard_unsent(&mut self) -> usize {
        let mut n = 0;
        let mut at = self.head;
        while n < self.frame_nr {
            let prev = if at == 0 { self.frame_nr - 1 } else { at - 1 };
            let st = self.mem.atomic_u32(prev * self.frame_size + H2_STATUS);
            if st.load(Ordering::Acquire) != libc::TP_STATUS_SEND_REQUEST {
                break;
            }
            st.store(libc::TP_STATUS_AVAILABLE, Ordering::Release);
            at = prev;
            n += 1;
        }
        self.head = at;
        self.pending = 0;
        n
    }
}

// ---------------------------------------------------------------------------------------
// Queues

/// Receive queue of an `afpacket` port (one rx socket with its ring), owned by one worker.
pub struct AfPacketRx {
    ring: V3Ring,
    fd: OwnedFd,
    port: u16,
    queue: usize,
    counters: Arc<PortCounters>,
    calls: u32,
}

impl AfPacketRx {
    /// Adds the kernel's drop count since the last read (`PACKET_STATISTICS`, which resets
    /// it) to this queue's `drops` counter. `rx_burst` does this by itself every few
    /// thousand bursts and whenever a frame says the kernel is losing packets.
    pub fn read_kernel_stats(&mut self) {
        let mut st = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `st` and `len` are valid for writes of the sizes given.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            bump(&self.counters.rx[self.queue].drops, u64::from(st.tp_drops));
        }
    }

    /// Queue index within the port.
    pub fn queue(&self) -> usize {
        self.queue
    }
}

impl RxQueue for AfPacketRx {
    type Buf = PktBuf;
    type Pool = Pool;

    #[inline]
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut Vec<PktBuf>, max: usize) -> usize {
        let mut t = RxTally::default();
        let n = self.ring.burst(pool, out, max, self.port, &mut t);
        t.commit(&self.counters.rx[self.queue]);
        self.calls = self.calls.wrapping_add(1);
        if t.losing || self.calls.is_multiple_of(STATS_EVERY) {
            self.read_kernel_stats();
        }
        n
    }
}

impl Drop for AfPacketRx {
    fn drop(&mut self) {
        self.read_kernel_stats();
    }
}

/// How long kicks must keep failing before the transmit queue checks the interface's
/// carrier (and then again every as long while they do).
pub const CARRIER_CHECK: std::time::Duration = std::time::Duration::from_millis(10);

/// Transmit queue of an `afpacket` port (one tx socket with its ring), owned by one worker.
pub struct AfPacketTx {
    ring: V2TxRing,
    fd: OwnedFd,
    queue: usize,
    counters: Arc<PortCounters>,
    ifname: String,
    /// Since when kicks have failed (None: the last one worked).
    failing_since: Option<std::time::Instant>,
}

impl AfPacketTx {
    /// Asks the kernel to send every frame marked so far (one `send()`, not waiting).
    #[inline]
    fn kick(&mut self) {
        // SAFETY: a zero-length send on our own socket with no buffer or address: the
        // kernel takes the frames from the tx ring.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        let c = &self.counters.tx[self.queue];
        bump(&c.kicks, 1);
        if rc >= 0 {
            self.ring.pending = 0;
            self.failing_since = None;
        } else {
            // Frames still marked stay pending and go with the next kick.
            bump(&c.kick_errors, 1);
            self.kick_failed();
        }
    }

    /// Kicks keep failing: once that has lasted [`CARRIER_CHECK`], the queue reads the
    /// interface's carrier (an ioctl, at most once per period, only while failing). With
    /// no carrier, the frames waiting in the ring are discarded and counted
    /// (`discarded`), as the kernel drops its queues when a carrier goes; without this
    /// it would send them whenever the carrier returns, however old. A queue that is
    /// merely full (the device is slow) keeps its frames.
    #[cold]
    fn kick_failed(&mut self) {
        let now = std::time::Instant::now();
        let since = *self.failing_since.get_or_insert(now);
        if now.duration_since(since) < CARRIER_CHECK {
            return;
        }
        self.failing_since = Some(now);
        if netdev::carrier(&self.ifname).unwrap_or(false) {
            return;
        }
        let n = self.ring.discard_unsent();
        bump(&self.counters.tx[self.queue].discarded, n as u64);
    }

    /// Queue index within the port.
    pub fn queue(&self) -> usize {
        self.queue
    }
}

impl TxQueue for AfPacketTx {
    type Buf = PktBuf;
    type Pool = Pool;

    /// Copies packets into the tx ring; returns how many were taken off the front of
    /// `bufs` (sent, or discarded as unsendable and counted in `errors`). When the ring
    /// is full it kicks the kernel once and retries before leaving the rest.
    #[inline]
    fn tx_burst(&mut self, pool: &mut Pool, bufs: &mut Vec<PktBuf>) -> usize {
        let (mut done, mut pkts, mut bytes, mut errors, mut full) =
            (0usize, 0u64, 0u64, 0u64, 0u64);
        let mut kicked = false;
        while done < bufs.len() {
            let data = bufs[done].data();
            match self.ring.push(data) {
                Push::Queued => {
                    pkts += 1;
                    bytes += data.len() as u64;
                }
                Push::Refused => errors += 1,
                Push::Full => {
                    if !kicked && self.ring.pending > 0 {
                        self.kick();
                        kicked = true;
                        continue;
                    }
                    full += 1;
                    break;
                }
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

    #[inline]
    fn flush(&mut self) {
        if self.ring.pending > 0 {
            self.kick();
        }
    }
}

impl Drop for AfPacketTx {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests;
