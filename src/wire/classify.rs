//! The fast-path parser: one pass over a received frame into a fixed-size
//! [`Classified`], or a [`ParseError`] naming why the frame is dropped.
//!
//! **Hot.** Every received frame goes through [`classify`] exactly once. It allocates
//! nothing, never panics (every read is bounds-checked; fuzzed by `fuzz/classify`), and
//! reads each header byte at most a couple of times.
//!
//! The walk:
//!
//! ```text
//! Ethernet ─► 0–2 VLAN tags (0x8100 / 0x88a8) ─┬─ IPv4 ─┐
//!                                              ├─ IPv6 ─┼─► L4 ports (TCP, UDP, SCTP)
//!                                              ├─ NSH ──┘   unless a fragment
//!                                              │   (inner IPv4/IPv6 only)
//!                                              ├─ ARP
//!                                              └─ anything else: L3::Other(ethertype)
//! ```
//!
//! What is validated: IPv4 version, IHL, Total Length against the frame and the header
//! checksum; IPv6 version, Payload Length against the frame and the whole
//! extension-header chain ([`ipv6::Packet::upper_layer`]); that the L4 header is
//! present (TCP 20 bytes, UDP 8, SCTP 12, ICMP/ICMPv6 8) within the IP payload; the NSH
//! base header and every MD Type 2 TLV. Not validated: L4 checksums and L4 header
//! fields beyond their length (a forwarder does not need them).
//!
//! Fragments: `is_fragment` is set for every IPv4/IPv6 fragment, first or not, and no
//! fragment gets ports or an `l4_off`, so all fragments of a datagram have the same
//! 5-tuple (ports 0) and hence the same `flow_hash`.

use core::fmt;

use super::checksum;
use super::ethernet::{self, ethertype};
use super::ipv4::protocol;
use super::ipv6::{self, next_header};
use super::nsh::{self, SteeringError, SteeringRepr};
use super::{arp, be16};

/// At most this many VLAN tags are skipped (802.1ad S-tag + 802.1Q C-tag).
pub const MAX_VLAN_TAGS: usize = 2;

/// Network layer of the (inner, if NSH) packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L3 {
    /// IPv4, header validated.
    Ipv4,
    /// IPv6, header and extension headers validated.
    Ipv6,
    /// ARP, at least the 28 bytes of an Ethernet/IPv4 ARP packet present.
    Arp,
    /// Any other EtherType (not an error: LLDP, MPLS, ... are the caller's to count).
    Other(u16),
}

/// Why [`classify`] rejected a frame. Fieldless and `repr(u8)`, so it indexes a
/// per-core counter array directly (`err as usize`); [`as_str`](Self::as_str) is the
/// stable metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ParseError {
    /// Shorter than the 14-byte Ethernet header.
    TruncatedEthernet,
    /// A VLAN TPID without the 4 bytes of tag that must follow.
    TruncatedVlan,
    /// More than [`MAX_VLAN_TAGS`] VLAN tags.
    TooManyVlans,
    /// Shorter than the 20-byte IPv4 header, or than its IHL.
    TruncatedIpv4,
    /// EtherType IPv4 but version is not 4.
    BadIpv4Version,
    /// IHL below 5.
    BadIpv4Ihl,
    /// Total Length below the header length or beyond the frame.
    BadIpv4TotalLen,
    /// The IPv4 header checksum does not verify.
    BadIpv4Checksum,
    /// Shorter than the 40-byte IPv6 header.
    TruncatedIpv6,
    /// EtherType IPv6 but version is not 6.
    BadIpv6Version,
    /// Payload Length beyond the frame.
    BadIpv6PayloadLen,
    /// An extension header overruns the payload, Hop-by-Hop is not first, or the
    /// chain is longer than [`ipv6::MAX_EXT_HEADERS`].
    BadIpv6ExtHeader,
    /// The TCP/UDP/SCTP/ICMP header is cut short by the IP payload's end.
    TruncatedL4,
    /// Shorter than an Ethernet/IPv4 ARP packet.
    TruncatedArp,
    /// NSH base header or context TLVs malformed or truncated.
    BadNsh,
    /// NSH Next Protocol other than IPv4 or IPv6 (Ethernet, MPLS, NSH, unknown).
    NshUnsupportedNext,
}

impl ParseError {
    /// Every variant, in discriminant order (`ALL[e as usize] == e`).
    pub const ALL: [ParseError; 16] = [
        ParseError::TruncatedEthernet,
        ParseError::TruncatedVlan,
        ParseError::TooManyVlans,
        ParseError::TruncatedIpv4,
        ParseError::BadIpv4Version,
        ParseError::BadIpv4Ihl,
        ParseError::BadIpv4TotalLen,
        ParseError::BadIpv4Checksum,
        ParseError::TruncatedIpv6,
        ParseError::BadIpv6Version,
        ParseError::BadIpv6PayloadLen,
        ParseError::BadIpv6ExtHeader,
        ParseError::TruncatedL4,
        ParseError::TruncatedArp,
        ParseError::BadNsh,
        ParseError::NshUnsupportedNext,
    ];

    /// Number of variants.
    pub const COUNT: usize = Self::ALL.len();

    /// Stable snake_case name, used as a metrics label. Never change a name: dashboards
    /// and alerts key on it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ParseError::TruncatedEthernet => "truncated_ethernet",
            ParseError::TruncatedVlan => "truncated_vlan",
            ParseError::TooManyVlans => "too_many_vlans",
            ParseError::TruncatedIpv4 => "truncated_ipv4",
            ParseError::BadIpv4Version => "bad_ipv4_version",
            ParseError::BadIpv4Ihl => "bad_ipv4_ihl",
            ParseError::BadIpv4TotalLen => "bad_ipv4_total_len",
            ParseError::BadIpv4Checksum => "bad_ipv4_checksum",
            ParseError::TruncatedIpv6 => "truncated_ipv6",
            ParseError::BadIpv6Version => "bad_ipv6_version",
            ParseError::BadIpv6PayloadLen => "bad_ipv6_payload_len",
            ParseError::BadIpv6ExtHeader => "bad_ipv6_ext_header",
            ParseError::TruncatedL4 => "truncated_l4",
            ParseError::TruncatedArp => "truncated_arp",
            ParseError::BadNsh => "bad_nsh",
            ParseError::NshUnsupportedNext => "nsh_unsupported_next",
        }
    }

    /// Index for counter arrays (same as `self as usize`).
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ParseError::TruncatedEthernet => "frame shorter than an Ethernet header",
            ParseError::TruncatedVlan => "truncated VLAN tag",
            ParseError::TooManyVlans => "more than two VLAN tags",
            ParseError::TruncatedIpv4 => "truncated IPv4 header",
            ParseError::BadIpv4Version => "IPv4 EtherType with IP version other than 4",
            ParseError::BadIpv4Ihl => "IPv4 header length below 20 bytes",
            ParseError::BadIpv4TotalLen => {
                "IPv4 total length below the header length or beyond the frame"
            }
            ParseError::BadIpv4Checksum => "bad IPv4 header checksum",
            ParseError::TruncatedIpv6 => "truncated IPv6 header",
            ParseError::BadIpv6Version => "IPv6 EtherType with IP version other than 6",
            ParseError::BadIpv6PayloadLen => "IPv6 payload length beyond the frame",
            ParseError::BadIpv6ExtHeader => "malformed IPv6 extension header chain",
            ParseError::TruncatedL4 => "truncated transport header",
            ParseError::TruncatedArp => "truncated ARP packet",
            ParseError::BadNsh => "malformed NSH header",
            ParseError::NshUnsupportedNext => "NSH next protocol other than IPv4/IPv6",
        };
        write!(f, "{text} ({})", self.as_str())
    }
}

