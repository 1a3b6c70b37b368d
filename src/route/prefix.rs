//! [`Prefix`]: an IPv4 or IPv6 CIDR prefix in canonical form (cold; config and files).
//!
//! Invariant: `len` ≤ 32 (IPv4) or ≤ 128 (IPv6), and every bit of `addr` beyond `len` is
//! zero. Parsing rejects anything else with a message saying how to fix it, rather than
//! masking silently: a route written `10.0.0.1/8` is more likely a typo than a wish.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use thiserror::Error;

/// Why a text is not a prefix, or an address and length are not a canonical prefix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PrefixError {
    /// No `/LENGTH` part.
    #[error("missing \"/LENGTH\" (write {addr}/{host_len} for a single host)")]
    MissingLength {
        /// The address given.
        addr: IpAddr,
        /// 32 or 128.
        host_len: u8,
    },
    /// The part before `/` is not an address.
    #[error("\"{text}\" is not an IPv4 or IPv6 address")]
    BadAddress {
        /// The address part.
        text: String,
    },
    /// The part after `/` is not a number.
    #[error("prefix length \"{text}\" is not a number")]
    BadLength {
        /// The length part.
        text: String,
    },
    /// The length is longer than the address.
    #[error("prefix length /{len} is longer than /{max}, the longest {family} prefix")]
    LengthTooLong {
        /// Length given.
        len: u32,
        /// 32 or 128.
        max: u8,
        /// "IPv4" or "IPv6".
        family: &'static str,
    },
    /// Bits beyond the length are set.
    #[error("host bits set (did you mean {canonical}?)")]
    HostBitsSet {
        /// The prefix with the host bits cleared.
        canonical: Prefix,
    },
}

/// An IPv4 or IPv6 prefix, `ADDR/LEN`, with the host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

const fn max_len(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn family(addr: &IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

/// `addr` with the bits beyond `len` cleared (`len` ≤ the address length).
fn masked(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

impl Prefix {
    /// `addr/len`, checked: `len` fits the address family and the host bits are zero.
    pub fn new(addr: IpAddr, len: u8) -> Result<Prefix, PrefixError> {
        let max = max_len(&addr);
        if len > max {
            return Err(PrefixError::LengthTooLong {
                len: u32::from(len),
                max,
                family: family(&addr),
            });
        }
        let canonical = Prefix {
            addr: masked(addr, len),
            len,
        };
        if canonical.addr != addr {
            return Err(PrefixError::HostBitsSet { canonical });
        }
        Ok(canonical)
    }

    /// `addr/len` with the host bits cleared (`len` is clamped to the address length).
    pub fn new_masked(addr: IpAddr, len: u8) -> Prefix {
        let len = len.min(max_len(&addr));
        Prefix {
            addr: masked(addr, len),
            len,
        }
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// True for an IPv4 prefix.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// True when `addr` (of the same family) lies inside the prefix.
    pub fn contains(&self, addr: IpAddr) -> bool {
        addr.is_ipv4() == self.addr.is_ipv4() && masked(addr, self.len) == self.addr
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Prefix, PrefixError> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| PrefixError::BadAddress {
            text: a.to_string(),
        })?;
        let Some(l) = l else {
            return Err(PrefixError::MissingLength {
                addr,
                host_len: max_len(&addr),
            });
        };
        // Digits only: "u32::from_str" would accept "+8".
        if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PrefixError::BadLength {
                text: l.to_string(),
            });
        }
        let max = max_len(&addr);
        let len = match l.parse::<u32>() {
            Ok(n) if n <= u32::from(max) => n as u8,
            Ok(n) => {
                return Err(PrefixError::LengthTooLong {
                    len: n,
                    max,
                    family: family(&addr),
                });
            }
            Err(_) => {
                return Err(PrefixError::LengthTooLong {
                    len: u32::MAX,
                    max,
                    family: family(&addr),
                });
            }
        };
        Prefix::new(addr, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_and_display() {
        for s in [
            "10.0.0.0/8",
            "0.0.0.0/0",
            "192.0.2.1/32",
            "2001:db8::/32",
            "::/0",
        ] {
            let p: Prefix = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
        }
        let p: Prefix = "10.1.0.0/16".parse().unwrap();
        assert!(p.is_ipv4());
        assert_eq!(p.prefix_len(), 16);
        assert!(p.contains("10.1.200.3".parse().unwrap()));
        assert!(!p.contains("10.2.0.0".parse().unwrap()));
        assert!(!p.contains("::1".parse().unwrap()));
    }

    #[test]
    fn errors_say_what_to_do() {
        let e = |s: &str| s.parse::<Prefix>().unwrap_err().to_string();
        assert_eq!(e("10.0.0.1/8"), "host bits set (did you mean 10.0.0.0/8?)");
        assert_eq!(
            e("2001:db8::1/32"),
            "host bits set (did you mean 2001:db8::/32?)"
        );
        assert_eq!(
            e("10.0.0.1"),
            "missing \"/LENGTH\" (write 10.0.0.1/32 for a single host)"
        );
        assert_eq!(e("10.0.0/8"), "\"10.0.0\" is not an IPv4 or IPv6 address");
        assert_eq!(e("10.0.0.0/x"), "prefix length \"x\" is not a number");
        assert_eq!(e("10.0.0.0/+8"), "prefix length \"+8\" is not a number");
        assert_eq!(e("10.0.0.0/"), "prefix length \"\" is not a number");
        assert_eq!(
            e("10.0.0.0/33"),
            "prefix length /33 is longer than /32, the longest IPv4 prefix"
        );
        assert_eq!(
            e("::/99999999999"),
            format!(
                "prefix length /{} is longer than /128, the longest IPv6 prefix",
                u32::MAX
            )
        );
    }

    #[test]
    fn masked_constructor() {
        let p = Prefix::new_masked("10.1.2.3".parse().unwrap(), 8);
        assert_eq!(p.to_string(), "10.0.0.0/8");
        let p = Prefix::new_masked("2001:db8::1".parse().unwrap(), 200);
        assert_eq!(p.to_string(), "2001:db8::1/128");
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(a in any::<u32>(), b in any::<u128>(), l4 in 0u8..=32, l6 in 0u8..=128) {
            for p in [
                Prefix::new_masked(IpAddr::V4(Ipv4Addr::from(a)), l4),
                Prefix::new_masked(IpAddr::V6(Ipv6Addr::from(b)), l6),
            ] {
                prop_assert_eq!(p.to_string().parse::<Prefix>(), Ok(p));
            }
        }
    }
}
