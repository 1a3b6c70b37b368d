//! IPv6 (RFC 8200) and the walk over its extension-header chain.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Traffic Class |           Flow Label                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Payload Length        |  Next Header  |   Hop Limit   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Source Address (128 bits)                 |
//! |                  Destination Address (128 bits)               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! [`Packet::upper_layer`] walks the extension headers (RFC 8200 §4) to find the
//! upper-layer protocol and its offset, checking every length against the payload,
//! with at most [`MAX_EXT_HEADERS`] extension headers.

use std::net::Ipv6Addr;

use super::{Error, Result, array, be16, be32, put16, put32};

/// Extension-header and upper-layer numbers used by the walk.
pub mod next_header {
    /// Hop-by-Hop Options (must come first).
    pub const HOP_BY_HOP: u8 = 0;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// Routing header.
    pub const ROUTING: u8 = 43;
    /// Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating Security Payload (ends the walk: what follows is encrypted).
    pub const ESP: u8 = 50;
    /// Authentication Header (length in 4-byte units, plus 2).
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// No Next Header.
    pub const NO_NEXT_HEADER: u8 = 59;
    /// Destination Options.
    pub const DESTINATION_OPTIONS: u8 = 60;
    /// Mobility header (RFC 6275), walked as a generic extension header.
    pub const MOBILITY: u8 = 135;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// Most extension headers [`Packet::upper_layer`] walks before calling the chain
/// malformed. Real traffic carries one or two; the bound keeps the walk's cost fixed.
pub const MAX_EXT_HEADERS: usize = 8;

/// Length of a Fragment header.
pub const FRAGMENT_HEADER_LEN: usize = 8;

mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// A read/write view of an IPv6 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer and checks it with [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the buffer: at least 40 bytes ([`Error::Truncated`]), version 6
    /// ([`Error::Malformed`]), and 40 + Payload Length within the buffer
    /// ([`Error::Truncated`]; the buffer may be longer). Jumbograms (Payload Length 0
    /// with a Jumbo Payload option) are not supported: their payload reads as empty.
    ///
    /// After `check_len` succeeds, no accessor of this view panics.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 6 {
            return Err(Error::Malformed);
        }
        if HEADER_LEN + usize::from(self.payload_len()) > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    fn ver_tc_flow(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::VER_TC_FLOW])
    }

    /// Version (6).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// Traffic Class (DSCP and ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.ver_tc_flow() >> 20) as u8
    }

    /// Flow Label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow() & 0x000f_ffff
    }

    /// Payload Length: bytes after the fixed header, extension headers included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// Next Header (the first extension header or the upper-layer protocol).
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }

    /// Hop Limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(array::<16>(&self.buffer.as_ref()[field::SRC_ADDR]))
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(array::<16>(&self.buffer.as_ref()[field::DST_ADDR]))
    }

    /// Walks the extension-header chain and returns `(protocol, offset, is_fragment)`:
    /// the upper-layer protocol number, the offset of its header from the start of the
    /// IPv6 header, and whether the packet is a fragment (first or not).
    ///
    /// - Hop-by-Hop (0, only directly after the fixed header), Routing (43),
    ///   Destination Options (60) and Mobility (135) are skipped by their length,
    ///   `(Hdr Ext Len + 1) × 8` bytes; AH (51) by `(Payload Len + 2) × 4` bytes.
    /// - A Fragment header (44) is 8 bytes. A first fragment (offset 0, M set) goes on
    ///   walking; a non-first fragment stops the walk, returning the Fragment header's
    ///   Next Header and the offset after it with `is_fragment` true, so callers do
    ///   not mistake fragment data for an L4 header. An atomic fragment (offset 0,
    ///   M clear, RFC 6946) is not a fragment.
    /// - No Next Header (59), ESP (50), and anything else end the walk.
    ///
    /// [`Error::Malformed`] when a header overruns Payload Length, when Hop-by-Hop is
    /// not first, or when more than [`MAX_EXT_HEADERS`] extension headers precede the
    /// upper layer. The upper-layer header itself is not checked; the offset may equal
    /// the end of the payload.
    #[inline]
    pub fn upper_layer(&self) -> Result<(u8, usize, bool)> {
        let data = self.buffer.as_ref();
        let end = HEADER_LEN + usize::from(self.payload_len());
        let data = data.get(..end).ok_or(Error::Truncated)?;
        let mut nh = self.next_header();
        let mut off = HEADER_LEN;
        let mut fragment = false;
        for i in 0..=MAX_EXT_HEADERS {
            let len = match nh {
                next_header::HOP_BY_HOP
                | next_header::ROUTING
                | next_header::DESTINATION_OPTIONS
                | next_header::MOBILITY => {
                    if nh == next_header::HOP_BY_HOP && i != 0 {
                        return Err(Error::Malformed);
                    }
                    let hdr_ext_len = *data.get(off + 1).ok_or(Error::Malformed)?;
                    (usize::from(hdr_ext_len) + 1) * 8
                }
                next_header::AH => {
                    let payload_len = *data.get(off + 1).ok_or(Error::Malformed)?;
                    (usize::from(payload_len) + 2) * 4
                }
                next_header::FRAGMENT => {
                    let h = data
                        .get(off..off + FRAGMENT_HEADER_LEN)
                        .ok_or(Error::Malformed)?;
                    let off_m = be16(&h[2..4]);
                    let frag_offset = off_m & 0xfff8;
                    let more = off_m & 1 != 0;
                    if frag_offset != 0 {
                        return Ok((h[0], off + FRAGMENT_HEADER_LEN, true));
                    }
                    fragment |= more;
                    FRAGMENT_HEADER_LEN
                }
                _ => return Ok((nh, off, fragment)),
            };
            if i == MAX_EXT_HEADERS {
                // A ninth extension header.
                return Err(Error::Malformed);
            }
            let hdr = data.get(off..off + len).ok_or(Error::Malformed)?;
            nh = hdr[0];
            off += len;
        }
        Err(Error::Malformed)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// Payload (extension headers and upper layer), bounded by Payload Length.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    fn set_ver_tc_flow(&mut self, value: u32) {
        put32(&mut self.buffer.as_mut()[field::VER_TC_FLOW], value);
    }

    /// Sets the version.
    #[inline]
    pub fn set_version(&mut self, value: u8) {
        let v = (self.ver_tc_flow() & 0x0fff_ffff) | (u32::from(value & 0x0f) << 28);
        self.set_ver_tc_flow(v);
    }

    /// Sets the Traffic Class.
    #[inline]
    pub fn set_traffic_class(&mut self, value: u8) {
        let v = (self.ver_tc_flow() & 0xf00f_ffff) | (u32::from(value) << 20);
        self.set_ver_tc_flow(v);
    }

    /// Sets the Flow Label (low 20 bits of `value`).
    #[inline]
    pub fn set_flow_label(&mut self, value: u32) {
        let v = (self.ver_tc_flow() & 0xfff0_0000) | (value & 0x000f_ffff);
        self.set_ver_tc_flow(v);
    }

    /// Sets Payload Length.
    #[inline]
    pub fn set_payload_len(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::LENGTH], value);
    }

    /// Sets Next Header.
    #[inline]
    pub fn set_next_header(&mut self, value: u8) {
        self.buffer.as_mut()[field::NXT_HDR] = value;
    }

    /// Sets Hop Limit. IPv6 has no header checksum, so nothing else changes.
    #[inline]
    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = value;
    }

    /// Decrements Hop Limit by one and returns the new value; a Hop Limit of 0 is left
    /// as it is and gives `None`. Forwarding policy (drop at 0) is the caller's.
    #[inline]
    pub fn decrement_hop_limit(&mut self) -> Option<u8> {
        let h = self.hop_limit().checked_sub(1)?;
        self.set_hop_limit(h);
        Some(h)
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }

    /// Payload (bounded by Payload Length), writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// High-level representation of the fixed IPv6 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next Header.
    pub next_header: u8,
    /// Hop Limit.
    pub hop_limit: u8,
    /// Payload Length.
    pub payload_len: usize,
    /// Traffic Class.
    pub traffic_class: u8,
    /// Flow Label (20 bits).
    pub flow_label: u32,
}

