//! The TPE inside `steerd run` (cold: the `tpe` and `tpe-shard-K` threads, plus readers
//! on the `ctl` thread and the controller; never a worker).
//!
//! [`LiveTpe::start`] builds an [`EngineConfig`] from the `[tpe]` section, validates the
//! model (a refused model stops start-up with an error naming `tpe.model`), and starts
//! [`engine::spawn`] over the same [`DestCounters`] the workers bump. The engine's
//! [`Aggregator`](crate::telemetry::Aggregator) reads them with relaxed loads once per
//! bucket: the workers never wait, lock or allocate for it.
//!
//! Readers (status, metrics, stats line, screen) load the engine's last published
//! [`Predictions`] and [`EngineStats`] from `ArcSwap`s; only `model load` talks to the
//! engine thread (and waits for its answer, on the `ctl` thread). [`LiveTpe::finish`]
//! stops the engine after the workers have drained and returns the final `tpe` object
//! of the summary.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use serde_json::{Value, json};

use super::engine::{self, Command, Commander, EngineConfig, EngineHandle, EngineStats, Reply};
use super::learn::{CorrectionParams, ShadowParams};
use super::scenario::{Event, EventCalendar};
use super::{HORIZONS, Predictions, PredictorKind, TpeError, model};
use crate::app::SetupError;
use crate::config::{Config, EventStart, MAX_TPE_EVENTS, TpeEventConfig};
use crate::ctl::MetricsRegistry;
use crate::ctl::metrics::{counter, gauge, gauges};
use crate::ctl::proto::OpError;
use crate::ctl::tpe::{EventRequest, TpeLink};
use crate::telemetry::{BUCKET_LOGICAL_MS, DestCounters};

/// How long `model load` waits for the engine thread (validation builds a tract plan).
const LOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// Destinations shown on the screen and in `/status`'s `top`.
const TOP: usize = 5;

/// The engine settings of a validated config's `[tpe]` section, bucket 0 starting now.
pub fn engine_config(cfg: &Config) -> EngineConfig {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    engine_config_at(cfg, now)
}

/// A scheduled event of `[[tpe.events]]` as the engine sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEvent {
    /// Position in `[[tpe.events]]`; events added over ctl are numbered on from there
    /// (an index is never reused while steerd runs).
    pub index: usize,
    /// Where it came from: `"config"` or `"ctl"`.
    pub origin: &'static str,
    /// `name`, if given.
    pub name: Option<String>,
    /// Logical start (Unix ms).
    pub start_unix_ms: u64,
    /// The engine's calendar entry (`None`: the event was over before bucket 0).
    pub event: Option<Event>,
}

/// `[[tpe.events]]` against bucket 0 at logical time `origin_unix_ms`: bucket `b`
/// covers `origin + b·60 s ..`; an event that started before bucket 0 keeps its
/// remaining minutes, one that ended before it is dropped (and listed as such).
pub fn live_events(cfg: &Config, origin_unix_ms: u64) -> Vec<LiveEvent> {
    cfg.tpe
        .events
        .iter()
        .enumerate()
        .map(|(index, e)| live_event(index, "config", e, origin_unix_ms))
        .collect()
}

/// One validated event against bucket 0 at logical time `origin_unix_ms` (see
/// [`live_events`]).
pub fn live_event(
    index: usize,
    origin: &'static str,
    e: &TpeEventConfig,
    origin_unix_ms: u64,
) -> LiveEvent {
    let start_unix_ms = match e.start_at() {
        EventStart::UnixMs(ms) => ms,
        EventStart::AfterMin(m) => origin_unix_ms + m * BUCKET_LOGICAL_MS,
    };
    let (start_bucket, duration) = if start_unix_ms >= origin_unix_ms {
        (
            (start_unix_ms - origin_unix_ms) / BUCKET_LOGICAL_MS,
            e.duration_min,
        )
    } else {
        let past = (origin_unix_ms - start_unix_ms).div_ceil(BUCKET_LOGICAL_MS);
        (
            0,
            e.duration_min
                .saturating_sub(past.min(u64::from(u32::MAX)) as u32),
        )
    };
    LiveEvent {
        index,
        origin,
        name: e.name.clone(),
        start_unix_ms,
        event: (duration > 0).then(|| Event {
            start_bucket,
            duration,
            dests: e.destinations.clone(),
            factor: e.factor,
        }),
    }
}

/// [`engine_config`] with bucket 0 at logical time `origin_unix_ms`.
pub fn engine_config_at(cfg: &Config, origin_unix_ms: u64) -> EngineConfig {
    let t = &cfg.tpe;
    let events = EventCalendar {
        events: live_events(cfg, origin_unix_ms)
            .into_iter()
            .filter_map(|e| e.event)
            .collect(),
    };
    EngineConfig {
        events,
        origin_unix_ms: Some(origin_unix_ms),
        n_dest: t.n_destinations(cfg.general.telemetry_destinations),
        time_scale: t.effective_time_scale(),
        n_instances: t.shards.max(1),
        model: t.model.as_ref().map(|p| cfg.resolve(p)),
        no_model: t.baselines_only,
        correction: t.correction.then(CorrectionParams::default),
        shadow: ShadowParams {
            window: t.shadow_window,
            margin: t.shadow_margin,
        },
        accuracy_window: t.accuracy_window,
        shard_timeout: Duration::from_millis(t.shard_timeout_ms),
        ..EngineConfig::default()
    }
}

