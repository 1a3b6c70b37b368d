//! Per-queue port counters, written by the queue's owning worker and read by any thread.
//!
//! Hot writes, cold reads. Invariant: every counter has exactly one writer, the worker
//! that owns the queue (rx slot `i` is written only by rx queue `i`, tx slot `i` only by
//! tx queue `i`), so a write is a relaxed load + store, never a locked read-modify-write.
//! Each queue's counters sit on their own cache lines so two workers never share one.
//! Readers (control thread, tests) see each counter monotonic, and totals that may be a
//! burst behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crossbeam::utils::CachePadded;

/// Adds `n` to a counter that only the calling thread writes.
#[inline]
pub(crate) fn bump(c: &AtomicU64, n: u64) {
    if n != 0 {
        c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
    }
}

/// Counters of one receive queue.
#[derive(Debug, Default)]
pub struct RxCounters {
    /// Packets handed to the worker.
    pub packets: AtomicU64,
    /// Bytes handed to the worker (frame bytes, no FCS).
    pub bytes: AtomicU64,
    /// Packets the kernel dropped because the queue was not read fast enough
    /// (AF_PACKET: `tp_drops` from `PACKET_STATISTICS`).
    pub drops: AtomicU64,
    /// Frames the kernel delivered cut short (`tp_snaplen < tp_len`, or a tap read that
    /// filled the whole buffer); dropped, never forwarded.
    pub truncated: AtomicU64,
    /// Frames larger than a packet buffer; dropped.
    pub oversize: AtomicU64,
    /// Frames marked `TP_STATUS_CSUMNOTREADY` (checksum left to offload: turn tx
    /// checksum offload off on the sender, `ethtool -K DEV tx off`); forwarded as they are.
    pub csum_not_ready: AtomicU64,
    /// Read errors and malformed ring entries.
    pub errors: AtomicU64,
}

/// Counters of one transmit queue.
#[derive(Debug, Default)]
pub struct TxCounters {
    /// Packets handed to the kernel.
    pub packets: AtomicU64,
    /// Bytes handed to the kernel.
    pub bytes: AtomicU64,
    /// Times a burst stopped early because the ring or the device queue was full (the
    /// packets stayed with the worker, which counts what it drops).
    pub full: AtomicU64,
    /// Packets the port discarded: too large for the interface MTU or the ring frame, too
    /// short for an Ethernet header, or refused by the kernel.
    pub errors: AtomicU64,
    /// Kernel kicks (`send()` calls that push a tx ring out; one per flush at most).
    pub kicks: AtomicU64,
    /// Kicks the kernel refused (device gone or down, or its queue full); the marked
    /// frames go with the next kick.
    pub kick_errors: AtomicU64,
    /// Frames handed to the port (counted in `packets`) and then discarded unsent
    /// because the interface had lost its carrier (afpacket: the kernel keeps refusing
    /// them and would send them, however old, when the carrier returns).
    pub discarded: AtomicU64,
}

/// All counters of one port: one cache-padded slot per rx queue and per tx queue.
#[derive(Debug)]
pub struct PortCounters {
    /// Port name from the configuration.
    pub name: String,
    /// One slot per receive queue.
    pub rx: Box<[CachePadded<RxCounters>]>,
    /// One slot per transmit queue.
    pub tx: Box<[CachePadded<TxCounters>]>,
}

/// A point-in-time sum over all queues of a port.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PortTotals {
    /// See [`RxCounters::packets`].
    pub rx_packets: u64,
    /// See [`RxCounters::bytes`].
    pub rx_bytes: u64,
    /// See [`RxCounters::drops`].
    pub rx_drops: u64,
    /// See [`RxCounters::truncated`].
    pub rx_truncated: u64,
    /// See [`RxCounters::oversize`].
    pub rx_oversize: u64,
    /// See [`RxCounters::csum_not_ready`].
    pub rx_csum_not_ready: u64,
    /// See [`RxCounters::errors`].
    pub rx_errors: u64,
    /// See [`TxCounters::packets`].
    pub tx_packets: u64,
    /// See [`TxCounters::bytes`].
    pub tx_bytes: u64,
    /// See [`TxCounters::full`].
    pub tx_full: u64,
    /// See [`TxCounters::errors`].
    pub tx_errors: u64,
    /// See [`TxCounters::kicks`].
    pub tx_kicks: u64,
    /// See [`TxCounters::kick_errors`].
    pub tx_kick_errors: u64,
    /// See [`TxCounters::discarded`].
    pub tx_discarded: u64,
}

