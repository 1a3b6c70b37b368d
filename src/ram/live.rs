//! The RAM inside `steerd run` (`[ram] live = true`; cold: the `steerd-ram` thread,
//! plus readers on the `ctl` thread; never a worker).
//!
//! Once per `ram.tick_ms` the thread
//! 1. sums the workers' per-destination telemetry ([`DestCounters`], relaxed loads of
//!    counters only their worker writes — what the TPE's aggregator reads) into measured
//!    rates over the last `measure_s`;
//! 2. in predictive mode, loads the TPE's latest forecast (an `ArcSwap` load through the
//!    [`Forecast`] given at start: never waits on the engine);
//! 3. steps the [`Planner`] (data centers, steering entries) and [`path::place`], and
//!    when the steering entries that result differ from the last published ones,
//!    publishes `Tables::with_steering` at the next epoch through the workers'
//!    [`TableHandle`] ([`TableHandle::update`], so a concurrent route or neighbour
//!    publication is never undone);
//! 4. sizes steerd's own worker pool ([`LocalPool`]) and sets each worker's standby flag
//!    ([`RunControl::standby`]): a worker in standby parks up to `ram.standby_park_us`
//!    when idle, and still polls its queues after each park.
//!
//! Time: rates are per wall second; the planner's durations (`lead_s`, `wake_s`,
//! `release_hold_s`, `measure_s`) are logical seconds, wall seconds × the TPE's
//! `time_scale` when `[tpe]` is enabled, wall seconds otherwise.
//!
//! Ownership: while the live RAM runs it owns the steering table; `reload` may not
//! change `steering.destinations`, `steering.epoch`/`max_epoch_age` or the next hops'
//! names or order (see [`crate::ctl::ops`]), and route publications keep the current
//! steering table.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use serde_json::{Value, json};

use super::path::{self, DestPath, PathWeights};
use super::plan::{Demand, Planner};
use super::steer;
use super::topology::{RamConfig, RamMode, Topology};
use super::weights::{self, WeightHold};
use crate::config::Config;
use crate::ctl::metrics::{counter, gauge};
use crate::port::netdev::LinkEventsStop;
use crate::safe::tables::{TableHandle, Tables};
use crate::safe::tx::{N_CLASSES, WIRE_OVERHEAD};
use crate::safe::worker::RunControl;
use crate::telemetry::DestCounters;

/// Per-destination forecast (packets per wall second, the peak expected within
/// `lead_s`), or `None` before the engine's first prediction.
pub type Forecast = Box<dyn Fn() -> Option<Vec<f64>> + Send>;

/// Per-destination: an announced event that raises its traffic is running, or starts
/// within the given logical minutes (the TPE's calendar: `[[tpe.events]]` and events
/// added over ctl).
pub type EventsSoon = Box<dyn Fn(u64) -> Vec<bool> + Send>;

/// Turns the TPE's published predictions (packets per bucket at 5 min, 15 min, 1 h)
/// into the peak rate per wall second expected within `lead_s` logical seconds: the
/// largest of the horizons not beyond the lead (always the first one).
#[cfg(feature = "tpe")]
pub fn tpe_forecast(
    preds: Arc<arc_swap::ArcSwap<crate::tpe::Predictions>>,
    time_scale: f64,
    lead_s: f64,
) -> Forecast {
    let bucket_wall_s = 60.0 / time_scale.clamp(1e-3, 1e6);
    Box::new(move || {
        let p = preds.load();
        if p.epoch == 0 {
            return None;
        }
        Some(
            p.per_dest
                .iter()
                .map(|h| {
                    let mut m = h[0];
                    for (k, hz) in p.horizons.iter().enumerate().skip(1) {
                        if f64::from(hz.buckets) * 60.0 <= lead_s {
                            m = m.max(h[k]);
                        }
                    }
                    f64::from(m.max(0.0)) / bucket_wall_s
                })
                .collect(),
        )
    })
}

/// Why a link is down: its port has no carrier.
const NO_CARRIER: &str = "no carrier";
/// Why a link is down: its carrier is back, for less than `ram.link_up_hold_ms`.
const CARRIER_RETURNING: &str = "carrier returning";

/// How the live RAM reads one port's carrier. Built by the app, which knows the
/// backends: kernel-backed ports (tap, afpacket, afxdp) read their interface
/// ([`crate::port::netdev::carrier`]), DPDK ports their link state
/// (`rte_eth_link_get_nowait`); mem and pcap ports have none.
pub struct PortCarrier {
    /// The steerd port (`[[ports]] name`).
    pub port: String,
    /// What is read, for the status (`interface ens1f0`, `dpdk port 0`).
    pub what: String,
    /// Up (`Err`: it could not be read, which counts as down).
    pub up: Box<dyn Fn() -> Result<bool, String> + Send>,
    /// The kernel interface, when it is one: the RAM then also listens for the
    /// kernel's link notifications and reads the carrier the moment one arrives.
    pub ifname: Option<String>,
}

impl PortCarrier {
    /// A kernel interface's carrier.
    pub fn interface(port: &str, ifname: &str) -> PortCarrier {
        let ifname = ifname.to_string();
        PortCarrier {
            port: port.to_string(),
            what: format!("interface {ifname}"),
            ifname: Some(ifname.clone()),
            up: Box::new(move || {
                crate::port::netdev::carrier(&ifname).map_err(|e| format!("{ifname}: {e}"))
            }),
        }
    }
}

/// Per topology link: which of `carriers` it follows (links out of the edge whose next
/// hop sends on a port with a carrier). Others are down only when an operator says so.
fn link_carriers(cfg: &Config, topo: &Topology, carriers: &[PortCarrier]) -> Vec<Option<usize>> {
    topo.links
        .iter()
        .map(|k| {
            let nh = cfg
                .next_hops
                .iter()
                .find(|h| Some(&h.name) == k.next_hop.as_ref())?;
            carriers.iter().position(|c| c.port == nh.port)
        })
        .collect()
}

/// Workers needed for `pps` (at least `min`, at most `n`).
fn workers_for(pps: f64, headroom: f64, worker_pps: f64, min: usize, n: usize) -> usize {
    let w = (pps.max(0.0) * headroom / worker_pps).ceil();
    (w.min(n as f64) as usize).clamp(min.min(n), n)
}

/// Steerd's own workers: how many are active, the rest in standby (the highest
/// indices first; worker 0 stays active). Cold, on the RAM's thread.
#[derive(Debug, Clone)]
pub struct LocalPool {
    mode: RamMode,
    n: usize,
    min: usize,
    headroom: f64,
    worker_pps: f64,
    up: f64,
    down: f64,
    hold_s: f64,
    active: usize,
    target: usize,
    hold_since: Option<f64>,
    hold_max: usize,
    standby_since: Vec<Option<f64>>,
    /// Per worker: times it was woken (standby → active).
    pub wakes: Vec<u64>,
    /// Per worker: times it was put in standby.
    pub parks: Vec<u64>,
    /// Per worker: wall seconds in standby (closed periods; see [`LocalPool::standby_s`]).
    standby_done_s: Vec<f64>,
    /// Wakes made before the measured rate exceeded the active workers' capacity.
    pub early: u64,
    /// Wakes made after it had.
    pub late: u64,
}

