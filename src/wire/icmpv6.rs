//! ICMPv6 (RFC 4443) and the Neighbor Discovery messages a forwarder needs (RFC 4861).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Echo: Identifier | Seq. No.   / NA: R|S|O flags, reserved / ...|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  NS/NA: Target Address (16 bytes), then options               |
//! |  Echo: data. Errors: as much of the invoking packet as fits   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! NDP option: | Type | Length (units of 8 bytes, 0 is invalid) | value ... |
//! Link-layer address option on Ethernet: | 1 or 2 | 1 | MAC (6 bytes) |
//! ```
//!
//! The checksum covers the IPv6 pseudo-header: `verify_checksum(src, dst)` /
//! `fill_checksum(src, dst)`.

use std::net::Ipv6Addr;

use super::checksum::{self, PseudoHeader};
use super::ethernet::MacAddr;
use super::{Error, Result, array, be16, put16};

/// Next-header number of ICMPv6.
pub const PROTOCOL: u8 = 58;

/// ICMPv6 message types steerd names.
pub mod msg_type {
    /// Destination Unreachable.
    pub const DST_UNREACHABLE: u8 = 1;
    /// Packet Too Big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time Exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter Problem.
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo Request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo Reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Router Solicitation.
    pub const ROUTER_SOLICIT: u8 = 133;
    /// Router Advertisement.
    pub const ROUTER_ADVERT: u8 = 134;
    /// Neighbor Solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbor Advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
    /// MLDv2 Listener Report.
    pub const MLDV2_REPORT: u8 = 143;
}

/// NDP option types.
pub mod ndp_option {
    /// Source Link-Layer Address.
    pub const SOURCE_LLADDR: u8 = 1;
    /// Target Link-Layer Address.
    pub const TARGET_LLADDR: u8 = 2;
}

/// Neighbor Advertisement flag: sender is a router.
pub const NA_FLAG_ROUTER: u8 = 0x80;
/// Neighbor Advertisement flag: sent in response to a solicitation.
pub const NA_FLAG_SOLICITED: u8 = 0x40;
/// Neighbor Advertisement flag: override an existing cache entry.
pub const NA_FLAG_OVERRIDE: u8 = 0x20;

mod field {
    use core::ops::{Range, RangeFrom};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    pub const NA_FLAGS: usize = 4;
    pub const DATA: RangeFrom<usize> = 8..;
    pub const TARGET: Range<usize> = 8..24;
    pub const NDP_OPTIONS: RangeFrom<usize> = 24..;
}

/// Length of the common ICMPv6 header (type, code, checksum, 4 message bytes).
pub const HEADER_LEN: usize = field::DATA.start;
/// Length of a Neighbor Solicitation/Advertisement before its options.
pub const ND_HEADER_LEN: usize = field::NDP_OPTIONS.start;
/// Length of an Ethernet link-layer address option.
pub const LLADDR_OPTION_LEN: usize = 8;

fn is_nd(msg_type: u8) -> bool {
    msg_type == msg_type::NEIGHBOR_SOLICIT || msg_type == msg_type::NEIGHBOR_ADVERT
}

