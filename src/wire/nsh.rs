//! The steering header: NSH (RFC 8300, EtherType 0x894F), MD Type 2, with one steerd
//! TLV carrying the predicted destination, application class, priority, prediction
//! epoch and an authentication tag.
//!
//! **Hot**: an edge marker (IPM) emits it, every SAFE parses it. Parsing never reads out
//! of bounds and never panics.
//!
//! # Layout
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Ver|O|U|    TTL    |   Length  |U|U|U|U|MD Type| Next Protocol |  Base header
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Service Path Identifier (SPI)        | Service Index |  Service Path header
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Metadata Class = 0xFFF6   |  Type = 0x01  |U| Length = 20 |  MD Type 2 context
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  header (TLV)
//! |                          dest_id (u32)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  app_class    |   priority    |            flags (u16)        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          epoch (u32)                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                          tag (u64)                            +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! - Base header: Ver = 0; O = OAM packet; TTL (6 bits, default 63); Length = total
//!   NSH length in 4-byte words (steerd: 8); MD Type = 2; Next Protocol 1 = IPv4,
//!   2 = IPv6, 3 = Ethernet.
//! - Service Path header: SPI (24 bits) and SI (8 bits); RAM may use them to carry
//!   the pre-computed path.
//! - MD Type 2 context headers (RFC 8300 §2.5.1): a sequence of TLVs, each Metadata
//!   Class (16), Type (8), an unassigned bit, and Length (7 bits) of the value *in
//!   bytes*; the value is padded to a multiple of 4 bytes.
//! - steerd's TLV: class [`STEERING_MD_CLASS`] (0xFFF6, from the range IANA keeps for
//!   experimental use), type [`STEERING_TLV_TYPE`], 20 value bytes, all big-endian.
//!   Other TLVs may come before or after it and are skipped.
//!
//! Whole header as steerd emits it: 4 + 4 + 4 + 20 = [`STEERING_HEADER_LEN`] = 32 bytes.
//!
//! # Authentication
//!
//! `tag` is a keyed PRF (SipHash, computed elsewhere) over the canonical byte string
//! from [`SteeringRepr::tag_input`]: the steering fields *and* the inner packet's source
//! and destination addresses, so a valid tag cannot be moved onto another flow. TTL and
//! the tag itself are not covered. SI is covered: a hop that decrements SI must re-tag.

use core::fmt;

use super::{Error, be16, be32, put16, put32};

/// EtherType of NSH.
pub const ETHERTYPE: u16 = super::ethernet::ethertype::NSH;

/// Next Protocol values (RFC 8300 §11.2.5).
pub mod next_protocol {
    /// IPv4.
    pub const IPV4: u8 = 0x1;
    /// IPv6.
    pub const IPV6: u8 = 0x2;
    /// Ethernet.
    pub const ETHERNET: u8 = 0x3;
    /// NSH.
    pub const NSH: u8 = 0x4;
    /// MPLS.
    pub const MPLS: u8 = 0x5;
}

/// MD Type 1: fixed-length context (Length is always 6).
pub const MD_TYPE_1: u8 = 0x1;
/// MD Type 2: variable-length context made of TLVs.
pub const MD_TYPE_2: u8 = 0x2;
/// TTL steerd emits (RFC 8300 §2.2 default).
pub const DEFAULT_TTL: u8 = 63;
/// Metadata Class of steerd's TLV (0xFFF6..=0xFFFE are experimental, RFC 8300 §9.1.4).
pub const STEERING_MD_CLASS: u16 = 0xfff6;
/// Type of steerd's TLV within its class.
pub const STEERING_TLV_TYPE: u8 = 0x01;
/// Length of steerd's TLV value in bytes.
pub const STEERING_TLV_LEN: usize = 20;
/// Length of base + service path headers.
pub const BASE_LEN: usize = 8;
/// Length of a TLV's header (class, type, length).
pub const TLV_HEADER_LEN: usize = 4;
/// Length of the whole NSH header steerd emits.
pub const STEERING_HEADER_LEN: usize = BASE_LEN + TLV_HEADER_LEN + STEERING_TLV_LEN;
/// Largest canonical tag input: 18 bytes of fields and two IPv6 addresses.
pub const TAG_INPUT_MAX: usize = 18 + 2 * 16;

