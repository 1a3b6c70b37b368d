//! UDP (RFC 768).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Source Port          |       Destination Port        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |            Length             |           Checksum            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The checksum covers the IP pseudo-header, so it is verified and filled on the view
//! with the enclosing addresses: `verify_checksum(src, dst)` / `fill_checksum(src, dst)`
//! take two `Ipv4Addr` or two `Ipv6Addr`.

use super::checksum::{self, PseudoHeader};
use super::{Error, Result, be16, put16};

/// IP protocol number of UDP.
pub const PROTOCOL: u8 = 17;

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A read/write view of a UDP datagram.
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

    /// Checks the buffer: at least 8 bytes ([`Error::Truncated`]), Length ≥ 8
    /// ([`Error::Malformed`]) and Length ≤ the buffer ([`Error::Truncated`]).
    ///
    /// After `check_len` succeeds, no accessor of this view panics.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let l = usize::from(self.len());
        if l < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if l > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::DST_PORT])
    }

    /// Length of header and payload.
    #[inline]
    pub fn len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// True when Length says there is no header at all (never after `check_len`).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checksum (0 = none, IPv4 only).
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Verifies the checksum over the pseudo-header and the datagram (bounded by
    /// Length). Over IPv4 a zero checksum means "not computed" and verifies; over IPv6
    /// it is invalid (RFC 8200 §8.1).
    pub fn verify_checksum<A: PseudoHeader>(&self, src: A, dst: A) -> bool {
        if self.checksum() == 0 {
            return A::ZERO_UDP_CHECKSUM_ALLOWED;
        }
        let data = &self.buffer.as_ref()[..usize::from(self.len())];
        checksum::combine(&[
            A::pseudo_header(src, dst, PROTOCOL, data.len()),
            checksum::data(data),
        ]) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// Payload, bounded by Length.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::SRC_PORT], value);
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::DST_PORT], value);
    }

    /// Sets Length.
    #[inline]
    pub fn set_len(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::LENGTH], value);
    }

    /// Sets the checksum.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::CHECKSUM], value);
    }

    /// Computes and stores the checksum over the pseudo-header and the datagram
    /// (bounded by Length). A computed 0 is sent as 0xffff (RFC 768).
    pub fn fill_checksum<A: PseudoHeader>(&mut self, src: A, dst: A) {
        self.set_checksum(0);
        let data = &self.buffer.as_ref()[..usize::from(self.len())];
        let sum = checksum::combine(&[
            A::pseudo_header(src, dst, PROTOCOL, data.len()),
            checksum::data(data),
        ]);
        let c = !sum;
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// Payload (bounded by Length), writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// High-level representation of a UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length in bytes.
    pub payload_len: usize,
}

impl Repr {
    /// Parses a checked datagram. The checksum is not verified here (it needs the
    /// pseudo-header): use [`Packet::verify_checksum`].
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: usize::from(packet.len()) - HEADER_LEN,
        })
    }

    /// Length of the emitted header (8).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Length of header and payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the header with a zero checksum; write the payload, then call
    /// [`Packet::fill_checksum`]. A `payload_len` above 65527 is clamped in Length.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(u16::try_from(self.buffer_len()).unwrap_or(u16::MAX));
        packet.set_checksum(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testdata;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const SRC4: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
    const DST4: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);

    fn dns4() -> &'static [u8] {
        &testdata::IPV4_UDP_DNS[34..]
    }

    fn dns6() -> &'static [u8] {
        &testdata::IPV6_UDP_DNS[54..]
    }

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(dns4()).unwrap();
        assert_eq!(p.src_port(), 47645);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.len(), 37);
        assert_eq!(p.checksum(), 0x42a5);
        assert_eq!(p.payload(), &dns4()[8..]);
        assert_eq!(&p.payload()[12..24], b"\x07example\x03com");
        assert!(p.verify_checksum(SRC4, DST4));
        assert!(!p.verify_checksum(SRC4, Ipv4Addr::new(10, 9, 0, 3)));

        let p = Packet::new_checked(dns6()).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (36949, 53, 37));
        assert!(p.verify_checksum(v6("fd00:9::1"), v6("fd00:9::2")));
    }

    #[test]
    fn construct() {
        let mut buf = dns4().to_vec();
        buf[..8].fill(0);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_src_port(47645);
        p.set_dst_port(53);
        p.set_len(37);
        p.fill_checksum(SRC4, DST4);
        assert_eq!(&buf[..], dns4());

        let mut buf = dns6().to_vec();
        buf[6..8].fill(0);
        Packet::new_unchecked(&mut buf[..]).fill_checksum(v6("fd00:9::1"), v6("fd00:9::2"));
        assert_eq!(&buf[..], dns6());
    }

    #[test]
    fn parse() {
        let p = Packet::new_checked(dns4()).unwrap();
        assert_eq!(
            Repr::parse(&p).unwrap(),
            Repr {
                src_port: 47645,
                dst_port: 53,
                payload_len: 29
            }
        );
    }

    #[test]
    fn emit() {
        let mut buf = dns4().to_vec();
        buf[..8].fill(0);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        Repr {
            src_port: 47645,
            dst_port: 53,
            payload_len: 29,
        }
        .emit(&mut p);
        p.fill_checksum(SRC4, DST4);
        assert_eq!(&buf[..], dns4());
    }

    #[test]
    fn zero_checksum() {
        let mut b = dns4().to_vec();
        b[6..8].fill(0);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(SRC4, DST4));
        assert!(!p.verify_checksum(v6("fd00:9::1"), v6("fd00:9::2")));
    }

    #[test]
    fn check_len_rejects() {
        assert_eq!(
            Packet::new_checked(&dns4()[..7]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&dns4()[..36]).unwrap_err(),
            Error::Truncated
        );
        let mut b = dns4().to_vec();
        b[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
    }

    proptest! {
        #[test]
        fn repr_round_trip(src_port in any::<u16>(), dst_port in any::<u16>(), payload_len in 0usize..600) {
            let r = Repr { src_port, dst_port, payload_len };
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut buf[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(), r);
        }

        #[test]
        fn fill_then_verify(payload in prop::collection::vec(any::<u8>(), 0..100), s in any::<[u8; 16]>(), d in any::<[u8; 16]>()) {
            let r = Repr { src_port: 1, dst_port: 2, payload_len: payload.len() };
            let mut buf = vec![0u8; r.buffer_len()];
            let mut p = Packet::new_unchecked(&mut buf[..]);
            r.emit(&mut p);
            p.payload_mut().copy_from_slice(&payload);
            p.fill_checksum(Ipv6Addr::from(s), Ipv6Addr::from(d));
            prop_assert!(p.checksum() != 0);
            prop_assert!(p.verify_checksum(Ipv6Addr::from(s), Ipv6Addr::from(d)));
        }
    }
}
