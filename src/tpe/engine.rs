//! The TPE threads (cold; never on the fast path).
//!
//! ```text
//!  workers ──DestCounters──► tpe thread (coordinator) ──Arc<Predictions> via ArcSwap──► ram
//!                              │  Aggregator, baselines for all destinations,
//!                              │  accuracy tracking, fallback, commands
//!                              ├──► shard 0 thread: dest % n == 0: history, features, model,
//!                              │                    correction, shadow candidate
//!                              └──► shard k thread: dest % n == k ...
//! ```
//!
//! Every bucket (`60 s / time_scale` of wall time) the coordinator closes the bucket,
//! scores earlier forecasts against it, feeds the baselines, and sends the bucket to each
//! shard. A shard answers with its destinations' forecasts (model + online correction).
//! When a shard has no model, its model fails (error, NaN/inf output) or panics (caught
//! with [`crate::panics::contain`] on its thread; the shard then drops its model until a new one is
//! activated), or it does not answer within `shard_timeout`, the coordinator serves that
//! shard's destinations with the baseline whose recent MAE is lowest. Then it publishes
//! [`Predictions`].
//!
//! The shard's step runs inside [`crate::panics::contain`], so a panic in model code is
//! caught in every build (steerd builds with `panic = "unwind"`; a panic anywhere
//! outside such a scope still aborts the process, see [`crate::panics`]).
//!
//! Control: [`Command`]s over a crossbeam channel, each answered with a
//! `Result<Reply, TpeError>`. `LoadModel` validates a model and starts it in shadow
//! beside the active one (promoted only if it beats it, see [`super::learn::Shadow`]);
//! `ActivateModel` swaps it in at once; a model that fails validation is refused and
//! the previous one keeps running.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam::channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};
use hdrhistogram::Histogram;
use serde::Serialize;

use super::baseline::{BaselineParams, Predictor, all_baselines};
use super::features::{self, HISTORY, HORIZONS, Hist, N_FEATURES};
use super::learn::{CorrectionParams, Corrector, Decision, Pending, Shadow, ShadowParams};
use super::model::{self, BatchModel, ModelRunner};
use super::scenario::EventCalendar;
use super::{HORIZONS as HZ, Predictions, PredictorKind, TpeError};
use crate::telemetry::{Aggregator, BUCKET_LOGICAL_MS, Bucket, DestCounters};

/// Engine configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Number of destinations.
    pub n_dest: usize,
    /// Time compression: bucket wall duration = 60 s / time_scale.
    pub time_scale: f64,
    /// Number of shard instances (`dest % n == k`).
    pub n_instances: usize,
    /// Model file; `None` = `models/tpe-default.onnx` or the embedded model.
    pub model: Option<PathBuf>,
    /// Run without a model (baselines only).
    pub no_model: bool,
    /// Scheduled events (known in advance), in buckets from bucket 0.
    pub events: EventCalendar,
    /// Logical time of bucket 0 (Unix ms) for [`spawn`]; `None` = when it starts.
    /// Events given as clock times were converted to buckets against this.
    pub origin_unix_ms: Option<u64>,
    /// Baseline parameters.
    pub baseline: BaselineParams,
    /// Online correction; `None` disables it.
    pub correction: Option<CorrectionParams>,
    /// Shadow evaluation of candidates.
    pub shadow: ShadowParams,
    /// Buckets of the rolling accuracy (EWMA with α = 1/n).
    pub accuracy_window: usize,
    /// How long the coordinator waits for a shard per bucket.
    pub shard_timeout: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            n_dest: 64,
            time_scale: 1.0,
            n_instances: 1,
            model: None,
            no_model: false,
            events: EventCalendar::default(),
            origin_unix_ms: None,
            baseline: BaselineParams::default(),
            correction: Some(CorrectionParams::default()),
            shadow: ShadowParams::default(),
            accuracy_window: 120,
            shard_timeout: Duration::from_millis(500),
        }
    }
}

impl EngineConfig {
    /// Wall duration of a bucket.
    pub fn bucket_duration(&self) -> Duration {
        Duration::from_secs_f64(60.0 / self.time_scale.clamp(1e-3, 1e6))
    }
}

/// Commands to the engine thread.
#[derive(Debug, Clone)]
pub enum Command {
    /// Validate a model and evaluate it in shadow beside the active one.
    LoadModel(PathBuf),
    /// Validate a model and make it active at once.
    ActivateModel(PathBuf),
    /// Return a [`EngineStats`] snapshot.
    Stats,
    /// Stop the engine and its shards.
    Shutdown,
}

/// Answers to [`Command`]s.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Done; a message for the operator.
    Done(String),
    /// A stats snapshot.
    Stats(Box<EngineStats>),
}

/// Rolling accuracy of one predictor.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AccuracyStat {
    /// Predictor name.
    pub predictor: String,
    /// Rolling MAE per horizon (packets per bucket).
    pub mae: [f64; 3],
    /// Buckets scored (at any horizon).
    pub scored: u64,
    /// Buckets scored per horizon (a horizon's MAE means nothing while its count is 0).
    pub scored_per_horizon: [u64; 3],
}

