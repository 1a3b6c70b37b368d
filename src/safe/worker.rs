//! The per-core poll loop (hot).
//!
//! ```text
//! loop:
//!   refresh tables (one atomic load)          take back lent buffers (distributor)
//!   rx burst on each own queue ──► process ──► stage per port/priority
//!   rx burst on single-queue ports (worker 0 only) ──► hash ──► own share: process
//!                                                          └─► SPSC ring to worker k
//!   pop hand-off ring ──► process
//!   pop the control plane's inject ring (≤ 64) ──► transmit (replies, ICMP errors,
//!   ARP/ND requests, released held packets) or back to the pool; repay its buffers
//!   flush ports with a full burst or past the drain deadline
//!   publish counters; every 100 ms hand the latency histogram to the stats thread
//! ```
//! On stop: receive stops, rings and stages drain, every packet is sent or counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::counters::{Local, MAX_PORTS, WorkerStats};
use super::drop::DropReason;
use super::pipeline::{BURST, BurstCtx, Mode, Scratch, process_burst};
use super::punt::{CpLink, NO_PORT, Punt, PuntKind};
use super::tables::{PortFlags, TableReader};
use super::tx::{N_CLASSES, TxSched, TxStage, WIRE_OVERHEAD};
use crate::port::{AnyRx, AnyTx, Buf, PktBuf, Pool, PutBuf, RxQueue, TxQueue};
use crate::telemetry::DestCounters;

/// Latency histograms travel between a worker and the stats thread in these.
pub type Hist = Box<Histogram<u64>>;

/// A fresh latency histogram (1 ns .. 60 s, 2 significant digits).
pub fn new_hist() -> Hist {
    Box::new(Histogram::new_with_bounds(1, 60_000_000_000, 2).expect("static bounds are valid"))
}

/// Run-wide control flags shared by all workers and the controller.
pub struct RunControl {
    /// Set to stop: receive stops, everything in flight drains.
    pub stop: AtomicBool,
    /// Distributors (workers feeding others) that finished their last hand-off.
    pub distributors_done: AtomicUsize,
    /// Number of distributors.
    pub distributors: usize,
    /// Per worker: all its inputs are exhausted and it holds nothing.
    pub idle_exhausted: Box<[AtomicBool]>,
    /// Workers that have exited their loop.
    pub exited: AtomicUsize,
    /// Per worker: in standby (set by the live RAM, `ram.live`). A worker reads its flag
    /// once per idle poll that may park: in standby it parks up to its `standby_park`
    /// even when `idle_park` is zero; it still polls its queues after every park, so
    /// standby never drops a packet by itself.
    pub standby: Box<[AtomicBool]>,
}

impl RunControl {
    /// Control for `workers` workers of which `distributors` feed others.
    pub fn new(workers: usize, distributors: usize) -> Arc<Self> {
        Arc::new(RunControl {
            stop: AtomicBool::new(false),
            distributors_done: AtomicUsize::new(0),
            distributors,
            idle_exhausted: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            exited: AtomicUsize::new(0),
            standby: (0..workers).map(|_| AtomicBool::new(false)).collect(),
        })
    }

    /// True when every worker reports its inputs exhausted.
    pub fn all_exhausted(&self) -> bool {
        self.idle_exhausted
            .iter()
            .all(|a| a.load(Ordering::Acquire))
    }
}

/// The sending side of software RSS, owned by the worker that polls single-queue ports.
pub struct Distributor {
    /// Ring to each worker (None at this worker's own index).
    pub to: Vec<Option<rtrb::Producer<PktBuf>>>,
    /// Buffers coming back from each worker.
    pub back: Vec<rtrb::Consumer<PktBuf>>,
    /// The single-queue ports this worker polls for everybody.
    pub rx: Vec<AnyRx>,
}

/// The receiving side of software RSS.
pub struct Inbound {
    /// Packets from the distributor.
    pub from: rtrb::Consumer<PktBuf>,
    /// Buffers given back to the distributor's pool.
    pub back: rtrb::Producer<PktBuf>,
    /// Buffers this worker's own pool started with (the rest is returned).
    pub own_buffers: usize,
}

/// Everything a worker owns.
pub struct Worker {
    /// Index.
    pub id: usize,
    /// Core to pin to.
    pub core: Option<core_affinity::CoreId>,
    /// Own receive queues.
    pub rx: Vec<AnyRx>,
    /// One transmit queue per port (index = port).
    pub tx: Vec<AnyTx>,
    /// Software RSS sender (worker 0 when single-queue ports exist).
    pub dist: Option<Distributor>,
    /// Software RSS receiver.
    pub inbound: Option<Inbound>,
    /// Buffer pool.
    pub pool: Pool,
    /// Table snapshot reader.
    pub tables: TableReader,
    /// Published counters.
    pub stats: Arc<WorkerStats>,
    /// Filled histograms to the stats thread.
    pub hist_out: rtrb::Producer<Hist>,
    /// Empty histograms from the stats thread.
    pub hist_in: rtrb::Consumer<Hist>,
    /// Per-destination telemetry.
    pub telemetry: Arc<DestCounters>,
    /// Forwarding or io.
    pub mode: Mode,
    /// Io-mode port peers.
    pub io_peer: Vec<u16>,
    /// Burst size.
    pub burst: usize,
    /// Drain deadline.
    pub drain: Duration,
    /// Longest idle park (0 = never park).
    pub idle_park: Duration,
    /// Longest idle park while in standby ([`RunControl::standby`]).
    pub standby_park: Duration,
    /// Run control.
    pub ctl: Arc<RunControl>,
    /// Clock origin shared by all workers.
    pub epoch: Instant,
    /// Rings to and from the control plane (None when the router has no addresses).
    pub cp: Option<CpLink>,
    /// DPDK queues: a worker of a DPDK run polls these (its `rx` is empty then).
    #[cfg(feature = "dpdk")]
    pub dpdk: Option<crate::port::dpdk::DpdkQueues>,
}

/// Most control-plane packets a worker takes per loop.
const INJECT_PER_LOOP: usize = 64;

