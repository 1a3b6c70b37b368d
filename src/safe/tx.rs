//! Per-port transmit staging with priority classes.
//!
//! A worker stages packets per egress port and priority class, then flushes a port when
//! a full burst is staged or the drain deadline passes (l3fwd's pattern). A flush sends
//! the highest class first, so when the egress queue is full it is the lowest priorities
//! that wait and, eventually, are dropped.

use crate::port::Buf;

/// Number of transmit priority classes (0 = lowest).
pub const N_CLASSES: usize = 4;

/// Highest priority a steering header, marker rule, generator or steering entry can
/// carry: the highest transmit class.
pub const MAX_PRIORITY: u8 = (N_CLASSES - 1) as u8;

/// Staged packets of one egress port.
pub struct TxStage<B> {
    /// Packets per class; capacity reserved at start-up.
    pub classes: [Vec<B>; N_CLASSES],
    /// Packets staged over all classes.
    pub staged: usize,
    /// Receive time of the oldest staged packet (ns), for latency and the deadline.
    pub oldest_ns: u64,
}

impl<B> TxStage<B> {
    /// Highest class index.
    pub const MAX_CLASS: u8 = MAX_PRIORITY;

    /// A stage able to hold `cap` packets per class without allocating.
    pub fn new(cap: usize) -> Self {
        TxStage {
            classes: std::array::from_fn(|_| Vec::with_capacity(cap)),
            staged: 0,
            oldest_ns: 0,
        }
    }

    /// Stages a packet in class `prio` (clamped). The caller flushes when
    /// [`TxStage::full`] says so, before the next burst, so capacity is never exceeded.
    #[inline]
    pub fn push(&mut self, prio: u8, b: B, now_ns: u64) {
        if self.staged == 0 {
            self.oldest_ns = now_ns;
        }
        let c = (prio as usize).min(N_CLASSES - 1);
        self.classes[c].push(b);
        self.staged += 1;
    }

    /// True when at least a burst is staged.
    #[inline]
    pub fn full(&self, burst: usize) -> bool {
        self.staged >= burst
    }
}

impl<B: Buf> TxStage<B> {
    /// Bytes staged in class `c`.
    pub fn class_bytes(&self, c: usize) -> u64 {
        self.classes[c].iter().map(|b| b.len() as u64).sum()
    }
}
