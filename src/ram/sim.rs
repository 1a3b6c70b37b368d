//! `steerd run --scenario NAME --ram MODE`: the closed loop SAFE → TPE → RAM → SAFE on a
//! generated scenario, in compressed time, measured.
//!
//! What is real and what is modelled:
//! - **Real**: the scenario generator ([`crate::tpe::scenario`]); the edge marker
//!   ([`crate::ipm`]) putting steering headers with their tags on the flows of
//!   destinations that have a steering entry; the SAFE pipeline
//!   ([`process_burst`]) forwarding every packet with the tables the RAM publishes
//!   through a [`TableHandle`] (tag checks, steering lookup, LPM, rewrite); the
//!   per-destination telemetry the workers count; the TPE ([`Engine`], the shipped ONNX
//!   model with the scenario's event calendar) stepping on that telemetry every bucket;
//!   the RAM's path computation, planner and table publication.
//! - **Modelled**: what is downstream of this appliance. Each packet leaving the
//!   pipeline follows its path (the RAM's path for steered packets, the least-latency
//!   path behind the LPM next hop for routed ones) over links with a capacity, into its
//!   data center, whose forwarding engines are a pool of workers that each serve
//!   `worker_pps`, with a queue of `queue_packets`; a parked worker woken by the RAM
//!   carries traffic `wake_s` later. Link overflow and queue overflow are the drops;
//!   queueing delay (in wall time of the compressed run) plus the pipeline's measured
//!   time per packet is the latency.
//!
//! Time: one control tick is one logical second; `time_scale` logical seconds pass per
//! wall second (paced, unless `fast`). The TPE is warmed with eight days of the scenario's
//! history (as a running system would have); static mode provisions for the last week's peak.
//!
//! A destination is *in a surge* during a bucket when its traffic exceeds 1.5× its
//! seasonal level (the scenario's noise-free diurnal/weekly curve); drops and packets of
//! surge buckets are counted apart, split into scheduled events (in the calendar the TPE
//! is given) and flash crowds (in nobody's calendar).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::path::{self, DestPath, Path, PathWeights};
use super::plan::{Demand, Planner};
use super::topology::{RamConfig, RamMode, Topology};
use crate::config::Config;
use crate::ipm::{MarkParams, Marker, MarkerConfig};
use crate::port::{Buf, PktBuf, Pool};
use crate::safe::counters::Local;
use crate::safe::pipeline::{BURST, BurstCtx, Mode, Scratch, process_burst};
use crate::safe::tables::{TableHandle, TableReader, Tables};
use crate::safe::tx::TxStage;
use crate::telemetry::{BUCKET_LOGICAL_MS, Bucket, DestCounters};
use crate::tpe::engine::{Engine, EngineConfig};
use crate::tpe::scenario::{DAY, Scenario, ScenarioClock, ScenarioConfig, Series};

/// The config `steerd run --scenario` uses without `--config`.
pub const SURGE_TOML: &str = include_str!("../../conf/ram-surge.toml");

/// Flows per destination.
const FLOWS: usize = 8;
/// Buckets of history the TPE starts with (its features look a week back) and the
/// static mode takes its peak from.
pub const WARMUP_BUCKETS: usize = 8 * DAY as usize;
/// A destination is in a surge above this multiple of its seasonal level.
const SURGE_FACTOR: f64 = 1.5;

/// Options of a scenario run.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Scenario preset name.
    pub scenario: String,
    /// RAM mode (None: the config's).
    pub mode: Option<RamMode>,
    /// Wall seconds at the config's time scale (the logical span is `duration × scale`).
    pub duration_s: f64,
    /// Do not pace: run as fast as the machine goes (same result, less wall time).
    pub fast: bool,
    /// Scenario seed.
    pub seed: u64,
    /// Progress lines on stderr.
    pub verbose: bool,
    /// Links taken out of the run for a while (`--fail-link`).
    pub fail_links: Vec<LinkFailure>,
    /// Where the predictive RAM's forecast comes from (`--forecast`; a diagnostic).
    pub forecast: ForecastSource,
}

/// The forecast a scenario run hands the RAM (`--forecast`). `model` is the appliance;
/// the others are diagnostics that ask how much a better forecast could buy: they read
/// the scenario generator instead of the TPE, which no deployment can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForecastSource {
    /// The TPE's predictions (the shipped ONNX model, or its fallback).
    #[default]
    Model,
    /// The scenario's noise-free rate at each horizon's target bucket, flash crowds that
    /// have not started included ([`ScenarioClock::expected`]); per-bucket noise and
    /// single-bucket spikes are still unknown to it.
    Oracle,
    /// The noise-free rate as known at the forecast's time: the present state exactly,
    /// nothing that starts later ([`ScenarioClock::expected_known_at`]).
    OracleCausal,
    /// The generated traffic itself at each horizon's target bucket
    /// ([`ScenarioClock::packets`]): with the per-bucket noise and spikes, which no
    /// forecast of the rate has. It asks what the RAM does with perfect information.
    Clairvoyant,
}

impl ForecastSource {
    /// Its name in `--forecast` and in the summary's `tpe_source`.
    pub fn name(self) -> &'static str {
        match self {
            ForecastSource::Model => "model",
            ForecastSource::Oracle => "oracle",
            ForecastSource::OracleCausal => "oracle_causal",
            ForecastSource::Clairvoyant => "clairvoyant",
        }
    }
}

impl std::str::FromStr for ForecastSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "model" => Ok(ForecastSource::Model),
            "oracle" => Ok(ForecastSource::Oracle),
            "oracle-causal" | "oracle_causal" => Ok(ForecastSource::OracleCausal),
            "clairvoyant" => Ok(ForecastSource::Clairvoyant),
            _ => Err(format!(
                "--forecast {s:?}: one of model, oracle, oracle-causal, clairvoyant"
            )),
        }
    }
}