impl PortCounters {
    /// Counters for a port with `rxq` receive and `txq` transmit queues (start-up only).
    pub fn new(name: &str, rxq: usize, txq: usize) -> Arc<PortCounters> {
        Arc::new(PortCounters {
            name: name.to_string(),
            rx: (0..rxq)
                .map(|_| CachePadded::new(RxCounters::default()))
                .collect(),
            tx: (0..txq)
                .map(|_| CachePadded::new(TxCounters::default()))
                .collect(),
        })
    }

    /// Sums every queue's counters.
    pub fn totals(&self) -> PortTotals {
        let mut t = PortTotals::default();
        for q in self.rx.iter() {
            t.rx_packets += q.packets.load(Relaxed);
            t.rx_bytes += q.bytes.load(Relaxed);
            t.rx_drops += q.drops.load(Relaxed);
            t.rx_truncated += q.truncated.load(Relaxed);
            t.rx_oversize += q.oversize.load(Relaxed);
            t.rx_csum_not_ready += q.csum_not_ready.load(Relaxed);
            t.rx_errors += q.errors.load(Relaxed);
        }
        for q in self.tx.iter() {
            t.tx_packets += q.packets.load(Relaxed);
            t.tx_bytes += q.bytes.load(Relaxed);
            t.tx_full += q.full.load(Relaxed);
            t.tx_errors += q.errors.load(Relaxed);
            t.tx_kicks += q.kicks.load(Relaxed);
            t.tx_kick_errors += q.kick_errors.load(Relaxed);
            t.tx_discarded += q.discarded.load(Relaxed);
        }
        t
    }
}

/// What one receive burst saw, added to the queue's counters once per burst.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RxTally {
    pub packets: u64,
    pub bytes: u64,
    pub truncated: u64,
    pub oversize: u64,
    pub csum_not_ready: u64,
    pub errors: u64,
    /// A frame carried `TP_STATUS_LOSING`: the kernel has dropped since the last read
    /// of its statistics.
    pub losing: bool,
}

impl RxTally {
    /// Adds the tally to `c` (the caller is `c`'s single writer).
    #[inline]
    pub fn commit(&self, c: &RxCounters) {
        bump(&c.packets, self.packets);
        bump(&c.bytes, self.bytes);
        bump(&c.truncated, self.truncated);
        bump(&c.oversize, self.oversize);
        bump(&c.csum_not_ready, self.csum_not_ready);
        bump(&c.errors, self.errors);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_all_queues() {
        let c = PortCounters::new("p", 2, 3);
        RxTally {
            packets: 3,
            bytes: 300,
            truncated: 1,
            ..Default::default()
        }
        .commit(&c.rx[0]);
        RxTally {
            packets: 2,
            bytes: 120,
            csum_not_ready: 2,
            ..Default::default()
        }
        .commit(&c.rx[1]);
        bump(&c.tx[2].packets, 4);
        bump(&c.tx[0].errors, 1);
        let t = c.totals();
        assert_eq!(t.rx_packets, 5);
        assert_eq!(t.rx_bytes, 420);
        assert_eq!(t.rx_truncated, 1);
        assert_eq!(t.rx_csum_not_ready, 2);
        assert_eq!(t.tx_packets, 4);
        assert_eq!(t.tx_errors, 1);
    }

    #[test]
    fn counters_are_readable_from_another_thread() {
        let c = PortCounters::new("p", 1, 1);
        let w = Arc::clone(&c);
        std::thread::spawn(move || {
            for _ in 0..1000 {
                bump(&w.rx[0].packets, 1);
            }
        })
        .join()
        .unwrap();
        assert_eq!(c.totals().rx_packets, 1000);
    }
}