/// Counters for metrics (plain snapshot).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct EngineStats {
    /// Buckets processed.
    pub buckets: u64,
    /// Last published epoch.
    pub epoch: u64,
    /// Model inferences (one per shard per bucket).
    pub inferences: u64,
    /// Inferences that failed or were rejected (NaN/inf).
    pub inference_failures: u64,
    /// Destination-buckets served by a baseline instead of the model.
    pub fallbacks: u64,
    /// Shard panics caught.
    pub shard_panics: u64,
    /// Shard replies that timed out.
    pub shard_timeouts: u64,
    /// Candidates promoted (summed over shards).
    pub promotions: u64,
    /// Candidates rejected (summed over shards).
    pub rejections: u64,
    /// Models refused by validation (`LoadModel`/`ActivateModel` of a bad file).
    pub models_refused: u64,
    /// Shards currently without a working model.
    pub failed_shards: Vec<usize>,
    /// Active model label (shard 0).
    pub model: Option<String>,
    /// Candidate in shadow evaluation (shard 0), if any.
    pub candidate: Option<String>,
    /// Shard instances.
    pub shards: usize,
    /// The baseline with the lowest recent MAE (what a failed shard is served by).
    pub best_baseline: Option<PredictorKind>,
    /// Source of the last publication.
    pub source: Option<PredictorKind>,
    /// Inference time p50 (µs, worst shard).
    pub infer_p50_us: u64,
    /// Inference time p99 (µs, worst shard).
    pub infer_p99_us: u64,
    /// Correction updates.
    pub correction_updates: u64,
    /// Rolling accuracy per predictor (`published`, `model`, baselines).
    pub accuracy: Vec<AccuracyStat>,
}

// ---------------------------------------------------------------------------------------
// Shards.

struct SlidingHistory {
    x: Vec<f32>,
    base: u64,
}

impl SlidingHistory {
    fn push(&mut self, t: u64, v: f32) {
        if self.x.is_empty() {
            self.base = t;
        } else {
            // Fill a gap (missed buckets) with the last value, at most HISTORY of them.
            let next = self.base + self.x.len() as u64;
            if t > next {
                let last = *self.x.last().expect("not empty");
                for _ in 0..(t - next).min(HISTORY as u64) {
                    self.x.push(last);
                }
                self.base = t - (self.x.len() as u64);
            } else if t < next {
                return; // replayed bucket
            }
        }
        self.x.push(v);
        if self.x.len() >= 2 * HISTORY {
            let drop = self.x.len() - HISTORY;
            self.x.drain(..drop);
            self.base += drop as u64;
        }
    }
}

struct ShardInput {
    t: u64,
    origin_unix_ms: u64,
    values: Vec<f32>,
}

enum ShardMsg {
    Bucket(Arc<ShardInput>),
    Candidate(Box<dyn BatchModel>),
    Activate(Box<dyn BatchModel>),
    Stop,
}

#[derive(Debug, Clone, Default)]
struct ShardStats {
    inferences: u64,
    failures: u64,
    promotions: u64,
    rejections: u64,
    correction_updates: u64,
    p50: u64,
    p99: u64,
    model: Option<String>,
    candidate: Option<String>,
}

struct ShardReply {
    t: u64,
    result: Result<Vec<[f32; 3]>, String>,
    panicked: bool,
    stats: ShardStats,
}

struct ShardState {
    k: usize,
    dests: Vec<usize>,
    hist: Vec<SlidingHistory>,
    /// The calendar shared by every shard and the live TPE (which adds and removes
    /// events at run time): loaded once per bucket.
    events: Arc<ArcSwap<EventCalendar>>,
    model: Option<Box<dyn BatchModel>>,
    candidate: Option<Box<dyn BatchModel>>,
    corrector: Option<Corrector>,
    shadow: Shadow,
    timings: Histogram<u64>,
    stats: ShardStats,
    xf: Vec<f32>,
    levels: Vec<f32>,
    /// The active model's last inference failed (error or NaN/inf output).
    failing: bool,
}

