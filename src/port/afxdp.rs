//! The `afxdp` port (cargo feature `afxdp`): AF_XDP sockets, zero-copy where the driver
//! has it, copy mode elsewhere.
//!
//! Set-up (cold, [`open`]): per queue one AF_XDP socket with its own UMEM (anonymous
//! memory split into 2048-byte frames: the first half for receiving, the second for
//! sending), its fill, completion, rx and tx rings, bound to queue `q` of the interface.
//! The bind ([`XdpBind`]) asks for `XDP_ZEROCOPY` first (the NIC's DMA fills and drains
//! the UMEM itself: drivers such as i40e, ice, ixgbe, mlx5) and takes `XDP_COPY` when the
//! driver says it has no zero-copy (veth, and any interface in generic XDP mode); the mode
//! taken is in [`AfXdpInfo::bind`]. Either way steerd copies each frame between the UMEM
//! and its own pool buffers: zero-copy saves the kernel's copy, not steerd's. A six-instruction XDP program, loaded with
//! the `bpf()` system call (no libbpf, nothing to compile), redirects each frame to the
//! socket of its rx queue through an `XSKMAP` and passes frames of queues without one to
//! the kernel. The program is attached with a BPF link (kernel 5.9 or later): native
//! (driver) mode when the driver has it, otherwise generic; closing the port detaches it.
//!
//! Hot: [`AfXdpRx::rx_burst`] copies frames from the rx ring into pool buffers and hands
//! their UMEM frames straight back on the fill ring; [`AfXdpTx::tx_burst`] reclaims sent
//! frames from the completion ring, copies packets into free frames and publishes them on
//! the tx ring; `flush` kicks the kernel with `send()` (copy mode sends at most 32 frames
//! per call, so a flush kicks until the ring is drained or the kernel pushes back).
//! Neither blocks nor allocates.
//!
//! MAC: the interface's own MAC is steerd's on this port, as with `afpacket`.
//!
//! The ring walkers (`RxWalk`, `TxWalk` over `XskRing`s) see only memory and are tested on
//! rings built in memory.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::netdev::{self, Mac, PortOpenError};
use super::ringmem::RingMem;
use super::stats::{PortCounters, RxTally, bump};
use super::{Buf, MAX_FRAME, PktBuf, Pool, RxQueue, TxQueue};

/// How long binding a queue or attaching the XDP program retries while the kernel says
/// it is taken (it frees a closed socket's queue asynchronously).
const BIND_BUSY_WAIT: std::time::Duration = std::time::Duration::from_millis(1000);

/// Calls `f` until it succeeds or fails with an error other than `busy`, for up to
/// [`BIND_BUSY_WAIT`]: what a port closed a moment ago held is released a little later.
fn retry_while_busy<T>(busy: &[i32], mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let t0 = std::time::Instant::now();
    loop {
        match f() {
            Err(e)
                if e.raw_os_error().is_some_and(|c| busy.contains(&c))
                    && t0.elapsed() < BIND_BUSY_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r => return r,
        }
    }
}

/// Largest number of queues a port may ask for.
pub const MAX_QUEUES: usize = 64;
/// UMEM frame size.
pub const FRAME_SIZE: usize = 2048;
/// Headroom the kernel keeps in front of a received frame in copy mode.
const XDP_PACKET_HEADROOM: usize = 256;
/// Largest interface MTU the port accepts: a received frame (MTU + Ethernet + VLAN) must
/// fit a UMEM frame after the kernel's headroom.
pub const MAX_MTU: u32 = (FRAME_SIZE - XDP_PACKET_HEADROOM - 18) as u32;
/// Receive bursts between two reads of the socket's statistics.
const STATS_EVERY: u32 = 4096;

/// How the XDP program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Native if the driver supports it, else generic.
    Auto,
    /// In the driver (`XDP_FLAGS_DRV_MODE`; veth has it).
    Native,
    /// In the generic network stack (`XDP_FLAGS_SKB_MODE`; any interface, slower).
    Generic,
}

/// How the AF_XDP sockets are bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpBind {
    /// Zero-copy if the driver has it (then the XDP program must run native), else copy.
    Auto,
    /// `XDP_COPY`: the kernel copies between its buffers and the UMEM (any interface).
    Copy,
    /// `XDP_ZEROCOPY` or fail: the driver works on the UMEM directly.
    ZeroCopy,
}

