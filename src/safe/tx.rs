//! Per-port transmit staging with priority classes, class weights and a rate limit.
//!
//! A worker stages packets per egress port and priority class, then flushes a port when
//! a full burst is staged or the drain deadline passes (l3fwd's pattern). How a flush
//! shares the port between the classes is the port's [`TxSched`]:
//! - **strict priority** (the default): the highest class first, so when the egress
//!   queue is full it is the lowest priorities that wait and, eventually, are dropped;
//! - **weights** (`tx_weights`): the flush sends the classes interleaved in the order of
//!   weighted fair queueing (each packet's finish tag is its class's bytes so far divided
//!   by the class's weight), so whatever prefix the queue or the rate limit accepts is
//!   shared in proportion to the weights; a class cut short starts the next flush with
//!   the service it was owed, so the shares hold over time and not only within a flush;
//! - **a rate limit** (`tx_rate_mbps`): a token bucket in wire bytes (frame + 24 bytes
//!   of FCS, preamble and gap, as DPDK's scheduler counts), each worker holding its
//!   share of the port's rate (share nothing, like DPDK's per-core schedulers); what
//!   does not fit is dropped and counted (`tx_rate`), in the strict or weighted order.
//!   With weights, each class earns its weighted share of the rate in a bucket of its
//!   own and pays from it; what a class does not use (its bucket full) goes to the
//!   classes whose buckets are not full, by weight. A class whose packets are sparse
//!   (a few per flush, while the flushes themselves hold only a packet's worth of
//!   tokens) thus still gets its share: it is not the order within a flush that
//!   decides, since there is no queue to keep a class backlogged between flushes.

use crate::port::Buf;

/// Number of transmit priority classes (0 = lowest).
pub const N_CLASSES: usize = 4;

/// Highest priority a steering header, marker rule, generator or steering entry can
/// carry: the highest transmit class.
pub const MAX_PRIORITY: u8 = (N_CLASSES - 1) as u8;

/// Bytes a frame takes on the wire beyond its own: FCS (4), preamble and start
/// delimiter (8), inter-frame gap (12).
pub const WIRE_OVERHEAD: u64 = 24;

/// Largest class weight (`tx_weights`).
pub const MAX_WEIGHT: u16 = 1000;

/// Finish tags advance by `wire bytes × (TAG_SCALE / weight)` (fixed point: a
/// multiplication per packet; the step's rounding is under 0.01 % at weight 1000).
const TAG_SCALE: i64 = 1 << 24;

/// Largest frame a tag carry is bounded by (a jumbo frame and its overhead).
const MAX_WIRE: i64 = 9216 + WIRE_OVERHEAD as i64;

/// Shortest time the token bucket holds (its depth is at least this much of the rate).
const BUCKET_NS: u64 = 2_000_000;

/// Smallest token bucket depth in wire bytes: two of the largest frames, so any frame
/// can pass. Small on purpose: after a worker stall the full bucket goes to what is
/// staged, lower classes included, so the depth bounds how far a stall bends strict
/// priority.
pub const MIN_BUCKET_BYTES: u64 = 2 * MAX_WIRE as u64;

/// How a port's transmit classes share it; taken from the port's flags at every flush
/// (so a reload applies at once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxSched {
    /// Class weights (index = class, 1..=[`MAX_WEIGHT`]); all zero = strict priority.
    pub weights: [u16; N_CLASSES],
    /// This worker's share of the port's rate, in wire bytes per second; 0 = no limit.
    pub rate_bytes: u64,
}

impl TxSched {
    /// The schedule of one of `workers` workers for a port with `weights` (all zero =
    /// strict) and a rate of `rate_bps` bits per second (0 = none), split evenly.
    pub fn for_worker(weights: [u16; N_CLASSES], rate_bps: u64, workers: usize) -> Self {
        let rate_bytes = if rate_bps == 0 {
            0
        } else {
            (rate_bps / 8 / workers.max(1) as u64).max(1)
        };
        TxSched {
            weights,
            rate_bytes,
        }
    }

    /// Strict priority without a rate limit: the plain flush (no ordering work).
    #[inline]
    pub fn is_plain(&self) -> bool {
        self.rate_bytes == 0 && !self.weighted()
    }

    /// True when the classes share by weight.
    #[inline]
    pub fn weighted(&self) -> bool {
        self.weights != [0; N_CLASSES]
    }
}

