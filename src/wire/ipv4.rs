//! IPv4 (RFC 791).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |   DSCP    |ECN|          Total Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Identification        |0|DF|MF|    Fragment Offset    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       Source Address                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Destination Address                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Options (IHL > 5)                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The buffer may be longer than Total Length (Ethernet pads frames to 60 bytes);
//! [`Packet::payload`] is bounded by Total Length, never by the buffer.

use std::net::Ipv4Addr;

use super::{Error, Result, array, be16, checksum, put16};

/// IP protocol numbers steerd looks at.
pub mod protocol {
    /// IPv6 Hop-by-Hop Options (also valid in IPv6 only).
    pub const HOPOPT: u8 = 0;
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 encapsulation.
    pub const IPV6: u8 = 41;
    /// GRE.
    pub const GRE: u8 = 47;
    /// ESP.
    pub const ESP: u8 = 50;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    /// TTL and protocol together: the 16-bit word the checksum update works on.
    pub const TTL_PROTO: Range<usize> = 8..10;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A read/write view of an IPv4 packet.
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

    /// Checks the buffer against the header: at least 20 bytes
    /// ([`Error::Truncated`]), version 4 and IHL ≥ 5 ([`Error::Malformed`]), the whole
    /// header present ([`Error::Truncated`]), Total Length ≥ header length
    /// ([`Error::Malformed`]) and ≤ the buffer ([`Error::Truncated`]). The buffer may be
    /// longer than Total Length. The checksum is not checked here.
    ///
    /// After `check_len` succeeds, no accessor of this view panics.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 || self.header_len() < HEADER_LEN as u8 {
            return Err(Error::Malformed);
        }
        if len < usize::from(self.header_len()) {
            return Err(Error::Truncated);
        }
        let total = usize::from(self.total_len());
        if total < usize::from(self.header_len()) {
            return Err(Error::Malformed);
        }
        if total > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version (4).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4).
    #[inline]
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The DSCP and ECN byte (formerly TOS).
    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Differentiated Services Code Point.
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.dscp_ecn() >> 2
    }

    /// Explicit Congestion Notification bits.
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.dscp_ecn() & 0x03
    }

    /// Total Length: header plus payload, in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::IDENT])
    }

    #[inline]
    fn flags_offset(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::FLG_OFF])
    }

    /// Don't Fragment.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_offset() & FLAG_DF != 0
    }

    /// More Fragments.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_offset() & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the field × 8).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_offset() & OFFSET_MASK) << 3
    }

    /// True for any fragment: MF set or a non-zero offset.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_offset() & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// Time to Live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(array::<4>(&self.buffer.as_ref()[field::SRC_ADDR]))
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(array::<4>(&self.buffer.as_ref()[field::DST_ADDR]))
    }

    /// True when the header checksum verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let hl = usize::from(self.header_len());
        checksum::data(&self.buffer.as_ref()[..hl]) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// Options (the header beyond 20 bytes).
    #[inline]
    pub fn options(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.header_len())]
    }

    /// Payload, bounded by Total Length (Ethernet padding excluded).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[usize::from(self.header_len())..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version.
    #[inline]
    pub fn set_version(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (value << 4);
    }

    /// Sets the header length in bytes (rounded down to a multiple of 4).
    #[inline]
    pub fn set_header_len(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((value / 4) & 0x0f);
    }

    /// Sets the DSCP/ECN byte.
    #[inline]
    pub fn set_dscp_ecn(&mut self, value: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = value;
    }

    /// Sets Total Length.
    #[inline]
    pub fn set_total_len(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::LENGTH], value);
    }

    /// Sets Identification.
    #[inline]
    pub fn set_ident(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::IDENT], value);
    }

    #[inline]
    fn set_flags_offset(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::FLG_OFF], value);
    }

    /// Clears DF, MF and the reserved bit.
    #[inline]
    pub fn clear_flags(&mut self) {
        let v = self.flags_offset() & OFFSET_MASK;
        self.set_flags_offset(v);
    }

    /// Sets or clears Don't Fragment.
    #[inline]
    pub fn set_dont_frag(&mut self, value: bool) {
        let v = (self.flags_offset() & !FLAG_DF) | if value { FLAG_DF } else { 0 };
        self.set_flags_offset(v);
    }

    /// Sets or clears More Fragments.
    #[inline]
    pub fn set_more_frags(&mut self, value: bool) {
        let v = (self.flags_offset() & !FLAG_MF) | if value { FLAG_MF } else { 0 };
        self.set_flags_offset(v);
    }

    /// Sets the fragment offset in bytes (rounded down to a multiple of 8).
    #[inline]
    pub fn set_frag_offset(&mut self, value: u16) {
        let v = (self.flags_offset() & !OFFSET_MASK) | (value >> 3);
        self.set_flags_offset(v);
    }

    /// Sets Time to Live (the checksum is not updated; see
    /// [`decrement_ttl`](Self::decrement_ttl)).
    #[inline]
    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }

    /// Sets the protocol.
    #[inline]
    pub fn set_protocol(&mut self, value: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = value;
    }

    /// Sets the header checksum.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::CHECKSUM], value);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }

    /// Recomputes the header checksum over the whole header (options included).
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = usize::from(self.header_len());
        let sum = checksum::data(&self.buffer.as_ref()[..hl]);
        self.set_checksum(!sum);
    }

    /// Decrements TTL by one and updates the header checksum incrementally, without
    /// reading the rest of the header (RFC 1624 eqn. 3, see [`checksum::update16`]):
    /// TTL is the high byte of the 16-bit word it shares with Protocol, so
    /// `HC' = ~(~HC + ~m + m')` with `m = TTL·256 + proto` and `m' = m − 256`.
    ///
    /// Returns the new TTL. A TTL of 0 is left as it is and gives `None`. Forwarding
    /// policy (drop when the result is 0, ICMP Time Exceeded) is the caller's.
    #[inline]
    pub fn decrement_ttl(&mut self) -> Option<u8> {
        let ttl = self.ttl();
        let new_ttl = ttl.checked_sub(1)?;
        let old_word = be16(&self.buffer.as_ref()[field::TTL_PROTO]);
        let new_word = u16::from_be_bytes([new_ttl, self.protocol()]);
        let hc = checksum::update16(self.checksum(), old_word, new_word);
        self.set_ttl(new_ttl);
        self.set_checksum(hc);
        Some(new_ttl)
    }

    /// Options, writable.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = usize::from(self.header_len());
        &mut self.buffer.as_mut()[HEADER_LEN..hl]
    }

    /// Payload (bounded by Total Length), writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = usize::from(self.header_len())..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// High-level representation of an IPv4 header without options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol of the payload.
    pub protocol: u8,
    /// Time to Live.
    pub ttl: u8,
    /// Payload length in bytes (Total Length − header length).
    pub payload_len: usize,
    /// DSCP/ECN byte.
    pub dscp_ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
}

