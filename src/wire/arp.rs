//! ARP (RFC 826) for Ethernet and IPv4, the only combination steerd speaks.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Hardware type (1)           |   Protocol type (0x0800)      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  HLEN (6)     |  PLEN (4)     |          Operation            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Sender hardware address (6) ... | Sender protocol address (4)|
//! |  Target hardware address (6) ... | Target protocol address (4)|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The view has fixed offsets for the Ethernet/IPv4 layout, so `check_len` requires the
//! full 28 bytes; [`Repr::parse`] rejects other hardware or protocol types.

use std::net::Ipv4Addr;

use super::ethernet::{MacAddr, ethertype};
use super::{Error, Result, array, be16, put16};

/// Hardware type for Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;

/// ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Who has `target_ip`? Tell `source_ip`.
    Request,
    /// `source_ip` is at `source_hw`.
    Reply,
    /// Any other opcode (RARP, InARP, ...).
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(v: u16) -> Self {
        match v {
            1 => Operation::Request,
            2 => Operation::Reply,
            other => Operation::Unknown(other),
        }
    }
}

impl From<Operation> for u16 {
    fn from(op: Operation) -> u16 {
        match op {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(v) => v,
        }
    }
}

mod field {
    use core::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = field::TPA.end;

/// A read/write view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer and checks it with [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds the 28 bytes of an Ethernet/IPv4 ARP packet
    /// (Ethernet padding after them is allowed).
    ///
    /// After `check_len` succeeds, no accessor of this view panics.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < PACKET_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type (1 for Ethernet).
    pub fn hardware_type(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::HTYPE])
    }

    /// Protocol type (0x0800 for IPv4).
    pub fn protocol_type(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::PTYPE])
    }

    /// Hardware address length.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Operation.
    pub fn operation(&self) -> Operation {
        Operation::from(be16(&self.buffer.as_ref()[field::OPER]))
    }

    /// Sender hardware address.
    pub fn source_hardware_addr(&self) -> MacAddr {
        MacAddr(array(&self.buffer.as_ref()[field::SHA]))
    }

    /// Sender protocol address.
    pub fn source_protocol_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(array::<4>(&self.buffer.as_ref()[field::SPA]))
    }

    /// Target hardware address.
    pub fn target_hardware_addr(&self) -> MacAddr {
        MacAddr(array(&self.buffer.as_ref()[field::THA]))
    }

    /// Target protocol address.
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(array::<4>(&self.buffer.as_ref()[field::TPA]))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the hardware type.
    pub fn set_hardware_type(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::HTYPE], value);
    }

    /// Sets the protocol type.
    pub fn set_protocol_type(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::PTYPE], value);
    }

    /// Sets the hardware address length.
    pub fn set_hardware_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value;
    }

    /// Sets the protocol address length.
    pub fn set_protocol_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value;
    }

    /// Sets the operation.
    pub fn set_operation(&mut self, value: Operation) {
        put16(&mut self.buffer.as_mut()[field::OPER], value.into());
    }

    /// Sets the sender hardware address.
    pub fn set_source_hardware_addr(&mut self, value: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&value.0);
    }

    /// Sets the sender protocol address.
    pub fn set_source_protocol_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&value.octets());
    }

    /// Sets the target hardware address.
    pub fn set_target_hardware_addr(&mut self, value: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&value.0);
    }

    /// Sets the target protocol address.
    pub fn set_target_protocol_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&value.octets());
    }
}

