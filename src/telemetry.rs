//! Per-destination telemetry counters (one writer per worker).
//! (Interim version; the TPE branch extends this module with the bucket aggregator.)

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Per-worker per-destination and per-application counters.
pub struct DestCounters {
    packets: Box<[AtomicU64]>,
    bytes: Box<[AtomicU64]>,
    app_packets: Box<[AtomicU64]>,
    app_bytes: Box<[AtomicU64]>,
}

impl DestCounters {
    /// Counters for `n_dest` destinations and `n_app` application classes, plus one
    /// "other" slot each for out-of-range indices.
    pub fn new(n_dest: usize, n_app: usize) -> Self {
        let z = |n: usize| (0..n + 1).map(|_| AtomicU64::new(0)).collect();
        DestCounters {
            packets: z(n_dest),
            bytes: z(n_dest),
            app_packets: z(n_app),
            app_bytes: z(n_app),
        }
    }

    /// Counts one packet of `bytes` to `dest` with application class `app`.
    #[inline]
    pub fn add(&self, dest: u16, app: u8, bytes: u32) {
        let d = (dest as usize).min(self.packets.len() - 1);
        let a = (app as usize).min(self.app_packets.len() - 1);
        bump(&self.packets[d], 1);
        bump(&self.bytes[d], bytes as u64);
        bump(&self.app_packets[a], 1);
        bump(&self.app_bytes[a], bytes as u64);
    }

    /// Packets counted for `dest` so far.
    pub fn packets(&self, dest: usize) -> u64 {
        self.packets.get(dest).map(|a| a.load(Relaxed)).unwrap_or(0)
    }
}

#[inline]
fn bump(a: &AtomicU64, x: u64) {
    a.store(a.load(Relaxed) + x, Relaxed);
}