/// A read/write view of an ICMPv6 message.
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

    /// Checks that the buffer holds the 8-byte header, and for Neighbor Solicitation
    /// and Advertisement the 24 bytes up to the end of the target address.
    ///
    /// After `check_len` succeeds, no accessor of this view panics.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN || (is_nd(b[field::TYPE]) && b.len() < ND_HEADER_LEN) {
            return Err(Error::Truncated);
        }
        Ok(())
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

    /// Neighbor Advertisement flags byte (R, S, O in the top bits).
    #[inline]
    pub fn na_flags(&self) -> u8 {
        self.buffer.as_ref()[field::NA_FLAGS]
    }

    /// Target address of a Neighbor Solicitation or Advertisement; `None` for other
    /// messages.
    #[inline]
    pub fn target_addr(&self) -> Option<Ipv6Addr> {
        let b = self.buffer.as_ref();
        if !is_nd(self.msg_type()) {
            return None;
        }
        b.get(field::TARGET).map(|t| Ipv6Addr::from(array::<16>(t)))
    }

    /// Finds the Ethernet link-layer address option of a Neighbor Solicitation (source,
    /// type 1) or Advertisement (target, type 2). `Ok(None)` when there is none (or
    /// the message is not NS/NA); [`Error::Malformed`] when an option has length 0 or
    /// overruns the message (RFC 4861 §4.6: such packets are discarded).
    pub fn lladdr_option(&self) -> Result<Option<MacAddr>> {
        let want = match self.msg_type() {
            msg_type::NEIGHBOR_SOLICIT => ndp_option::SOURCE_LLADDR,
            msg_type::NEIGHBOR_ADVERT => ndp_option::TARGET_LLADDR,
            _ => return Ok(None),
        };
        let mut opts = self
            .buffer
            .as_ref()
            .get(field::NDP_OPTIONS)
            .unwrap_or_default();
        let mut found = None;
        while !opts.is_empty() {
            let (&[t, units], _) = opts.split_first_chunk::<2>().ok_or(Error::Malformed)?;
            let len = usize::from(units) * 8;
            if len == 0 || len > opts.len() {
                return Err(Error::Malformed);
            }
            if t == want && found.is_none() && len == LLADDR_OPTION_LEN {
                found = Some(MacAddr(array(&opts[2..8])));
            }
            opts = &opts[len..];
        }
        Ok(found)
    }

    /// Verifies the checksum over the pseudo-header and the whole buffer.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let data = self.buffer.as_ref();
        checksum::combine(&[
            Ipv6Addr::pseudo_header(src, dst, PROTOCOL, data.len()),
            checksum::data(data),
        ]) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// Bytes after the 8-byte header: echo data, an error's invoking packet, or an
    /// NS/NA's target address and options.
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

    /// Sets the four message-specific bytes after the checksum (NA flags and
    /// reserved, or the reserved word of NS and errors).
    #[inline]
    pub fn set_message_word(&mut self, value: [u8; 4]) {
        self.buffer.as_mut()[4..8].copy_from_slice(&value);
    }

    /// Sets the target address (buffer of at least 24 bytes).
    #[inline]
    pub fn set_target_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::TARGET].copy_from_slice(&value.octets());
    }

    /// Computes and stores the checksum over the pseudo-header and the whole buffer.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let sum = checksum::combine(&[
            Ipv6Addr::pseudo_header(src, dst, PROTOCOL, data.len()),
            checksum::data(data),
        ]);
        self.set_checksum(!sum);
    }

    /// Bytes after the 8-byte header, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }
}

/// High-level representation of the ICMPv6 messages steerd handles. Echo data and
/// quoted packets are represented by their length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repr {
    /// Echo Request (128).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Bytes of echo data.
        data_len: usize,
    },
    /// Echo Reply (129).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Bytes of echo data.
        data_len: usize,
    },
    /// Destination Unreachable (1).
    DstUnreachable {
        /// Code (0 no route, 1 prohibited, 3 address unreachable, 4 port unreachable...).
        code: u8,
        /// Bytes of the invoking packet quoted.
        data_len: usize,
    },
    /// Time Exceeded (3).
    TimeExceeded {
        /// Code (0 hop limit exceeded in transit, 1 reassembly time exceeded).
        code: u8,
        /// Bytes of the invoking packet quoted.
        data_len: usize,
    },
    /// Neighbor Solicitation (135).
    NeighborSolicit {
        /// Address being resolved.
        target: Ipv6Addr,
        /// Source link-layer address option (absent in DAD probes from ::).
        source_lladdr: Option<MacAddr>,
    },
    /// Neighbor Advertisement (136).
    NeighborAdvert {
        /// R, S, O flags (`NA_FLAG_*`).
        flags: u8,
        /// Address advertised.
        target: Ipv6Addr,
        /// Target link-layer address option.
        target_lladdr: Option<MacAddr>,
    },
}

