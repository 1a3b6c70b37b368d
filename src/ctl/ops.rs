//! What the control commands do (cold, on the `ctl` thread): status, route changes,
//! key rotation, reload. Every change builds a new table snapshot off the fast path and
//! publishes it with [`TableHandle::publish`]; workers pick it up between bursts, so no
//! packet is lost. A change that fails leaves the published tables, the running config
//! and the route list exactly as they were.
//!
//! Reload policy (all or nothing): settings that only shape the tables (routes, routes
//! file, next hops, steering keys/epoch/destinations, LPM sizes, and each port's
//! `trusted`, `strip_nsh`, `mtu`, `tx_rate_mbps`, `tx_weights`) apply live. Any other change (workers, ports and their
//! backends, pools, the `[ctl]` and `[tpe]` sections …) is refused with the list of
//! fields that need a restart, and nothing is applied. A new model is loaded live with
//! `model load` instead (shadow evaluation, see [`crate::ctl::tpe`]).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde_json::{Value, json};

use super::metrics::MetricsRegistry;
use super::monitor::{SharedLive, lock};
use super::proto::{OpError, Request};
use super::routes::RouteSet;
use super::tpe::{TpeLink, absent_status};
use crate::app::{SetupError, build_tables_from};
use crate::config::{Config, ConfigError};
use crate::route::{Prefix, RouteSpec};
use crate::safe::counters::{Local, WorkerStats};
use crate::safe::tables::{TableHandle, Tables};
use crate::safe::worker::RunControl;
use crate::safe::{DropReason, MAX_PORTS};
use crate::steering::{Fallback, Key, SteeringKeys};

/// What a handled request leads to.
#[derive(Debug)]
pub enum Reply {
    /// Answer now.
    Now(Result<Value, OpError>),
    /// Answer with the final stats once the run has drained (`drain`).
    AfterDrain,
}

/// Labels of `steerd_ctl_commands_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CmdLabels {
    /// Command name, or `sighup` for a reload by signal.
    pub cmd: String,
    /// `ok` or the error code.
    pub result: String,
}

/// The control plane's state: the running config and the route list it publishes from.
pub struct CtlState {
    /// The running configuration.
    pub config: Config,
    /// Routes: the source of truth for every rebuild.
    pub routes: RouteSet,
    /// Routes given in code at build time (part of the base on reload).
    pub extra: Vec<RouteSpec>,
    /// The ports' MAC addresses as opened.
    pub macs: Vec<[u8; 6]>,
    /// Published tables.
    pub tables: Arc<TableHandle>,
    /// Keys set at run time by `keys.rotate` (kept until the config's keys change).
    pub keys_override: Option<SteeringKeys>,
    /// Run control (stop).
    pub run: Arc<RunControl>,
    /// Worker counters.
    pub stats: Vec<Arc<WorkerStats>>,
    /// Latency and rates from the controller.
    pub live: SharedLive,
    /// Start of the run.
    pub start: Instant,
    /// Port names and backends.
    pub ports: Vec<(String, String)>,
    /// Where the metrics and ctl listeners are (for status).
    pub endpoints: Value,
    /// `steerd_ctl_commands_total`.
    pub commands: Family<CmdLabels, Counter>,
    /// The running prediction engine, if any.
    pub tpe: Option<Arc<dyn TpeLink>>,
    /// The live RAM, if it runs (`[ram] live = true`): it owns the steering table.
    pub ram: Option<Arc<crate::ram::live::RamShared>>,
}

fn setup_error(e: SetupError) -> OpError {
    match e {
        SetupError::Config(c) => config_error(c),
        SetupError::Routes(m) => OpError::new("routes", m),
        other => OpError::new("invalid", other.to_string()),
    }
}

fn config_error(c: ConfigError) -> OpError {
    OpError::new("config", c.to_string())
        .with("file", json!(c.file))
        .with("line", json!(c.line))
        .with("env", json!(c.env))
        .with("field", json!(c.field))
}

