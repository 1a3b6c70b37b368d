//! `steerd mark`: the marker between ports (cold set-up, hot loop).
//!
//! One thread, the caller's (`mark-0`), owns every port queue, the buffer pool and the
//! [`Marker`]: for each `[mark] pairs` entry it receives a burst on the ingress port,
//! marks it (or passes it for `mark = false` pairs), and sends it on the egress port.
//! What the egress port refuses is dropped and counted (`tx_drops`), except on lossless
//! ports (pcap files), which are waited for. No allocation after start: the pool, the
//! burst vectors and the marker's tables are sized at start. The clock is read once per
//! loop. A second, cold thread exists only with `mark.epoch_from`: it asks the running
//! `steerd run` for its steering epoch over the ctl socket and stores it in an atomic,
//! which the loop reads once per loop. With `mark.follow_steering` it also takes the
//! destinations of steerd's steering table (what its RAM pre-positioned) as the
//! predicted set: a bitmap of atomics behind a sequence counter ([`SteerSet`]), copied
//! into the marker by the loop when the counter moves (no lock, no allocation). Before
//! the loop starts, one ask is made synchronously, so the first packets already see
//! steerd's epoch and table.
//!
//! Stops on `--duration`, SIGINT/SIGTERM, or when every ingress port is exhausted (a
//! replayed capture ended); then flushes what is staged and reports.
//!
//! SIGHUP (checked every 1024 loops) re-reads the file and applies `[steering] keys`
//! (key rotation), the epoch (unless `epoch_from`) and `[mark] active`; a file that
//! changes anything else is refused as a whole (restart), as `steerd run` does. The
//! reload runs on the marker's thread (it parses and allocates): the packets of that
//! one loop wait for it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{MarkStats, Marker, Unmarked};
use crate::app::{SetupError, gen_config};
use crate::config::{Config, parse_mac};
use crate::port::mem::{MemPortStats, MemRx, MemTx, Templates};
use crate::port::pcap::{Capture, PcapOut, PcapRx};
use crate::port::{AnyRx, AnyTx, Mac, PktBuf, Pool, PortCounters, RxQueue, TxQueue, afpacket, tap};

/// How a mark run ends and reports.
#[derive(Clone, Debug, Default)]
pub struct MarkOptions {
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Also write the summary JSON here.
    pub json: Option<PathBuf>,
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
    /// SIGHUP reloads applied.
    pub reloads: u64,
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
    rx: Option<AnyRx>,
    tx: AnyTx,
    pcap_out: Option<PcapOut>,
    _counters: Option<Arc<PortCounters>>,
    _mem: Option<Arc<MemPortStats>>,
}

