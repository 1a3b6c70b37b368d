//! ICMP for IPv4 (RFC 792): echo, and the two errors a forwarder sends
//! (Destination Unreachable, Time Exceeded).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Identifier (echo) / unused   | Sequence Number (echo)/unused |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Data: echo payload, or the invoking datagram's IP header + 8 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The checksum covers the whole ICMP message (no pseudo-header), so
//! [`Repr::parse`] verifies it.

use super::{Error, Result, be16, checksum, put16};

/// ICMP message types steerd names.
pub mod msg_type {
    /// Echo Reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination Unreachable.
    pub const DST_UNREACHABLE: u8 = 3;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo Request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time Exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter Problem.
    pub const PARAM_PROBLEM: u8 = 12;
}

mod field {
    use core::ops::{Range, RangeFrom};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    pub const REST: Range<usize> = 4..8;
    pub const DATA: RangeFrom<usize> = 8..;
}

/// Length of the ICMP header (type, code, checksum and the 4-byte rest of header).
pub const HEADER_LEN: usize = field::DATA.start;

/// A read/write view of an ICMPv4 message.
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

    /// Checks that the buffer holds the 8-byte header.
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

    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Echo identifier (meaningful for echo messages).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::ECHO_IDENT])
    }

    /// Echo sequence number (meaningful for echo messages).
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::ECHO_SEQNO])
    }

    /// The "rest of header" word (next-hop MTU for "fragmentation needed", ...).
    #[inline]
    pub fn rest_of_header(&self) -> [u8; 4] {
        super::array(&self.buffer.as_ref()[field::REST])
    }

    /// True when the checksum over the whole buffer verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// Bytes after the header: echo data, or the invoking datagram of an error.
    #[inline]
    pub fn data(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::DATA]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the message type.
    #[inline]
    pub fn set_msg_type(&mut self, value: u8) {
        self.buffer.as_mut()[field::TYPE] = value;
    }

    /// Sets the message code.
    #[inline]
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the checksum.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::CHECKSUM], value);
    }

    /// Sets the echo identifier.
    #[inline]
    pub fn set_echo_ident(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::ECHO_IDENT], value);
    }

    /// Sets the echo sequence number.
    #[inline]
    pub fn set_echo_seq_no(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::ECHO_SEQNO], value);
    }

    /// Sets the "rest of header" word.
    #[inline]
    pub fn set_rest_of_header(&mut self, value: [u8; 4]) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&value);
    }

    /// Computes and stores the checksum over the whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = !checksum::data(self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// Bytes after the header, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }
}

/// High-level representation of the ICMPv4 messages steerd handles. The data after the
/// header (echo payload, invoking datagram) is represented by its length; the caller
/// copies it with [`Packet::data_mut`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repr {
    /// Echo Request (type 8).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Bytes of echo data.
        data_len: usize,
    },
    /// Echo Reply (type 0).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Bytes of echo data.
        data_len: usize,
    },
    /// Destination Unreachable (type 3).
    DstUnreachable {
        /// Code (0 net, 1 host, 3 port, 4 fragmentation needed, ...).
        code: u8,
        /// Bytes of the invoking datagram quoted (IP header + at least 8 bytes).
        data_len: usize,
    },
    /// Time Exceeded (type 11).
    TimeExceeded {
        /// Code (0 TTL exceeded in transit, 1 reassembly time exceeded).
        code: u8,
        /// Bytes of the invoking datagram quoted.
        data_len: usize,
    },
}

impl Repr {
    /// Parses a checked message, verifying the checksum ([`Error::Checksum`]). Other
    /// message types are [`Error::Unsupported`].
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        let data_len = packet.buffer.as_ref().len() - HEADER_LEN;
        let (ident, seq_no) = (packet.echo_ident(), packet.echo_seq_no());
        match (packet.msg_type(), packet.msg_code()) {
            (msg_type::ECHO_REQUEST, 0) => Ok(Repr::EchoRequest {
                ident,
                seq_no,
                data_len,
            }),
            (msg_type::ECHO_REPLY, 0) => Ok(Repr::EchoReply {
                ident,
                seq_no,
                data_len,
            }),
            (msg_type::DST_UNREACHABLE, code) => Ok(Repr::DstUnreachable { code, data_len }),
            (msg_type::TIME_EXCEEDED, code) => Ok(Repr::TimeExceeded { code, data_len }),
            _ => Err(Error::Unsupported),
        }
    }

    /// Length of the emitted header (8).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Length of the whole message.
    pub const fn buffer_len(&self) -> usize {
        match *self {
            Repr::EchoRequest { data_len, .. }
            | Repr::EchoReply { data_len, .. }
            | Repr::DstUnreachable { data_len, .. }
            | Repr::TimeExceeded { data_len, .. } => HEADER_LEN + data_len,
        }
    }

    /// Writes the header into a buffer of at least [`header_len`](Self::header_len)
    /// bytes with a zero checksum; write the data, then call [`Packet::fill_checksum`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let (t, code, rest) = match *self {
            Repr::EchoRequest { ident, seq_no, .. } => {
                (msg_type::ECHO_REQUEST, 0, echo_rest(ident, seq_no))
            }
            Repr::EchoReply { ident, seq_no, .. } => {
                (msg_type::ECHO_REPLY, 0, echo_rest(ident, seq_no))
            }
            Repr::DstUnreachable { code, .. } => (msg_type::DST_UNREACHABLE, code, [0; 4]),
            Repr::TimeExceeded { code, .. } => (msg_type::TIME_EXCEEDED, code, [0; 4]),
        };
        packet.set_msg_type(t);
        packet.set_msg_code(code);
        packet.set_checksum(0);
        packet.set_rest_of_header(rest);
    }
}