/// A topology link that fails during a scenario run: `A,B@MIN[+DUR]` on the command line
/// (`--fail-link core-a,fra1@120+30`: the link between `core-a` and `fra1` fails two
/// logical hours into the run, for 30 minutes; without `+DUR`, until the end).
/// Packets on it are dropped (`link_down`) until the RAM has placed their destinations
/// elsewhere, which it does at the end of the tick (logical second) the failure starts
/// in; routed traffic keeps its routes.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkFailure {
    /// One end (node name).
    pub a: String,
    /// The other end.
    pub b: String,
    /// Logical minutes after the run's start.
    pub at_min: f64,
    /// Logical minutes it lasts (None: to the end).
    pub for_min: Option<f64>,
}

impl std::str::FromStr for LinkFailure {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("{s:?}: {why} (expected A,B@MIN or A,B@MIN+DUR, e.g. core-a,fra1@120+30)")
        };
        let (ends, when) = s.split_once('@').ok_or_else(|| bad("no @"))?;
        let (a, b) = ends
            .split_once(',')
            .ok_or_else(|| bad("the link is its two ends, A,B"))?;
        let (at, dur) = match when.split_once('+') {
            Some((at, d)) => (at, Some(d)),
            None => (when, None),
        };
        let num = |x: &str, what: &str| -> Result<f64, String> {
            x.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| bad(&format!("{what} {x:?} is not a number of minutes ≥ 0")))
        };
        let for_min = dur.map(|d| num(d, "the duration")).transpose()?;
        if for_min == Some(0.0) {
            return Err(bad("a failure lasts more than 0 minutes"));
        }
        Ok(LinkFailure {
            a: a.trim().to_string(),
            b: b.trim().to_string(),
            at_min: num(at, "the start")?,
            for_min,
        })
    }
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            scenario: "surge".into(),
            mode: None,
            duration_s: 60.0,
            fast: false,
            seed: 2026,
            verbose: false,
            fail_links: Vec::new(),
            forecast: ForecastSource::Model,
        }
    }
}

/// Loads the config of a scenario run: `path`, else the embedded `conf/ram-surge.toml`.
pub fn load_config(path: Option<&std::path::Path>) -> Result<Config, String> {
    let cfg = match path {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?,
        None => Config::from_toml(
            SURGE_TOML,
            "<embedded conf/ram-surge.toml>",
            std::path::Path::new("."),
            true,
        )
        .map_err(|e| e.to_string())?,
    };
    if cfg.ram.is_none() {
        return Err(format!(
            "{}: a scenario run needs a [ram] section (see conf/ram-surge.toml)",
            cfg.source.name
        ));
    }
    Ok(cfg)
}

/// Per-bucket record of the run (the timeline).
#[derive(Debug, Clone, Default)]
struct BucketRec {
    actual: f64,
    predicted: f64,
    capacity: f64,
    workers: u32,
    drops: u64,
    surge: bool,
}

/// One destination's surge: from the first bucket above the surge level to the last.
#[derive(Debug, Clone)]
struct Episode {
    dest: usize,
    start: usize,
    end: usize,
    event: bool,
    peak_ratio: f64,
    packets: u64,
    drops: u64,
    /// The forecast ahead at the start over the actual rate of the first bucket.
    forecast_ratio: f64,
}

struct Counts {
    /// Per destination: surge drops of the current tick (folded into its episode).
    surge_tick_drops: Vec<u64>,
    packets: u64,
    surge_packets: u64,
    drops_queue: u64,
    drops_link: u64,
    /// On a failed link (`--fail-link`), per link.
    drops_link_down: Vec<u64>,
    drops_pipeline: u64,
    surge_drops: u64,
    surge_drops_event: u64,
    surge_drops_flash: u64,
    delivered: u64,
    steered_out: u64,
    routed_out: u64,
}

impl Counts {
    /// Packets dropped so far, for every reason.
    fn drops(&self) -> u64 {
        self.drops_queue
            + self.drops_link
            + self.drops_link_down.iter().sum::<u64>()
            + self.drops_pipeline
    }
}

/// A destination's flows: plain frames and, per epoch, the marked ones.
struct FlowFrames {
    plain: Vec<Vec<u8>>,
    marked: Vec<Vec<u8>>,
    marked_epoch: u32,
}