/// Settings of an `afxdp` port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfXdpConfig {
    /// Interface to open (must exist and be up).
    pub ifname: String,
    /// Queues: one AF_XDP socket each, bound to the interface's rx queues `0..queues`.
    pub queues: usize,
    /// Set the interface MTU before opening (at most [`MAX_MTU`]).
    pub mtu: Option<u32>,
    /// Where the XDP program runs (default [`XdpMode::Auto`]).
    pub xdp_mode: XdpMode,
    /// Zero-copy or copy (default [`XdpBind::Auto`]).
    pub bind: XdpBind,
    /// UMEM frames per queue, a power of two from 64 to 65536 (default 4096: 8 MiB, half
    /// for receiving, half for sending); each ring has half as many entries.
    pub frames: u32,
}

impl AfXdpConfig {
    /// Defaults for `ifname`: one queue, automatic XDP mode, 4096 frames.
    pub fn new(ifname: &str) -> Self {
        AfXdpConfig {
            ifname: ifname.to_string(),
            queues: 1,
            mtu: None,
            xdp_mode: XdpMode::Auto,
            bind: XdpBind::Auto,
            frames: 4096,
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
        if !self.frames.is_power_of_two() || !(64..=65536).contains(&self.frames) {
            return bad(format!(
                "frames must be a power of two from 64 to 65536, not {}",
                self.frames
            ));
        }
        if let Some(m) = self.mtu
            && !(68..=MAX_MTU).contains(&m)
        {
            return bad(format!("mtu must be 68..={MAX_MTU}, not {m}"));
        }
        if self.bind == XdpBind::ZeroCopy && self.xdp_mode == XdpMode::Generic {
            return bad(
                "xdp_bind = \"zerocopy\" needs the XDP program in the driver: xdp_mode \"native\" or \"auto\", not \"generic\""
                    .to_string(),
            );
        }
        Ok(())
    }
}

/// What [`open`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfXdpInfo {
    /// Interface name.
    pub ifname: String,
    /// Interface index.
    pub ifindex: u32,
    /// The interface MAC, which steerd uses as its own on this port.
    pub mac: Mac,
    /// Interface MTU.
    pub mtu: u32,
    /// Queues opened.
    pub queues: usize,
    /// Where the XDP program was attached ([`XdpMode::Native`] or [`XdpMode::Generic`]).
    pub xdp_mode: XdpMode,
    /// How the sockets were bound ([`XdpBind::ZeroCopy`] or [`XdpBind::Copy`]).
    pub bind: XdpBind,
}

/// An open `afxdp` port: its queues, one rx and one tx per worker, and counters.
pub struct AfXdpPort {
    /// What the port runs on.
    pub info: AfXdpInfo,
    /// Receive queues, one per worker.
    pub rx: Vec<AfXdpRx>,
    /// Transmit queues, one per worker.
    pub tx: Vec<AfXdpTx>,
    /// Counters of all queues, readable from any thread.
    pub counters: Arc<PortCounters>,
}

// ---------------------------------------------------------------------------------------
// Set-up

