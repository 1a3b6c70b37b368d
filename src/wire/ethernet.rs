//! Ethernet II frames (IEEE 802.3 with an EtherType) and IEEE 802.1Q VLAN tags.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                  Destination MAC address                      |
//! +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                               |                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//! |                    Source MAC address                         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           EtherType           |   payload ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! A VLAN tag sits where the EtherType was: TPID (0x8100, or 0x88a8 for an 802.1ad
//! service tag), then the 16-bit TCI (PCP 3 bits, DEI 1 bit, VID 12 bits), then the
//! inner EtherType. [`VlanTag`] views the four bytes *after* the TPID, so a tagged frame
//! is `Frame` (ethertype 0x8100) → `VlanTag` (tci, inner ethertype) → payload.
//!
//! The frame check sequence is not part of the buffer (NICs strip it).

use core::fmt;
use core::str::FromStr;

use super::{Error, Result, array, be16, put16};

/// EtherType values steerd dispatches on.
pub mod ethertype {
    /// Internet Protocol version 4.
    pub const IPV4: u16 = 0x0800;
    /// Address Resolution Protocol.
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q customer VLAN tag (C-tag).
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service VLAN tag (S-tag, "QinQ").
    pub const QINQ: u16 = 0x88a8;
    /// Internet Protocol version 6.
    pub const IPV6: u16 = 0x86dd;
    /// Network Service Header (RFC 8300), steerd's steering header.
    pub const NSH: u16 = 0x894f;
}

/// A 48-bit IEEE MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The broadcast address ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// The all-zeros address.
    pub const UNSPECIFIED: MacAddr = MacAddr([0; 6]);

    /// The six octets.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// True for ff:ff:ff:ff:ff:ff.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// True when the I/G bit (least significant bit of the first octet) is set;
    /// broadcast is a multicast address.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// True for an individual (not group) address.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// True when the U/L bit says the address is locally administered.
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// The Ethernet multicast address an IPv6 multicast address maps to (RFC 2464 §7):
    /// 33:33 followed by the last four octets.
    pub fn ipv6_multicast(addr: std::net::Ipv6Addr) -> MacAddr {
        let o = addr.octets();
        MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// A string that is not six colon- (or hyphen-) separated pairs of hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}: expected six hex octets like 02:00:5e:00:00:01")]
pub struct MacParseError(pub String);

impl FromStr for MacAddr {
    type Err = MacParseError;

    fn from_str(s: &str) -> core::result::Result<Self, Self::Err> {
        let err = || MacParseError(s.to_owned());
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for o in &mut out {
            let p = parts.next().ok_or_else(err)?;
            if p.is_empty() || p.len() > 2 {
                return Err(err());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

mod field {
    use core::ops::{Range, RangeFrom};
    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: RangeFrom<usize> = 14..;
}

/// Length of the Ethernet II header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// A read/write view of an Ethernet II frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps a buffer and checks it with [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Checks that the buffer holds a whole header.
    ///
    /// After `check_len` succeeds, no accessor of this view panics.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Length of the header (14).
    pub const fn header_len() -> usize {
        HEADER_LEN
    }

    /// Frame length for a payload of `payload_len` bytes.
    pub const fn buffer_len(payload_len: usize) -> usize {
        HEADER_LEN + payload_len
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        MacAddr(array(&self.buffer.as_ref()[field::DESTINATION]))
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        MacAddr(array(&self.buffer.as_ref()[field::SOURCE]))
    }

    /// EtherType (0x8100 / 0x88a8 when a VLAN tag follows).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::ETHERTYPE])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Frame<&'a T> {
    /// The bytes after the header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, value: MacAddr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&value.0);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, value: MacAddr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&value.0);
    }

    /// Sets the EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::ETHERTYPE], value);
    }

    /// The bytes after the header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Frame<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// High-level representation of an Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub src_addr: MacAddr,
    /// Destination address.
    pub dst_addr: MacAddr,
    /// EtherType.
    pub ethertype: u16,
}

impl Repr {
    /// Reads the header of a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<Repr> {
        frame.check_len()?;
        Ok(Repr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.ethertype(),
        })
    }

    /// Length of the emitted header (14).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into a frame of at least [`header_len`](Self::header_len) bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        frame.set_src_addr(self.src_addr);
        frame.set_dst_addr(self.dst_addr);
        frame.set_ethertype(self.ethertype);
    }
}

mod vlan_field {
    use core::ops::{Range, RangeFrom};
    pub const TCI: Range<usize> = 0..2;
    pub const ETHERTYPE: Range<usize> = 2..4;
    pub const PAYLOAD: RangeFrom<usize> = 4..;
}

