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
    // every SIOC*IF* request used in this module; the kernel writes at most sizeof(ifreq).
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
        assert_eq!(hwaddr("lo").unwrap(), Mac([0; 6]));
        assert!(mtu("lo").unwrap() >= 1500);
    }
}