impl ShardState {
    fn step(&mut self, inp: &ShardInput) -> Result<Vec<[f32; 3]>, String> {
        let t = inp.t;
        let actual: Vec<f32> = self
            .dests
            .iter()
            .map(|&d| inp.values.get(d).copied().unwrap_or(0.0))
            .collect();
        for (i, &v) in actual.iter().enumerate() {
            self.hist[i].push(t, v);
            if let Some(c) = self.corrector.as_mut() {
                c.observe(i, t, v);
            }
        }
        if let Some(dec) = self.shadow.observe_bucket(t, &actual) {
            self.decide(dec);
        }
        if self.model.is_none() {
            return Err("no model".into());
        }
        let n = self.dests.len();
        let cal = self.events.load_full();
        for (i, &d) in self.dests.iter().enumerate() {
            let h = &self.hist[i];
            let row: &mut [f32; N_FEATURES] = (&mut self.xf[i * N_FEATURES..(i + 1) * N_FEATURES])
                .try_into()
                .expect("row length");
            let ev = |b: u64| cal.factor(d, b);
            self.levels[i] = features::features(
                &Hist {
                    x: &h.x,
                    base: h.base,
                },
                &ev,
                inp.origin_unix_ms,
                row,
            );
        }
        let mut out = vec![[0.0f32; 3]; n];
        let t0 = Instant::now();
        self.stats.inferences += 1;
        let model = self.model.as_mut().expect("checked above");
        if let Err(e) = model.infer(&self.xf, &mut out) {
            self.stats.failures += 1;
            if !self.failing {
                tracing::warn!(
                    "tpe shard {}: model {} failed ({e}); its destinations fall back to a baseline",
                    self.k,
                    model.name()
                );
            }
            self.failing = true;
            return Err(e.to_string());
        }
        self.failing = false;
        let _ = self
            .timings
            .record((t0.elapsed().as_micros() as u64).max(1));
        let raw: Vec<[f32; 3]> = out
            .iter()
            .zip(&self.levels)
            .map(|(y, &l)| [0, 1, 2].map(|k| features::denormalize(y[k], l)))
            .collect();
        if let Some(cand) = self.candidate.as_mut() {
            let mut cout = vec![[0.0f32; 3]; n];
            match cand.infer(&self.xf, &mut cout) {
                Ok(()) => {
                    for (i, (y, &l)) in cout.iter().zip(&self.levels).enumerate() {
                        self.shadow.record(
                            i,
                            t,
                            raw[i],
                            [0, 1, 2].map(|k| features::denormalize(y[k], l)),
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        "tpe shard {}: candidate {} failed ({e}); rejected",
                        self.k,
                        cand.name()
                    );
                    self.candidate = None;
                    self.shadow.abort();
                }
            }
        }
        let preds = match self.corrector.as_mut() {
            Some(c) => raw
                .iter()
                .enumerate()
                .map(|(i, r)| c.apply(i, t, *r))
                .collect(),
            None => raw,
        };
        Ok(preds)
    }

    fn decide(&mut self, dec: Decision) {
        let Some(cand) = self.candidate.take() else {
            return;
        };
        match dec {
            Decision::Promote {
                candidate_mae,
                active_mae,
            } => {
                tracing::info!(
                    "tpe shard {}: candidate {} promoted (MAE {candidate_mae:.2} < active {active_mae:.2})",
                    self.k,
                    cand.name()
                );
                self.model = Some(cand);
                if let Some(c) = self.corrector.as_mut() {
                    *c = Corrector::new(self.dests.len(), CorrectionParams::default());
                }
            }
            Decision::Reject {
                candidate_mae,
                active_mae,
            } => {
                tracing::info!(
                    "tpe shard {}: candidate {} rejected (MAE {candidate_mae:.2} vs active {active_mae:.2})",
                    self.k,
                    cand.name()
                );
            }
        }
    }

    fn snapshot(&mut self) -> ShardStats {
        self.stats.promotions = self.shadow.promotions;
        self.stats.rejections = self.shadow.rejections;
        self.stats.correction_updates = self.corrector.as_ref().map_or(0, |c| c.updates);
        self.stats.p50 = self.timings.value_at_quantile(0.5);
        self.stats.p99 = self.timings.value_at_quantile(0.99);
        self.stats.model = self.model.as_ref().map(|m| m.name().to_string());
        self.stats.candidate = self.candidate.as_ref().map(|m| m.name().to_string());
        self.stats.clone()
    }
}

fn shard_loop(mut st: ShardState, rx: Receiver<ShardMsg>, tx: Sender<ShardReply>) {
    while let Ok(msg) = rx.recv() {
        match msg {
            ShardMsg::Stop => break,
            ShardMsg::Candidate(m) => {
                if st.model.is_none() || st.failing {
                    // Nothing working to compare against: a baseline serves these
                    // destinations, and any model that runs beats none. It is checked
                    // at its first inference like any active model.
                    tracing::info!(
                        "tpe shard {}: candidate {} made active at once (no working model to shadow)",
                        st.k,
                        m.name()
                    );
                    if st.candidate.is_some() {
                        st.shadow.abort();
                        st.candidate = None;
                    }
                    st.model = Some(m);
                    st.failing = false;
                    st.shadow.promotions += 1;
                } else {
                    if st.candidate.is_some() {
                        st.shadow.abort();
                    }
                    st.candidate = Some(m);
                    st.shadow.start();
                }
            }
            ShardMsg::Activate(m) => {
                st.model = Some(m);
                st.failing = false;
                st.candidate = None;
                if st.shadow.running() {
                    st.shadow.abort();
                }
            }
            ShardMsg::Bucket(inp) => {
                let r = crate::panics::contain(|| st.step(&inp));
                let (result, panicked) = match r {
                    Ok(res) => (res, false),
                    Err(msg) => {
                        tracing::error!(
                            "tpe shard {}: panic ({msg}); its destinations fall back to a baseline",
                            st.k
                        );
                        st.model = None;
                        st.candidate = None;
                        (Err(format!("panic: {msg}")), true)
                    }
                };
                let stats = st.snapshot();
                if tx
                    .send(ShardReply {
                        t: inp.t,
                        result,
                        panicked,
                        stats,
                    })
                    .is_err()
                {
                    break;
                }
            }
        }
    }
}

struct ShardHandle {
    dests: Vec<usize>,
    tx: Sender<ShardMsg>,
    rx: Receiver<ShardReply>,
    thread: Option<JoinHandle<()>>,
    stats: ShardStats,
    failed: bool,
    dead: bool,
}

// ---------------------------------------------------------------------------------------
// Coordinator.

#[derive(Clone, Copy, Default)]
struct Rolling {
    mae: [f64; 3],
    scored: u64,
    scored_h: [u64; 3],
}

/// The coordinator: owns baselines, shards and the published predictions. Driven by
/// [`spawn`]'s thread, or directly with [`Engine::step`] (replay, tests).
pub struct Engine {
    cfg: EngineConfig,
    shards: Vec<ShardHandle>,
    bases: Vec<Box<dyn Predictor>>,
    pending_pub: Pending<[f32; 3]>,
    pending_model: Pending<[f32; 3]>,
    pending_base: Pending<[[f32; 3]; 4]>,
    acc_pub: Rolling,
    acc_model: Rolling,
    acc_base: [Rolling; 4],
    published: Arc<ArcSwap<Predictions>>,
    published_stats: Arc<ArcSwap<EngineStats>>,
    stats: EngineStats,
    calendar: Arc<ArcSwap<EventCalendar>>,
}

impl Engine {
    /// Builds an engine, loading the configured model (refused models are an error).
    pub fn new(cfg: EngineConfig) -> Result<Self, TpeError> {
        let runner = if cfg.no_model {
            None
        } else {
            Some(model::resolve(cfg.model.as_deref())?)
        };
        let n = cfg.n_instances.max(1);
        let models = (0..n)
            .map(|_| runner.clone().map(|m| Box::new(m) as Box<dyn BatchModel>))
            .collect();
        Ok(Self::with_models(cfg, models))
    }