fn frame(d: usize, f: usize) -> Vec<u8> {
    let mut v = vec![0u8; 64];
    v[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x10]);
    v[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0xee, 0x01]);
    v[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut v[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&50u16.to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[10, 0, (f % 256) as u8, 2]);
    ip[16..20].copy_from_slice(&[198, 18, d as u8, 1 + f as u8]);
    let c = !crate::wire::checksum::data(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    v[34..36].copy_from_slice(&(10_000 + f as u16).to_be_bytes());
    v[36..38].copy_from_slice(&5001u16.to_be_bytes());
    v[38..40].copy_from_slice(&30u16.to_be_bytes());
    v
}

/// The destination of a frame leaving the pipeline (steerd's test addresses 198.18.D.x,
/// behind the steering header or not).
fn frame_dest(b: &[u8]) -> Option<usize> {
    let et = u16::from_be_bytes([*b.get(12)?, *b.get(13)?]);
    let l3 = if et == 0x894f { 14 + 32 } else { 14 };
    let ip = b.get(l3..l3 + 20)?;
    (ip[16] == 198 && ip[17] == 18).then_some(ip[18] as usize)
}

struct Edge {
    handle: Arc<TableHandle>,
    reader: TableReader,
    /// Steering next hop (route-table index) per edge link.
    link_nh: Vec<Option<u16>>,
    /// Edge link per next hop (by the next hop's port).
    nh_link: Vec<Option<usize>>,
    /// Next hop by destination MAC.
    mac_nh: Vec<([u8; 6], u16)>,
    /// Next hops that steered traffic takes.
    steer_nh: Vec<bool>,
    /// Transmit class cap per destination (`ram.destinations[].max_priority`).
    priority: Vec<u8>,
    epoch: u32,
    publications: u64,
}

impl Edge {
    fn build(cfg: &Config, topo: &Topology) -> Result<Edge, String> {
        let tables = crate::app::build_tables(cfg, &[], None).map_err(|e| e.to_string())?;
        let nh_port: Vec<u16> = tables
            .routes
            .next_hops
            .hops()
            .iter()
            .map(|h| h.port)
            .collect();
        let mac_nh = tables
            .routes
            .next_hops
            .hops()
            .iter()
            .enumerate()
            .map(|(i, h)| (h.dst_mac, i as u16))
            .collect();
        let link_nh = super::steer::link_next_hops(cfg, topo)?;
        let mut nh_link = vec![None; nh_port.len()];
        let mut steer_nh = vec![false; nh_port.len()];
        for (l, nh) in link_nh.iter().enumerate() {
            if let Some(nh) = *nh {
                steer_nh[nh as usize] = true;
                let port = nh_port[nh as usize];
                for (i, p) in nh_port.iter().enumerate() {
                    if *p == port {
                        nh_link[i] = Some(l);
                    }
                }
            }
        }
        let epoch = tables.steering.epoch;
        let handle = TableHandle::new(tables, 1);
        let reader = handle.reader(0);
        Ok(Edge {
            handle,
            reader,
            link_nh,
            nh_link,
            mac_nh,
            steer_nh,
            priority: topo.dest_priority.clone(),
            epoch,
            publications: 0,
        })
    }

    /// Publishes a steering table with an entry for every steered destination, on the
    /// first link of its path.
    fn publish(&mut self, steered: &[bool], paths: &[Option<DestPath>]) {
        let cur = self.handle.load();
        self.epoch = self.epoch.wrapping_add(1);
        let entries = super::steer::entries(&self.link_nh, steered, paths, &self.priority);
        let st = super::steer::steering_table(&cur.steering, self.epoch, &entries);
        let t: Tables = cur.with_steering(st);
        drop(cur);
        self.handle.publish(t);
        self.publications += 1;
    }

    fn nh_of_mac(&self, mac: &[u8]) -> Option<u16> {
        self.mac_nh
            .iter()
            .find(|(m, _)| m[..] == *mac)
            .map(|(_, n)| *n)
    }
}

fn scale_bucket(series: &Series, b: usize, scale: f64, origin_ms: u64) -> Bucket {
    let packets: Vec<u64> = (0..series.n_dest)
        .map(|d| (f64::from(series.buckets[d][b]) * scale).round() as u64)
        .collect();
    let bytes = packets.iter().map(|p| p * 64).collect();
    Bucket::per_dest(
        b as u64,
        origin_ms + b as u64 * BUCKET_LOGICAL_MS,
        packets,
        bytes,
    )
}

/// Runs a scenario and returns the summary (the `--json` object).
pub fn run(cfg: &Config, opts: &SimOptions) -> Result<Value, String> {
    let rc: &RamConfig = cfg
        .ram
        .as_ref()
        .ok_or("a scenario run needs a [ram] section")?;
    let topo = Topology::build(rc).map_err(|(f, m)| format!("{f}: {m}"))?;
    let mode = opts.mode.unwrap_or(rc.mode);
    if opts.forecast != ForecastSource::Model && mode != RamMode::Predictive {
        return Err(format!(
            "--forecast {}: only the predictive RAM reads a forecast (this run is {})",
            opts.forecast.name(),
            mode.as_str()
        ));
    }
    let time_scale = cfg.tpe.effective_time_scale();
    if !(opts.duration_s.is_finite() && opts.duration_s > 0.0) {
        return Err("--duration must be a positive number of seconds".into());
    }
    let ticks = (opts.duration_s * time_scale).ceil() as usize;
    // Link failures: (link, first tick, end tick).
    let failures: Vec<(usize, usize, usize)> = opts
        .fail_links
        .iter()
        .map(|f| {
            let l = match topo.links_between(&f.a, &f.b)[..] {
                [l] => l,
                [] => {
                    return Err(format!(
                        "--fail-link {},{}: no link between them in [[ram.links]]",
                        f.a, f.b
                    ));
                }
                ref several => {
                    return Err(format!(
                        "--fail-link {},{}: {} links between them (ram.links{several:?}); \
                         a scenario run fails links by their ends, so they must be unique",
                        f.a,
                        f.b,
                        several.len()
                    ));
                }
            };
            let from = (f.at_min * 60.0).round() as usize;
            // A failure the run never reaches would pass silently as "no effect".
            if from >= ticks {
                return Err(format!(
                    "--fail-link {},{}@{}: the run ends at minute {:.1} of logical time \
                     (--duration {} s × tpe.time_scale {time_scale}); fail the link earlier or run longer",
                    f.a,
                    f.b,
                    f.at_min,
                    ticks as f64 / 60.0,
                    opts.duration_s
                ));
            }
            let to = f
                .for_min
                .map_or(usize::MAX, |d| from + (d * 60.0).round() as usize);
            Ok((l, from, to))
        })
        .collect::<Result<_, String>>()?;
    let nd = topo.n_dest();
    if nd == 0 || nd > 256 {
        return Err("ram.destinations: a scenario run needs 1..=256 destination ids".into());
    }
    let sc = ScenarioConfig::preset(&opts.scenario, nd).ok_or_else(|| {
        format!(
            "unknown scenario {:?} (one of {})",
            opts.scenario,
            crate::tpe::scenario::PRESETS.join(", ")
        )
    })?;
    let run_buckets = ticks.div_ceil(60);
    let series = Scenario::generate(&sc, opts.seed, WARMUP_BUCKETS + run_buckets + 2);
    let clock = ScenarioClock::new(sc.clone(), opts.seed);
    let scale = rc.packet_scale;

    // TPE: the shipped model, the scenario's calendar, warmed with its history.
    let mut ec: EngineConfig = crate::tpe::live::engine_config(cfg);
    ec.n_dest = nd;
    ec.n_instances = 1;
    ec.events = series.events.clone();
    let mut engine = Engine::new(ec).map_err(|e| format!("tpe: {e}"))?;
    let mut latest = Arc::new(crate::tpe::Predictions::empty(nd));
    // `--forecast oracle*|clairvoyant`: the engine still runs (same work, same telemetry
    // path), but what the RAM reads is the scenario's own rate for each horizon's target
    // bucket, in the engine's units (packets per bucket at the packet scale); the
    // clairvoyant's is the generated bucket itself (`ScenarioClock::packets`, what
    // `series` holds).
    let overlay = |p: Arc<crate::tpe::Predictions>| -> Arc<crate::tpe::Predictions> {
        if opts.forecast == ForecastSource::Model {
            return p;
        }
        let now = p.bucket_index;
        let mut o = (*p).clone();
        for (d, v) in o.per_dest.iter_mut().enumerate() {
            for (k, h) in crate::tpe::HORIZONS.iter().enumerate() {
                let t = now + u64::from(h.buckets);
                let e = match opts.forecast {
                    ForecastSource::OracleCausal => clock.expected_known_at(d, t, now),
                    ForecastSource::Clairvoyant => f64::from(clock.packets(d, t)),
                    _ => clock.expected(d, t),
                };
                v[k] = (e * scale) as f32;
            }
        }
        Arc::new(o)
    };
    for b in 0..WARMUP_BUCKETS {
        latest = overlay(engine.step(&scale_bucket(&series, b, scale, series.origin_unix_ms)));
    }
    let model_source = match opts.forecast {
        ForecastSource::Model => latest.source.name(),
        f => f.name(),
    };

    // History per site: peak (static mode) and the last bucket (where the others start).
    let n_sites = topo.sites.len();
    let site_rate = |b: usize| -> Vec<f64> {
        let mut v = vec![0.0; n_sites];
        for d in 0..nd {
            if let Some(s) = topo.site_of(d) {
                v[s] += f64::from(series.buckets[d][b]) / 60.0;
            }
        }
        v
    };
    let mut peak = vec![0.0f64; n_sites];
    for b in WARMUP_BUCKETS - 7 * DAY as usize..WARMUP_BUCKETS {
        for (p, r) in peak.iter_mut().zip(site_rate(b)) {
            *p = p.max(r);
        }
    }
    let start = site_rate(WARMUP_BUCKETS - 1);
    let mut planner = Planner::new(rc, &topo, mode, &peak, &start);

    let weights = PathWeights {
        latency: rc.latency_weight,
        cost: rc.cost_weight,
        congestion: rc.congestion_weight,
    };
    let mut edge = Edge::build(cfg, &topo)?;
    // Routed traffic: the least-latency path behind the edge link it leaves on.
    let static_paths: Vec<Vec<Option<Path>>> = (0..topo.links.len())
        .map(|l| {
            (0..n_sites)
                .map(|s| {
                    if topo.links[l].ends.contains(&0) {
                        path::static_path(&topo, l, s)
                    } else {
                        None
                    }
                })
                .collect()
        })
        .collect();

    // Frames.
    let mut flows: Vec<FlowFrames> = (0..nd)
        .map(|d| FlowFrames {
            plain: (0..FLOWS).map(|f| frame(d, f)).collect(),
            marked: Vec::new(),
            marked_epoch: u32::MAX,
        })
        .collect();
    // The edge marker (the IPM library): explicit marking with the destination and
    // epoch of the current snapshot, cached per flow and epoch.
    let mut mcfg = MarkerConfig::new(Vec::new(), edge.reader.get().steering.keys.current);
    mcfg.flow_capacity = 1024;
    let mut marker = Marker::new(mcfg)?;
    let app_class = 1u8;
    let priority = 2u8;

    let mut pool = Pool::new(4 * BURST);
    let mut pkts: Vec<PktBuf> = Vec::with_capacity(BURST);
    let n_ports = cfg.ports.len();
    let mut stages: Vec<TxStage<PktBuf>> = (0..n_ports).map(|_| TxStage::new(BURST)).collect();
    let mut scratch = Scratch::default();
    let mut local = Local::default();
    let telemetry = DestCounters::new(nd, 4);
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 600_000_000_000, 2).map_err(|e| e.to_string())?;
    let tick_wall_ns = 1e9 / time_scale;

    let mut c = Counts {
        surge_tick_drops: vec![0; nd],
        packets: 0,
        surge_packets: 0,
        drops_queue: 0,
        drops_link: 0,
        drops_link_down: vec![0; topo.links.len()],
        drops_pipeline: 0,
        surge_drops: 0,
        surge_drops_event: 0,
        surge_drops_flash: 0,
        delivered: 0,
        steered_out: 0,
        routed_out: 0,
    };
    // Predictive: the trend nowcast per destination, and per destination whether an
    // announced event is running or due (`event_headroom`; its site keeps capacity for
    // `release_hold_s`).
    let mut nowcast = vec![0.0f64; nd];
    let mut window = Vec::with_capacity(rc.measure_s.round().max(1.0) as usize);
    let mut ev_dests = vec![false; nd];
    let mut acc = vec![0.0f64; nd];
    let mut flow_rr = vec![0usize; nd];
    let mut link_load = vec![0u64; topo.links.len()];
    let link_cap: Vec<f64> = topo.links.iter().map(|l| l.capacity_pps * scale).collect();
    let mut site_arr = vec![vec![0u64; nd]; n_sites];
    let mut queue = vec![0.0f64; n_sites];
    let queue_max = rc.queue_packets as f64 * scale;
    let measure = rc.measure_s.round().max(1.0) as usize;
    let mut ring = vec![vec![0u64; nd]; measure];
    let mut tel_prev = vec![0u64; nd];
    let mut bucket_counts = vec![0u64; nd];
    let mut timeline: Vec<BucketRec> = Vec::with_capacity(run_buckets);
    let mut rec = BucketRec::default();
    let mut worker_seconds = 0.0f64;
    let mut site_ws = vec![0.0f64; n_sites];
    let mut site_peak = vec![0u32; n_sites];
    let mut site_drops = vec![0u64; n_sites];
    // Forecast per destination (scenario packets per logical second) and, for the
    // timeline, what was predicted for each future bucket.
    let lead_h: Vec<usize> = crate::tpe::HORIZONS
        .iter()
        .enumerate()
        .filter(|(i, h)| *i == 0 || f64::from(h.buckets) * 60.0 <= rc.lead_s + 60.0)
        .map(|(i, _)| i)
        .collect();
    let forecast_of = |p: &crate::tpe::Predictions| -> Vec<f64> {
        (0..nd)
            .map(|d| {
                lead_h
                    .iter()
                    .map(|&h| f64::from(p.per_dest.get(d).map_or(0.0, |x| x[h])))
                    .fold(0.0, f64::max)
                    / 60.0
                    / scale
            })
            .collect()
    };
    // Forecasts still ahead: the one made at bucket t covers up to t + 5, so the RAM
    // provisions for the largest of the last five (each one's target is still to come).
    let keep = crate::tpe::HORIZONS[0].buckets as usize;
    let mut recent: std::collections::VecDeque<Vec<f64>> = std::collections::VecDeque::new();
    recent.push_back(forecast_of(&latest));
    let ahead = |recent: &std::collections::VecDeque<Vec<f64>>| -> Vec<f64> {
        (0..nd)
            .map(|d| recent.iter().map(|f| f[d]).fold(0.0, f64::max))
            .collect()
    };
    let mut model_ahead = ahead(&recent);
    // Scheduled events the calendar announces within the lead time (plus the wake
    // time): the measured rate times the calendar's rise from now to then.
    let look = ((rc.lead_s + rc.wake_s) / 60.0).ceil() as u64;
    let calendar_rise = |d: usize, b: u64| -> f64 {
        let now = f64::from(series.events.factor(d, b)).max(1e-3);
        (b..=b + look)
            .map(|t| f64::from(series.events.factor(d, t)) / now)
            .fold(1.0, f64::max)
    };
    let mut rise = vec![1.0f64; nd];
    // Per destination: the 5-minute forecasts waiting for their bucket, and the rolling
    // mean absolute error of those already scored (scenario packets per second).
    let mut pending5: std::collections::VecDeque<Vec<f64>> = std::collections::VecDeque::new();
    let mut mae5 = vec![0.0f64; nd];
    let mut forecast: Vec<f64> = model_ahead.clone();
    let mut predicted_for: std::collections::VecDeque<f64> = std::collections::VecDeque::new();
    let five = crate::tpe::HORIZONS[0].buckets as usize;
    // The forecast made after the last warm-up bucket is for run bucket five − 1.
    for _ in 0..five - 1 {
        predicted_for.push_back(f64::NAN);
    }
    predicted_for
        .push_back(latest.per_dest.iter().map(|x| f64::from(x[0])).sum::<f64>() / 60.0 / scale);

    // Initial placement and publication.
    let mut measured = vec![0.0f64; nd];
    let zero_arr = vec![0.0f64; n_sites];
    planner.step(
        0.0,
        Demand {
            measured: &start_dest_rates(&series, WARMUP_BUCKETS - 1, nd),
            forecast: (mode == RamMode::Predictive).then_some(&forecast[..]),
            site_arrivals: &zero_arr,
            event_dests: &[],
        },
    );
    let mut steered_now: Vec<bool> = (0..nd).map(|d| planner.steered(d)).collect();
    // Links failed at this tick, and what the RAM has placed around.
    let mut link_down = vec![false; topo.links.len()];
    let mut placed_down = link_down.clone();
    let (mut paths, _) = path::place(&topo, &weights, planner.expected(), &placed_down);
    edge.publish(&steered_now, &paths);

    let t0 = Instant::now();
    let mut pipeline_ns = 0u128;
    let mut pipeline_pkts = 0u64;
    let mut lagged = 0u64;
    let mut surge_now = vec![false; nd];
    let mut event_now = vec![false; nd];
    let mut episodes: Vec<Episode> = Vec::new();
    let mut open_ep: Vec<Option<usize>> = vec![None; nd];
    // One burst through the pipeline, timed, then its frames downstream.
    macro_rules! flush {
        ($tick:expr) => {{
            let t = Instant::now();
            let n = pkts.len() as u64;
            forward_burst(
                &mut edge,
                &mut pkts,
                &mut scratch,
                &mut stages,
                &mut local,
                &mut pool,
                &telemetry,
                $tick,
            );
            pipeline_ns += t.elapsed().as_nanos();
            pipeline_pkts += n;
            drain_stages(
                &edge,
                &mut stages,
                &mut pool,
                &topo,
                &paths,
                &static_paths,
                &mut link_load,
                &link_cap,
                &mut site_arr,
                &mut c,
                &surge_now,
                &event_now,
                &link_down,
            );
        }};
    }
    for tick in 0..ticks {
        let b = WARMUP_BUCKETS + tick / 60;
        for (l, down) in link_down.iter_mut().enumerate() {
            *down = failures
                .iter()
                .any(|&(fl, from, to)| fl == l && (from..to).contains(&tick));
        }
        if tick % 60 == 0 {
            for d in 0..nd {
                let actual = f64::from(series.buckets[d][b]);
                let seasonal = clock.seasonal(d, b as u64);
                surge_now[d] = actual > SURGE_FACTOR * seasonal;
                event_now[d] = series.events.raises_within(d, b as u64, b as u64);
                match (surge_now[d], open_ep[d]) {
                    (true, None) => {
                        open_ep[d] = Some(episodes.len());
                        episodes.push(Episode {
                            dest: d,
                            start: tick / 60,
                            end: tick / 60,
                            event: event_now[d],
                            peak_ratio: 0.0,
                            packets: 0,
                            drops: 0,
                            forecast_ratio: forecast[d] * 60.0 / actual.max(1.0),
                        });
                    }
                    (false, Some(_)) => open_ep[d] = None,
                    _ => {}
                }
                if let Some(e) = open_ep[d] {
                    let e = &mut episodes[e];
                    e.end = tick / 60;
                    e.event |= event_now[d];
                    e.peak_ratio = e.peak_ratio.max(actual / seasonal.max(1e-9));
                }
            }
        }
        let frac = (tick % 60) as f64 / 60.0;
        // Generate, mark, forward.
        edge.reader.refresh();
        let epoch = edge.reader.get().steering.epoch;
        for d in 0..nd {
            let r = f64::from(series.buckets[d][b]) * (1.0 - frac)
                + f64::from(series.buckets[d][b + 1]) * frac;
            acc[d] += r / 60.0 * scale;
            let n = acc[d].floor();
            acc[d] -= n;
            let n = n as u64;
            if n == 0 {
                continue;
            }
            c.packets += n;
            if surge_now[d] {
                c.surge_packets += n;
                if let Some(e) = open_ep[d] {
                    episodes[e].packets += n;
                }
            }
            let steer = edge.reader.get().steering.get(d as u32).is_some();
            let ff = &mut flows[d];
            if steer && ff.marked_epoch != epoch {
                ff.marked = ff
                    .plain
                    .iter()
                    .map(|p| {
                        let mut f = p.clone();
                        // A 64-byte frame always fits; unmarked it would be routed.
                        let _ = marker.mark_vec_with(
                            &mut f,
                            &MarkParams::new(d as u32, app_class, priority, epoch),
                        );
                        f
                    })
                    .collect();
                ff.marked_epoch = epoch;
            }
            for _ in 0..n {
                let f = flow_rr[d];
                flow_rr[d] = (f + 1) % FLOWS;
                let bytes = if steer { &ff.marked[f] } else { &ff.plain[f] };
                let Some(mut buf) = pool.get() else {
                    c.drops_pipeline += 1;
                    continue;
                };
                buf.fill(bytes);
                buf.port = 0;
                pkts.push(buf);
                if pkts.len() == BURST {
                    flush!(tick);
                }
            }
        }
        if !pkts.is_empty() {
            flush!(tick);
        }
        link_load.iter_mut().for_each(|l| *l = 0);
        let per_pkt_ns = if pipeline_pkts > 0 {
            (pipeline_ns / u128::from(pipeline_pkts)) as u64
        } else {
            0
        };

        // Data centers: serve, queue, drop.
        let mut site_arrivals = vec![0.0f64; n_sites];
        for s in 0..n_sites {
            let arr: u64 = site_arr[s].iter().sum();
            site_arrivals[s] = arr as f64 / scale;
            let cap = f64::from(planner.sites()[s].active) * rc.worker_pps * scale;
            let q0 = queue[s];
            let mut q = q0 + arr as f64 - cap;
            let mut dropped = 0u64;
            if q > queue_max {
                dropped = ((q - queue_max).ceil() as u64).min(arr);
                q = queue_max;
            }
            queue[s] = q.max(0.0);
            if dropped > 0 {
                // Tail drop, shared over the destinations by their arrivals.
                let mut left = dropped;
                let mut cum = 0u64;
                for d in 0..nd {
                    let a = site_arr[s][d];
                    if a == 0 {
                        continue;
                    }
                    cum += a;
                    let share = (dropped as u128 * u128::from(cum) / u128::from(arr)) as u64
                        - (dropped - left);
                    let share = share.min(left);
                    left -= share;
                    if surge_now[d] {
                        c.surge_tick_drops[d] += share;
                        c.surge_drops += share;
                        if event_now[d] {
                            c.surge_drops_event += share;
                        } else {
                            c.surge_drops_flash += share;
                        }
                    }
                }
                c.drops_queue += dropped;
                site_drops[s] += dropped;
                rec.drops += dropped;
            }
            let served = arr - dropped;
            c.delivered += served;
            if served > 0 {
                let wait_ticks = if cap > 0.0 {
                    (q0 + arr as f64 / 2.0) / cap
                } else {
                    rc.wake_s.max(1.0)
                };
                let ns = (wait_ticks * tick_wall_ns) as u64 + per_pkt_ns;
                let _ = hist.record_n(ns.max(1), served);
            }
            site_arr[s].iter_mut().for_each(|x| *x = 0);
        }

        for (n, ep) in c.surge_tick_drops.iter_mut().zip(&open_ep) {
            let n = std::mem::take(n);
            if let (true, Some(e)) = (n > 0, *ep) {
                episodes[e].drops += n;
            }
        }
        // Telemetry → measured rates; every bucket → TPE.
        let slot = tick % measure;
        for d in 0..nd {
            let p = telemetry.packets(d);
            let delta = p - tel_prev[d];
            tel_prev[d] = p;
            ring[slot][d] = delta;
            bucket_counts[d] += delta;
            measured[d] = ring.iter().map(|r| r[d]).sum::<u64>() as f64
                / measure.min(tick + 1) as f64
                / scale;
            if rc.nowcast && tick >= measure {
                window.clear();
                window.extend(
                    (0..measure).map(|k| ring[(slot + measure - k) % measure][d] as f64 / scale),
                );
                nowcast[d] = super::plan::nowcast(&window, rc.wake_s).unwrap_or(0.0);
            }
        }
        let mut publish = false;
        if tick % 60 == 59 {
            let bucket = Bucket::per_dest(
                b as u64,
                series.origin_unix_ms + b as u64 * BUCKET_LOGICAL_MS,
                bucket_counts.clone(),
                bucket_counts.iter().map(|p| p * 64).collect(),
            );
            rec.actual = bucket_counts.iter().sum::<u64>() as f64 / 60.0 / scale;
            bucket_counts.iter_mut().for_each(|x| *x = 0);
            // Score the forecast made five buckets ago for this bucket.
            if pending5.len() >= five
                && let Some(f) = pending5.pop_front()
            {
                for ((m, fd), p) in mae5.iter_mut().zip(&f).zip(&bucket.packets) {
                    let a = *p as f64 / 60.0 / scale;
                    *m += ((fd - a).abs() - *m) / 30.0;
                }
            }
            latest = overlay(engine.step(&bucket));
            pending5.push_back(
                (0..nd)
                    .map(|d| f64::from(latest.per_dest[d][0]) / 60.0 / scale)
                    .collect(),
            );
            recent.push_back(forecast_of(&latest));
            while recent.len() > keep {
                recent.pop_front();
            }
            model_ahead = ahead(&recent);
            predicted_for.push_back(
                latest.per_dest.iter().map(|x| f64::from(x[0])).sum::<f64>() / 60.0 / scale,
            );
            publish = true; // new demand: recompute paths
        }
        // RAM: the forecast is the model's, raised by the calendar's announced events.
        if tick % 60 == 0 {
            for (d, r) in rise.iter_mut().enumerate() {
                *r = calendar_rise(d, b as u64);
            }
        }
        for d in 0..nd {
            forecast[d] = (model_ahead[d].max(measured[d] * rise[d])
                + rc.forecast_error_margin * mae5[d])
                .max(nowcast[d]);
        }
        if tick % 60 == 0 {
            for (d, on) in ev_dests.iter_mut().enumerate() {
                *on = series.events.raises_within(d, b as u64, b as u64 + look);
            }
        }
        let ch = planner.step(
            (tick + 1) as f64,
            Demand {
                measured: &measured,
                forecast: (mode == RamMode::Predictive).then_some(&forecast[..]),
                site_arrivals: &site_arrivals,
                event_dests: &ev_dests,
            },
        );
        // The RAM sees a link fail (or come back) at the end of the tick it happens in.
        if ch.steering || publish || placed_down != link_down {
            placed_down.clone_from(&link_down);
            let now: Vec<bool> = (0..nd).map(|d| planner.steered(d)).collect();
            let (p, _) = path::place(&topo, &weights, planner.expected(), &placed_down);
            if now != steered_now || p != paths {
                steered_now = now;
                paths = p;
                edge.publish(&steered_now, &paths);
            }
        }
        let mut prov = 0u32;
        let mut cap = 0.0;
        for (s, st) in planner.sites().iter().enumerate() {
            prov += st.provisioned();
            site_ws[s] += f64::from(st.provisioned());
            site_peak[s] = site_peak[s].max(st.provisioned());
            cap += f64::from(st.active) * rc.worker_pps;
        }
        worker_seconds += f64::from(prov);
        rec.workers = rec.workers.max(prov);
        rec.capacity = rec.capacity.max(cap);
        rec.surge |= surge_now.iter().any(|&x| x);
        if tick % 60 == 59 || tick + 1 == ticks {
            rec.predicted = predicted_for.pop_front().unwrap_or(f64::NAN);
            if tick % 60 != 59 {
                rec.actual =
                    bucket_counts.iter().sum::<u64>() as f64 / ((tick % 60) + 1) as f64 / scale;
            }
            timeline.push(std::mem::take(&mut rec));
            if opts.verbose && timeline.len().is_multiple_of(30) {
                eprintln!(
                    "steerd: {} {}: bucket {}/{}, {} packets, {} drops, {} workers",
                    opts.scenario,
                    mode.as_str(),
                    timeline.len(),
                    run_buckets,
                    c.packets,
                    c.drops(),
                    prov
                );
            }
        }
        // Pace.
        if !opts.fast {
            let due = Duration::from_nanos(((tick + 1) as f64 * tick_wall_ns) as u64);
            let el = t0.elapsed();
            if el < due {
                std::thread::sleep(due - el);
            } else if el > due + Duration::from_millis(50) {
                lagged += 1;
            }
        }
        edge.handle.reclaim();
    }
    let wall = t0.elapsed().as_secs_f64();
    let queued: f64 = queue.iter().sum();
    c.drops_pipeline += local.drops.iter().sum::<u64>();
    let drops_link_down: u64 = c.drops_link_down.iter().sum();
    let drops = c.drops();
    let link_failures: Vec<Value> = failures
        .iter()
        .map(|&(l, from, to)| {
            let k = &topo.links[l];
            json!({
                "a": topo.nodes[k.ends[0]].0,
                "b": topo.nodes[k.ends[1]].0,
                "from_s": from,
                "to_s": to.min(ticks),
                "drops_on_link": c.drops_link_down[l],
            })
        })
        .collect();
    let fallbacks: serde_json::Map<String, Value> = crate::steering::Fallback::ALL
        .iter()
        .map(|f| (f.as_str().to_string(), json!(local.fallback[*f as usize])))
        .collect();
    let q = |p: f64| {
        if hist.is_empty() {
            0
        } else {
            hist.value_at_quantile(p)
        }
    };
    let timeline_json: Vec<Value> = timeline
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({
                "bucket": i,
                "actual_pps": round2(r.actual),
                "predicted_pps": if r.predicted.is_finite() { json!(round2(r.predicted)) } else { Value::Null },
                "capacity_pps": round2(r.capacity),
                "workers": r.workers,
                "drops": r.drops,
                "surge": r.surge,
            })
        })
        .collect();
    let sites: Vec<Value> = topo
        .sites
        .iter()
        .enumerate()
        .map(|(s, site)| {
            json!({
                "name": site.name,
                "zone": topo.zones[site.zone].0,
                "region": topo.regions[topo.zones[site.zone].1].0,
                "worker_seconds": site_ws[s],
                "peak_workers": site_peak[s],
                "max_workers": site.max_workers,
                "drops": site_drops[s],
            })
        })
        .collect();
    let surges: Vec<Value> = episodes
        .iter()
        .map(|e| {
            json!({
                "dest": e.dest,
                "start_bucket": e.start,
                "end_bucket": e.end,
                "kind": if e.event { "scheduled_event" } else { "flash_crowd" },
                "peak_ratio": round2(e.peak_ratio),
                "packets": e.packets,
                "drops": e.drops,
                "forecast_ratio": round2(e.forecast_ratio),
            })
        })
        .collect::<Vec<_>>();
    Ok(json!({
        "scenario": opts.scenario,
        "seed": opts.seed,
        "mode": mode.as_str(),
        "time_scale": time_scale,
        "logical_seconds": ticks,
        "wall_seconds": round2(wall),
        "paced": !opts.fast,
        "lagged_ticks": lagged,
        "packets": c.packets,
        "drops": drops,
        "drops_by_reason": {
            "queue_full": c.drops_queue,
            "link_congested": c.drops_link,
            "link_down": drops_link_down,
            "pipeline": c.drops_pipeline,
        },
        "link_failures": link_failures,
        "surge_packets": c.surge_packets,
        "drops_during_surges": c.surge_drops,
        "drops_during_surges_by_kind": {
            "scheduled_event": c.surge_drops_event,
            "flash_crowd": c.surge_drops_flash,
        },
        "delivered": c.delivered,
        "queued_at_end": queued.round() as u64,
        "p50_ns": q(0.5),
        "p99_ns": q(0.99),
        "p999_ns": q(0.999),
        "pipeline_ns_per_packet": if pipeline_pkts > 0 { (pipeline_ns / u128::from(pipeline_pkts)) as u64 } else { 0 },
        "worker_seconds": worker_seconds,
        "prepositions_early": planner.early,
        "prepositions_late": planner.late,
        "workers_woken": planner.woken_total,
        "workers_parked": planner.parked_total,
        "steered": local.steered,
        "routed": local.routed,
        "steering_fallbacks": fallbacks,
        "table_publications": edge.publications,
        "tpe_source": model_source,
        "ram": {
            "lead_s": rc.lead_s,
            "wake_s": rc.wake_s,
            "release_hold_s": rc.release_hold_s,
            "predictive_release_hold_s": rc.predictive_release_hold_s.unwrap_or(rc.release_hold_s),
            "nowcast": rc.nowcast,
            "forecast_error_margin": rc.forecast_error_margin,
            "headroom": rc.headroom,
            "worker_pps": rc.worker_pps,
            "packet_scale": scale,
        },
        "sites": sites,
        "surges": surges,
        "timeline": timeline_json,
    }))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn start_dest_rates(series: &Series, b: usize, nd: usize) -> Vec<f64> {
    (0..nd)
        .map(|d| f64::from(series.buckets[d][b]) / 60.0)
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn forward_burst(
    edge: &mut Edge,
    pkts: &mut Vec<PktBuf>,
    s: &mut Scratch,
    stages: &mut [TxStage<PktBuf>],
    c: &mut Local,
    pool: &mut Pool,
    telemetry: &DestCounters,
    tick: usize,
) {
    edge.reader.refresh();
    let ctx = BurstCtx {
        tables: edge.reader.get(),
        now_ns: tick as u64,
        io_peer: &[],
        telemetry,
        generation: edge.reader.generation(),
    };
    process_burst(
        Mode::Forward,
        &ctx,
        pkts,
        s,
        stages,
        c,
        |b| pool.put(b),
        Err,
    );
}

#[allow(clippy::too_many_arguments)]
fn drain_stages(
    edge: &Edge,
    stages: &mut [TxStage<PktBuf>],
    pool: &mut Pool,
    topo: &Topology,
    paths: &[Option<DestPath>],
    static_paths: &[Vec<Option<Path>>],
    link_load: &mut [u64],
    link_cap: &[f64],
    site_arr: &mut [Vec<u64>],
    c: &mut Counts,
    surge: &[bool],
    event: &[bool],
    link_down: &[bool],
) {
    for st in stages.iter_mut() {
        for class in st.classes.iter_mut() {
            for b in class.drain(..) {
                let data = b.data();
                let nh = edge.nh_of_mac(&data[0..6]);
                let dest = frame_dest(data);
                pool.put(b);
                let (Some(nh), Some(d)) = (nh, dest) else {
                    c.drops_pipeline += 1;
                    continue;
                };
                let Some(site) = topo.site_of(d) else {
                    c.drops_pipeline += 1;
                    continue;
                };
                let steered = edge.steer_nh[nh as usize];
                let p = if steered {
                    c.steered_out += 1;
                    // An ECMP entry's other next hops lead onto its equal-cost paths.
                    paths.get(d).and_then(|p| p.as_ref()).map(|p| {
                        p.ecmp
                            .iter()
                            .find(|w| w.links.first().and_then(|&l| edge.link_nh[l]) == Some(nh))
                            .unwrap_or(&p.primary)
                    })
                } else {
                    c.routed_out += 1;
                    edge.nh_link[nh as usize].and_then(|l| static_paths[l][site].as_ref())
                };
                let Some(p) = p else {
                    c.drops_pipeline += 1;
                    continue;
                };
                let mut ok = true;
                for &l in &p.links {
                    if link_down[l] {
                        c.drops_link_down[l] += 1;
                        ok = false;
                        break;
                    }
                    link_load[l] += 1;
                    if link_load[l] as f64 > link_cap[l] {
                        c.drops_link += 1;
                        ok = false;
                        break;
                    }
                }
                if !ok {
                    if surge[d] {
                        c.surge_tick_drops[d] += 1;
                        c.surge_drops += 1;
                        if event[d] {
                            c.surge_drops_event += 1;
                        } else {
                            c.surge_drops_flash += 1;
                        }
                    }
                    continue;
                }
                site_arr[site][d] += 1;
            }
        }
        st.staged = 0;
    }
}

/// Where `steerd ram timeline` reads from when given no file.
pub fn default_timeline_path() -> PathBuf {
    std::env::temp_dir().join("steerd-ram-timeline.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_failures_parse_and_refusals_say_the_form() {
        let f: LinkFailure = "core-a,fra1@120+30".parse().unwrap();
        assert_eq!(
            f,
            LinkFailure {
                a: "core-a".into(),
                b: "fra1".into(),
                at_min: 120.0,
                for_min: Some(30.0)
            }
        );
        let f: LinkFailure = "edge, core-b @ 0.5".parse().unwrap();
        assert_eq!((f.b.as_str(), f.at_min, f.for_min), ("core-b", 0.5, None));
        for (bad, why) in [
            ("core-a,fra1", "no @"),
            ("core-a@5", "two ends"),
            ("a,b@x", "the start"),
            ("a,b@5+-1", "the duration"),
            ("a,b@5+0", "more than 0"),
            ("a,b@inf", "the start"),
        ] {
            let e = bad.parse::<LinkFailure>().unwrap_err();
            assert!(e.contains(why) && e.contains("A,B@MIN"), "{bad}: {e}");
        }
    }
}