/// Opens port `i` of `cfg` with one queue (the marker is one thread).
fn open_port(cfg: &Config, i: usize) -> Result<Opened, SetupError> {
    let p = &cfg.ports[i];
    let port_err = |e: String| SetupError::Port(e);
    let idx = i as u16;
    let mut o = Opened {
        rx: None,
        tx: AnyTx::None,
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
                o.rx = Some(AnyRx::Mem(MemRx::new(idx, tpl, &gc, 0, 1)));
            }
            let st = Arc::new(MemPortStats::default());
            o.tx = AnyTx::Mem(MemTx::new(st.clone()));
            o._mem = Some(st);
        }
        "pcap" => {
            if let Some(f) = &p.rx_file {
                let cap = Arc::new(
                    Capture::load(&p.name, &cfg.resolve(f)).map_err(|e| port_err(e.to_string()))?,
                );
                o.rx = Some(AnyRx::Pcap(PcapRx::new(idx, cap, p.repeat)));
            }
            if let Some(f) = &p.tx_file {
                let (out, mut qs) = PcapOut::open(&p.name, &cfg.resolve(f), 1)
                    .map_err(|e| port_err(e.to_string()))?;
                o.tx = AnyTx::Pcap(qs.remove(0));
                o.pcap_out = Some(out);
            }
        }
        "tap" => {
            let mut tc = tap::TapConfig::new(p.ifname.as_deref().unwrap_or_default());
            tc.queues = 1;
            tc.mtu = (p.mtu != 0 && p.mtu != 1500).then_some(p.mtu as u32);
            tc.mac = match &p.mac {
                Some(m) => Some(Mac(
                    parse_mac(m).map_err(|e| cfg.error(&format!("ports[{i}].mac"), e))?
                )),
                None => None,
            };
            let mut port = tap::open(&p.name, &tc, idx).map_err(|e| port_err(e.to_string()))?;
            o.rx = port.rx.pop().map(AnyRx::Tap);
            o.tx = port.tx.pop().map(AnyTx::Tap).unwrap_or(AnyTx::None);
            o._counters = Some(port.counters);
        }
        "afpacket" => {
            let mut ac = afpacket::AfPacketConfig::new(p.ifname.as_deref().unwrap_or_default());
            ac.queues = 1;
            ac.promisc = p.promisc;
            let mut port =
                afpacket::open(&p.name, &ac, idx).map_err(|e| port_err(e.to_string()))?;
            o.rx = port.rx.pop().map(AnyRx::AfPacket);
            o.tx = port.tx.pop().map(AnyTx::AfPacket).unwrap_or(AnyTx::None);
            o._counters = Some(port.counters);
        }
        #[cfg(feature = "afxdp")]
        "afxdp" => {
            use crate::port::afxdp;
            let mut xc = afxdp::AfXdpConfig::new(p.ifname.as_deref().unwrap_or_default());
            xc.queues = 1;
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
            let mut port = afxdp::open(&p.name, &xc, idx).map_err(|e| port_err(e.to_string()))?;
            o.rx = port.rx.pop().map(AnyRx::AfXdp);
            o.tx = port.tx.pop().map(AnyTx::AfXdp).unwrap_or(AnyTx::None);
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
    let mc = super::config::marker_config(cfg)?.ok_or_else(|| {
        SetupError::Config(cfg.error("mark", "`steerd mark` needs a [mark] section"))
    })?;
    let section = cfg.mark.clone().expect("marker_config found [mark]");
    let mut marker = Marker::new(mc).map_err(|e| SetupError::Config(cfg.error("mark", e)))?;
    let names = cfg.port_names();
    let idx = |n: &str| {
        names
            .iter()
            .position(|x| x == n)
            .expect("validated port name")
    };
    // Only ports a pair uses are opened.
    let mut used: Vec<usize> = section
        .pairs
        .iter()
        .flat_map(|p| [idx(&p.from), idx(&p.to)])
        .collect();
    used.sort_unstable();
    used.dedup();
    let mut rx: Vec<Option<AnyRx>> = (0..names.len()).map(|_| None).collect();
    let mut tx: Vec<AnyTx> = (0..names.len()).map(|_| AnyTx::None).collect();
    let mut pcap_outs = Vec::new();
    let mut keep = Vec::new();
    for &i in &used {
        let o = open_port(cfg, i)?;
        rx[i] = o.rx;
        tx[i] = o.tx;
        if let Some(p) = o.pcap_out {
            pcap_outs.push(p);
        }
        keep.push((o._counters, o._mem));
    }
    let pairs: Vec<(usize, usize, bool)> = section
        .pairs
        .iter()
        .map(|p| (idx(&p.from), idx(&p.to), p.mark))
        .collect();
    let burst = cfg.general.burst.clamp(1, crate::safe::pipeline::BURST);
    let mut pool = Pool::new(cfg.general.pool_buffers);
    let mut inb: Vec<PktBuf> = Vec::with_capacity(burst);
    let mut stage: Vec<Vec<PktBuf>> = (0..names.len())
        .map(|_| Vec::with_capacity(2 * burst))
        .collect();
    let mut port_rx = vec![0u64; names.len()];
    let mut port_tx = vec![0u64; names.len()];
    let mut port_drops = vec![0u64; names.len()];
    let mut pair_n = vec![0u64; pairs.len()];
    let mut passed = 0u64;
    let lossless: Vec<bool> = tx.iter().map(|q| q.lossless()).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let epoch_cell = Arc::new(AtomicU64::new(0));
    let steer_set = section.follow_steering.then(|| Arc::new(SteerSet::new()));
    let mut steer_words = vec![0u64; steer_set.as_ref().map_or(0, |s| s.words.len())];
    let mut steer_seen = 0u64;
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
        marker.set_active(&[]);
    }
    crate::ctl::signals::install_signal_handlers();
    let idle = Duration::from_micros(section.idle_us);
    let mut epoch_updates = 0u64;
    let mut steering_updates = 0u64;
    let mut reloads = 0u64;
    let mut loops = 0u32;
    let t0 = Instant::now();
    let deadline = opts.duration.map(|d| t0 + d);
    tracing::info!(
        "mark: {} pair(s), epoch {}, flow table {} entries",
        pairs.len(),
        marker.epoch(),
        marker.flow_capacity()
    );
    loop {
        let now = Instant::now();
        if crate::ctl::signals::stop_requested() || deadline.is_some_and(|d| now >= d) {
            break;
        }
        let e = epoch_cell.load(Ordering::Relaxed);
        if e >> 32 != 0 && (e as u32) != marker.epoch() {
            marker.set_epoch(e as u32);
            epoch_updates += 1;
        }
        if let Some(set) = &steer_set
            && let Some(seq) = set.read(steer_seen, &mut steer_words)
        {
            marker.set_active_words(&steer_words);
            steer_seen = seq;
            steering_updates += 1;
        }
        loops = loops.wrapping_add(1);
        if loops.is_multiple_of(1024) && crate::ctl::signals::take_reload() {
            // Cold, operator-initiated: re-read keys, epoch and predicted set.
            match reload(
                cfg,
                &mut marker,
                section.epoch_from.is_none(),
                !section.follow_steering,
            ) {
                Ok(()) => reloads += 1,
                Err(e) => tracing::warn!("mark: reload refused, nothing changed: {e}"),
            }
        }
        let mut got = 0usize;
        let mut live = false;
        for (pi, &(from, to, mark)) in pairs.iter().enumerate() {
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
                &mut tx[to],
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
            if idle.is_zero() {
                std::hint::spin_loop();
            } else {
                std::thread::sleep(idle);
            }
        }
    }
    // Drain: everything staged is sent (or, on a lossy port that refuses it, dropped).
    for (i, q) in tx.iter_mut().enumerate() {
        send(
            q,
            &mut pool,
            &mut stage[i],
            lossless[i],
            &mut port_tx[i],
            &mut port_drops[i],
        );
        q.flush();
    }
    let elapsed = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    if let Some(h) = follower {
        let _ = h.join();
    }
    drop(tx);
    drop(rx);
    for o in pcap_outs.iter_mut() {
        o.finish()
            .map_err(|e| SetupError::Port(format!("pcap output: {e}")))?;
    }
    drop(keep);
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
        passed_through: passed,
        flow_capacity: marker.flow_capacity(),
        epoch: marker.epoch(),
        epoch_updates,
        steering_updates,
        reloads,
        marker: marker.stats().clone(),
    };
    if let Some(p) = &opts.json {
        std::fs::write(
            p,
            serde_json::to_string_pretty(&summary.to_json()).unwrap_or_default(),
        )
        .map_err(|e| SetupError::Other(format!("cannot write {}: {e}", p.display())))?;
    }
    Ok(summary)
}