    /// Builds an engine with one model (or none) per shard; `models.len()` shards.
    pub fn with_models(cfg: EngineConfig, models: Vec<Option<Box<dyn BatchModel>>>) -> Self {
        let n = models.len().max(1);
        let events = Arc::new(ArcSwap::from_pointee(cfg.events.clone()));
        let mut shards = Vec::with_capacity(n);
        let mut models = models;
        models.resize_with(n, || None);
        for (k, model) in models.into_iter().enumerate() {
            let label = model.as_ref().map(|m| m.name().to_string());
            let dests: Vec<usize> = (0..cfg.n_dest).filter(|d| d % n == k).collect();
            let nd = dests.len();
            let st = ShardState {
                k,
                hist: (0..nd)
                    .map(|_| SlidingHistory {
                        x: Vec::with_capacity(2 * HISTORY),
                        base: 0,
                    })
                    .collect(),
                events: events.clone(),
                model,
                candidate: None,
                corrector: cfg.correction.map(|p| Corrector::new(nd, p)),
                shadow: Shadow::new(nd, cfg.shadow),
                timings: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
                stats: ShardStats::default(),
                xf: vec![0.0; nd * N_FEATURES],
                levels: vec![0.0; nd],
                failing: false,
                dests: dests.clone(),
            };
            let (tx, srx) = unbounded();
            let (stx, rx) = bounded(4);
            let thread = std::thread::Builder::new()
                .name(format!("tpe-shard-{k}"))
                .spawn(move || shard_loop(st, srx, stx))
                .ok();
            let dead = thread.is_none();
            shards.push(ShardHandle {
                dests,
                tx,
                rx,
                thread,
                stats: ShardStats {
                    model: label,
                    ..ShardStats::default()
                },
                failed: false,
                dead,
            });
        }
        let nd = cfg.n_dest;
        let e = Engine {
            bases: all_baselines(nd, cfg.baseline),
            pending_pub: Pending::new(nd),
            pending_model: Pending::new(nd),
            pending_base: Pending::new(nd),
            acc_pub: Rolling::default(),
            acc_model: Rolling::default(),
            acc_base: [Rolling::default(); 4],
            published: Arc::new(ArcSwap::from_pointee(Predictions::empty(nd))),
            published_stats: Arc::new(ArcSwap::from_pointee(EngineStats::default())),
            stats: EngineStats::default(),
            calendar: events,
            shards,
            cfg,
        };
        e.publish_stats();
        e
    }

    /// Where predictions are published.
    pub fn predictions(&self) -> Arc<ArcSwap<Predictions>> {
        self.published.clone()
    }

    /// The scheduled-event calendar the shards read once per bucket: store a new one
    /// to add or remove events at run time (it starts as `EngineConfig::events`).
    pub fn calendar(&self) -> Arc<ArcSwap<EventCalendar>> {
        self.calendar.clone()
    }

    /// Where a [`EngineStats`] snapshot is published after every bucket and command
    /// (read without asking the engine thread, so a reader never waits for a bucket).
    pub fn published_stats(&self) -> Arc<ArcSwap<EngineStats>> {
        self.published_stats.clone()
    }

    /// Publishes a fresh stats snapshot.
    fn publish_stats(&self) {
        self.published_stats.store(Arc::new(self.stats()));
    }

    /// Folds one bucket's errors into the rolling MAE: an EWMA with α = 1/window, and
    /// the plain mean while fewer than `window` buckets were scored (so early values
    /// are not dominated by the first bucket).
    fn roll(acc: &mut Rolling, err: [f64; 3], n: [u64; 3], alpha: f64) {
        if n.iter().all(|&c| c == 0) {
            return;
        }
        for k in 0..3 {
            if n[k] > 0 {
                let e = err[k] / n[k] as f64;
                acc.scored_h[k] += 1;
                let a = alpha.max(1.0 / acc.scored_h[k] as f64);
                acc.mae[k] = (1.0 - a) * acc.mae[k] + a * e;
            }
        }
        acc.scored += 1;
    }

    fn best_baseline(&self) -> usize {
        if self.acc_base.iter().all(|a| a.scored == 0) {
            return 0;
        }
        (0..4)
            .min_by(|&a, &b| {
                self.acc_base[a]
                    .mae
                    .iter()
                    .sum::<f64>()
                    .total_cmp(&self.acc_base[b].mae.iter().sum::<f64>())
            })
            .unwrap_or(0)
    }