impl std::error::Error for ParseError {}

/// What [`classify`] learned about a frame. All `Copy`, fixed size; offsets are from
/// the start of the frame.
///
/// Invariants (checked by the `classify` fuzz target):
/// - `l2_len ≤ l3_off ≤ frame.len()`, and `l3_off == l2_len + nsh_len`;
/// - `l4_off == 0` or `l3_off < l4_off ≤ frame.len()`; `l4_off == 0` for fragments,
///   non-IP packets and IPv6 No Next Header;
/// - ports are 0 unless `proto` is TCP, UDP or SCTP and `l4_off != 0`;
/// - `src_v4`/`dst_v4` are 0 unless `l3 == Ipv4`, `src_v6`/`dst_v6` unless `Ipv6`;
/// - `nsh.is_some()` implies `nsh_present`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Classified {
    /// Ethernet header plus VLAN tags.
    pub l2_len: u16,
    /// Outer VLAN id, if tagged.
    pub vlan: Option<u16>,
    /// EtherType after the VLAN tags (0x894f when NSH).
    pub ethertype: u16,
    /// Network layer of the (inner, if NSH) packet.
    pub l3: L3,
    /// The steering header, when NSH carried steerd's TLV (not yet authenticated).
    pub nsh: Option<SteeringRepr>,
    /// True when a well-formed NSH header was present, with or without steerd's TLV;
    /// `nsh_present && nsh.is_none()` is the "NSH without steering TLV" count.
    pub nsh_present: bool,
    /// Bytes of NSH header (0 if none).
    pub nsh_len: u16,
    /// Offset of the IP (or ARP) header (after NSH if any).
    pub l3_off: u16,
    /// Offset of the L4 header (0 if none).
    pub l4_off: u16,
    /// IPv4 protocol or IPv6 upper-layer next header (0 when not IP).
    pub proto: u8,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// Any IPv4 or IPv6 fragment, first or not.
    pub is_fragment: bool,
    /// TCP/UDP/SCTP source port.
    pub src_port: u16,
    /// TCP/UDP/SCTP destination port.
    pub dst_port: u16,
    /// IPv4 destination, host byte order; 0 when not IPv4.
    pub dst_v4: u32,
    /// IPv4 source, host byte order; 0 when not IPv4.
    pub src_v4: u32,
    /// IPv6 destination; 0 when not IPv6.
    pub dst_v6: u128,
    /// IPv6 source; 0 when not IPv6.
    pub src_v6: u128,
    /// Hash of (src, dst, proto, src_port, dst_port): deterministic across runs and
    /// machines, direction-sensitive (A→B and B→A differ), not keyed (not meant to
    /// resist chosen-collision floods). 0 for non-IP frames.
    pub flow_hash: u32,
}

impl Classified {
    /// Nothing parsed (what [`classify_into`] resets its record to).
    pub const EMPTY: Classified = Classified {
        l2_len: 0,
        vlan: None,
        ethertype: 0,
        l3: L3::Other(0),
        nsh: None,
        nsh_present: false,
        nsh_len: 0,
        l3_off: 0,
        l4_off: 0,
        proto: 0,
        ttl: 0,
        is_fragment: false,
        src_port: 0,
        dst_port: 0,
        dst_v4: 0,
        src_v4: 0,
        dst_v6: 0,
        src_v6: 0,
        flow_hash: 0,
    };

    /// Source address, for IP packets.
    pub fn src_addr(&self) -> Option<std::net::IpAddr> {
        match self.l3 {
            L3::Ipv4 => Some(std::net::Ipv4Addr::from(self.src_v4).into()),
            L3::Ipv6 => Some(std::net::Ipv6Addr::from(self.src_v6).into()),
            _ => None,
        }
    }

    /// Destination address, for IP packets.
    pub fn dst_addr(&self) -> Option<std::net::IpAddr> {
        match self.l3 {
            L3::Ipv4 => Some(std::net::Ipv4Addr::from(self.dst_v4).into()),
            L3::Ipv6 => Some(std::net::Ipv6Addr::from(self.dst_v6).into()),
            _ => None,
        }
    }
}

/// Parses a received frame. See the module docs for what is walked and validated.
#[inline(always)]
pub fn classify(frame: &[u8]) -> Result<Classified, ParseError> {
    let mut c = Classified::EMPTY;
    classify_into::<true>(frame, &mut c).map(|()| c)
}

/// [`classify`] without the flow hash (`flow_hash` stays 0): the same checks, for a
/// caller that needs no hash (no ECMP route in the table: ~7 % of the LPM path).
#[inline(always)]
pub fn classify_no_hash(frame: &[u8]) -> Result<Classified, ParseError> {
    let mut c = Classified::EMPTY;
    classify_into::<false>(frame, &mut c).map(|()| c)
}

