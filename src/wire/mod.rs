//! Packet views: checked, zero-copy access to the headers steerd reads and writes.
//!
//! **Hot.** Everything here runs per packet on the worker cores: no allocation, no
//! locks, no logging, no `unsafe`, no panics on untrusted input.
//!
//! The layout follows smoltcp's `src/wire`: one file per protocol, each with
//!
//! - a `Packet<T: AsRef<[u8]>>` (Ethernet: `Frame`) view over a byte buffer, with a
//!   private `mod field` of byte ranges, getters named after the fields and `set_*`
//!   setters in an `AsRef<[u8]> + AsMut<[u8]>` impl block;
//! - `new_unchecked` / `new_checked` / `check_len`. **After `check_len` succeeds, no
//!   accessor of that view panics.** Untrusted bytes always go through `new_checked`;
//!   `new_unchecked` is for buffers the caller has just sized itself (emitting);
//! - a small `Copy` `Repr` with `parse`, `emit` and `header_len`, where
//!   `parse(emit(x)) == x` (checked by proptest in each file).
//!
//! On top of the views sit [`classify()`] (the fast-path parser every received frame goes
//! through once: Ethernet → VLAN → NSH → IPv4/IPv6 → L4 ports, into a fixed-size
//! [`Classified`]), the [`checksum`] helpers including RFC 1624 incremental update, the
//! steering header in [`nsh`], and a dependency-free [`pcap`] reader/writer.
//!
//! Checksums of upper-layer protocols (UDP, TCP, ICMPv6) need the IP pseudo-header, so
//! their `Repr::parse` does not verify them and their `Repr::emit` writes a zero
//! checksum: callers use `verify_checksum(src, dst)` / `fill_checksum(src, dst)` on the
//! packet view, with the addresses of the enclosing IP header.

pub mod arp;
pub mod checksum;
pub mod classify;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod nsh;
pub mod pcap;
pub mod tcp;
pub mod udp;

#[cfg(test)]
pub(crate) mod testdata;

pub use classify::{Classified, L3, ParseError, classify, classify_into, classify_no_hash};

/// Why a packet view or `Repr` rejected a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the header (or a length field) says it must be.
    #[error("truncated packet")]
    Truncated,
    /// A field holds a value the protocol forbids (bad version, length below the
    /// minimum, an extension header or TLV that overruns its container, ...).
    #[error("malformed packet")]
    Malformed,
    /// The checksum does not verify.
    #[error("bad checksum")]
    Checksum,
    /// Well-formed, but not something the `Repr` can represent (an unknown message
    /// type, a fragment, ...). Views still give access to such packets.
    #[error("unsupported packet")]
    Unsupported,
}

/// Result type of the packet views.
pub type Result<T> = core::result::Result<T, Error>;

/// Reads a big-endian `u16` from the first two bytes of `b`.
///
/// Callers pass slices cut from a `field` range, so the length is known.
#[inline(always)]
pub(crate) fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// Reads a big-endian `u32` from the first four bytes of `b`.
#[inline(always)]
pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Copies the first `N` bytes of `b` into an array.
#[inline(always)]
pub(crate) fn array<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    a
}

/// Writes `v` big-endian into the first two bytes of `b`.
#[inline(always)]
pub(crate) fn put16(b: &mut [u8], v: u16) {
    b[..2].copy_from_slice(&v.to_be_bytes());
}

/// Writes `v` big-endian into the first four bytes of `b`.
#[inline(always)]
pub(crate) fn put32(b: &mut [u8], v: u32) {
    b[..4].copy_from_slice(&v.to_be_bytes());
}