impl Repr {
    /// Parses a checked packet (the extension headers are not walked; see
    /// [`Packet::upper_layer`]).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            next_header: packet.next_header(),
            hop_limit: packet.hop_limit(),
            payload_len: usize::from(packet.payload_len()),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        })
    }

    /// Length of the emitted header (40).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Length of the whole packet this `Repr` describes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the fixed header into a buffer of at least 40 bytes. A `payload_len`
    /// above 65535 is clamped; a `flow_label` is cut to 20 bits.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_ver_tc_flow(0x6000_0000);
        packet.set_traffic_class(self.traffic_class);
        packet.set_flow_label(self.flow_label);
        packet.set_payload_len(u16::try_from(self.payload_len).unwrap_or(u16::MAX));
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src);
        packet.set_dst_addr(self.dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::pcap::PcapReader;
    use crate::wire::testdata;
    use proptest::prelude::*;

    fn echo_bytes() -> &'static [u8] {
        &testdata::IPV6_ICMP_ECHO_REQUEST[14..]
    }

    fn addr(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn echo_repr() -> Repr {
        Repr {
            src: addr("fd00:9::1"),
            dst: addr("fd00:9::2"),
            next_header: next_header::ICMPV6,
            hop_limit: 64,
            payload_len: 64,
            traffic_class: 0,
            flow_label: 0x0fbc9,
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(echo_bytes()).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0);
        assert_eq!(p.flow_label(), 0x0fbc9);
        assert_eq!(p.payload_len(), 64);
        assert_eq!(p.next_header(), next_header::ICMPV6);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), addr("fd00:9::1"));
        assert_eq!(p.dst_addr(), addr("fd00:9::2"));
        assert_eq!(p.payload(), &echo_bytes()[40..]);
        assert_eq!(p.upper_layer().unwrap(), (next_header::ICMPV6, 40, false));
    }

    #[test]
    fn construct() {
        let mut buf = echo_bytes().to_vec();
        buf[..40].fill(0);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_version(6);
        p.set_traffic_class(0);
        p.set_flow_label(0x0fbc9);
        p.set_payload_len(64);
        p.set_next_header(next_header::ICMPV6);
        p.set_hop_limit(64);
        p.set_src_addr(addr("fd00:9::1"));
        p.set_dst_addr(addr("fd00:9::2"));
        assert_eq!(&buf[..], echo_bytes());
    }

    #[test]
    fn parse() {
        let p = Packet::new_checked(echo_bytes()).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), echo_repr());
    }

    #[test]
    fn emit() {
        let mut buf = echo_bytes().to_vec();
        buf[..40].fill(0);
        echo_repr().emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[..], echo_bytes());
    }

    #[test]
    fn hop_limit() {
        let mut b = echo_bytes().to_vec();
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.decrement_hop_limit(), Some(63));
        p.set_hop_limit(0);
        assert_eq!(p.decrement_hop_limit(), None);
        assert_eq!(p.hop_limit(), 0);
    }

    #[test]
    fn check_len_rejects() {
        let good = echo_bytes();
        assert_eq!(
            Packet::new_checked(&good[..39]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&good[..103]).unwrap_err(),
            Error::Truncated
        );
        let mut b = good.to_vec();
        b[0] = 0x40;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
        // a longer buffer (padding) is fine
        let mut b = good.to_vec();
        b.extend_from_slice(&[0; 6]);
        assert_eq!(Packet::new_checked(&b[..]).unwrap().payload().len(), 64);
    }

    #[test]
    fn upper_layer_real_hop_by_hop_and_dstopts() {
        let p = Packet::new_checked(&testdata::IPV6_HBH_DSTOPT_UDP[14..]).unwrap();
        assert_eq!(p.next_header(), next_header::HOP_BY_HOP);
        assert_eq!(p.upper_layer().unwrap(), (next_header::UDP, 56, false));
        let p = Packet::new_checked(&testdata::IPV6_MLD_HBH[14..]).unwrap();
        assert_eq!(p.upper_layer().unwrap(), (next_header::ICMPV6, 48, false));
    }

    #[test]
    fn upper_layer_real_fragments() {
        let recs: Vec<_> = PcapReader::new(testdata::PCAP)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let first =
            Packet::new_checked(&recs[testdata::record::IPV6_FRAG_FIRST].data[14..]).unwrap();
        assert_eq!(first.next_header(), next_header::FRAGMENT);
        assert_eq!(
            first.upper_layer().unwrap(),
            (next_header::ICMPV6, 48, true)
        );
        let last = Packet::new_checked(&recs[testdata::record::IPV6_FRAG_LAST].data[14..]).unwrap();
        assert_eq!(last.upper_layer().unwrap(), (next_header::ICMPV6, 48, true));
    }

    /// Builds an IPv6 packet (from the real echo request's header) with the given
    /// extension-header bytes in front of an 8-byte UDP header.
    fn with_ext(first_nh: u8, ext: &[u8]) -> Vec<u8> {
        let mut b = echo_bytes()[..40].to_vec();
        b.extend_from_slice(ext);
        b.extend_from_slice(&[0x12, 0x34, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00]);
        let pl = (b.len() - 40) as u16;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_next_header(first_nh);
        p.set_payload_len(pl);
        b
    }

    #[test]
    fn upper_layer_walks_each_kind() {
        use next_header::*;
        // Routing (24 bytes) -> AH ((4 + 2) * 4 = 24 bytes) -> Mobility (8) -> DstOpts (8) -> UDP
        // Routing header: next = AH, len 2 -> 24 bytes
        let mut chain = vec![AH, 2, 4, 0];
        chain.extend_from_slice(&[0; 20]);
        // AH: next = Mobility, payload len 4 -> 24 bytes
        chain.extend_from_slice(&[MOBILITY, 4, 0, 0]);
        chain.extend_from_slice(&[0; 20]);
        // Mobility: next = DstOpts, len 0 -> 8
        chain.extend_from_slice(&[DESTINATION_OPTIONS, 0, 0, 0, 0, 0, 0, 0]);
        // DstOpts: next = UDP
        chain.extend_from_slice(&[UDP, 0, 1, 4, 0, 0, 0, 0]);
        let b = with_ext(ROUTING, &chain);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.upper_layer().unwrap(), (UDP, 40 + 64, false));

        // No Next Header
        let b = with_ext(NO_NEXT_HEADER, &[]);
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap().upper_layer().unwrap(),
            (NO_NEXT_HEADER, 40, false)
        );

        // Atomic fragment: offset 0, M clear -> not a fragment
        let b = with_ext(FRAGMENT, &[UDP, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap().upper_layer().unwrap(),
            (UDP, 48, false)
        );
        // First fragment
        let b = with_ext(FRAGMENT, &[UDP, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap().upper_layer().unwrap(),
            (UDP, 48, true)
        );
        // Non-first fragment stops the walk, even if "UDP" follows
        let b = with_ext(FRAGMENT, &[UDP, 0, 0x05, 0xa8, 0, 0, 0, 1]);
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap().upper_layer().unwrap(),
            (UDP, 48, true)
        );
    }

    #[test]
    fn upper_layer_rejects() {
        use next_header::*;
        // header overruns the payload
        let b = with_ext(DESTINATION_OPTIONS, &[UDP, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            Packet::new_checked(&b[..b.len() - 8]).map(|_| ()),
            Err(Error::Truncated)
        );
        let mut b2 = b.clone();
        Packet::new_unchecked(&mut b2[..]).set_payload_len(8);
        b2.truncate(48);
        assert_eq!(
            Packet::new_checked(&b2[..]).unwrap().upper_layer(),
            Err(Error::Malformed)
        );
        // a Fragment header cut short
        let mut b = with_ext(FRAGMENT, &[UDP, 0, 0, 0]);
        Packet::new_unchecked(&mut b[..]).set_payload_len(4);
        b.truncate(44);
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap().upper_layer(),
            Err(Error::Malformed)
        );
        // the length byte itself is missing
        let mut b = with_ext(ROUTING, &[UDP]);
        Packet::new_unchecked(&mut b[..]).set_payload_len(1);
        b.truncate(41);
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap().upper_layer(),
            Err(Error::Malformed)
        );
        // Hop-by-Hop not first
        let b = with_ext(
            DESTINATION_OPTIONS,
            &[HOP_BY_HOP, 0, 1, 4, 0, 0, 0, 0, UDP, 0, 1, 4, 0, 0, 0, 0],
        );
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap().upper_layer(),
            Err(Error::Malformed)
        );
        // exactly 8 extension headers are fine, 9 are not
        for (n, ok) in [(8usize, true), (9, false)] {
            let mut chain = Vec::new();
            for i in 0..n {
                let next = if i + 1 == n { UDP } else { DESTINATION_OPTIONS };
                chain.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
            }
            let b = with_ext(DESTINATION_OPTIONS, &chain);
            let r = Packet::new_checked(&b[..]).unwrap().upper_layer();
            if ok {
                assert_eq!(r, Ok((UDP, 40 + 8 * n, false)));
            } else {
                assert_eq!(r, Err(Error::Malformed));
            }
        }
    }

    fn repr() -> impl Strategy<Value = Repr> {
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u8>(),
            any::<u8>(),
            0usize..=65535,
            any::<u8>(),
            0u32..(1 << 20),
        )
            .prop_map(
                |(s, d, next_header, hop_limit, payload_len, traffic_class, flow_label)| Repr {
                    src: s.into(),
                    dst: d.into(),
                    next_header,
                    hop_limit,
                    payload_len,
                    traffic_class,
                    flow_label,
                },
            )
    }

    proptest! {
        #[test]
        fn repr_round_trip(r in repr()) {
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut buf[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(), r);
        }

        #[test]
        fn upper_layer_never_panics(nh in any::<u8>(), ext in prop::collection::vec(any::<u8>(), 0..200)) {
            let b = with_ext(nh, &ext);
            let p = Packet::new_checked(&b[..]).unwrap();
            if let Ok((_, off, _)) = p.upper_layer() {
                prop_assert!(off >= HEADER_LEN && off <= b.len());
            }
        }
    }
}