fn cmd_name(r: &Request) -> &'static str {
    match r {
        Request::Status => "status",
        Request::RoutesList => "routes.list",
        Request::RoutesAdd { .. } => "routes.add",
        Request::RoutesDel { .. } => "routes.del",
        Request::KeysRotate { .. } => "keys.rotate",
        Request::ModelLoad { .. } => "model.load",
        Request::EventsList => "events.list",
        Request::EventsAdd(_) => "events.add",
        Request::EventsDel { .. } => "events.del",
        Request::RamLinks => "ram.links",
        Request::RamLink { .. } => "ram.link",
        Request::Reload { .. } => "reload",
        Request::Drain => "drain",
        Request::Shutdown => "shutdown",
    }
}

impl CtlState {
    /// Registers the control plane's own counters.
    pub fn register_metrics(&self, reg: &MetricsRegistry) {
        let c = self.commands.clone();
        reg.with(|r| {
            r.register(
                "ctl_commands",
                "Control commands handled (socket, HTTP status excluded; SIGHUP reloads as cmd=\"sighup\"), by result",
                c,
            )
        });
    }

    fn count(&self, cmd: &str, r: &Result<Value, OpError>) {
        let result = match r {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code.to_string(),
        };
        self.commands
            .get_or_create(&CmdLabels {
                cmd: cmd.to_string(),
                result,
            })
            .inc();
    }

    /// Handles one request.
    pub fn handle(&mut self, req: Request) -> Reply {
        let name = cmd_name(&req);
        let r = match req {
            Request::Status => Ok(self.status()),
            Request::RoutesList => Ok(self.routes_list()),
            Request::RoutesAdd {
                prefix,
                via,
                replace,
            } => self.routes_add(&prefix, via, replace),
            Request::RoutesDel { prefix } => self.routes_del(&prefix),
            Request::KeysRotate { key } => self.keys_rotate(key.as_deref()),
            Request::ModelLoad { path } => self.model_load(&path),
            Request::EventsList => self.with_tpe("events list", |t| Ok(t.events())),
            Request::EventsAdd(e) => {
                let r = self.with_tpe("events add", |t| t.add_event(&e));
                if let Err(e) = &r {
                    tracing::warn!("ctl: events add refused: {}", e.message);
                }
                r
            }
            Request::EventsDel { event } => {
                self.with_tpe(&format!("events del {event}"), |t| t.remove_event(&event))
            }
            Request::RamLinks => self.with_ram("ram links", |r| Ok(r.links_view())),
            Request::RamLink { a, b, index, state } => self.ram_link(a, b, index, &state),
            Request::Reload { config } => self.reload(config.map(PathBuf::from)),
            Request::Drain => {
                tracing::info!("ctl: drain requested; receive stops, queues drain, then exit");
                self.run.stop.store(true, Ordering::SeqCst);
                self.count(name, &Ok(Value::Null));
                return Reply::AfterDrain;
            }
            Request::Shutdown => {
                tracing::info!("ctl: shutdown requested; draining, then exit");
                self.run.stop.store(true, Ordering::SeqCst);
                Ok(json!({"stopping": true}))
            }
        };
        self.count(name, &r);
        Reply::Now(r)
    }

    fn model_load(&self, path: &str) -> Result<Value, OpError> {
        self.with_tpe(&format!("model load {path}"), |t| {
            let r = t.load_model(std::path::Path::new(path));
            match &r {
                Ok(v) => tracing::info!(
                    "ctl: model load {path}: {}",
                    v["message"].as_str().unwrap_or("ok")
                ),
                Err(e) => tracing::warn!("ctl: model load refused: {}", e.message),
            }
            r
        })
    }