/// [`classify`] (`HASH`) or [`classify_no_hash`] into `c`, which is reset first: the
/// fast path's form. Returned by value, the record was copied out of the parser on
/// every packet (about 30 instructions, callgrind); written in place it is not. On an
/// error `c` holds what was parsed before it and must not be used.
#[inline(always)]
pub fn classify_into<const HASH: bool>(frame: &[u8], c: &mut Classified) -> Result<(), ParseError> {
    *c = Classified::EMPTY;
    let Some(eth) = frame.first_chunk::<{ ethernet::HEADER_LEN }>() else {
        return Err(ParseError::TruncatedEthernet);
    };
    let mut et = u16::from_be_bytes([eth[12], eth[13]]);
    let mut off = ethernet::HEADER_LEN;
    let mut tags = 0;
    while et == ethertype::VLAN || et == ethertype::QINQ {
        if tags == MAX_VLAN_TAGS {
            return Err(ParseError::TooManyVlans);
        }
        let t = frame
            .get(off..off + ethernet::VLAN_TAG_LEN)
            .ok_or(ParseError::TruncatedVlan)?;
        if tags == 0 {
            c.vlan = Some(be16(&t[0..2]) & 0x0fff);
        }
        et = be16(&t[2..4]);
        off += ethernet::VLAN_TAG_LEN;
        tags += 1;
    }
    // off <= 14 + 8
    c.l2_len = off as u16;
    c.ethertype = et;
    match et {
        ethertype::IPV4 => parse_ipv4::<HASH>(frame, off, c)?,
        ethertype::IPV6 => parse_ipv6::<HASH>(frame, off, c)?,
        ethertype::ARP => {
            if frame.len() < off + arp::PACKET_LEN {
                return Err(ParseError::TruncatedArp);
            }
            c.l3 = L3::Arp;
            c.l3_off = c.l2_len;
        }
        ethertype::NSH => parse_nsh::<HASH>(frame, off, c)?,
        other => {
            c.l3 = L3::Other(other);
            c.l3_off = c.l2_len;
        }
    }
    Ok(())
}

#[inline]
fn parse_nsh<const HASH: bool>(
    frame: &[u8],
    off: usize,
    c: &mut Classified,
) -> Result<(), ParseError> {
    let p = nsh::Packet::new_checked(frame.get(off..).unwrap_or_default())
        .map_err(|_| ParseError::BadNsh)?;
    c.nsh = match SteeringRepr::parse(&p) {
        Ok(r) => Some(r),
        Err(SteeringError::NoSteeringTlv) => None,
        Err(SteeringError::Malformed) => return Err(ParseError::BadNsh),
    };
    c.nsh_present = true;
    let hl = p.header_len(); // at most 63 * 4
    c.nsh_len = hl as u16;
    match p.next_protocol() {
        nsh::next_protocol::IPV4 => parse_ipv4::<HASH>(frame, off + hl, c),
        nsh::next_protocol::IPV6 => parse_ipv6::<HASH>(frame, off + hl, c),
        _ => Err(ParseError::NshUnsupportedNext),
    }
}

/// Converts an offset to the `u16` fields. Offsets are bounded well below 65536 by
/// construction (L2 ≤ 22, NSH ≤ 252, IPv4 header ≤ 60, IPv6 chain ≤ 8 × 2048 + 40), so
/// the fallback is unreachable; it exists so that no cast can wrap.
#[inline(always)]
fn off16(off: usize) -> u16 {
    u16::try_from(off).unwrap_or(u16::MAX)
}

#[inline(always)]
fn parse_ipv4<const HASH: bool>(
    frame: &[u8],
    off: usize,
    c: &mut Classified,
) -> Result<(), ParseError> {
    let rest = frame.get(off..).unwrap_or_default();
    let Some(h) = rest.first_chunk::<20>() else {
        return Err(ParseError::TruncatedIpv4);
    };
    if h[0] >> 4 != 4 {
        return Err(ParseError::BadIpv4Version);
    }
    let hl = usize::from(h[0] & 0x0f) * 4;
    if hl < 20 {
        return Err(ParseError::BadIpv4Ihl);
    }
    let Some(header) = rest.get(..hl) else {
        return Err(ParseError::TruncatedIpv4);
    };
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if total < hl || total > rest.len() {
        return Err(ParseError::BadIpv4TotalLen);
    }
    // No options (the usual header): the fixed-size sum.
    let sum = if hl == 20 {
        checksum::header20(h)
    } else {
        checksum::data(header)
    };
    if sum != 0xffff {
        return Err(ParseError::BadIpv4Checksum);
    }
    let proto = h[9];
    let is_fragment = u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0;
    c.l3 = L3::Ipv4;
    c.l3_off = off16(off);
    c.ttl = h[8];
    c.proto = proto;
    c.is_fragment = is_fragment;
    c.src_v4 = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
    c.dst_v4 = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
    if !is_fragment {
        parse_l4(rest.get(hl..total).unwrap_or_default(), off + hl, proto, c)?;
    }
    if HASH {
        c.flow_hash = flow_hash_v4(c.src_v4, c.dst_v4, proto, c.src_port, c.dst_port);
    }
    Ok(())
}

#[inline]
fn parse_ipv6<const HASH: bool>(
    frame: &[u8],
    off: usize,
    c: &mut Classified,
) -> Result<(), ParseError> {
    let rest = frame.get(off..).unwrap_or_default();
    let Some(h) = rest.first_chunk::<{ ipv6::HEADER_LEN }>() else {
        return Err(ParseError::TruncatedIpv6);
    };
    if h[0] >> 4 != 6 {
        return Err(ParseError::BadIpv6Version);
    }
    let end = ipv6::HEADER_LEN + usize::from(u16::from_be_bytes([h[4], h[5]]));
    let Some(packet) = rest.get(..end) else {
        return Err(ParseError::BadIpv6PayloadLen);
    };
    let (proto, l4_rel, is_fragment) = ipv6::Packet::new_unchecked(packet)
        .upper_layer()
        .map_err(|_| ParseError::BadIpv6ExtHeader)?;
    let mut a = [0u8; 16];
    a.copy_from_slice(&h[8..24]);
    c.src_v6 = u128::from_be_bytes(a);
    a.copy_from_slice(&h[24..40]);
    c.dst_v6 = u128::from_be_bytes(a);
    c.l3 = L3::Ipv6;
    c.l3_off = off16(off);
    c.ttl = h[7];
    c.proto = proto;
    c.is_fragment = is_fragment;
    if !is_fragment && proto != next_header::NO_NEXT_HEADER {
        parse_l4(
            packet.get(l4_rel..).unwrap_or_default(),
            off + l4_rel,
            proto,
            c,
        )?;
    }
    if HASH {
        c.flow_hash = flow_hash_v6(c.src_v6, c.dst_v6, proto, c.src_port, c.dst_port);
    }
    Ok(())
}

