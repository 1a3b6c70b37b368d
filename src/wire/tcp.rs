//! TCP segment headers (RFC 9293). steerd forwards TCP, it does not terminate it, so
//! options are kept opaque: [`Packet::options`] gives their bytes.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Source Port          |       Destination Port        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        Sequence Number                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Acknowledgment Number                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Data |     |N|C|E|U|A|P|R|S|F|                               |
//! | Offset| Rsv |S|W|C|R|C|S|S|Y|I|            Window             |
//! |       |     | |R|E|G|K|H|T|N|N|                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Checksum            |         Urgent Pointer        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Options (Data Offset > 5)                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! TCP has no length field: the segment is the whole buffer, so pass a buffer cut to
//! the IP payload (`ipv4::Packet::payload`), not the Ethernet frame's tail.

use core::fmt;

use super::checksum::{self, PseudoHeader};
use super::{Error, Result, be16, be32, put16, put32};

/// IP protocol number of TCP.
pub const PROTOCOL: u8 = 6;

/// The nine TCP flag bits (NS, CWR, ECE, URG, ACK, PSH, RST, SYN, FIN).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u16);

impl Flags {
    /// FIN: no more data from sender.
    pub const FIN: Flags = Flags(0x001);
    /// SYN: synchronize sequence numbers.
    pub const SYN: Flags = Flags(0x002);
    /// RST: reset the connection.
    pub const RST: Flags = Flags(0x004);
    /// PSH: push.
    pub const PSH: Flags = Flags(0x008);
    /// ACK: acknowledgment field is significant.
    pub const ACK: Flags = Flags(0x010);
    /// URG: urgent pointer is significant.
    pub const URG: Flags = Flags(0x020);
    /// ECE: ECN echo.
    pub const ECE: Flags = Flags(0x040);
    /// CWR: congestion window reduced.
    pub const CWR: Flags = Flags(0x080);
    /// NS: ECN nonce (historic, RFC 3540).
    pub const NS: Flags = Flags(0x100);
    /// All nine bits.
    pub const ALL: Flags = Flags(0x1ff);

    /// Flags from the low nine bits of `bits`.
    pub const fn from_bits(bits: u16) -> Flags {
        Flags(bits & 0x1ff)
    }

    /// The bits.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// True when every bit of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 9] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "NS"];
        let mut first = true;
        for (i, n) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(n)?;
                first = false;
            }
        }
        if first {
            f.write_str("(none)")?;
        }
        Ok(())
    }
}

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    pub const OFF_FLAGS: Range<usize> = 12..14;
    pub const WIN_SIZE: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = field::URGENT.end;

/// Longest header (Data Offset 15).
pub const MAX_HEADER_LEN: usize = 60;