/// Hands a packet to the control plane; gives it back when the ring is full (or there is
/// no control plane). ICMP-error punts only use the upper half of the ring, so a flood of
/// expired TTLs never crowds out ARP and neighbour discovery.
#[inline]
fn punt_to(cp: Option<&mut CpLink>, p: Punt<PktBuf>) -> Result<(), Punt<PktBuf>> {
    let Some(cp) = cp else {
        return Err(p);
    };
    if matches!(p.kind, PuntKind::TtlExpired | PuntKind::NoRoute)
        && cp.punt.slots() * 2 < cp.punt.buffer().capacity()
    {
        return Err(p);
    }
    cp.punt.push(p).map_err(|rtrb::PushError::Full(p)| p)
}

/// Takes up to [`INJECT_PER_LOOP`] packets from the control plane and transmits them at
/// once (they are few; counted as `cp_tx`, not as forwarded `tx`), puts bare buffers
/// back in the pool and repays the control plane's pool for the buffers it lent.
#[inline]
fn drain_inject(
    cp: &mut CpLink,
    tx: &mut [AnyTx],
    pool: &mut Pool,
    local: &mut Local,
    owed: &mut usize,
    out: &mut [Vec<PktBuf>],
) {
    let mut any = false;
    for _ in 0..INJECT_PER_LOOP {
        let Ok(inj) = cp.inject.pop() else {
            break;
        };
        if inj.owed {
            *owed += 1;
        }
        match out.get_mut(inj.port as usize) {
            Some(v) if inj.port != NO_PORT && v.len() < v.capacity() => {
                v.push(inj.buf);
                any = true;
            }
            _ => {
                if inj.port != NO_PORT {
                    local.cp_tx_dropped += 1;
                }
                pool.put(inj.buf);
            }
        }
    }
    if any {
        send_injected(out, tx, pool, local);
    }
    repay_owed(cp, pool, owed);
}

/// Sends the control plane's packets collected per port (what a queue refuses after a
/// few tries is counted as `cp_tx_dropped`).
fn send_injected<B, P: PutBuf<B>, Q: TxQueue<Buf = B, Pool = P>>(
    out: &mut [Vec<B>],
    tx: &mut [Q],
    pool: &mut P,
    local: &mut Local,
) {
    for (v, q) in out.iter_mut().zip(tx.iter_mut()) {
        if v.is_empty() {
            continue;
        }
        let mut tries = 0;
        while !v.is_empty() && tries < 4 {
            let n = q.tx_burst(pool, v);
            local.cp_tx += n as u64;
            tries += usize::from(n == 0);
        }
        for b in v.drain(..) {
            local.cp_tx_dropped += 1;
            pool.put(b);
        }
        q.flush();
    }
}

/// Repays the control plane one buffer for each it lent (its packets made from nothing).
fn repay_owed(cp: &mut CpLink, pool: &mut Pool, owed: &mut usize) {
    while *owed > 0 && cp.repay.slots() > 0 {
        let Some(b) = pool.get() else {
            break;
        };
        let _ = cp.repay.push(b);
        *owed -= 1;
    }
}

/// [`punt_to`] for a DPDK worker: the control plane works on steerd buffers, so the
/// packet is copied into one of the worker's (cold: ARP, ND, echo, ICMP errors, packets
/// waiting for a neighbour) and its mbuf freed. Given back when there is no buffer or no
/// room on the ring.
#[cfg(feature = "dpdk")]
fn punt_copy(
    cp: Option<&mut CpLink>,
    pool: &mut Pool,
    p: Punt<crate::port::dpdk::Mbuf>,
) -> Result<(), Punt<crate::port::dpdk::Mbuf>> {
    let Some(mut b) = pool.get() else {
        return Err(p);
    };
    b.fill(p.buf.data());
    b.port = p.buf.rx_port();
    let (q, mbuf) = p.with_buf(b);
    match punt_to(cp, q) {
        // The mbuf is freed here.
        Ok(()) => Ok(()),
        Err(q) => {
            let (p, b) = q.with_buf(mbuf);
            pool.put(b);
            Err(p)
        }
    }
}

/// [`drain_inject`] for a DPDK worker: each packet is copied into an mbuf of its egress
/// port's pool (counted as `cp_tx_dropped` when none is free) and its buffer goes back to
/// the worker's pool.
#[cfg(feature = "dpdk")]
fn drain_inject_dpdk(
    cp: &mut CpLink,
    tx: &mut [crate::port::dpdk::DpdkTx],
    pool: &mut Pool,
    local: &mut Local,
    owed: &mut usize,
    out: &mut [Vec<crate::port::dpdk::Mbuf>],
) {
    let mut any = false;
    for _ in 0..INJECT_PER_LOOP {
        let Ok(inj) = cp.inject.pop() else {
            break;
        };
        if inj.owed {
            *owed += 1;
        }
        if inj.port != NO_PORT {
            let p = inj.port as usize;
            match (out.get_mut(p), tx.get(p)) {
                (Some(v), Some(q)) if v.len() < v.capacity() => match q.mbuf_of(inj.buf.data()) {
                    Some(m) => {
                        v.push(m);
                        any = true;
                    }
                    None => local.cp_tx_dropped += 1,
                },
                _ => local.cp_tx_dropped += 1,
            }
        }
        pool.put(inj.buf);
    }
    if any {
        send_injected(out, tx, &mut crate::port::dpdk::MbufSink, local);
    }
    repay_owed(cp, pool, owed);
}

/// Flow hash over raw bytes for software RSS (IPv4/IPv6 addresses and ports at fixed
/// offsets, no validation: it only has to spread flows consistently).
#[inline]
fn rss_hash(d: &[u8]) -> u32 {
    let et = match d.get(12..14) {
        Some(e) => u16::from_be_bytes([e[0], e[1]]),
        None => return 0,
    };
    let (lo, hi) = match et {
        0x0800 => (26, 38),
        0x86dd => (22, 58),
        0x894f => (46 + 12, 46 + 24), // behind steerd's 32-byte NSH header, IPv4
        _ => (0, 14),
    };
    let s = d.get(lo..hi.min(d.len())).unwrap_or(&[]);
    let mut h: u32 = 0x9e37_79b9;
    for c in s.chunks(4) {
        let mut w = [0u8; 4];
        w[..c.len()].copy_from_slice(c);
        h = (h ^ u32::from_le_bytes(w)).wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
    }
    h
}