impl Repr {
    /// Parses a checked packet, verifying its header checksum ([`Error::Checksum`]).
    /// Fragments are [`Error::Unsupported`] (the `Repr` has no fragment fields); options
    /// are skipped (they are not represented, and `emit` writes IHL 5).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        if packet.is_fragment() {
            return Err(Error::Unsupported);
        }
        Ok(Repr {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            protocol: packet.protocol(),
            ttl: packet.ttl(),
            payload_len: usize::from(packet.total_len() - u16::from(packet.header_len())),
            dscp_ecn: packet.dscp_ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
        })
    }

    /// Length of the emitted header (20).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Length of the whole packet this `Repr` describes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes a 20-byte header (IHL 5) with a correct checksum into a buffer of at least
    /// [`header_len`](Self::header_len) bytes. A `payload_len` above 65515 is clamped
    /// in Total Length.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_version(4);
        packet.set_header_len(HEADER_LEN as u8);
        packet.set_dscp_ecn(self.dscp_ecn);
        let total = u16::try_from(self.buffer_len()).unwrap_or(u16::MAX);
        packet.set_total_len(total);
        packet.set_ident(self.ident);
        packet.set_flags_offset(if self.dont_frag { FLAG_DF } else { 0 });
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src);
        packet.set_dst_addr(self.dst);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::pcap::PcapReader;
    use crate::wire::testdata;
    use proptest::prelude::*;

    fn echo_bytes() -> &'static [u8] {
        &testdata::IPV4_ICMP_ECHO_REQUEST[14..]
    }

    fn echo_repr() -> Repr {
        Repr {
            src: Ipv4Addr::new(10, 9, 0, 1),
            dst: Ipv4Addr::new(10, 9, 0, 2),
            protocol: protocol::ICMP,
            ttl: 64,
            payload_len: 64,
            dscp_ecn: 0,
            ident: 0x73e5,
            dont_frag: true,
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(echo_bytes()).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.dscp_ecn(), 0);
        assert_eq!(p.total_len(), 84);
        assert_eq!(p.ident(), 0x73e5);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), protocol::ICMP);
        assert_eq!(p.checksum(), 0xb2af);
        assert_eq!(p.src_addr(), Ipv4Addr::new(10, 9, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(10, 9, 0, 2));
        assert!(p.verify_checksum());
        assert!(p.options().is_empty());
        assert_eq!(p.payload(), &echo_bytes()[20..]);
    }

    #[test]
    fn construct() {
        let mut buf = echo_bytes().to_vec();
        buf[..20].fill(0);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_version(4);
        p.set_header_len(20);
        p.set_dscp_ecn(0);
        p.set_total_len(84);
        p.set_ident(0x73e5);
        p.clear_flags();
        p.set_dont_frag(true);
        p.set_more_frags(false);
        p.set_frag_offset(0);
        p.set_ttl(64);
        p.set_protocol(protocol::ICMP);
        p.set_src_addr(Ipv4Addr::new(10, 9, 0, 1));
        p.set_dst_addr(Ipv4Addr::new(10, 9, 0, 2));
        p.fill_checksum();
        assert_eq!(&buf[..], echo_bytes());
    }

    #[test]
    fn parse() {
        let p = Packet::new_checked(echo_bytes()).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), echo_repr());
        // The ICMP error has TOS 0xc0 (network control) and no DF.
        let p = Packet::new_checked(&testdata::IPV4_ICMP_PORT_UNREACH[14..]).unwrap();
        let r = Repr::parse(&p).unwrap();
        assert_eq!((r.dscp_ecn, r.dont_frag, r.payload_len), (0xc0, false, 65));
    }

    #[test]
    fn emit() {
        let mut buf = echo_bytes().to_vec();
        buf[..20].fill(0);
        echo_repr().emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[..], echo_bytes());
    }

    #[test]
    fn payload_excludes_ethernet_padding() {
        // The real RST is 54 bytes; pad it to Ethernet's 60 as a NIC would.
        let mut b = testdata::IPV4_TCP_RST[14..].to_vec();
        b.extend_from_slice(&[0; 6]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload().len(), 20);
    }

    #[test]
    fn check_len_rejects() {
        let good = echo_bytes();
        assert_eq!(
            Packet::new_checked(&good[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&good[..83]).unwrap_err(),
            Error::Truncated
        );
        let mut b = good.to_vec();
        b[0] = 0x65;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
        b[0] = 0x44;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
        b[0] = 0x4f; // 60-byte header in an 84-byte packet is fine structurally
        assert!(Packet::new_checked(&b[..]).is_ok());
        b[0] = 0x45;
        b[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
        // 60-byte header claimed in a 40-byte buffer
        let mut b = good[..40].to_vec();
        b[0] = 0x4f;
        b[2..4].copy_from_slice(&40u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Truncated);
        let mut b = good.to_vec();
        b[12] ^= 1;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap_err(),
            Error::Checksum
        );
    }

    #[test]
    fn real_fragments() {
        let recs: Vec<_> = PcapReader::new(testdata::PCAP)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let first =
            Packet::new_checked(&recs[testdata::record::IPV4_FRAG_FIRST].data[14..]).unwrap();
        assert!(first.more_frags() && first.is_fragment());
        assert_eq!(first.frag_offset(), 0);
        assert_eq!(first.total_len(), 1500);
        let last = Packet::new_checked(&recs[testdata::record::IPV4_FRAG_LAST].data[14..]).unwrap();
        assert!(!last.more_frags() && last.is_fragment());
        assert_eq!(last.frag_offset(), 1480);
        assert_eq!(last.ident(), first.ident());
        assert!(first.verify_checksum() && last.verify_checksum());
        assert_eq!(Repr::parse(&first).unwrap_err(), Error::Unsupported);
    }

    #[test]
    fn decrement_ttl_real() {
        let mut b = echo_bytes().to_vec();
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.decrement_ttl(), Some(63));
        assert_eq!(p.ttl(), 63);
        assert!(p.verify_checksum());
        assert_eq!(p.checksum(), 0xb3af);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_ttl(0);
        p.fill_checksum();
        let before = b.clone();
        let mut p = Packet::new_unchecked(&mut b[..]);
        assert_eq!(p.decrement_ttl(), None);
        assert_eq!(b, before);
    }

    fn repr() -> impl Strategy<Value = Repr> {
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u8>(),
            any::<u8>(),
            0usize..=(65535 - HEADER_LEN),
            any::<u8>(),
            any::<u16>(),
            any::<bool>(),
        )
            .prop_map(
                |(s, d, protocol, ttl, payload_len, dscp_ecn, ident, dont_frag)| Repr {
                    src: s.into(),
                    dst: d.into(),
                    protocol,
                    ttl,
                    payload_len,
                    dscp_ecn,
                    ident,
                    dont_frag,
                },
            )
    }

    proptest! {
        #[test]
        fn repr_round_trip(r in repr()) {
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut buf[..]));
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Repr::parse(&p).unwrap(), r);
        }

        #[test]
        fn decrement_ttl_matches_recomputation(r in repr(), opts in 0u8..=10) {
            // with options too: the incremental update never reads them
            let hl = HEADER_LEN + 4 * usize::from(opts);
            let mut buf = vec![0x01u8; hl + 8];
            let mut p = Packet::new_unchecked(&mut buf[..]);
            r.emit(&mut p);
            p.set_header_len(hl as u8);
            p.set_total_len((hl + 8) as u16);
            p.fill_checksum();
            let mut p = Packet::new_checked(&mut buf[..]).unwrap();
            let res = p.decrement_ttl();
            prop_assert_eq!(res, r.ttl.checked_sub(1));
            let inc = p.checksum();
            p.fill_checksum();
            prop_assert_eq!(inc, p.checksum());
        }
    }
}