fn model_error(cfg: &Config, e: TpeError) -> SetupError {
    match e {
        TpeError::Model(m) => SetupError::Config(cfg.error("tpe.model", m.to_string())),
        other => SetupError::Other(other.to_string()),
    }
}

/// Validates the configured model without starting anything (`steerd check`). Returns
/// what would run.
pub fn check(cfg: &Config) -> Result<String, SetupError> {
    let ec = engine_config(cfg);
    let all = live_events(cfg, ec.origin_unix_ms.unwrap_or(0));
    let over = all.iter().filter(|e| e.event.is_none()).count();
    let events = match (all.len(), over) {
        (0, _) => String::new(),
        (n, 0) => format!(", {n} scheduled event(s)"),
        (n, o) => format!(", {n} scheduled event(s) ({o} already over)"),
    };
    if ec.no_model {
        return Ok(format!("baselines only{events}"));
    }
    let m = model::resolve(ec.model.as_deref()).map_err(|e| model_error(cfg, e.into()))?;
    Ok(format!(
        "model {} ({} v{}) ok{events}",
        m.label(),
        m.spec().name,
        m.spec().version
    ))
}

struct Info {
    time_scale: f64,
    bucket_ms: f64,
    shadow_window: usize,
    /// Wall-clock (= logical) Unix ms of bucket 0's start.
    origin_unix_ms: u64,
    n_dest: usize,
}

/// The scheduled events in force: `[[tpe.events]]` plus those added over ctl. The
/// engine's calendar is rebuilt from `list` on every change.
struct EventBook {
    list: Vec<LiveEvent>,
    next_index: usize,
}

/// What readers share: the engine's publications and its command channel.
struct Link {
    predictions: Arc<ArcSwap<Predictions>>,
    stats: Arc<ArcSwap<EngineStats>>,
    cmd: Commander,
    info: Info,
    /// Cold: taken by status and the ctl event commands only, never by the engine.
    events: Mutex<EventBook>,
    calendar: Arc<ArcSwap<EventCalendar>>,
    /// Set once the engine has been stopped (status then says so).
    stopped: AtomicBool,
}

/// A running engine (owned by `Appliance::run`).
pub struct LiveTpe {
    handle: Option<EngineHandle>,
    link: Arc<Link>,
}

impl LiveTpe {
    /// Starts the engine over the workers' telemetry counters and registers its metrics
    /// (`steerd_tpe_*`). Fails, with nothing started, when the model is refused.
    pub fn start(
        cfg: &Config,
        counters: Vec<Arc<DestCounters>>,
        metrics: &MetricsRegistry,
    ) -> Result<LiveTpe, SetupError> {
        let ec = engine_config(cfg);
        let events = live_events(cfg, ec.origin_unix_ms.unwrap_or(0));
        for e in events.iter().filter(|e| e.event.is_none()) {
            tracing::warn!(
                "tpe.events[{}] ended before the engine started; it is not scheduled",
                e.index
            );
        }
        let info = Info {
            time_scale: ec.time_scale,
            bucket_ms: ec.bucket_duration().as_secs_f64() * 1e3,
            shadow_window: ec.shadow.window,
            origin_unix_ms: ec.origin_unix_ms.unwrap_or(0),
            n_dest: ec.n_dest,
        };
        let book = EventBook {
            next_index: events.len(),
            list: events,
        };
        let shards = ec.n_instances;
        let n_dest = ec.n_dest;
        let handle = engine::spawn(ec, counters).map_err(|e| model_error(cfg, e))?;
        let link = Arc::new(Link {
            predictions: handle.predictions.clone(),
            stats: handle.stats.clone(),
            cmd: handle.commander(),
            info,
            events: Mutex::new(book),
            calendar: handle.calendar.clone(),
            stopped: AtomicBool::new(false),
        });
        metrics.with(|r| {
            r.sub_registry_with_prefix("tpe")
                .register_collector(Box::new(TpeCollector(link.clone())))
        });
        let s = link.stats.load();
        tracing::info!(
            "tpe: {} on {n_dest} destinations, {shards} shard(s), bucket {:.0} ms (time_scale {}), {} scheduled event(s)",
            s.model.as_deref().unwrap_or("baselines only"),
            link.info.bucket_ms,
            link.info.time_scale,
            link.book()
                .list
                .iter()
                .filter(|e| e.event.is_some())
                .count()
        );
        Ok(LiveTpe {
            handle: Some(handle),
            link,
        })
    }

    /// The readers' view (status, metrics, screen, `model load`).
    pub fn link(&self) -> Arc<dyn TpeLink> {
        self.link.clone()
    }

    /// The published predictions (what RAM will read: `load()` never blocks).
    pub fn predictions(&self) -> Arc<ArcSwap<Predictions>> {
        self.link.predictions.clone()
    }

