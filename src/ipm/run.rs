//! `steerd mark`: the marker between ports (cold set-up, hot loops).
//!
//! `[mark] threads` marker threads (`mark-0` …, default one), each owning one receive
//! and one transmit queue of every port a pair uses (tap and afpacket ports open one per
//! thread; afpacket spreads flows over them by fanout hash, so a flow stays on one
//! thread; a pcap file has one receive queue, read by `mark-0`), its own buffer pool and
//! its own [`Marker`] (flow table, counters). For each `[mark] pairs` entry a thread
//! receives a burst on the ingress port, marks it (or passes it for `mark = false`
//! pairs), and sends it on the egress port. What the egress port refuses is dropped and
//! counted (`tx_drops`), except on lossless ports (pcap files), which are waited for. No
//! allocation after start: the pools, the burst vectors and the markers' tables are
//! sized at start. The clock is read once per loop. A cold thread exists only with
//! `mark.epoch_from`: it asks the running `steerd run` for its steering epoch over the
//! ctl socket and stores it in an atomic, which every loop reads once. With
//! `mark.follow_steering` it also takes the destinations of steerd's steering table
//! (what its RAM pre-positioned) as the predicted set: a bitmap of atomics behind a
//! sequence counter ([`SteerSet`]), copied into each marker by its loop when the counter
//! moves (no lock, no allocation). Before the loops start, one ask is made
//! synchronously, so the first packets already see steerd's epoch and table.
//!
//! Stops on `--duration`, SIGINT/SIGTERM, or when every ingress queue is exhausted (a
//! replayed capture ended); then each thread flushes what it staged, and the summary
//! adds up the threads' counters.
//!
//! SIGHUP re-reads the file on the calling thread (which only supervises) and applies
//! `[steering] keys` (key rotation), the epoch (unless `epoch_from`) and `[mark]
//! active`; a file that changes anything else is refused as a whole (restart), as
//! `steerd run` does. The update goes to the threads behind a generation counter each
//! loop loads once; only when it moved does a thread take the update's mutex.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{MarkStats, Marker, Unmarked};
use crate::app::{SetupError, gen_config};
use crate::config::{Config, parse_mac};
use crate::port::mem::{MemPortStats, MemRx, MemTx, Templates};
use crate::port::pcap::{Capture, PcapOut, PcapRx};
use crate::port::{
    AnyRx, AnyTx, Buf, Mac, Pool, PortCounters, PutBuf, RxQueue, TxQueue, afpacket, tap,
};

/// How a mark run ends and reports.
#[derive(Clone, Debug, Default)]
pub struct MarkOptions {
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Also write the summary JSON here.
    pub json: Option<PathBuf>,
    /// Marker threads instead of `[mark] threads` (`--threads`).
    pub threads: Option<usize>,
    /// No stats lines while running (`--quiet`); the summary is printed at the end.
    pub quiet: bool,
}

/// What a mark run did.
#[derive(Clone, Debug)]
pub struct MarkSummary {
    /// Wall time of the loop.
    pub elapsed: Duration,
    /// Port names (index = position in `[[ports]]`).
    pub ports: Vec<String>,
    /// Per port: packets received.
    pub port_rx: Vec<u64>,
    /// Per port: packets sent.
    pub port_tx: Vec<u64>,
    /// Per port: packets the port refused and the marker dropped.
    pub port_tx_drops: Vec<u64>,
    /// Pairs (from, to, mark) with the packets each carried.
    pub pairs: Vec<(String, String, bool, u64)>,
    /// Packets passed through `mark = false` pairs.
    pub passed_through: u64,
    /// The marker's counters.
    pub marker: MarkStats,
    /// Flow table capacity.
    pub flow_capacity: usize,
    /// Epoch at the end.
    pub epoch: u32,
    /// Epoch changes taken from `epoch_from`.
    pub epoch_updates: u64,
    /// Predicted-set changes taken from steerd's steering table (`follow_steering`).
    pub steering_updates: u64,
    /// SIGHUP reloads accepted (each thread applies it on its next loop).
    pub reloads: u64,
    /// Per marker thread.
    pub threads: Vec<ThreadCounts>,
    /// DPDK's own port statistics, when the ports are DPDK's.
    pub dpdk: Option<Value>,
}

/// What one marker thread did.
#[derive(Clone, Debug)]
pub struct ThreadCounts {
    /// Packets it received.
    pub rx: u64,
    /// Packets it marked.
    pub marked: u64,
    /// Reloads it applied.
    pub reloads_applied: u64,
}

impl MarkSummary {
    /// Total received.
    pub fn rx(&self) -> u64 {
        self.port_rx.iter().sum()
    }
    /// Total sent.
    pub fn tx(&self) -> u64 {
        self.port_tx.iter().sum()
    }
    /// Total dropped.
    pub fn tx_drops(&self) -> u64 {
        self.port_tx_drops.iter().sum()
    }