impl LocalPool {
    /// A pool of `n` workers. Static mode keeps them all active; the others start
    /// from the measured rate, which is zero before the first tick: `min_workers`
    /// active, the rest in standby (counted as parks) until the traffic needs them.
    pub fn new(cfg: &RamConfig, mode: RamMode, n: usize) -> Self {
        let n = n.max(1);
        let min = (cfg.min_workers as usize).clamp(1, n);
        let active = if mode == RamMode::Static { n } else { min };
        LocalPool {
            mode,
            n,
            min,
            headroom: cfg.headroom,
            worker_pps: Topology::local_worker_pps(cfg),
            up: cfg.up_threshold,
            down: cfg.down_threshold,
            hold_s: cfg.release_hold_s,
            active,
            target: active,
            hold_since: None,
            hold_max: 0,
            standby_since: (0..n).map(|w| (w >= active).then_some(0.0)).collect(),
            wakes: vec![0; n],
            parks: (0..n).map(|w| u64::from(w >= active)).collect(),
            standby_done_s: vec![0.0; n],
            early: 0,
            late: 0,
        }
    }

    /// Active workers (indices `0..active`).
    pub fn active(&self) -> usize {
        self.active
    }

    /// Workers.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Never empty (at least one worker).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Last target (before the release hold).
    pub fn target(&self) -> usize {
        self.target
    }

    /// Wall seconds worker `w` has spent in standby up to `wall_now`.
    pub fn standby_s(&self, w: usize, wall_now: f64) -> f64 {
        self.standby_done_s[w] + self.standby_since[w].map_or(0.0, |s| (wall_now - s).max(0.0))
    }

    /// Whether worker `w` is in standby.
    pub fn in_standby(&self, w: usize) -> bool {
        w >= self.active
    }

    /// One tick at logical time `now` (wall time `wall_now`, both seconds): `measured`
    /// and `predicted` are the pool's packets per wall second. Returns (woken, parked).
    pub fn step(
        &mut self,
        now: f64,
        wall_now: f64,
        measured: f64,
        predicted: Option<f64>,
    ) -> (usize, usize) {
        let need = |pps: f64| workers_for(pps, self.headroom, self.worker_pps, self.min, self.n);
        let cap = self.active as f64 * self.worker_pps;
        let over = measured > self.up * cap;
        let reactive = if over || measured < self.down * cap {
            need(measured)
        } else {
            self.active
        };
        let t = match self.mode {
            RamMode::Static => self.n,
            RamMode::Reactive => reactive,
            RamMode::Predictive => {
                let p = need(measured.max(predicted.unwrap_or(0.0)));
                if over { p.max(reactive) } else { p }
            }
        };
        let t = t.clamp(self.min, self.n);
        self.target = t;
        let (mut woken, mut parked) = (0, 0);
        if t > self.active {
            // Steerd's workers wake within a park (≤ standby_park_us): at once.
            let late = measured > cap;
            for w in self.active..t {
                self.wakes[w] += 1;
                if let Some(s) = self.standby_since[w].take() {
                    self.standby_done_s[w] += (wall_now - s).max(0.0);
                }
                if late {
                    self.late += 1;
                } else {
                    self.early += 1;
                }
            }
            woken = t - self.active;
            self.active = t;
            self.hold_since = None;
        } else if t < self.active {
            let since = *self.hold_since.get_or_insert(now);
            self.hold_max = if since == now {
                t
            } else {
                self.hold_max.max(t)
            };
            if now - since >= self.hold_s {
                let to = self.hold_max.max(self.min);
                for w in to..self.active {
                    self.parks[w] += 1;
                    self.standby_since[w] = Some(wall_now);
                }
                parked = self.active - to;
                self.active = to;
                self.hold_since = None;
            }
        } else {
            self.hold_since = None;
        }
        (woken, parked)
    }
}

/// What the ctl thread reads: the last status, updated every tick; and the operator's
/// link states (`ctl ram link`), which the RAM thread reads.
pub struct RamShared {
    status: Mutex<Value>,
    running: AtomicBool,
    /// Per topology link: set down by an operator.
    admin_down: Vec<AtomicBool>,
    /// Per topology link: the names of its two ends.
    link_ends: Vec<(String, String)>,
    /// Set by [`RamShared::set_link`]: recompute the paths now, not at the next tick.
    kick: AtomicBool,
    /// The RAM thread, to wake it for a kick.
    thread: std::sync::OnceLock<std::thread::Thread>,
    /// How link state changes are noticed (status `link_watch.how`).
    watch_how: Mutex<String>,
    /// Link notifications about the followed interfaces (each one a kick).
    link_events: AtomicU64,
    /// How often the carriers are read (ms): `ram.link_poll_ms`, at most `tick_ms`.
    poll_ms: u64,
}

/// Why [`RamShared::set_link`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// No link between the two named nodes.
    Unknown(String),
    /// More than one: name it by index.
    Ambiguous(String),
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Unknown(m) | LinkError::Ambiguous(m) => f.write_str(m),
        }
    }
}

impl RamShared {
    /// Running, every link up as far as the operator knows, for links with these ends.
    fn new(link_ends: Vec<(String, String)>, poll_ms: u64) -> RamShared {
        RamShared {
            status: Mutex::new(Value::Null),
            running: AtomicBool::new(true),
            admin_down: link_ends.iter().map(|_| AtomicBool::new(false)).collect(),
            link_ends,
            kick: AtomicBool::new(false),
            thread: std::sync::OnceLock::new(),
            watch_how: Mutex::new(String::new()),
            link_events: AtomicU64::new(0),
            poll_ms,
        }
    }

    /// The `components.ram` object of `/status` (and the summary's `ram`).
    pub fn status(&self) -> Value {
        let mut v = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        v["state"] = json!(if self.running.load(Ordering::Acquire) {
            "running"
        } else {
            "stopped"
        });
        // Read now, not at the last tick: a notification counts at once, and the watch
        // thread's own state (it starts after the first tick) shows.
        v["link_watch"] = self.link_watch();
        v
    }

    fn set(&self, v: Value) {
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = v;
    }

    /// Has the RAM thread re-read the links and re-place now, not at its next tick.
    fn wake(&self) {
        self.kick.store(true, Ordering::Release);
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }

    fn link_watch(&self) -> Value {
        json!({
            "how": *self.watch_how.lock().unwrap_or_else(|e| e.into_inner()),
            "poll_ms": self.poll_ms,
            "events": self.link_events.load(Ordering::Relaxed),
        })
    }

