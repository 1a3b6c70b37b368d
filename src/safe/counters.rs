//! Per-core counters.
//!
//! Each worker keeps plain `u64` counters while it processes a burst ([`Local`]) and
//! publishes them once per burst into its own cache-padded atomics ([`WorkerStats`]) with
//! relaxed stores: one writer, any number of readers (stats printer, ctl, TPE), no RMW
//! and no locks. Readers sum over workers.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crossbeam::utils::CachePadded;

use super::drop::DropReason;
use super::tx::N_CLASSES;
use crate::steering::Fallback;

/// Ports a worker keeps per-port counters for.
pub const MAX_PORTS: usize = 16;

/// Counters a worker updates while processing (not shared).
#[derive(Clone, Debug)]
pub struct Local {
    /// Packets received (including those handed to other workers).
    pub rx: u64,
    /// Packets handed off to this worker by another one (software RSS).
    pub rx_handoff: u64,
    /// Packets transmitted.
    pub tx: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Packets forwarded by the steering table.
    pub steered: u64,
    /// Packets forwarded by LPM.
    pub routed: u64,
    /// Packets with a steering header that fell back to LPM, by reason.
    pub fallback: [u64; Fallback::COUNT],
    /// Drops by reason.
    pub drops: [u64; DropReason::COUNT],
    /// Receive per port.
    pub port_rx: [u64; MAX_PORTS],
    /// Transmit per port.
    pub port_tx: [u64; MAX_PORTS],
    /// Transmit per priority class (all ports).
    pub class_tx: [u64; N_CLASSES],
    /// Packets of each priority class dropped at transmit (`tx_full`, `tx_rate`).
    pub class_drops: [u64; N_CLASSES],
    /// Loop iterations that received nothing.
    pub idle_polls: u64,
    /// Loop iterations that received something.
    pub busy_polls: u64,
    /// Times the worker parked (slept) while idle (`general.idle_park_us`).
    pub parks: u64,
    /// Nanoseconds spent parked.
    pub parked_ns: u64,
    /// Parks taken while in standby (the live RAM's; included in `parks`).
    pub standby_parks: u64,
    /// Nanoseconds parked while in standby (included in `parked_ns`).
    pub standby_parked_ns: u64,
    /// Received packets handed to the control plane (ARP, ND, echo requests to the
    /// router, packets waiting for a neighbour's MAC): `rx = tx + drops + local`.
    pub local: u64,
    /// Packets the control plane generated (replies, ICMP errors, ARP/ND requests,
    /// released held packets) that this worker transmitted.
    pub cp_tx: u64,
    /// Control-plane packets the transmit queue refused (not received packets: outside
    /// the rx accounting).
    pub cp_tx_dropped: u64,
}

impl Default for Local {
    fn default() -> Self {
        Local {
            rx: 0,
            rx_handoff: 0,
            tx: 0,
            tx_bytes: 0,
            steered: 0,
            routed: 0,
            fallback: [0; Fallback::COUNT],
            drops: [0; DropReason::COUNT],
            port_rx: [0; MAX_PORTS],
            port_tx: [0; MAX_PORTS],
            class_tx: [0; N_CLASSES],
            class_drops: [0; N_CLASSES],
            idle_polls: 0,
            busy_polls: 0,
            parks: 0,
            parked_ns: 0,
            standby_parks: 0,
            standby_parked_ns: 0,
            local: 0,
            cp_tx: 0,
            cp_tx_dropped: 0,
        }
    }
}

impl Local {
    /// Counts a drop.
    #[inline]
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r.index()] += 1;
    }

    /// Sum of all drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Adds another snapshot into this one.
    pub fn add(&mut self, o: &Local) {
        self.rx += o.rx;
        self.rx_handoff += o.rx_handoff;
        self.tx += o.tx;
        self.tx_bytes += o.tx_bytes;
        self.steered += o.steered;
        self.routed += o.routed;
        for (a, b) in self.fallback.iter_mut().zip(o.fallback.iter()) {
            *a += b;
        }
        for (a, b) in self.drops.iter_mut().zip(o.drops.iter()) {
            *a += b;
        }
        for (a, b) in self.port_rx.iter_mut().zip(o.port_rx.iter()) {
            *a += b;
        }
        for (a, b) in self.port_tx.iter_mut().zip(o.port_tx.iter()) {
            *a += b;
        }
        for (a, b) in self.class_tx.iter_mut().zip(o.class_tx.iter()) {
            *a += b;
        }
        for (a, b) in self.class_drops.iter_mut().zip(o.class_drops.iter()) {
            *a += b;
        }
        self.idle_polls += o.idle_polls;
        self.busy_polls += o.busy_polls;
        self.parks += o.parks;
        self.parked_ns += o.parked_ns;
        self.standby_parks += o.standby_parks;
        self.standby_parked_ns += o.standby_parked_ns;
        self.local += o.local;
        self.cp_tx += o.cp_tx;
        self.cp_tx_dropped += o.cp_tx_dropped;
    }

    /// True when every received packet is sent, dropped (counted) or taken by the
    /// control plane (exact once stopped and drained).
    pub fn accounted(&self) -> bool {
        self.rx == self.tx + self.total_drops() + self.local
    }
}