/// Length of a VLAN tag after its TPID (TCI and inner EtherType).
pub const VLAN_TAG_LEN: usize = vlan_field::PAYLOAD.start;

/// A read/write view of the four bytes following a VLAN TPID: the TCI and the inner
/// EtherType, then the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlanTag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanTag<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> VlanTag<T> {
        VlanTag { buffer }
    }

    /// Wraps a buffer and checks it with [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<VlanTag<T>> {
        let t = Self::new_unchecked(buffer);
        t.check_len()?;
        Ok(t)
    }

    /// Checks that the buffer holds a whole tag.
    ///
    /// After `check_len` succeeds, no accessor of this view panics.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < VLAN_TAG_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The raw Tag Control Information.
    #[inline]
    pub fn tci(&self) -> u16 {
        be16(&self.buffer.as_ref()[vlan_field::TCI])
    }

    /// Priority Code Point (IEEE 802.1p class, 0..=7).
    #[inline]
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// Drop Eligible Indicator.
    #[inline]
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// VLAN identifier (0..=4095).
    #[inline]
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// EtherType of what follows the tag.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        be16(&self.buffer.as_ref()[vlan_field::ETHERTYPE])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> VlanTag<&'a T> {
    /// The bytes after the tag.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[vlan_field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanTag<T> {
    /// Sets the raw TCI.
    #[inline]
    pub fn set_tci(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[vlan_field::TCI], value);
    }

    /// Sets the priority code point (low three bits of `value`).
    #[inline]
    pub fn set_pcp(&mut self, value: u8) {
        let tci = (self.tci() & 0x1fff) | (u16::from(value & 0x7) << 13);
        self.set_tci(tci);
    }

    /// Sets the drop eligible indicator.
    #[inline]
    pub fn set_dei(&mut self, value: bool) {
        let tci = (self.tci() & !0x1000) | if value { 0x1000 } else { 0 };
        self.set_tci(tci);
    }

    /// Sets the VLAN identifier (low twelve bits of `value`).
    #[inline]
    pub fn set_vid(&mut self, value: u16) {
        let tci = (self.tci() & 0xf000) | (value & 0x0fff);
        self.set_tci(tci);
    }

    /// Sets the inner EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[vlan_field::ETHERTYPE], value);
    }

    /// The bytes after the tag, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[vlan_field::PAYLOAD]
    }
}

/// High-level representation of a VLAN tag (the part after the TPID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanRepr {
    /// Priority code point, 0..=7.
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier, 0..=4095.
    pub vid: u16,
    /// Inner EtherType.
    pub ethertype: u16,
}

impl VlanRepr {
    /// Reads a checked tag.
    pub fn parse<T: AsRef<[u8]>>(tag: &VlanTag<T>) -> Result<VlanRepr> {
        tag.check_len()?;
        Ok(VlanRepr {
            pcp: tag.pcp(),
            dei: tag.dei(),
            vid: tag.vid(),
            ethertype: tag.ethertype(),
        })
    }

    /// Length of the emitted tag (4; the TPID belongs to the enclosing header).
    pub const fn header_len(&self) -> usize {
        VLAN_TAG_LEN
    }

    /// Writes the tag into a buffer of at least four bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, tag: &mut VlanTag<T>) {
        tag.set_tci(
            (u16::from(self.pcp & 7) << 13)
                | if self.dei { 0x1000 } else { 0 }
                | (self.vid & 0xfff),
        );
        tag.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testdata;
    use proptest::prelude::*;