    /// Processes one closed bucket and publishes new predictions.
    pub fn step(&mut self, bucket: &Bucket) -> Arc<Predictions> {
        let t = bucket.index;
        let nd = self.cfg.n_dest;
        let values: Vec<f32> = (0..nd)
            .map(|d| bucket.packets.get(d).copied().unwrap_or(0) as f32)
            .collect();
        let alpha = 1.0 / self.cfg.accuracy_window.max(1) as f64;
        // Score earlier forecasts.
        let (mut ep, mut np) = ([0.0f64; 3], [0u64; 3]);
        let (mut em, mut nm) = ([0.0f64; 3], [0u64; 3]);
        let mut eb = [[0.0f64; 3]; 4];
        let mut nb = [[0u64; 3]; 4];
        for (d, &x) in values.iter().enumerate() {
            for (k, &h) in HORIZONS.iter().enumerate() {
                let Some(made) = t.checked_sub(h as u64) else {
                    continue;
                };
                if let Some(p) = self.pending_pub.get(d, made) {
                    ep[k] += f64::from((p[k] - x).abs());
                    np[k] += 1;
                }
                if let Some(p) = self.pending_model.get(d, made) {
                    em[k] += f64::from((p[k] - x).abs());
                    nm[k] += 1;
                }
                if let Some(p) = self.pending_base.get(d, made) {
                    for b in 0..4 {
                        eb[b][k] += f64::from((p[b][k] - x).abs());
                        nb[b][k] += 1;
                    }
                }
            }
        }
        Self::roll(&mut self.acc_pub, ep, np, alpha);
        Self::roll(&mut self.acc_model, em, nm, alpha);
        for b in 0..4 {
            Self::roll(&mut self.acc_base[b], eb[b], nb[b], alpha);
        }
        for (d, &x) in values.iter().enumerate() {
            for b in self.bases.iter_mut() {
                b.observe(d, x);
            }
        }
        // Shards.
        let origin = bucket.start_unix_ms.saturating_sub(t * BUCKET_LOGICAL_MS);
        let input = Arc::new(ShardInput {
            t,
            origin_unix_ms: origin,
            values: values.clone(),
        });
        for s in self.shards.iter_mut().filter(|s| !s.dead) {
            if s.tx.send(ShardMsg::Bucket(input.clone())).is_err() {
                s.dead = true;
            }
        }
        let deadline = Instant::now() + self.cfg.shard_timeout;
        let mut per_dest = vec![[0.0f32; 3]; nd];
        let mut sources = vec![PredictorKind::Model; nd];
        let best = self.best_baseline();
        let best_kind = PredictorKind::BASELINES[best];
        for (d, slot) in per_dest.iter_mut().enumerate() {
            let p: [[f32; 3]; 4] =
                [0, 1, 2, 3].map(|b| [0, 1, 2].map(|k| self.bases[b].predict(d, HORIZONS[k])));
            self.pending_base.put(d, t, p);
            *slot = p[best];
        }
        for s in self.shards.iter_mut() {
            let mut served = false;
            if !s.dead {
                loop {
                    match s.rx.recv_deadline(deadline) {
                        Ok(r) if r.t < t => continue, // a late answer to an earlier bucket
                        Ok(r) => {
                            if r.panicked {
                                self.stats.shard_panics += 1;
                            }
                            s.stats = r.stats;
                            if let Ok(preds) = r.result {
                                for (&d, p) in s.dests.iter().zip(preds) {
                                    per_dest[d] = p;
                                    self.pending_model.put(d, t, p);
                                }
                                served = true;
                            }
                            break;
                        }
                        Err(RecvTimeoutError::Timeout) => {
                            self.stats.shard_timeouts += 1;
                            break;
                        }
                        Err(RecvTimeoutError::Disconnected) => {
                            s.dead = true;
                            break;
                        }
                    }
                }
            }
            s.failed = !served;
            if !served {
                for &d in &s.dests {
                    sources[d] = best_kind;
                }
                self.stats.fallbacks += s.dests.len() as u64;
            }
        }
        for (d, p) in per_dest.iter().enumerate() {
            self.pending_pub.put(d, t, *p);
        }
        let source = if sources.iter().all(|&s| s == sources[0]) {
            sources.first().copied().unwrap_or(best_kind)
        } else {
            PredictorKind::Mixed
        };
        self.stats.buckets += 1;
        self.stats.epoch += 1;
        self.stats.source = Some(source);
        let preds = Arc::new(Predictions {
            epoch: self.stats.epoch,
            bucket_index: t,
            horizons: HZ,
            per_dest,
            source,
            per_dest_source: sources,
        });
        self.published.store(preds.clone());
        self.publish_stats();
        preds
    }

    /// Handles a command (except `Shutdown`, which the thread loop handles).
    pub fn handle_command(&mut self, cmd: Command) -> Result<Reply, TpeError> {
        match cmd {
            Command::LoadModel(p) | Command::ActivateModel(p)
                if self.shards.iter().all(|s| s.dead) =>
            {
                Err(TpeError::Engine(format!(
                    "no shard is running to take {}",
                    p.display()
                )))
            }
            Command::LoadModel(p) => {
                let m = self.validate_model(&p)?;
                for s in &self.shards {
                    let _ = s.tx.send(ShardMsg::Candidate(Box::new(m.clone())));
                }
                let msg = format!(
                    "model {} ({} v{}) loaded as candidate in shadow",
                    p.display(),
                    m.spec().name,
                    m.spec().version
                );
                tracing::info!("tpe: {msg}");
                Ok(Reply::Done(msg))
            }
            Command::ActivateModel(p) => {
                let m = self.validate_model(&p)?;
                for s in &self.shards {
                    let _ = s.tx.send(ShardMsg::Activate(Box::new(m.clone())));
                }
                let msg = format!(
                    "model {} ({} v{}) activated",
                    p.display(),
                    m.spec().name,
                    m.spec().version
                );
                tracing::info!("tpe: {msg}");
                Ok(Reply::Done(msg))
            }
            Command::Stats => Ok(Reply::Stats(Box::new(self.stats()))),
            Command::Shutdown => Ok(Reply::Done("shutting down".into())),
        }
    }