mod field {
    use core::ops::Range;
    pub const VER_O_TTL_LEN: Range<usize> = 0..2;
    pub const MD_TYPE: usize = 2;
    pub const NEXT_PROTO: usize = 3;
    pub const SPI_SI: Range<usize> = 4..8;
}

/// A read/write view of an NSH header and what follows it.
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
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the buffer: at least 8 bytes ([`Error::Truncated`]); version 0, Length
    /// ≥ 2 words, MD Type not 0 (reserved, RFC 8300 §2.2: drop), and Length 6 for MD
    /// Type 1 ([`Error::Malformed`]); Length × 4 within the buffer
    /// ([`Error::Truncated`]). TLVs are checked by [`tlvs`](Self::tlvs).
    ///
    /// After `check_len` succeeds, no accessor of this view panics.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < BASE_LEN {
            return Err(Error::Truncated);
        }
        let words = self.length();
        if self.version() != 0
            || words < 2
            || self.md_type() == 0
            || (self.md_type() == MD_TYPE_1 && words != 6)
        {
            return Err(Error::Malformed);
        }
        if self.header_len() > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    fn ver_o_ttl_len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::VER_O_TTL_LEN])
    }

    /// Version (0).
    #[inline]
    pub fn version(&self) -> u8 {
        (self.ver_o_ttl_len() >> 14) as u8
    }

    /// O bit: an OAM packet.
    #[inline]
    pub fn oam(&self) -> bool {
        self.ver_o_ttl_len() & 0x2000 != 0
    }

    /// TTL (6 bits).
    #[inline]
    pub fn ttl(&self) -> u8 {
        ((self.ver_o_ttl_len() >> 6) & 0x3f) as u8
    }

    /// Length of the whole NSH header in 4-byte words.
    #[inline]
    pub fn length(&self) -> u8 {
        (self.ver_o_ttl_len() & 0x3f) as u8
    }

    /// Length of the whole NSH header in bytes.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.length()) * 4
    }

    /// MD Type (4 bits).
    #[inline]
    pub fn md_type(&self) -> u8 {
        self.buffer.as_ref()[field::MD_TYPE] & 0x0f
    }

    /// Next Protocol.
    #[inline]
    pub fn next_protocol(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_PROTO]
    }

    /// Service Path Identifier (24 bits).
    #[inline]
    pub fn spi(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::SPI_SI]) >> 8
    }

    /// Service Index.
    #[inline]
    pub fn si(&self) -> u8 {
        self.buffer.as_ref()[field::SPI_SI.end - 1]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The context headers (bytes 8 to Length × 4).
    #[inline]
    pub fn context(&self) -> &'a [u8] {
        &self.buffer.as_ref()[BASE_LEN..self.header_len()]
    }

    /// The encapsulated packet.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Iterates over the MD Type 2 TLVs of the context area. For another MD Type the
    /// iterator is empty.
    #[inline]
    pub fn tlvs(&self) -> Tlvs<'a> {
        let rest = if self.md_type() == MD_TYPE_2 {
            self.context()
        } else {
            &[]
        };
        Tlvs { rest }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    fn set_ver_o_ttl_len(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::VER_O_TTL_LEN], value);
    }

    /// Sets the version (2 bits).
    #[inline]
    pub fn set_version(&mut self, value: u8) {
        let v = (self.ver_o_ttl_len() & 0x3fff) | (u16::from(value & 3) << 14);
        self.set_ver_o_ttl_len(v);
    }

    /// Sets or clears the O bit. The unassigned bit after it is cleared.
    #[inline]
    pub fn set_oam(&mut self, value: bool) {
        let v = (self.ver_o_ttl_len() & 0xcfff) | if value { 0x2000 } else { 0 };
        self.set_ver_o_ttl_len(v);
    }

    /// Sets the TTL (6 bits).
    #[inline]
    pub fn set_ttl(&mut self, value: u8) {
        let v = (self.ver_o_ttl_len() & !0x0fc0) | (u16::from(value & 0x3f) << 6);
        self.set_ver_o_ttl_len(v);
    }

    /// Sets Length in 4-byte words (6 bits).
    #[inline]
    pub fn set_length(&mut self, value: u8) {
        let v = (self.ver_o_ttl_len() & !0x003f) | u16::from(value & 0x3f);
        self.set_ver_o_ttl_len(v);
    }

    /// Sets the MD Type (4 bits; the unassigned bits before it are cleared).
    #[inline]
    pub fn set_md_type(&mut self, value: u8) {
        self.buffer.as_mut()[field::MD_TYPE] = value & 0x0f;
    }

    /// Sets Next Protocol.
    #[inline]
    pub fn set_next_protocol(&mut self, value: u8) {
        self.buffer.as_mut()[field::NEXT_PROTO] = value;
    }

    /// Sets the SPI (24 bits).
    #[inline]
    pub fn set_spi(&mut self, value: u32) {
        let si = self.si();
        put32(
            &mut self.buffer.as_mut()[field::SPI_SI],
            (value << 8) | u32::from(si),
        );
    }

    /// Sets the Service Index.
    #[inline]
    pub fn set_si(&mut self, value: u8) {
        self.buffer.as_mut()[field::SPI_SI.end - 1] = value;
    }

    /// Context headers, writable.
    #[inline]
    pub fn context_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[BASE_LEN..hl]
    }

    /// Encapsulated packet, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
}