    /// Sets the operator's state of a link (by its two ends, either order, or by its
    /// index in `[[ram.links]]`). While it is down no path uses it; the RAM thread is
    /// woken to re-place at once. Waits (up to a second) until the thread has acted on
    /// it, and returns the link as the status then shows it, whether the operator's
    /// state changed, whether it was applied, and the paths.
    pub fn set_link(&self, link: &LinkRef, up: bool) -> Result<Value, LinkError> {
        let l = self.find_link(link)?;
        let was_down = self.admin_down[l].swap(!up, Ordering::AcqRel);
        self.wake();
        let applied = |v: &Value| (v["links"][l]["down_because"] == "ctl") != up;
        let until = Instant::now() + Duration::from_secs(1);
        let mut v = self.status();
        while !applied(&v) && Instant::now() < until && self.running.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(2));
            v = self.status();
        }
        Ok(json!({
            "index": l,
            "link": v["links"][l],
            "changed": was_down == up,
            "applied": applied(&v),
            "links_down": v["links_down"],
            "paths": v["paths"],
        }))
    }

    /// The links, their state and the steered destinations' paths (ctl `ram.links`).
    pub fn links_view(&self) -> Value {
        let v = self.status();
        json!({
            "links": v["links"],
            "links_down": v["links_down"],
            "link_changes": v["link_changes"],
            "link_watch": v["link_watch"],
            "paths": v["paths"],
        })
    }

    fn find_link(&self, link: &LinkRef) -> Result<usize, LinkError> {
        let names = || {
            self.link_ends
                .iter()
                .enumerate()
                .map(|(i, (a, b))| format!("{i}: {a} – {b}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match link {
            LinkRef::Index(i) if *i < self.link_ends.len() => Ok(*i),
            LinkRef::Index(i) => Err(LinkError::Unknown(format!(
                "no ram.links[{i}]: the links are {}",
                names()
            ))),
            LinkRef::Ends(a, b) => {
                let hits = super::topology::links_between(
                    self.link_ends.iter().map(|(x, y)| (x.as_str(), y.as_str())),
                    a,
                    b,
                );
                match hits[..] {
                    [i] => Ok(i),
                    [] => Err(LinkError::Unknown(format!(
                        "no link between {a} and {b}: the links are {}",
                        names()
                    ))),
                    _ => Err(LinkError::Ambiguous(format!(
                        "{} links between {a} and {b} (ram.links{hits:?}): name one by index",
                        hits.len()
                    ))),
                }
            }
        }
    }

    /// One line for the plain stats output and the live screen: mode, steered
    /// destinations, steerd's own workers, and each data center's capacity.
    pub fn line(&self) -> String {
        let v = self.status();
        if v["ticks"].as_u64().unwrap_or(0) == 0 {
            return format!(
                "ram: {} (first tick pending)",
                v["state"].as_str().unwrap_or("?")
            );
        }
        let w = &v["workers"];
        let mut s = format!(
            "ram: {} steered {} publications {}  workers {}/{} active (target {}, wakes {}, parks {})  measured {:.0} pps",
            v["mode"].as_str().unwrap_or("?"),
            v["steered"],
            v["publications"],
            w["active"],
            w["total"],
            w["target"],
            w["wakes"],
            w["parks"],
            v["measured_pps"].as_f64().unwrap_or(0.0),
        );
        if let Some(p) = v["predicted_pps"].as_f64() {
            s.push_str(&format!(" predicted {p:.0} pps"));
        }
        for site in v["sites"].as_array().into_iter().flatten() {
            s.push_str(&format!(
                "  {} {}+{}{}",
                site["name"].as_str().unwrap_or("?"),
                site["active"],
                site["waking"],
                if site["event_hold"] == true {
                    " (event hold)"
                } else {
                    ""
                }
            ));
        }
        for l in v["links"].as_array().into_iter().flatten() {
            if let Some(why) = l["down_because"].as_str() {
                s.push_str(&format!(
                    "  link {} – {} DOWN ({why})",
                    l["a"].as_str().unwrap_or("?"),
                    l["b"].as_str().unwrap_or("?")
                ));
            }
        }
        s
    }
}

/// A link of the RAM's topology, as an operator names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkRef {
    /// By its two ends (node names, either order).
    Ends(String, String),
    /// By its index in `[[ram.links]]`.
    Index(usize),
}

/// `steerd_ram_*` on `/metrics`: the live RAM's last tick (read from [`RamShared`]).
#[derive(Clone)]
pub struct RamCollector(pub Arc<RamShared>);

impl std::fmt::Debug for RamCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RamCollector")
    }
}

impl Collector for RamCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let v = self.0.status();
        let e = &mut e;
        let u = |x: &Value| x.as_u64().unwrap_or(0);
        let f = |x: &Value| x.as_f64().unwrap_or(0.0);
        let w = &v["workers"];
        counter(
            e,
            "publications",
            "Steering tables the live RAM published",
            u(&v["publications"]),
        )?;
        counter(
            e,
            "worker_wakes",
            "Workers woken from standby",
            u(&w["wakes"]),
        )?;
        counter(e, "worker_parks", "Workers put in standby", u(&w["parks"]))?;
        counter(
            e,
            "prepositions_early",
            "Wakes (workers and data centers) ready before the traffic exceeded capacity",
            u(&v["prepositions"]["early"]),
        )?;
        counter(
            e,
            "prepositions_late",
            "Wakes the traffic beat",
            u(&v["prepositions"]["late"]),
        )?;
        gauge(e, "workers_active", "Workers active", f(&w["active"]))?;
        gauge(e, "workers_standby", "Workers in standby", f(&w["standby"]))?;
        gauge(
            e,
            "worker_standby_seconds",
            "Seconds workers spent in standby, summed over workers",
            f(&w["standby_s"]),
        )?;
        gauge(
            e,
            "steered_destinations",
            "Destinations with a steering entry the RAM published",
            f(&v["steered"]),
        )?;
        gauge(
            e,
            "measured_pps",
            "Packets per second the live RAM measured (all destinations)",
            f(&v["measured_pps"]),
        )?;
        gauge(
            e,
            "links_down",
            "Topology links the RAM routes around (operator or no carrier)",
            f(&v["links_down"]),
        )?;
        counter(
            e,
            "link_changes",
            "Link state changes (down or up) the RAM acted on",
            u(&v["link_changes"]),
        )?;
        counter(
            e,
            "link_notifications",
            "Kernel link notifications about the interfaces the links follow",
            u(&v["link_watch"]["events"]),
        )
    }
}

/// What the live RAM reads and writes.
pub struct LiveInputs {
    /// The tables the workers read.
    pub tables: Arc<TableHandle>,
    /// The workers' telemetry.
    pub telemetry: Vec<Arc<DestCounters>>,
    /// Run control (the workers' standby flags).
    pub run: Arc<RunControl>,
    /// The TPE's forecast (predictive mode).
    pub forecast: Option<Forecast>,
    /// The TPE's event calendar (predictive mode: a destination with an announced
    /// event running or due gets `event_headroom`, and its data center keeps capacity
    /// for `release_hold_s`, as in the scenario run).
    pub events: Option<EventsSoon>,
    /// The ports whose carrier the links out of the edge follow.
    pub carriers: Vec<PortCarrier>,
}

/// The running live RAM (owned by `Appliance::run`).
pub struct LiveRam {
    shared: Arc<RamShared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The `steerd-linkwatch` thread, when a link follows a kernel interface.
    watch: Option<(JoinHandle<()>, LinkEventsStop)>,
}