/// Opens the `afxdp` port `name` on `cfg.ifname`; received buffers get
/// `port = port_index`. Works in the calling thread's network namespace.
pub fn open(name: &str, cfg: &AfXdpConfig, port_index: u16) -> Result<AfXdpPort, PortOpenError> {
    cfg.check(name)?;
    let ifname = cfg.ifname.as_str();
    let ifindex = netdev::resolve(name, ifname)?;
    let err = |what: &'static str| {
        move |source: io::Error| PortOpenError::Setup {
            port: name.to_string(),
            ifname: ifname.to_string(),
            what,
            source,
        }
    };
    let privilege = |action: &'static str, capability: &'static str| {
        move |e: io::Error| match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => PortOpenError::NeedsPrivilege {
                port: name.to_string(),
                action,
                capability,
            },
            _ => err(action)(e),
        }
    };
    if let Some(m) = cfg.mtu {
        netdev::set_mtu(ifname, m)
            .map_err(privilege("setting the interface MTU", "CAP_NET_ADMIN"))?;
    }
    if !netdev::is_up(ifname).map_err(err("reading the interface flags"))? {
        return Err(PortOpenError::InterfaceDown {
            port: name.to_string(),
            ifname: ifname.to_string(),
        });
    }
    let mtu = netdev::mtu(ifname).map_err(err("reading the MTU"))?;
    if mtu > MAX_MTU {
        return Err(PortOpenError::BadConfig {
            port: name.to_string(),
            what: format!(
                "interface {ifname} has MTU {mtu}, AF_XDP frames hold an MTU up to {MAX_MTU}: \
                 set mtu on the port or run ip link set {ifname} mtu 1500"
            ),
        });
    }
    let mac = netdev::hwaddr(ifname).map_err(err("reading the MAC address"))?;

    let map = bpf_map_create_xskmap(cfg.queues as u32).map_err(privilege(
        "creating the XSKMAP",
        "CAP_BPF (or CAP_SYS_ADMIN)",
    ))?;
    let prog = bpf_prog_load_redirect(&map).map_err(privilege(
        "loading the XDP program",
        "CAP_BPF (or CAP_SYS_ADMIN)",
    ))?;

    let counters = PortCounters::new(name, cfg.queues, cfg.queues);
    let mut socks = Vec::with_capacity(cfg.queues);
    // Generic XDP never runs zero-copy; otherwise the first socket finds out whether the
    // driver has it, and the others are bound the same way.
    let mut bind = match (cfg.bind, cfg.xdp_mode) {
        (XdpBind::Auto, XdpMode::Generic) => XdpBind::Copy,
        (b, _) => b,
    };
    for q in 0..cfg.queues {
        let s = match Xsk::open(name, ifname, ifindex, q as u32, cfg.frames as usize, bind) {
            Err(XskError::ZeroCopyUnsupported) if bind == XdpBind::Auto => {
                bind = XdpBind::Copy;
                Xsk::open(name, ifname, ifindex, q as u32, cfg.frames as usize, bind)
            }
            r => r,
        }
        .map_err(|e| e.into_port_error(name, ifname))?;
        if bind == XdpBind::Auto {
            bind = XdpBind::ZeroCopy;
        }
        bpf_map_update(&map, q as u32, s.fd.as_raw_fd() as u32)
            .map_err(err("adding the socket to the XSKMAP"))?;
        socks.push(s);
    }
    let modes: &[XdpMode] = match (cfg.xdp_mode, bind) {
        // A zero-copy socket only sees frames the driver's own XDP hook redirects.
        (_, XdpBind::ZeroCopy) => &[XdpMode::Native],
        (XdpMode::Auto, _) => &[XdpMode::Native, XdpMode::Generic],
        (XdpMode::Native, _) => &[XdpMode::Native],
        (XdpMode::Generic, _) => &[XdpMode::Generic],
    };
    // A port closed a moment ago can still hold its link (the last copy of its fd goes
    // a little later, e.g. from a child between fork and exec).
    let attached = retry_while_busy(&[libc::EBUSY, libc::EEXIST], || {
        let mut last = io::Error::from_raw_os_error(libc::EINVAL);
        for &m in modes {
            match bpf_link_create_xdp(&prog, ifindex, m) {
                Ok(link) => return Ok((link, m)),
                Err(e) => last = e,
            }
        }
        Err(last)
    });
    let (link, mode) = match attached {
        Ok(a) => a,
        Err(e) => {
            return Err(match e.raw_os_error() {
                Some(libc::EBUSY) | Some(libc::EEXIST) => PortOpenError::BadConfig {
                    port: name.to_string(),
                    what: format!(
                        "interface {ifname} already has an XDP program (ip link set {ifname} xdp off)"
                    ),
                },
                _ => privilege("attaching the XDP program", "CAP_NET_ADMIN")(e),
            });
        }
    };
    let attach = Arc::new(XdpAttach {
        _link: link,
        _prog: prog,
        _map: map,
    });
    let max_len = (FRAME_SIZE).min(mtu as usize + 18);
    let mut rx = Vec::with_capacity(cfg.queues);
    let mut tx = Vec::with_capacity(cfg.queues);
    for (q, s) in socks.into_iter().enumerate() {
        let fd = Arc::new(s.fd);
        let umem = Arc::new(Umem(s.umem));
        let half = s.frames / 2;
        rx.push(AfXdpRx {
            walk: RxWalk {
                rx: s.rx,
                fill: s.fill,
                rx_frames: half,
            },
            umem: Arc::clone(&umem),
            fd: Arc::clone(&fd),
            _attach: Arc::clone(&attach),
            port: port_index,
            queue: q,
            counters: Arc::clone(&counters),
            calls: 0,
            last: XdpStats::default(),
        });
        tx.push(AfXdpTx {
            walk: TxWalk::new(s.tx, s.comp, half, s.frames, max_len),
            umem,
            fd,
            _attach: Arc::clone(&attach),
            queue: q,
            counters: Arc::clone(&counters),
        });
    }
    Ok(AfXdpPort {
        info: AfXdpInfo {
            ifname: ifname.to_string(),
            ifindex,
            mac,
            mtu,
            queues: cfg.queues,
            xdp_mode: mode,
            bind,
        },
        rx,
        tx,
        counters,
    })
}

/// The loaded program, its map and the link that attaches it; the last queue to go
/// closes them, which detaches the program.
struct XdpAttach {
    _link: OwnedFd,
    _prog: OwnedFd,
    _map: OwnedFd,
}

/// The UMEM of one socket. Shared by the queue's rx and tx halves, which touch disjoint
/// frames: rx only frames `0..frames/2` (which it hands to the fill ring), tx only
/// `frames/2..frames` (its free list).
struct Umem(RingMem);