    /// Runs `f` on the TPE's link, or says why there is none.
    fn with_tpe(
        &self,
        what: &str,
        f: impl FnOnce(&dyn TpeLink) -> Result<Value, OpError>,
    ) -> Result<Value, OpError> {
        match &self.tpe {
            Some(t) => f(t.as_ref()),
            None if cfg!(feature = "tpe") => Err(OpError::new(
                "tpe_off",
                format!(
                    "{what}: the traffic prediction engine (TPE) is not running \
                     (set [tpe] enabled = true in the config and restart)"
                ),
            )),
            None => Err(OpError::new(
                "not_available",
                format!(
                    "{what}: not available in this build: it was built without \
                     the traffic prediction engine (the tpe feature)"
                ),
            )),
        }
    }

    fn with_ram(
        &self,
        what: &str,
        f: impl FnOnce(&crate::ram::live::RamShared) -> Result<Value, OpError>,
    ) -> Result<Value, OpError> {
        match &self.ram {
            Some(r) => f(r),
            None => Err(OpError::new(
                "ram_off",
                format!(
                    "{what}: the live RAM is not running (set [ram] live = true in the \
                     config and restart)"
                ),
            )),
        }
    }

    fn ram_link(
        &self,
        a: Option<String>,
        b: Option<String>,
        index: Option<usize>,
        state: &str,
    ) -> Result<Value, OpError> {
        use crate::ram::live::{LinkError, LinkRef};
        let bad = |field: &str, m: String| OpError::new("bad_link", m).with("field", json!(field));
        let up = match state {
            "up" => true,
            "down" => false,
            s => {
                return Err(bad(
                    "state",
                    format!("state {s:?}: expected \"down\" or \"up\""),
                ));
            }
        };
        let link = match (a, b, index) {
            (Some(a), Some(b), None) => LinkRef::Ends(a, b),
            (None, None, Some(i)) => LinkRef::Index(i),
            (_, _, Some(_)) => {
                return Err(bad(
                    "index",
                    "name the link by index or by its ends a and b, not both".into(),
                ));
            }
            (None, _, None) => {
                return Err(bad(
                    "a",
                    "name the link: its ends a and b, or its index".into(),
                ));
            }
            (Some(_), None, None) => {
                return Err(bad("b", "the link's other end b is missing".into()));
            }
        };
        self.with_ram(&format!("ram link {state}"), |r| {
            let v = r.set_link(&link, up).map_err(|e| match e {
                LinkError::Unknown(m) => OpError::new("unknown_link", m),
                LinkError::Ambiguous(m) => OpError::new("ambiguous_link", m),
            })?;
            tracing::info!(
                "ctl: ram link {} – {} set {state}",
                v["link"]["a"].as_str().unwrap_or("?"),
                v["link"]["b"].as_str().unwrap_or("?")
            );
            Ok(v)
        })
    }

    /// A reload by SIGHUP: logs the outcome.
    pub fn reload_by_signal(&mut self) {
        let r = self.reload(None);
        match &r {
            Ok(v) => tracing::info!("SIGHUP: reload applied: {v}"),
            Err(e) => tracing::warn!("SIGHUP: reload refused, running config kept: {}", e.message),
        }
        self.count("sighup", &r);
    }

    fn totals(&self) -> (Local, Vec<Local>) {
        let per: Vec<Local> = self.stats.iter().map(|s| s.snapshot()).collect();
        let mut t = Local::default();
        for l in &per {
            t.add(l);
        }
        (t, per)
    }