    /// For the live RAM: per destination, whether a scheduled event that raises its
    /// traffic (factor above 1.05) is running or starts within the given minutes.
    pub fn events_soon(&self) -> crate::ram::live::EventsSoon {
        let link = self.link.clone();
        Box::new(move |look| link.raising_soon(look))
    }

    /// Stops the engine and its shards; returns the final `tpe` object.
    pub fn finish(mut self) -> Value {
        self.stop();
        self.link.status()
    }

    fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
            self.link.stopped.store(true, Ordering::Release);
        }
    }
}

impl Drop for LiveTpe {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Packets per bucket for people: 950, 12.3k, 1.63M.
fn count(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

impl Link {
    /// `[[tpe.events]]` as scheduled: bucket range and state against the last bucket.
    fn events_json(&self, p: &Predictions) -> Vec<Value> {
        self.book()
            .list
            .iter()
            .map(|e| Self::event_json(e, p))
            .collect()
    }

    fn book(&self) -> std::sync::MutexGuard<'_, EventBook> {
        // A panic while holding it cannot leave the book half-changed (each change is
        // one push or remove), so a poisoned lock is still usable.
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The logical bucket now (the one being counted).
    fn now_bucket(&self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let logical = wall.saturating_sub(self.info.origin_unix_ms) as f64 * self.info.time_scale;
        (logical / BUCKET_LOGICAL_MS as f64) as u64
    }

    fn event_json(e: &LiveEvent, p: &Predictions) -> Value {
        let mut v = json!({"index": e.index, "name": e.name, "origin": e.origin,
                           "start_unix_ms": e.start_unix_ms});
        match &e.event {
            None => v["state"] = json!("over before start"),
            Some(ev) => {
                let end = ev.start_bucket + u64::from(ev.duration);
                let state = if p.epoch == 0 || p.bucket_index < ev.start_bucket {
                    "scheduled"
                } else if p.bucket_index < end {
                    "active"
                } else {
                    "done"
                };
                v["state"] = json!(state);
                v["start_bucket"] = json!(ev.start_bucket);
                v["duration_min"] = json!(ev.duration);
                v["destinations"] = json!(ev.dests);
                v["factor"] = json!(ev.factor);
            }
        }
        v
    }

    /// See [`LiveTpe::events_soon`].
    fn raising_soon(&self, look_min: u64) -> Vec<bool> {
        let now = self.now_bucket();
        let cal = self.calendar.load();
        (0..self.info.n_dest)
            .map(|d| cal.raises_within(d, now, now + look_min))
            .collect()
    }

    /// Rebuilds the engine's calendar from the book (cold; the shards pick it up at
    /// their next bucket).
    fn publish_calendar(&self, book: &EventBook) {
        self.calendar.store(Arc::new(EventCalendar {
            events: book.list.iter().filter_map(|e| e.event.clone()).collect(),
        }));
    }

    fn mae(s: &EngineStats, name: &str) -> Option<[f64; 3]> {
        s.accuracy
            .iter()
            .find(|a| a.predictor == name && a.scored > 0)
            .map(|a| a.mae)
    }

    /// Destinations with the largest 5-minute forecast (non-zero only).
    fn top(p: &Predictions, n: usize) -> Vec<usize> {
        let mut d: Vec<usize> = (0..p.per_dest.len())
            .filter(|&d| p.per_dest[d][0] > 0.0)
            .collect();
        d.sort_by(|&a, &b| p.per_dest[b][0].total_cmp(&p.per_dest[a][0]));
        d.truncate(n);
        d
    }

    fn best(s: &EngineStats) -> &'static str {
        s.best_baseline.unwrap_or(PredictorKind::LastValue).name()
    }

    /// "MAE 5m model 12.3k vs ewma 15.1k (0.81×)", or why there is none yet.
    fn mae_text(s: &EngineStats) -> String {
        let best = Self::best(s);
        match (Self::mae(s, "model"), Self::mae(s, best)) {
            (Some(m), Some(b)) => format!(
                "MAE 5m model {} vs {best} {}{}",
                count(m[0]),
                count(b[0]),
                if b[0] > 0.0 {
                    format!(" ({:.2}x)", m[0] / b[0])
                } else {
                    String::new()
                }
            ),
            (None, Some(b)) => format!("MAE 5m {best} {} (no model scored)", count(b[0])),
            _ => format!(
                "MAE: none yet (the 5m horizon is scored {} buckets after a forecast)",
                HORIZONS[0].buckets
            ),
        }
    }
}

impl TpeLink for Link {
    fn add_event(&self, req: &EventRequest) -> Result<Value, OpError> {
        let field_err = |k: &str, m: String| {
            OpError::new("bad_event", format!("{k}: {m}")).with("field", json!(k))
        };
        let now = self.now_bucket();
        let start_after_min = match (req.start.as_ref(), req.start_in_min) {
            (None, Some(m)) => Some(now.saturating_add(m)),
            (Some(_), Some(_)) => {
                return Err(field_err(
                    "start_in_min",
                    "give start (RFC 3339) or start_in_min, not both".into(),
                ));
            }
            (_, None) => None,
        };
        let cfg = TpeEventConfig {
            start: req.start.clone(),
            start_after_min,
            duration_min: req.duration_min,
            destinations: req.destinations.clone(),
            factor: req.factor,
            name: req.name.clone(),
        };
        cfg.check(self.info.n_dest).map_err(|(k, m)| {
            let k = if k == "start_after_min" { "start_in_min".to_string() } else { k };
            let m = if k == "start" && req.start.is_none() {
                "give start (RFC 3339, e.g. \"2026-12-24T18:00:00Z\") or start_in_min (minutes from now)".into()
            } else {
                m
            };
            field_err(&k, m)
        })?;
        let mut book = self.book();
        if book.list.len() >= MAX_TPE_EVENTS {
            return Err(OpError::new(
                "bad_event",
                format!(
                    "{} events are scheduled: at most {MAX_TPE_EVENTS}",
                    book.list.len()
                ),
            ));
        }
        if let Some(n) = &req.name
            && book
                .list
                .iter()
                .any(|e| e.name.as_deref() == Some(n.as_str()))
        {
            return Err(field_err(
                "name",
                format!("an event named {n:?} is already scheduled"),
            ));
        }
        let ev = live_event(book.next_index, "ctl", &cfg, self.info.origin_unix_ms);
        match &ev.event {
            Some(e) if e.start_bucket + u64::from(e.duration) > now => {}
            _ => {
                return Err(field_err(
                    if req.start.is_some() {
                        "start"
                    } else {
                        "start_in_min"
                    },
                    "the event would be over before now".into(),
                ));
            }
        }
        book.next_index += 1;
        book.list.push(ev.clone());
        self.publish_calendar(&book);
        let n = book.list.len();
        drop(book);
        tracing::info!(
            "tpe: event {} added over ctl ({} min from bucket {}, destinations {:?}, factor {})",
            ev.name.clone().unwrap_or_else(|| ev.index.to_string()),
            req.duration_min,
            ev.event.as_ref().map_or(0, |e| e.start_bucket),
            req.destinations,
            req.factor
        );
        let mut v = Self::event_json(&ev, &self.predictions.load());
        v["scheduled"] = json!(n);
        v["note"] = json!(
            "the model sees it in its event features from the next bucket, and a live RAM holds capacity for it; \
             it is not written to the config (restarting drops it)"
        );
        Ok(v)
    }