/// The published copy of a worker's counters, readable from any thread.
pub struct WorkerStats {
    cells: CachePadded<Box<[AtomicU64]>>,
}

const FIXED: usize = 15;
const N_CELLS: usize = FIXED + Fallback::COUNT + DropReason::COUNT + 2 * MAX_PORTS + 2 * N_CLASSES;

impl Default for WorkerStats {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkerStats {
    /// Zeroed counters (start-up).
    pub fn new() -> Self {
        WorkerStats {
            cells: CachePadded::new((0..N_CELLS).map(|_| AtomicU64::new(0)).collect()),
        }
    }

    /// Publishes `l` (called by the owning worker only, once per burst).
    #[inline]
    pub fn publish(&self, l: &Local) {
        let c = &self.cells;
        let fixed = [
            l.rx,
            l.rx_handoff,
            l.tx,
            l.tx_bytes,
            l.steered,
            l.routed,
            l.idle_polls,
            l.busy_polls,
            l.local,
            l.cp_tx,
            l.cp_tx_dropped,
            l.parks,
            l.parked_ns,
            l.standby_parks,
            l.standby_parked_ns,
        ];
        // One plain loop per array (a chained iterator compiled to an indirect jump per
        // counter and cost a third of the io-mode loop on DPDK).
        let store = |cells: &[AtomicU64], vals: &[u64]| {
            for (cell, v) in cells.iter().zip(vals) {
                cell.store(*v, Relaxed);
            }
        };
        let (head, rest) = c.split_at(FIXED);
        store(head, &fixed);
        let (fb, rest) = rest.split_at(Fallback::COUNT);
        store(fb, &l.fallback);
        let (dr, rest) = rest.split_at(DropReason::COUNT);
        store(dr, &l.drops);
        let (prx, rest) = rest.split_at(MAX_PORTS);
        store(prx, &l.port_rx);
        let (ptx, rest) = rest.split_at(MAX_PORTS);
        store(ptx, &l.port_tx);
        let (ctx, cdr) = rest.split_at(N_CLASSES);
        store(ctx, &l.class_tx);
        store(cdr, &l.class_drops);
    }

    /// Reads a consistent-enough snapshot (each counter is exact; they are read one by one).
    pub fn snapshot(&self) -> Local {
        let v: Vec<u64> = self.cells.iter().map(|a| a.load(Relaxed)).collect();
        let mut l = Local {
            rx: v[0],
            rx_handoff: v[1],
            tx: v[2],
            tx_bytes: v[3],
            steered: v[4],
            routed: v[5],
            idle_polls: v[6],
            busy_polls: v[7],
            local: v[8],
            cp_tx: v[9],
            cp_tx_dropped: v[10],
            parks: v[11],
            parked_ns: v[12],
            standby_parks: v[13],
            standby_parked_ns: v[14],
            ..Local::default()
        };
        let mut i = FIXED;
        for x in l.fallback.iter_mut() {
            *x = v[i];
            i += 1;
        }
        for x in l.drops.iter_mut() {
            *x = v[i];
            i += 1;
        }
        for x in l.port_rx.iter_mut() {
            *x = v[i];
            i += 1;
        }
        for x in l.port_tx.iter_mut() {
            *x = v[i];
            i += 1;
        }
        for x in l.class_tx.iter_mut().chain(l.class_drops.iter_mut()) {
            *x = v[i];
            i += 1;
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_snapshot_round_trip() {
        let mut l = Local {
            rx: 10,
            tx: 7,
            steered: 3,
            routed: 4,
            parked_ns: 11,
            standby_parks: 12,
            standby_parked_ns: 13,
            ..Local::default()
        };
        l.drop(DropReason::TtlExpired);
        l.drop(DropReason::TtlExpired);
        l.fallback[Fallback::BadTag as usize] = 5;
        l.port_rx[3] = 9;
        l.port_tx[15] = 2;
        l.class_tx[3] = 6;
        l.class_drops[0] = 8;
        let s = WorkerStats::new();
        s.publish(&l);
        let r = s.snapshot();
        assert_eq!(r.rx, 10);
        assert_eq!(r.drops[DropReason::TtlExpired.index()], 2);
        assert_eq!(r.fallback[Fallback::BadTag as usize], 5);
        assert_eq!(r.port_rx[3], 9);
        assert_eq!(r.port_tx[15], 2);
        assert_eq!((r.class_tx, r.class_drops), ([0, 0, 0, 6], [8, 0, 0, 0]));
        assert_eq!(r.total_drops(), 2);
        assert_eq!(
            (r.parked_ns, r.standby_parks, r.standby_parked_ns),
            (11, 12, 13)
        );
    }
}