/// A read/write view of a TCP segment.
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

    /// Checks the buffer: at least 20 bytes ([`Error::Truncated`]), Data Offset ≥ 5
    /// ([`Error::Malformed`]) and the whole header present ([`Error::Truncated`]).
    ///
    /// After `check_len` succeeds, no accessor of this view panics.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = usize::from(self.header_len());
        if hl < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if hl > len {
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

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::SEQ_NUM])
    }

    /// Acknowledgment number.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::ACK_NUM])
    }

    #[inline]
    fn off_flags(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::OFF_FLAGS])
    }

    /// Header length in bytes (Data Offset × 4).
    #[inline]
    pub fn header_len(&self) -> u8 {
        ((self.off_flags() >> 12) as u8) * 4
    }

    /// The flag bits.
    #[inline]
    pub fn flags(&self) -> Flags {
        Flags::from_bits(self.off_flags())
    }

    /// FIN flag.
    #[inline]
    pub fn fin(&self) -> bool {
        self.flags().contains(Flags::FIN)
    }

    /// SYN flag.
    #[inline]
    pub fn syn(&self) -> bool {
        self.flags().contains(Flags::SYN)
    }

    /// RST flag.
    #[inline]
    pub fn rst(&self) -> bool {
        self.flags().contains(Flags::RST)
    }

    /// ACK flag.
    #[inline]
    pub fn ack(&self) -> bool {
        self.flags().contains(Flags::ACK)
    }

    /// Window size.
    #[inline]
    pub fn window_len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::WIN_SIZE])
    }

    /// Checksum.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent_at(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::URGENT])
    }

    /// Verifies the checksum over the pseudo-header and the whole buffer.
    pub fn verify_checksum<A: PseudoHeader>(&self, src: A, dst: A) -> bool {
        let data = self.buffer.as_ref();
        checksum::combine(&[
            A::pseudo_header(src, dst, PROTOCOL, data.len()),
            checksum::data(data),
        ]) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// Option bytes, uninterpreted.
    #[inline]
    pub fn options(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.header_len())]
    }

    /// Segment data.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[usize::from(self.header_len())..]
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

    /// Sets the sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, value: u32) {
        put32(&mut self.buffer.as_mut()[field::SEQ_NUM], value);
    }

    /// Sets the acknowledgment number.
    #[inline]
    pub fn set_ack_number(&mut self, value: u32) {
        put32(&mut self.buffer.as_mut()[field::ACK_NUM], value);
    }

    /// Sets the header length in bytes (rounded down to a multiple of 4).
    #[inline]
    pub fn set_header_len(&mut self, value: u8) {
        let v = (self.off_flags() & 0x0fff) | (u16::from(value / 4) << 12);
        put16(&mut self.buffer.as_mut()[field::OFF_FLAGS], v);
    }

    /// Sets the nine flag bits (the reserved bits are cleared).
    #[inline]
    pub fn set_flags(&mut self, value: Flags) {
        let v = (self.off_flags() & 0xf000) | value.bits();
        put16(&mut self.buffer.as_mut()[field::OFF_FLAGS], v);
    }

    /// Sets the window size.
    #[inline]
    pub fn set_window_len(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::WIN_SIZE], value);
    }

    /// Sets the checksum.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::CHECKSUM], value);
    }

    /// Sets the urgent pointer.
    #[inline]
    pub fn set_urgent_at(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::URGENT], value);
    }

    /// Computes and stores the checksum over the pseudo-header and the whole buffer.
    pub fn fill_checksum<A: PseudoHeader>(&mut self, src: A, dst: A) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let sum = checksum::combine(&[
            A::pseudo_header(src, dst, PROTOCOL, data.len()),
            checksum::data(data),
        ]);
        self.set_checksum(!sum);
    }

    /// Option bytes, writable.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = usize::from(self.header_len());
        &mut self.buffer.as_mut()[HEADER_LEN..hl]
    }

    /// Segment data, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = usize::from(self.header_len());
        &mut self.buffer.as_mut()[hl..]
    }
}

/// High-level representation of a TCP header; options are represented only by their
/// length (`emit` zero-fills them: End of Option List).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: u32,
    /// Acknowledgment number.
    pub ack_number: u32,
    /// Flags.
    pub flags: Flags,
    /// Window size.
    pub window_len: u16,
    /// Urgent pointer.
    pub urgent_at: u16,
    /// Bytes of options, a multiple of 4 up to 40.
    pub options_len: u8,
}