    fn remove_event(&self, key: &str) -> Result<Value, OpError> {
        let mut book = self.book();
        let pos = book.list.iter().position(|e| {
            e.name.as_deref() == Some(key) || key.parse::<usize>().ok() == Some(e.index)
        });
        let Some(pos) = pos else {
            return Err(OpError::new(
                "unknown_event",
                format!(
                    "no scheduled event is named or numbered {key:?} (see `steerd ctl events list`)"
                ),
            ));
        };
        let ev = book.list.remove(pos);
        self.publish_calendar(&book);
        let n = book.list.len();
        drop(book);
        tracing::info!("tpe: event {key} ({}) removed over ctl", ev.origin);
        let mut v = Self::event_json(&ev, &self.predictions.load());
        v["removed"] = json!(true);
        v["scheduled"] = json!(n);
        if ev.origin == "config" {
            v["note"] = json!("removed until steerd restarts: it is still in the config file");
        }
        Ok(v)
    }

    fn events(&self) -> Value {
        let p = self.predictions.load();
        json!({"now_bucket": self.now_bucket(), "events": self.events_json(&p)})
    }

    fn status(&self) -> Value {
        let s = self.stats.load();
        let p = self.predictions.load();
        let mut accuracy = serde_json::Map::new();
        for a in &s.accuracy {
            let m = |k: usize| (a.scored_per_horizon[k] > 0).then_some(a.mae[k]);
            accuracy.insert(
                a.predictor.clone(),
                json!({"mae": {"5m": m(0), "15m": m(1), "1h": m(2)}, "scored": a.scored,
                       "scored_per_horizon": {"5m": a.scored_per_horizon[0],
                           "15m": a.scored_per_horizon[1], "1h": a.scored_per_horizon[2]}}),
            );
        }
        let best = Self::best(&s);
        let model_acc = s.accuracy.iter().find(|a| a.predictor == "model");
        let ratio = match (model_acc, Self::mae(&s, best)) {
            (Some(m), Some(b)) if m.scored > 0 => {
                let r =
                    |k: usize| (m.scored_per_horizon[k] > 0 && b[k] > 0.0).then(|| m.mae[k] / b[k]);
                json!({"5m": r(0), "15m": r(1), "1h": r(2)})
            }
            _ => Value::Null,
        };
        let mut by_source = serde_json::Map::new();
        for k in &p.per_dest_source {
            let e = by_source.entry(k.name()).or_insert(json!(0));
            *e = json!(e.as_u64().unwrap_or(0) + 1);
        }
        let top: Vec<Value> = Self::top(&p, TOP)
            .into_iter()
            .map(|d| {
                let v = p.per_dest[d];
                json!({"dest": d, "5m": v[0], "15m": v[1], "1h": v[2],
                       "source": p.per_dest_source[d].name()})
            })
            .collect();
        json!({
            "state": if self.stopped.load(Ordering::Acquire) { "stopped" } else { "running" },
            "model": s.model,
            "candidate": s.candidate,
            "source": p.source.name(),
            "time_scale": self.info.time_scale,
            "bucket_ms": self.info.bucket_ms,
            "shards": s.shards,
            "destinations": p.per_dest.len(),
            "buckets": s.buckets,
            "epoch": p.epoch,
            "last_bucket": p.bucket_index,
            "inferences": s.inferences,
            "inference_failures": s.inference_failures,
            "inference_us": {"p50": s.infer_p50_us, "p99": s.infer_p99_us},
            "fallbacks": s.fallbacks,
            "failed_shards": s.failed_shards,
            "shard_panics": s.shard_panics,
            "shard_timeouts": s.shard_timeouts,
            "promotions": s.promotions,
            "rejections": s.rejections,
            "models_refused": s.models_refused,
            "correction_updates": s.correction_updates,
            "shadow_window": self.info.shadow_window,
            "accuracy": accuracy,
            "best_baseline": best,
            "model_mae_ratio_to_best_baseline": ratio,
            "destinations_by_source": by_source,
            "top": top,
            "events": self.events_json(&p),
            "line": self.line(),
        })
    }