    /// The status object (`ctl status`, `GET /status`).
    pub fn status(&self) -> Value {
        let (t, per) = self.totals();
        let tables = self.tables.load();
        let live = lock(&self.live);
        let r = &live.rates;
        let mut drops = serde_json::Map::new();
        for i in 0..DropReason::COUNT {
            if t.drops[i] > 0 {
                let name = DropReason::from_index(i).expect("index in range").as_str();
                drops.insert(name.into(), json!(t.drops[i]));
            }
        }
        let mut fb = serde_json::Map::new();
        for f in Fallback::ALL {
            if t.fallback[f as usize] > 0 {
                fb.insert(f.as_str().into(), json!(t.fallback[f as usize]));
            }
        }
        let ports: Vec<Value> = self
            .ports
            .iter()
            .enumerate()
            .take(MAX_PORTS)
            .map(|(i, (name, backend))| {
                let (rx_pps, tx_pps) = r.ports.get(i).copied().unwrap_or_default();
                let flags = tables.ports.get(i);
                let weights = flags
                    .map(|f| f.tx_weights)
                    .filter(|w| w.iter().any(|&x| x > 0));
                let rate = flags.map_or(0, |f| f.tx_rate_bps);
                json!({"name": name, "backend": backend, "rx_packets": t.port_rx[i],
                       "tx_packets": t.port_tx[i], "rx_pps": rx_pps, "tx_pps": tx_pps,
                       "tx_weights": weights,
                       "tx_rate_mbps": (rate > 0).then(|| rate as f64 / 1e6)})
            })
            .collect();
        let workers: Vec<Value> = per
            .iter()
            .enumerate()
            .map(|(w, l)| {
                let (rx_pps, tx_pps, busy) = r.workers.get(w).copied().unwrap_or_default();
                json!({"id": w, "rx_packets": l.rx, "tx_packets": l.tx,
                       "rx_pps": rx_pps, "tx_pps": tx_pps, "busy_pct": busy})
            })
            .collect();
        let lat = &live.last_window;
        let q = |p: f64| lat.value_at_quantile(p);
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "state": if live.stopping || self.run.stop.load(Ordering::SeqCst) { "stopping" } else { "running" },
            "uptime_s": self.start.elapsed().as_secs_f64(),
            "config": self.config.source.name,
            "workers": per.len(),
            "endpoints": self.endpoints,
            "tables": {
                "generation": self.tables.generation(),
                "routes_v4": tables.routes.v4.len(),
                "routes_v6": tables.routes.v6.len(),
                "route_changes_by_ctl": self.routes.changes(),
                "next_hops": tables.routes.next_hops.len(),
                "steering_destinations": tables.steering.len(),
                "steering_epoch": tables.steering.epoch,
                "steering_ids": tables.steering.iter().map(|(d, _)| d).collect::<Vec<u32>>(),
                "previous_key_accepted": tables.steering.keys.previous.is_some(),
                "keys_rotated_by_ctl": self.keys_override.is_some(),
            },
            "totals": {
                "rx_packets": t.rx,
                "tx_packets": t.tx,
                "tx_bytes": t.tx_bytes,
                "steered_packets": t.steered,
                "routed_packets": t.routed,
                "drops_total": t.total_drops(),
                "drops": drops,
                "steering_fallbacks": fb,
                "tx_classes": crate::app::class_json(&t),
            },
            "rates": {
                "interval_s": r.interval_s,
                "rx_pps": r.rx_pps,
                "tx_pps": r.tx_pps,
                "steered_pct": r.steered_pct,
                "drops_ps": r.drops_ps.iter().sum::<f64>(),
            },
            "latency_ns": {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "p999": q(0.999), "max": lat.max()},
            "ports": ports,
            "worker_stats": workers,
            "components": {
                "tpe": match &self.tpe {
                    Some(t) => t.status(),
                    None => absent_status(self.config.tpe.enabled),
                },
                "ram": match &self.ram {
                    Some(r) => r.status(),
                    None => json!({"state": "off", "live": false}),
                },
            },
        })
    }

    fn routes_list(&self) -> Value {
        json!({"routes": self.routes.to_json(), "generation": self.tables.generation()})
    }

    /// Builds tables from `routes` over the running config (with any run-time keys),
    /// publishes them and makes `routes` the list in force. Returns the generation.
    ///
    /// The new snapshot keeps the steering table in force (entries, epoch, keys): the
    /// one the live RAM published, or the config's with any run-time key; it is taken
    /// inside [`TableHandle::update`], so a steering publication at the same moment is
    /// not undone.
    fn publish_routes(&mut self, routes: RouteSet) -> Result<u64, OpError> {
        let t0 = Instant::now();
        let mut t = build_tables_from(&self.config, &routes.effective(), Some(&self.macs))
            .map_err(setup_error)?;
        if let Some(k) = self.keys_override {
            t.steering.keys = k;
        }
        let owned = crate::ram::live::weight_ports(&self.config);
        let g = self
            .tables
            .update(|cur| {
                t.steering = cur.steering.clone();
                keep_ram_weights(&mut t, cur, &owned);
                Some(t)
            })
            .expect("the closure always publishes");
        self.routes = routes;
        tracing::debug!(
            "tables rebuilt and published in {:.3}s (generation {g})",
            t0.elapsed().as_secs_f64()
        );
        Ok(g)
    }

    fn parse_prefix(s: &str) -> Result<Prefix, OpError> {
        s.parse::<Prefix>()
            .map_err(|e| OpError::new("invalid_argument", format!("prefix \"{s}\": {e}")))
    }

    fn routes_add(
        &mut self,
        prefix: &str,
        via: Vec<String>,
        replace: bool,
    ) -> Result<Value, OpError> {
        let p = Self::parse_prefix(prefix)?;
        if via.is_empty() {
            return Err(OpError::new(
                "invalid_argument",
                "a route needs at least one next hop",
            ));
        }
        let known: Vec<&str> = self
            .config
            .next_hops
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        for n in &via {
            if !known.contains(&n.as_str()) {
                return Err(OpError::new(
                    "invalid_argument",
                    format!(
                        "no next hop named \"{n}\" (next hops: {})",
                        known.join(", ")
                    ),
                ));
            }
        }
        let mut routes = self.routes.clone();
        routes
            .add(p, via.clone(), replace)
            .map_err(|e| OpError::new("exists", e.to_string()))?;
        let g = self.publish_routes(routes)?;
        tracing::info!(
            "ctl: route {p} via {} added (generation {g})",
            via.join(",")
        );
        Ok(json!({"prefix": p.to_string(), "via": via, "generation": g}))
    }

    fn routes_del(&mut self, prefix: &str) -> Result<Value, OpError> {
        let p = Self::parse_prefix(prefix)?;
        let mut routes = self.routes.clone();
        routes
            .del(p)
            .map_err(|e| OpError::new("not_found", e.to_string()))?;
        let g = self.publish_routes(routes)?;
        tracing::info!("ctl: route {p} deleted (generation {g})");
        Ok(json!({"prefix": p.to_string(), "generation": g}))
    }

    fn keys_rotate(&mut self, key: Option<&str>) -> Result<Value, OpError> {
        let (new, shown) = match key {
            Some(h) => (
                Key::from_hex(h).map_err(|e| OpError::new("invalid_argument", e))?,
                None,
            ),
            None => {
                let b = random_key()
                    .map_err(|e| OpError::new("internal", format!("no random key: {e}")))?;
                let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                (Key::from_bytes(b), Some(hex))
            }
        };
        // Inside `update`, so a steering (RAM) or neighbour (cp) publication at the same
        // moment is not undone. The route table is shared (an Arc), not copied.
        let mut keys = None;
        let g = self
            .tables
            .update(|cur| {
                let mut steering = cur.steering.clone();
                steering.keys.rotate(new);
                keys = Some(steering.keys);
                Some(cur.with_steering(steering))
            })
            .expect("the closure always publishes");
        self.keys_override = keys;
        tracing::info!(
            "ctl: steering key rotated (generation {g}); the previous key stays accepted"
        );
        let mut v = json!({
            "generation": g,
            "previous_key_accepted": true,
            "note": "runtime only: put the new key first in steering.keys to keep it across restarts",
        });
        if let Some(h) = shown {
            v["key"] = json!(h);
        }
        Ok(v)
    }

    /// Reloads the config (the running file, or `path`); all or nothing.
    pub fn reload(&mut self, path: Option<PathBuf>) -> Result<Value, OpError> {
        let path = path.or_else(|| self.config.source.path.clone());
        let new = match &path {
            Some(p) => Config::load(p),
            None => Config::embedded(),
        }
        .map_err(config_error)?;
        let restart = restart_needed(&self.config, &new);
        if !restart.is_empty() {
            return Err(OpError::new(
                "restart_required",
                format!(
                    "refused: {} cannot change while running; restart steerd to apply (nothing was changed)",
                    restart.join(", ")
                ),
            )
            .with("fields", json!(restart)));
        }
        if self.ram.is_some() {
            let owned = ram_owned_changes(&self.config, &new);
            if !owned.is_empty() {
                return Err(OpError::new(
                    "steering_owned",
                    format!(
                        "refused: the live RAM ([ram] live = true) owns the steering table (and, with set_tx_weights, its ports' tx_weights), so a reload cannot change {} (nothing was changed; restart steerd to apply)",
                        owned.join(", ")
                    ),
                )
                .with("fields", json!(owned)));
            }
        }
        let routes = RouteSet::from_config(&new, &self.extra)
            .map_err(setup_error)?
            .with_changes_of(&self.routes);
        let before_routes = self.routes.specs();
        let after_routes = routes.specs();
        let keys_changed = new.steering.keys != self.config.steering.keys;
        let kept_override = if keys_changed {
            None
        } else {
            self.keys_override
        };
        let mut t =
            build_tables_from(&new, &routes.effective(), Some(&self.macs)).map_err(setup_error)?;
        if let Some(k) = kept_override {
            t.steering.keys = k;
        }
        let mut changed = Vec::new();
        if before_routes != after_routes {
            changed.push("routes".to_string());
        }
        if new.next_hops != self.config.next_hops {
            changed.push("next_hops".to_string());
        }
        if new.routing != self.config.routing {
            changed.push("routing".to_string());
        }
        if keys_changed {
            changed.push("steering.keys".to_string());
        }
        let (a, b) = (&self.config.steering, &new.steering);
        if a.epoch != b.epoch || a.max_epoch_age != b.max_epoch_age {
            changed.push("steering.epoch".to_string());
        }
        if a.destinations != b.destinations {
            changed.push("steering.destinations".to_string());
        }
        for (i, (o, n)) in self.config.ports.iter().zip(&new.ports).enumerate() {
            for (k, differs) in [
                ("trusted", o.trusted != n.trusted),
                ("strip_nsh", o.strip_nsh != n.strip_nsh),
                ("mtu", o.mtu != n.mtu),
                ("tx_rate_mbps", o.tx_rate_mbps != n.tx_rate_mbps),
                ("tx_weights", o.tx_weights != n.tx_weights),
            ] {
                if differs {
                    changed.push(format!("ports[{i}].{k}"));
                }
            }
        }
        let g = if self.ram.is_some() {
            // The RAM's entries and epoch stay (and the weights it sets); the keys are
            // the reload's.
            let keys = t.steering.keys;
            let owned = crate::ram::live::weight_ports(&self.config);
            self.tables
                .update(|cur| {
                    t.steering = cur.steering.clone();
                    t.steering.keys = keys;
                    keep_ram_weights(&mut t, cur, &owned);
                    Some(t)
                })
                .expect("the closure always publishes")
        } else {
            self.tables.publish(t)
        };
        let report = json!({
            "generation": g,
            "config": new.source.name,
            "changed": changed,
            "routes": {"before": before_routes.len(), "after": after_routes.len(),
                       "ctl_changes_kept": routes.changes()},
            "steering_destinations": {"before": self.config.steering.destinations.len(),
                                      "after": new.steering.destinations.len()},
            "runtime_key_rotation": match (self.keys_override.is_some(), keys_changed) {
                (false, _) => Value::Null,
                (true, false) => json!("kept"),
                (true, true) => json!("replaced by the config's keys"),
            },
        });
        self.keys_override = kept_override;
        self.config = new;
        self.routes = routes;
        tracing::info!("reload applied (generation {g}): changed {changed:?}");
        Ok(report)
    }
}