    /// The summary as JSON (stable keys).
    pub fn to_json(&self) -> Value {
        let m = &self.marker;
        let unmarked: serde_json::Map<String, Value> = Unmarked::ALL
            .iter()
            .map(|r| (r.as_str().to_string(), json!(m.unmarked(*r))))
            .collect();
        let by_dest: serde_json::Map<String, Value> = m
            .marked_by_dest
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(d, n)| (d.to_string(), json!(n)))
            .collect();
        let secs = self.elapsed.as_secs_f64();
        json!({
            "mode": "mark",
            "elapsed_s": secs,
            "rx_packets": self.rx(),
            "tx_packets": self.tx(),
            "tx_drops": self.tx_drops(),
            "accounted": self.rx() == self.tx() + self.tx_drops(),
            "marked": m.marked,
            "unmarked_total": m.unmarked_total(),
            "unmarked": unmarked,
            "unmarked_not_predicted": m.unmarked(Unmarked::NotPredicted),
            "passed_through": self.passed_through,
            "marked_by_dest": by_dest,
            "flow_table": {
                "capacity": self.flow_capacity,
                "hits": m.flow_hits,
                "misses": m.flow_misses,
                "evictions": m.flow_evictions,
            },
            "epoch": self.epoch,
            "epoch_updates": self.epoch_updates,
            "steering_updates": self.steering_updates,
            "reloads": self.reloads,
            "dpdk": self.dpdk.clone().unwrap_or(Value::Null),
            "threads": self.threads.iter().enumerate().map(|(k, t)| json!({
                "thread": k,
                "rx_packets": t.rx,
                "marked": t.marked,
                "reloads_applied": t.reloads_applied,
            })).collect::<Vec<_>>(),
            "ports": self.ports.iter().enumerate().map(|(i, n)| json!({
                "name": n,
                "rx_packets": self.port_rx[i],
                "tx_packets": self.port_tx[i],
                "tx_drops": self.port_tx_drops[i],
            })).collect::<Vec<_>>(),
            "pairs": self.pairs.iter().map(|(f, t, mk, n)| json!({
                "from": f, "to": t, "mark": mk, "packets": n,
            })).collect::<Vec<_>>(),
            "rx_pps": if secs > 0.0 { self.rx() as f64 / secs } else { 0.0 },
        })
    }
}

struct Opened {
    /// Receive queues (one per thread, or fewer: a pcap file has one).
    rx: Vec<AnyRx>,
    /// Transmit queues (one per thread, or fewer).
    tx: Vec<AnyTx>,
    pcap_out: Option<PcapOut>,
    _counters: Option<Arc<PortCounters>>,
    _mem: Option<Arc<MemPortStats>>,
}

/// Opens port `i` of `cfg` with `n` queues (one per marker thread) where the backend
/// has them.
fn open_port(cfg: &Config, i: usize, n: usize) -> Result<Opened, SetupError> {
    let p = &cfg.ports[i];
    let port_err = |e: String| SetupError::Port(e);
    let idx = i as u16;
    let mut o = Opened {
        rx: Vec::new(),
        tx: Vec::new(),
        pcap_out: None,
        _counters: None,
        _mem: None,
    };
    match p.backend.as_str() {
        "mem" => {
            if let Some(gc) = gen_config(cfg, i)? {
                let tpl = Arc::new(
                    Templates::build(&gc).map_err(|e| port_err(format!("port {}: {e}", p.name)))?,
                );
                o.rx = (0..n)
                    .map(|k| AnyRx::Mem(MemRx::new(idx, tpl.clone(), &gc, k, n)))
                    .collect();
            }
            let st = Arc::new(MemPortStats::default());
            o.tx = (0..n).map(|_| AnyTx::Mem(MemTx::new(st.clone()))).collect();
            o._mem = Some(st);
        }
        "pcap" => {
            if let Some(f) = &p.rx_file {
                let cap = Arc::new(
                    Capture::load(&p.name, &cfg.resolve(f)).map_err(|e| port_err(e.to_string()))?,
                );
                o.rx = vec![AnyRx::Pcap(PcapRx::new(idx, cap, p.repeat))];
            }
            if let Some(f) = &p.tx_file {
                let (out, qs) = PcapOut::open(&p.name, &cfg.resolve(f), n)
                    .map_err(|e| port_err(e.to_string()))?;
                o.tx = qs.into_iter().map(AnyTx::Pcap).collect();
                o.pcap_out = Some(out);
            }
        }
        "tap" => {
            let mut tc = tap::TapConfig::new(p.ifname.as_deref().unwrap_or_default());
            tc.queues = n;
            tc.mtu = (p.mtu != 0 && p.mtu != 1500).then_some(p.mtu as u32);
            tc.mac = match &p.mac {
                Some(m) => Some(Mac(
                    parse_mac(m).map_err(|e| cfg.error(&format!("ports[{i}].mac"), e))?
                )),
                None => None,
            };
            let port = tap::open(&p.name, &tc, idx).map_err(|e| port_err(e.to_string()))?;
            o.rx = port.rx.into_iter().map(AnyRx::Tap).collect();
            o.tx = port.tx.into_iter().map(AnyTx::Tap).collect();
            o._counters = Some(port.counters);
        }
        "afpacket" => {
            let mut ac = afpacket::AfPacketConfig::new(p.ifname.as_deref().unwrap_or_default());
            ac.queues = n;
            ac.promisc = p.promisc;
            let port = afpacket::open(&p.name, &ac, idx).map_err(|e| port_err(e.to_string()))?;
            o.rx = port.rx.into_iter().map(AnyRx::AfPacket).collect();
            o.tx = port.tx.into_iter().map(AnyTx::AfPacket).collect();
            o._counters = Some(port.counters);
        }
        #[cfg(feature = "afxdp")]
        "afxdp" => {
            use crate::port::afxdp;
            let mut xc = afxdp::AfXdpConfig::new(p.ifname.as_deref().unwrap_or_default());
            // One socket per device queue: as many as `queues` says (the device must have
            // them), not one per thread.
            xc.queues = p.queues.unwrap_or(1);
            xc.xdp_mode = match p.xdp_mode.as_deref() {
                Some("native") => afxdp::XdpMode::Native,
                Some("generic") => afxdp::XdpMode::Generic,
                _ => afxdp::XdpMode::Auto,
            };
            xc.bind = match p.xdp_bind.as_deref() {
                Some("copy") => afxdp::XdpBind::Copy,
                Some("zerocopy") => afxdp::XdpBind::ZeroCopy,
                _ => afxdp::XdpBind::Auto,
            };
            let port = afxdp::open(&p.name, &xc, idx).map_err(|e| port_err(e.to_string()))?;
            o.rx = port.rx.into_iter().map(AnyRx::AfXdp).collect();
            o.tx = port.tx.into_iter().map(AnyTx::AfXdp).collect();
            o._counters = Some(port.counters);
        }
        other => {
            return Err(port_err(format!(
                "port {}: backend {other} is not available to `steerd mark` in this build",
                p.name
            )));
        }
    }
    Ok(o)
}