impl Worker {
    /// Parks while idle (cold: nothing arrived for 1,024 polls and nothing is staged,
    /// checked by the caller): sleeps with exponential backoff, bounded by `idle_park`,
    /// or by `standby_park` while the RAM has this worker in standby (one relaxed load
    /// of its own flag, only on this idle path). Shared by both worker loops.
    fn idle_park(&self, idle_iters: &mut u32, local: &mut Local) {
        let standby = self.ctl.standby[self.id].load(Ordering::Relaxed);
        let cap = if standby {
            self.idle_park.max(self.standby_park)
        } else {
            self.idle_park
        };
        if cap.is_zero() {
            return;
        }
        let k = ((*idle_iters - 1024) / 64).min(16);
        let d = Duration::from_micros(8u64 << k).min(cap);
        let t = Instant::now();
        std::thread::sleep(d);
        let ns = t.elapsed().as_nanos() as u64;
        local.parks += 1;
        local.parked_ns += ns;
        if standby {
            local.standby_parks += 1;
            local.standby_parked_ns += ns;
        }
        *idle_iters = idle_iters.saturating_add(63);
    }

    /// Runs the poll loop until stopped and drained. Returns the final counters.
    pub fn run(mut self) -> Local {
        if let Some(c) = self.core {
            core_affinity::set_for_current(c);
        }
        #[cfg(feature = "dpdk")]
        if let Some(q) = self.dpdk.take() {
            return self.run_dpdk(q);
        }
        let n_ports = self.tx.len().min(MAX_PORTS);
        let workers = self.ctl.idle_exhausted.len();
        let mut stages: Vec<TxStage<PktBuf>> =
            (0..n_ports).map(|_| TxStage::new(2 * BURST)).collect();
        let mut scratch = Scratch::default();
        let mut local = Local::default();
        let mut mine: Vec<PktBuf> = Vec::with_capacity(2 * BURST);
        let mut rxv: Vec<PktBuf> = Vec::with_capacity(2 * BURST);
        let mut hist = new_hist();
        let burst = self.burst.clamp(1, BURST);
        let drain_ns = self.drain.as_nanos() as u64;
        let mut last_hist_ns = 0u64;
        let mut stopping = false;
        let mut dist_done = false;
        let mut idle_iters = 0u32;
        // Batches flushed in the previous iteration: (receive time of the oldest, count).
        // Their latency is taken at the next clock read, so the loop reads the clock once.
        let mut pending: Vec<(u64, u64)> = Vec::with_capacity(4 * MAX_PORTS);
        let mut inject_out: Vec<Vec<PktBuf>> = (0..n_ports)
            .map(|_| Vec::with_capacity(INJECT_PER_LOOP))
            .collect();
        let mut owed = 0usize;
        loop {
            let now = self.epoch.elapsed().as_nanos() as u64;
            for (t0, n) in pending.drain(..) {
                hist.saturating_record_n(now.saturating_sub(t0).max(1), n);
            }
            self.tables.refresh();
            if !stopping && self.ctl.stop.load(Ordering::Relaxed) {
                stopping = true;
            }
            // After the table refresh: packets the control plane released before it
            // published a neighbour's MAC leave before packets forwarded with it.
            if let Some(cp) = self.cp.as_mut() {
                drain_inject(
                    cp,
                    &mut self.tx,
                    &mut self.pool,
                    &mut local,
                    &mut owed,
                    &mut inject_out,
                );
            }
            let mut got = 0usize;
            if let Some(d) = self.dist.as_mut() {
                for c in d.back.iter_mut() {
                    while let Ok(b) = c.pop() {
                        self.pool.put(b);
                    }
                }
            }
            let tables = self.tables.get();
            let ctx = BurstCtx {
                tables,
                now_ns: now,
                io_peer: &self.io_peer,
                telemetry: &self.telemetry,
                generation: self.tables.generation(),
            };
            if !stopping {
                for q in self.rx.iter_mut() {
                    let n = q.rx_burst(&mut self.pool, &mut mine, burst);
                    if n == 0 {
                        continue;
                    }
                    got += n;
                    count_rx(&mut local, &mine);
                    process_burst(
                        self.mode,
                        &ctx,
                        &mut mine,
                        &mut scratch,
                        &mut stages,
                        &mut local,
                        |b| self.pool.put(b),
                        |p| punt_to(self.cp.as_mut(), p),
                    );
                    flush_full(
                        &mut stages,
                        &mut self.tx,
                        &mut self.pool,
                        &mut local,
                        &mut pending,
                        now,
                        burst,
                        &tables.ports,
                        workers,
                    );
                }
                if let Some(d) = self.dist.as_mut() {
                    let room =
                        d.to.iter()
                            .all(|p| p.as_ref().is_none_or(|p| p.slots() >= burst));
                    if room {
                        let nw = d.to.len() as u64;
                        for q in d.rx.iter_mut() {
                            let n = q.rx_burst(&mut self.pool, &mut rxv, burst);
                            if n == 0 {
                                continue;
                            }
                            got += n;
                            count_rx(&mut local, &rxv);
                            for b in rxv.drain(..) {
                                let w = ((rss_hash(b.data()) as u64 * nw) >> 32) as usize;
                                match d.to.get_mut(w).and_then(Option::as_mut) {
                                    // Room for a whole burst was checked above.
                                    Some(p) => {
                                        if let Err(rtrb::PushError::Full(b)) = p.push(b) {
                                            mine.push(b);
                                        }
                                    }
                                    None => mine.push(b),
                                }
                            }
                            process_burst(
                                self.mode,
                                &ctx,
                                &mut mine,
                                &mut scratch,
                                &mut stages,
                                &mut local,
                                |b| self.pool.put(b),
                                |p| punt_to(self.cp.as_mut(), p),
                            );
                            flush_full(
                                &mut stages,
                                &mut self.tx,
                                &mut self.pool,
                                &mut local,
                                &mut pending,
                                now,
                                burst,
                                &tables.ports,
                                workers,
                            );
                        }
                    }
                }
            }
            if let Some(inb) = self.inbound.as_mut() {
                while mine.len() < burst {
                    match inb.from.pop() {
                        Ok(b) => mine.push(b),
                        Err(_) => break,
                    }
                }
                if !mine.is_empty() {
                    got += mine.len();
                    local.rx_handoff += mine.len() as u64;
                    process_burst(
                        self.mode,
                        &ctx,
                        &mut mine,
                        &mut scratch,
                        &mut stages,
                        &mut local,
                        |b| self.pool.put(b),
                        |p| punt_to(self.cp.as_mut(), p),
                    );
                    flush_full(
                        &mut stages,
                        &mut self.tx,
                        &mut self.pool,
                        &mut local,
                        &mut pending,
                        now,
                        burst,
                        &tables.ports,
                        workers,
                    );
                }
                // Give back what this worker received beyond its own share of buffers.
                while self.pool.available() > inb.own_buffers && inb.back.slots() > 0 {
                    match self.pool.get() {
                        Some(b) => {
                            let _ = inb.back.push(b);
                        }
                        None => break,
                    }
                }
            }
            // Drain deadline.
            for (p, st) in stages.iter_mut().enumerate() {
                if st.staged > 0 && (stopping || now.saturating_sub(st.oldest_ns) >= drain_ns) {
                    flush_port(
                        st,
                        &mut self.tx[p],
                        &mut self.pool,
                        &mut local,
                        &mut pending,
                        now,
                        p,
                        &sched_of(&tables.ports, p, workers),
                    );
                }
            }
            if got > 0 {
                local.busy_polls += 1;
                idle_iters = 0;
                self.stats.publish(&local);
            } else {
                local.idle_polls += 1;
                idle_iters = idle_iters.saturating_add(1);
                if idle_iters.is_multiple_of(1024) {
                    self.stats.publish(&local);
                }
                let exhausted = self.rx.iter().all(|q| q.exhausted())
                    && self
                        .dist
                        .as_ref()
                        .is_none_or(|d| d.rx.iter().all(|q| q.exhausted()))
                    && stages.iter().all(|s| s.staged == 0);
                self.ctl.idle_exhausted[self.id].store(exhausted, Ordering::Release);
                std::hint::spin_loop();
                if idle_iters >= 1024
                    && !stopping
                    && !exhausted
                    && stages.iter().all(|s| s.staged == 0)
                {
                    self.idle_park(&mut idle_iters, &mut local);
                }
            }
            if now.saturating_sub(last_hist_ns) >= 100_000_000 || stopping {
                if let Ok(mut fresh) = self.hist_in.pop() {
                    std::mem::swap(&mut hist, &mut fresh);
                    // The ring has room: the stats thread owns the other histograms.
                    let _ = self.hist_out.push(fresh);
                }
                last_hist_ns = now;
            }
            if stopping && got == 0 {
                // Distributors finish first; receivers keep draining until they are done.
                if self.dist.is_some() && !dist_done {
                    dist_done = true;
                    self.ctl.distributors_done.fetch_add(1, Ordering::AcqRel);
                }
                let feeders_done =
                    self.ctl.distributors_done.load(Ordering::Acquire) >= self.ctl.distributors;
                let inbound_empty = self.inbound.as_ref().is_none_or(|i| i.from.is_empty());
                if feeders_done && inbound_empty && stages.iter().all(|s| s.staged == 0) {
                    break;
                }
            }
        }
        for q in self.tx.iter_mut() {
            q.flush();
        }
        let end = self.epoch.elapsed().as_nanos() as u64;
        for (t0, n) in pending.drain(..) {
            hist.saturating_record_n(end.saturating_sub(t0).max(1), n);
        }
        self.stats.publish(&local);
        // Hand over the last histogram (the stats thread collects it after the join).
        let _ = self.hist_out.push(hist);
        self.ctl.exited.fetch_add(1, Ordering::AcqRel);
        local
    }
}