/// The most wire bytes one worker's schedule `s` sends at once after an idle spell
/// (what its buckets hold when full): the bucket's depth, or with weights the sum of
/// the classes' depths. `None` without a rate limit.
pub fn max_burst(s: &TxSched) -> Option<u64> {
    if s.rate_bytes == 0 {
        return None;
    }
    if !s.weighted() {
        return Some(TxStage::<()>::depth(s.rate_bytes));
    }
    let sum: u128 = (0..N_CLASSES)
        .map(|c| TxStage::<()>::class_depth(s, c) / NANO)
        .sum();
    Some(sum as u64)
}

/// Wire bytes of a staged packet.
#[inline]
pub fn wire_bytes<B: Buf>(b: &B) -> u64 {
    b.len() as u64 + WIRE_OVERHEAD
}

/// Staged packets of one egress port.
pub struct TxStage<B> {
    /// Packets per class; capacity reserved at start-up.
    pub classes: [Vec<B>; N_CLASSES],
    /// Packets staged over all classes.
    pub staged: usize,
    /// Receive time of the oldest staged packet (ns), for latency and the deadline.
    pub oldest_ns: u64,
    /// A scheduled flush's packets in sending order (see [`TxStage::plan`]).
    pub order: Vec<B>,
    /// The class of each packet of `order`.
    pub order_class: Vec<u8>,
    /// The finish tag of each packet of `order` (weighted schedules).
    order_tag: Vec<i64>,
    /// Weighted: each class's start tag for the next flush (≤ 0, the service it is owed
    /// from being cut short last time).
    start: [i64; N_CLASSES],
    /// The last plan had at most one class staged (no tags: strict order).
    single: bool,
    /// Rate limit: tokens in wire bytes (strict priority's one bucket), and when
    /// tokens were last added (also to the classes' buckets).
    tokens: u64,
    refilled_ns: u64,
    /// Nanobyte remainder of the last refill (so slow rates are not rounded away).
    refill_rem: u64,
    /// Rate limit with weights: each class's own bucket (its weighted share), in
    /// nanobytes.
    class_tokens: [u64; N_CLASSES],
    /// Rate limit with weights: the last plan took its tokens from the classes'
    /// buckets already ([`TxStage::settle`] refunds what was not sent).
    prepaid: bool,
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
            order: Vec::with_capacity(cap * N_CLASSES),
            order_class: Vec::with_capacity(cap * N_CLASSES),
            order_tag: Vec::with_capacity(cap * N_CLASSES),
            start: [0; N_CLASSES],
            single: true,
            tokens: u64::MAX,
            refilled_ns: 0,
            refill_rem: 0,
            class_tokens: [u64::MAX; N_CLASSES],
            prepaid: false,
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

    /// The rate limit's depth at `rate_bytes` (strict priority's bucket; the classes'
    /// buckets split it).
    fn depth(rate_bytes: u64) -> u64 {
        (rate_bytes as u128 * BUCKET_NS as u128 / 1_000_000_000).max(MIN_BUCKET_BYTES as u128)
            as u64
    }

    /// Wire bytes earned at `rate_bytes` since the last refill (the nanobyte remainder
    /// carried).
    fn earn(&mut self, rate_bytes: u64, now_ns: u64) -> u128 {
        let dt = now_ns.saturating_sub(self.refilled_ns) as u128;
        let earned = dt * rate_bytes as u128 + self.refill_rem as u128;
        self.refill_rem = (earned % 1_000_000_000) as u64;
        self.refilled_ns = self.refilled_ns.max(now_ns);
        earned / 1_000_000_000
    }

    /// Tokens (wire bytes) the rate limit allows now, after adding those earned since
    /// the last refill (up to the bucket's depth).
    fn refill(&mut self, rate_bytes: u64, now_ns: u64) -> u64 {
        let depth = Self::depth(rate_bytes);
        let add = self.earn(rate_bytes, now_ns);
        self.tokens = (self.tokens as u128 + add).min(depth as u128) as u64;
        if self.tokens == depth {
            self.refill_rem = 0;
        }
        self.tokens
    }