/// SIGHUP: reads the config file again and applies its keys, epoch (unless followed
/// from steerd) and predicted set. Anything else in `[mark]` or the ports needs a
/// restart: a reload that changes it is refused as a whole.
fn reload(cfg: &Config, marker: &mut Marker, epoch: bool, active: bool) -> Result<(), String> {
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
    marker.set_keys(mc.keys);
    if epoch {
        marker.set_epoch(mc.epoch);
    }
    match &mc.active {
        _ if !active => {}
        Some(ids) => marker.set_active(ids),
        None => {
            let ids: Vec<u32> = mc
                .destinations
                .iter()
                .map(|d| d.1)
                .chain(mc.rules.iter().filter_map(|r| r.dest))
                .collect();
            marker.set_active(&ids);
        }
    }
    tracing::info!(
        "mark: reloaded keys, epoch {}, predicted set",
        marker.epoch()
    );
    Ok(())
}

/// Sends what is staged for a port; a lossy port's refusals are dropped and counted, a
/// lossless port (a pcap file) is waited for.
#[inline]
fn send(
    q: &mut AnyTx,
    pool: &mut Pool,
    v: &mut Vec<PktBuf>,
    lossless: bool,
    sent: &mut u64,
    drops: &mut u64,
) {
    if v.is_empty() {
        return;
    }
    if let AnyTx::None = q {
        *drops += v.len() as u64;
        for b in v.drain(..) {
            pool.put(b);
        }
        return;
    }
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