/// Keeps in `t` the transmit weights the live RAM set on the ports it owns (`owned`,
/// from [`crate::ram::live::weight_ports`]) in `cur`, the snapshot in force.
fn keep_ram_weights(t: &mut Tables, cur: &Tables, owned: &[usize]) {
    for &p in owned {
        if let (Some(f), Some(c)) = (t.ports.get_mut(p), cur.ports.get(p)) {
            f.tx_weights = c.tx_weights;
        }
    }
}

/// What a reload would change of what the live RAM owns: the steering table's entries
/// (`steering.destinations`), its epoch, and the next hops its entries point at (their
/// names and order: the entries hold next-hop indices; a MAC change is fine, and so are
/// next hops appended after the existing ones); with `set_tx_weights`, the
/// `tx_weights` of the ports it sets them on.
pub fn ram_owned_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for p in crate::ram::live::weight_ports(old) {
        if old.ports.get(p).map(|x| &x.tx_weights) != new.ports.get(p).map(|x| &x.tx_weights) {
            out.push(format!("ports[{p}].tx_weights"));
        }
    }
    let (a, b) = (&old.steering, &new.steering);
    if a.destinations != b.destinations {
        out.push("steering.destinations".to_string());
    }
    if a.epoch != b.epoch {
        out.push("steering.epoch".to_string());
    }
    if a.max_epoch_age != b.max_epoch_age {
        out.push("steering.max_epoch_age".to_string());
    }
    let kept = old.next_hops.len() <= new.next_hops.len()
        && old
            .next_hops
            .iter()
            .zip(&new.next_hops)
            .all(|(a, b)| a.name == b.name);
    if !kept {
        out.push("next_hops (names or order)".to_string());
    }
    out
}