/// The RAM's state on its thread.
struct Ram {
    cfg: RamConfig,
    topo: Topology,
    mode: RamMode,
    planner: Planner,
    pool: LocalPool,
    weights: PathWeights,
    link_nh: Vec<Option<u16>>,
    inputs: LiveInputs,
    time_scale: f64,
    tick_s: f64,
    /// Telemetry totals at the last tick, per destination (the last one: "other").
    prev: Vec<u64>,
    ring: Vec<Vec<u64>>,
    ticks: u64,
    /// The steering entries (next hops per destination) last published.
    published: Option<Vec<Option<crate::steering::SteerEntry>>>,
    steered: Vec<bool>,
    paths: Vec<Option<DestPath>>,
    publications: u64,
    /// Publications made because the table in force was no longer this RAM's.
    republished: u64,
    epoch: u32,
    measured_pps: f64,
    predicted_pps: Option<f64>,
    /// Per destination: an announced event is running or due (predictive mode).
    event_dests: Vec<bool>,
    /// Per link: the entry of `inputs.carriers` it follows.
    link_carrier: Vec<Option<usize>>,
    /// Per link: why it is down (`ctl`, `no carrier`), or up.
    down: Vec<Option<&'static str>>,
    /// The placed load per link at the last placement (packets per wall second).
    link_load: Vec<f64>,
    /// Link state changes acted on.
    link_changes: u64,
    /// Per link: when (Unix ms) the RAM saw its state last change, and re-placed.
    link_changed_ms: Vec<Option<u64>>,
    /// Per link: since when its carrier is back while `link_up_hold_ms` keeps it down.
    carrier_back: Vec<Option<Instant>>,
    /// Next-hop names, by index (for the status).
    nh_names: Vec<String>,
    /// Per next hop (index as in the route table): the index of the port it leaves on.
    nh_port: Vec<Option<usize>>,
    /// The ports whose `tx_weights` this RAM sets (`set_tx_weights`).
    weight_ports: Vec<WeightPort>,
    /// Publications of weights alone (the steering entries unchanged).
    weight_publications: u64,
    /// Telemetry byte totals at the last tick, per destination (as `prev`).
    prev_bytes: Vec<u64>,
    /// Per destination: bytes on the wire per packet (frame + 24), measured.
    wire_bytes: Vec<f64>,
    /// Logical time of the last tick.
    now: f64,
    shared: Arc<RamShared>,
    start: Instant,
}

/// A port whose transmit class weights the RAM sets.
struct WeightPort {
    port: usize,
    name: String,
    /// The port's own `tx_weights` (all zero: strict priority), in force while the RAM
    /// expects nothing there.
    configured: [u16; N_CLASSES],
    hold: WeightHold,
    /// Expected wire bytes per second per class at the last placement.
    demand: [f64; N_CLASSES],
}

impl WeightPort {
    /// The weights this RAM wants in force.
    fn want(&self) -> [u16; N_CLASSES] {
        self.hold.current().unwrap_or(self.configured)
    }
}