/// High-level representation of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Request, reply or other.
    pub operation: Operation,
    /// Sender hardware address.
    pub source_hw: MacAddr,
    /// Sender protocol address.
    pub source_ip: Ipv4Addr,
    /// Target hardware address (zero in a request).
    pub target_hw: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl Repr {
    /// Parses a checked packet; anything but Ethernet/IPv4 (htype 1, ptype 0x0800,
    /// hlen 6, plen 4) is [`Error::Unsupported`].
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.hardware_type() != HTYPE_ETHERNET
            || packet.protocol_type() != ethertype::IPV4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(Error::Unsupported);
        }
        Ok(Repr {
            operation: packet.operation(),
            source_hw: packet.source_hardware_addr(),
            source_ip: packet.source_protocol_addr(),
            target_hw: packet.target_hardware_addr(),
            target_ip: packet.target_protocol_addr(),
        })
    }

    /// Length of the emitted packet (28).
    pub const fn header_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the packet into a buffer of at least [`header_len`](Self::header_len) bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_hardware_type(HTYPE_ETHERNET);
        packet.set_protocol_type(ethertype::IPV4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_source_hardware_addr(self.source_hw);
        packet.set_source_protocol_addr(self.source_ip);
        packet.set_target_hardware_addr(self.target_hw);
        packet.set_target_protocol_addr(self.target_ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testdata;
    use proptest::prelude::*;

    fn request_bytes() -> &'static [u8] {
        &testdata::ARP_REQUEST[14..]
    }

    fn request_repr() -> Repr {
        Repr {
            operation: Operation::Request,
            source_hw: MacAddr([0x02, 0, 0, 0, 0, 0x0a]),
            source_ip: Ipv4Addr::new(10, 9, 0, 1),
            target_hw: MacAddr::UNSPECIFIED,
            target_ip: Ipv4Addr::new(10, 9, 0, 2),
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(request_bytes()).unwrap();
        assert_eq!(p.hardware_type(), 1);
        assert_eq!(p.protocol_type(), 0x0800);
        assert_eq!(p.hardware_len(), 6);
        assert_eq!(p.protocol_len(), 4);
        assert_eq!(p.operation(), Operation::Request);
        assert_eq!(p.source_hardware_addr(), MacAddr([0x02, 0, 0, 0, 0, 0x0a]));
        assert_eq!(p.source_protocol_addr(), Ipv4Addr::new(10, 9, 0, 1));
        assert_eq!(p.target_hardware_addr(), MacAddr::UNSPECIFIED);
        assert_eq!(p.target_protocol_addr(), Ipv4Addr::new(10, 9, 0, 2));
    }

    #[test]
    fn construct() {
        let mut buf = [0u8; PACKET_LEN];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_hardware_type(1);
        p.set_protocol_type(0x0800);
        p.set_hardware_len(6);
        p.set_protocol_len(4);
        p.set_operation(Operation::Request);
        p.set_source_hardware_addr(MacAddr([0x02, 0, 0, 0, 0, 0x0a]));
        p.set_source_protocol_addr(Ipv4Addr::new(10, 9, 0, 1));
        p.set_target_hardware_addr(MacAddr::UNSPECIFIED);
        p.set_target_protocol_addr(Ipv4Addr::new(10, 9, 0, 2));
        assert_eq!(&buf[..], request_bytes());
    }

    #[test]
    fn parse() {
        let p = Packet::new_checked(request_bytes()).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), request_repr());
        let reply = Packet::new_checked(&testdata::ARP_REPLY[14..]).unwrap();
        let r = Repr::parse(&reply).unwrap();
        assert_eq!(r.operation, Operation::Reply);
        assert_eq!(r.source_hw, MacAddr([0x02, 0, 0, 0, 0, 0x0b]));
        assert_eq!(r.source_ip, Ipv4Addr::new(10, 9, 0, 2));
    }

    #[test]
    fn emit() {
        let mut buf = [0u8; PACKET_LEN];
        request_repr().emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[..], request_bytes());
    }

    #[test]
    fn rejects() {
        assert_eq!(
            Packet::new_checked(&request_bytes()[..27]).unwrap_err(),
            Error::Truncated
        );
        let mut b = request_bytes().to_vec();
        b[0] = 6; // IEEE 802 hardware type
        assert_eq!(
            Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap_err(),
            Error::Unsupported
        );
    }

    fn operation() -> impl Strategy<Value = Operation> {
        prop_oneof![
            Just(Operation::Request),
            Just(Operation::Reply),
            (3u16..).prop_map(Operation::Unknown),
            Just(Operation::Unknown(0)),
        ]
    }

    proptest! {
        #[test]
        fn repr_round_trip(
            operation in operation(),
            shw in any::<[u8; 6]>(), sip in any::<[u8; 4]>(),
            thw in any::<[u8; 6]>(), tip in any::<[u8; 4]>(),
        ) {
            let repr = Repr {
                operation,
                source_hw: MacAddr(shw),
                source_ip: sip.into(),
                target_hw: MacAddr(thw),
                target_ip: tip.into(),
            };
            let mut buf = [0u8; PACKET_LEN];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(), repr);
        }
    }
}
