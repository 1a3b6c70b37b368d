//! Classic libpcap files, read from memory and written to any `io::Write`, with no
//! dependency. Used by the pcap port backend, golden tests and fuzzing; **cold** (file
//! set-up) except for record iteration, which is allocation-free.
//!
//! File layout (all fields in the writer's byte order, told apart by the magic):
//!
//! ```text
//! global header, 24 bytes:
//!   magic u32         0xa1b2c3d4 (µs timestamps) or 0xa1b23c4d (ns timestamps)
//!   version_major u16 (2), version_minor u16 (4)
//!   thiszone i32, sigfigs u32 (both 0 in practice)
//!   snaplen u32       largest incl_len allowed
//!   linktype u32      1 = Ethernet (low 16 bits; upper bits may carry FCS info)
//! then records, each a 16-byte header followed by incl_len bytes:
//!   ts_sec u32, ts_usec_or_nsec u32, incl_len u32, orig_len u32
//! ```
//!
//! The reader never panics: every length is checked against `snaplen` and the file,
//! and a bad record is an error naming its index and byte offset, after which the
//! iterator ends.

use core::fmt;
use std::io::{self, Write};

/// Magic for microsecond timestamps.
pub const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// Magic for nanosecond timestamps.
pub const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Length of the global header.
pub const GLOBAL_HEADER_LEN: usize = 24;
/// Length of a record header.
pub const RECORD_HEADER_LEN: usize = 16;

/// Why a pcap file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PcapError {
    /// Fewer than 24 bytes.
    #[error("not a pcap file: {len} bytes is shorter than the 24-byte global header")]
    TruncatedHeader {
        /// File length.
        len: usize,
    },
    /// The first four bytes are no pcap magic (pcapng files start with 0x0a0d0d0a).
    #[error(
        "not a classic pcap file: magic {magic:#010x} (pcapng is not supported; convert with `editcap -F pcap IN OUT`)"
    )]
    BadMagic {
        /// The magic as read little-endian.
        magic: u32,
    },
    /// A major version other than 2.
    #[error("unsupported pcap version {major}.{minor} (expected 2.x)")]
    UnsupportedVersion {
        /// Major version.
        major: u16,
        /// Minor version.
        minor: u16,
    },
    /// A link type other than Ethernet.
    #[error("unsupported pcap linktype {linktype} ({}); steerd reads Ethernet captures (linktype 1) only", linktype_name(*.linktype))]
    UnsupportedLinktype {
        /// The link type (low 16 bits of the header field).
        linktype: u32,
    },
    /// Fewer than 16 bytes left where a record header should be.
    #[error(
        "record {index} at byte offset {offset}: truncated record header ({remaining} bytes left, 16 needed)"
    )]
    TruncatedRecordHeader {
        /// 0-based record number.
        index: usize,
        /// Offset of the record header in the file.
        offset: usize,
        /// Bytes left in the file.
        remaining: usize,
    },
    /// A record longer than the file's snaplen.
    #[error(
        "record {index} at byte offset {offset}: incl_len {incl_len} exceeds snaplen {snaplen}"
    )]
    RecordTooLong {
        /// 0-based record number.
        index: usize,
        /// Offset of the record header in the file.
        offset: usize,
        /// Captured length claimed by the record.
        incl_len: u32,
        /// The file's snaplen.
        snaplen: u32,
    },
    /// A record whose data runs past the end of the file.
    #[error(
        "record {index} at byte offset {offset}: incl_len {incl_len} overruns the file ({remaining} bytes left)"
    )]
    RecordOverrun {
        /// 0-based record number.
        index: usize,
        /// Offset of the record header in the file.
        offset: usize,
        /// Captured length claimed by the record.
        incl_len: u32,
        /// Bytes left after the record header.
        remaining: usize,
    },
}

/// Names of common link types, for error messages.
fn linktype_name(linktype: u32) -> &'static str {
    match linktype {
        0 => "NULL/loopback",
        1 => "ETHERNET",
        101 => "RAW IP",
        105 => "IEEE 802.11",
        113 => "LINUX_SLL, a `tcpdump -i any` capture",
        127 => "IEEE 802.11 radiotap",
        228 => "IPV4",
        229 => "IPV6",
        276 => "LINUX_SLL2, a `tcpdump -i any` capture",
        _ => "see https://www.tcpdump.org/linktypes.html",
    }
}

