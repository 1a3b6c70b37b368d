//! Why the fast path dropped a packet. Every drop is counted under one of these.

use crate::wire::ParseError;

/// Reasons for dropping a packet on the fast path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The packet failed a header check (truncated, bad version, length, checksum …).
    Parse(ParseError),
    /// IPv4 TTL or IPv6 hop limit was 0 or 1 on arrival.
    TtlExpired,
    /// No IPv4 route covers the destination.
    NoRouteV4,
    /// No IPv6 route covers the destination.
    NoRouteV6,
    /// An EtherType the forwarding plane does not route (not IPv4, IPv6 or NSH).
    UnsupportedEthertype,
    /// ARP arriving at a port without IPv4 addresses (nothing to answer for).
    ArpNotHandled,
    /// The packet is larger than the egress port's MTU (no fragmentation is done).
    MtuExceeded,
    /// The egress queue stayed full; lower priorities are dropped first.
    TxFull,
    /// The egress port's rate limit (`tx_rate_mbps`) had no room for the packet.
    TxRate,
    /// The next hop names a port that does not exist (a configuration race on reload).
    BadEgressPort,
    /// The steering header could not be removed (frame shorter than its headers claim).
    NshStripFailed,
    /// Addressed to the router (one of its addresses, broadcast, link-local multicast)
    /// but not a service it offers (only ARP, neighbour discovery and echo are).
    LocalNotHandled,
    /// The ring to the control plane was full (ARP, ND, echo, packets waiting for a
    /// neighbour's MAC).
    SlowPathFull,
    /// A unicast frame for another MAC address (a router routes only frames sent to it).
    NotOurMac,
}

/// Number of reasons that are not parse errors.
const OTHER: usize = 13;

impl DropReason {
    /// Number of distinct reasons (parse errors included).
    pub const COUNT: usize = ParseError::ALL.len() + OTHER;

    /// A dense index in `0..COUNT`, for counter arrays.
    #[inline]
    pub fn index(self) -> usize {
        const P: usize = ParseError::ALL.len();
        match self {
            DropReason::Parse(p) => p as usize,
            DropReason::TtlExpired => P,
            DropReason::NoRouteV4 => P + 1,
            DropReason::NoRouteV6 => P + 2,
            DropReason::UnsupportedEthertype => P + 3,
            DropReason::ArpNotHandled => P + 4,
            DropReason::MtuExceeded => P + 5,
            DropReason::TxFull => P + 6,
            DropReason::BadEgressPort => P + 7,
            DropReason::NshStripFailed => P + 8,
            DropReason::LocalNotHandled => P + 9,
            DropReason::SlowPathFull => P + 10,
            DropReason::NotOurMac => P + 11,
            DropReason::TxRate => P + 12,
        }
    }

    /// The reason with the given index.
    pub fn from_index(i: usize) -> Option<DropReason> {
        let p = ParseError::ALL.len();
        if i < p {
            return Some(DropReason::Parse(ParseError::ALL[i]));
        }
        Some(match i - p {
            0 => DropReason::TtlExpired,
            1 => DropReason::NoRouteV4,
            2 => DropReason::NoRouteV6,
            3 => DropReason::UnsupportedEthertype,
            4 => DropReason::ArpNotHandled,
            5 => DropReason::MtuExceeded,
            6 => DropReason::TxFull,
            7 => DropReason::BadEgressPort,
            8 => DropReason::NshStripFailed,
            9 => DropReason::LocalNotHandled,
            10 => DropReason::SlowPathFull,
            11 => DropReason::NotOurMac,
            12 => DropReason::TxRate,
            _ => return None,
        })
    }

    /// Stable snake_case name (JSON keys, metrics labels).
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Parse(p) => p.as_str(),
            DropReason::TtlExpired => "ttl_expired",
            DropReason::NoRouteV4 => "no_route_v4",
            DropReason::NoRouteV6 => "no_route_v6",
            DropReason::UnsupportedEthertype => "unsupported_ethertype",
            DropReason::ArpNotHandled => "arp_not_handled",
            DropReason::MtuExceeded => "mtu_exceeded",
            DropReason::TxFull => "tx_full",
            DropReason::BadEgressPort => "bad_egress_port",
            DropReason::NshStripFailed => "nsh_strip_failed",
            DropReason::LocalNotHandled => "local_not_handled",
            DropReason::SlowPathFull => "slowpath_full",
            DropReason::NotOurMac => "not_our_mac",
            DropReason::TxRate => "tx_rate",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_dense_and_round_trip() {
        let mut names = std::collections::HashSet::new();
        for i in 0..DropReason::COUNT {
            let r = DropReason::from_index(i).unwrap();
            assert_eq!(r.index(), i);
            assert!(names.insert(r.as_str()), "duplicate name {}", r.as_str());
        }
        assert!(DropReason::from_index(DropReason::COUNT).is_none());
    }
}