impl Repr {
    /// Parses a checked message. The checksum is not verified here (it needs the
    /// pseudo-header): use [`Packet::verify_checksum`]. NS/NA with a code other than 0
    /// or a malformed option are [`Error::Malformed`]; NS/NA options other than the
    /// link-layer address are skipped. Other types are [`Error::Unsupported`].
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        let data_len = packet.buffer.as_ref().len() - HEADER_LEN;
        let (ident, seq_no) = (packet.echo_ident(), packet.echo_seq_no());
        let code = packet.msg_code();
        match packet.msg_type() {
            msg_type::ECHO_REQUEST if code == 0 => Ok(Repr::EchoRequest {
                ident,
                seq_no,
                data_len,
            }),
            msg_type::ECHO_REPLY if code == 0 => Ok(Repr::EchoReply {
                ident,
                seq_no,
                data_len,
            }),
            msg_type::DST_UNREACHABLE => Ok(Repr::DstUnreachable { code, data_len }),
            msg_type::TIME_EXCEEDED => Ok(Repr::TimeExceeded { code, data_len }),
            t @ (msg_type::NEIGHBOR_SOLICIT | msg_type::NEIGHBOR_ADVERT) => {
                if code != 0 {
                    return Err(Error::Malformed);
                }
                let target = packet.target_addr().ok_or(Error::Truncated)?;
                let lladdr = packet.lladdr_option()?;
                if t == msg_type::NEIGHBOR_SOLICIT {
                    Ok(Repr::NeighborSolicit {
                        target,
                        source_lladdr: lladdr,
                    })
                } else {
                    let flags =
                        packet.na_flags() & (NA_FLAG_ROUTER | NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE);
                    Ok(Repr::NeighborAdvert {
                        flags,
                        target,
                        target_lladdr: lladdr,
                    })
                }
            }
            _ => Err(Error::Unsupported),
        }
    }

    /// Length of the emitted header: 8, or for NS/NA 24 plus the option.
    pub const fn header_len(&self) -> usize {
        match *self {
            Repr::NeighborSolicit {
                source_lladdr: l, ..
            }
            | Repr::NeighborAdvert {
                target_lladdr: l, ..
            } => ND_HEADER_LEN + if l.is_some() { LLADDR_OPTION_LEN } else { 0 },
            _ => HEADER_LEN,
        }
    }

    /// Length of the whole message.
    pub const fn buffer_len(&self) -> usize {
        match *self {
            Repr::EchoRequest { data_len, .. }
            | Repr::EchoReply { data_len, .. }
            | Repr::DstUnreachable { data_len, .. }
            | Repr::TimeExceeded { data_len, .. } => HEADER_LEN + data_len,
            _ => self.header_len(),
        }
    }

    /// Writes the message header (and for NS/NA the target and option) into a buffer
    /// of at least [`header_len`](Self::header_len) bytes, with a zero checksum; write
    /// any data, then call [`Packet::fill_checksum`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_checksum(0);
        let (t, code) = match *self {
            Repr::EchoRequest { ident, seq_no, .. } | Repr::EchoReply { ident, seq_no, .. } => {
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                let t = if matches!(self, Repr::EchoRequest { .. }) {
                    msg_type::ECHO_REQUEST
                } else {
                    msg_type::ECHO_REPLY
                };
                (t, 0)
            }
            Repr::DstUnreachable { code, .. } => {
                packet.set_message_word([0; 4]);
                (msg_type::DST_UNREACHABLE, code)
            }
            Repr::TimeExceeded { code, .. } => {
                packet.set_message_word([0; 4]);
                (msg_type::TIME_EXCEEDED, code)
            }
            Repr::NeighborSolicit {
                target,
                source_lladdr,
            } => {
                packet.set_message_word([0; 4]);
                packet.set_target_addr(target);
                emit_lladdr(packet, ndp_option::SOURCE_LLADDR, source_lladdr);
                (msg_type::NEIGHBOR_SOLICIT, 0)
            }
            Repr::NeighborAdvert {
                flags,
                target,
                target_lladdr,
            } => {
                packet.set_message_word([flags, 0, 0, 0]);
                packet.set_target_addr(target);
                emit_lladdr(packet, ndp_option::TARGET_LLADDR, target_lladdr);
                (msg_type::NEIGHBOR_ADVERT, 0)
            }
        };
        packet.set_msg_type(t);
        packet.set_msg_code(code);
    }
}