/// What one marker thread owns: a receive queue (or none) and a transmit queue (or none)
/// of every port, by port index. `R`/`T` are steerd's queues ([`AnyRx`]/[`AnyTx`]) or, on
/// DPDK ports, DPDK's (the buffers are mbufs).
struct Lane<R, T> {
    rx: Vec<Option<R>>,
    tx: Vec<Option<T>>,
}

impl<R, T> Lane<R, T> {
    /// No queues yet, room for `ports`.
    fn empty(ports: usize) -> Self {
        Lane {
            rx: (0..ports).map(|_| None).collect(),
            tx: (0..ports).map(|_| None).collect(),
        }
    }
}

/// One marker thread's queues: steerd's, or (all ports on DPDK) DPDK's, with the handle
/// that registers the thread with the EAL.
enum AnyLane {
    Std(Lane<AnyRx, AnyTx>),
    #[cfg(feature = "dpdk")]
    Dpdk(DpdkLane, crate::port::dpdk::DpdkQueues),
}

#[cfg(feature = "dpdk")]
type DpdkLane = Lane<crate::port::dpdk::DpdkRx, crate::port::dpdk::DpdkTx>;

/// Opens the config's DPDK ports (the EAL, pools, one queue per thread where the device
/// has them) and hands each thread its lane.
#[cfg(feature = "dpdk")]
#[allow(clippy::type_complexity)]
fn open_dpdk_lanes(
    cfg: &Config,
    n: usize,
    pairs: &[(usize, usize, bool)],
    names: &[String],
) -> Result<
    (
        Option<crate::port::dpdk::DpdkPorts>,
        Vec<(DpdkLane, crate::port::dpdk::DpdkQueues)>,
    ),
    SetupError,
> {
    let mut macs = vec![[0u8; 6]; cfg.ports.len()];
    let mut counters = Vec::new();
    let (ports, queues) = crate::app::open_dpdk(cfg, n, &mut macs, &mut counters)?;
    let mut out = Vec::with_capacity(n);
    for (k, q) in queues.into_iter().enumerate() {
        let mut q = q.expect("a queue set per thread");
        let mut lane = Lane::empty(names.len());
        for r in q.rx.drain(..) {
            let i = usize::from(r.index());
            lane.rx[i] = Some(r);
        }
        for (i, t) in q.tx.drain(..).enumerate() {
            if t.enabled() {
                lane.tx[i] = Some(t);
            } else if pairs.iter().any(|p| p.1 == i) {
                return Err(SetupError::Port(format!(
                    "port {}: no transmit queue for marker thread {k}: the device has fewer \
                     transmit queues than mark.threads = {n}",
                    names[i]
                )));
            }
        }
        for &(i, _, _) in pairs.iter().filter(|p| lane.rx[p.0].is_none()) {
            tracing::info!(
                "mark: port {}: no receive queue for thread {k} (the device has fewer than {n})",
                names[i]
            );
        }
        out.push((lane, q));
    }
    Ok((ports, out))
}

/// What one marker thread counted.
struct LaneResult {
    port_rx: Vec<u64>,
    port_tx: Vec<u64>,
    port_drops: Vec<u64>,
    pair_n: Vec<u64>,
    passed: u64,
    epoch: u32,
    epoch_updates: u64,
    steering_updates: u64,
    reloads_applied: u64,
    flow_capacity: usize,
    stats: MarkStats,
}

/// What a SIGHUP changes, prepared by the supervising thread and taken by every marker
/// thread on its next loop.
struct ReloadUpdate {
    keys: crate::steering::SteeringKeys,
    /// None: the epoch is followed from steerd (`epoch_from`).
    epoch: Option<u32>,
    /// None: the set is followed from steerd's table (`follow_steering`).
    active: Option<Vec<u32>>,
}

/// The hand-off of reloads: a generation the threads poll once per loop (one relaxed
/// load) and, only when it moved, the update behind a mutex (an operator's SIGHUP, not a
/// packet, takes that lock).
#[derive(Default)]
struct ReloadCell {
    generation: AtomicU64,
    update: Mutex<Option<Arc<ReloadUpdate>>>,
}