/// One captured packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Seconds since the epoch.
    pub ts_sec: u32,
    /// Sub-second part: microseconds, or nanoseconds when
    /// [`PcapReader::is_nanosecond`].
    pub ts_frac: u32,
    /// Length of the packet on the wire (may exceed `data.len()` when cut by snaplen).
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// Iterates over the records of an in-memory classic pcap file.
#[derive(Debug, Clone)]
pub struct PcapReader<'a> {
    bytes: &'a [u8],
    big_endian: bool,
    nanos: bool,
    snaplen: u32,
    pos: usize,
    index: usize,
    done: bool,
}

impl<'a> PcapReader<'a> {
    /// Reads the global header: either byte order, microsecond or nanosecond magic,
    /// version 2.x, Ethernet link type.
    pub fn new(bytes: &'a [u8]) -> Result<PcapReader<'a>, PcapError> {
        let Some(h) = bytes.get(..GLOBAL_HEADER_LEN) else {
            return Err(PcapError::TruncatedHeader { len: bytes.len() });
        };
        let le = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let (big_endian, nanos) = match (le, le.swap_bytes()) {
            (MAGIC_MICROS, _) => (false, false),
            (MAGIC_NANOS, _) => (false, true),
            (_, MAGIC_MICROS) => (true, false),
            (_, MAGIC_NANOS) => (true, true),
            _ => return Err(PcapError::BadMagic { magic: le }),
        };
        let r16 = |b: &[u8]| {
            if big_endian {
                u16::from_be_bytes([b[0], b[1]])
            } else {
                u16::from_le_bytes([b[0], b[1]])
            }
        };
        let r32 = |b: &[u8]| {
            let a = [b[0], b[1], b[2], b[3]];
            if big_endian {
                u32::from_be_bytes(a)
            } else {
                u32::from_le_bytes(a)
            }
        };
        let (major, minor) = (r16(&h[4..6]), r16(&h[6..8]));
        if major != 2 {
            return Err(PcapError::UnsupportedVersion { major, minor });
        }
        let snaplen = r32(&h[16..20]);
        let linktype = r32(&h[20..24]) & 0xffff;
        if linktype != LINKTYPE_ETHERNET {
            return Err(PcapError::UnsupportedLinktype { linktype });
        }
        Ok(PcapReader {
            bytes,
            big_endian,
            nanos,
            snaplen,
            pos: GLOBAL_HEADER_LEN,
            index: 0,
            done: false,
        })
    }

    /// True when timestamps are in nanoseconds (magic 0xa1b23c4d).
    pub fn is_nanosecond(&self) -> bool {
        self.nanos
    }

    /// True when the file was written big-endian.
    pub fn is_big_endian(&self) -> bool {
        self.big_endian
    }

    /// The file's snaplen.
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    #[inline]
    fn r32(&self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }

    fn next_record(&mut self) -> Result<Record<'a>, PcapError> {
        let (index, offset) = (self.index, self.pos);
        let rest = self.bytes.get(offset..).unwrap_or_default();
        let Some(h) = rest.get(..RECORD_HEADER_LEN) else {
            return Err(PcapError::TruncatedRecordHeader {
                index,
                offset,
                remaining: rest.len(),
            });
        };
        let ts_sec = self.r32(&h[0..4]);
        let ts_frac = self.r32(&h[4..8]);
        let incl_len = self.r32(&h[8..12]);
        let orig_len = self.r32(&h[12..16]);
        if incl_len > self.snaplen {
            return Err(PcapError::RecordTooLong {
                index,
                offset,
                incl_len,
                snaplen: self.snaplen,
            });
        }
        let body = &rest[RECORD_HEADER_LEN..];
        let data = usize::try_from(incl_len)
            .ok()
            .and_then(|n| body.get(..n))
            .ok_or(PcapError::RecordOverrun {
                index,
                offset,
                incl_len,
                remaining: body.len(),
            })?;
        self.pos = offset + RECORD_HEADER_LEN + data.len();
        self.index += 1;
        Ok(Record {
            ts_sec,
            ts_frac,
            orig_len,
            data,
        })
    }
}

impl<'a> Iterator for PcapReader<'a> {
    type Item = Result<Record<'a>, PcapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.bytes.len() {
            return None;
        }
        let r = self.next_record();
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }
}

impl core::iter::FusedIterator for PcapReader<'_> {}

/// Writes a classic, little-endian, microsecond, Ethernet pcap file.
pub struct PcapWriter<W: Write> {
    w: W,
    snaplen: u32,
}