fn emit_lladdr<T: AsRef<[u8]> + AsMut<[u8]>>(
    packet: &mut Packet<T>,
    opt_type: u8,
    lladdr: Option<MacAddr>,
) {
    if let Some(mac) = lladdr {
        let o = &mut packet.buffer.as_mut()[ND_HEADER_LEN..ND_HEADER_LEN + LLADDR_OPTION_LEN];
        o[0] = opt_type;
        o[1] = 1;
        o[2..].copy_from_slice(&mac.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testdata;
    use proptest::prelude::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn echo() -> &'static [u8] {
        &testdata::IPV6_ICMP_ECHO_REQUEST[54..]
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(echo()).unwrap();
        assert_eq!(p.msg_type(), msg_type::ECHO_REQUEST);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0x09d8);
        assert_eq!(p.echo_ident(), 0x1da2);
        assert_eq!(p.echo_seq_no(), 1);
        assert_eq!(p.data().len(), 56);
        assert_eq!(p.target_addr(), None);
        assert!(p.verify_checksum(a("fd00:9::1"), a("fd00:9::2")));
        assert!(!p.verify_checksum(a("fd00:9::1"), a("fd00:9::3")));

        let ns = Packet::new_checked(&testdata::IPV6_NEIGHBOR_SOLICIT[54..]).unwrap();
        assert_eq!(ns.msg_type(), msg_type::NEIGHBOR_SOLICIT);
        assert_eq!(ns.target_addr(), Some(a("fd00:9::2")));
        assert_eq!(ns.lladdr_option(), Ok(Some(MacAddr([2, 0, 0, 0, 0, 0x0a]))));
        assert!(ns.verify_checksum(a("fd00:9::1"), a("ff02::1:ff00:2")));

        let na = Packet::new_checked(&testdata::IPV6_NEIGHBOR_ADVERT[54..]).unwrap();
        assert_eq!(na.na_flags(), NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE);
        assert_eq!(na.target_addr(), Some(a("fd00:9::2")));
        assert_eq!(na.lladdr_option(), Ok(Some(MacAddr([2, 0, 0, 0, 0, 0x0b]))));
        assert!(na.verify_checksum(a("fd00:9::2"), a("fd00:9::1")));
    }

    #[test]
    fn construct() {
        let mut buf = echo().to_vec();
        buf[..8].fill(0);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(msg_type::ECHO_REQUEST);
        p.set_msg_code(0);
        p.set_echo_ident(0x1da2);
        p.set_echo_seq_no(1);
        p.fill_checksum(a("fd00:9::1"), a("fd00:9::2"));
        assert_eq!(&buf[..], echo());
    }

    #[test]
    fn parse() {
        let p = Packet::new_checked(echo()).unwrap();
        assert_eq!(
            Repr::parse(&p).unwrap(),
            Repr::EchoRequest {
                ident: 0x1da2,
                seq_no: 1,
                data_len: 56
            }
        );
        let ns = Packet::new_checked(&testdata::IPV6_NEIGHBOR_SOLICIT[54..]).unwrap();
        assert_eq!(
            Repr::parse(&ns).unwrap(),
            Repr::NeighborSolicit {
                target: a("fd00:9::2"),
                source_lladdr: Some(MacAddr([2, 0, 0, 0, 0, 0x0a]))
            }
        );
        let na = Packet::new_checked(&testdata::IPV6_NEIGHBOR_ADVERT[54..]).unwrap();
        assert_eq!(
            Repr::parse(&na).unwrap(),
            Repr::NeighborAdvert {
                flags: NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE,
                target: a("fd00:9::2"),
                target_lladdr: Some(MacAddr([2, 0, 0, 0, 0, 0x0b])),
            }
        );
        // real port unreachable quoting the whole 77-byte IPv6 DNS query
        let un = Packet::new_checked(&testdata::IPV6_ICMP_PORT_UNREACH[54..]).unwrap();
        assert_eq!(
            Repr::parse(&un).unwrap(),
            Repr::DstUnreachable {
                code: 4,
                data_len: 77
            }
        );
        assert_eq!(un.data(), &testdata::IPV6_UDP_DNS[14..]);
        assert!(un.verify_checksum(a("fd00:9::2"), a("fd00:9::1")));
        // MLD report: valid, not represented
        let mld = Packet::new_checked(&testdata::IPV6_MLD_HBH[62..]).unwrap();
        assert_eq!(mld.msg_type(), msg_type::MLDV2_REPORT);
        assert_eq!(Repr::parse(&mld).unwrap_err(), Error::Unsupported);
    }

    #[test]
    fn emit() {
        let mut buf = echo().to_vec();
        buf[..8].fill(0);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        Repr::EchoRequest {
            ident: 0x1da2,
            seq_no: 1,
            data_len: 56,
        }
        .emit(&mut p);
        p.fill_checksum(a("fd00:9::1"), a("fd00:9::2"));
        assert_eq!(&buf[..], echo());

        let mut buf = [0u8; 32];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        Repr::NeighborAdvert {
            flags: NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE,
            target: a("fd00:9::2"),
            target_lladdr: Some(MacAddr([2, 0, 0, 0, 0, 0x0b])),
        }
        .emit(&mut p);
        p.fill_checksum(a("fd00:9::2"), a("fd00:9::1"));
        assert_eq!(&buf[..], &testdata::IPV6_NEIGHBOR_ADVERT[54..]);
    }

    #[test]
    fn rejects() {
        assert_eq!(
            Packet::new_checked(&echo()[..7]).unwrap_err(),
            Error::Truncated
        );
        let ns = &testdata::IPV6_NEIGHBOR_SOLICIT[54..];
        assert_eq!(
            Packet::new_checked(&ns[..23]).unwrap_err(),
            Error::Truncated
        );
        // option of length 0
        let mut b = ns.to_vec();
        b[25] = 0;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap().lladdr_option(),
            Err(Error::Malformed)
        );
        // option overrunning the message
        let mut b = ns.to_vec();
        b[25] = 2;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&b[..]).unwrap()),
            Err(Error::Malformed)
        );
        // a lone option byte
        let mut b = ns[..24].to_vec();
        b.push(1);
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap().lladdr_option(),
            Err(Error::Malformed)
        );
        // no options at all: fine
        assert_eq!(
            Packet::new_checked(&ns[..24]).unwrap().lladdr_option(),
            Ok(None)
        );
    }

    fn mac() -> impl Strategy<Value = Option<MacAddr>> {
        prop::option::of(any::<[u8; 6]>().prop_map(MacAddr))
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
            (any::<[u8; 16]>(), mac()).prop_map(|(t, source_lladdr)| Repr::NeighborSolicit {
                target: t.into(),
                source_lladdr
            }),
            (0u8..8, any::<[u8; 16]>(), mac()).prop_map(|(f, t, target_lladdr)| {
                Repr::NeighborAdvert {
                    flags: f << 5,
                    target: t.into(),
                    target_lladdr,
                }
            }),
        ]
    }

    proptest! {
        #[test]
        fn repr_round_trip(r in repr()) {
            let mut buf = vec![0u8; r.buffer_len()];
            let mut p = Packet::new_unchecked(&mut buf[..]);
            r.emit(&mut p);
            p.fill_checksum(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST);
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST));
            prop_assert_eq!(Repr::parse(&p).unwrap(), r);
        }

        #[test]
        fn lladdr_option_never_panics(t in prop::sample::select(vec![135u8, 136, 128]), rest in prop::collection::vec(any::<u8>(), 0..80)) {
            let mut b = vec![t, 0, 0, 0];
            b.extend_from_slice(&rest);
            if let Ok(p) = Packet::new_checked(&b[..]) {
                let _ = p.lladdr_option();
                let _ = Repr::parse(&p);
            }
        }
    }
}