/// One marker thread's running totals, stored (relaxed, by that thread only) every
/// [`LIVE_EVERY`] for the supervisor's stats lines.
#[derive(Default)]
struct LaneLive {
    rx: AtomicU64,
    tx: AtomicU64,
    tx_drops: AtomicU64,
    marked: AtomicU64,
    unmarked: [AtomicU64; Unmarked::COUNT],
}

/// How often a marker thread publishes its totals.
const LIVE_EVERY: Duration = Duration::from_millis(50);

/// Totals of every thread, read from their [`LaneLive`]s.
#[derive(Clone, Copy, Default)]
struct LiveTotals {
    rx: u64,
    tx: u64,
    tx_drops: u64,
    marked: u64,
    unmarked: [u64; Unmarked::COUNT],
}

impl LiveTotals {
    fn read(lives: &[LaneLive]) -> LiveTotals {
        let mut t = LiveTotals::default();
        for l in lives {
            t.rx += l.rx.load(Ordering::Relaxed);
            t.tx += l.tx.load(Ordering::Relaxed);
            t.tx_drops += l.tx_drops.load(Ordering::Relaxed);
            t.marked += l.marked.load(Ordering::Relaxed);
            for (a, b) in t.unmarked.iter_mut().zip(&l.unmarked) {
                *a += b.load(Ordering::Relaxed);
            }
        }
        t
    }

    /// One stats line for the interval since `prev`, `secs` long.
    fn line(&self, prev: &LiveTotals, secs: f64) -> String {
        let rate = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / secs.max(1e-9);
        let mut reasons: Vec<(u64, &str)> = Unmarked::ALL
            .iter()
            .map(|r| {
                let i = *r as usize;
                (
                    self.unmarked[i].saturating_sub(prev.unmarked[i]),
                    r.as_str(),
                )
            })
            .filter(|x| x.0 > 0)
            .collect();
        reasons.sort_unstable_by_key(|b| std::cmp::Reverse(b.0));
        let why = reasons
            .iter()
            .take(3)
            .map(|(n, r)| format!("{r} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "mark: rx {:.0} pps, tx {:.0} pps, marked {:.0} pps, unmarked {:.0} pps{}, tx drops {}",
            rate(self.rx, prev.rx),
            rate(self.tx, prev.tx),
            rate(self.marked, prev.marked),
            rate(
                self.unmarked.iter().sum(),
                prev.unmarked.iter().sum::<u64>()
            ),
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({why})")
            },
            self.tx_drops.saturating_sub(prev.tx_drops)
        )
    }
}

/// Everything the marker threads share (read-only, or atomics).
struct Shared<'a> {
    pairs: &'a [(usize, usize, bool)],
    burst: usize,
    pool_buffers: usize,
    idle: Duration,
    deadline: Option<Instant>,
    epoch_cell: &'a AtomicU64,
    steer_set: Option<&'a SteerSet>,
    reload: &'a ReloadCell,
}

/// The steering destinations of a running steerd, handed from the follower thread to
/// the marker's loop: a bitmap of `MAX_DEST_ID + 1` bits behind a sequence counter (odd
/// while the follower writes).
pub struct SteerSet {
    seq: AtomicU64,
    words: Box<[AtomicU64]>,
}

impl SteerSet {
    fn new() -> Self {
        SteerSet {
            seq: AtomicU64::new(0),
            words: (0..=crate::steering::MAX_DEST_ID as usize / 64)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    /// Follower: publishes `ids` if they differ from what is published.
    fn publish(&self, ids: &[u32]) {
        let mut w = vec![0u64; self.words.len()];
        for &d in ids {
            if let Some(x) = w.get_mut(d as usize / 64) {
                *x |= 1 << (d % 64);
            }
        }
        let seq = self.seq.load(Ordering::Relaxed);
        if seq != 0
            && self
                .words
                .iter()
                .zip(&w)
                .all(|(a, b)| a.load(Ordering::Relaxed) == *b)
        {
            return;
        }
        self.seq.store(seq + 1, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        for (a, b) in self.words.iter().zip(&w) {
            a.store(*b, Ordering::Relaxed);
        }
        self.seq.store(seq + 2, Ordering::Release);
    }

    /// Loop: when the set changed since `seen`, copies it into `out` and returns the new
    /// sequence (None: unchanged, or being written: try on the next loop).
    fn read(&self, seen: u64, out: &mut [u64]) -> Option<u64> {
        let s1 = self.seq.load(Ordering::Acquire);
        if s1 == seen || s1 & 1 == 1 {
            return None;
        }
        for (o, a) in out.iter_mut().zip(self.words.iter()) {
            *o = a.load(Ordering::Relaxed);
        }
        std::sync::atomic::fence(Ordering::Acquire);
        (self.seq.load(Ordering::Relaxed) == s1).then_some(s1)
    }
}

/// Asks a running steerd once for its epoch (and, with `set`, its steering
/// destinations) and stores them.
fn ask_steerd(socket: &Path, epoch: &AtomicU64, set: Option<&SteerSet>) -> Result<(), String> {
    use crate::ctl::{client, proto::Request};
    let v = client::call(socket, &Request::Status, Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    let e = v
        .pointer("/result/tables/steering_epoch")
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            format!(
                "{} answered without tables.steering_epoch",
                socket.display()
            )
        })?;
    if let Some(set) = set {
        let ids: Vec<u32> = v
            .pointer("/result/tables/steering_ids")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{} answered without tables.steering_ids", socket.display()))?
            .iter()
            .filter_map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()))
            .collect();
        set.publish(&ids);
    }
    // High bit: "an answer arrived"; low 32 bits: the epoch.
    epoch.store((1 << 32) | (e & 0xffff_ffff), Ordering::Relaxed);
    Ok(())
}