#[inline]
fn count_rx<B: Buf>(local: &mut Local, v: &[B]) {
    local.rx += v.len() as u64;
    for b in v {
        let p = b.rx_port() as usize;
        if p < MAX_PORTS {
            local.port_rx[p] += 1;
        }
    }
}

#[inline]
#[allow(clippy::too_many_arguments)]
fn flush_full<B: Buf, P: PutBuf<B>, Q: TxQueue<Buf = B, Pool = P>>(
    stages: &mut [TxStage<B>],
    tx: &mut [Q],
    pool: &mut P,
    local: &mut Local,
    pending: &mut Vec<(u64, u64)>,
    now: u64,
    burst: usize,
    ports: &[PortFlags],
    workers: usize,
) {
    for (p, st) in stages.iter_mut().enumerate() {
        if st.full(burst) {
            let s = sched_of(ports, p, workers);
            flush_port(st, &mut tx[p], pool, local, pending, now, p, &s);
        }
    }
}

/// The transmit schedule of port `p` for one of `workers` workers, from its flags.
#[inline]
fn sched_of(ports: &[PortFlags], p: usize, workers: usize) -> TxSched {
    ports.get(p).map_or(TxSched::default(), |f| {
        TxSched::for_worker(f.tx_weights, f.tx_rate_bps, workers)
    })
}

/// Sends everything staged on one port as its schedule says: the plain flush (strict
/// priority, no rate limit) sends the highest class first; weights or a rate limit take
/// [`flush_scheduled`]. A lossless queue is waited for (bounded); otherwise what the
/// queue refuses after a few tries is dropped.
#[inline]
#[allow(clippy::too_many_arguments)]
fn flush_port<B: Buf, P: PutBuf<B>, Q: TxQueue<Buf = B, Pool = P>>(
    st: &mut TxStage<B>,
    q: &mut Q,
    pool: &mut P,
    local: &mut Local,
    pending: &mut Vec<(u64, u64)>,
    now: u64,
    port: usize,
    sched: &TxSched,
) {
    if !sched.is_plain() {
        flush_scheduled(st, q, pool, local, pending, now, port, sched);
        return;
    }
    let lossless = q.lossless();
    let mut sent_total = 0u64;
    for c in (0..N_CLASSES).rev() {
        let v = &mut st.classes[c];
        if v.is_empty() {
            continue;
        }
        let (sent, bytes) = send_until_refused(q, pool, v, lossless);
        local.tx_bytes += bytes;
        sent_total += sent as u64;
        local.class_tx[c] += sent as u64;
        local.class_drops[c] += v.len() as u64;
        for b in v.drain(..) {
            local.drop(DropReason::TxFull);
            pool.put(b);
        }
    }
    q.flush();
    st.staged = 0;
    flushed(st, local, pending, port, sent_total);
}