    /// Loads and validates a model for a command; a refusal is counted and logged, and
    /// changes nothing else.
    fn validate_model(&mut self, p: &std::path::Path) -> Result<ModelRunner, TpeError> {
        match ModelRunner::load(p) {
            Ok(m) => Ok(m),
            Err(e) => {
                self.stats.models_refused += 1;
                tracing::warn!("tpe: {e}; the running model keeps serving");
                self.publish_stats();
                Err(e.into())
            }
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> EngineStats {
        let mut s = self.stats.clone();
        s.inferences = self.shards.iter().map(|x| x.stats.inferences).sum();
        s.inference_failures = self.shards.iter().map(|x| x.stats.failures).sum();
        s.promotions = self.shards.iter().map(|x| x.stats.promotions).sum();
        s.rejections = self.shards.iter().map(|x| x.stats.rejections).sum();
        s.correction_updates = self.shards.iter().map(|x| x.stats.correction_updates).sum();
        s.infer_p50_us = self.shards.iter().map(|x| x.stats.p50).max().unwrap_or(0);
        s.infer_p99_us = self.shards.iter().map(|x| x.stats.p99).max().unwrap_or(0);
        s.failed_shards = self
            .shards
            .iter()
            .enumerate()
            .filter(|(_, x)| x.failed || x.dead)
            .map(|(k, _)| k)
            .collect();
        s.model = self.shards.first().and_then(|x| x.stats.model.clone());
        s.candidate = self.shards.first().and_then(|x| x.stats.candidate.clone());
        s.shards = self.shards.len();
        s.best_baseline = Some(PredictorKind::BASELINES[self.best_baseline()]);
        let stat = |name: &str, r: &Rolling| AccuracyStat {
            predictor: name.into(),
            mae: r.mae,
            scored: r.scored,
            scored_per_horizon: r.scored_h,
        };
        s.accuracy = vec![
            stat("published", &self.acc_pub),
            stat("model", &self.acc_model),
        ];
        for (b, k) in PredictorKind::BASELINES.iter().enumerate() {
            s.accuracy.push(stat(k.name(), &self.acc_base[b]));
        }
        s
    }

    fn stop_shards(&mut self) {
        for s in &self.shards {
            let _ = s.tx.send(ShardMsg::Stop);
        }
        for s in &mut self.shards {
            if let Some(h) = s.thread.take() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop_shards();
    }
}

type CmdMsg = (Command, Sender<Result<Reply, TpeError>>);

/// Sends [`Command`]s to a running engine thread (cloneable; for the `ctl` thread).
#[derive(Clone)]
pub struct Commander {
    cmd: Sender<CmdMsg>,
}

impl Commander {
    /// Sends a command and waits up to `timeout` for the answer.
    pub fn command(&self, c: Command, timeout: Duration) -> Result<Reply, TpeError> {
        let (tx, rx) = bounded(1);
        self.cmd
            .send((c, tx))
            .map_err(|_| TpeError::Engine("engine thread is gone".into()))?;
        rx.recv_timeout(timeout)
            .map_err(|e| TpeError::Engine(format!("no answer: {e}")))?
    }
}

/// Handle to a running engine thread.
pub struct EngineHandle {
    /// Latest predictions (load with `.load()`; never blocks).
    pub predictions: Arc<ArcSwap<Predictions>>,
    /// Latest stats snapshot (load with `.load()`; never blocks).
    pub stats: Arc<ArcSwap<EngineStats>>,
    /// The scheduled-event calendar (see [`Engine::calendar`]).
    pub calendar: Arc<ArcSwap<EventCalendar>>,
    cmd: Commander,
    thread: Option<JoinHandle<()>>,
}

impl EngineHandle {
    /// Sends a command and waits up to `timeout` for the answer.
    pub fn command(&self, c: Command, timeout: Duration) -> Result<Reply, TpeError> {
        self.cmd.command(c, timeout)
    }

    /// A clone of the command channel.
    pub fn commander(&self) -> Commander {
        self.cmd.clone()
    }

    /// A stats snapshot.
    pub fn stats(&self) -> Result<EngineStats, TpeError> {
        match self.command(Command::Stats, Duration::from_secs(5))? {
            Reply::Stats(s) => Ok(*s),
            Reply::Done(m) => Err(TpeError::Engine(m)),
        }
    }

    /// Stops the engine and waits for its threads.
    pub fn shutdown(mut self) {
        let _ = self.command(Command::Shutdown, Duration::from_secs(5));
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
    }
}

/// Starts the `tpe` thread reading the workers' counters. Fails (nothing started) when
/// the configured model is refused.
pub fn spawn(
    cfg: EngineConfig,
    counters: Vec<Arc<DestCounters>>,
) -> Result<EngineHandle, TpeError> {
    let bucket = cfg.bucket_duration();
    let origin = cfg.origin_unix_ms;
    let mut engine = Engine::new(cfg)?;
    let predictions = engine.predictions();
    let stats = engine.published_stats();
    let calendar = engine.calendar();
    let (cmd, cmd_rx) = unbounded::<CmdMsg>();
    let thread = std::thread::Builder::new()
        .name("tpe".into())
        .spawn(move || {
            // The engine keeps its own history per shard; the aggregator needs only
            // the bucket being closed (its default ring of a day of buckets is for
            // exports and would cost ~4 KB per bucket at 256 destinations).
            let mut agg = Aggregator::new(counters, bucket).with_capacity(2);
            if let Some(o) = origin {
                agg = agg.with_origin_unix_ms(o);
            }
            loop {
                match cmd_rx.recv_deadline(agg.next_deadline()) {
                    Ok((Command::Shutdown, reply)) => {
                        let _ = reply.send(Ok(Reply::Done("shutting down".into())));
                        break;
                    }
                    Ok((c, reply)) => {
                        let r = engine.handle_command(c);
                        engine.publish_stats();
                        let _ = reply.send(r);
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                if let Some(b) = agg.poll(Instant::now()) {
                    let b = b.clone();
                    engine.step(&b);
                }
            }
        })
        .map_err(|e| TpeError::Engine(format!("cannot start the tpe thread: {e}")))?;
    Ok(EngineHandle {
        predictions,
        stats,
        calendar,
        cmd: Commander { cmd },
        thread: Some(thread),
    })
}

#[cfg(test)]
mod tests {
    use super::super::model::ModelError;
    use super::*;

    /// Output 0: forecast = window level.
    struct Flat;
    impl BatchModel for Flat {
        fn name(&self) -> &str {
            "flat"
        }
        fn infer(&mut self, _x: &[f32], out: &mut [[f32; 3]]) -> Result<(), ModelError> {
            out.iter_mut().for_each(|o| *o = [0.0; 3]);
            Ok(())
        }
    }
    /// Forecast = level · e^0.5 (worse on a flat series).
    struct High;
    impl BatchModel for High {
        fn name(&self) -> &str {
            "high"
        }
        fn infer(&mut self, _x: &[f32], out: &mut [[f32; 3]]) -> Result<(), ModelError> {
            out.iter_mut().for_each(|o| *o = [0.5; 3]);
            Ok(())
        }
    }
    struct Panics;
    impl BatchModel for Panics {
        fn name(&self) -> &str {
            "panics"
        }
        fn infer(&mut self, _x: &[f32], _out: &mut [[f32; 3]]) -> Result<(), ModelError> {
            panic!("injected model panic")
        }
    }
    struct Fails;
    impl BatchModel for Fails {
        fn name(&self) -> &str {
            "fails"
        }
        fn infer(&mut self, _x: &[f32], _out: &mut [[f32; 3]]) -> Result<(), ModelError> {
            Err(ModelError::NonFinite {
                name: "fails".into(),
                count: 3,
            })
        }
    }

    fn bucket(t: u64, vals: &[u64]) -> Bucket {
        Bucket::per_dest(t, t * BUCKET_LOGICAL_MS, vals.to_vec(), vals.to_vec())
    }

    fn cfg(n_dest: usize) -> EngineConfig {
        EngineConfig {
            n_dest,
            shard_timeout: Duration::from_secs(10),
            correction: None,
            ..Default::default()
        }
    }

    #[test]
    fn failed_shards_fall_back_to_a_baseline() {
        let models: Vec<Option<Box<dyn BatchModel>>> = vec![
            Some(Box::new(Flat)),
            Some(Box::new(Panics)),
            Some(Box::new(Fails)),
        ];
        let mut e = Engine::with_models(cfg(6), models);
        let mut last = None;
        for t in 0..10 {
            last = Some(e.step(&bucket(t, &[100, 200, 300, 400, 500, 600])));
        }
        let p = last.unwrap();
        assert_eq!(p.source, PredictorKind::Mixed);
        // Shard 0 = dests 0 and 3 (model), shards 1 and 2 fall back.
        assert_eq!(p.per_dest_source[0], PredictorKind::Model);
        assert_eq!(p.per_dest_source[3], PredictorKind::Model);
        for d in [1, 2, 4, 5] {
            assert_ne!(p.per_dest_source[d], PredictorKind::Model);
            assert!(PredictorKind::BASELINES.contains(&p.per_dest_source[d]));
        }
        // Flat history: model forecasts the level; baselines the value.
        assert!((p.per_dest[0][0] - 100.0).abs() < 1e-3);
        assert!((p.per_dest[4][2] - 500.0).abs() < 1e-3);
        let s = e.stats();
        assert_eq!(s.shard_panics, 1);
        assert_eq!(s.failed_shards, vec![1, 2]);
        assert_eq!(s.fallbacks, 10 * 4);
        assert_eq!(s.inference_failures, 10); // shard 2, every bucket
        assert_eq!(p.epoch, 10);
    }

    #[test]
    fn no_model_means_baselines_everywhere() {
        let mut e = Engine::with_models(cfg(3), vec![None, None]);
        let p = e.step(&bucket(0, &[5, 6, 7]));
        assert!(
            p.per_dest_source
                .iter()
                .all(|&s| s == PredictorKind::LastValue)
        );
        assert_eq!(p.per_dest, vec![[5.0; 3], [6.0; 3], [7.0; 3]]);
    }

    #[test]
    fn accuracy_is_tracked_per_predictor() {
        let mut e = Engine::with_models(cfg(2), vec![Some(Box::new(High))]);
        for t in 0..100 {
            e.step(&bucket(t, &[100, 100]));
        }
        let s = e.stats();
        let get = |n: &str| {
            s.accuracy
                .iter()
                .find(|a| a.predictor == n)
                .unwrap()
                .clone()
        };
        assert!(get("last_value").mae[0] < 1e-6);
        assert!(get("model").mae[0] > 10.0);
        assert!(get("model").scored > 0);
    }

    #[test]
    fn shadow_candidate_promoted_only_when_better() {
        // Active "high" is worse than candidate "flat" on a flat series.
        let c = EngineConfig {
            shadow: ShadowParams {
                window: 10,
                margin: 0.0,
            },
            ..cfg(2)
        };
        let mut e = Engine::with_models(c, vec![Some(Box::new(High))]);
        for t in 0..5 {
            e.step(&bucket(t, &[100, 100]));
        }
        e.shards[0]
            .tx
            .send(ShardMsg::Candidate(Box::new(Flat)))
            .unwrap();
        for t in 5..40 {
            e.step(&bucket(t, &[100, 100]));
        }
        let s = e.stats();
        assert_eq!((s.promotions, s.rejections), (1, 0));
        assert_eq!(s.model.as_deref(), Some("flat"));
        // Now a worse candidate is rejected and "flat" stays.
        e.shards[0]
            .tx
            .send(ShardMsg::Candidate(Box::new(High)))
            .unwrap();
        for t in 40..80 {
            e.step(&bucket(t, &[100, 100]));
        }
        let s = e.stats();
        assert_eq!((s.promotions, s.rejections), (1, 1));
        assert_eq!(s.model.as_deref(), Some("flat"));
    }

    #[test]
    fn bad_model_command_is_refused_and_previous_keeps_running() {
        let mut e = Engine::with_models(cfg(2), vec![Some(Box::new(Flat))]);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.onnx");
        std::fs::write(&p, b"garbage").unwrap();
        std::fs::write(p.with_extension("json"), b"{}").unwrap();
        let err = e.handle_command(Command::LoadModel(p.clone())).unwrap_err();
        assert!(err.to_string().contains("bad.json"), "{err}");
        let err = e
            .handle_command(Command::ActivateModel(dir.path().join("missing.onnx")))
            .unwrap_err();
        assert!(err.to_string().contains("missing.onnx"), "{err}");
        let pr = e.step(&bucket(0, &[10, 20]));
        assert!(
            pr.per_dest_source
                .iter()
                .all(|&s| s == PredictorKind::Model)
        );
    }

    #[test]
    fn spawned_engine_publishes_and_obeys_commands() {
        let counters = vec![Arc::new(DestCounters::new(4, 2))];
        let c = EngineConfig {
            n_dest: 4,
            time_scale: 600.0,
            n_instances: 2,
            no_model: true,
            ..Default::default()
        };
        let h = spawn(c, counters.clone()).unwrap();
        for _ in 0..50 {
            counters[0].add(1, 0, 100);
        }
        let t0 = Instant::now();
        while h.predictions.load().epoch < 2 && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let p = h.predictions.load_full();
        assert!(p.epoch >= 2);
        assert_eq!(p.per_dest.len(), 4);
        let s = h.stats().unwrap();
        assert!(s.buckets >= 2);
        h.shutdown();
    }

    #[test]
    fn real_model_serves_and_a_nan_model_falls_back() {
        use super::super::scenario::{Scenario, ScenarioConfig};
        let data = |f: &str| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data")
                .join(f)
        };
        let c = EngineConfig {
            n_dest: 6,
            n_instances: 2,
            shard_timeout: Duration::from_secs(30),
            ..Default::default()
        };
        let mut e = Engine::new(c).unwrap();
        let s = Scenario::generate(&ScenarioConfig::preset("mixed", 6).unwrap(), 5, 60);
        let vals = |t: usize| (0..6).map(|d| s.buckets[d][t] as u64).collect::<Vec<_>>();
        for t in 0..40 {
            e.step(&bucket(t as u64, &vals(t)));
        }
        let p = e.predictions().load_full();
        assert_eq!(p.source, PredictorKind::Model);
        assert!(
            p.per_dest
                .iter()
                .flatten()
                .all(|v| v.is_finite() && *v >= 0.0)
        );
        // A wrong-shape model is refused; the active one keeps serving.
        let err = e
            .handle_command(Command::LoadModel(data("tpe-wrong-shape.onnx")))
            .unwrap_err();
        assert!(err.to_string().contains("shape"), "{err}");
        assert_eq!(e.step(&bucket(40, &vals(40))).source, PredictorKind::Model);
        // A model that validates but outputs NaN: every inference rejected, baselines serve.
        e.handle_command(Command::ActivateModel(data("tpe-nan.onnx")))
            .unwrap();
        let before = e.stats().inference_failures;
        for t in 41..46 {
            let p = e.step(&bucket(t as u64, &vals(t)));
            assert!(
                p.per_dest_source
                    .iter()
                    .all(|k| PredictorKind::BASELINES.contains(k)),
                "{:?}",
                p.per_dest_source
            );
        }
        assert_eq!(e.stats().inference_failures - before, 2 * 5);
        assert_eq!(e.stats().failed_shards, vec![0, 1]);
    }

    #[test]
    fn history_slides_and_fills_gaps() {
        let mut h = SlidingHistory {
            x: Vec::new(),
            base: 0,
        };
        h.push(10, 1.0);
        h.push(13, 2.0);
        assert_eq!(h.x, vec![1.0, 1.0, 1.0, 2.0]);
        assert_eq!(h.base, 10);
        h.push(12, 9.0); // replay ignored
        assert_eq!(h.x.len(), 4);
        for t in 14..(14 + 2 * HISTORY as u64) {
            h.push(t, 3.0);
        }
        assert!(h.x.len() < 2 * HISTORY);
        assert_eq!(h.base + h.x.len() as u64 - 1, 13 + 2 * HISTORY as u64);
    }
}
