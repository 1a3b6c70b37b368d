//! Linux network-interface plumbing shared by the kernel-backed ports (tap, afpacket):
//! the set-up error type, interface look-ups and settings through `ioctl`s, and MAC helpers.
//!
//! Cold only: everything here runs while a port is opened, never on the fast path.
//! Every call works on the network namespace of the calling thread (each call opens a
//! throw-away control socket there).

use std::ffi::c_char;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

/// Why a kernel-backed port could not be opened. Every message names the port and
/// says what is missing, so an operator can act on it.
#[derive(Debug, thiserror::Error)]
pub enum PortOpenError {
    /// The interface named in the configuration is not there.
    #[error("port {port}: interface {ifname} does not exist")]
    NoSuchInterface {
        /// Port name from the configuration.
        port: String,
        /// Interface name.
        ifname: String,
    },
    /// The interface exists but is administratively down.
    #[error("port {port}: interface {ifname} is down (ip link set {ifname} up)")]
    InterfaceDown {
        /// Port name.
        port: String,
        /// Interface name.
        ifname: String,
    },
    /// The process lacks a privilege the backend needs.
    #[error("port {port}: {action} needs root or {capability}")]
    NeedsPrivilege {
        /// Port name.
        port: String,
        /// What was attempted, e.g. "opening an AF_PACKET socket".
        action: &'static str,
        /// The capability that would do instead of root.
        capability: &'static str,
    },
    /// The tun/tap driver's device node is missing.
    #[error("port {port}: /dev/net/tun is missing (modprobe tun)")]
    TunMissing {
        /// Port name.
        port: String,
    },
    /// An interface of that name exists but cannot be opened as a tap.
    #[error(
        "port {port}: interface {ifname} exists but is not a tap device the tun driver can attach to \
         (delete it or pick another name)"
    )]
    NotATap {
        /// Port name.
        port: String,
        /// Interface name.
        ifname: String,
    },
    /// A single-queue tap that another process (or port) already holds open.
    #[error("port {port}: tap {ifname} is already in use (another process or port holds it)")]
    TapBusy {
        /// Port name.
        port: String,
        /// Interface name.
        ifname: String,
    },
    /// A configuration value the backend cannot use.
    #[error("port {port}: {what}")]
    BadConfig {
        /// Port name.
        port: String,
        /// What is wrong and what would be accepted.
        what: String,
    },
    /// A system call failed during set-up.
    #[error("port {port}: {what} on {ifname} failed: {source}")]
    Setup {
        /// Port name.
        port: String,
        /// Interface name.
        ifname: String,
        /// The step that failed, e.g. "mapping the rx ring".
        what: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// An Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// True for a locally administered unicast address (`x2:`, `x6:`, `xA:`, `xE:`).
    pub fn is_local_unicast(&self) -> bool {
        self.0[0] & 0x03 == 0x02
    }

    /// The MAC steerd uses on a port whose interface MAC belongs to the kernel (a tap):
    /// `02:5d:` followed by the FNV-1a hash of the port and interface names, so it is
    /// stable across restarts and different for every port.
    pub fn derived(port: &str, ifname: &str) -> Mac {
        let mut h: u32 = 0x811c_9dc5;
        for b in port.bytes().chain([0u8]).chain(ifname.bytes()) {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        let x = h.to_be_bytes();
        Mac([0x02, 0x5d, x[0], x[1], x[2], x[3]])
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (or with `-`).
    pub fn parse(s: &str) -> Option<Mac> {
        let mut m = [0u8; 6];
        let mut n = 0;
        for part in s.split([':', '-']) {
            if n == 6 || part.len() != 2 {
                return None;
            }
            m[n] = u8::from_str_radix(part, 16).ok()?;
            n += 1;
        }
        (n == 6).then_some(Mac(m))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Checks an interface name the way the kernel will (non-empty, shorter than
/// `IFNAMSIZ`, no `/`, `:` or white space). Returns the reason it is refused.
pub fn check_ifname(ifname: &str) -> Result<(), &'static str> {
    if ifname.is_empty() {
        return Err("interface name is empty");
    }
    if ifname.len() >= libc::IFNAMSIZ {
        return Err("interface names have at most 15 bytes");
    }
    if ifname == "." || ifname == ".." {
        return Err("interface name cannot be . or ..");
    }
    if ifname
        .bytes()
        .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
    {
        return Err("interface names cannot hold '/', ':', NUL or white space");
    }
    Ok(())
}

/// An `ifreq` with the name filled in. The name must have passed [`check_ifname`].
pub(crate) fn ifreq(ifname: &str) -> libc::ifreq {
    // SAFETY: ifreq is a plain C struct (a name array and a union of integers, byte arrays
    // and pointers) for which all-zero bytes are a valid value.
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in r
        .ifr_name
        .iter_mut()
        .zip(ifname.bytes().take(libc::IFNAMSIZ - 1))
    {
        *d = s as c_char;
    }
    r
}

/// A throw-away socket for interface `ioctl`s in the calling thread's namespace.
fn ctl_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket() takes no pointers; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        // Kernels without IPv4 still answer interface ioctls on a unix socket.
        // SAFETY: as above.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a freshly created descriptor nobody else owns.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    // SAFETY: fd is a freshly created descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Runs one interface `ioctl` with `req` on a control socket.
fn ifioctl(req: libc::Ioctl, r: &mut libc::ifreq) -> io::Result<()> {
    let s = ctl_socket()?;
    // SAFETY: `r` is a valid, exclusively borrowed ifreq, which is the argument type of
    // every SIOC*IF* request used in this module; the kernel writes at most sizeof(ifreq)
    // into it. For SIOCETHTOOL it also reads and writes the command struct that
    // `ifr_data` points at, which the caller (`carrier`) keeps alive across the call.
    let rc = unsafe { libc::ioctl(s.as_raw_fd(), req, r as *mut libc::ifreq) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The interface index, or `ENODEV` when there is no such interface.
pub fn ifindex(ifname: &str) -> io::Result<u32> {
    let mut r = ifreq(ifname);
    ifioctl(libc::SIOCGIFINDEX, &mut r)?;
    // SAFETY: SIOCGIFINDEX filled the ifindex member of the union.
    let i = unsafe { r.ifr_ifru.ifru_ifindex };
    Ok(i as u32)
}

/// The interface flags (`IFF_UP`, `IFF_RUNNING`, ...).
pub fn flags(ifname: &str) -> io::Result<i32> {
    let mut r = ifreq(ifname);
    ifioctl(libc::SIOCGIFFLAGS, &mut r)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    let f = unsafe { r.ifr_ifru.ifru_flags };
    // The kernel's flags are an unsigned short; read them as such.
    Ok(i32::from(f as u16))
}

/// True when the interface is administratively up.
pub fn is_up(ifname: &str) -> io::Result<bool> {
    Ok(flags(ifname)? & libc::IFF_UP != 0)
}

/// True when the interface is up and has its carrier (the link to its peer works): the
/// driver's link state (`ETHTOOL_GLINK`, what `ethtool IF` shows as "Link detected"),
/// or `IFF_RUNNING` for drivers without it. The driver's state changes at once;
/// `IFF_RUNNING` follows the kernel's link watch, which may lag by a second.
pub fn carrier(ifname: &str) -> io::Result<bool> {
    let f = flags(ifname)?;
    if f & libc::IFF_UP == 0 {
        return Ok(false);
    }
    const ETHTOOL_GLINK: u32 = 0x0000_000a;
    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }
    let mut v = EthtoolValue {
        cmd: ETHTOOL_GLINK,
        data: 0,
    };
    let mut r = ifreq(ifname);
    // The kernel reads the command from `v` and writes the answer there, during the
    // ioctl below; `v` outlives it.
    r.ifr_ifru.ifru_data = (&raw mut v).cast();
    match ifioctl(libc::SIOCETHTOOL as libc::Ioctl, &mut r) {
        Ok(()) => Ok(v.data != 0),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(f & libc::IFF_RUNNING != 0),
        Err(e) => Err(e),
    }
}

/// Brings the interface up (`ip link set IF up`); a no-op when it already is.
pub fn set_up(ifname: &str) -> io::Result<()> {
    let f = flags(ifname)?;
    if f & libc::IFF_UP != 0 {
        return Ok(());
    }
    let mut r = ifreq(ifname);
    r.ifr_ifru.ifru_flags = (f | libc::IFF_UP) as u16 as i16;
    ifioctl(libc::SIOCSIFFLAGS, &mut r)
}

/// The interface MTU.
pub fn mtu(ifname: &str) -> io::Result<u32> {
    let mut r = ifreq(ifname);
    ifioctl(libc::SIOCGIFMTU, &mut r)?;
    // SAFETY: SIOCGIFMTU filled the mtu member of the union.
    let m = unsafe { r.ifr_ifru.ifru_mtu };
    Ok(m.max(0) as u32)
}

/// Sets the interface MTU.
pub fn set_mtu(ifname: &str, mtu: u32) -> io::Result<()> {
    let mut r = ifreq(ifname);
    r.ifr_ifru.ifru_mtu =
        i32::try_from(mtu).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    ifioctl(libc::SIOCSIFMTU, &mut r)
}

/// The interface's hardware (MAC) address.
pub fn hwaddr(ifname: &str) -> io::Result<Mac> {
    let mut r = ifreq(ifname);
    ifioctl(libc::SIOCGIFHWADDR, &mut r)?;
    // SAFETY: SIOCGIFHWADDR filled the hwaddr member (a sockaddr) of the union.
    let sa = unsafe { r.ifr_ifru.ifru_hwaddr };
    let mut m = [0u8; 6];
    for (d, s) in m.iter_mut().zip(sa.sa_data.iter()) {
        *d = *s as u8;
    }
    Ok(Mac(m))
}

/// Maps the error of an interface look-up to the operator's message.
pub(crate) fn lookup_error(port: &str, ifname: &str, e: io::Error) -> PortOpenError {
    match e.raw_os_error() {
        Some(libc::ENODEV) | Some(libc::ENXIO) => PortOpenError::NoSuchInterface {
            port: port.to_string(),
            ifname: ifname.to_string(),
        },
        _ => PortOpenError::Setup {
            port: port.to_string(),
            ifname: ifname.to_string(),
            what: "looking up the interface",
            source: e,
        },
    }
}

/// Checks the name and that the interface exists; returns its index.
pub(crate) fn resolve(port: &str, ifname: &str) -> Result<u32, PortOpenError> {
    check_ifname(ifname).map_err(|why| PortOpenError::BadConfig {
        port: port.to_string(),
        what: format!("invalid interface name {ifname:?}: {why}"),
    })?;
    ifindex(ifname).map_err(|e| lookup_error(port, ifname, e))
}

/// The kernel's link notifications (rtnetlink `RTMGRP_LINK`): an interface going up or
/// down, gaining or losing its carrier, is announced as an `RTM_NEWLINK` message the
/// moment the kernel's link watch handles it. Used as a wake-up only: whoever listens
/// still reads the state itself ([`carrier`]), so a missed or coalesced message costs
/// time, never correctness.
pub struct LinkEvents {
    fd: OwnedFd,
    stop: Arc<OwnedFd>,
    buf: Vec<u8>,
}

/// Ends a [`LinkEvents::wait`] at once, and every later one: for shutting its thread
/// down without waiting out the timeout.
#[derive(Clone)]
pub struct LinkEventsStop(Arc<OwnedFd>);

impl LinkEventsStop {
    /// Makes the waits return now (they call nothing).
    pub fn stop(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to an eventfd this owns; a full
        // counter (EAGAIN) means it is signalled already.
        let _ = unsafe { libc::write(self.0.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }
}

impl LinkEvents {
    /// Subscribes, in the calling thread's network namespace. Needs no privilege.
    pub fn open() -> io::Result<LinkEvents> {
        // SAFETY: socket() takes no pointers; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a freshly created descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain old data; all zeroes is a valid value.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        sa.nl_groups = libc::RTMGRP_LINK as u32;
        // SAFETY: `sa` is a valid sockaddr_nl and the length passed is its size; the
        // kernel only reads it during the call.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const sa).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: eventfd() takes no pointers; the result is checked before use.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: efd is a freshly created descriptor nobody else owns.
        let stop = Arc::new(unsafe { OwnedFd::from_raw_fd(efd) });
        Ok(LinkEvents {
            fd,
            stop,
            buf: vec![0; 64 * 1024],
        })
    }

    /// A handle that ends this listener's waits from another thread.
    pub fn stopper(&self) -> LinkEventsStop {
        LinkEventsStop(self.stop.clone())
    }

    /// Waits up to `timeout` for notifications and calls `f` with the interface index
    /// of each link message that arrived. Returns whether any arrived. When the
    /// kernel dropped messages because this socket fell behind (`ENOBUFS`), `f` gets
    /// `None`: something changed, and what is unknown.
    pub fn wait(
        &mut self,
        timeout: std::time::Duration,
        mut f: impl FnMut(Option<u32>),
    ) -> io::Result<bool> {
        let pfd = |fd: &OwnedFd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let mut pfds = [pfd(&self.fd), pfd(&self.stop)];
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: two valid pollfds, nfds 2; the kernel writes only their revents.
        let rc = unsafe { libc::poll(pfds.as_mut_ptr(), 2, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        if pfds[1].revents != 0 {
            return Ok(false); // stopped
        }
        let mut any = false;
        loop {
            // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, which
            // lives through the call.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => return Ok(any),
                    Some(libc::EINTR) => continue,
                    Some(libc::ENOBUFS) => {
                        any = true;
                        f(None);
                        continue;
                    }
                    _ => return Err(e),
                }
            }
            let n = n as usize;
            if n == 0 {
                return Ok(any);
            }
            any |= link_messages(&self.buf[..n], |i| f(Some(i))) > 0;
        }
    }
}

/// Walks the rtnetlink messages in one datagram and calls `f` with the interface
/// index of each `RTM_NEWLINK` / `RTM_DELLINK`; returns how many it found. Stops at
/// the first message whose header does not fit (the kernel never sends one; this
/// reads untrusted bytes all the same, so it checks every length).
pub fn link_messages(buf: &[u8], mut f: impl FnMut(u32)) -> usize {
    const NLMSG_HDR: usize = 16;
    const IFINFO: usize = 16;
    let mut at = 0;
    let mut n = 0;
    while buf.len() - at >= NLMSG_HDR {
        let h = &buf[at..];
        let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let kind = u16::from_ne_bytes([h[4], h[5]]);
        if len < NLMSG_HDR || len > h.len() {
            break;
        }
        if (kind == libc::RTM_NEWLINK || kind == libc::RTM_DELLINK) && len >= NLMSG_HDR + IFINFO {
            // struct ifinfomsg: family u8, pad u8, type u16, index i32, flags, change.
            let i = &h[NLMSG_HDR + 4..NLMSG_HDR + 8];
            f(u32::from_ne_bytes([i[0], i[1], i[2], i[3]]));
            n += 1;
        }
        // Messages are aligned to 4 bytes (NLMSG_ALIGN).
        at += len.div_ceil(4) * 4;
        if at > buf.len() {
            break;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parse_and_display_round_trip() {
        let m = Mac::parse("02:5d:0a:Bc:00:ff").unwrap();
        assert_eq!(m.0, [0x02, 0x5d, 0x0a, 0xbc, 0x00, 0xff]);
        assert_eq!(m.to_string(), "02:5d:0a:bc:00:ff");
        assert_eq!(Mac::parse("02-5d-0a-bc-00-ff"), Some(m));
        assert_eq!(Mac::parse("02:5d:0a:bc:00"), None);
        assert_eq!(Mac::parse("02:5d:0a:bc:00:ff:11"), None);
        assert_eq!(Mac::parse("2:5d:0a:bc:00:ff"), None);
        assert_eq!(Mac::parse("zz:5d:0a:bc:00:ff"), None);
    }

    #[test]
    fn derived_mac_is_local_stable_and_distinct() {
        let a = Mac::derived("lan0", "tap-a");
        assert!(a.is_local_unicast());
        assert_eq!(a, Mac::derived("lan0", "tap-a"));
        assert_ne!(a, Mac::derived("lan1", "tap-a"));
        assert_ne!(a, Mac::derived("lan0", "tap-b"));
        // Name boundaries matter: ("ab", "c") and ("a", "bc") differ.
        assert_ne!(Mac::derived("ab", "c"), Mac::derived("a", "bc"));
    }

    #[test]
    fn ifname_checks() {
        assert!(check_ifname("eth0").is_ok());
        assert!(check_ifname("veth-ra").is_ok());
        assert!(check_ifname("").is_err());
        assert!(check_ifname("abcdefghijklmnop").is_err());
        assert!(check_ifname("abcdefghijklmno").is_ok());
        assert!(check_ifname("a/b").is_err());
        assert!(check_ifname("a b").is_err());
        assert!(check_ifname("a:1").is_err());
    }

    #[test]
    fn missing_interface_is_named_in_the_error() {
        // Interface look-ups need no privilege.
        let e = resolve("lan0", "sdnoexist9").unwrap_err();
        assert_eq!(
            e.to_string(),
            "port lan0: interface sdnoexist9 does not exist"
        );
        let e = resolve("lan0", "bad/name").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("port lan0: invalid interface name"),
            "{e}"
        );
    }

    #[test]
    fn loopback_is_visible() {
        assert_eq!(ifindex("lo").unwrap(), 1);
        assert!(is_up("lo").unwrap());
        // Loopback has no ethtool link state: IFF_RUNNING answers, and it is running.
        assert!(carrier("lo").unwrap());
        assert!(carrier("no-such-if0").is_err());
        assert_eq!(hwaddr("lo").unwrap(), Mac([0; 6]));
        assert!(mtu("lo").unwrap() >= 1500);
    }
    fn nlmsg(kind: u16, index: u32, extra: usize) -> Vec<u8> {
        let len = 16 + 16 + extra;
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 10]); // flags, seq, pid
        m.extend_from_slice(&[0, 0, 1, 0]); // family, pad, type
        m.extend_from_slice(&index.to_ne_bytes());
        m.extend_from_slice(&[0; 8]); // flags, change
        m.resize(len, 0xab); // attributes
        m.resize(len.div_ceil(4) * 4, 0);
        m
    }

    #[test]
    fn link_messages_finds_each_links_index_and_skips_the_rest() {
        let mut buf = nlmsg(libc::RTM_NEWLINK, 7, 3);
        buf.extend(nlmsg(libc::RTM_NEWADDR, 9, 8));
        buf.extend(nlmsg(libc::RTM_DELLINK, 4, 0));
        let mut seen = Vec::new();
        assert_eq!(link_messages(&buf, |i| seen.push(i)), 2);
        assert_eq!(seen, vec![7, 4]);
        // Truncated anywhere: what fits is read, nothing panics.
        for cut in 0..buf.len() {
            let mut seen = Vec::new();
            link_messages(&buf[..cut], |i| seen.push(i));
            assert!(seen.len() <= 2 && seen.iter().all(|&i| i == 7 || i == 4));
        }
        // A length below the header's stops the walk instead of looping.
        let mut bad = nlmsg(libc::RTM_NEWLINK, 1, 0);
        bad[..4].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(link_messages(&bad, |_| ()), 0);
    }

    proptest::proptest! {
        #[test]
        fn link_messages_never_panics(buf in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let mut n = 0;
            let found = link_messages(&buf, |_| n += 1);
            proptest::prop_assert_eq!(found, n);
            proptest::prop_assert!(n <= buf.len() / 32);
        }
    }

    #[test]
    fn link_events_open_without_privilege_and_time_out_quietly() {
        let mut ev = LinkEvents::open().expect("rtnetlink socket");
        // Nothing changes on this machine in 10 ms (usually): the wait returns.
        let t0 = std::time::Instant::now();
        let _ = ev
            .wait(std::time::Duration::from_millis(10), |_| ())
            .unwrap();
        assert!(t0.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn a_stop_ends_a_wait_at_once() {
        let mut ev = LinkEvents::open().expect("rtnetlink socket");
        let stop = ev.stopper();
        let t0 = std::time::Instant::now();
        let waiter = std::thread::spawn(move || {
            let calls = std::cell::Cell::new(0);
            let r = ev.wait(std::time::Duration::from_secs(30), |_| {
                calls.set(calls.get() + 1)
            });
            (r.unwrap(), calls.get(), ev)
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        stop.stop();
        let (any, calls, mut ev) = waiter.join().unwrap();
        assert!(!any && calls == 0);
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t0.elapsed()
        );
        // Later waits end at once too.
        let t1 = std::time::Instant::now();
        assert!(!ev.wait(std::time::Duration::from_secs(30), |_| ()).unwrap());
        assert!(t1.elapsed() < std::time::Duration::from_secs(5));
    }
    /// A veth end losing and regaining its carrier is announced with its index.
    #[test]
    fn link_events_announce_a_peer_going_down_and_up() {
        use crate::port::testnet::{Netns, wait_carrier};
        let Some(ns) = Netns::new_or_skip("linkev") else {
            return;
        };
        ns.veth("e0", "e1", true);
        ns.run(|| {
            wait_carrier("e0", true);
            let idx = ifindex("e0").unwrap();
            let mut ev = LinkEvents::open().unwrap();
            for state in ["down", "up"] {
                ns.ip(&["link", "set", "e1", state]);
                let t0 = std::time::Instant::now();
                let mut seen = false;
                while !seen && t0.elapsed() < std::time::Duration::from_secs(2) {
                    ev.wait(std::time::Duration::from_millis(100), |i| {
                        seen |= i == Some(idx)
                    })
                    .unwrap();
                }
                assert!(seen, "no link message for e0 after e1 went {state}");
                assert_eq!(carrier("e0").unwrap(), state == "up");
            }
        });
    }
}