/// Sends from the front of `v` until it is empty or the queue refuses: after a few
/// tries, or, for a lossless queue (file output: the writer thread catches up), after
/// up to a second. Returns the packets and the frame bytes sent; what is left in `v`
/// was refused.
#[inline]
fn send_until_refused<B: Buf, P: PutBuf<B>, Q: TxQueue<Buf = B, Pool = P>>(
    q: &mut Q,
    pool: &mut P,
    v: &mut Vec<B>,
    lossless: bool,
) -> (usize, u64) {
    let mut tries = 0u32;
    let mut waited: Option<Instant> = None;
    let (mut sent_total, mut bytes_total) = (0usize, 0u64);
    while !v.is_empty() {
        let bytes: u64 = v.iter().map(|b| b.len() as u64).sum();
        let before = v.len();
        let sent = q.tx_burst(pool, v);
        if sent > 0 {
            let left: u64 = v.iter().map(|b| b.len() as u64).sum();
            bytes_total += bytes - left;
            sent_total += sent;
            tries = 0;
            continue;
        }
        debug_assert_eq!(before, v.len());
        tries += 1;
        if lossless {
            let t0 = *waited.get_or_insert_with(Instant::now);
            if t0.elapsed() < Duration::from_secs(1) {
                std::thread::yield_now();
                continue;
            }
        } else if tries < 4 {
            continue;
        }
        break;
    }
    (sent_total, bytes_total)
}

/// The counters and the latency record of a flush that sent `sent_total` packets.
#[inline]
fn flushed<B>(
    st: &TxStage<B>,
    local: &mut Local,
    pending: &mut Vec<(u64, u64)>,
    port: usize,
    sent_total: u64,
) {
    if sent_total > 0 {
        local.tx += sent_total;
        if port < MAX_PORTS {
            local.port_tx[port] += sent_total;
        }
        if pending.len() < pending.capacity() {
            pending.push((st.oldest_ns, sent_total));
        }
    }
}

/// A flush under class weights or a rate limit ([`TxSched`]): the stage plans the
/// sending order ([`TxStage::plan`]: weighted fair order, or strict, cut at the rate
/// limit's tokens), the order goes out in one burst (retried as in [`flush_port`]), and
/// the stage settles the tokens and the classes' shares ([`TxStage::settle`]). What the
/// queue refused is dropped as `tx_full`, what the rate limit left as `tx_rate`, each
/// counted under its class.
#[allow(clippy::too_many_arguments)]
fn flush_scheduled<B: Buf, P: PutBuf<B>, Q: TxQueue<Buf = B, Pool = P>>(
    st: &mut TxStage<B>,
    q: &mut Q,
    pool: &mut P,
    local: &mut Local,
    pending: &mut Vec<(u64, u64)>,
    now: u64,
    port: usize,
    sched: &TxSched,
) {
    st.plan(sched, now);
    let lossless = q.lossless();
    let (sent, bytes) = send_until_refused(q, pool, &mut st.order, lossless);
    local.tx_bytes += bytes;
    st.settle(sched, sent, bytes + sent as u64 * WIRE_OVERHEAD);
    for &c in &st.order_class[..sent] {
        local.class_tx[c as usize] += 1;
    }
    for (b, &c) in st.order.drain(..).zip(&st.order_class[sent..]) {
        local.drop(DropReason::TxFull);
        local.class_drops[c as usize] += 1;
        pool.put(b);
    }
    for (c, v) in st.classes.iter_mut().enumerate() {
        local.class_drops[c] += v.len() as u64;
        for b in v.drain(..) {
            local.drop(DropReason::TxRate);
            pool.put(b);
        }
    }
    q.flush();
    st.staged = 0;
    flushed(st, local, pending, port, sent as u64);
}