/// The ports whose `tx_weights` the live RAM owns: with `[ram] live = true` and
/// `set_tx_weights = true`, the ports of the next hops on links out of the edge (in
/// port order). Empty otherwise.
pub fn weight_ports(cfg: &Config) -> Vec<usize> {
    let Some(rc) = cfg.ram.as_ref().filter(|r| r.live && r.set_tx_weights) else {
        return Vec::new();
    };
    let mut out: Vec<usize> = rc
        .links
        .iter()
        .filter_map(|l| l.next_hop.as_deref())
        .filter_map(|n| cfg.next_hops.iter().find(|h| h.name == n))
        .filter_map(|h| cfg.ports.iter().position(|p| p.name == h.port))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

impl Ram {
    fn totals(&self) -> Vec<u64> {
        let n = self.prev.len() - 1;
        let mut t = vec![0u64; n + 1];
        for c in &self.inputs.telemetry {
            for (d, x) in t.iter_mut().enumerate().take(n) {
                *x = x.wrapping_add(c.packets(d));
            }
            // The "other" slot and ids beyond this RAM's range.
            for d in n..=c.n_dest() {
                t[n] = t[n].wrapping_add(c.packets(d));
            }
        }
        t
    }

    /// Per destination below the RAM's range: bytes counted so far, over all workers.
    fn byte_totals(&self) -> Vec<u64> {
        let n = self.prev_bytes.len();
        let mut t = vec![0u64; n];
        for c in &self.inputs.telemetry {
            for (d, x) in t.iter_mut().enumerate() {
                *x = x.wrapping_add(c.bytes(d));
            }
        }
        t
    }

    fn tick(&mut self) {
        let wall = self.start.elapsed().as_secs_f64();
        let now = wall * self.time_scale;
        self.now = now;
        // Measured rates (per wall second) over the last measure_s.
        let tot = self.totals();
        if !self.weight_ports.is_empty() {
            // Bytes per packet on the wire, per destination: the last tick's mean where
            // packets were counted (the last value, or 64-byte frames, otherwise).
            let bytes = self.byte_totals();
            for (d, (&b, pb)) in bytes.iter().zip(self.prev_bytes.iter_mut()).enumerate() {
                let packets = tot[d].wrapping_sub(self.prev[d]);
                if packets > 0 {
                    self.wire_bytes[d] =
                        b.wrapping_sub(*pb) as f64 / packets as f64 + WIRE_OVERHEAD as f64;
                }
                *pb = b;
            }
        }
        let slot = (self.ticks as usize) % self.ring.len();
        for (d, (&t, p)) in tot.iter().zip(self.prev.iter_mut()).enumerate() {
            self.ring[slot][d] = t.wrapping_sub(*p);
            *p = t;
        }
        self.ticks += 1;
        let filled = (self.ticks as usize).min(self.ring.len()) as f64 * self.tick_s;
        let rate = |d: usize| self.ring.iter().map(|r| r[d]).sum::<u64>() as f64 / filled;
        let nd = self.topo.n_dest();
        let all: Vec<f64> = (0..tot.len()).map(rate).collect();
        // (Validation keeps every RAM destination below the telemetry's range.)
        let measured: Vec<f64> = (0..nd)
            .map(|d| if d + 1 < all.len() { all[d] } else { 0.0 })
            .collect();
        self.measured_pps = all.iter().sum();
        let forecast = match (self.mode, self.inputs.forecast.as_ref()) {
            (RamMode::Predictive, Some(f)) => f(),
            _ => None,
        };
        // The trend nowcast over the wake time (in ticks), once the window is full.
        let nowcast_on = self.cfg.nowcast && self.ticks as usize >= self.ring.len();
        let ahead = self.cfg.wake_s / self.time_scale / self.tick_s;
        let mut window = Vec::with_capacity(self.ring.len());
        let mut nowcast = |d: usize| -> f64 {
            if !nowcast_on {
                return 0.0;
            }
            let len = self.ring.len();
            window.clear();
            window.extend(
                (0..len).map(|k| self.ring[(slot + len - k) % len][d] as f64 / self.tick_s),
            );
            super::plan::nowcast(&window, ahead).unwrap_or(0.0)
        };
        let fc: Option<Vec<f64>> = forecast.as_ref().map(|f| {
            (0..nd)
                .map(|d| {
                    f.get(d)
                        .copied()
                        .unwrap_or(0.0)
                        .max(measured[d])
                        .max(nowcast(d))
                })
                .collect()
        });
        // What this edge sends each data center.
        let mut site_arrivals = vec![0.0; self.topo.sites.len()];
        for (d, m) in measured.iter().enumerate() {
            if let Some(s) = self.topo.site_of(d) {
                site_arrivals[s] += m;
            }
        }
        // Announced events running or due within the lead and wake time, per
        // destination (the planner derives its data centers' hold from them).
        self.event_dests.clear();
        if let (RamMode::Predictive, Some(soon)) = (self.mode, self.inputs.events.as_ref()) {
            let look = ((self.cfg.lead_s + self.cfg.wake_s) / 60.0).ceil() as u64;
            self.event_dests = soon(look);
            self.event_dests.resize(nd, false);
        }
        self.planner.step(
            now,
            Demand {
                measured: &measured,
                forecast: fc.as_deref(),
                site_arrivals: &site_arrivals,
                event_dests: &self.event_dests,
            },
        );
        self.steered = (0..nd).map(|d| self.planner.steered(d)).collect();
        self.refresh_links();
        self.place_and_publish();
        // Steerd's own workers: the predicted local rate is the forecast over every
        // destination the telemetry counts (measured where there is none).
        self.predicted_pps = forecast.as_ref().map(|f| {
            let n = tot.len() - 1;
            (0..n)
                .map(|d| f.get(d).copied().unwrap_or(0.0).max(all[d]))
                .sum::<f64>()
                + all[n]
        });
        self.pool
            .step(now, wall, self.measured_pps, self.predicted_pps);
        for (w, flag) in self.inputs.run.standby.iter().enumerate() {
            flag.store(self.pool.in_standby(w), Ordering::Relaxed);
        }
    }

    /// Reads the links' states (the operator's, and the carrier of the interfaces
    /// they follow). Returns whether any link went down or up (`.0`: the paths must be
    /// placed again) and whether any state or reason changed (`.1`: the status).
    fn refresh_links(&mut self) -> (bool, bool) {
        let mut changed = false;
        let mut status = false;
        let now = Instant::now();
        let hold = Duration::from_millis(self.cfg.link_up_hold_ms);
        for l in 0..self.down.len() {
            let carrier_down = matches!(self.down[l], Some(NO_CARRIER | CARRIER_RETURNING));
            let why = if self.shared.admin_down[l].load(Ordering::Acquire) {
                Some("ctl")
            } else if let Some(c) = self.link_carrier[l] {
                // One that cannot be read (a vanished interface) has no carrier either.
                let up = (self.inputs.carriers[c].up)().unwrap_or(false);
                if !up {
                    self.carrier_back[l] = None;
                    Some(NO_CARRIER)
                } else if carrier_down && !hold.is_zero() {
                    // Back, but not used until it has stayed up for `link_up_hold_ms`
                    // (a flapping link does not pull traffic back and forth).
                    let since = *self.carrier_back[l].get_or_insert(now);
                    if now.duration_since(since) < hold {
                        Some(CARRIER_RETURNING)
                    } else {
                        self.carrier_back[l] = None;
                        None
                    }
                } else {
                    self.carrier_back[l] = None;
                    None
                }
            } else {
                None
            };
            status |= why != self.down[l];
            if why.is_some() != self.down[l].is_some() {
                changed = true;
                self.link_changes += 1;
                self.link_changed_ms[l] = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_millis() as u64);
                let k = &self.topo.links[l];
                let (a, b) = (&self.topo.nodes[k.ends[0]].0, &self.topo.nodes[k.ends[1]].0);
                match why {
                    Some(w) => tracing::warn!("ram: link {a} – {b} down ({w}): routing around it"),
                    None => tracing::info!("ram: link {a} – {b} up again"),
                }
            }
            self.down[l] = why;
        }
        (changed, status)
    }

    /// When the first `link_up_hold_ms` of a returned carrier ends.
    fn hold_ends(&self) -> Option<Instant> {
        let hold = Duration::from_millis(self.cfg.link_up_hold_ms);
        self.carrier_back
            .iter()
            .zip(&self.down)
            .filter(|(_, d)| **d == Some(CARRIER_RETURNING))
            .filter_map(|(b, _)| b.map(|b| b + hold))
            .min()
    }

    /// Places the steered destinations on paths over the links that are up, and
    /// publishes the steering entries when they changed (or when another publisher's
    /// table replaced this RAM's).
    fn place_and_publish(&mut self) {
        let down: Vec<bool> = self.down.iter().map(Option::is_some).collect();
        let (paths, load) = path::place(&self.topo, &self.weights, self.planner.expected(), &down);
        self.paths = paths;
        self.link_load = load;
        let entries = steer::entries(
            &self.link_nh,
            &self.steered,
            &self.paths,
            &self.topo.dest_priority,
        );
        let weights_moved = self.step_weights(&entries);
        // Publish when the entries change, and when another publisher's snapshot no
        // longer carries this RAM's table (its epoch moved away from ours) or weights.
        let cur = self.inputs.tables.load();
        let replaced = self.publications > 0 && cur.steering.epoch != self.epoch;
        let weights_lost = self.publications > 0
            && self
                .weight_ports
                .iter()
                .any(|w| cur.ports.get(w.port).map(|f| f.tx_weights) != Some(w.want()));
        drop(cur);
        if replaced || weights_lost {
            self.republished += 1;
        }
        if replaced || self.published.as_ref() != Some(&entries) {
            let mut epoch = 0;
            self.inputs.tables.update(|cur| {
                epoch = cur.steering.epoch.wrapping_add(1);
                let st = steer::steering_table(&cur.steering, epoch, &entries);
                let mut t = cur.with_steering(st);
                self.apply_weights(&mut t);
                Some(t)
            });
            self.epoch = epoch;
            self.publications += 1;
            self.published = Some(entries);
        } else if weights_moved || weights_lost {
            // The weights alone: the steering table (and its epoch) stays.
            self.inputs.tables.update(|cur| {
                let mut t = cur.with_steering(cur.steering.clone());
                self.apply_weights(&mut t);
                Some(t)
            });
            self.weight_publications += 1;
        }
        self.inputs.tables.reclaim();
    }

    /// Steps each weight port's hold toward the shares of the demand the plan expects
    /// there (`set_tx_weights`). Returns whether any published weight changed.
    fn step_weights(&mut self, entries: &[Option<crate::steering::SteerEntry>]) -> bool {
        if self.weight_ports.is_empty() {
            return false;
        }
        let demand = weights::class_demand(
            entries,
            self.planner.expected(),
            &self.wire_bytes,
            &self.nh_port,
            self.nh_port.iter().flatten().max().map_or(0, |p| p + 1),
        );
        let hold = match (self.mode, self.cfg.predictive_release_hold_s) {
            (RamMode::Predictive, Some(h)) => h,
            _ => self.cfg.release_hold_s,
        };
        let floor = self.cfg.tx_weight_floor;
        let mut moved = false;
        for w in &mut self.weight_ports {
            w.demand = demand.get(w.port).copied().unwrap_or([0.0; N_CLASSES]);
            let was = w.want();
            w.hold
                .step(self.now, weights::shares(&w.demand, floor), hold);
            moved |= w.want() != was;
        }
        moved
    }

    /// Puts the weights this RAM wants on its weight ports of `t`.
    fn apply_weights(&self, t: &mut Tables) {
        for w in &self.weight_ports {
            if let Some(f) = t.ports.get_mut(w.port) {
                f.tx_weights = w.want();
            }
        }
    }

    /// Between ticks: when a link changed state (an operator's `ctl ram link`, or a
    /// carrier), re-places the paths and publishes at once. The measured rates and the
    /// planner wait for the next tick.
    fn between_ticks(&mut self) -> bool {
        let (changed, status) = self.refresh_links();
        if changed && self.ticks > 0 {
            self.place_and_publish();
        }
        status
    }

    fn status(&self) -> Value {
        let wall = self.start.elapsed().as_secs_f64();
        let nd = self.steered.len();
        let steered: Vec<usize> = (0..nd)
            .filter(|&d| self.published.as_ref().is_some_and(|e| e[d].is_some()))
            .collect();
        let per_worker: Vec<Value> = (0..self.pool.len())
            .map(|w| {
                json!({
                    "worker": w,
                    "state": if self.pool.in_standby(w) { "standby" } else { "active" },
                    "wakes": self.pool.wakes[w],
                    "parks": self.pool.parks[w],
                    "standby_s": round3(self.pool.standby_s(w, wall)),
                })
            })
            .collect();
        let sites: Vec<Value> = self
            .topo
            .sites
            .iter()
            .zip(self.planner.sites())
            .map(|(s, st)| {
                json!({"name": s.name, "active": st.active, "waking": st.waking,
                       "granted": st.granted, "demand_pps": round3(st.demand_pps),
                       "event_hold": st.event_hold})
            })
            .collect();
        let standby_s: f64 = (0..self.pool.len())
            .map(|w| self.pool.standby_s(w, wall))
            .sum();
        let node = |n: usize| self.topo.nodes[n].0.as_str();
        let links: Vec<Value> = self
            .topo
            .links
            .iter()
            .enumerate()
            .map(|(l, k)| {
                json!({"a": node(k.ends[0]), "b": node(k.ends[1]),
                       "next_hop": k.next_hop,
                       "state": if self.down[l].is_some() { "down" } else { "up" },
                       "down_because": self.down[l],
                       "changed_unix_ms": self.link_changed_ms[l],
                       "carrier_of": self.link_carrier[l].map(|c| &self.inputs.carriers[c].what),
                       "placed_pps": round3(self.link_load.get(l).copied().unwrap_or(0.0)),
                       "capacity_pps": k.capacity_pps})
            })
            .collect();
        let via = |p: &path::Path| -> Value {
            let mut at = 0;
            let mut v = vec![node(0)];
            for &l in &p.links {
                at = self.topo.links[l].other(at);
                v.push(node(at));
            }
            json!({"via": v, "latency_us": p.latency_us})
        };
        let paths: Vec<Value> = steered
            .iter()
            .filter_map(|&d| {
                let p = self.paths.get(d)?.as_ref()?;
                let e = self.published.as_ref()?.get(d).copied().flatten()?;
                let site = self
                    .topo
                    .site_of(d)
                    .map(|s| self.topo.sites[s].name.as_str());
                Some(json!({
                    "dest": d,
                    "site": site,
                    "primary": via(&p.primary),
                    "ecmp": p.ecmp.iter().map(via).collect::<Vec<_>>(),
                    "backup": p.backup.as_ref().map(via),
                    "next_hops": e.hops().iter()
                        .map(|&h| self.nh_names.get(usize::from(h)).cloned())
                        .collect::<Vec<_>>(),
                }))
            })
            .collect();
        json!({
            "mode": self.mode.as_str(),
            "tick_ms": self.cfg.tick_ms,
            "ticks": self.ticks,
            "steered_destinations": steered,
            "steered": steered.len(),
            "publications": self.publications,
            "republished_after_overwrite": self.republished,
            "epoch": self.epoch,
            "measured_pps": round3(self.measured_pps),
            "predicted_pps": self.predicted_pps.map(round3),
            "workers": {
                "total": self.pool.len(),
                "active": self.pool.active(),
                "standby": self.pool.len() - self.pool.active(),
                "target": self.pool.target(),
                "wakes": self.pool.wakes.iter().sum::<u64>(),
                "parks": self.pool.parks.iter().sum::<u64>(),
                "standby_s": round3(standby_s),
                "per_worker": per_worker,
            },
            "prepositions": {
                "early": self.pool.early + self.planner.early,
                "late": self.pool.late + self.planner.late,
                "workers_early": self.pool.early,
                "workers_late": self.pool.late,
                "sites_early": self.planner.early,
                "sites_late": self.planner.late,
            },
            "sites": sites,
            "links": links,
            "links_down": self.down.iter().filter(|d| d.is_some()).count(),
            "link_changes": self.link_changes,
            "paths": paths,
            "tx_weights": self.weight_ports.iter().map(|w| json!({
                "port": w.name,
                "weights": w.want(),
                "set_by": if w.hold.current().is_some() { "ram" } else { "config" },
                "expected_mbps": w.demand.iter().map(|b| round3(b * 8.0 / 1e6)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "weight_publications": self.weight_publications,
        })
    }
}

/// How long the link watch waits for a notification before it looks at its stop flag
/// (a stop also ends the wait at once, through [`LinkEventsStop`]).
const WATCH_WAIT: Duration = Duration::from_secs(1);

/// Listens for the kernel's link notifications about `ifnames` and wakes the RAM
/// thread for each, so a lost carrier is routed around as soon as the kernel says so
/// rather than at the next carrier poll (`ram.link_poll_ms`). The poll stays: it is
/// what notices DPDK links, and whatever a notification could miss. Opened on the
/// calling thread, so it watches the namespace the ports were opened in. Without
/// rtnetlink (or on an error) the poll alone remains, and the status says so.
fn start_link_watch(
    ifnames: &[String],
    shared: &Arc<RamShared>,
    stop: &Arc<AtomicBool>,
) -> Option<(JoinHandle<()>, LinkEventsStop)> {
    use crate::port::netdev::{LinkEvents, ifindex};
    if ifnames.is_empty() {
        return None;
    }
    let set_how = |sh: &RamShared, how: String| {
        *sh.watch_how.lock().unwrap_or_else(|e| e.into_inner()) = how;
    };
    let poll_ms = shared.poll_ms;
    let mut ev = match LinkEvents::open() {
        Ok(ev) => ev,
        Err(e) => {
            tracing::warn!(
                "ram: cannot listen for link notifications ({e}): carriers are read every {poll_ms} ms"
            );
            set_how(
                shared,
                format!("poll every {poll_ms} ms (link notifications: {e})"),
            );
            return None;
        }
    };
    // An interface whose index cannot be read matches every notification.
    let idx: Option<Vec<u32>> = ifnames.iter().map(|n| ifindex(n).ok()).collect();
    set_how(
        shared,
        format!(
            "link notifications ({}) and a poll every {poll_ms} ms",
            ifnames.join(", ")
        ),
    );
    let (sh, st) = (shared.clone(), stop.clone());
    let stopper = ev.stopper();
    let spawned = std::thread::Builder::new()
        .name("steerd-linkwatch".into())
        .spawn(move || {
            while !st.load(Ordering::Acquire) {
                let mut hit = false;
                let r = ev.wait(WATCH_WAIT, |i| {
                    hit |= match (i, &idx) {
                        (Some(i), Some(idx)) => idx.contains(&i),
                        _ => true,
                    }
                });
                if let Err(e) = r {
                    tracing::warn!(
                        "ram: link notifications failed ({e}): carriers are read every {poll_ms} ms"
                    );
                    set_how(
                        &sh,
                        format!("poll every {poll_ms} ms (link notifications failed: {e})"),
                    );
                    return;
                }
                if hit {
                    sh.link_events.fetch_add(1, Ordering::Relaxed);
                    sh.wake();
                }
            }
        });
    match spawned {
        Ok(t) => Some((t, stopper)),
        Err(e) => {
            tracing::warn!("ram: cannot start the steerd-linkwatch thread: {e}");
            set_how(
                shared,
                format!("poll every {poll_ms} ms (no link watch thread: {e})"),
            );
            None
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl LiveRam {
    /// Starts the `steerd-ram` thread for a config with `[ram] live = true` (validated:
    /// predictive mode has a forecast). Publishes nothing before its first tick.
    pub fn start(cfg: &Config, inputs: LiveInputs) -> Result<LiveRam, String> {
        let rc = cfg
            .ram
            .clone()
            .ok_or("the live RAM needs a [ram] section")?;
        let topo = Topology::build(&rc).map_err(|(f, m)| format!("{f}: {m}"))?;
        if rc.mode == RamMode::Predictive && inputs.forecast.is_none() {
            return Err(
                "ram.mode: predictive needs the prediction engine ([tpe] enabled = true)".into(),
            );
        }
        let link_nh = steer::link_next_hops(cfg, &topo)?;
        let link_carrier = link_carriers(cfg, &topo, &inputs.carriers);
        // The kernel interfaces some link follows, and whether any link follows a
        // carrier at all (DPDK ports are only polled).
        let mut followed: Vec<String> = Vec::new();
        for c in link_carrier.iter().flatten() {
            if let Some(i) = &inputs.carriers[*c].ifname
                && !followed.contains(i)
            {
                followed.push(i.clone());
            }
        }
        let any_carrier = link_carrier.iter().any(Option::is_some);
        let shared = Arc::new(RamShared::new(
            topo.links
                .iter()
                .map(|k| {
                    (
                        topo.nodes[k.ends[0]].0.clone(),
                        topo.nodes[k.ends[1]].0.clone(),
                    )
                })
                .collect(),
            rc.link_poll_ms.min(rc.tick_ms),
        ));
        *shared.watch_how.lock().unwrap_or_else(|e| e.into_inner()) = if any_carrier {
            format!("poll every {} ms", shared.poll_ms)
        } else {
            "no link follows a port's carrier (ctl ram link only)".into()
        };
        let n_workers = inputs.run.standby.len();
        let peak: Vec<f64> = topo
            .sites
            .iter()
            .map(|s| f64::from(s.max_workers) * rc.worker_pps)
            .collect();
        let planner = Planner::new(&rc, &topo, rc.mode, &peak, &vec![0.0; topo.sites.len()]);
        let time_scale = if cfg.tpe.enabled {
            cfg.tpe.effective_time_scale()
        } else {
            1.0
        };
        let tick_s = rc.tick_ms as f64 / 1e3;
        let window = ((rc.measure_s / time_scale / tick_s).ceil() as usize).clamp(1, 3600);
        let n_tel = cfg.general.telemetry_destinations;
        let mut ram = Ram {
            mode: rc.mode,
            pool: LocalPool::new(&rc, rc.mode, n_workers),
            weights: PathWeights {
                latency: rc.latency_weight,
                cost: rc.cost_weight,
                congestion: rc.congestion_weight,
            },
            planner,
            link_nh,
            time_scale,
            tick_s,
            prev: vec![0; n_tel + 1],
            ring: vec![vec![0; n_tel + 1]; window],
            ticks: 0,
            published: None,
            steered: vec![false; topo.n_dest()],
            paths: vec![None; topo.n_dest()],
            publications: 0,
            republished: 0,
            epoch: 0,
            measured_pps: 0.0,
            predicted_pps: None,
            event_dests: Vec::new(),
            down: vec![None; topo.links.len()],
            link_load: vec![0.0; topo.links.len()],
            link_carrier,
            link_changes: 0,
            link_changed_ms: vec![None; topo.links.len()],
            carrier_back: vec![None; topo.links.len()],
            nh_names: cfg.next_hops.iter().map(|h| h.name.clone()).collect(),
            nh_port: cfg
                .next_hops
                .iter()
                .map(|h| cfg.ports.iter().position(|p| p.name == h.port))
                .collect(),
            weight_ports: weight_ports(cfg)
                .into_iter()
                .map(|p| WeightPort {
                    port: p,
                    name: cfg.ports[p].name.clone(),
                    configured: cfg.ports[p].tx_weights_array(),
                    hold: WeightHold::default(),
                    demand: [0.0; N_CLASSES],
                })
                .collect(),
            weight_publications: 0,
            prev_bytes: vec![0; topo.n_dest()],
            wire_bytes: vec![64.0 + WIRE_OVERHEAD as f64; topo.n_dest()],
            now: 0.0,
            shared: shared.clone(),
            start: Instant::now(),
            inputs,
            topo,
            cfg: rc,
        };
        ram.prev = ram.totals();
        ram.prev_bytes = ram.byte_totals();
        for (w, flag) in ram.inputs.run.standby.iter().enumerate() {
            flag.store(ram.pool.in_standby(w), Ordering::Relaxed);
        }
        ram.refresh_links();
        shared.set(ram.status());
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, st) = (shared.clone(), stop.clone());
        let tick = Duration::from_millis(ram.cfg.tick_ms);
        // Carriers are read more often than the RAM ticks, so a failed link is routed
        // around within the poll.
        let poll = Duration::from_millis(shared.poll_ms);
        tracing::info!(
            "ram: live, {} mode, {} site(s), {} destination id(s), {} worker(s), tick {} ms",
            ram.mode.as_str(),
            ram.topo.sites.len(),
            ram.topo.n_dest(),
            n_workers,
            ram.cfg.tick_ms
        );
        let thread = std::thread::Builder::new()
            .name("steerd-ram".into())
            .spawn(move || {
                let mut next = Instant::now() + tick;
                let mut next_poll = Instant::now() + poll;
                while !st.load(Ordering::Acquire) {
                    let now = Instant::now();
                    let kicked = sh.kick.swap(false, Ordering::AcqRel);
                    if now < next {
                        if (kicked || now >= next_poll) && ram.between_ticks() {
                            sh.set(ram.status());
                        }
                        if now >= next_poll {
                            next_poll = now + poll;
                        }
                        // A returned carrier's hold ends: read it then, not a poll later.
                        if let Some(t) = ram.hold_ends() {
                            next_poll = next_poll.min(t);
                        }
                        std::thread::park_timeout(
                            next.min(next_poll).saturating_duration_since(now),
                        );
                        continue;
                    }
                    next_poll = now + poll;
                    next += tick;
                    if next < now {
                        next = now + tick; // fell behind: skip, do not burst
                    }
                    ram.tick();
                    sh.set(ram.status());
                }
                // Leave no worker in standby behind.
                for f in ram.inputs.run.standby.iter() {
                    f.store(false, Ordering::Relaxed);
                }
                sh.set(ram.status());
                sh.running.store(false, Ordering::Release);
            })
            .map_err(|e| format!("cannot start the steerd-ram thread: {e}"))?;
        let _ = shared.thread.set(thread.thread().clone());
        let watch = start_link_watch(&followed, &shared, &stop);
        Ok(LiveRam {
            shared,
            stop,
            thread: Some(thread),
            watch,
        })
    }

    /// The readers' view (ctl status).
    pub fn shared(&self) -> Arc<RamShared> {
        self.shared.clone()
    }

    /// Stops the thread; returns the final `ram` object of the summary.
    pub fn finish(mut self) -> Value {
        self.stop_thread();
        self.shared.status()
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            if t.join().is_err() {
                tracing::error!("ram: the steerd-ram thread panicked");
            }
        }
        if let Some((t, stopper)) = self.watch.take() {
            stopper.stop();
            if t.join().is_err() {
                tracing::error!("ram: the steerd-linkwatch thread panicked");
            }
        }
    }
}

impl Drop for LiveRam {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// One line on a validated config's `[ram]` section (`steerd check`).
pub fn check(cfg: &Config, rc: &RamConfig) -> String {
    let (sites, nd) = match Topology::build(rc) {
        Ok(t) => (t.sites.len(), t.destinations_served()),
        Err((f, m)) => return format!("invalid: {f}: {m}"),
    };
    let what = format!(
        "{} mode, {sites} site(s), {} zone(s), {} region(s), {} link(s), {nd} destination(s)",
        rc.mode.as_str(),
        rc.zones.len(),
        rc.regions.len(),
        rc.links.len()
    );
    if !rc.live {
        return format!("{what}; scenario runs only (live = false)");
    }
    let workers = match cfg.general.workers {
        0 => "one per core".to_string(),
        n => n.to_string(),
    };
    let wp = weight_ports(cfg);
    let weights = if wp.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = wp.iter().map(|&p| cfg.ports[p].name.as_str()).collect();
        format!(
            ", sets tx_weights on {} (floor {})",
            names.join(", "),
            rc.tx_weight_floor
        )
    };
    format!(
        "{what}; live: tick {} ms, owns the steering table{weights}, {workers} worker(s) at {} pps each (headroom {}, at least {} active), standby park {} µs, carriers read every {} ms",
        rc.tick_ms,
        Topology::local_worker_pps(rc),
        rc.headroom,
        rc.min_workers,
        rc.standby_park_us,
        rc.link_poll_ms.min(rc.tick_ms)
    )
}

#[cfg(test)]
mod tests {
    use super::super::topology::tests::small;
    use super::*;

    fn pool(mode: RamMode, n: usize) -> LocalPool {
        let mut c = small();
        c.local_worker_pps = Some(1000.0);
        c.headroom = 1.0;
        c.release_hold_s = 5.0;
        c.min_workers = 1;
        LocalPool::new(&c, mode, n)
    }

    #[test]
    fn reactive_wakes_on_threshold_and_parks_after_the_hold() {
        let mut p = pool(RamMode::Reactive, 4);
        // Cold start: the measured rate is zero, one worker active.
        assert_eq!(p.active(), 1);
        assert!(p.in_standby(3) && !p.in_standby(0));
        assert_eq!(p.parks, vec![0, 1, 1, 1]);
        // Within the band (up 0.8 of one worker's 1000 pps): nothing changes.
        assert_eq!(p.step(0.0, 0.0, 700.0, None), (0, 0));
        // Above the threshold: woken at once, late (the traffic was there first).
        assert_eq!(p.step(1.0, 1.0, 2500.0, None), (2, 0));
        assert_eq!(p.active(), 3);
        assert_eq!((p.early, p.late), (0, 2));
        assert_eq!(p.wakes, vec![0, 1, 1, 0]);
        assert!((p.standby_s(1, 1.0) - 1.0).abs() < 1e-9);
        // 500 pps needs one worker: parked only after 5 s below.
        for t in 2..7 {
            assert_eq!(p.step(f64::from(t), f64::from(t), 500.0, None), (0, 0));
        }
        assert_eq!(p.step(7.0, 7.0, 500.0, None), (0, 2));
        assert_eq!(p.active(), 1);
        assert_eq!(p.parks, vec![0, 2, 2, 1]);
        assert!(
            (p.standby_s(1, 9.0) - 3.0).abs() < 1e-9,
            "1 s, then 2 s so far"
        );
        assert!(
            (p.standby_s(3, 9.0) - 9.0).abs() < 1e-9,
            "in standby throughout"
        );
    }

    #[test]
    fn predictive_wakes_ahead_static_keeps_all() {
        let mut p = pool(RamMode::Predictive, 4);
        for t in 0..=5 {
            p.step(f64::from(t), f64::from(t), 100.0, Some(100.0));
        }
        assert_eq!(p.active(), 1);
        // The forecast says 3000 pps: woken before the measured rate gets there.
        assert_eq!(p.step(6.0, 6.0, 100.0, Some(3000.0)), (2, 0));
        assert_eq!((p.early, p.late), (2, 0));
        let mut s = pool(RamMode::Static, 4);
        for t in 0..20 {
            assert_eq!(s.step(f64::from(t), f64::from(t), 0.0, None), (0, 0));
        }
        assert_eq!(s.active(), 4);
        assert_eq!(s.parks, vec![0; 4]);
    }

    #[test]
    fn the_stats_line_names_the_links_that_are_down() {
        let mut sh = RamShared::new(Vec::new(), 100);
        sh.status = Mutex::new(json!({
            "ticks": 3, "mode": "reactive", "steered": 1, "publications": 2,
            "workers": {"active": 1, "total": 2, "target": 1, "wakes": 0, "parks": 1},
            "measured_pps": 10.0, "predicted_pps": null, "sites": [],
            "links": [
                {"a": "edge", "b": "core-a", "down_because": "no carrier"},
                {"a": "edge", "b": "core-b", "down_because": null},
            ],
        }));
        let line = sh.line();
        assert!(
            line.contains("link edge – core-a DOWN (no carrier)"),
            "{line}"
        );
        assert!(!line.contains("core-b"), "{line}");
    }

    #[test]
    fn the_link_watch_is_read_when_asked_not_at_the_last_tick() {
        let sh = RamShared::new(Vec::new(), 100);
        // What the RAM thread published at its last tick, before the watch started.
        sh.set(json!({"link_watch": {"how": "poll every 100 ms", "events": 0}}));
        *sh.watch_how.lock().unwrap() = "link notifications (x) and a poll every 100 ms".into();
        sh.link_events.fetch_add(2, Ordering::Relaxed);
        let v = sh.status();
        assert_eq!(
            v["link_watch"],
            json!({"how": "link notifications (x) and a poll every 100 ms", "poll_ms": 100, "events": 2})
        );
        assert_eq!(sh.links_view()["link_watch"], v["link_watch"]);
    }

    #[test]
    fn links_are_found_by_their_ends_in_either_order_or_by_index() {
        let ends = |a: &str, b: &str| (a.to_string(), b.to_string());
        let sh = RamShared::new(
            vec![ends("edge", "r1"), ends("edge", "fra"), ends("fra", "edge")],
            100,
        );
        sh.running.store(false, Ordering::Release);
        let by = |a: &str, b: &str| sh.find_link(&LinkRef::Ends(a.into(), b.into()));
        assert_eq!(by("r1", "edge"), Ok(0));
        assert!(matches!(by("edge", "fra"), Err(LinkError::Ambiguous(m)) if m.contains("[1, 2]")));
        assert!(
            matches!(by("edge", "r2"), Err(LinkError::Unknown(m)) if m.contains("0: edge – r1"))
        );
        assert_eq!(sh.find_link(&LinkRef::Index(2)), Ok(2));
        assert!(matches!(
            sh.find_link(&LinkRef::Index(3)),
            Err(LinkError::Unknown(_))
        ));
        // Setting one: the flag flips, and says whether it changed (the thread is
        // stopped, so the answer says it was not applied).
        let v = sh.set_link(&LinkRef::Index(0), false).unwrap();
        assert!(sh.admin_down[0].load(Ordering::Acquire));
        assert_eq!(
            (v["changed"].as_bool(), v["applied"].as_bool()),
            (Some(true), Some(false))
        );
        let v = sh.set_link(&LinkRef::Index(0), false).unwrap();
        assert_eq!(v["changed"], false);
    }

    #[test]
    fn workers_for_is_clamped() {
        assert_eq!(workers_for(0.0, 1.25, 100.0, 1, 4), 1);
        assert_eq!(workers_for(250.0, 1.25, 100.0, 1, 4), 4);
        assert_eq!(workers_for(170.0, 1.0, 100.0, 1, 4), 2);
        assert_eq!(workers_for(f64::INFINITY, 1.0, 100.0, 1, 4), 4);
        assert_eq!(workers_for(0.0, 1.0, 100.0, 3, 2), 2);
    }
}