/// Records the L4 offset and, for TCP/UDP/SCTP, the ports. `l4` is the IP payload
/// from the L4 header to the end of the IP packet.
#[inline(always)]
fn parse_l4(l4: &[u8], l4_off: usize, proto: u8, c: &mut Classified) -> Result<(), ParseError> {
    let (min_len, has_ports) = match proto {
        protocol::TCP => (20, true),
        protocol::UDP => (8, true),
        protocol::SCTP => (12, true),
        protocol::ICMP | protocol::ICMPV6 => (8, false),
        _ => (0, false),
    };
    if l4.len() < min_len {
        return Err(ParseError::TruncatedL4);
    }
    c.l4_off = off16(l4_off);
    if has_ports {
        // min_len >= 8 for every protocol with ports
        c.src_port = be16(&l4[0..2]);
        c.dst_port = be16(&l4[2..4]);
    }
    Ok(())
}

/// Digits of π, as seeds.
const K: [u64; 4] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
];

/// Folded multiply: the 128-bit product's halves XORed (the core step of wyhash and
/// rapidhash). One `mul` on x86-64.
#[inline(always)]
fn fmix(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline(always)]
fn ports_proto(proto: u8, sp: u16, dp: u16) -> u64 {
    (u64::from(sp) << 32) | (u64::from(dp) << 16) | u64::from(proto)
}

#[inline(always)]
fn flow_hash_v4(src: u32, dst: u32, proto: u8, sp: u16, dp: u16) -> u32 {
    let a = ((u64::from(src) << 32) | u64::from(dst)) ^ K[0];
    let b = ports_proto(proto, sp, dp) ^ K[1];
    let h = fmix(fmix(a, b) ^ K[2], K[3]);
    (h ^ (h >> 32)) as u32
}