// SAFETY: the two halves that share a UMEM only ever access disjoint frame ranges (see
// the type docs; the rx walker checks every descriptor's address against its range), so
// sharing the mapping between the threads that own them races on nothing.
unsafe impl Sync for Umem {}

/// One AF_XDP socket with its UMEM and four rings, before splitting into halves.
struct Xsk {
    fd: OwnedFd,
    umem: RingMem,
    frames: usize,
    rx: XskRing,
    fill: XskRing,
    tx: XskRing,
    comp: XskRing,
}

fn sockopt<T>(fd: &OwnedFd, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a live T and the length is its size; the kernel only reads.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
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

/// Why a socket could not be opened.
enum XskError {
    /// The bind asked for `XDP_ZEROCOPY` and the driver has no zero-copy.
    ZeroCopyUnsupported,
    /// Anything else, as the user sees it.
    Port(PortOpenError),
}

impl From<PortOpenError> for XskError {
    fn from(e: PortOpenError) -> Self {
        XskError::Port(e)
    }
}

impl XskError {
    fn into_port_error(self, port: &str, ifname: &str) -> PortOpenError {
        match self {
            XskError::ZeroCopyUnsupported => PortOpenError::BadConfig {
                port: port.to_string(),
                what: format!(
                    "the driver of {ifname} has no AF_XDP zero-copy (XDP_ZEROCOPY: operation not \
                     supported): set xdp_bind = \"copy\" or \"auto\""
                ),
            },
            XskError::Port(e) => e,
        }
    }
}

impl Xsk {
    /// Opens and binds one socket; `bind` is [`XdpBind::ZeroCopy`] or [`XdpBind::Copy`]
    /// (`Auto` binds zero-copy).
    fn open(
        port: &str,
        ifname: &str,
        ifindex: u32,
        queue: u32,
        frames: usize,
        bind: XdpBind,
    ) -> Result<Xsk, XskError> {
        let err = |what: &'static str| {
            move |source: io::Error| PortOpenError::Setup {
                port: port.to_string(),
                ifname: ifname.to_string(),
                what,
                source,
            }
        };
        // SAFETY: socket() takes no pointers; the result is checked.
        let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => PortOpenError::NeedsPrivilege {
                    port: port.to_string(),
                    action: "opening an AF_XDP socket",
                    capability: "CAP_NET_RAW",
                },
                _ => err("opening an AF_XDP socket (kernel without CONFIG_XDP_SOCKETS?)")(e),
            }
            .into());
        }
        // SAFETY: fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let umem = RingMem::anon(frames * FRAME_SIZE).map_err(err("allocating the UMEM"))?;
        let reg = libc::xdp_umem_reg {
            addr: umem.addr(),
            len: umem.len() as u64,
            chunk_size: FRAME_SIZE as u32,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        sockopt(&fd, libc::XDP_UMEM_REG, &reg).map_err(err("registering the UMEM"))?;
        let ring = (frames / 2) as u32;
        sockopt(&fd, libc::XDP_UMEM_FILL_RING, &ring).map_err(err("creating the fill ring"))?;
        sockopt(&fd, libc::XDP_UMEM_COMPLETION_RING, &ring)
            .map_err(err("creating the completion ring"))?;
        sockopt(&fd, libc::XDP_RX_RING, &ring).map_err(err("creating the rx ring"))?;
        sockopt(&fd, libc::XDP_TX_RING, &ring).map_err(err("creating the tx ring"))?;
        // SAFETY: xdp_mmap_offsets is plain data; all-zero is valid.
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // SAFETY: `off` and `len` are valid for writes of the sizes given.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                (&mut off as *mut libc::xdp_mmap_offsets).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            return Err(err("reading the ring offsets")(io::Error::last_os_error()).into());
        }
        let n = ring as usize;
        let map = |o: &libc::xdp_ring_offset, pgoff: u64, desc: usize| {
            let bytes = o.desc as usize + n * desc;
            RingMem::map(&fd, bytes, pgoff as i64).map(|m| XskRing::new(m, o, ring))
        };
        let rx = map(
            &off.rx,
            libc::XDP_PGOFF_RX_RING as u64,
            size_of::<libc::xdp_desc>(),
        )
        .map_err(err("mapping the rx ring"))?;
        let tx = map(
            &off.tx,
            libc::XDP_PGOFF_TX_RING as u64,
            size_of::<libc::xdp_desc>(),
        )
        .map_err(err("mapping the tx ring"))?;
        let mut fill = map(&off.fr, libc::XDP_UMEM_PGOFF_FILL_RING, 8)
            .map_err(err("mapping the fill ring"))?;
        let comp = map(&off.cr, libc::XDP_UMEM_PGOFF_COMPLETION_RING, 8)
            .map_err(err("mapping the completion ring"))?;
        // Every receive frame starts on the fill ring.
        for i in 0..n {
            fill.mem
                .write_u64(fill.desc + 8 * i, (i * FRAME_SIZE) as u64);
        }
        fill.prod = ring;
        fill.producer().store(ring, Ordering::Release);
        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: if bind == XdpBind::Copy {
                libc::XDP_COPY
            } else {
                libc::XDP_ZEROCOPY
            },
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // The kernel frees a closed AF_XDP socket's hold on its queue asynchronously, so
        // a queue closed a moment ago (a restart, a reopened port) can still be busy.
        let bound = retry_while_busy(&[libc::EBUSY], || {
            // SAFETY: `sa` is a valid sockaddr_xdp and the length is its size.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sa as *const libc::sockaddr_xdp).cast(),
                    size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
                )
            };
            if rc < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        });
        if let Err(e) = bound {
            if bind != XdpBind::Copy && e.raw_os_error() == Some(libc::EOPNOTSUPP) {
                return Err(XskError::ZeroCopyUnsupported);
            }
            let why = match e.raw_os_error() {
                Some(libc::EBUSY) => format!(
                    "rx queue {queue} of {ifname} already has an AF_XDP socket (another port or process; still taken after {} ms)",
                    BIND_BUSY_WAIT.as_millis()
                ),
                Some(libc::EINVAL) => format!(
                    "cannot bind an AF_XDP socket to rx queue {queue} of {ifname}: {e} (does the \
                     interface have that many rx queues? a veth has one unless created with \
                     numrxqueues)"
                ),
                _ => format!("cannot bind an AF_XDP socket to rx queue {queue} of {ifname}: {e}"),
            };
            return Err(XskError::Port(PortOpenError::BadConfig {
                port: port.to_string(),
                what: why,
            }));
        }
        Ok(Xsk {
            fd,
            umem,
            frames,
            rx,
            fill,
            tx,
            comp,
        })
    }
}