    /// A class's own bucket depth under weights, in nanobytes: its weighted share of
    /// the depth, and at least one of the largest frames (so any frame can pass).
    fn class_depth(s: &TxSched, c: usize) -> u128 {
        let total: u128 = s.weights.iter().map(|&w| u128::from(w.max(1))).sum();
        let w = u128::from(s.weights[c].max(1));
        (Self::depth(s.rate_bytes) as u128 * w / total).max(MAX_WIRE as u128) * NANO
    }

    /// [`TxStage::refill`] with weights: each class earns `weight / Σ weights` of the
    /// rate into its own bucket ([`TxStage::class_depth`] deep). What a full bucket (a
    /// class with nothing to send) cannot take goes to the classes whose buckets are not
    /// full, again by weight, so an idle class's share is divided among the busy ones
    /// as weighted fair queueing divides it. When every bucket is full the rest is
    /// lost, as a full bucket's is: after an idle spell a worker sends at most the sum
    /// of the classes' depths (the depth and up to one frame per class).
    fn refill_classes(&mut self, s: &TxSched, now_ns: u64) {
        // In nanobytes: at a flush every few microseconds a class's share of the bytes
        // earned is a fraction of a byte, which whole bytes would round away.
        let dt = now_ns.saturating_sub(self.refilled_ns) as u128;
        self.refilled_ns = self.refilled_ns.max(now_ns);
        let mut pending = dt * s.rate_bytes as u128;
        let w: [u128; N_CLASSES] = std::array::from_fn(|c| u128::from(s.weights[c].max(1)));
        let cap: [u128; N_CLASSES] = std::array::from_fn(|c| Self::class_depth(s, c));
        let mut full = [false; N_CLASSES];
        // Each round fills at least one more bucket or hands out everything.
        for _ in 0..N_CLASSES {
            let open: u128 = (0..N_CLASSES).filter(|&c| !full[c]).map(|c| w[c]).sum();
            if pending == 0 || open == 0 {
                break;
            }
            let mut spill = pending;
            for c in 0..N_CLASSES {
                if full[c] {
                    continue;
                }
                let share = pending * w[c] / open;
                spill -= share;
                let v = self.class_tokens[c] as u128 + share;
                if v >= cap[c] {
                    spill += v - cap[c];
                    self.class_tokens[c] = cap[c] as u64;
                    full[c] = true;
                } else {
                    self.class_tokens[c] = v as u64;
                }
            }
            pending = spill;
        }
    }
}

/// Nanobytes per byte (the classes' buckets count in nanobytes).
const NANO: u128 = 1_000_000_000;

impl<B: Buf> TxStage<B> {
    /// Bytes staged in class `c`.
    pub fn class_bytes(&self, c: usize) -> u64 {
        self.classes[c].iter().map(|b| b.len() as u64).sum()
    }

    /// Moves the staged packets that the schedule sends now into `order`, in sending
    /// order (`order_class` says each one's class): strict is the highest class first;
    /// weighted is by finish tag (ties to the higher class). With a rate limit, only
    /// what fits in the bucket's tokens is moved; the rest stays in `classes` for the
    /// caller to drop (`tx_rate`). Does not allocate (capacity reserved at start-up).
    pub fn plan(&mut self, s: &TxSched, now_ns: u64) {
        self.order.clear();
        self.order_class.clear();
        self.order_tag.clear();
        self.prepaid = false;
        let busy = self.classes.iter().filter(|v| !v.is_empty()).count();
        self.single = busy <= 1;
        if s.weighted() && s.rate_bytes != 0 {
            // The classes' own buckets decide, also for a class staged alone.
            self.refill_classes(s, now_ns);
            self.plan_weighted(s, true);
            return;
        }
        let mut budget = if s.rate_bytes == 0 {
            u64::MAX
        } else {
            self.refill(s.rate_bytes, now_ns)
        };
        if s.weighted() && busy > 1 {
            self.plan_weighted(s, false);
            return;
        }
        // Strict (or one class only, which weights order the same way): whole classes,
        // highest first, each cut at the budget.
        for c in (0..N_CLASSES).rev() {
            let v = &mut self.classes[c];
            if v.is_empty() {
                continue;
            }
            let mut n = v.len();
            if budget != u64::MAX {
                n = 0;
                for b in v.iter() {
                    let len = wire_bytes(b);
                    if len > budget {
                        break;
                    }
                    budget -= len;
                    n += 1;
                }
            }
            self.order.extend(v.drain(..n));
            self.order_class.extend(std::iter::repeat_n(c as u8, n));
            if !v.is_empty() {
                break;
            }
        }
    }

