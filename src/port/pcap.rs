//! The `pcap` port: receive from a capture file, transmit to a capture file.
//!
//! Receive: the file is read and indexed at start-up (cold), then replayed from memory,
//! once or `repeat` times (0 = forever), as a single receive queue; the workers spread
//! its packets by flow hash (software RSS). Transmit: each worker's queue copies frames
//! into its own lock-free SPSC byte ring; one writer thread drains the rings into the
//! output file, so file I/O never runs on a worker. The queue reports itself lossless:
//! when a ring is full the worker waits for the writer instead of dropping.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Buf, PktBuf, Pool, RxQueue, TxQueue};
use crate::wire::pcap::{PcapReader, PcapWriter};

/// Errors opening a pcap port.
#[derive(Debug, thiserror::Error)]
pub enum PcapPortError {
    /// The input file could not be read.
    #[error("pcap port {port}: cannot read {path}: {source}")]
    Read {
        /// Port name.
        port: String,
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The input file is not a usable capture.
    #[error("pcap port {port}: {path}: {msg}")]
    Format {
        /// Port name.
        port: String,
        /// File.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// The output file could not be created.
    #[error("pcap port {port}: cannot create {path}: {source}")]
    Create {
        /// Port name.
        port: String,
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// A capture loaded into memory.
pub struct Capture {
    arena: Vec<u8>,
    frames: Vec<(u32, u32)>,
    /// Records longer than a buffer holds (they are cut on receive).
    pub oversize: u64,
}

impl Capture {
    /// Reads and indexes a pcap file.
    pub fn load(port: &str, path: &Path) -> Result<Capture, PcapPortError> {
        let bytes = std::fs::read(path).map_err(|e| PcapPortError::Read {
            port: port.into(),
            path: path.into(),
            source: e,
        })?;
        Self::parse(port, path, &bytes)
    }

    /// Indexes an in-memory pcap file.
    pub fn parse(port: &str, path: &Path, bytes: &[u8]) -> Result<Capture, PcapPortError> {
        let fmt = |msg: String| PcapPortError::Format {
            port: port.into(),
            path: path.into(),
            msg,
        };
        let reader = PcapReader::new(bytes).map_err(|e| fmt(e.to_string()))?;
        let mut arena = Vec::with_capacity(bytes.len());
        let mut frames = Vec::new();
        let mut oversize = 0;
        for rec in reader {
            let rec = rec.map_err(|e| fmt(e.to_string()))?;
            let data = rec.data;
            if data.len() > super::MAX_FRAME {
                oversize += 1;
            }
            frames.push((arena.len() as u32, data.len() as u32));
            arena.extend_from_slice(data);
        }
        Ok(Capture {
            arena,
            frames,
            oversize,
        })
    }

    /// Number of packets.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when the capture holds no packet.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Packet `i`.
    pub fn get(&self, i: usize) -> &[u8] {
        let (o, l) = self.frames[i];
        &self.arena[o as usize..(o + l) as usize]
    }
}

/// The single receive queue of a pcap input port.
pub struct PcapRx {
    port: u16,
    cap: Arc<Capture>,
    next: usize,
    rounds_left: u64,
    forever: bool,
}

impl PcapRx {
    /// Replays `cap` `repeat` times (0 = forever).
    pub fn new(port: u16, cap: Arc<Capture>, repeat: u64) -> Self {
        PcapRx {
            port,
            rounds_left: if cap.is_empty() { 0 } else { repeat },
            forever: repeat == 0 && !cap.is_empty(),
            cap,
            next: 0,
        }
    }
}

impl RxQueue for PcapRx {
    type Buf = PktBuf;
    type Pool = Pool;

    #[inline]
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut Vec<PktBuf>, max: usize) -> usize {
        let mut got = 0;
        while got < max && (self.forever || self.rounds_left > 0) {
            let Some(mut b) = pool.get() else { break };
            b.fill(self.cap.get(self.next));
            b.port = self.port;
            out.push(b);
            got += 1;
            self.next += 1;
            if self.next == self.cap.len() {
                self.next = 0;
                if !self.forever {
                    self.rounds_left -= 1;
                }
            }
        }
        got
    }

    fn exhausted(&self) -> bool {
        !self.forever && self.rounds_left == 0
    }
}

/// Counters of a pcap output port.
#[derive(Default)]
pub struct PcapOutStats {
    /// Packets written to the file.
    pub written: AtomicU64,
}

/// A worker's transmit queue of a pcap output port.
pub struct PcapTx {
    ring: rtrb::Producer<u8>,
}

/// Bytes of ring per worker queue.
const RING_BYTES: usize = 8 << 20;

impl TxQueue for PcapTx {
    type Buf = PktBuf;
    type Pool = Pool;

    #[inline]
    fn tx_burst(&mut self, pool: &mut Pool, bufs: &mut Vec<PktBuf>) -> usize {
        let mut sent = 0;
        for b in bufs.iter() {
            let d = b.data();
            let need = 2 + d.len();
            let Ok(mut chunk) = self.ring.write_chunk(need) else {
                break;
            };
            let (a, c) = chunk.as_mut_slices();
            let len = (d.len() as u16).to_le_bytes();
            let src = len.iter().chain(d.iter());
            for (dst, s) in a.iter_mut().chain(c.iter_mut()).zip(src) {
                *dst = *s;
            }
            chunk.commit_all();
            sent += 1;
        }
        for b in bufs.drain(..sent) {
            pool.put(b);
        }
        sent
    }

    fn lossless(&self) -> bool {
        true
    }
}

/// The writer side of a pcap output port: a thread that drains every worker's ring.
pub struct PcapOut {
    /// Counters.
    pub stats: Arc<PcapOutStats>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

impl PcapOut {
    /// Creates the output file and `queues` transmit queues, and starts the writer.
    pub fn open(
        port: &str,
        path: &Path,
        queues: usize,
    ) -> Result<(PcapOut, Vec<PcapTx>), PcapPortError> {
        let file = File::create(path).map_err(|e| PcapPortError::Create {
            port: port.into(),
            path: path.into(),
            source: e,
        })?;
        let mut w =
            PcapWriter::new(BufWriter::with_capacity(1 << 20, file), 65535).map_err(|e| {
                PcapPortError::Create {
                    port: port.into(),
                    path: path.into(),
                    source: e,
                }
            })?;
        let mut txs = Vec::new();
        let mut rxs = Vec::new();
        for _ in 0..queues.max(1) {
            let (p, c) = rtrb::RingBuffer::<u8>::new(RING_BYTES);
            txs.push(PcapTx { ring: p });
            rxs.push(c);
        }
        let stats = Arc::new(PcapOutStats::default());
        let st = stats.clone();
        let handle = std::thread::Builder::new()
            .name(format!("pcap-out-{port}"))
            .spawn(move || -> std::io::Result<()> {
                let mut frame = vec![0u8; 65536];
                loop {
                    let mut moved = 0u64;
                    let mut all_done = true;
                    for c in rxs.iter_mut() {
                        loop {
                            if c.slots() < 2 {
                                break;
                            }
                            let len = {
                                let ch = c.read_chunk(2).expect("2 slots are readable");
                                let (a, b) = ch.as_slices();
                                let mut l = [0u8; 2];
                                for (d, s) in l.iter_mut().zip(a.iter().chain(b.iter())) {
                                    *d = *s;
                                }
                                u16::from_le_bytes(l) as usize
                            };
                            if c.slots() < 2 + len {
                                break; // the producer commits length and bytes together
                            }
                            let ch = c.read_chunk(2 + len).expect("slots checked");
                            let (a, b) = ch.as_slices();
                            for (d, s) in frame.iter_mut().zip(a.iter().chain(b.iter()).skip(2)) {
                                *d = *s;
                            }
                            ch.commit_all();
                            let now = SystemTime::now()
                                .duration_since(UNIX_EPOCH)
                                .unwrap_or(Duration::ZERO);
                            w.write_packet(
                                now.as_secs() as u32,
                                now.subsec_micros(),
                                &frame[..len],
                            )?;
                            moved += 1;
                        }
                        if !c.is_abandoned() || c.slots() > 0 {
                            all_done = false;
                        }
                    }
                    if moved > 0 {
                        st.written.fetch_add(moved, Relaxed);
                    } else if all_done {
                        w.flush()?;
                        return Ok(());
                    } else {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
            })
            .map_err(|e| PcapPortError::Create {
                port: port.into(),
                path: path.into(),
                source: e,
            })?;
        Ok((
            PcapOut {
                stats,
                handle: Some(handle),
            },
            txs,
        ))
    }

    /// Waits for the writer to drain every ring and flush the file (after all transmit
    /// queues were dropped).
    pub fn finish(&mut self) -> std::io::Result<()> {
        match self.handle.take() {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("pcap writer thread panicked"))),
            None => Ok(()),
        }
    }
}