/// One MD Type 2 context header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// Metadata Class.
    pub class: u16,
    /// Type.
    pub tlv_type: u8,
    /// The value, `Length` bytes (padding excluded).
    pub value: &'a [u8],
}

/// Iterator over MD Type 2 TLVs. Yields `Err(Error::Malformed)` once, then ends, when
/// fewer than 4 bytes remain for a TLV header or a TLV's padded length overruns the
/// context area.
#[derive(Debug, Clone)]
pub struct Tlvs<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Tlvs<'a> {
    type Item = Result<Tlv<'a>, Error>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let Some((h, body)) = self.rest.split_first_chunk::<TLV_HEADER_LEN>() else {
            self.rest = &[];
            return Some(Err(Error::Malformed));
        };
        let len = usize::from(h[3] & 0x7f);
        let padded = (len + 3) & !3;
        let (Some(value), Some(next)) = (body.get(..len), body.get(padded..)) else {
            self.rest = &[];
            return Some(Err(Error::Malformed));
        };
        self.rest = next;
        Some(Ok(Tlv {
            class: u16::from_be_bytes([h[0], h[1]]),
            tlv_type: h[2],
            value,
        }))
    }
}

impl core::iter::FusedIterator for Tlvs<'_> {}

/// Why [`SteeringRepr::parse`] found no usable steering header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SteeringError {
    /// The NSH header itself is truncated or malformed, or a TLV overruns the context
    /// area, or steerd's TLV has the wrong length or appears twice.
    #[error("malformed NSH header")]
    Malformed,
    /// A well-formed NSH header without steerd's TLV (MD Type 1, other TLVs only, or
    /// no context at all). Not an error for the packet: it is routed by LPM.
    #[error("NSH header without a steering TLV")]
    NoSteeringTlv,
}

impl From<Error> for SteeringError {
    fn from(_: Error) -> Self {
        SteeringError::Malformed
    }
}

/// steerd's steering header: the base and service path fields and the steering TLV.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SteeringRepr {
    /// Service Path Identifier (24 bits).
    pub spi: u32,
    /// Service Index.
    pub si: u8,
    /// NSH TTL (6 bits).
    pub ttl: u8,
    /// Next Protocol of the encapsulated packet.
    pub next_protocol: u8,
    /// Predicted destination id (index into the steering table).
    pub dest_id: u32,
    /// Application class.
    pub app_class: u8,
    /// Priority (tx queue class).
    pub priority: u8,
    /// Flags (reserved, 0).
    pub flags: u16,
    /// Prediction epoch the marking was made under.
    pub epoch: u32,
    /// Authentication tag over [`tag_input`](Self::tag_input).
    pub tag: u64,
}