    /// [`TxStage::plan`] for weights: a merge by finish tag. With a rate limit
    /// (`limited`) each packet is paid from its class's bucket; a class that cannot
    /// pay sends nothing more in this flush while the others go on. The tokens are taken here ([`TxStage::settle`] refunds what the
    /// queue refused).
    fn plan_weighted(&mut self, s: &TxSched, limited: bool) {
        // How many packets of each class go, in the order they go (class ids only).
        let mut take = [0usize; N_CLASSES];
        let mut blocked = [false; N_CLASSES];
        let mut tag = self.start;
        let step: [i64; N_CLASSES] =
            std::array::from_fn(|c| TAG_SCALE / s.weights[c].max(1) as i64);
        loop {
            let mut best: Option<(i64, usize, u64)> = None;
            for c in (0..N_CLASSES).rev() {
                if blocked[c] {
                    continue;
                }
                let Some(b) = self.classes[c].get(take[c]) else {
                    continue;
                };
                let len = wire_bytes(b);
                let fin = tag[c] + len as i64 * step[c];
                if best.is_none_or(|(f, _, _)| fin < f) {
                    best = Some((fin, c, len));
                }
            }
            let Some((fin, c, len)) = best else {
                break;
            };
            if limited {
                let nano = len * NANO as u64;
                if self.class_tokens[c] < nano {
                    blocked[c] = true;
                    continue;
                }
                self.class_tokens[c] -= nano;
            }
            tag[c] = fin;
            take[c] += 1;
            self.order_class.push(c as u8);
            self.order_tag.push(fin);
        }
        let mut k = 0;
        let mut drains = self.classes.each_mut().map(|v| {
            let d = v.drain(..take[k]);
            k += 1;
            d
        });
        for &c in &self.order_class {
            // `take[c]` packets of class c were counted above, in this order.
            if let Some(b) = drains[c as usize].next() {
                self.order.push(b);
            }
        }
        self.prepaid = limited;
    }

    /// After a scheduled flush sent the first `sent` packets of the planned order
    /// (`sent_bytes` wire bytes): takes their tokens and, for weighted schedules, gives
    /// each class cut short (packets of it left unsent) the service it was owed at the
    /// cut as a head start for the next flush. Classes that sent everything start even;
    /// a class with nothing staged this time keeps its head start (a flush is a few
    /// microseconds of traffic: a class is often absent from one while it is busy).
    pub fn settle(&mut self, s: &TxSched, sent: usize, sent_bytes: u64) {
        if std::mem::take(&mut self.prepaid) {
            // Paid in the plan: what the queue refused (still in `order`) goes back to
            // its class's bucket.
            for (b, &c) in self
                .order
                .iter()
                .zip(&self.order_class[sent.min(self.order_class.len())..])
            {
                let c = c as usize;
                let v = self.class_tokens[c] as u128 + wire_bytes(b) as u128 * NANO;
                self.class_tokens[c] = v.min(Self::class_depth(s, c)) as u64;
            }
        } else if s.rate_bytes != 0 {
            self.tokens = self.tokens.saturating_sub(sent_bytes);
        }
        if !s.weighted() || sent == 0 {
            return;
        }
        if self.single {
            // One class staged: it is even with itself; the absent ones keep theirs.
            if let Some(&c) = self.order_class.first() {
                self.start[c as usize] = 0;
            }
            return;
        }
        let cut = self.order_tag[sent - 1];
        let mut last = self.start;
        let mut left = [false; N_CLASSES];
        let mut present = [false; N_CLASSES];
        for (i, &c) in self.order_class.iter().enumerate() {
            present[c as usize] = true;
            if i < sent {
                last[c as usize] = self.order_tag[i];
            } else {
                left[c as usize] = true;
            }
        }
        // Under a rate limit the classes' buckets keep the shares: a class the limit
        // left behind (unplanned packets) used up its share and is owed nothing; only
        // one the queue cut short is.
        let limited = s.rate_bytes != 0;
        for c in 0..N_CLASSES {
            let w = s.weights[c].max(1) as i64;
            if left[c] || (!limited && !self.classes[c].is_empty()) {
                self.start[c] = (last[c] - cut).clamp(-MAX_WIRE * TAG_SCALE / w, 0);
            } else if present[c] {
                self.start[c] = 0;
            }
        }
    }
}