/// 16 random bytes for a steering key.
fn random_key() -> std::io::Result<[u8; 16]> {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

/// The fields of `new` that differ from `old` and cannot change without a restart.
pub fn restart_needed(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    macro_rules! fields {
        ($prefix:expr, $a:expr, $b:expr, [$($f:ident),*]) => {
            $(if $a.$f != $b.$f {
                out.push(format!("{}.{}", $prefix, stringify!($f)));
            })*
        };
    }
    fields!(
        "general",
        old.general,
        new.general,
        [
            workers,
            burst,
            drain_us,
            pool_buffers,
            pin_cores,
            first_core,
            stats_interval_ms,
            exit_on_eof,
            telemetry_destinations
        ]
    );
    fields!("ctl", old.ctl, new.ctl, [metrics_listen, socket]);
    fields!(
        "tpe",
        old.tpe,
        new.tpe,
        [
            enabled,
            model,
            baselines_only,
            time_scale,
            bucket_ms,
            shards,
            destinations,
            shard_timeout_ms,
            correction,
            shadow_window,
            shadow_margin,
            accuracy_window
        ]
    );
    if old.ports.len() != new.ports.len() {
        out.push(format!(
            "ports (count {} → {})",
            old.ports.len(),
            new.ports.len()
        ));
    }
    for (i, (a, b)) in old.ports.iter().zip(&new.ports).enumerate() {
        fields!(
            format!("ports[{i}]"),
            a,
            b,
            [
                name, backend, mac, generator, rx_file, repeat, tx_file, ifname, queues, promisc,
                xdp_mode, xdp_bind, device
            ]
        );
    }
    if old.ram != new.ram {
        out.push("ram".to_string());
    }
    // Anything else (sections added later) is refused unless it is one of the live ones.
    let mut probe = new.clone();
    probe.ram = old.ram.clone();
    probe.routes = old.routes.clone();
    probe.next_hops = old.next_hops.clone();
    probe.routing = old.routing.clone();
    probe.steering = old.steering.clone();
    probe.source = old.source.clone();
    probe.general = old.general.clone();
    probe.ctl = old.ctl.clone();
    probe.tpe = old.tpe.clone();
    if probe.ports.len() == old.ports.len() {
        probe.ports = old.ports.clone();
    }
    if out.is_empty() && probe != *old {
        out.push("settings other than routes, next hops, steering and port flags".into());
    }
    let dedup: BTreeSet<String> = out.iter().cloned().collect();
    if dedup.len() != out.len() {
        out = dedup.into_iter().collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg(t: &str) -> Config {
        Config::from_toml(t, "t.toml", Path::new("."), false).unwrap()
    }

    #[test]
    fn live_and_restart_fields() {
        let base = crate::config::DEFAULT_TOML;
        let old = cfg(base);
        assert!(restart_needed(&old, &cfg(base)).is_empty());
        let live = base
            .replace("epoch = 1", "epoch = 2")
            .replace("trusted = true ", "trusted = false ")
            .replace("prefix = \"198.19.0.0/16\"", "prefix = \"198.20.0.0/16\"");
        assert!(restart_needed(&old, &cfg(&live)).is_empty());
        let r = restart_needed(
            &old,
            &cfg(&base.replace("workers = 0", "workers = 3").replace(
                "flows = 1024\ndst = [\"198.19",
                "flows = 99\ndst = [\"198.19",
            )),
        );
        assert_eq!(r, vec!["general.workers", "ports[1].generator"]);
        // The prediction engine's settings need a restart (models load live instead).
        let r = restart_needed(
            &old,
            &cfg(&base
                .replace("time_scale = 300", "time_scale = 60")
                .replace("shards = 1", "shards = 2")),
        );
        assert_eq!(r, vec!["tpe.time_scale", "tpe.shards"]);
    }

    #[test]
    fn what_the_live_ram_owns() {
        let base = crate::config::DEFAULT_TOML;
        let old = cfg(base);
        assert!(ram_owned_changes(&old, &cfg(base)).is_empty());
        // Keys, routes, port flags and next-hop MACs leave the RAM's entries valid.
        let fine = base
            .replace(r#"prefix = "198.19.0.0/16""#, r#"prefix = "198.20.0.0/16""#)
            .replace(
                r#"mac = "02:00:00:00:01:02""#,
                r#"mac = "02:00:00:00:01:03""#,
            )
            .replace("trusted = true ", "trusted = false ");
        assert!(ram_owned_changes(&old, &cfg(&fine)).is_empty());
        // A next hop appended after the others leaves every index in place; one taken
        // away does not.
        let extra =
            "\n[[next_hops]]\nname = \"extra\"\nport = \"p1\"\nmac = \"02:00:00:00:01:09\"\n";
        let appended = cfg(&format!("{base}{extra}"));
        assert!(ram_owned_changes(&old, &appended).is_empty());
        assert_eq!(
            ram_owned_changes(&appended, &old),
            vec!["next_hops (names or order)"]
        );
        let owned = base
            .replace("epoch = 1", "epoch = 2")
            .replace("id = 20", "id = 21")
            .replace(r#"name = "to-p1-b""#, r#"name = "to-p1-c""#)
            .replace(r#"next_hop = "to-p1-b""#, r#"next_hop = "to-p1-c""#)
            .replace(r#""to-p1", "to-p1-b"]"#, r#""to-p1", "to-p1-c"]"#);
        assert_eq!(
            ram_owned_changes(&old, &cfg(&owned)),
            vec![
                "steering.destinations",
                "steering.epoch",
                "next_hops (names or order)"
            ]
        );
    }
}