/// Follows a running steerd's steering epoch and table (cold thread).
fn follow_steerd(
    socket: PathBuf,
    every: Duration,
    epoch: Arc<AtomicU64>,
    set: Option<Arc<SteerSet>>,
    stop: Arc<AtomicBool>,
) {
    let mut warned = false;
    while !stop.load(Ordering::Relaxed) {
        match ask_steerd(&socket, &epoch, set.as_deref()) {
            Ok(()) => warned = false,
            Err(e) if !warned => {
                tracing::warn!("mark: epoch_from: {e}; keeping epoch and predicted set");
                warned = true;
            }
            Err(_) => {}
        }
        let t0 = Instant::now();
        while t0.elapsed() < every && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20).min(every));
        }
    }
}

/// Runs the marker of `cfg`'s `[mark]` section until stopped; returns the summary.
pub fn run(cfg: &Config, opts: &MarkOptions) -> Result<MarkSummary, SetupError> {
    let out = opts
        .json
        .as_deref()
        .map(|p| crate::app::OutFile::create("--json", p))
        .transpose()?;
    let mc = super::config::marker_config(cfg)?.ok_or_else(|| {
        SetupError::Config(cfg.error("mark", "`steerd mark` needs a [mark] section"))
    })?;
    let section = cfg.mark.clone().expect("marker_config found [mark]");
    let n = opts.threads.unwrap_or(section.threads);
    if opts.threads.is_some() {
        // The file's threads and cores were checked with the file; check the override.
        super::config::check_threads(n, section.cores.as_deref(), &format!("--threads {n}"))
            .map_err(|(f, msg)| match f {
                "mark.threads" => SetupError::Other(format!("--threads: {msg}")),
                f => SetupError::Config(cfg.error(f, msg)),
            })?;
    }
    // Each thread's marker, built (and so checked) before any port opens.
    let mut markers = (0..n)
        .map(|_| Marker::new(mc.clone()).map_err(|e| SetupError::Config(cfg.error("mark", e))))
        .collect::<Result<Vec<_>, _>>()?;
    let names = cfg.port_names();
    let idx = |n: &str| {
        names
            .iter()
            .position(|x| x == n)
            .expect("validated port name")
    };
    // Only ports a pair uses are opened (on DPDK, the EAL probes every configured device).
    let mut used: Vec<usize> = section
        .pairs
        .iter()
        .flat_map(|p| [idx(&p.from), idx(&p.to)])
        .collect();
    used.sort_unstable();
    for &i in &used {
        let p = &cfg.ports[i];
        if p.tx_rate_mbps.is_some() || p.tx_weights.is_some() {
            tracing::warn!(
                "ports[{i}] ({}): tx_rate_mbps and tx_weights apply in `steerd run`; `steerd mark` sends without them",
                p.name
            );
        }
    }
    used.dedup();
    let pairs: Vec<(usize, usize, bool)> = section
        .pairs
        .iter()
        .map(|p| (idx(&p.from), idx(&p.to), p.mark))
        .collect();
    let mut lanes: Vec<Lane<AnyRx, AnyTx>> = (0..n).map(|_| Lane::empty(names.len())).collect();
    let mut pcap_outs = Vec::new();
    let mut keep = Vec::new();
    // The config refuses DPDK ports beside other backends (mbufs stay on DPDK).
    let on_dpdk = used.iter().any(|&i| cfg.ports[i].backend == "dpdk");
    #[cfg(feature = "dpdk")]
    let mut dpdk = None;
    #[cfg(feature = "dpdk")]
    let mut dpdk_lanes: Vec<(DpdkLane, crate::port::dpdk::DpdkQueues)> = Vec::new();
    #[cfg(feature = "dpdk")]
    if on_dpdk {
        let (ports, lanes) = open_dpdk_lanes(cfg, n, &pairs, &names)?;
        dpdk = ports;
        dpdk_lanes = lanes;
    }
    for &i in used.iter().filter(|_| !on_dpdk) {
        let o = open_port(cfg, i, n)?;
        let egress = pairs.iter().any(|p| p.1 == i);
        if egress && o.tx.len() < n {
            return Err(SetupError::Port(format!(
                "port {}: {} transmit queue(s) for mark.threads = {n}: every thread sends on \
                 its own queue (an afxdp port needs ports.queues = {n} and a device with \
                 that many queues)",
                names[i],
                o.tx.len()
            )));
        }
        if o.rx.len() < n && pairs.iter().any(|p| p.0 == i) {
            tracing::info!(
                "mark: port {} has {} receive queue(s): threads {}..{n} do not receive from it",
                names[i],
                o.rx.len(),
                o.rx.len()
            );
        }
        for (k, q) in o.rx.into_iter().enumerate().take(n) {
            lanes[k].rx[i] = Some(q);
        }
        for (k, q) in o.tx.into_iter().enumerate().take(n) {
            lanes[k].tx[i] = (!matches!(q, AnyTx::None)).then_some(q);
        }
        if let Some(p) = o.pcap_out {
            pcap_outs.push(p);
        }
        keep.push((o._counters, o._mem));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let epoch_cell = Arc::new(AtomicU64::new(0));
    let steer_set = section.follow_steering.then(|| Arc::new(SteerSet::new()));
    if let Some(s) = &section.epoch_from {
        // The first ask before any packet: the marker starts with steerd's epoch and set.
        if let Err(e) = ask_steerd(s, &epoch_cell, steer_set.as_deref()) {
            tracing::warn!("mark: epoch_from: {e}; starting with the configured epoch");
        }
    }
    let follower = section.epoch_from.as_ref().map(|s| {
        let (s, e, set, st) = (
            s.clone(),
            epoch_cell.clone(),
            steer_set.clone(),
            stop.clone(),
        );
        let every = Duration::from_millis(section.epoch_poll_ms);
        std::thread::Builder::new()
            .name("mark-epoch".into())
            .spawn(move || follow_steerd(s, every, e, set, st))
            .expect("spawn the epoch follower")
    });
    if steer_set.is_some() {
        // Nothing is predicted until steerd's table says so.
        for m in markers.iter_mut() {
            m.set_active(&[]);
        }
    }
    crate::ctl::signals::install_signal_handlers();
    let reload_cell = ReloadCell::default();
    let mut reloads = 0u64;
    let t0 = Instant::now();
    let shared = Shared {
        pairs: &pairs,
        burst: cfg.general.burst.clamp(1, crate::safe::pipeline::BURST),
        pool_buffers: cfg.general.pool_buffers,
        idle: Duration::from_micros(section.idle_us),
        deadline: opts.duration.map(|d| t0 + d),
        epoch_cell: &epoch_cell,
        steer_set: steer_set.as_deref(),
        reload: &reload_cell,
    };
    tracing::info!(
        "mark: {} pair(s), {n} thread(s), epoch {}, flow table {} entries per thread",
        pairs.len(),
        markers[0].epoch(),
        markers[0].flow_capacity()
    );
    let mut all: Vec<AnyLane> = Vec::with_capacity(n);
    #[cfg(feature = "dpdk")]
    all.extend(dpdk_lanes.into_iter().map(|(l, q)| AnyLane::Dpdk(l, q)));
    if !on_dpdk {
        all.extend(lanes.into_iter().map(AnyLane::Std));
    }
    let lives: Vec<LaneLive> = (0..n).map(|_| LaneLive::default()).collect();
    let stats_every = Duration::from_millis(cfg.general.stats_interval_ms.max(100));
    let results: Vec<LaneResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = all
            .into_iter()
            .zip(markers)
            .enumerate()
            .map(|(k, (lane, marker))| {
                let core = section.cores.as_ref().map(|c| c[k]);
                let shared = &shared;
                let live = &lives[k];
                std::thread::Builder::new()
                    .name(format!("mark-{k}"))
                    .spawn_scoped(scope, move || {
                        if let Some(c) = core
                            && !core_affinity::set_for_current(core_affinity::CoreId { id: c })
                        {
                            tracing::warn!("mark-{k}: could not pin to core {c}; running unpinned");
                        }
                        match lane {
                            AnyLane::Std(l) => {
                                mark_lane(shared, l, marker, Pool::new(shared.pool_buffers), live)
                            }
                            #[cfg(feature = "dpdk")]
                            AnyLane::Dpdk(l, q) => {
                                // An EAL thread: the mempools' per-lcore caches.
                                let registered = q.register_thread();
                                let r =
                                    mark_lane(shared, l, marker, crate::port::dpdk::MbufSink, live);
                                if registered {
                                    q.unregister_thread();
                                }
                                r
                            }
                        }
                    })
                    .expect("spawn a marker thread")
            })
            .collect();
        // Supervise: SIGHUP reloads are parsed here (cold) and handed to the threads; a
        // stats line every stats interval (`general.stats_interval_ms`) unless quiet.
        let mut last = (Instant::now(), LiveTotals::default());
        while !handles.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
            if !opts.quiet && last.0.elapsed() >= stats_every {
                let now = (Instant::now(), LiveTotals::read(&lives));
                tracing::info!("{}", now.1.line(&last.1, (now.0 - last.0).as_secs_f64()));
                last = now;
            }
            if crate::ctl::signals::take_reload() {
                match prepare_reload(cfg, section.epoch_from.is_none(), !section.follow_steering) {
                    Ok(u) => {
                        *reload_cell.update.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(Arc::new(u));
                        reload_cell.generation.fetch_add(1, Ordering::Release);
                        reloads += 1;
                        tracing::info!("mark: reloaded keys, epoch, predicted set");
                    }
                    Err(e) => tracing::warn!("mark: reload refused, nothing changed: {e}"),
                }
            }
        }
        handles
            .into_iter()
            .map(|h| h.join().expect("a marker thread panicked"))
            .collect()
    });
    let elapsed = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    if let Some(h) = follower {
        let _ = h.join();
    }
    for o in pcap_outs.iter_mut() {
        o.finish()
            .map_err(|e| SetupError::Port(format!("pcap output: {e}")))?;
    }
    drop(keep);
    #[cfg(feature = "dpdk")]
    let dpdk_json = dpdk.as_mut().map(|p| p.finish());
    #[cfg(not(feature = "dpdk"))]
    let dpdk_json: Option<Value> = None;
    // Every thread's vectors have the same lengths (ports, pairs): add them up.
    let sum = |f: fn(&LaneResult) -> &Vec<u64>| -> Vec<u64> {
        let mut v = vec![0u64; f(&results[0]).len()];
        for r in &results {
            for (a, b) in v.iter_mut().zip(f(r)) {
                *a += b;
            }
        }
        v
    };
    let port_rx = sum(|r| &r.port_rx);
    let port_tx = sum(|r| &r.port_tx);
    let port_drops = sum(|r| &r.port_drops);
    let pair_n = sum(|r| &r.pair_n);
    let mut marker = results[0].stats.clone();
    for r in &results[1..] {
        marker.add(&r.stats);
    }
    let summary = MarkSummary {
        elapsed,
        pairs: section
            .pairs
            .iter()
            .zip(&pair_n)
            .map(|(p, n)| (p.from.clone(), p.to.clone(), p.mark, *n))
            .collect(),
        ports: names,
        port_rx,
        port_tx,
        port_tx_drops: port_drops,
        passed_through: results.iter().map(|r| r.passed).sum(),
        flow_capacity: results[0].flow_capacity,
        epoch: results[0].epoch,
        epoch_updates: results.iter().map(|r| r.epoch_updates).max().unwrap_or(0),
        steering_updates: results
            .iter()
            .map(|r| r.steering_updates)
            .max()
            .unwrap_or(0),
        reloads,
        threads: results
            .iter()
            .map(|r| ThreadCounts {
                rx: r.port_rx.iter().sum(),
                marked: r.stats.marked,
                reloads_applied: r.reloads_applied,
            })
            .collect(),
        marker,
        dpdk: dpdk_json,
    };
    if let Some(out) = out {
        out.write(&serde_json::to_string_pretty(&summary.to_json()).unwrap_or_default())?;
    }
    Ok(summary)
}