impl Repr {
    /// Parses a checked segment. The checksum is not verified here (it needs the
    /// pseudo-header): use [`Packet::verify_checksum`].
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window_len: packet.window_len(),
            urgent_at: packet.urgent_at(),
            options_len: packet.header_len() - HEADER_LEN as u8,
        })
    }

    /// Length of the emitted header (20 + options).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN + self.options_len as usize
    }

    /// Writes the header, zero-filled options and a zero checksum into a buffer of at
    /// least [`header_len`](Self::header_len) bytes; write the payload, then call
    /// [`Packet::fill_checksum`]. `options_len` is rounded down to a multiple of 4 and
    /// capped at 40.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number);
        let hl = HEADER_LEN as u8 + self.options_len.min(40);
        put16(&mut packet.buffer.as_mut()[field::OFF_FLAGS], 0);
        packet.set_header_len(hl);
        packet.set_flags(self.flags);
        packet.set_window_len(self.window_len);
        packet.set_checksum(0);
        packet.set_urgent_at(self.urgent_at);
        packet.options_mut().fill(0);
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

    fn syn4() -> &'static [u8] {
        &testdata::IPV4_TCP_SYN[34..]
    }

    fn syn_repr() -> Repr {
        Repr {
            src_port: 47154,
            dst_port: 80,
            seq_number: 781654965,
            ack_number: 0,
            flags: Flags::SYN,
            window_len: 64240,
            urgent_at: 0,
            options_len: 20,
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(syn4()).unwrap();
        assert_eq!(p.src_port(), 47154);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), 781654965);
        assert_eq!(p.ack_number(), 0);
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.flags(), Flags::SYN);
        assert!(p.syn() && !p.ack() && !p.fin() && !p.rst());
        assert_eq!(p.window_len(), 64240);
        assert_eq!(p.checksum(), 0xe0b9);
        assert_eq!(p.urgent_at(), 0);
        // MSS 1460, SACK permitted, timestamps, NOP, window scale 10
        assert_eq!(&p.options()[..4], &[0x02, 0x04, 0x05, 0xb4]);
        assert_eq!(&p.options()[17..], &[0x03, 0x03, 0x0a]);
        assert!(p.payload().is_empty());
        assert!(p.verify_checksum(SRC4, DST4));

        let rst = Packet::new_checked(&testdata::IPV4_TCP_RST[34..]).unwrap();
        assert_eq!(rst.flags(), Flags::RST | Flags::ACK);
        assert_eq!(rst.ack_number(), 781654966);
        assert!(rst.verify_checksum(DST4, SRC4));

        let v6 = Packet::new_checked(&testdata::IPV6_TCP_SYN[54..]).unwrap();
        let (s, d): (Ipv6Addr, Ipv6Addr) =
            ("fd00:9::1".parse().unwrap(), "fd00:9::2".parse().unwrap());
        assert_eq!((v6.src_port(), v6.dst_port()), (41060, 80));
        assert!(v6.verify_checksum(s, d));
        // (swapping src and dst would not change the sum: it is commutative)
        assert!(!v6.verify_checksum(s, "fd00:9::3".parse().unwrap()));
    }

    #[test]
    fn construct() {
        let mut buf = syn4().to_vec();
        buf[..20].fill(0);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_src_port(47154);
        p.set_dst_port(80);
        p.set_seq_number(781654965);
        p.set_ack_number(0);
        p.set_header_len(40);
        p.set_flags(Flags::SYN);
        p.set_window_len(64240);
        p.set_urgent_at(0);
        p.fill_checksum(SRC4, DST4);
        assert_eq!(&buf[..], syn4());
    }

    #[test]
    fn parse() {
        let p = Packet::new_checked(syn4()).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), syn_repr());
    }

    #[test]
    fn emit() {
        let mut buf = syn4().to_vec();
        let options = buf[20..40].to_vec();
        buf.fill(0);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        syn_repr().emit(&mut p);
        p.options_mut().copy_from_slice(&options);
        p.fill_checksum(SRC4, DST4);
        assert_eq!(&buf[..], syn4());
    }

    #[test]
    fn check_len_rejects() {
        assert_eq!(
            Packet::new_checked(&syn4()[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&syn4()[..39]).unwrap_err(),
            Error::Truncated
        );
        let mut b = syn4().to_vec();
        b[12] = 0x40;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn flags_debug() {
        assert_eq!(format!("{:?}", Flags::SYN | Flags::ACK), "SYN|ACK");
        assert_eq!(format!("{:?}", Flags::default()), "(none)");
    }

    proptest! {
        #[test]
        fn repr_round_trip(
            src_port in any::<u16>(), dst_port in any::<u16>(),
            seq_number in any::<u32>(), ack_number in any::<u32>(),
            flags in 0u16..0x200, window_len in any::<u16>(), urgent_at in any::<u16>(),
            opt_words in 0u8..=10, payload_len in 0usize..64,
        ) {
            let r = Repr {
                src_port, dst_port, seq_number, ack_number,
                flags: Flags::from_bits(flags), window_len, urgent_at,
                options_len: opt_words * 4,
            };
            let mut buf = vec![0xa5u8; r.header_len() + payload_len];
            r.emit(&mut Packet::new_unchecked(&mut buf[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(), r);
        }
    }
}