    fn line(&self) -> String {
        let s = self.stats.load();
        let p = self.predictions.load();
        if p.epoch == 0 {
            return format!(
                "tpe: {}; first bucket after {:.0} ms",
                s.model.as_deref().unwrap_or("baselines only"),
                self.info.bucket_ms
            );
        }
        let top: Vec<String> = Self::top(&p, 3)
            .into_iter()
            .map(|d| format!("d{d} {}", count(f64::from(p.per_dest[d][0]))))
            .collect();
        let mut l = format!(
            "tpe: bucket {} source {}  next 5m: {}  {}  infer p50 {}us p99 {}us",
            p.bucket_index,
            p.source.name(),
            if top.is_empty() {
                "no traffic".to_string()
            } else {
                top.join(" ")
            },
            Self::mae_text(&s),
            s.infer_p50_us,
            s.infer_p99_us
        );
        if !s.failed_shards.is_empty() {
            l.push_str(&format!(
                "  FALLBACK shards {:?} on {}",
                s.failed_shards,
                Self::best(&s)
            ));
        }
        l
    }

    fn screen_lines(&self) -> Vec<String> {
        let s = self.stats.load();
        let p = self.predictions.load();
        let mut out = vec![format!(
            "\x1b[1mprediction (TPE)\x1b[0m  model {}  source {}  bucket {} ({:.0} ms, time_scale {})  shards {} failed {:?}",
            s.model.as_deref().unwrap_or("none (baselines)"),
            p.source.name(),
            p.bucket_index,
            self.info.bucket_ms,
            self.info.time_scale,
            s.shards,
            s.failed_shards
        )];
        out.push(format!(
            "  inferences {} (failed {})  p50 {}us p99 {}us  fallbacks {}  candidate {}  promoted {} rejected {} refused {}",
            s.inferences,
            s.inference_failures,
            s.infer_p50_us,
            s.infer_p99_us,
            s.fallbacks,
            s.candidate.as_deref().unwrap_or("none"),
            s.promotions,
            s.rejections,
            s.models_refused
        ));
        let top = Self::top(&p, TOP);
        if p.epoch == 0 {
            out.push(format!(
                "  waiting for the first bucket ({:.0} ms)",
                self.info.bucket_ms
            ));
        } else if top.is_empty() {
            out.push("  no traffic predicted".into());
        } else {
            out.push(format!(
                "  {:<6} {:>10} {:>10} {:>10}  {}",
                "dest", "5m", "15m", "1h", "source"
            ));
            for d in top {
                let v = p.per_dest[d];
                out.push(format!(
                    "  {:<6} {:>10} {:>10} {:>10}  {}",
                    d,
                    count(f64::from(v[0])),
                    count(f64::from(v[1])),
                    count(f64::from(v[2])),
                    p.per_dest_source[d].name()
                ));
            }
        }
        let mut mae = String::from("  MAE 5m/15m/1h:");
        for a in s.accuracy.iter().filter(|a| a.scored > 0) {
            let m = |k: usize| {
                if a.scored_per_horizon[k] > 0 {
                    count(a.mae[k])
                } else {
                    "-".into()
                }
            };
            mae.push_str(&format!("  {} {}/{}/{}", a.predictor, m(0), m(1), m(2)));
        }
        if s.accuracy.iter().all(|a| a.scored == 0) {
            mae.push_str(" not scored yet");
        } else {
            mae.push_str(&format!("  (best baseline {})", Self::best(&s)));
        }
        out.push(mae);
        out
    }