    const DST: MacAddr = MacAddr::BROADCAST;
    const SRC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);

    #[test]
    fn deconstruct() {
        let f = Frame::new_checked(&testdata::ARP_REQUEST[..]).unwrap();
        assert_eq!(f.dst_addr(), DST);
        assert_eq!(f.src_addr(), SRC);
        assert_eq!(f.ethertype(), ethertype::ARP);
        assert_eq!(f.payload(), &testdata::ARP_REQUEST[14..]);
    }

    #[test]
    fn construct() {
        let mut buf = [0u8; 42];
        let mut f = Frame::new_unchecked(&mut buf[..]);
        f.set_dst_addr(DST);
        f.set_src_addr(SRC);
        f.set_ethertype(ethertype::ARP);
        f.payload_mut()
            .copy_from_slice(&testdata::ARP_REQUEST[14..]);
        assert_eq!(buf, testdata::ARP_REQUEST);
    }

    #[test]
    fn parse() {
        let f = Frame::new_checked(&testdata::ARP_REQUEST[..]).unwrap();
        assert_eq!(
            Repr::parse(&f).unwrap(),
            Repr {
                src_addr: SRC,
                dst_addr: DST,
                ethertype: ethertype::ARP
            }
        );
    }

    #[test]
    fn emit() {
        let repr = Repr {
            src_addr: SRC,
            dst_addr: DST,
            ethertype: ethertype::ARP,
        };
        let mut buf = testdata::ARP_REQUEST;
        buf[..14].fill(0);
        repr.emit(&mut Frame::new_unchecked(&mut buf[..]));
        assert_eq!(buf, testdata::ARP_REQUEST);
    }

    #[test]
    fn truncated() {
        assert_eq!(
            Frame::new_checked(&[0u8; 13][..]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            VlanTag::new_checked(&[0u8; 3][..]).unwrap_err(),
            Error::Truncated
        );
    }

    /// A tagged frame built from the real ARP request: TPID 0x8100, PCP 5, DEI 0, VID 100.
    /// (Built, not captured: the capture VM has no 8021q module.)
    fn tagged_arp() -> Vec<u8> {
        let mut v = testdata::ARP_REQUEST[..12].to_vec();
        v.extend_from_slice(&[0x81, 0x00, 0xa0, 0x64, 0x08, 0x06]);
        v.extend_from_slice(&testdata::ARP_REQUEST[14..]);
        v
    }

    #[test]
    fn vlan_deconstruct_construct() {
        let bytes = tagged_arp();
        let f = Frame::new_checked(&bytes[..]).unwrap();
        assert_eq!(f.ethertype(), ethertype::VLAN);
        let t = VlanTag::new_checked(f.payload()).unwrap();
        assert_eq!(
            (t.pcp(), t.dei(), t.vid(), t.ethertype()),
            (5, false, 100, ethertype::ARP)
        );
        assert_eq!(t.payload(), &testdata::ARP_REQUEST[14..]);
        assert_eq!(
            VlanRepr::parse(&t).unwrap(),
            VlanRepr {
                pcp: 5,
                dei: false,
                vid: 100,
                ethertype: ethertype::ARP
            }
        );

        let mut tag = [0u8; 4];
        let mut t = VlanTag::new_unchecked(&mut tag[..]);
        t.set_vid(100);
        t.set_pcp(5);
        t.set_dei(true);
        t.set_dei(false);
        t.set_ethertype(ethertype::ARP);
        assert_eq!(tag, [0xa0, 0x64, 0x08, 0x06]);
    }

    #[test]
    fn mac_display_parse() {
        let m: MacAddr = "02:00:5e:00:53:AF".parse().unwrap();
        assert_eq!(m, MacAddr([0x02, 0x00, 0x5e, 0x00, 0x53, 0xaf]));
        assert_eq!(m.to_string(), "02:00:5e:00:53:af");
        assert_eq!("02-00-5e-00-53-af".parse::<MacAddr>().unwrap(), m);
        for bad in [
            "",
            "02:00:5e:00:53",
            "02:00:5e:00:53:af:01",
            "02:00:5e:00:53:xg",
            "002:00:5e:00:53:af",
            "::::::",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
        assert!(MacAddr::BROADCAST.is_broadcast() && MacAddr::BROADCAST.is_multicast());
        assert!(MacAddr([0x33, 0x33, 0, 0, 0, 1]).is_multicast());
        assert!(SRC.is_unicast() && SRC.is_local());
        assert_eq!(
            MacAddr::ipv6_multicast("ff02::1:ff00:2".parse().unwrap()),
            MacAddr([0x33, 0x33, 0xff, 0x00, 0x00, 0x02])
        );
    }

    fn mac() -> impl Strategy<Value = MacAddr> {
        any::<[u8; 6]>().prop_map(MacAddr)
    }

    proptest! {
        #[test]
        fn repr_round_trip(src in mac(), dst in mac(), et in any::<u16>()) {
            let repr = Repr { src_addr: src, dst_addr: dst, ethertype: et };
            let mut buf = [0u8; HEADER_LEN];
            repr.emit(&mut Frame::new_unchecked(&mut buf[..]));
            prop_assert_eq!(Repr::parse(&Frame::new_checked(&buf[..]).unwrap()).unwrap(), repr);
        }

        #[test]
        fn vlan_repr_round_trip(pcp in 0u8..8, dei in any::<bool>(), vid in 0u16..4096, et in any::<u16>()) {
            let repr = VlanRepr { pcp, dei, vid, ethertype: et };
            let mut buf = [0u8; VLAN_TAG_LEN];
            repr.emit(&mut VlanTag::new_unchecked(&mut buf[..]));
            prop_assert_eq!(VlanRepr::parse(&VlanTag::new_checked(&buf[..]).unwrap()).unwrap(), repr);
        }

        #[test]
        fn mac_display_round_trip(m in mac()) {
            prop_assert_eq!(m.to_string().parse::<MacAddr>().unwrap(), m);
        }
    }
}