// ---------------------------------------------------------------------------------------
// bpf(): an XSKMAP, the redirect program, and its link

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// `XDP_PASS`: the fallback action of `bpf_redirect_map` for a queue without a socket.
const XDP_PASS: i32 = 2;
/// Helper number of `bpf_redirect_map`.
const BPF_FUNC_REDIRECT_MAP: i32 = 51;

#[repr(C)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

/// Runs `bpf(cmd, attr)`; returns the non-negative result.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<i32> {
    // SAFETY: `attr` is a live, exclusively borrowed #[repr(C)] prefix of `union bpf_attr`
    // for `cmd`, and the size passed is its size (the kernel treats the rest as zero).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as i32)
    }
}

fn owned(fd: i32) -> OwnedFd {
    // SAFETY: `fd` was just returned by bpf() and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn name16(s: &str) -> [u8; 16] {
    let mut n = [0u8; 16];
    n[..s.len().min(15)].copy_from_slice(&s.as_bytes()[..s.len().min(15)]);
    n
}

fn bpf_map_create_xskmap(entries: u32) -> io::Result<OwnedFd> {
    let mut a = MapCreateAttr {
        map_type: BPF_MAP_TYPE_XSKMAP,
        key_size: 4,
        value_size: 4,
        max_entries: entries,
        map_flags: 0,
        inner_map_fd: 0,
        numa_node: 0,
        map_name: name16("steerd_xsks"),
    };
    bpf(BPF_MAP_CREATE, &mut a).map(owned)
}

/// Encodes one eBPF instruction.
const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let o = off.to_le_bytes();
    let i = imm.to_le_bytes();
    [code, (src << 4) | dst, o[0], o[1], i[0], i[1], i[2], i[3]]
}

/// The XDP program:
/// ```text
/// r2 = *(u32 *)(r1 + 16)          ; ctx->rx_queue_index
/// r1 = map_fd ll                  ; the XSKMAP
/// r3 = XDP_PASS                   ; fallback when the queue has no socket
/// call bpf_redirect_map
/// exit
/// ```
fn redirect_program(map_fd: i32) -> [[u8; 8]; 6] {
    const BPF_PSEUDO_MAP_FD: u8 = 1;
    [
        insn(0x61, 2, 1, 16, 0),                     // BPF_LDX | BPF_W | BPF_MEM
        insn(0x18, 1, BPF_PSEUDO_MAP_FD, 0, map_fd), // BPF_LD | BPF_DW | BPF_IMM, 2 slots
        insn(0, 0, 0, 0, 0),
        insn(0xb7, 3, 0, 0, XDP_PASS), // BPF_ALU64 | BPF_MOV | BPF_K
        insn(0x85, 0, 0, 0, BPF_FUNC_REDIRECT_MAP), // BPF_JMP | BPF_CALL
        insn(0x95, 0, 0, 0, 0),        // BPF_JMP | BPF_EXIT
    ]
}