#[cfg(feature = "dpdk")]
impl Worker {
    /// The poll loop of a DPDK run: the same stages as [`Worker::run`] over DPDK queues
    /// and mbufs (the pipeline rewrites the mbufs in place). No software RSS (the NIC's
    /// RSS, or worker 0 alone on a single-queue port). The control plane's packets are
    /// copied between mbufs and steerd buffers at the rings ([`punt_copy`],
    /// [`drain_inject_dpdk`]): only the slow path pays for the copies.
    fn run_dpdk(mut self, mut q: crate::port::dpdk::DpdkQueues) -> Local {
        use crate::port::dpdk::{Mbuf, MbufSink};
        let registered = q.register_thread();
        if !registered {
            tracing::warn!(
                "worker {}: the DPDK EAL refused to register this thread: mbufs bypass the per-lcore mempool caches (slower)",
                self.id
            );
        }
        let n_ports = q.tx.len().min(MAX_PORTS);
        let workers = self.ctl.idle_exhausted.len();
        let mut stages: Vec<TxStage<Mbuf>> =
            (0..n_ports).map(|_| TxStage::new(2 * BURST)).collect();
        let mut scratch = Scratch::default();
        let mut local = Local::default();
        let mut mine: Vec<Mbuf> = Vec::with_capacity(2 * BURST);
        let mut sink = MbufSink;
        let mut hist = new_hist();
        let burst = self.burst.clamp(1, BURST);
        let drain_ns = self.drain.as_nanos() as u64;
        let mut last_hist_ns = 0u64;
        let mut stopping = false;
        let mut idle_iters = 0u32;
        let mut pending: Vec<(u64, u64)> = Vec::with_capacity(4 * MAX_PORTS);
        let mut inject_out: Vec<Vec<Mbuf>> = (0..n_ports)
            .map(|_| Vec::with_capacity(INJECT_PER_LOOP))
            .collect();
        let mut owed = 0usize;
        loop {
            let now = self.epoch.elapsed().as_nanos() as u64;
            for (t0, n) in pending.drain(..) {
                hist.saturating_record_n(now.saturating_sub(t0).max(1), n);
            }
            self.tables.refresh();
            if !stopping && self.ctl.stop.load(Ordering::Relaxed) {
                stopping = true;
            }
            // After the table refresh, as in `run`.
            if let Some(cp) = self.cp.as_mut() {
                drain_inject_dpdk(
                    cp,
                    &mut q.tx,
                    &mut self.pool,
                    &mut local,
                    &mut owed,
                    &mut inject_out,
                );
            }
            let mut got = 0usize;
            let tables = self.tables.get();
            let ctx = BurstCtx {
                tables,
                now_ns: now,
                io_peer: &self.io_peer,
                telemetry: &self.telemetry,
                generation: self.tables.generation(),
            };
            if !stopping {
                for r in q.rx.iter_mut() {
                    let n = r.rx_burst(&mut sink, &mut mine, burst);
                    if n == 0 {
                        continue;
                    }
                    got += n;
                    count_rx(&mut local, &mine);
                    process_burst(
                        self.mode,
                        &ctx,
                        &mut mine,
                        &mut scratch,
                        &mut stages,
                        &mut local,
                        drop,
                        |p| punt_copy(self.cp.as_mut(), &mut self.pool, p),
                    );
                    flush_full(
                        &mut stages,
                        &mut q.tx,
                        &mut sink,
                        &mut local,
                        &mut pending,
                        now,
                        burst,
                        &tables.ports,
                        workers,
                    );
                }
            }
            for (p, st) in stages.iter_mut().enumerate() {
                if st.staged > 0 && (stopping || now.saturating_sub(st.oldest_ns) >= drain_ns) {
                    flush_port(
                        st,
                        &mut q.tx[p],
                        &mut sink,
                        &mut local,
                        &mut pending,
                        now,
                        p,
                        &sched_of(&tables.ports, p, workers),
                    );
                }
            }
            if got > 0 {
                local.busy_polls += 1;
                idle_iters = 0;
                self.stats.publish(&local);
            } else {
                local.idle_polls += 1;
                idle_iters = idle_iters.saturating_add(1);
                if idle_iters.is_multiple_of(1024) {
                    self.stats.publish(&local);
                }
                // Live ports are never exhausted (a net_pcap file that ended just
                // receives nothing): a DPDK run stops on duration, signal or ctl.
                self.ctl.idle_exhausted[self.id].store(false, Ordering::Release);
                std::hint::spin_loop();
                // Idle parking and the live RAM's standby, as in the other loop (a
                // NIC's rx ring holds what arrives while parked: keep idle_park_us and
                // ram.standby_park_us below ring size ÷ the rate that may arrive).
                if idle_iters >= 1024 && !stopping && stages.iter().all(|s| s.staged == 0) {
                    self.idle_park(&mut idle_iters, &mut local);
                }
            }
            if now.saturating_sub(last_hist_ns) >= 100_000_000 || stopping {
                if let Ok(mut fresh) = self.hist_in.pop() {
                    std::mem::swap(&mut hist, &mut fresh);
                    let _ = self.hist_out.push(fresh);
                }
                // Worker 0 copies the ports' DPDK statistics (cold, every 100 ms).
                q.publish_stats();
                last_hist_ns = now;
            }
            if stopping && got == 0 && stages.iter().all(|s| s.staged == 0) {
                break;
            }
        }
        for t in q.tx.iter_mut() {
            t.flush();
        }
        let end = self.epoch.elapsed().as_nanos() as u64;
        for (t0, n) in pending.drain(..) {
            hist.saturating_record_n(end.saturating_sub(t0).max(1), n);
        }
        self.stats.publish(&local);
        let _ = self.hist_out.push(hist);
        drop(mine);
        drop(stages);
        drop(inject_out);
        if registered {
            q.unregister_thread();
        }
        self.ctl.exited.fetch_add(1, Ordering::AcqRel);
        local
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transmit queue with room for `room` packets, then full.
    struct Limited {
        room: usize,
        sent: Vec<u8>,
    }

    impl TxQueue for Limited {
        type Buf = PktBuf;
        type Pool = Pool;
        fn tx_burst(&mut self, pool: &mut Pool, bufs: &mut Vec<PktBuf>) -> usize {
            let n = bufs.len().min(self.room);
            self.room -= n;
            for b in bufs.drain(..n) {
                self.sent.push(b.data()[0]);
                pool.put(b);
            }
            n
        }
    }

    /// Stages `per_class[c]` packets of `size` bytes in each class c (the first byte says
    /// the class), flushes with `sched` at `now` into a queue with `room`, and returns
    /// what the queue took, by class.
    #[allow(clippy::too_many_arguments)]
    fn flush_once(
        st: &mut TxStage<PktBuf>,
        pool: &mut Pool,
        local: &mut Local,
        per_class: [usize; N_CLASSES],
        size: usize,
        room: usize,
        sched: &TxSched,
        now: u64,
    ) -> [u64; N_CLASSES] {
        for (class, &n) in per_class.iter().enumerate() {
            for _ in 0..n {
                let mut b = pool.get().expect("pool sized for the test");
                b.fill(&vec![class as u8; size]);
                st.push(class as u8, b, now);
            }
        }
        let mut q = Limited {
            room,
            sent: Vec::new(),
        };
        let mut pending = Vec::with_capacity(8);
        flush_port(st, &mut q, pool, local, &mut pending, now, 0, sched);
        let mut got = [0u64; N_CLASSES];
        for c in q.sent {
            got[c as usize] += 1;
        }
        got
    }

    fn weighted(w: [u16; N_CLASSES]) -> TxSched {
        TxSched {
            weights: w,
            rate_bytes: 0,
        }
    }

    #[test]
    fn weights_share_a_full_queue_in_proportion() {
        let mut pool = Pool::new(256);
        let mut st = TxStage::new(64);
        let mut local = Local::default();
        let s = weighted([1, 2, 3, 4]);
        let mut got = [0u64; N_CLASSES];
        for i in 0..500 {
            let g = flush_once(&mut st, &mut pool, &mut local, [16; 4], 60, 20, &s, i);
            for c in 0..N_CLASSES {
                got[c] += g[c];
            }
        }
        let total: u64 = got.iter().sum();
        assert_eq!(total, 500 * 20);
        for c in 0..N_CLASSES {
            let share = got[c] as f64 / total as f64;
            let want = (c + 1) as f64 / 10.0;
            assert!(
                (share - want).abs() < 0.01,
                "class {c}: {share} vs {want} ({got:?})"
            );
        }
        assert_eq!(local.class_tx, got);
        let dropped: u64 = local.class_drops.iter().sum();
        assert_eq!(dropped, 500 * 64 - total);
        assert_eq!(local.drops[DropReason::TxFull.index()], dropped);
        assert_eq!(pool.available(), 256, "every buffer back in the pool");
    }

    #[test]
    fn equal_weights_share_evenly_when_each_flush_sends_few() {
        // 10 of 4 × 8 packets per flush: ties at the cut must not favour the higher
        // classes over time.
        let mut pool = Pool::new(64);
        let mut st = TxStage::new(64);
        let mut local = Local::default();
        let s = weighted([1; 4]);
        for i in 0..400 {
            flush_once(&mut st, &mut pool, &mut local, [8; 4], 60, 10, &s, i);
        }
        for c in 0..N_CLASSES {
            assert!(
                local.class_tx[c].abs_diff(1000) <= 4,
                "class {c}: {:?}",
                local.class_tx
            );
        }
    }

    #[test]
    fn weights_share_bytes_not_packets() {
        // Class 3 sends 1000-byte frames, class 0 60-byte ones, equal weights: equal
        // wire bytes, so class 0 sends about 1024/84 times as many packets.
        let mut pool = Pool::new(128);
        let mut st = TxStage::new(64);
        let mut local = Local::default();
        let s = weighted([1; 4]);
        let mut got = [0u64; 4];
        for i in 0..300 {
            for _ in 0..40 {
                let mut b = pool.get().unwrap();
                b.fill(&[0u8; 60]);
                st.push(0, b, i);
            }
            for _ in 0..8 {
                let mut b = pool.get().unwrap();
                b.fill(&[3u8; 1000]);
                st.push(3, b, i);
            }
            let mut q = Limited {
                room: 20,
                sent: Vec::new(),
            };
            let mut pending = Vec::with_capacity(8);
            flush_port(
                &mut st,
                &mut q,
                &mut pool,
                &mut local,
                &mut pending,
                i,
                0,
                &s,
            );
            for c in q.sent {
                got[c as usize] += 1;
            }
        }
        let bytes0 = got[0] * (60 + WIRE_OVERHEAD);
        let bytes3 = got[3] * (1000 + WIRE_OVERHEAD);
        let r = bytes0 as f64 / bytes3 as f64;
        assert!((r - 1.0).abs() < 0.05, "byte ratio {r} ({got:?})");
        assert_eq!(pool.available(), 128);
    }

    #[test]
    fn rate_limit_sends_its_rate_strict_highest_class_first() {
        // 1000 packets/s of 60-byte frames (84 wire bytes), offered 16 per ms.
        let rate = 84_000u64;
        let s = TxSched {
            weights: [0; 4],
            rate_bytes: rate,
        };
        let mut pool = Pool::new(64);
        let mut st = TxStage::new(64);
        let mut local = Local::default();
        let ms = 1_000_000u64;
        for i in 1..=10_000u64 {
            flush_once(&mut st, &mut pool, &mut local, [4; 4], 60, 64, &s, i * ms);
        }
        // Ten seconds at the rate, plus the bucket's depth at the start.
        let sent = local.tx;
        let cap = (10 * rate + crate::safe::tx::MIN_BUCKET_BYTES) / 84;
        assert!(sent <= cap && sent >= 10 * rate / 84, "{sent} vs ≤ {cap}");
        assert_eq!(local.drops[DropReason::TxRate.index()], 160_000 - sent);
        assert_eq!(local.drops[DropReason::TxFull.index()], 0);
        for c in 0..N_CLASSES {
            assert_eq!(local.class_tx[c] + local.class_drops[c], 40_000);
        }
        // The bucket's depth goes to whoever comes first at the start; after that, strict
        // priority gives class 3 (offered 4000/s) the whole rate.
        assert!(local.class_tx[3] >= 10 * rate / 84, "{:?}", local.class_tx);
        let before = local.class_tx;
        for i in 10_001..=12_000u64 {
            flush_once(&mut st, &mut pool, &mut local, [4; 4], 60, 64, &s, i * ms);
        }
        assert_eq!(
            local.class_tx[..3],
            before[..3],
            "nothing below class 3 once the bucket is drained"
        );
        assert_eq!(pool.available(), 64);
    }

    #[test]
    fn rate_limit_with_weights_shares_the_rate() {
        let s = TxSched {
            weights: [1, 1, 1, 5],
            rate_bytes: 840_000,
        };
        let mut pool = Pool::new(64);
        let mut st = TxStage::new(64);
        let mut local = Local::default();
        for i in 1..=5_200u64 {
            if i == 201 {
                // Past the bucket's first depth, which every class shares while it lasts.
                local = Local::default();
            }
            flush_once(
                &mut st,
                &mut pool,
                &mut local,
                [8; 4],
                60,
                64,
                &s,
                i * 1_000_000,
            );
        }
        let total: u64 = local.class_tx.iter().sum();
        let share3 = local.class_tx[3] as f64 / total as f64;
        assert!((share3 - 0.625).abs() < 0.01, "{:?}", local.class_tx);
        for c in 0..3 {
            let share = local.class_tx[c] as f64 / total as f64;
            assert!((share - 0.125).abs() < 0.01, "{:?}", local.class_tx);
        }
        assert_eq!(local.drops[DropReason::TxFull.index()], 0);
    }

    /// The rate is earned by the classes' own buckets, so a class whose packets are
    /// sparse still gets its weighted share: here every flush holds one packet (class 0
    /// three times in four, class 3 once) while the rate pays for one packet in four
    /// flushes. Equal weights share the rate equally; without the classes' buckets the
    /// packet that happened to come when the tokens did went, and class 3 had a quarter.
    #[test]
    fn sparse_classes_get_their_weighted_share_of_the_rate() {
        let mut pool = Pool::new(64);
        let mut st = TxStage::new(64);
        // 40,000 flushes 100 µs apart from `from`, each of one 60-byte packet; counts
        // from the 1,001st (past the buckets' first depth). Returns the packets sent.
        let mut run = |weights, from: u64| {
            // 84 wire bytes per packet, a flush every 100 µs: 210,000 B/s pays a quarter.
            let s = TxSched {
                weights,
                rate_bytes: 210_000,
            };
            let mut local = Local::default();
            for i in from..from + 40_000 {
                if i == from + 1_000 {
                    local = Local::default();
                }
                let mut per = [0; 4];
                per[if i % 4 == 0 { 3 } else { 0 }] = 1;
                flush_once(&mut st, &mut pool, &mut local, per, 60, 64, &s, i * 100_000);
            }
            local.class_tx
        };
        let tx = run([1, 1, 1, 1], 1);
        let total: u64 = tx.iter().sum();
        // 39,000 flushes × a quarter of a packet.
        assert!(total.abs_diff(9_750) <= 20, "{tx:?}");
        let share3 = tx[3] as f64 / total as f64;
        assert!((share3 - 0.5).abs() < 0.02, "{tx:?}");
        // Weights 3:1 for class 0: it gets three quarters.
        let tx = run([3, 1, 1, 1], 40_001);
        let share0 = tx[0] as f64 / tx.iter().sum::<u64>() as f64;
        assert!((share0 - 0.75).abs() < 0.02, "{tx:?}");
    }

    #[test]
    fn plain_flush_counts_classes() {
        let mut pool = Pool::new(64);
        let mut st = TxStage::new(64);
        let mut local = Local::default();
        let got = flush_once(
            &mut st,
            &mut pool,
            &mut local,
            [8; 4],
            60,
            20,
            &TxSched::default(),
            1,
        );
        assert_eq!(got, [0, 4, 8, 8]);
        assert_eq!(local.class_tx, [0, 4, 8, 8]);
        assert_eq!(local.class_drops, [8, 4, 0, 0]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Whatever the schedule, sizes and room: every staged packet is sent or dropped
        /// exactly once and counted under its class, every buffer returns to the pool,
        /// and a rate limit never sends more than its bucket held.
        #[test]
        fn scheduled_flushes_account_for_every_packet(
            flushes in proptest::collection::vec(
                (proptest::collection::vec((0u8..4, 1usize..1500), 0..64), 0usize..80, 0u64..3_000_000),
                1..20,
            ),
            weights in proptest::option::of(proptest::array::uniform4(1u16..=1000)),
            rate in proptest::option::of(1u64..2_000_000),
        ) {
            let s = TxSched { weights: weights.unwrap_or([0; 4]), rate_bytes: rate.unwrap_or(0) };
            let mut pool = Pool::new(64);
            let mut st = TxStage::new(64);
            let mut local = Local::default();
            let mut staged = [0u64; 4];
            let mut now = 0u64;
            let mut wire_sent = 0u64;
            for (pkts, room, dt) in &flushes {
                now += dt;
                for &(c, len) in pkts.iter().take(64) {
                    let mut b = pool.get().unwrap();
                    b.fill(&vec![c; len]);
                    st.push(c, b, now);
                    staged[c as usize] += 1;
                }
                let before = local.tx_bytes;
                let tx_before = local.tx;
                let mut q = Limited { room: *room, sent: Vec::new() };
                let mut pending = Vec::with_capacity(8);
                flush_port(&mut st, &mut q, &mut pool, &mut local, &mut pending, now, 0, &s);
                proptest::prop_assert!(q.sent.len() <= *room);
                wire_sent += local.tx_bytes - before + (local.tx - tx_before) * WIRE_OVERHEAD;
            }
            for (c, n) in staged.iter().enumerate() {
                proptest::prop_assert_eq!(local.class_tx[c] + local.class_drops[c], *n);
            }
            proptest::prop_assert_eq!(local.class_tx.iter().sum::<u64>(), local.tx);
            proptest::prop_assert_eq!(local.class_drops.iter().sum::<u64>(), local.total_drops());
            proptest::prop_assert_eq!(pool.available(), 64);
            proptest::prop_assert_eq!(st.staged, 0);
            if let Some(r) = rate {
                // With weights, the classes' buckets: the depth and a frame per class at most.
                let depth = crate::safe::tx::max_burst(&s).unwrap();
                proptest::prop_assert!(depth <= (r * 2 / 1000).max(crate::safe::tx::MIN_BUCKET_BYTES) + 4 * (9216 + WIRE_OVERHEAD));
                let earned = (now as u128 * r as u128 / 1_000_000_000) as u64;
                proptest::prop_assert!(wire_sent <= depth + earned, "{} > {} + {}", wire_sent, depth, earned);
            } else {
                proptest::prop_assert_eq!(local.drops[DropReason::TxRate.index()], 0);
            }
        }
    }

    #[test]
    fn flush_sends_high_priority_first_and_drops_low_when_full() {
        let mut pool = Pool::new(64);
        let mut st = TxStage::new(64);
        // 8 packets per class, the first byte says the class.
        for class in 0..N_CLASSES as u8 {
            for _ in 0..8 {
                let mut b = pool.get().unwrap();
                b.fill(&[class; 60]);
                st.push(class, b, 5);
            }
        }
        let mut q = Limited {
            room: 20,
            sent: Vec::new(),
        };
        let mut local = Local::default();
        let mut pending = Vec::with_capacity(8);
        flush_port(
            &mut st,
            &mut q,
            &mut pool,
            &mut local,
            &mut pending,
            10,
            0,
            &TxSched::default(),
        );
        assert_eq!(local.tx, 20);
        assert_eq!(local.drops[DropReason::TxFull.index()], 12);
        assert_eq!(&q.sent[..8], &[3; 8], "class 3 first");
        assert_eq!(&q.sent[8..16], &[2; 8]);
        assert_eq!(&q.sent[16..20], &[1; 4], "class 1 partly; class 0 dropped");
        assert_eq!(pool.available(), 64, "every buffer back in the pool");
        assert_eq!(st.staged, 0);
        assert_eq!(pending, vec![(5, 20)]);
    }

    #[test]
    fn rss_hash_is_stable_per_flow() {
        let mut a = [0u8; 64];
        a[12] = 0x08;
        a[26..34].copy_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        let mut b = a;
        b[40] = 99; // payload differs, same flow
        assert_eq!(rss_hash(&a), rss_hash(&b));
        b[33] = 3;
        assert_ne!(rss_hash(&a), rss_hash(&b));
        assert_eq!(rss_hash(&[1, 2, 3]), 0, "short frames do not panic");
    }
}