#[inline]
fn flow_hash_v6(src: u128, dst: u128, proto: u8, sp: u16, dp: u16) -> u32 {
    let s = fmix((src >> 64) as u64 ^ K[0], src as u64 ^ K[1]);
    let d = fmix((dst >> 64) as u64 ^ K[2], dst as u64 ^ K[3]);
    let p = ports_proto(proto, sp, dp) ^ K[1];
    let h = fmix(s ^ p, d ^ K[0]);
    let h = fmix(h ^ K[2], K[3]);
    (h ^ (h >> 32)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_hash_variant_differs_only_in_the_hash() {
        let mut n = 0;
        for r in PcapReader::new(testdata::PCAP).unwrap() {
            let r = r.unwrap();
            let a = classify(r.data);
            let b = classify_no_hash(r.data);
            match (a, b) {
                (Ok(mut a), Ok(b)) => {
                    assert_eq!(b.flow_hash, 0);
                    a.flow_hash = 0;
                    assert_eq!(a, b);
                    n += 1;
                }
                (Err(a), Err(b)) => assert_eq!(a, b),
                (a, b) => panic!("{a:?} vs {b:?}"),
            }
        }
        assert!(n > 0);
    }
    use crate::wire::ethernet::{Frame, MacAddr};
    use crate::wire::nsh::tests::{EXAMPLE, example_repr, steering_repr};
    use crate::wire::pcap::PcapReader;
    use crate::wire::{ipv4, tcp, testdata, udp};
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: [u8; 4]) -> u32 {
        u32::from(Ipv4Addr::from(a))
    }

    fn v6(s: &str) -> u128 {
        u128::from(s.parse::<Ipv6Addr>().unwrap())
    }

    /// Inserts tags (TPID, TCI) after the MAC addresses of a real frame.
    fn tagged(frame: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
        let mut v = frame[..12].to_vec();
        for &(tpid, tci) in tags {
            v.extend_from_slice(&tpid.to_be_bytes());
            v.extend_from_slice(&tci.to_be_bytes());
        }
        v.extend_from_slice(&frame[12..]);
        v
    }

    /// Encapsulates a real frame's IP packet in NSH (built per RFC 8300, not captured):
    /// Ethernet (ethertype 0x894f) + `nsh` header + the frame's L3 packet.
    fn nsh_encap(frame: &[u8], nsh_header: &[u8]) -> Vec<u8> {
        let mut v = frame[..12].to_vec();
        v.extend_from_slice(&ethertype::NSH.to_be_bytes());
        v.extend_from_slice(nsh_header);
        v.extend_from_slice(&frame[14..]);
        v
    }

    fn set_ipv4_total_len(frame: &mut [u8], l3_off: usize, total: u16) {
        let mut p = ipv4::Packet::new_unchecked(&mut frame[l3_off..]);
        p.set_total_len(total);
        p.fill_checksum();
    }

    #[test]
    fn ipv4_udp() {
        let c = classify(&testdata::IPV4_UDP_DNS).unwrap();
        assert_eq!(c.l2_len, 14);
        assert_eq!(c.vlan, None);
        assert_eq!(c.ethertype, ethertype::IPV4);
        assert_eq!(c.l3, L3::Ipv4);
        assert_eq!((c.nsh, c.nsh_present, c.nsh_len), (None, false, 0));
        assert_eq!((c.l3_off, c.l4_off), (14, 34));
        assert_eq!((c.proto, c.ttl, c.is_fragment), (17, 64, false));
        assert_eq!((c.src_port, c.dst_port), (47645, 53));
        assert_eq!((c.src_v4, c.dst_v4), (v4([10, 9, 0, 1]), v4([10, 9, 0, 2])));
        assert_eq!((c.src_v6, c.dst_v6), (0, 0));
        assert_eq!(c.src_addr(), Some(Ipv4Addr::new(10, 9, 0, 1).into()));
        assert_ne!(c.flow_hash, 0);
    }

    #[test]
    fn ipv4_tcp_and_icmp() {
        let c = classify(&testdata::IPV4_TCP_SYN).unwrap();
        assert_eq!(
            (c.proto, c.src_port, c.dst_port, c.l4_off),
            (6, 47154, 80, 34)
        );
        let c = classify(&testdata::IPV4_ICMP_ECHO_REQUEST).unwrap();
        assert_eq!((c.proto, c.src_port, c.dst_port, c.l4_off), (1, 0, 0, 34));
        // Ethernet padding after Total Length is fine
        let mut b = testdata::IPV4_TCP_RST.to_vec();
        b.extend_from_slice(&[0; 6]);
        assert_eq!(classify(&b).unwrap().dst_port, 47154);
    }

    #[test]
    fn ipv6_udp_tcp_icmp() {
        let c = classify(&testdata::IPV6_UDP_DNS).unwrap();
        assert_eq!(c.l3, L3::Ipv6);
        assert_eq!((c.l3_off, c.l4_off, c.proto, c.ttl), (14, 54, 17, 64));
        assert_eq!((c.src_port, c.dst_port), (36949, 53));
        assert_eq!((c.src_v6, c.dst_v6), (v6("fd00:9::1"), v6("fd00:9::2")));
        assert_eq!((c.src_v4, c.dst_v4), (0, 0));
        let c = classify(&testdata::IPV6_TCP_SYN).unwrap();
        assert_eq!((c.proto, c.src_port, c.dst_port), (6, 41060, 80));
        let c = classify(&testdata::IPV6_NEIGHBOR_SOLICIT).unwrap();
        assert_eq!((c.proto, c.ttl, c.l4_off, c.src_port), (58, 255, 54, 0));
        assert_eq!(c.dst_v6, v6("ff02::1:ff00:2"));
    }

    #[test]
    fn ipv6_extension_headers() {
        let c = classify(&testdata::IPV6_HBH_DSTOPT_UDP).unwrap();
        assert_eq!(
            (c.proto, c.l4_off, c.src_port, c.dst_port),
            (17, 14 + 56, 33673, 4789)
        );
        let c = classify(&testdata::IPV6_MLD_HBH).unwrap();
        assert_eq!((c.proto, c.l4_off, c.ttl), (58, 14 + 48, 1));
        assert_eq!(c.src_v6, 0, "MLD from the unspecified address");
    }

    #[test]
    fn arp() {
        let c = classify(&testdata::ARP_REQUEST).unwrap();
        assert_eq!(c.l3, L3::Arp);
        assert_eq!(
            (c.l3_off, c.l4_off, c.ethertype, c.flow_hash),
            (14, 0, ethertype::ARP, 0)
        );
        assert_eq!(c.src_addr(), None);
    }

    #[test]
    fn other_ethertype_is_not_an_error() {
        // LLDP
        let mut b = testdata::ARP_REQUEST;
        b[12..14].copy_from_slice(&0x88ccu16.to_be_bytes());
        let c = classify(&b).unwrap();
        assert_eq!(c.l3, L3::Other(0x88cc));
        assert_eq!((c.l3_off, c.l4_off, c.flow_hash), (14, 0, 0));
        // header only
        assert_eq!(classify(&b[..14]).unwrap().l3, L3::Other(0x88cc));
    }

    #[test]
    fn real_fragments_share_a_flow() {
        let recs: Vec<_> = PcapReader::new(testdata::PCAP)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let f1 = classify(recs[testdata::record::IPV4_FRAG_FIRST].data).unwrap();
        let f2 = classify(recs[testdata::record::IPV4_FRAG_LAST].data).unwrap();
        assert!(f1.is_fragment && f2.is_fragment);
        assert_eq!((f1.l4_off, f1.src_port, f2.l4_off), (0, 0, 0));
        assert_eq!(f1.flow_hash, f2.flow_hash);
        let g1 = classify(recs[testdata::record::IPV6_FRAG_FIRST].data).unwrap();
        let g2 = classify(recs[testdata::record::IPV6_FRAG_LAST].data).unwrap();
        assert!(g1.is_fragment && g2.is_fragment);
        assert_eq!((g1.proto, g2.proto), (58, 58));
        assert_eq!((g1.l4_off, g2.l4_off), (0, 0));
        assert_eq!(g1.flow_hash, g2.flow_hash);
    }

    #[test]
    fn whole_capture_classifies() {
        let mut n = 0;
        for r in PcapReader::new(testdata::PCAP).unwrap() {
            let r = r.unwrap();
            let c = classify(r.data).unwrap();
            assert!(matches!(c.l3, L3::Ipv4 | L3::Ipv6 | L3::Arp));
            n += 1;
        }
        assert_eq!(n, testdata::record::COUNT);
    }

    #[test]
    fn vlan_and_qinq() {
        // Built from the real DNS query: one C-tag (PCP 5, VID 100)
        let b = tagged(&testdata::IPV4_UDP_DNS, &[(ethertype::VLAN, 0xa064)]);
        let c = classify(&b).unwrap();
        assert_eq!(
            (c.l2_len, c.vlan, c.ethertype),
            (18, Some(100), ethertype::IPV4)
        );
        assert_eq!((c.l3_off, c.l4_off, c.dst_port), (18, 38, 53));
        // S-tag 200 + C-tag 30: the outer id is reported
        let b = tagged(
            &testdata::IPV6_UDP_DNS,
            &[(ethertype::QINQ, 200), (ethertype::VLAN, 30)],
        );
        let c = classify(&b).unwrap();
        assert_eq!(
            (c.l2_len, c.vlan, c.ethertype, c.l3),
            (22, Some(200), ethertype::IPV6, L3::Ipv6)
        );
        assert_eq!((c.l4_off, c.dst_port), (22 + 40, 53));
        // same flow hash with or without tags
        assert_eq!(
            c.flow_hash,
            classify(&testdata::IPV6_UDP_DNS).unwrap().flow_hash
        );
    }

    #[test]
    fn nsh_with_steering_tlv() {
        let b = nsh_encap(&testdata::IPV4_UDP_DNS, &EXAMPLE);
        let c = classify(&b).unwrap();
        assert_eq!(c.ethertype, ethertype::NSH);
        assert_eq!(c.nsh, Some(example_repr()));
        assert!(c.nsh_present);
        assert_eq!((c.nsh_len, c.l3_off, c.l4_off), (32, 46, 66));
        assert_eq!((c.l3, c.src_port, c.dst_port), (L3::Ipv4, 47645, 53));
        assert_eq!(
            c.flow_hash,
            classify(&testdata::IPV4_UDP_DNS).unwrap().flow_hash
        );

        // IPv6 inside, behind a VLAN tag
        let mut hdr = EXAMPLE;
        hdr[3] = nsh::next_protocol::IPV6;
        let b = tagged(
            &nsh_encap(&testdata::IPV6_TCP_SYN, &hdr),
            &[(ethertype::VLAN, 7)],
        );
        let c = classify(&b).unwrap();
        assert_eq!(
            (c.vlan, c.l2_len, c.l3_off, c.l3),
            (Some(7), 18, 50, L3::Ipv6)
        );
        assert_eq!(
            c.nsh.map(|n| n.next_protocol),
            Some(nsh::next_protocol::IPV6)
        );
        assert_eq!(c.dst_port, 80);
    }

    #[test]
    fn nsh_without_steering_tlv() {
        // MD type 1: length 6 words, 16 bytes of opaque fixed context
        let mut hdr = [0u8; 24];
        hdr[..8].copy_from_slice(&EXAMPLE[..8]);
        hdr[1] = (hdr[1] & 0xc0) | 6;
        hdr[2] = nsh::MD_TYPE_1;
        let b = nsh_encap(&testdata::IPV4_TCP_SYN, &hdr);
        let c = classify(&b).unwrap();
        assert!(c.nsh_present && c.nsh.is_none());
        assert_eq!((c.nsh_len, c.l3_off, c.dst_port), (24, 38, 80));
        // MD type 2 with a foreign TLV only
        let mut hdr = EXAMPLE;
        hdr[8..10].copy_from_slice(&0x0000u16.to_be_bytes());
        let c = classify(&nsh_encap(&testdata::IPV4_TCP_SYN, &hdr)).unwrap();
        assert!(c.nsh_present && c.nsh.is_none());
    }

    /// One test per ParseError variant, each from a real frame with the one defect.
    #[test]
    fn every_parse_error() {
        use ParseError::*;
        let mut seen = Vec::new();
        let mut check = |frame: &[u8], want: ParseError| {
            assert_eq!(classify(frame), Err(want), "{want:?}");
            seen.push(want);
        };
        check(&testdata::ARP_REQUEST[..13], TruncatedEthernet);
        check(
            &tagged(&testdata::ARP_REQUEST, &[(ethertype::VLAN, 100)])[..17],
            TruncatedVlan,
        );
        let three = [
            (ethertype::QINQ, 1),
            (ethertype::VLAN, 2),
            (ethertype::VLAN, 3),
        ];
        check(&tagged(&testdata::IPV4_UDP_DNS, &three), TooManyVlans);
        check(&testdata::IPV4_UDP_DNS[..14 + 19], TruncatedIpv4);
        let mut b = testdata::IPV4_TCP_SYN;
        b[14] = 0x4f; // IHL 15: a 60-byte header in 40 bytes
        check(&b[..14 + 40], TruncatedIpv4);
        let mut b = testdata::IPV4_UDP_DNS;
        b[14] = 0x65;
        check(&b, BadIpv4Version);
        let mut b = testdata::IPV4_UDP_DNS;
        b[14] = 0x44;
        check(&b, BadIpv4Ihl);
        check(&testdata::IPV4_UDP_DNS[..70], BadIpv4TotalLen);
        let mut b = testdata::IPV4_UDP_DNS;
        set_ipv4_total_len(&mut b, 14, 19);
        check(&b, BadIpv4TotalLen);
        let mut b = testdata::IPV4_UDP_DNS;
        b[14 + 8] -= 1; // TTL changed without fixing the checksum
        check(&b, BadIpv4Checksum);
        check(&testdata::IPV6_UDP_DNS[..14 + 39], TruncatedIpv6);
        let mut b = testdata::IPV6_UDP_DNS;
        b[14] = 0x40;
        check(&b, BadIpv6Version);
        check(&testdata::IPV6_UDP_DNS[..90], BadIpv6PayloadLen);
        let mut b = testdata::IPV6_HBH_DSTOPT_UDP;
        b[14 + 48 + 1] = 4; // Destination Options length 40 bytes: overruns
        check(&b, BadIpv6ExtHeader);
        // TCP SYN whose IP Total Length leaves only 10 bytes of TCP header
        let mut b = testdata::IPV4_TCP_SYN;
        set_ipv4_total_len(&mut b, 14, 30);
        check(&b[..44], TruncatedL4);
        check(&testdata::ARP_REQUEST[..41], TruncatedArp);
        let mut hdr = EXAMPLE;
        hdr[11] = 21; // steering TLV overruns the context area
        check(&nsh_encap(&testdata::IPV4_UDP_DNS, &hdr), BadNsh);
        let mut hdr = EXAMPLE;
        hdr[3] = nsh::next_protocol::ETHERNET;
        check(
            &nsh_encap(&testdata::IPV4_UDP_DNS, &hdr),
            NshUnsupportedNext,
        );
        seen.sort();
        seen.dedup();
        assert_eq!(
            seen,
            ParseError::ALL.to_vec(),
            "a ParseError variant lacks a test"
        );
    }

    #[test]
    fn more_truncated_l4() {
        // UDP over IPv6 with the payload length cut to 4 bytes of UDP header
        let mut b = testdata::IPV6_UDP_DNS;
        ipv6::Packet::new_unchecked(&mut b[14..]).set_payload_len(4);
        assert_eq!(classify(&b), Err(ParseError::TruncatedL4));
        // ICMP echo with 7 bytes of ICMP
        let mut b = testdata::IPV4_ICMP_ECHO_REQUEST;
        set_ipv4_total_len(&mut b, 14, 27);
        assert_eq!(classify(&b), Err(ParseError::TruncatedL4));
        // unknown protocol with an empty payload is fine
        let mut b = testdata::IPV4_ICMP_ECHO_REQUEST;
        let mut p = ipv4::Packet::new_unchecked(&mut b[14..]);
        p.set_protocol(253);
        p.set_total_len(20);
        p.fill_checksum();
        let c = classify(&b).unwrap();
        assert_eq!((c.proto, c.l4_off), (253, 34));
    }

    #[test]
    fn parse_error_names() {
        for (i, e) in ParseError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            let s = e.as_str();
            assert!(
                s.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch == '_' || ch.is_ascii_digit()),
                "{s}"
            );
            assert!(e.to_string().ends_with(&format!("({s})")));
        }
        let mut names: Vec<_> = ParseError::ALL.iter().map(|e| e.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ParseError::COUNT);
        assert_eq!(ParseError::BadIpv4Checksum.as_str(), "bad_ipv4_checksum");
    }

    #[test]
    fn flow_hash_is_deterministic_and_discriminating() {
        // pinned values: the hash must not change between builds or machines
        let a = flow_hash_v4(v4([10, 9, 0, 1]), v4([10, 9, 0, 2]), 17, 47645, 53);
        assert_eq!(
            a,
            flow_hash_v4(v4([10, 9, 0, 1]), v4([10, 9, 0, 2]), 17, 47645, 53)
        );
        assert_ne!(
            a,
            flow_hash_v4(v4([10, 9, 0, 1]), v4([10, 9, 0, 2]), 6, 47645, 53)
        );
        assert_ne!(
            a,
            flow_hash_v4(v4([10, 9, 0, 1]), v4([10, 9, 0, 2]), 17, 47646, 53)
        );
        assert_ne!(
            a,
            flow_hash_v4(v4([10, 9, 0, 2]), v4([10, 9, 0, 1]), 17, 53, 47645)
        );
        let b = flow_hash_v6(v6("fd00:9::1"), v6("fd00:9::2"), 17, 36949, 53);
        assert_ne!(
            b,
            flow_hash_v6(v6("fd00:9::1"), v6("fd00:9::3"), 17, 36949, 53)
        );
        // spread: 4096 consecutive source ports over 16 buckets, none empty or > 2x mean
        let mut buckets = [0u32; 16];
        for p in 0..4096u16 {
            buckets[(flow_hash_v4(v4([10, 0, 0, 1]), v4([10, 0, 0, 2]), 6, 1024 + p, 80) & 15)
                as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| n > 128 && n < 512), "{buckets:?}");
    }

    // ---- property tests ----

    /// Every real frame plus the built VLAN/NSH variants: inputs for mutation.
    fn valid_frames() -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = PcapReader::new(testdata::PCAP)
            .unwrap()
            .map(|r| r.unwrap().data.to_vec())
            .filter(|d| d.len() <= 200)
            .collect();
        v.push(tagged(&testdata::IPV4_UDP_DNS, &[(ethertype::VLAN, 100)]));
        v.push(tagged(
            &testdata::IPV6_TCP_SYN,
            &[(ethertype::QINQ, 200), (ethertype::VLAN, 30)],
        ));
        v.push(nsh_encap(&testdata::IPV4_UDP_DNS, &EXAMPLE));
        let mut hdr = EXAMPLE;
        hdr[3] = nsh::next_protocol::IPV6;
        v.push(nsh_encap(&testdata::IPV6_HBH_DSTOPT_UDP, &hdr));
        v
    }

    fn check_invariants(frame: &[u8], c: &Classified) -> Result<(), TestCaseError> {
        let len = frame.len();
        prop_assert!(usize::from(c.l2_len) <= len);
        prop_assert!(c.l2_len <= c.l3_off && usize::from(c.l3_off) <= len);
        prop_assert_eq!(c.l3_off, c.l2_len + c.nsh_len);
        prop_assert!(c.l4_off == 0 || (c.l4_off > c.l3_off && usize::from(c.l4_off) <= len));
        if c.is_fragment || !matches!(c.l3, L3::Ipv4 | L3::Ipv6) {
            prop_assert_eq!(c.l4_off, 0);
            prop_assert_eq!((c.src_port, c.dst_port), (0, 0));
        }
        if c.l3 != L3::Ipv4 {
            prop_assert_eq!((c.src_v4, c.dst_v4), (0, 0));
        }
        if c.l3 != L3::Ipv6 {
            prop_assert_eq!((c.src_v6, c.dst_v6), (0, 0));
        }
        prop_assert!(c.nsh.is_none() || c.nsh_present);
        Ok(())
    }

    /// A frame built from Reprs: Ethernet, optional VLAN tags, optional NSH, IPv4 or
    /// IPv6, then UDP or TCP.
    #[derive(Debug, Clone)]
    struct Built {
        tags: Vec<u16>,
        nsh: Option<nsh::SteeringRepr>,
        ip_v6: bool,
        src: u128,
        dst: u128,
        ttl: u8,
        tcp: bool,
        sport: u16,
        dport: u16,
        payload: usize,
    }

    fn built() -> impl Strategy<Value = Built> {
        (
            prop::collection::vec(0u16..4096, 0..=2),
            prop::option::of(steering_repr()),
            any::<bool>(),
            any::<u128>(),
            any::<u128>(),
            any::<u8>(),
            any::<bool>(),
            (any::<u16>(), any::<u16>(), 0usize..40),
        )
            .prop_map(
                |(tags, nsh, ip_v6, src, dst, ttl, tcp, (sport, dport, payload))| Built {
                    tags,
                    nsh,
                    ip_v6,
                    src,
                    dst,
                    ttl,
                    tcp,
                    sport,
                    dport,
                    payload,
                },
            )
    }

    fn emit_built(b: &Built) -> (Vec<u8>, usize) {
        let l4_len = if b.tcp {
            tcp::HEADER_LEN
        } else {
            udp::HEADER_LEN
        } + b.payload;
        let mut v = vec![0u8; 14];
        let mut f = Frame::new_unchecked(&mut v[..]);
        f.set_dst_addr(MacAddr([2, 0, 0, 0, 0, 1]));
        f.set_src_addr(MacAddr([2, 0, 0, 0, 0, 2]));
        let inner_et = match (b.nsh.is_some(), b.ip_v6) {
            (true, _) => ethertype::NSH,
            (false, true) => ethertype::IPV6,
            (false, false) => ethertype::IPV4,
        };
        let mut et_pos = 12;
        for (i, &vid) in b.tags.iter().enumerate() {
            let tpid = if i == 0 && b.tags.len() == 2 {
                ethertype::QINQ
            } else {
                ethertype::VLAN
            };
            v[et_pos..et_pos + 2].copy_from_slice(&tpid.to_be_bytes());
            v.extend_from_slice(&vid.to_be_bytes());
            v.extend_from_slice(&[0, 0]);
            et_pos = v.len() - 2;
        }
        v[et_pos..et_pos + 2].copy_from_slice(&inner_et.to_be_bytes());
        if let Some(mut n) = b.nsh {
            n.next_protocol = if b.ip_v6 {
                nsh::next_protocol::IPV6
            } else {
                nsh::next_protocol::IPV4
            };
            v.extend_from_slice(&n.to_bytes());
        }
        let l3_off = v.len();
        let proto = if b.tcp { 6 } else { 17 };
        if b.ip_v6 {
            let r = ipv6::Repr {
                src: Ipv6Addr::from(b.src),
                dst: Ipv6Addr::from(b.dst),
                next_header: proto,
                hop_limit: b.ttl,
                payload_len: l4_len,
                traffic_class: 0,
                flow_label: 0,
            };
            v.resize(l3_off + r.buffer_len(), 0);
            r.emit(&mut ipv6::Packet::new_unchecked(&mut v[l3_off..]));
        } else {
            let r = ipv4::Repr {
                src: Ipv4Addr::from(b.src as u32),
                dst: Ipv4Addr::from(b.dst as u32),
                protocol: proto,
                ttl: b.ttl,
                payload_len: l4_len,
                dscp_ecn: 0,
                ident: 1,
                dont_frag: true,
            };
            v.resize(l3_off + r.buffer_len(), 0);
            r.emit(&mut ipv4::Packet::new_unchecked(&mut v[l3_off..]));
        }
        let l4_off = v.len() - l4_len;
        if b.tcp {
            let r = tcp::Repr {
                src_port: b.sport,
                dst_port: b.dport,
                seq_number: 1,
                ack_number: 0,
                flags: tcp::Flags::SYN,
                window_len: 1000,
                urgent_at: 0,
                options_len: 0,
            };
            r.emit(&mut tcp::Packet::new_unchecked(&mut v[l4_off..]));
        } else {
            let r = udp::Repr {
                src_port: b.sport,
                dst_port: b.dport,
                payload_len: b.payload,
            };
            r.emit(&mut udp::Packet::new_unchecked(&mut v[l4_off..]));
        }
        (v, l4_off)
    }

    proptest! {
        #[test]
        fn never_panics_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(c) = classify(&bytes) {
                check_invariants(&bytes, &c)?;
            }
        }

        #[test]
        fn never_panics_on_random_headers(
            et in prop::sample::select(vec![0x0800u16, 0x86dd, 0x0806, 0x894f, 0x8100, 0x88a8]),
            bytes in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut f = testdata::ARP_REQUEST[..12].to_vec();
            f.extend_from_slice(&et.to_be_bytes());
            f.extend_from_slice(&bytes);
            if let Ok(c) = classify(&f) {
                check_invariants(&f, &c)?;
            }
        }

        #[test]
        fn never_panics_on_mutated_frames(
            which in any::<prop::sample::Index>(),
            muts in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let frames = valid_frames();
            let mut f = frames[which.index(frames.len())].clone();
            for (i, val) in muts {
                let i = i.index(f.len());
                f[i] = val;
            }
            let n = cut.index(f.len() + 1);
            f.truncate(n);
            if let Ok(c) = classify(&f) {
                check_invariants(&f, &c)?;
            }
        }

        #[test]
        fn recovers_emitted_fields(b in built()) {
            let (frame, l4_off) = emit_built(&b);
            let c = classify(&frame).unwrap();
            check_invariants(&frame, &c)?;
            prop_assert_eq!(usize::from(c.l2_len), 14 + 4 * b.tags.len());
            prop_assert_eq!(c.vlan, b.tags.first().copied());
            prop_assert_eq!(c.nsh_present, b.nsh.is_some());
            prop_assert_eq!(c.nsh.map(|n| (n.dest_id, n.epoch, n.tag, n.spi)), b.nsh.map(|n| (n.dest_id, n.epoch, n.tag, n.spi)));
            prop_assert_eq!(usize::from(c.l4_off), l4_off);
            prop_assert_eq!(c.proto, if b.tcp { 6 } else { 17 });
            prop_assert_eq!((c.src_port, c.dst_port), (b.sport, b.dport));
            prop_assert_eq!(c.ttl, b.ttl);
            prop_assert!(!c.is_fragment);
            if b.ip_v6 {
                prop_assert_eq!(c.l3, L3::Ipv6);
                prop_assert_eq!((c.src_v6, c.dst_v6), (b.src, b.dst));
            } else {
                prop_assert_eq!(c.l3, L3::Ipv4);
                prop_assert_eq!((c.src_v4, c.dst_v4), (b.src as u32, b.dst as u32));
            }
        }
    }

    /// Writes the fuzz seed corpora from the frames above. Run by hand after changing
    /// them: `cargo test --lib write_fuzz_seed_corpora -- --ignored`.
    #[test]
    #[ignore]
    fn write_fuzz_seed_corpora() {
        use std::fs;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        let write = |target: &str, name: &str, bytes: &[u8]| {
            let dir = root.join(target);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(name), bytes).unwrap();
        };
        let named: &[(&str, &[u8])] = &[
            ("arp_request", &testdata::ARP_REQUEST),
            ("ipv4_icmp_echo", &testdata::IPV4_ICMP_ECHO_REQUEST),
            ("ipv4_udp_dns", &testdata::IPV4_UDP_DNS),
            ("ipv4_icmp_unreach", &testdata::IPV4_ICMP_PORT_UNREACH),
            ("ipv4_tcp_syn", &testdata::IPV4_TCP_SYN),
            ("ipv6_mld_hbh", &testdata::IPV6_MLD_HBH),
            ("ipv6_ns", &testdata::IPV6_NEIGHBOR_SOLICIT),
            ("ipv6_icmp_echo", &testdata::IPV6_ICMP_ECHO_REQUEST),
            ("ipv6_udp_dns", &testdata::IPV6_UDP_DNS),
            ("ipv6_tcp_syn", &testdata::IPV6_TCP_SYN),
            ("ipv6_hbh_dstopt_udp", &testdata::IPV6_HBH_DSTOPT_UDP),
        ];
        for (name, bytes) in named {
            write("classify", name, bytes);
            if bytes[12..14] == ethertype::IPV6.to_be_bytes() {
                write("ipv6_ext", name, &bytes[14..]);
            }
        }
        let recs: Vec<_> = PcapReader::new(testdata::PCAP)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        write(
            "ipv6_ext",
            "ipv6_frag_first",
            &recs[testdata::record::IPV6_FRAG_FIRST].data[14..],
        );
        write(
            "ipv6_ext",
            "ipv6_frag_last",
            &recs[testdata::record::IPV6_FRAG_LAST].data[14..],
        );
        write(
            "classify",
            "ipv4_frag_last",
            recs[testdata::record::IPV4_FRAG_LAST].data,
        );
        write(
            "classify",
            "vlan_ipv4_udp",
            &tagged(&testdata::IPV4_UDP_DNS, &[(ethertype::VLAN, 100)]),
        );
        write(
            "classify",
            "qinq_ipv6_tcp",
            &tagged(
                &testdata::IPV6_TCP_SYN,
                &[(ethertype::QINQ, 200), (ethertype::VLAN, 30)],
            ),
        );
        write(
            "classify",
            "nsh_ipv4_udp",
            &nsh_encap(&testdata::IPV4_UDP_DNS, &EXAMPLE),
        );
        let mut hdr = EXAMPLE;
        hdr[3] = nsh::next_protocol::IPV6;
        write(
            "classify",
            "nsh_ipv6_ext_udp",
            &nsh_encap(&testdata::IPV6_HBH_DSTOPT_UDP, &hdr),
        );

        write("nsh", "steering", &EXAMPLE);
        let mut with_payload = EXAMPLE.to_vec();
        with_payload.extend_from_slice(&testdata::IPV4_UDP_DNS[14..]);
        write("nsh", "steering_ipv4", &with_payload);
        let mut md1 = EXAMPLE[..24].to_vec();
        md1[1] = (md1[1] & 0xc0) | 6;
        md1[2] = nsh::MD_TYPE_1;
        write("nsh", "md_type_1", &md1);

        // a small pcap: the first few short records of the capture
        let mut w = crate::wire::pcap::PcapWriter::new(Vec::new(), 262144).unwrap();
        for r in recs.iter().filter(|r| r.data.len() <= 100).take(6) {
            w.write_packet(r.ts_sec, r.ts_frac, r.data).unwrap();
        }
        write("pcap", "six_records", &w.into_inner().unwrap());
        write("pcap", "header_only", &testdata::PCAP[..24]);
    }
}