fn bpf_prog_load_redirect(map: &OwnedFd) -> io::Result<OwnedFd> {
    let prog = redirect_program(map.as_raw_fd());
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 4096];
    let mut a = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_XDP,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name: name16("steerd_xsk"),
        prog_ifindex: 0,
        expected_attach_type: BPF_XDP,
    };
    match bpf(BPF_PROG_LOAD, &mut a) {
        Ok(fd) => Ok(owned(fd)),
        Err(e)
            if e.raw_os_error() == Some(libc::EPERM) || e.raw_os_error() == Some(libc::EACCES) =>
        {
            Err(e)
        }
        Err(_) => {
            // Load again with the verifier's log, to say why.
            a.log_level = 1;
            a.log_size = log.len() as u32;
            a.log_buf = log.as_mut_ptr() as u64;
            let e = bpf(BPF_PROG_LOAD, &mut a)
                .err()
                .unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL));
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            Err(io::Error::new(
                e.kind(),
                format!(
                    "{e}; verifier: {}",
                    String::from_utf8_lossy(&log[..end]).trim()
                ),
            ))
        }
    }
}

fn bpf_map_update(map: &OwnedFd, key: u32, value: u32) -> io::Result<()> {
    let mut a = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        _pad: 0,
        key: &key as *const u32 as u64,
        value: &value as *const u32 as u64,
        flags: 0,
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(|_| ())
}

fn bpf_link_create_xdp(prog: &OwnedFd, ifindex: u32, mode: XdpMode) -> io::Result<OwnedFd> {
    let mut a = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_ifindex: ifindex,
        attach_type: BPF_XDP,
        flags: if mode == XdpMode::Generic {
            XDP_FLAGS_SKB_MODE
        } else {
            XDP_FLAGS_DRV_MODE
        },
    };
    bpf(BPF_LINK_CREATE, &mut a).map(owned)
}

// ---------------------------------------------------------------------------------------
// Rings

/// One AF_XDP ring: producer and consumer indices (free-running u32) and `size`
/// descriptors, with a local copy of the index this side owns.
pub(crate) struct XskRing {
    mem: RingMem,
    producer: usize,
    consumer: usize,
    desc: usize,
    mask: u32,
    size: u32,
    /// Our copy of the index we write: the producer for fill/tx, the consumer for rx/comp.
    prod: u32,
    cons: u32,
}

impl XskRing {
    fn new(mem: RingMem, o: &libc::xdp_ring_offset, size: u32) -> XskRing {
        XskRing {
            mem,
            producer: o.producer as usize,
            consumer: o.consumer as usize,
            desc: o.desc as usize,
            mask: size - 1,
            size,
            prod: 0,
            cons: 0,
        }
    }

    /// A ring laid out like the kernel's in plain memory (tests).
    #[cfg(test)]
    pub(crate) fn fake(size: u32, desc_size: usize) -> XskRing {
        let o = libc::xdp_ring_offset {
            producer: 0,
            consumer: 64,
            desc: 128,
            flags: 192,
        };
        XskRing::new(RingMem::alloc(128 + size as usize * desc_size), &o, size)
    }

    #[inline]
    fn producer(&self) -> &AtomicU32 {
        self.mem.atomic_u32(self.producer)
    }

    #[inline]
    fn consumer(&self) -> &AtomicU32 {
        self.mem.atomic_u32(self.consumer)
    }

    /// Offset of descriptor slot `idx` (free-running index) of `desc_size` bytes.
    #[inline]
    fn slot(&self, idx: u32, desc_size: usize) -> usize {
        self.desc + (idx & self.mask) as usize * desc_size
    }
}

const DESC: usize = size_of::<libc::xdp_desc>();

/// The receive half's walker: the rx ring and the fill ring.
pub(crate) struct RxWalk {
    rx: XskRing,
    fill: XskRing,
    /// Receive frames are `0..rx_frames` of the UMEM.
    rx_frames: usize,
}