    fn load_model(&self, path: &Path) -> Result<Value, OpError> {
        let active = self.stats.load().model.clone();
        match self
            .cmd
            .command(Command::LoadModel(path.to_path_buf()), LOAD_TIMEOUT)
        {
            Ok(Reply::Done(msg)) => Ok(json!({
                "path": path.display().to_string(),
                "message": msg,
                "active": active,
                "shadow_window": self.info.shadow_window,
                "note": format!(
                    "runs in shadow for {} buckets and is promoted only if its MAE beats the active model's; \
                     see promotions/rejections in status",
                    self.info.shadow_window
                ),
            })),
            Ok(Reply::Stats(_)) => Err(OpError::new(
                "internal",
                "unexpected answer from the tpe thread",
            )),
            Err(TpeError::Model(e)) => Err(OpError::new(
                "model_refused",
                format!(
                    "{e}; nothing changed: {} keeps serving",
                    active.as_deref().unwrap_or("the baseline")
                ),
            )
            .with("active", json!(active))),
            Err(e) => Err(OpError::new("tpe", e.to_string())),
        }
    }
}

/// `steerd_tpe_*` at scrape time, from the engine's last publication.
struct TpeCollector(Arc<Link>);

impl fmt::Debug for TpeCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TpeCollector")
    }
}