impl<W: Write> fmt::Debug for PcapWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcapWriter")
            .field("snaplen", &self.snaplen)
            .finish_non_exhaustive()
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header. Packets longer than `snaplen` are cut to it.
    pub fn new(mut w: W, snaplen: u32) -> io::Result<PcapWriter<W>> {
        let mut h = [0u8; GLOBAL_HEADER_LEN];
        h[0..4].copy_from_slice(&MAGIC_MICROS.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        w.write_all(&h)?;
        Ok(PcapWriter { w, snaplen })
    }

    /// Appends one packet. `orig_len` is `data.len()`; the captured part is cut to the
    /// snaplen.
    pub fn write_packet(&mut self, ts_sec: u32, ts_usec: u32, data: &[u8]) -> io::Result<()> {
        let orig_len = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "packet longer than 4 GiB"))?;
        let incl_len = orig_len.min(self.snaplen);
        let mut h = [0u8; RECORD_HEADER_LEN];
        h[0..4].copy_from_slice(&ts_sec.to_le_bytes());
        h[4..8].copy_from_slice(&ts_usec.to_le_bytes());
        h[8..12].copy_from_slice(&incl_len.to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.w.write_all(&h)?;
        // incl_len <= data.len(), so the slice is in bounds.
        self.w.write_all(&data[..incl_len as usize])
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testdata;

    /// Rewrites a little-endian pcap file in big-endian byte order.
    fn to_big_endian(le: &[u8]) -> Vec<u8> {
        let mut out = le.to_vec();
        let swap4 = |b: &mut [u8]| b.reverse();
        swap4(&mut out[0..4]);
        out[4..6].reverse();
        out[6..8].reverse();
        for r in [8..12, 12..16, 16..20, 20..24] {
            swap4(&mut out[r]);
        }
        let mut pos = 24;
        while pos + 16 <= out.len() {
            let incl = u32::from_le_bytes(le[pos + 8..pos + 12].try_into().unwrap()) as usize;
            for k in 0..4 {
                out[pos + 4 * k..pos + 4 * k + 4].reverse();
            }
            pos += 16 + incl;
        }
        out
    }

    #[test]
    fn reads_real_capture() {
        let r = PcapReader::new(testdata::PCAP).unwrap();
        assert!(!r.is_nanosecond() && !r.is_big_endian());
        assert_eq!(r.snaplen(), 262144);
        let recs: Vec<_> = r.collect::<Result<_, _>>().unwrap();
        assert_eq!(recs.len(), testdata::record::COUNT);
        assert_eq!(recs[11].data, &testdata::ARP_REQUEST[..]);
        assert_eq!(recs[13].data, &testdata::IPV4_ICMP_ECHO_REQUEST[..]);
        assert_eq!(recs[19].data.len(), 1514);
        assert!(recs.iter().all(|r| r.orig_len as usize == r.data.len()));
        assert!(
            recs.windows(2)
                .all(|w| (w[0].ts_sec, w[0].ts_frac) <= (w[1].ts_sec, w[1].ts_frac))
        );
        assert!(recs.iter().all(|r| r.ts_frac < 1_000_000));
    }

    #[test]
    fn big_endian_and_nanoseconds() {
        let be = to_big_endian(testdata::PCAP);
        let r = PcapReader::new(&be).unwrap();
        assert!(r.is_big_endian());
        let a: Vec<_> = r.map(|r| r.unwrap()).collect();
        let b: Vec<_> = PcapReader::new(testdata::PCAP)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(a, b);

        let mut ns = testdata::PCAP.to_vec();
        ns[0..4].copy_from_slice(&MAGIC_NANOS.to_le_bytes());
        assert!(PcapReader::new(&ns).unwrap().is_nanosecond());
        let be_ns = to_big_endian(&ns);
        let r = PcapReader::new(&be_ns).unwrap();
        assert!(r.is_nanosecond() && r.is_big_endian());
        assert_eq!(r.count(), testdata::record::COUNT);
    }

    #[test]
    fn header_errors() {
        assert_eq!(
            PcapReader::new(&testdata::PCAP[..23]).unwrap_err(),
            PcapError::TruncatedHeader { len: 23 }
        );
        let mut b = testdata::PCAP.to_vec();
        b[0..4].copy_from_slice(&[0x0a, 0x0d, 0x0d, 0x0a]);
        let e = PcapReader::new(&b).unwrap_err();
        assert!(matches!(e, PcapError::BadMagic { magic: 0x0a0d_0d0a }));
        assert!(e.to_string().contains("pcapng"));
        let mut b = testdata::PCAP.to_vec();
        b[4] = 1;
        assert!(matches!(
            PcapReader::new(&b).unwrap_err(),
            PcapError::UnsupportedVersion { major: 1, minor: 4 }
        ));
        let mut b = testdata::PCAP.to_vec();
        b[20..24].copy_from_slice(&113u32.to_le_bytes());
        let e = PcapReader::new(&b).unwrap_err();
        assert_eq!(e, PcapError::UnsupportedLinktype { linktype: 113 });
        assert!(e.to_string().contains("linktype 113 (LINUX_SLL"), "{e}");
        // FCS bits in the upper half of the link type field are ignored
        let mut b = testdata::PCAP.to_vec();
        b[20..24].copy_from_slice(&(0x1000_0000u32 | 1).to_le_bytes());
        assert!(PcapReader::new(&b).is_ok());
    }

    #[test]
    fn record_errors_name_index_and_offset() {
        // cut inside record 2's data: records 0 and 1 read, then an overrun error
        let first_two: usize = 24 + (16 + 90) + (16 + 110);
        let b = &testdata::PCAP[..first_two + 16 + 10];
        let mut r = PcapReader::new(b).unwrap();
        assert!(r.next().unwrap().is_ok());
        assert!(r.next().unwrap().is_ok());
        let e = r.next().unwrap().unwrap_err();
        assert!(
            matches!(e, PcapError::RecordOverrun { index: 2, offset, remaining: 10, .. } if offset == first_two),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with(&format!("record 2 at byte offset {first_two}"))
        );
        assert!(r.next().is_none(), "the iterator ends after an error");

        // cut inside a record header
        let b = &testdata::PCAP[..first_two + 5];
        let e = PcapReader::new(b).unwrap().nth(2).unwrap().unwrap_err();
        assert_eq!(
            e,
            PcapError::TruncatedRecordHeader {
                index: 2,
                offset: first_two,
                remaining: 5
            }
        );

        // incl_len above snaplen
        let mut b = testdata::PCAP.to_vec();
        b[16..20].copy_from_slice(&100u32.to_le_bytes());
        let e = PcapReader::new(&b).unwrap().find_map(|r| r.err()).unwrap();
        // record 0 is 90 bytes; record 1 (110 bytes, at offset 130) is the first too long
        assert_eq!(
            e,
            PcapError::RecordTooLong {
                index: 1,
                offset: 130,
                incl_len: 110,
                snaplen: 100
            }
        );

        // a huge incl_len with a huge snaplen overruns, no panic, no allocation
        let mut b = testdata::PCAP[..24 + 16].to_vec();
        b[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        b[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = PcapReader::new(&b).unwrap().next().unwrap().unwrap_err();
        assert!(matches!(
            e,
            PcapError::RecordOverrun {
                index: 0,
                offset: 24,
                ..
            }
        ));
    }

    #[test]
    fn writer_round_trip() {
        let recs: Vec<_> = PcapReader::new(testdata::PCAP)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let mut w = PcapWriter::new(Vec::new(), 262144).unwrap();
        for r in &recs {
            w.write_packet(r.ts_sec, r.ts_frac, r.data).unwrap();
        }
        w.flush().unwrap();
        let out = w.into_inner().unwrap();
        // byte-identical to the tcpdump-written original (thiszone/sigfigs are 0 there too)
        assert_eq!(out, testdata::PCAP);

        let mut w = PcapWriter::new(Vec::new(), 64).unwrap();
        w.write_packet(1, 2, &testdata::IPV4_ICMP_ECHO_REQUEST)
            .unwrap();
        let out = w.into_inner().unwrap();
        let r = PcapReader::new(&out).unwrap().next().unwrap().unwrap();
        assert_eq!(
            r,
            Record {
                ts_sec: 1,
                ts_frac: 2,
                orig_len: 98,
                data: &testdata::IPV4_ICMP_ECHO_REQUEST[..64]
            }
        );
    }

    #[test]
    fn empty_file_has_no_records() {
        let w = PcapWriter::new(Vec::new(), 65535).unwrap();
        let out = w.into_inner().unwrap();
        assert_eq!(PcapReader::new(&out).unwrap().count(), 0);
    }
}