impl RxWalk {
    /// Copies up to `max` received frames into pool buffers and gives their UMEM frames
    /// back on the fill ring.
    #[inline]
    pub(crate) fn burst(
        &mut self,
        umem: &RingMem,
        pool: &mut Pool,
        out: &mut Vec<PktBuf>,
        max: usize,
        port: u16,
        t: &mut RxTally,
    ) -> usize {
        let prod = self.rx.producer().load(Ordering::Acquire);
        let avail = prod.wrapping_sub(self.rx.cons) as usize;
        let want = avail.min(max);
        let mut taken = 0u32;
        let mut n = 0;
        let limit = self.rx_frames * FRAME_SIZE;
        while (taken as usize) < want {
            let s = self.rx.slot(self.rx.cons.wrapping_add(taken), DESC);
            let addr = self.rx.mem.read_u64(s) as usize;
            let len = self.rx.mem.read_u32(s + 8) as usize;
            let frame_ok = addr < limit && addr % FRAME_SIZE + len <= FRAME_SIZE;
            if frame_ok && (14..=MAX_FRAME).contains(&len) {
                let Some(mut b) = pool.get() else {
                    break;
                };
                umem.copy_out(addr, &mut b.room_mut()[..len]);
                b.set_len(len);
                b.port = port;
                out.push(b);
                n += 1;
                t.packets += 1;
                t.bytes += len as u64;
            } else {
                t.errors += 1;
            }
            if frame_ok {
                // Back to the kernel: there is always room, the fill ring holds every
                // receive frame and this one just left the rx ring.
                let f = self.fill.slot(self.fill.prod, 8);
                self.fill
                    .mem
                    .write_u64(f, (addr - addr % FRAME_SIZE) as u64);
                self.fill.prod = self.fill.prod.wrapping_add(1);
            }
            taken += 1;
        }
        if taken > 0 {
            self.rx.cons = self.rx.cons.wrapping_add(taken);
            self.rx.consumer().store(self.rx.cons, Ordering::Release);
            self.fill
                .producer()
                .store(self.fill.prod, Ordering::Release);
        }
        n
    }
}

/// What [`TxWalk::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    /// Copied into a frame and published on the tx ring.
    Queued,
    /// No free frame or no room on the tx ring.
    Full,
    /// Too short or too long to send.
    Refused,
}

/// The transmit half's walker: the tx ring, the completion ring and the free frames.
pub(crate) struct TxWalk {
    tx: XskRing,
    comp: XskRing,
    /// Free transmit frames (UMEM offsets); capacity reserved for all of them.
    free: Vec<u64>,
    max_len: usize,
    /// Frames published since the last store of the producer index.
    unpublished: u32,
}

impl TxWalk {
    fn new(tx: XskRing, comp: XskRing, first: usize, end: usize, max_len: usize) -> TxWalk {
        let mut free = Vec::with_capacity(end - first);
        for i in (first..end).rev() {
            free.push((i * FRAME_SIZE) as u64);
        }
        TxWalk {
            tx,
            comp,
            free,
            max_len,
            unpublished: 0,
        }
    }

    /// Takes back the frames the kernel has finished sending.
    #[inline]
    pub(crate) fn reclaim(&mut self) {
        let prod = self.comp.producer().load(Ordering::Acquire);
        let mut c = self.comp.cons;
        while c != prod && self.free.len() < self.free.capacity() {
            let s = self.comp.slot(c, 8);
            self.free.push(self.comp.mem.read_u64(s));
            c = c.wrapping_add(1);
        }
        if c != self.comp.cons {
            self.comp.cons = c;
            self.comp.consumer().store(c, Ordering::Release);
        }
    }

    /// Copies `data` into a free frame and fills the next tx descriptor (published by
    /// [`TxWalk::publish`]).
    #[inline]
    pub(crate) fn push(&mut self, umem: &RingMem, data: &[u8]) -> Push {
        if data.len() < 14 || data.len() > self.max_len {
            return Push::Refused;
        }
        let in_flight = self
            .tx
            .prod
            .wrapping_sub(self.tx.consumer().load(Ordering::Acquire));
        if in_flight >= self.tx.size {
            return Push::Full;
        }
        let Some(addr) = self.free.pop() else {
            return Push::Full;
        };
        umem.copy_in(addr as usize, data);
        let s = self.tx.slot(self.tx.prod, DESC);
        self.tx.mem.write_u64(s, addr);
        self.tx.mem.write_u32(s + 8, data.len() as u32);
        self.tx.mem.write_u32(s + 12, 0);
        self.tx.prod = self.tx.prod.wrapping_add(1);
        self.unpublished += 1;
        Push::Queued
    }

    /// Makes the filled descriptors visible to the kernel.
    #[inline]
    pub(crate) fn publish(&mut self) {
        if self.unpublished > 0 {
            self.tx.producer().store(self.tx.prod, Ordering::Release);
            self.unpublished = 0;
        }
    }

    /// Descriptors on the tx ring the kernel has not consumed yet.
    #[inline]
    pub(crate) fn outstanding(&self) -> u32 {
        self.tx
            .prod
            .wrapping_sub(self.tx.consumer().load(Ordering::Acquire))
    }
}

// ---------------------------------------------------------------------------------------
// Queues

/// Cumulative socket statistics last seen (the kernel's counters never reset).
#[derive(Debug, Default, Clone, Copy)]
struct XdpStats {
    drops: u64,
    invalid: u64,
}