impl Collector for TpeCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let s = self.0.stats.load();
        let p = self.0.predictions.load();
        let e = &mut e;
        let counters: [(&str, &str, u64); 10] = [
            ("buckets", "Telemetry buckets processed", s.buckets),
            (
                "inferences",
                "Model inferences (one per shard per bucket)",
                s.inferences,
            ),
            (
                "inference_failures",
                "Inferences that failed or output NaN/inf (a baseline served instead)",
                s.inference_failures,
            ),
            (
                "fallbacks",
                "Destination-buckets served by a baseline instead of the model",
                s.fallbacks,
            ),
            (
                "shard_panics",
                "Shard panics caught (the shard drops its model)",
                s.shard_panics,
            ),
            (
                "shard_timeouts",
                "Shard answers that missed their bucket",
                s.shard_timeouts,
            ),
            (
                "promotions",
                "Candidate models promoted after shadow evaluation (per shard)",
                s.promotions,
            ),
            (
                "rejections",
                "Candidate models rejected after shadow evaluation (per shard)",
                s.rejections,
            ),
            (
                "models_refused",
                "Models refused by validation (corrupt, wrong shape, spec mismatch)",
                s.models_refused,
            ),
            (
                "correction_updates",
                "Online correction updates",
                s.correction_updates,
            ),
        ];
        for (name, help, v) in counters {
            counter(e, name, help, v)?;
        }
        gauge(
            e,
            "epoch",
            "Epoch of the published predictions",
            p.epoch as f64,
        )?;
        gauge(e, "shards", "Engine instances", s.shards as f64)?;
        gauge(
            e,
            "failed_shards",
            "Shards currently served by a baseline",
            s.failed_shards.len() as f64,
        )?;
        gauge(
            e,
            "destinations",
            "Destinations predicted",
            p.per_dest.len() as f64,
        )?;
        gauges(
            e,
            "inference_quantile_seconds",
            "Model inference time per shard and bucket (worst shard), by quantile",
            [
                (
                    vec![("quantile", "0.5".to_string())],
                    s.infer_p50_us as f64 * 1e-6,
                ),
                (
                    vec![("quantile", "0.99".to_string())],
                    s.infer_p99_us as f64 * 1e-6,
                ),
            ],
        )?;
        gauges(
            e,
            "mae_packets",
            "Rolling mean absolute error per predictor and horizon, packets per bucket (a horizon appears once scored)",
            s.accuracy.iter().flat_map(|a| {
                HORIZONS
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| a.scored_per_horizon[*k] > 0)
                    .map(move |(k, h)| {
                        (
                            vec![
                                ("predictor", a.predictor.clone()),
                                ("horizon", h.label.to_string()),
                            ],
                            a.mae[k],
                        )
                    })
            }),
        )?;
        let kinds = [
            PredictorKind::Model,
            PredictorKind::LastValue,
            PredictorKind::SeasonalNaive,
            PredictorKind::Ewma,
            PredictorKind::HoltWinters,
        ];
        gauges(
            e,
            "destinations_by_source",
            "Destinations of the last publication, by the predictor that served them",
            kinds.map(|k| {
                (
                    vec![("source", k.name().to_string())],
                    p.per_dest_source.iter().filter(|&&x| x == k).count() as f64,
                )
            }),
        )?;
        gauges(
            e,
            "model_info",
            "The active model (value 1)",
            s.model
                .iter()
                .map(|m| (vec![("model", m.clone())], 1.0))
                .collect::<Vec<_>>(),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_well() {
        assert_eq!(count(950.0), "950");
        assert_eq!(count(12_345.0), "12.3k");
        assert_eq!(count(1_630_000.0), "1.63M");
        assert_eq!(count(f64::NAN), "-");
    }

    /// Echoes the calendar features `ev_5`, `ev_15`, `ev_60` as its outputs, so a
    /// forecast is `(level + 1) · factor(t + h) − 1`: what the shards' feature rows saw.
    struct EchoEvents(Vec<usize>);
    impl model::BatchModel for EchoEvents {
        fn name(&self) -> &str {
            "echo-events"
        }
        fn infer(&mut self, x: &[f32], out: &mut [[f32; 3]]) -> Result<(), model::ModelError> {
            let n = super::super::features::N_FEATURES;
            for (i, o) in out.iter_mut().enumerate() {
                *o = [0, 1, 2].map(|k| x[i * n + self.0[k]]);
            }
            Ok(())
        }
    }

    fn events_cfg(events: &str) -> Config {
        let text = crate::config::DEFAULT_TOML.replace(
            "time_scale = 300",
            "bucket_ms = 20\ndestinations = 4\ncorrection = false",
        );
        Config::from_toml(
            &format!("{text}\n{events}"),
            "t.toml",
            Path::new("."),
            false,
        )
        .unwrap()
    }

    #[test]
    fn config_events_become_the_engines_calendar() {
        let origin = 1_798_135_200_000; // 2026-12-24T18:00:00Z
        let cfg = events_cfg(
            "[[tpe.events]]\nstart_after_min = 10\nduration_min = 30\ndestinations = [1]\nfactor = 2.0\n\
             [[tpe.events]]\nstart = \"2026-12-24T18:03:30Z\"\nduration_min = 5\ndestinations = [2, 3]\nfactor = 0.5\n\
             [[tpe.events]]\nstart = \"2026-12-24T19:50:00+02:00\"\nduration_min = 30\ndestinations = [0]\nfactor = 3\n\
             [[tpe.events]]\nstart = \"2026-12-24T17:00:00Z\"\nduration_min = 60\ndestinations = [0]\nfactor = 3\nname = \"over\"\n",
        );
        let ec = engine_config_at(&cfg, origin);
        assert_eq!(ec.origin_unix_ms, Some(origin));
        let ev = |start_bucket, duration, dests: &[u16], factor| Event {
            start_bucket,
            duration,
            dests: dests.to_vec(),
            factor,
        };
        assert_eq!(
            ec.events.events,
            vec![
                ev(10, 30, &[1], 2.0),
                ev(3, 5, &[2, 3], 0.5),
                // 17:50Z: began 10 minutes before bucket 0, 20 minutes remain.
                ev(0, 20, &[0], 3.0),
            ]
        );
        let all = live_events(&cfg, origin);
        assert_eq!(all[3].event, None);
        assert_eq!(all[3].name.as_deref(), Some("over"));
        // `steerd check` counts them.
        let c = check(&cfg).unwrap();
        assert!(c.contains("4 scheduled event(s)"), "{c}");
    }

    fn cfg_event(cfg: &Config) -> Event {
        engine_config_at(cfg, 0).events.events[0].clone()
    }

    #[test]
    fn the_engines_feature_rows_see_the_config_events() {
        let cfg = events_cfg(
            "[[tpe.events]]\nstart_after_min = 10\nduration_min = 30\ndestinations = [1]\nfactor = 2.0\n",
        );
        let names = super::super::features::feature_names();
        let idx = ["ev_5", "ev_15", "ev_60"].map(|n| names.iter().position(|x| x == n).unwrap());
        let ec = engine_config_at(&cfg, 0);
        let mut e = engine::Engine::with_models(ec, vec![Some(Box::new(EchoEvents(idx.to_vec())))]);
        let event = cfg_event(&cfg);
        let mut at = Vec::new();
        for t in 0..45 {
            // Destination 1's traffic follows the event (the others stay flat).
            let x1 = (100.0 * event.profile(t)).round() as u64;
            let b = crate::telemetry::Bucket::per_dest(
                t,
                t * BUCKET_LOGICAL_MS,
                vec![100, x1, 100, 100],
                vec![6400; 4],
            );
            at.push(e.step(&b));
        }
        let p = |t: usize, d: usize, k: usize| at[t].per_dest[d][k];
        // Bucket 0: nothing 5 minutes ahead, under way in 15, over in an hour.
        assert!((p(0, 1, 0) - 100.0).abs() < 0.5, "{}", p(0, 1, 0));
        assert!((p(0, 1, 1) - 201.0).abs() < 0.5, "{}", p(0, 1, 1));
        assert!((p(0, 1, 2) - 100.0).abs() < 0.5, "{}", p(0, 1, 2));
        // Bucket 5: the event ramps up 5 minutes ahead (bucket 10: a third of the way).
        assert!(
            (p(5, 1, 0) - (101.0 * 4.0 / 3.0 - 1.0)).abs() < 0.5,
            "{}",
            p(5, 1, 0)
        );
        // Bucket 20: in the middle of it (×2 announced 5 and 15 minutes ahead); the
        // de-evented level stays 100.
        for k in [0, 1] {
            assert!(
                (p(20, 1, k) - 201.0).abs() < 0.5,
                "dest 1 h{k}: {}",
                p(20, 1, k)
            );
            assert!(
                (p(20, 0, k) - 100.0).abs() < 0.5,
                "dest 0 is not in the event"
            );
        }
        // One hour after bucket 20 the event is over.
        assert!((p(20, 1, 2) - 100.0).abs() < 0.5, "{}", p(20, 1, 2));
    }

    /// What `steerd ctl events add` does to the engine: a calendar stored while it runs
    /// reaches the shards' feature rows from the next bucket.
    #[test]
    fn a_calendar_stored_at_run_time_reaches_the_feature_rows() {
        let cfg = events_cfg("");
        let names = super::super::features::feature_names();
        let idx = ["ev_5", "ev_15", "ev_60"].map(|n| names.iter().position(|x| x == n).unwrap());
        let mut e = engine::Engine::with_models(
            engine_config_at(&cfg, 0),
            vec![Some(Box::new(EchoEvents(idx.to_vec())))],
        );
        let mut at = Vec::new();
        for t in 0..8 {
            if t == 4 {
                e.calendar().store(Arc::new(EventCalendar {
                    events: vec![Event {
                        start_bucket: 10,
                        duration: 30,
                        dests: vec![1],
                        factor: 2.0,
                    }],
                }));
            }
            let b = crate::telemetry::Bucket::per_dest(
                t,
                t * BUCKET_LOGICAL_MS,
                vec![100; 4],
                vec![6400; 4],
            );
            at.push(e.step(&b));
        }
        // Bucket 3 (before): nothing announced 15 minutes ahead.
        assert!(
            (at[3].per_dest[1][1] - 100.0).abs() < 0.5,
            "{:?}",
            at[3].per_dest[1]
        );
        // Bucket 5 (after): bucket 20 is in the middle of the event (×2); dest 0 is not in it.
        assert!(
            (at[5].per_dest[1][1] - 201.0).abs() < 0.5,
            "{:?}",
            at[5].per_dest[1]
        );
        assert!(
            (at[5].per_dest[0][1] - 100.0).abs() < 0.5,
            "{:?}",
            at[5].per_dest[0]
        );
    }

    #[test]
    fn live_engine_feeds_status_line_screen_and_metrics() {
        let text = crate::config::DEFAULT_TOML
            .replace("time_scale = 300", "bucket_ms = 20\ndestinations = 4");
        let cfg = Config::from_toml(&text, "t.toml", Path::new("."), false).unwrap();
        let counters = vec![Arc::new(DestCounters::new(4, 2))];
        let reg = MetricsRegistry::new();
        let live = LiveTpe::start(&cfg, counters.clone(), &reg).unwrap();
        let link = live.link();
        assert!(link.line().contains("first bucket"), "{}", link.line());
        let t0 = std::time::Instant::now();
        // This thread is the counters' only writer, as a worker would be.
        while link.status()["epoch"].as_u64().unwrap() < 8 {
            assert!(t0.elapsed() < Duration::from_secs(60), "{}", link.status());
            counters[0].add_n(2, 0, 1000, 64_000);
            counters[0].add_n(1, 0, 10, 640);
            std::thread::sleep(Duration::from_millis(5));
        }
        let st = link.status();
        assert_eq!(st["state"], "running");
        assert_eq!(st["top"][0]["dest"], 2, "{st}");
        assert_eq!(st["top"][1]["dest"], 1, "{st}");
        assert_eq!(st["source"], "model", "{st}");
        assert!(link.line().contains("next 5m: d2 "), "{}", link.line());
        let screen = link.screen_lines().join("\n");
        assert!(screen.contains("prediction (TPE)"), "{screen}");
        assert!(screen.contains("dest") && screen.contains("1h"), "{screen}");
        let m = reg.encode_prometheus();
        assert!(m.contains("steerd_tpe_buckets_total "), "{m}");
        assert!(m.contains("steerd_tpe_model_info{model="), "{m}");
        let f = live.finish();
        assert_eq!(f["state"], "stopped");
        assert!(f["buckets"].as_u64().unwrap() >= 8, "{f}");
        assert_eq!(link.status()["state"], "stopped");
        let e = link
            .load_model(Path::new("models/tpe-default.onnx"))
            .unwrap_err();
        assert_eq!(e.code, "tpe", "a stopped engine answers no more: {e}");
    }

    #[test]
    fn engine_config_follows_the_section() {
        let text = format!(
            "{}\n",
            crate::config::DEFAULT_TOML.replace("shards = 1", "shards = 2\ndestinations = 8")
        );
        let cfg = Config::from_toml(&text, "t.toml", Path::new("/etc/steerd"), false).unwrap();
        let ec = engine_config(&cfg);
        assert_eq!(ec.n_dest, 8);
        assert_eq!(ec.n_instances, 2);
        assert_eq!(ec.time_scale, 300.0);
        assert_eq!(ec.shadow.window, 60);
        assert!(ec.model.is_none());
        let cfg = Config::from_toml(
            &text.replace("shards = 2", "shards = 2\nmodel = \"m/x.onnx\""),
            "t.toml",
            Path::new("/etc/steerd"),
            false,
        )
        .unwrap();
        assert_eq!(
            engine_config(&cfg).model.as_deref(),
            Some(Path::new("/etc/steerd/m/x.onnx")),
            "relative to the config file"
        );
    }
}