/// One marker thread's loop (hot): receive a burst per pair, mark it, send it; until
/// stopped, the deadline, or every receive queue it owns is exhausted. Then sends what is
/// staged and reports.
fn mark_lane<B, P, R, T>(
    sh: &Shared<'_>,
    lane: Lane<R, T>,
    mut marker: Marker,
    mut pool: P,
    live: &LaneLive,
) -> LaneResult
where
    B: Buf,
    P: PutBuf<B>,
    R: RxQueue<Buf = B, Pool = P>,
    T: TxQueue<Buf = B, Pool = P>,
{
    let Lane { mut rx, mut tx } = lane;
    let np = tx.len();
    let burst = sh.burst;
    let mut inb: Vec<B> = Vec::with_capacity(burst);
    let mut stage: Vec<Vec<B>> = (0..np).map(|_| Vec::with_capacity(2 * burst)).collect();
    let mut port_rx = vec![0u64; np];
    let mut port_tx = vec![0u64; np];
    let mut port_drops = vec![0u64; np];
    let mut pair_n = vec![0u64; sh.pairs.len()];
    let mut passed = 0u64;
    let lossless: Vec<bool> = tx
        .iter()
        .map(|q| q.as_ref().is_some_and(|q| q.lossless()))
        .collect();
    let mut steer_words = vec![0u64; sh.steer_set.map_or(0, |s| s.words.len())];
    let mut steer_seen = 0u64;
    let mut reload_seen = 0u64;
    let (mut epoch_updates, mut steering_updates, mut reloads_applied) = (0u64, 0u64, 0u64);
    let publish = |port_rx: &[u64], port_tx: &[u64], drops: &[u64], st: &MarkStats| {
        live.rx.store(port_rx.iter().sum(), Ordering::Relaxed);
        live.tx.store(port_tx.iter().sum(), Ordering::Relaxed);
        live.tx_drops.store(drops.iter().sum(), Ordering::Relaxed);
        live.marked.store(st.marked, Ordering::Relaxed);
        for (a, b) in live.unmarked.iter().zip(st.unmarked) {
            a.store(b, Ordering::Relaxed);
        }
    };
    let mut next_live = Instant::now() + LIVE_EVERY;
    loop {
        let now = Instant::now();
        if crate::ctl::signals::stop_requested() || sh.deadline.is_some_and(|d| now >= d) {
            break;
        }
        if now >= next_live {
            publish(&port_rx, &port_tx, &port_drops, marker.stats());
            next_live = now + LIVE_EVERY;
        }
        let e = sh.epoch_cell.load(Ordering::Relaxed);
        if e >> 32 != 0 && (e as u32) != marker.epoch() {
            marker.set_epoch(e as u32);
            epoch_updates += 1;
        }
        if let Some(set) = sh.steer_set
            && let Some(seq) = set.read(steer_seen, &mut steer_words)
        {
            marker.set_active_words(&steer_words);
            steer_seen = seq;
            steering_updates += 1;
        }
        let g = sh.reload.generation.load(Ordering::Acquire);
        if g != reload_seen {
            // Cold, operator-initiated: the supervisor parsed the file; apply it.
            let u = sh
                .reload
                .update
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(u) = u {
                marker.set_keys(u.keys);
                if let Some(e) = u.epoch {
                    marker.set_epoch(e);
                }
                if let Some(ids) = &u.active {
                    marker.set_active(ids);
                }
                reloads_applied += 1;
            }
            reload_seen = g;
        }
        let mut got = 0usize;
        let mut live = false;
        for (pi, &(from, to, mark)) in sh.pairs.iter().enumerate() {
            let Some(q) = rx[from].as_mut() else {
                continue;
            };
            if !q.exhausted() {
                live = true;
            }
            let n = q.rx_burst(&mut pool, &mut inb, burst);
            if n == 0 {
                continue;
            }
            got += n;
            port_rx[from] += n as u64;
            pair_n[pi] += n as u64;
            if mark {
                for b in inb.iter_mut() {
                    marker.mark(b);
                }
            } else {
                passed += n as u64;
            }
            stage[to].append(&mut inb);
            send(
                tx[to].as_mut(),
                &mut pool,
                &mut stage[to],
                lossless[to],
                &mut port_tx[to],
                &mut port_drops[to],
            );
        }
        if got == 0 {
            if !live {
                break;
            }
            if sh.idle.is_zero() {
                std::hint::spin_loop();
            } else {
                std::thread::sleep(sh.idle);
            }
        }
    }
    // Drain: everything staged is sent (or, on a lossy port that refuses it, dropped).
    for (i, q) in tx.iter_mut().enumerate() {
        send(
            q.as_mut(),
            &mut pool,
            &mut stage[i],
            lossless[i],
            &mut port_tx[i],
            &mut port_drops[i],
        );
        if let Some(q) = q {
            q.flush();
        }
    }
    drop(tx);
    drop(rx);
    LaneResult {
        port_rx,
        port_tx,
        port_drops,
        pair_n,
        passed,
        epoch: marker.epoch(),
        epoch_updates,
        steering_updates,
        reloads_applied,
        flow_capacity: marker.flow_capacity(),
        stats: marker.stats().clone(),
    }
}