/// Receive half of an `afxdp` queue, owned by one worker.
pub struct AfXdpRx {
    walk: RxWalk,
    umem: Arc<Umem>,
    fd: Arc<OwnedFd>,
    _attach: Arc<XdpAttach>,
    port: u16,
    queue: usize,
    counters: Arc<PortCounters>,
    calls: u32,
    last: XdpStats,
}

impl AfXdpRx {
    /// Adds the socket's drops since the last read (`XDP_STATISTICS`: frames dropped for
    /// a full rx ring or no fill frame) to this queue's `drops`, and invalid descriptors to
    /// its `errors`. `rx_burst` does this by itself every few thousand bursts.
    pub fn read_kernel_stats(&mut self) {
        // SAFETY: xdp_statistics is plain data; all-zero is valid.
        let mut st: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::xdp_statistics>() as libc::socklen_t;
        // SAFETY: `st` and `len` are valid for writes of the sizes given.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
                (&mut st as *mut libc::xdp_statistics).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            let now = XdpStats {
                drops: st.rx_dropped + st.rx_ring_full,
                invalid: st.rx_invalid_descs,
            };
            let c = &self.counters.rx[self.queue];
            bump(&c.drops, now.drops.wrapping_sub(self.last.drops));
            bump(&c.errors, now.invalid.wrapping_sub(self.last.invalid));
            self.last = now;
        }
    }
}

impl RxQueue for AfXdpRx {
    type Buf = PktBuf;
    type Pool = Pool;

    #[inline]
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut Vec<PktBuf>, max: usize) -> usize {
        let mut t = RxTally::default();
        let n = self
            .walk
            .burst(&self.umem.0, pool, out, max, self.port, &mut t);
        t.commit(&self.counters.rx[self.queue]);
        self.calls = self.calls.wrapping_add(1);
        if self.calls.is_multiple_of(STATS_EVERY) {
            self.read_kernel_stats();
        }
        n
    }
}

impl Drop for AfXdpRx {
    fn drop(&mut self) {
        self.read_kernel_stats();
    }
}

/// Transmit half of an `afxdp` queue, owned by one worker.
pub struct AfXdpTx {
    walk: TxWalk,
    umem: Arc<Umem>,
    fd: Arc<OwnedFd>,
    _attach: Arc<XdpAttach>,
    queue: usize,
    counters: Arc<PortCounters>,
}

impl AfXdpTx {
    /// Kicks the kernel until the tx ring is drained, it pushes back, or a few tries
    /// passed (copy mode sends at most 32 frames per kick).
    #[inline]
    fn kick(&mut self) {
        let c = &self.counters.tx[self.queue];
        for _ in 0..8 {
            if self.walk.outstanding() == 0 {
                break;
            }
            // SAFETY: a zero-length send on our own socket: the kernel takes the frames
            // from the tx ring.
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
            bump(&c.kicks, 1);
            if rc < 0 {
                match io::Error::last_os_error().raw_os_error() {
                    // Budget used up: more to send.
                    Some(libc::EAGAIN) => continue,
                    // Busy or out of buffers: the rest goes with the next kick.
                    Some(libc::EBUSY) | Some(libc::ENOBUFS) => break,
                    _ => {
                        bump(&c.kick_errors, 1);
                        break;
                    }
                }
            }
        }
    }
}

impl TxQueue for AfXdpTx {
    type Buf = PktBuf;
    type Pool = Pool;

    /// Copies packets into free UMEM frames on the tx ring; returns how many were taken
    /// off the front of `bufs` (queued, or discarded as unsendable and counted in
    /// `errors`). When frames run out it kicks once and reclaims before leaving the rest.
    #[inline]
    fn tx_burst(&mut self, pool: &mut Pool, bufs: &mut Vec<PktBuf>) -> usize {
        self.walk.reclaim();
        let (mut done, mut pkts, mut bytes, mut errors, mut full) =
            (0usize, 0u64, 0u64, 0u64, 0u64);
        let mut kicked = false;
        while done < bufs.len() {
            let data = bufs[done].data();
            match self.walk.push(&self.umem.0, data) {
                Push::Queued => {
                    pkts += 1;
                    bytes += data.len() as u64;
                }
                Push::Refused => errors += 1,
                Push::Full => {
                    if !kicked {
                        self.walk.publish();
                        self.kick();
                        self.walk.reclaim();
                        kicked = true;
                        continue;
                    }
                    full += 1;
                    break;
                }
            }
            done += 1;
        }
        self.walk.publish();
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
        self.walk.publish();
        if self.walk.outstanding() > 0 {
            self.kick();
        }
    }
}

impl Drop for AfXdpTx {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests;