fn echo_rest(ident: u16, seq_no: u16) -> [u8; 4] {
    let (i, s) = (ident.to_be_bytes(), seq_no.to_be_bytes());
    [i[0], i[1], s[0], s[1]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ipv4, testdata};
    use proptest::prelude::*;

    fn echo() -> &'static [u8] {
        &testdata::IPV4_ICMP_ECHO_REQUEST[34..]
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(echo()).unwrap();
        assert_eq!(p.msg_type(), msg_type::ECHO_REQUEST);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0x8088);
        assert_eq!(p.echo_ident(), 0x1da1);
        assert_eq!(p.echo_seq_no(), 1);
        assert_eq!(p.data().len(), 56);
        assert_eq!(&p.data()[16..20], &[0x10, 0x11, 0x12, 0x13]); // after ping's 16-byte timestamp
        assert!(p.verify_checksum());
    }

    #[test]
    fn construct() {
        let mut buf = echo().to_vec();
        buf[..8].fill(0);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(msg_type::ECHO_REQUEST);
        p.set_msg_code(0);
        p.set_echo_ident(0x1da1);
        p.set_echo_seq_no(1);
        p.fill_checksum();
        assert_eq!(&buf[..], echo());
    }

    #[test]
    fn parse() {
        let p = Packet::new_checked(echo()).unwrap();
        assert_eq!(
            Repr::parse(&p).unwrap(),
            Repr::EchoRequest {
                ident: 0x1da1,
                seq_no: 1,
                data_len: 56
            }
        );

        // A real port unreachable quoting the whole 57-byte DNS query it answers.
        let p = Packet::new_checked(&testdata::IPV4_ICMP_PORT_UNREACH[34..]).unwrap();
        assert_eq!(
            Repr::parse(&p).unwrap(),
            Repr::DstUnreachable {
                code: 3,
                data_len: 57
            }
        );
        let quoted = ipv4::Packet::new_checked(p.data()).unwrap();
        assert_eq!(quoted.dst_addr(), std::net::Ipv4Addr::new(10, 9, 0, 2));
        assert_eq!(p.data(), &testdata::IPV4_UDP_DNS[14..]);
    }

    #[test]
    fn emit() {
        let mut buf = echo().to_vec();
        buf[..8].fill(0);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        Repr::EchoRequest {
            ident: 0x1da1,
            seq_no: 1,
            data_len: 56,
        }
        .emit(&mut p);
        p.fill_checksum();
        assert_eq!(&buf[..], echo());
    }

    #[test]
    fn rejects() {
        assert_eq!(
            Packet::new_checked(&echo()[..7]).unwrap_err(),
            Error::Truncated
        );
        let mut b = echo().to_vec();
        b[20] ^= 0xff;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap_err(),
            Error::Checksum
        );
        let mut b = echo().to_vec();
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_msg_type(msg_type::REDIRECT);
        p.fill_checksum();
        assert_eq!(
            Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap_err(),
            Error::Unsupported
        );
    }

    fn repr() -> impl Strategy<Value = Repr> {
        prop_oneof![
            (any::<u16>(), any::<u16>(), 0usize..100).prop_map(|(ident, seq_no, data_len)| {
                Repr::EchoRequest {
                    ident,
                    seq_no,
                    data_len,
                }
            }),
            (any::<u16>(), any::<u16>(), 0usize..100).prop_map(|(ident, seq_no, data_len)| {
                Repr::EchoReply {
                    ident,
                    seq_no,
                    data_len,
                }
            }),
            (any::<u8>(), 0usize..100)
                .prop_map(|(code, data_len)| Repr::DstUnreachable { code, data_len }),
            (any::<u8>(), 0usize..100)
                .prop_map(|(code, data_len)| Repr::TimeExceeded { code, data_len }),
        ]
    }

    proptest! {
        #[test]
        fn repr_round_trip(r in repr(), fill in any::<u8>()) {
            let mut buf = vec![fill; r.buffer_len()];
            let mut p = Packet::new_unchecked(&mut buf[..]);
            r.emit(&mut p);
            p.fill_checksum();
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(), r);
        }
    }
}