/// SIGHUP: reads the config file again and prepares its keys, epoch (unless followed
/// from steerd) and predicted set (unless followed from steerd's table). Anything else
/// in `[mark]` or the ports needs a restart: a reload that changes it is refused as a
/// whole.
fn prepare_reload(cfg: &Config, epoch: bool, active: bool) -> Result<ReloadUpdate, String> {
    let path = cfg
        .source
        .path
        .as_ref()
        .ok_or("the configuration was not read from a file")?;
    let new = Config::load(path).map_err(|e| e.to_string())?;
    let mc = super::config::marker_config(&new)
        .map_err(|e| e.to_string())?
        .ok_or("the new file has no [mark] section")?;
    let (mut a, mut b) = (cfg.mark.clone(), new.mark.clone());
    for m in [a.as_mut(), b.as_mut()].into_iter().flatten() {
        m.epoch = None;
        m.active = None;
    }
    if a != b || cfg.ports != new.ports {
        return Err("only [steering] keys/epoch and [mark] epoch/active apply on reload; restart for the rest".into());
    }
    let active = active.then(|| match &mc.active {
        Some(ids) => ids.clone(),
        None => mc
            .destinations
            .iter()
            .map(|d| d.1)
            .chain(mc.rules.iter().filter_map(|r| r.dest))
            .collect(),
    });
    Ok(ReloadUpdate {
        keys: mc.keys,
        epoch: epoch.then_some(mc.epoch),
        active,
    })
}