impl fmt::Debug for SteeringRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SteeringRepr")
            .field("spi", &self.spi)
            .field("si", &self.si)
            .field("ttl", &self.ttl)
            .field("next_protocol", &self.next_protocol)
            .field("dest_id", &self.dest_id)
            .field("app_class", &self.app_class)
            .field("priority", &self.priority)
            .field("flags", &format_args!("{:#06x}", self.flags))
            .field("epoch", &self.epoch)
            .field("tag", &format_args!("{:#018x}", self.tag))
            .finish()
    }
}

impl SteeringRepr {
    /// Finds steerd's TLV in a checked NSH header. Every TLV is walked, so a TLV
    /// overrunning the context is [`SteeringError::Malformed`] wherever it is; a
    /// steering TLV whose length is not 20, or a second steering TLV, is `Malformed`
    /// too (two would be ambiguous to authenticate). MD Type 1 or no steering TLV is
    /// [`SteeringError::NoSteeringTlv`].
    ///
    /// Always inlined: returned through the stack, the struct was re-read with vector
    /// loads right after its field stores, a store-forwarding stall that cost about a
    /// tenth of the steered path.
    #[inline(always)]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&T>,
    ) -> Result<SteeringRepr, SteeringError> {
        packet.check_len()?;
        let mut found = None;
        for tlv in packet.tlvs() {
            let tlv = tlv?;
            if tlv.class != STEERING_MD_CLASS || tlv.tlv_type != STEERING_TLV_TYPE {
                continue;
            }
            let Some(v) = tlv.value.first_chunk::<STEERING_TLV_LEN>() else {
                return Err(SteeringError::Malformed);
            };
            if tlv.value.len() != STEERING_TLV_LEN || found.is_some() {
                return Err(SteeringError::Malformed);
            }
            // A reference, not a copy: copying the 20 bytes out cost a tenth of the
            // header's parse (callgrind).
            found = Some(v);
        }
        let v = found.ok_or(SteeringError::NoSteeringTlv)?;
        Ok(SteeringRepr {
            spi: packet.spi(),
            si: packet.si(),
            ttl: packet.ttl(),
            next_protocol: packet.next_protocol(),
            dest_id: be32(&v[0..4]),
            app_class: v[4],
            priority: v[5],
            flags: be16(&v[6..8]),
            epoch: be32(&v[8..12]),
            tag: u64::from_be_bytes([v[12], v[13], v[14], v[15], v[16], v[17], v[18], v[19]]),
        })
    }

    /// Length of the emitted header (32).
    pub const fn header_len(&self) -> usize {
        STEERING_HEADER_LEN
    }

    /// The 32 header bytes: version 0, O clear, `ttl` (cut to 6 bits), Length 8,
    /// MD Type 2, `next_protocol`, `spi` (cut to 24 bits), `si`, and the steering TLV.
    pub fn to_bytes(&self) -> [u8; STEERING_HEADER_LEN] {
        let mut b = [0u8; STEERING_HEADER_LEN];
        let words = (STEERING_HEADER_LEN / 4) as u16;
        put16(&mut b[0..2], (u16::from(self.ttl & 0x3f) << 6) | words);
        b[2] = MD_TYPE_2;
        b[3] = self.next_protocol;
        put32(
            &mut b[4..8],
            ((self.spi & 0x00ff_ffff) << 8) | u32::from(self.si),
        );
        put16(&mut b[8..10], STEERING_MD_CLASS);
        b[10] = STEERING_TLV_TYPE;
        b[11] = STEERING_TLV_LEN as u8;
        put32(&mut b[12..16], self.dest_id);
        b[16] = self.app_class;
        b[17] = self.priority;
        put16(&mut b[18..20], self.flags);
        put32(&mut b[20..24], self.epoch);
        b[24..32].copy_from_slice(&self.tag.to_be_bytes());
        b
    }

    /// Writes exactly [`STEERING_HEADER_LEN`] bytes at the start of `buf` (see
    /// [`to_bytes`](Self::to_bytes)); [`Error::Truncated`], writing nothing, when `buf`
    /// is shorter.
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let out = buf
            .first_chunk_mut::<STEERING_HEADER_LEN>()
            .ok_or(Error::Truncated)?;
        *out = self.to_bytes();
        Ok(())
    }

    /// Writes the canonical byte string the authentication tag covers into `out` and
    /// returns its length (26 for IPv4, 50 for IPv6):
    ///
    /// ```text
    /// dest_id u32 | app_class u8 | priority u8 | flags u16 | epoch u32 |
    /// spi u32 (top byte 0) | si u8 | address length u8 (4 or 16) |
    /// inner source address | inner destination address
    /// ```
    ///
    /// All integers big-endian. The address length byte keeps IPv4 and IPv6 inputs
    /// apart. [`Error::Malformed`] unless both addresses are 4 or both 16 bytes.
    #[inline]
    pub fn tag_input(
        &self,
        inner_src: &[u8],
        inner_dst: &[u8],
        out: &mut [u8; TAG_INPUT_MAX],
    ) -> Result<usize, Error> {
        let alen = inner_src.len();
        if alen != inner_dst.len() || (alen != 4 && alen != 16) {
            return Err(Error::Malformed);
        }
        put32(&mut out[0..4], self.dest_id);
        out[4] = self.app_class;
        out[5] = self.priority;
        put16(&mut out[6..8], self.flags);
        put32(&mut out[8..12], self.epoch);
        put32(&mut out[12..16], self.spi & 0x00ff_ffff);
        out[16] = self.si;
        out[17] = alen as u8;
        out[18..18 + alen].copy_from_slice(inner_src);
        out[18 + alen..18 + 2 * alen].copy_from_slice(inner_dst);
        Ok(18 + 2 * alen)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A steering header as IPM emits it. Built from the RFC 8300 layout, not captured:
    /// there is no NSH-speaking peer on the test bed.
    pub(crate) const EXAMPLE: [u8; 32] = [
        0x0f, 0xc8, 0x02, 0x01, // ver 0, O 0, TTL 63, length 8, MD type 2, next proto IPv4
        0x00, 0x01, 0x2c, 0xff, // SPI 300, SI 255
        0xff, 0xf6, 0x01, 0x14, // class 0xFFF6, type 1, length 20
        0x00, 0x00, 0x00, 0x2a, // dest_id 42
        0x03, 0x05, 0x00, 0x00, // app_class 3, priority 5, flags 0
        0x00, 0x00, 0x00, 0x07, // epoch 7
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, // tag
    ];

    pub(crate) fn example_repr() -> SteeringRepr {
        SteeringRepr {
            spi: 300,
            si: 255,
            ttl: 63,
            next_protocol: next_protocol::IPV4,
            dest_id: 42,
            app_class: 3,
            priority: 5,
            flags: 0,
            epoch: 7,
            tag: 0x0123_4567_89ab_cdef,
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&EXAMPLE[..]).unwrap();
        assert_eq!(p.version(), 0);
        assert!(!p.oam());
        assert_eq!(p.ttl(), 63);
        assert_eq!(p.length(), 8);
        assert_eq!(p.header_len(), 32);
        assert_eq!(p.md_type(), MD_TYPE_2);
        assert_eq!(p.next_protocol(), next_protocol::IPV4);
        assert_eq!(p.spi(), 300);
        assert_eq!(p.si(), 255);
        assert_eq!(p.context().len(), 24);
        assert!(p.payload().is_empty());
        let tlvs: Vec<_> = p.tlvs().collect();
        assert_eq!(tlvs.len(), 1);
        let t = tlvs[0].unwrap();
        assert_eq!(
            (t.class, t.tlv_type, t.value),
            (STEERING_MD_CLASS, STEERING_TLV_TYPE, &EXAMPLE[12..])
        );
    }

    #[test]
    fn construct() {
        let mut buf = [0u8; 32];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_version(0);
        p.set_oam(true);
        p.set_oam(false);
        p.set_ttl(63);
        p.set_length(8);
        p.set_md_type(MD_TYPE_2);
        p.set_next_protocol(next_protocol::IPV4);
        p.set_si(255);
        p.set_spi(300);
        p.context_mut().copy_from_slice(&EXAMPLE[8..]);
        assert_eq!(buf, EXAMPLE);
    }

    #[test]
    fn parse() {
        let p = Packet::new_checked(&EXAMPLE[..]).unwrap();
        assert_eq!(SteeringRepr::parse(&p).unwrap(), example_repr());
    }

    #[test]
    fn emit() {
        assert_eq!(example_repr().to_bytes(), EXAMPLE);
        let mut buf = [0xaau8; 40];
        example_repr().emit(&mut buf).unwrap();
        assert_eq!(&buf[..32], &EXAMPLE);
        assert_eq!(&buf[32..], &[0xaa; 8]);
        assert_eq!(example_repr().emit(&mut buf[..31]), Err(Error::Truncated));
        assert_eq!(&buf[..32], &EXAMPLE, "nothing written on error");
    }

    /// EXAMPLE with other TLVs around the steering one: an RFC 9263 Flow ID TLV
    /// (class 0x0000, type 0x01, length 3, padded to 4) before and a zero-length TLV
    /// after.
    fn with_other_tlvs() -> Vec<u8> {
        let mut b = EXAMPLE[..8].to_vec();
        b.extend_from_slice(&[0x00, 0x00, 0x01, 0x03, 0x0a, 0x0b, 0x0c, 0x00]);
        b.extend_from_slice(&EXAMPLE[8..]);
        b.extend_from_slice(&[0xff, 0xf7, 0x09, 0x00]);
        b[1] = (b[1] & 0xc0) | (b.len() / 4) as u8;
        b
    }

    #[test]
    fn finds_tlv_among_others() {
        let b = with_other_tlvs();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.header_len(), 44);
        let tlvs: Vec<_> = p.tlvs().map(|t| t.unwrap()).collect();
        assert_eq!(tlvs.len(), 3);
        assert_eq!(tlvs[0].value, &[0x0a, 0x0b, 0x0c]);
        assert_eq!(tlvs[2].value, &[] as &[u8]);
        assert_eq!(SteeringRepr::parse(&p).unwrap(), example_repr());
    }

    #[test]
    fn check_len_rejects() {
        assert_eq!(
            Packet::new_checked(&EXAMPLE[..7]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&EXAMPLE[..31]).unwrap_err(),
            Error::Truncated
        );
        let mut b = EXAMPLE;
        b[0] |= 0x40; // version 1
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
        let mut b = EXAMPLE;
        b[1] = (b[1] & 0xc0) | 1; // length 1 word
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
        let mut b = EXAMPLE;
        b[2] = 0; // MD type 0
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
        let mut b = EXAMPLE;
        b[2] = MD_TYPE_1; // MD type 1 needs length 6
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn parse_errors() {
        // MD type 1 (length 6: 16 bytes of fixed context): no TLV to find
        let mut b = EXAMPLE[..24].to_vec();
        b[1] = (b[1] & 0xc0) | 6;
        b[2] = MD_TYPE_1;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.tlvs().count(), 0);
        assert_eq!(SteeringRepr::parse(&p), Err(SteeringError::NoSteeringTlv));
        // MD type 2 with no context
        let mut b = EXAMPLE[..8].to_vec();
        b[1] = (b[1] & 0xc0) | 2;
        assert_eq!(
            SteeringRepr::parse(&Packet::new_checked(&b[..]).unwrap()),
            Err(SteeringError::NoSteeringTlv)
        );
        // only a foreign TLV
        let mut b = EXAMPLE;
        b[9] = 0xf7;
        assert_eq!(
            SteeringRepr::parse(&Packet::new_checked(&b[..]).unwrap()),
            Err(SteeringError::NoSteeringTlv)
        );
        // steering TLV with the wrong length (16 and padded right: well-formed, wrong)
        let mut b = EXAMPLE[..28].to_vec();
        b[1] = (b[1] & 0xc0) | 7;
        b[11] = 16;
        assert_eq!(
            SteeringRepr::parse(&Packet::new_checked(&b[..]).unwrap()),
            Err(SteeringError::Malformed)
        );
        // TLV overrunning the context: length 21 pads to 24 > 20 available
        let mut b = EXAMPLE;
        b[11] = 21;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.tlvs().collect::<Vec<_>>(), vec![Err(Error::Malformed)]);
        assert_eq!(SteeringRepr::parse(&p), Err(SteeringError::Malformed));
        // a trailing partial TLV header after the steering TLV
        let mut b = EXAMPLE.to_vec();
        b.extend_from_slice(&[0xff, 0xf7, 0x09, 0x00]);
        b[1] = (b[1] & 0xc0) | 9;
        b[35] = 0x04; // its length 4 overruns by 4
        assert_eq!(
            SteeringRepr::parse(&Packet::new_checked(&b[..]).unwrap()),
            Err(SteeringError::Malformed)
        );
        // two steering TLVs
        let mut b = EXAMPLE.to_vec();
        b.extend_from_slice(&EXAMPLE[8..]);
        b[1] = (b[1] & 0xc0) | 14;
        assert_eq!(
            SteeringRepr::parse(&Packet::new_checked(&b[..]).unwrap()),
            Err(SteeringError::Malformed)
        );
    }

    #[test]
    fn tag_input_layout() {
        let r = example_repr();
        let mut out = [0u8; TAG_INPUT_MAX];
        let n = r
            .tag_input(&[10, 9, 0, 1], &[10, 9, 0, 2], &mut out)
            .unwrap();
        assert_eq!(n, 26);
        assert_eq!(
            &out[..n],
            &[
                0, 0, 0, 42, 3, 5, 0, 0, 0, 0, 0, 7, 0, 0, 1, 0x2c, 255, 4, 10, 9, 0, 1, 10, 9, 0,
                2
            ]
        );
        let src6 = [0xfd, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let dst6 = [0xfd, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        assert_eq!(r.tag_input(&src6, &dst6, &mut out), Ok(50));
        assert_eq!(out[17], 16);
        assert_eq!(&out[18..34], &src6);
        assert_eq!(&out[34..50], &dst6);
        assert_eq!(
            r.tag_input(&src6, &[1, 2, 3, 4], &mut out),
            Err(Error::Malformed)
        );
        assert_eq!(
            r.tag_input(&[1, 2, 3], &[1, 2, 3], &mut out),
            Err(Error::Malformed)
        );
        // moving the tag to another flow changes the input
        let mut other = [0u8; TAG_INPUT_MAX];
        r.tag_input(&[10, 9, 0, 1], &[10, 9, 0, 3], &mut other)
            .unwrap();
        assert_ne!(&out[..26], &other[..26]);
    }

    pub(crate) fn steering_repr() -> impl Strategy<Value = SteeringRepr> {
        (
            (0u32..(1 << 24), any::<u8>(), 0u8..64, any::<u8>()),
            (
                any::<u32>(),
                any::<u8>(),
                any::<u8>(),
                any::<u16>(),
                any::<u32>(),
                any::<u64>(),
            ),
        )
            .prop_map(
                |(
                    (spi, si, ttl, next_protocol),
                    (dest_id, app_class, priority, flags, epoch, tag),
                )| {
                    SteeringRepr {
                        spi,
                        si,
                        ttl,
                        next_protocol,
                        dest_id,
                        app_class,
                        priority,
                        flags,
                        epoch,
                        tag,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn repr_round_trip(r in steering_repr()) {
            let b = r.to_bytes();
            let p = Packet::new_checked(&b[..]).unwrap();
            prop_assert_eq!(p.header_len(), STEERING_HEADER_LEN);
            prop_assert_eq!(SteeringRepr::parse(&p).unwrap(), r);
        }

        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = SteeringRepr::parse(&p);
                for t in p.tlvs().flatten() {
                    prop_assert!(t.value.len() <= p.context().len());
                }
            }
        }

        #[test]
        fn mutated_headers_never_panic(r in steering_repr(), idx in 0usize..32, val in any::<u8>(), cut in 0usize..=32) {
            let mut b = r.to_bytes();
            b[idx] = val;
            if let Ok(p) = Packet::new_checked(&b[..cut]) {
                let _ = SteeringRepr::parse(&p);
            }
        }
    }
}