/// Sends what is staged for a port; a lossy port's refusals are dropped and counted, a
/// lossless port (a pcap file) is waited for.
#[inline]
fn send<B: Buf, P: PutBuf<B>, T: TxQueue<Buf = B, Pool = P>>(
    q: Option<&mut T>,
    pool: &mut P,
    v: &mut Vec<B>,
    lossless: bool,
    sent: &mut u64,
    drops: &mut u64,
) {
    if v.is_empty() {
        return;
    }
    let Some(q) = q else {
        *drops += v.len() as u64;
        for b in v.drain(..) {
            pool.put(b);
        }
        return;
    };
    let mut tries = 0u32;
    loop {
        *sent += q.tx_burst(pool, v) as u64;
        if v.is_empty() {
            // One kick per burst for backends that batch (AF_PACKET's tx ring).
            q.flush();
            return;
        }
        q.flush();
        tries += 1;
        if !lossless && tries >= 4 {
            break;
        }
        std::hint::spin_loop();
    }
    *drops += v.len() as u64;
    for b in v.drain(..) {
        pool.put(b);
    }
}

#[cfg(test)]
mod steer_set_tests {
    use super::*;

    #[test]
    fn steer_set_hands_over_each_change_once() {
        let s = SteerSet::new();
        let mut out = vec![0u64; s.words.len()];
        assert_eq!(s.read(0, &mut out), None, "nothing published yet");
        s.publish(&[1, 64, 65_535, 70_000]);
        let seq = s.read(0, &mut out).expect("a change");
        assert_eq!(out[0], 1 << 1);
        assert_eq!(out[1], 1);
        assert_eq!(out[1023], 1 << 63);
        assert_eq!(s.read(seq, &mut out), None, "seen already");
        s.publish(&[64, 1, 65_535]);
        assert_eq!(
            s.read(seq, &mut out),
            None,
            "the same set is not republished"
        );
        s.publish(&[]);
        let seq2 = s.read(seq, &mut out).expect("emptied");
        assert!(seq2 > seq && out.iter().all(|&w| w == 0));
        // The marker takes the bitmap as its predicted set.
        let mut m = Marker::new(crate::ipm::MarkerConfig::new(
            Vec::new(),
            crate::steering::Key::from_bytes([7; 16]),
        ))
        .unwrap();
        s.publish(&[3]);
        s.read(seq2, &mut out).unwrap();
        m.set_active_words(&out);
        assert!(m.is_active(3) && !m.is_active(1) && !m.is_active(64));
    }
}
