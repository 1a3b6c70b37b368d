//! Building and running the appliance (cold): config → tables and ports → pinned
//! workers → a stats line a second → stop, drain, summary.
//!
//! Threads: one worker per core (hot, see [`crate::safe::worker`]); the calling thread
//! is the controller (stats lines or live screen, stop conditions, signals; see
//! [`crate::ctl::monitor`]); the `ctl` thread serves metrics, status and the ctl socket
//! ([`crate::ctl`]); each pcap output port has a writer thread; the control plane
//! ([`crate::cp`]) runs on its own thread when the router has addresses; with `[tpe]
//! enabled` the prediction engine runs on the `tpe` and `tpe-shard-K` threads
//! (`tpe::live`, started first and stopped after the workers drain); with `[ram] live`
//! the RAM runs on the `steerd-ram` thread (`ram::live`: it owns the steering table
//! and the workers' standby flags; started after the engine, stopped once the workers
//! have exited).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::config::{Config, ConfigError, SizeSpec, parse_cidr, parse_ifaddr, parse_mac};
use crate::cp::{ControlPlane, CpStats};
use crate::ctl::monitor::{Live, Monitor, View};
use crate::ctl::ops::CtlState;
use crate::ctl::routes::{RouteOrigin, RouteSet};
use crate::ctl::screen::ScreenInfo;
use crate::ctl::tpe::{TpeLink, absent_status};
use crate::ctl::{CtlThread, Listeners, MetricsRegistry, metrics::SafeCollector, monitor};
use crate::port::mem::{GenConfig, GenPrefix, GenSteering, MemPortStats, MemRx, MemTx, Templates};
use crate::port::pcap::{Capture, PcapOut, PcapRx};
use crate::port::{AnyRx, AnyTx, Mac, Pool, PortCounters, afpacket, tap};
use crate::route::{self, NextHop, RouteTable};
use crate::safe::counters::{Local, WorkerStats};
use crate::safe::pipeline::Mode;
use crate::safe::punt;
use crate::safe::tables::{HostTable, LocalAddrs, NhKind, NhL2, PortFlags, TableHandle, Tables};
use crate::safe::worker::{Distributor, Hist, Inbound, RunControl, Worker, new_hist};
use crate::safe::{DropReason, MAX_PORTS};
use crate::steering::{Fallback, Key, SteerEntry, SteeringKeys, SteeringTable};
use crate::telemetry::DestCounters;

/// Errors while setting up (each names what to fix).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A configuration error.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A routes file or table error.
    #[error("{0}")]
    Routes(String),
    /// A port could not be opened.
    #[error("{0}")]
    Port(String),
    /// Something else at start-up.
    #[error("{0}")]
    Other(String),
}

/// A result file named on the command line (`--json FILE`), created when the command
/// starts: a path that cannot be written is refused before anything runs, instead of
/// losing the run's result at its end. An interrupted run leaves the file empty.
#[derive(Debug)]
pub struct OutFile {
    path: PathBuf,
    file: std::fs::File,
}

impl OutFile {
    /// Creates (truncates) `path`; the error names `flag` and the path.
    pub fn create(flag: &str, path: &Path) -> Result<OutFile, SetupError> {
        std::fs::File::create(path)
            .map(|file| OutFile {
                path: path.to_path_buf(),
                file,
            })
            .map_err(|e| {
                SetupError::Other(format!("{flag} {}: cannot create: {e}", path.display()))
            })
    }

    /// Writes `text` and a newline, and syncs the file.
    pub fn write(mut self, text: &str) -> Result<(), SetupError> {
        use std::io::Write;
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.write_all(b"\n"))
            .and_then(|()| self.file.sync_all())
            .map_err(|e| SetupError::Other(format!("cannot write {}: {e}", self.path.display())))
    }
}

/// How a run ends and reports.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Write the final stats here as JSON.
    pub json: Option<PathBuf>,
    /// No per-second lines.
    pub quiet: bool,
    /// Override the number of workers.
    pub workers: Option<usize>,
    /// Forwarding or io mode.
    pub io_mode: bool,
    /// Metrics HTTP listener `ADDRESS:PORT` (port 0: any free one) or `"off"`; None:
    /// the config's `[ctl] metrics_listen`, else off.
    pub metrics_listen: Option<String>,
    /// Ctl Unix socket path or `"off"`; None: the config's `[ctl] socket`, else off.
    pub ctl_socket: Option<String>,
    /// Redraw a live stats screen when stderr is a terminal (else plain lines).
    pub screen: bool,
}

/// Prefix of the names of the next hops behind connected routes.
pub const CONNECTED_PREFIX: &str = "connected:";

/// Where route `i` of a table build came from, for messages: the config's `routes[N]`,
/// the routes file's `FILE:LINE`, a run-time or built-in route, or a connected route
/// (those after `routes`, which the build appended).
fn route_place(
    cfg: &Config,
    routes: &[(route::RouteSpec, RouteOrigin)],
    specs: &[route::RouteSpec],
    i: usize,
) -> String {
    let Some(r) = specs.get(i) else {
        return "a route".to_string();
    };
    match routes.get(i).map(|(_, o)| *o) {
        Some(RouteOrigin::Config) => {
            format!(
                "{}: routes[{}] ({})",
                cfg.source.name,
                r.line.saturating_sub(1),
                r.prefix
            )
        }
        Some(RouteOrigin::File) => {
            let file = cfg.routing.routes_file.as_ref().map_or_else(
                || "routes file".to_string(),
                |f| cfg.resolve(f).display().to_string(),
            );
            format!("{file}:{}: route {}", r.line, r.prefix)
        }
        Some(RouteOrigin::Ctl) => format!("route {} (added with steerd ctl routes add)", r.prefix),
        Some(RouteOrigin::Code) => format!("route {} (built in)", r.prefix),
        None => {
            let port = r.next_hops.first().map_or("", |n| {
                n.strip_prefix(CONNECTED_PREFIX).unwrap_or(n.as_str())
            });
            format!("connected route {} of port \"{port}\"", r.prefix)
        }
    }
}

/// A table build's error with the route's place (see [`route_place`]) and, when the LPM
/// ran out of groups, the setting that raises them.
fn route_error(
    cfg: &Config,
    routes: &[(route::RouteSpec, RouteOrigin)],
    specs: &[route::RouteSpec],
    e: &route::RouteError,
) -> String {
    use route::{LpmError, RouteError};
    let at = |i| route_place(cfg, routes, specs, i);
    match e {
        RouteError::NextHops(_) => e.to_string(),
        RouteError::NextHop { index, source, .. } => format!("{}: {source}", at(*index)),
        RouteError::Duplicate {
            index, first_index, ..
        } => format!(
            "{}: the prefix already has a route, {}; keep one of the two",
            at(*index),
            at(*first_index)
        ),
        RouteError::Lpm { index, source, .. } => {
            let hint = match source {
                LpmError::GroupsExhausted { family, .. } => {
                    let (field, now) = if *family == "IPv4" {
                        ("routing.tbl8_groups", cfg.routing.tbl8_groups)
                    } else {
                        ("routing.v6_groups", cfg.routing.v6_groups)
                    };
                    format!(" ({}: {field} is {now})", cfg.source.name)
                }
                _ => String::new(),
            };
            format!("{}: {source}{hint}", at(*index))
        }
    }
}

/// Builds the forwarding tables a config describes.
/// `macs` are the ports' own MAC addresses as opened (an AF_PACKET port uses its
/// interface's); without them, the configured or derived ones are used.
///
/// Next hops with a `mac` are static; those with only an `ip` start unresolved (the
/// control plane resolves them). With `control.connected_routes`, every port address
/// adds a route for its subnet (unless a configured route has that exact prefix) whose
/// next hop `connected:PORT` is the destination itself, resolved on demand.
pub fn build_tables(
    cfg: &Config,
    extra: &[route::RouteSpec],
    macs: Option<&[[u8; 6]]>,
) -> Result<Tables, SetupError> {
    let routes = RouteSet::from_config(cfg, extra)?;
    build_tables_from(cfg, &routes.effective(), macs)
}

/// Builds the forwarding tables of a config with the given routes (the control plane's
/// [`RouteSet`] in force, with each route's origin) instead of the config's own.
pub fn build_tables_from(
    cfg: &Config,
    routes: &[(route::RouteSpec, RouteOrigin)],
    macs: Option<&[[u8; 6]]>,
) -> Result<Tables, SetupError> {
    let port_idx = |name: &str| cfg.ports.iter().position(|p| p.name == name);
    let mut hops = Vec::new();
    let mut nh_dest = Vec::new();
    let mut nh_kind = Vec::new();
    let mut nh_l2 = Vec::new();
    for (i, n) in cfg.next_hops.iter().enumerate() {
        let port = port_idx(&n.port)
            .ok_or_else(|| cfg.error(&format!("next_hops[{i}].port"), "unknown port"))?;
        let p = &cfg.ports[port];
        if p.backend == "pcap" && p.tx_file.is_none() {
            return Err(cfg
                .error(
                    &format!("next_hops[{i}].port"),
                    format!("port \"{}\" cannot send: it has no tx_file", p.name),
                )
                .into());
        }
        let src_mac = match macs.and_then(|m| m.get(port)) {
            Some(m) => *m,
            None => port_mac(cfg, port)?,
        };
        let (dst_mac, kind, l2) = match (&n.mac, &n.ip) {
            (Some(m), _) => {
                let mac = parse_mac(m).map_err(|e| cfg.error(&format!("next_hops[{i}].mac"), e))?;
                (mac, NhKind::Static, NhL2::Mac(mac))
            }
            (None, Some(ip)) => {
                let a: std::net::IpAddr = ip.trim().parse().map_err(|_| {
                    cfg.error(
                        &format!("next_hops[{i}].ip"),
                        format!("\"{ip}\" is not an IP address"),
                    )
                })?;
                ([0; 6], NhKind::Neighbor(a), NhL2::Pending)
            }
            (None, None) => {
                return Err(cfg
                    .error(
                        &format!("next_hops[{i}].name"),
                        "a next hop needs mac or ip",
                    )
                    .into());
            }
        };
        hops.push(NextHop {
            name: n.name.clone(),
            port: port as u16,
            src_mac,
            dst_mac,
        });
        nh_dest.push(n.dest.unwrap_or(u16::MAX));
        nh_kind.push(kind);
        nh_l2.push(l2);
    }
    let mut specs: Vec<route::RouteSpec> = routes.iter().map(|(r, _)| r.clone()).collect();
    let mut by_port = Vec::new();
    for (pi, p) in cfg.ports.iter().enumerate() {
        let mut addrs = Vec::new();
        for (j, a) in p.addrs.iter().enumerate() {
            let (addr, len) =
                parse_ifaddr(a).map_err(|e| cfg.error(&format!("ports[{pi}].addrs[{j}]"), e))?;
            addrs.push((addr, len));
            let full = if addr.is_ipv4() { 32 } else { 128 };
            if !cfg.control.connected_routes || len == full {
                continue;
            }
            let prefix = route::Prefix::new_masked(addr, len);
            if specs.iter().any(|s| s.prefix == prefix) {
                continue; // a configured route for the subnet wins
            }
            let name = format!("{CONNECTED_PREFIX}{}", p.name);
            if !hops.iter().any(|h| h.name == name) {
                let src_mac = match macs.and_then(|m| m.get(pi)) {
                    Some(m) => *m,
                    None => port_mac(cfg, pi)?,
                };
                hops.push(NextHop {
                    name: name.clone(),
                    port: pi as u16,
                    src_mac,
                    dst_mac: [0; 6],
                });
                nh_dest.push(u16::MAX);
                nh_kind.push(NhKind::Connected);
                nh_l2.push(NhL2::Connected);
            }
            specs.push(route::RouteSpec {
                prefix,
                next_hops: vec![name],
                line: 0,
            });
        }
        by_port.push(addrs);
    }
    let local = LocalAddrs::new(by_port);
    let opts = route::LpmOptions {
        v4_tbl8_groups: cfg.routing.tbl8_groups,
        v6_groups: cfg.routing.v6_groups,
    };
    let routes = RouteTable::build(&specs, hops, opts)
        .map_err(|e| SetupError::Routes(route_error(cfg, routes, &specs, &e)))?;
    let keys = match cfg.steering.keys.as_slice() {
        [] => SteeringKeys {
            current: Key::from_bytes([0; 16]),
            previous: None,
        },
        [c, rest @ ..] => SteeringKeys {
            current: Key::from_hex(c).map_err(|e| cfg.error("steering.keys[0]", e))?,
            previous: match rest.first() {
                Some(p) => Some(Key::from_hex(p).map_err(|e| cfg.error("steering.keys[1]", e))?),
                None => None,
            },
        },
    };
    let mut steering = SteeringTable::new(keys, cfg.steering.epoch, cfg.steering.max_epoch_age);
    for (i, d) in cfg.steering.destinations.iter().enumerate() {
        let hops = std::iter::once(&d.next_hop)
            .chain(&d.ecmp)
            .map(|name| {
                cfg.next_hops
                    .iter()
                    .position(|n| n.name == *name)
                    .map(|nh| nh as u16)
                    .ok_or_else(|| {
                        cfg.error(
                            &format!("steering.destinations[{i}].next_hop"),
                            format!("unknown next hop {name:?}"),
                        )
                    })
            })
            .collect::<Result<Vec<u16>, _>>()?;
        let entry = SteerEntry::ecmp(&hops, d.max_priority)
            .map_err(|e| cfg.error(&format!("steering.destinations[{i}].ecmp"), e))?;
        steering
            .insert(d.id, entry)
            .map_err(|e| cfg.error(&format!("steering.destinations[{i}].id"), e))?;
    }
    let ports = cfg
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Ok(PortFlags {
                trusted: p.trusted,
                strip_nsh: p.strip_nsh,
                mtu: p.mtu,
                mac: match macs.and_then(|m| m.get(i)) {
                    Some(m) => *m,
                    None => port_mac(cfg, i)?,
                },
                // Linux interfaces and real NICs see frames for other hosts; files and
                // DPDK vdevs that are not on an interface are forwarded whatever their MAC.
                l2_filter: matches!(p.backend.as_str(), "tap" | "afpacket" | "afxdp")
                    || (p.backend == "dpdk" && p.device.as_deref().is_some_and(dpdk_sees_others)),
                has_v4: local.of_port(i).iter().any(|(a, _)| a.is_ipv4()),
                has_v6: local.of_port(i).iter().any(|(a, _)| a.is_ipv6()),
                tx_weights: p.tx_weights_array(),
                tx_rate_bps: p.tx_rate_bps(),
            })
        })
        .collect::<Result<Vec<_>, SetupError>>()?;
    Ok(Tables {
        routes: Arc::new(routes),
        steering,
        ports,
        nh_dest,
        local,
        nh_l2,
        nh_kind,
        hosts: HostTable::default(),
    })
}

/// The MAC of port `i` (configured, or a locally administered one derived from the index).
fn port_mac(cfg: &Config, i: usize) -> Result<[u8; 6], SetupError> {
    match &cfg.ports[i].mac {
        Some(m) => Ok(parse_mac(m).map_err(|e| cfg.error(&format!("ports[{i}].mac"), e))?),
        None => Ok([0x02, 0, 0, 0, 0, i as u8]),
    }
}

fn gen_prefix(s: &str) -> Result<GenPrefix, String> {
    let (addr, len) = parse_cidr(s)?;
    Ok(GenPrefix { addr, len })
}

/// Builds the generator settings of mem port `i`.
pub fn gen_config(cfg: &Config, i: usize) -> Result<Option<GenConfig>, SetupError> {
    let p = &cfg.ports[i];
    let Some(g) = p.generator.as_ref().filter(|g| g.enabled) else {
        return Ok(None);
    };
    let f = |k: &str| format!("ports[{i}].generator.{k}");
    let dst = g
        .dst
        .iter()
        .map(|d| gen_prefix(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cfg.error(&f("dst"), e))?;
    let steering = if cfg.steering.destinations.is_empty() || cfg.steering.keys.is_empty() {
        None
    } else {
        Some(GenSteering {
            dests: cfg.steering.destinations.iter().map(|d| d.id).collect(),
            key: Key::from_hex(&cfg.steering.keys[0])
                .map_err(|e| cfg.error("steering.keys[0]", e))?,
            epoch: cfg.steering.epoch,
            priority: g.priority,
            app_class: g.app_class,
        })
    };
    Ok(Some(GenConfig {
        flows: g.flows,
        dst,
        src_v4: gen_prefix(&g.src_v4).map_err(|e| cfg.error(&f("src_v4"), e))?,
        src_v6: gen_prefix(&g.src_v6).map_err(|e| cfg.error(&f("src_v6"), e))?,
        sizes: g
            .sizes
            .iter()
            .map(|s| match s {
                SizeSpec::Plain(s) => (*s, 1),
                SizeSpec::Weighted(s, w) => (*s, *w),
            })
            .collect(),
        steered_fraction: g.steered_fraction,
        steering,
        fault_fraction: g.fault_fraction,
        rate_pps: g.rate_pps,
        packets: g.packets,
        seed: g.seed.wrapping_add(i as u64 * 7919),
        dst_mac: port_mac(cfg, i)?,
        src_mac: [0x02, 0xee, 0, 0, 0, i as u8],
    }))
}

/// True when DPDK device `d` sees frames for other hosts (a DPDK port is promiscuous):
/// a NIC (a PCI address) or a vdev on an interface (net_af_packet, net_tap, net_af_xdp,
/// ...), not a file or a sink (net_pcap, net_null, net_ring).
fn dpdk_sees_others(d: &str) -> bool {
    !["net_pcap", "net_null", "net_ring"]
        .iter()
        .any(|v| d.starts_with(v))
}

/// A built, not yet started appliance.
pub struct Appliance {
    workers: Vec<Worker>,
    /// Published tables.
    pub tables: Arc<TableHandle>,
    /// Run control.
    pub ctl: Arc<RunControl>,
    /// Per-worker counters.
    pub stats: Vec<Arc<WorkerStats>>,
    /// Per-worker telemetry.
    pub telemetry: Vec<Arc<DestCounters>>,
    hist_from: Vec<rtrb::Consumer<Hist>>,
    hist_to: Vec<rtrb::Producer<Hist>>,
    pcap_outs: Vec<PcapOut>,
    mem_stats: Vec<Arc<MemPortStats>>,
    /// Counters of the Linux interface ports.
    pub port_counters: Vec<Arc<PortCounters>>,
    port_names: Vec<String>,
    /// The config it was built from.
    pub config: Config,
    /// Metrics registry: components register here before `run` (see [`crate::ctl::metrics`]).
    pub metrics: MetricsRegistry,
    /// Control-plane listeners, bound at build time.
    listeners: Listeners,
    /// Routes given in code (kept for rebuilds).
    extra_routes: Vec<route::RouteSpec>,
    /// The ports' MAC addresses as opened.
    macs: Vec<[u8; 6]>,
    /// The control plane, when the router has addresses (started by `run`).
    control: Option<ControlPlane>,
    cp_stop: Arc<AtomicBool>,
    /// The control plane's counters.
    pub cp_stats: Option<Arc<CpStats>>,
    /// The DPDK ports (stopped and closed when the run ends).
    #[cfg(feature = "dpdk")]
    dpdk_ports: Option<crate::port::dpdk::DpdkPorts>,
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Summed counters.
    pub total: Local,
    /// Workers used.
    pub workers: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// Latency percentiles (ns): p50, p90, p99, p99.9, max.
    pub latency_ns: [u64; 5],
    /// Port names.
    pub ports: Vec<String>,
    /// Backend counters of the Linux interface ports (by port name).
    pub port_totals: Vec<(String, crate::port::PortTotals)>,
    /// The control plane's counters (JSON), when it ran.
    pub control_plane: Option<Value>,
    /// DPDK port statistics and extended statistics (JSON), for DPDK runs.
    pub dpdk: Option<Value>,
    /// The prediction engine's final figures (`{"state": "off"}` when it did not run).
    pub tpe: Value,
    /// The live RAM's final figures (`null` when it did not run).
    pub ram: Value,
}

impl Summary {
    /// The final stats as one JSON object.
    pub fn to_json(&self) -> Value {
        let t = &self.total;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut drops = serde_json::Map::new();
        for i in 0..DropReason::COUNT {
            let r = DropReason::from_index(i).expect("index in range");
            if t.drops[i] > 0 {
                drops.insert(r.as_str().into(), json!(t.drops[i]));
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
            .map(|(i, n)| {
                let mut p = json!({"name": n, "rx_packets": t.port_rx[i.min(MAX_PORTS - 1)], "tx_packets": t.port_tx[i.min(MAX_PORTS - 1)]});
                if let Some((_, b)) = self.port_totals.iter().find(|(name, _)| name == n) {
                    p["backend"] = json!({
                        "rx_packets": b.rx_packets,
                        "rx_drops": b.rx_drops,
                        "rx_truncated": b.rx_truncated,
                        "rx_oversize": b.rx_oversize,
                        "rx_csum_not_ready": b.rx_csum_not_ready,
                        "rx_errors": b.rx_errors,
                        "tx_packets": b.tx_packets,
                        "tx_full": b.tx_full,
                        "tx_errors": b.tx_errors,
                        "tx_kick_errors": b.tx_kick_errors,
                        "tx_discarded": b.tx_discarded,
                    });
                }
                p
            })
            .collect();
        json!({
            "rx_packets": t.rx,
            "tx_packets": t.tx,
            "tx_bytes": t.tx_bytes,
            "steered_packets": t.steered,
            "routed_packets": t.routed,
            "drops": drops,
            "drops_total": t.total_drops(),
            "steering_fallbacks": fb,
            "tx_classes": class_json(t),
            "p50_ns": self.latency_ns[0],
            "p90_ns": self.latency_ns[1],
            "p99_ns": self.latency_ns[2],
            "p999_ns": self.latency_ns[3],
            "max_ns": self.latency_ns[4],
            "duration_s": secs,
            "mpps_in": t.rx as f64 / secs / 1e6,
            "mpps_out": t.tx as f64 / secs / 1e6,
            "workers": self.workers,
            "ports": ports,
            "local_packets": t.local,
            "cp_tx_packets": t.cp_tx,
            "cp_tx_dropped": t.cp_tx_dropped,
            "control_plane": self.control_plane.clone().unwrap_or(Value::Null),
            "dpdk": self.dpdk.clone().unwrap_or(Value::Null),
            "tpe": self.tpe.clone(),
            "ram": self.ram.clone(),
            "worker_standby_parks": t.standby_parks,
            "worker_standby_parked_s": t.standby_parked_ns as f64 / 1e9,
            "accounted": t.accounted(),
            "worker_parks": t.parks,
            "worker_parked_s": t.parked_ns as f64 / 1e9,
            "worker_awake_s": (secs * self.workers as f64 - t.parked_ns as f64 / 1e9).max(0.0),
        })
    }
}

/// Transmit per priority class (all ports): packets sent and dropped at transmit
/// (`tx_full`, `tx_rate`), lowest class first.
pub fn class_json(t: &Local) -> Value {
    (0..crate::safe::tx::N_CLASSES)
        .map(|c| json!({"class": c, "tx_packets": t.class_tx[c], "drops": t.class_drops[c]}))
        .collect()
}

pub use crate::ctl::signals::install_signal_handlers;

/// Gives one receive queue to each worker when there is one per worker (or fewer than
/// workers but more than one: the first workers get them); a single queue shared by
/// several workers goes to the distributor (software RSS).
fn assign_rx(qs: Vec<AnyRx>, own: &mut [Vec<AnyRx>], single: &mut Vec<AnyRx>) {
    if qs.len() == 1 && own.len() > 1 {
        single.extend(qs);
        return;
    }
    for (k, q) in qs.into_iter().enumerate() {
        let n = own.len();
        own[k % n].push(q);
    }
}

/// Gives each worker a transmit queue: its own when there are enough, otherwise the
/// port cannot be shared lock-free and setup refuses (backends open one per worker).
fn assign_tx(qs: Vec<AnyTx>, tx: &mut [Vec<AnyTx>]) {
    let mut it = qs.into_iter();
    for v in tx.iter_mut() {
        v.push(it.next().unwrap_or(AnyTx::None));
    }
}

/// Starts the EAL and opens the DPDK ports of a config (none: nothing happens). Sets
/// the ports' MACs (DPDK's unless configured) and adds their counters; returns the
/// ports and each worker's queues.
#[cfg(feature = "dpdk")]
#[allow(clippy::type_complexity)]
pub(crate) fn open_dpdk(
    cfg: &Config,
    nw: usize,
    macs: &mut [[u8; 6]],
    counters: &mut Vec<Arc<PortCounters>>,
) -> Result<
    (
        Option<crate::port::dpdk::DpdkPorts>,
        Vec<Option<crate::port::dpdk::DpdkQueues>>,
    ),
    SetupError,
> {
    use crate::port::dpdk;
    if !cfg.ports.iter().any(|p| p.backend == "dpdk") {
        return Ok((None, Vec::new()));
    }
    let d = &cfg.dpdk;
    // Relative capture paths in vdev strings are relative to the config file, as for
    // the pcap backend.
    let vdevs = d
        .vdevs
        .iter()
        .map(|v| {
            v.split(',')
                .map(|kv| match kv.split_once('=') {
                    Some((k, f)) if ["rx_pcap", "tx_pcap"].contains(&k) => {
                        format!("{k}={}", cfg.resolve(Path::new(f)).display())
                    }
                    _ => kv.to_string(),
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let eal = dpdk::Eal::init(&dpdk::EalConfig {
        lcores: d.cores.clone(),
        no_huge: d.no_huge,
        mem_mb: d.mem_mb,
        huge_dir: d.huge_dir.clone(),
        file_prefix: d.file_prefix.clone(),
        vdevs,
        allow: d.allow.clone(),
        extra_args: d.extra_args.clone(),
        log_level: d.log_level.clone(),
    })
    .map_err(|e| SetupError::Port(e.to_string()))?;
    let specs: Vec<dpdk::PortSpec> = cfg
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| dpdk::PortSpec {
            name: p.name.clone(),
            index: i as u16,
            device: p.device.clone().unwrap_or_default().trim().to_string(),
            rx_queues: p.queues.unwrap_or(nw),
            rx_desc: d.rx_desc,
            tx_desc: d.tx_desc,
        })
        .collect();
    let (ports, queues) = dpdk::open(&eal, &specs, nw, cfg.ports.len(), d.mbufs)
        .map_err(|e| SetupError::Port(e.to_string()))?;
    for (i, p) in ports.ports.iter().enumerate() {
        if cfg.ports[i].mac.is_none() {
            macs[i] = p.mac;
        }
        tracing::info!(
            "port {}: DPDK port {} ({}), {} rx queue(s){}, {} tx queue(s)",
            p.name,
            p.port_id,
            p.driver,
            p.rx_queues,
            if p.rss { " with RSS" } else { "" },
            p.tx_queues
        );
        counters.push(p.counters.clone());
    }
    Ok((Some(ports), queues.into_iter().map(Some).collect()))
}

/// Workers of a run: `--workers`, else `general.workers`; 0 is one per available core.
/// More workers than cores is allowed (tests, CI) but warned about: poll-mode workers
/// sharing a core take turns and forward less than one worker per core would.
fn worker_count(cfg: &Config, opts: &RunOptions) -> Result<usize, SetupError> {
    let cores = core_affinity::get_core_ids()
        .map(|c| c.len())
        .unwrap_or(1)
        .max(1);
    if let Some(w) = opts.workers
        && w > crate::safe::MAX_WORKERS
    {
        return Err(SetupError::Other(format!(
            "--workers {w} is above {} (0 = one per available core)",
            crate::safe::MAX_WORKERS
        )));
    }
    let w = match opts.workers.unwrap_or(cfg.general.workers) {
        0 => cores,
        w => w,
    };
    if w > cores {
        tracing::warn!(
            "{w} workers on {cores} available core(s): poll-mode workers share cores and forward less than one per core"
        );
    }
    Ok(w)
}

impl Appliance {
    /// Opens ports, builds tables and prepares the workers (nothing runs yet).
    pub fn build(cfg: Config, opts: &RunOptions) -> Result<Appliance, SetupError> {
        Self::build_with_routes(cfg, opts, &[])
    }

    /// Like [`Appliance::build`], with routes given in code added to the config's.
    pub fn build_with_routes(
        cfg: Config,
        opts: &RunOptions,
        extra: &[route::RouteSpec],
    ) -> Result<Appliance, SetupError> {
        let nw = worker_count(&cfg, opts)?;
        let n_ports = cfg.ports.len();
        let mut rx_own: Vec<Vec<AnyRx>> = (0..nw).map(|_| Vec::new()).collect();
        let mut rx_single: Vec<AnyRx> = Vec::new();
        let mut tx: Vec<Vec<AnyTx>> = (0..nw).map(|_| Vec::new()).collect();
        let mut pcap_outs = Vec::new();
        let mut mem_stats = Vec::new();
        let mut counters = Vec::new();
        let mut macs: Vec<[u8; 6]> = (0..n_ports)
            .map(|i| port_mac(&cfg, i))
            .collect::<Result<_, _>>()?;
        for (i, p) in cfg.ports.iter().enumerate() {
            match p.backend.as_str() {
                "mem" => {
                    if let Some(gc) = gen_config(&cfg, i)? {
                        let tpl = Arc::new(
                            Templates::build(&gc)
                                .map_err(|e| SetupError::Port(format!("port {}: {e}", p.name)))?,
                        );
                        for (q, v) in rx_own.iter_mut().enumerate() {
                            v.push(AnyRx::Mem(MemRx::new(i as u16, tpl.clone(), &gc, q, nw)));
                        }
                    }
                    let st = Arc::new(MemPortStats::default());
                    for v in tx.iter_mut() {
                        v.push(AnyTx::Mem(MemTx::new(st.clone())));
                    }
                    mem_stats.push(st);
                }
                "pcap" => {
                    if let Some(f) = &p.rx_file {
                        let path = cfg.resolve(f);
                        let cap = Arc::new(
                            Capture::load(&p.name, &path)
                                .map_err(|e| SetupError::Port(e.to_string()))?,
                        );
                        let q = AnyRx::Pcap(PcapRx::new(i as u16, cap, p.repeat));
                        if nw == 1 {
                            rx_own[0].push(q)
                        } else {
                            rx_single.push(q)
                        }
                    }
                    match &p.tx_file {
                        Some(f) => {
                            let path = cfg.resolve(f);
                            let (out, qs) = PcapOut::open(&p.name, &path, nw)
                                .map_err(|e| SetupError::Port(e.to_string()))?;
                            for (v, q) in tx.iter_mut().zip(qs) {
                                v.push(AnyTx::Pcap(q));
                            }
                            pcap_outs.push(out);
                        }
                        None => {
                            for v in tx.iter_mut() {
                                v.push(AnyTx::None);
                            }
                        }
                    }
                }
                "tap" => {
                    let mut tc = tap::TapConfig::new(p.ifname.as_deref().unwrap_or_default());
                    tc.queues = p.queues.unwrap_or(nw);
                    tc.mtu = (p.mtu != 0 && p.mtu != 1500).then_some(p.mtu as u32);
                    tc.mac =
                        match &p.mac {
                            Some(m) => Some(Mac(parse_mac(m)
                                .map_err(|e| cfg.error(&format!("ports[{i}].mac"), e))?)),
                            None => None,
                        };
                    let port = tap::open(&p.name, &tc, i as u16)
                        .map_err(|e| SetupError::Port(e.to_string()))?;
                    if let Some(n) = &port.info.note {
                        tracing::info!("port {}: {n}", p.name);
                    }
                    macs[i] = port.info.mac.0;
                    assign_rx(
                        port.rx.into_iter().map(AnyRx::Tap).collect(),
                        &mut rx_own,
                        &mut rx_single,
                    );
                    assign_tx(port.tx.into_iter().map(AnyTx::Tap).collect(), &mut tx);
                    counters.push(port.counters);
                }
                "afpacket" => {
                    let mut ac =
                        afpacket::AfPacketConfig::new(p.ifname.as_deref().unwrap_or_default());
                    ac.queues = p.queues.unwrap_or(nw);
                    ac.promisc = p.promisc;
                    let port = afpacket::open(&p.name, &ac, i as u16)
                        .map_err(|e| SetupError::Port(e.to_string()))?;
                    macs[i] = match &p.mac {
                        Some(m) => {
                            parse_mac(m).map_err(|e| cfg.error(&format!("ports[{i}].mac"), e))?
                        }
                        None => port.info.mac.0,
                    };
                    assign_rx(
                        port.rx.into_iter().map(AnyRx::AfPacket).collect(),
                        &mut rx_own,
                        &mut rx_single,
                    );
                    assign_tx(port.tx.into_iter().map(AnyTx::AfPacket).collect(), &mut tx);
                    counters.push(port.counters);
                }
                #[cfg(feature = "afxdp")]
                "afxdp" => {
                    use crate::port::afxdp;
                    let mut xc = afxdp::AfXdpConfig::new(p.ifname.as_deref().unwrap_or_default());
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
                    let port = afxdp::open(&p.name, &xc, i as u16)
                        .map_err(|e| SetupError::Port(e.to_string()))?;
                    tracing::info!(
                        "port {}: AF_XDP on {}, XDP program {:?}, sockets bound {}",
                        p.name,
                        port.info.ifname,
                        port.info.xdp_mode,
                        match port.info.bind {
                            afxdp::XdpBind::ZeroCopy => "zero-copy",
                            _ => "in copy mode",
                        }
                    );
                    macs[i] = match &p.mac {
                        Some(m) => {
                            parse_mac(m).map_err(|e| cfg.error(&format!("ports[{i}].mac"), e))?
                        }
                        None => port.info.mac.0,
                    };
                    assign_rx(
                        port.rx.into_iter().map(AnyRx::AfXdp).collect(),
                        &mut rx_own,
                        &mut rx_single,
                    );
                    assign_tx(port.tx.into_iter().map(AnyTx::AfXdp).collect(), &mut tx);
                    counters.push(port.counters);
                }
                #[cfg(feature = "dpdk")]
                "dpdk" => {
                    // Opened together below, once the EAL is up; the std queues of a
                    // DPDK run stay empty (its workers poll DPDK queues).
                    for v in tx.iter_mut() {
                        v.push(AnyTx::None);
                    }
                }
                other => {
                    return Err(SetupError::Port(format!(
                        "port {}: backend {other} is not available in this build",
                        p.name
                    )));
                }
            }
        }
        #[cfg(feature = "dpdk")]
        let (dpdk_ports, mut dpdk_queues) = open_dpdk(&cfg, nw, &mut macs, &mut counters)?;
        let tables = build_tables(&cfg, extra, Some(&macs))?;
        let listeners = Listeners::bind(
            opts.metrics_listen
                .as_deref()
                .or(cfg.ctl.metrics_listen.as_deref()),
            opts.ctl_socket.as_deref().or(cfg.ctl.socket.as_deref()),
        )?;
        let with_cp = !tables.local.is_empty();
        let handle = TableHandle::new(tables, nw);
        let mut cp_links: Vec<Option<punt::CpLink>> = (0..nw).map(|_| None).collect();
        let cp_stop = Arc::new(AtomicBool::new(false));
        let (control, cp_stats) = if with_cp {
            let mut ends = Vec::new();
            for l in cp_links.iter_mut() {
                let (link, end) = punt::link(cfg.control.ring_slots);
                *l = Some(link);
                ends.push(end);
            }
            let (cp, st) =
                ControlPlane::new(handle.clone(), ends, &cfg.control, n_ports, cp_stop.clone());
            (Some(cp), Some(st))
        } else {
            (None, None)
        };
        let distributors = usize::from(!rx_single.is_empty());
        let ctl = RunControl::new(nw, distributors);
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let pool_n = cfg.general.pool_buffers;
        let mut dist = if rx_single.is_empty() {
            None
        } else {
            Some(Distributor {
                to: (0..nw).map(|_| None).collect(),
                back: Vec::new(),
                rx: rx_single,
            })
        };
        let mut inbound: Vec<Option<Inbound>> = (0..nw).map(|_| None).collect();
        if let Some(d) = dist.as_mut() {
            for (k, slot) in inbound.iter_mut().enumerate().skip(1) {
                let (p, c) = rtrb::RingBuffer::new(1024);
                let (bp, bc) = rtrb::RingBuffer::new(pool_n);
                d.to[k] = Some(p);
                d.back.push(bc);
                *slot = Some(Inbound {
                    from: c,
                    back: bp,
                    own_buffers: pool_n,
                });
            }
        }
        let epoch = Instant::now();
        let mut workers = Vec::new();
        let mut stats = Vec::new();
        let mut telemetry = Vec::new();
        let mut hist_from = Vec::new();
        let mut hist_to = Vec::new();
        let peers: Vec<u16> = (0..n_ports as u16)
            .map(|p| if n_ports > 1 { p ^ 1 } else { p })
            .map(|p| p.min(n_ports as u16 - 1))
            .collect();
        for (w, ((rx, txq), inb)) in rx_own.into_iter().zip(tx).zip(inbound).enumerate() {
            let st = Arc::new(WorkerStats::new());
            let tel = Arc::new(DestCounters::new(cfg.general.telemetry_destinations, 16));
            let (ho, hi_c) = rtrb::RingBuffer::new(4);
            let (mut hp, hi) = rtrb::RingBuffer::new(4);
            for _ in 0..2 {
                let _ = hp.push(new_hist());
            }
            // A receiver of hand-offs may hold everyone's buffers at once, and the
            // control plane's packets end up in the pool of the worker that sent them.
            let pool = Pool::with_reserve(pool_n, pool_n * nw + crate::cp::POOL_BUFFERS);
            workers.push(Worker {
                id: w,
                core: if cfg.general.pin_cores && !cores.is_empty() {
                    Some(cores[(cfg.general.first_core + w) % cores.len()])
                } else {
                    None
                },
                rx,
                tx: txq,
                dist: if w == 0 { dist.take() } else { None },
                inbound: inb,
                pool,
                tables: handle.reader(w),
                stats: st.clone(),
                hist_out: ho,
                hist_in: hi,
                telemetry: tel.clone(),
                mode: if opts.io_mode {
                    Mode::Io
                } else {
                    Mode::Forward
                },
                io_peer: peers.clone(),
                burst: cfg.general.burst,
                drain: Duration::from_micros(cfg.general.drain_us),
                idle_park: Duration::from_micros(cfg.general.idle_park_us),
                standby_park: Duration::from_micros(
                    cfg.ram.as_ref().map_or(0, |r| r.standby_park_us),
                ),
                ctl: ctl.clone(),
                epoch,
                cp: cp_links[w].take(),
                #[cfg(feature = "dpdk")]
                dpdk: dpdk_queues.get_mut(w).and_then(Option::take),
            });
            stats.push(st);
            telemetry.push(tel);
            hist_from.push(hi_c);
            hist_to.push(hp);
        }
        Ok(Appliance {
            workers,
            tables: handle,
            ctl,
            stats,
            telemetry,
            hist_from,
            hist_to,
            pcap_outs,
            mem_stats,
            port_counters: counters,
            port_names: cfg.port_names(),
            config: cfg,
            metrics: MetricsRegistry::new(),
            listeners,
            extra_routes: extra.to_vec(),
            macs,
            control,
            cp_stop,
            cp_stats,
            #[cfg(feature = "dpdk")]
            dpdk_ports,
        })
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// The address `/metrics` and `/status` are served on (when enabled).
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.listeners.metrics_addr()
    }

    /// The ctl socket (when enabled).
    pub fn ctl_socket(&self) -> Option<&Path> {
        self.listeners.socket_path()
    }

    /// Port names and backends, by index.
    fn port_list(&self) -> Vec<(String, String)> {
        self.config
            .ports
            .iter()
            .map(|p| (p.name.clone(), p.backend.clone()))
            .collect()
    }

    /// Runs until the duration passes, a signal or a ctl `shutdown`/`drain` arrives, or
    /// (with `exit_on_eof`) every input is exhausted; then drains and returns the summary.
    pub fn run(mut self, opts: &RunOptions) -> Result<Summary, SetupError> {
        let out = opts
            .json
            .as_deref()
            .map(|p| OutFile::create("--json", p))
            .transpose()?;
        let nw = self.workers.len();
        // The prediction engine first: a refused model stops start-up before anything runs.
        #[cfg(feature = "tpe")]
        let tpe = if self.config.tpe.enabled {
            Some(crate::tpe::live::LiveTpe::start(
                &self.config,
                self.telemetry.clone(),
                &self.metrics,
            )?)
        } else {
            None
        };
        #[cfg(feature = "tpe")]
        let tpe_link = tpe.as_ref().map(|t| t.link());
        #[cfg(not(feature = "tpe"))]
        let tpe_link: Option<Arc<dyn TpeLink>> = {
            if self.config.tpe.enabled {
                tracing::warn!(
                    "tpe: [tpe] enabled, but this build has no prediction engine (built without the tpe feature); running without it"
                );
            }
            None
        };
        // The live RAM next (it reads the engine's forecasts): it owns the steering table.
        let ram = self.start_ram(
            #[cfg(feature = "tpe")]
            tpe.as_ref(),
        )?;
        let ram_shared = ram.as_ref().map(|r| r.shared());
        let start = Instant::now();
        // Control plane next (the ctl thread; the controller loop runs on this thread).
        let live = Live::shared();
        let mut mon = self.monitor(opts, live.clone(), tpe_link.clone(), ram_shared.clone());
        let ctl_thread = self.start_ctl(start, &live, tpe_link, ram_shared)?;
        let cp_thread = match self.control.take() {
            Some(cp) => Some(
                std::thread::Builder::new()
                    .name("cp".into())
                    .spawn(move || cp.run())
                    .map_err(|e| {
                        SetupError::Other(format!("cannot start the control-plane thread: {e}"))
                    })?,
            ),
            None => None,
        };
        let mut handles = Vec::new();
        for w in self.workers.drain(..) {
            let name = format!("safe-{}", w.id);
            let h = std::thread::Builder::new()
                .name(name)
                .spawn(move || w.run())
                .map_err(|e| SetupError::Other(format!("cannot start a worker thread: {e}")))?;
            handles.push(h);
        }
        mon.watch(start, opts.duration);
        let mut finals = Vec::new();
        for h in handles {
            finals.push(
                h.join()
                    .map_err(|_| SetupError::Other("a worker thread panicked".into()))?,
            );
        }
        let elapsed = start.elapsed();
        // The workers have exited: the RAM has nobody left to steer or wake.
        let ram_final = ram.map_or(Value::Null, |r| r.finish());
        // Every worker has exited and dropped its mbufs: stop and close the DPDK ports
        // (flushes net_pcap outputs) and take their final statistics.
        #[cfg(feature = "dpdk")]
        let dpdk_json = self.dpdk_ports.as_mut().map(|p| p.finish());
        #[cfg(not(feature = "dpdk"))]
        let dpdk_json: Option<Value> = None;
        self.cp_stop.store(true, Ordering::Release);
        if let Some(h) = cp_thread {
            h.join()
                .map_err(|_| SetupError::Other("the control-plane thread panicked".into()))?;
        }
        for w in 0..nw {
            self.tables.retire_reader(w);
        }
        // The workers have drained: stop the engine (it never held a packet).
        #[cfg(feature = "tpe")]
        let tpe_final = match tpe {
            Some(t) => t.finish(),
            None => absent_status(self.config.tpe.enabled),
        };
        #[cfg(not(feature = "tpe"))]
        let tpe_final = absent_status(self.config.tpe.enabled);
        mon.collect();
        mon.close_view();
        for o in self.pcap_outs.iter_mut() {
            o.finish()
                .map_err(|e| SetupError::Port(format!("pcap output: {e}")))?;
        }
        let mut total = Local::default();
        for f in &finals {
            total.add(f);
        }
        let latency_ns = {
            let l = monitor::lock(&live);
            let q = |p: f64| l.total.value_at_quantile(p);
            [q(0.5), q(0.9), q(0.99), q(0.999), l.total.max()]
        };
        let s = Summary {
            total,
            workers: nw,
            elapsed,
            latency_ns,
            ports: self.port_names.clone(),
            port_totals: self
                .port_counters
                .iter()
                .map(|c| (c.name.clone(), c.totals()))
                .collect(),
            control_plane: self.cp_stats.as_ref().map(|c| c.to_json()),
            dpdk: dpdk_json,
            tpe: tpe_final,
            ram: ram_final,
        };
        let _ = &self.mem_stats;
        ctl_thread.finish(s.to_json());
        if let Some(out) = out {
            out.write(&serde_json::to_string_pretty(&s.to_json()).expect("JSON of plain values"))?;
        }
        Ok(s)
    }

    /// How the live RAM reads each port's carrier: the interface of a tap, afpacket or
    /// afxdp port, the link state of a DPDK port.
    fn port_carriers(&self) -> Vec<crate::ram::live::PortCarrier> {
        use crate::ram::live::PortCarrier;
        let mut v = Vec::new();
        for p in &self.config.ports {
            match (p.backend.as_str(), p.ifname.as_deref()) {
                ("tap" | "afpacket" | "afxdp", Some(ifname)) => {
                    v.push(PortCarrier::interface(&p.name, ifname));
                }
                #[cfg(feature = "dpdk")]
                ("dpdk", _) => {
                    let id = self
                        .dpdk_ports
                        .as_ref()
                        .and_then(|d| d.ports.iter().find(|o| o.name == p.name))
                        .map(|o| o.port_id);
                    if let Some(id) = id {
                        v.push(PortCarrier {
                            port: p.name.clone(),
                            what: format!("dpdk port {id}"),
                            up: Box::new(move || crate::port::dpdk::link_up(id)),
                            ifname: None,
                        });
                    }
                }
                _ => {}
            }
        }
        v
    }

    /// Starts the `steerd-ram` thread when the config has `[ram] live = true`.
    fn start_ram(
        &self,
        #[cfg(feature = "tpe")] tpe: Option<&crate::tpe::live::LiveTpe>,
    ) -> Result<Option<crate::ram::live::LiveRam>, SetupError> {
        let Some(rc) = self.config.ram.as_ref().filter(|r| r.live) else {
            return Ok(None);
        };
        #[cfg(feature = "tpe")]
        let forecast = tpe.map(|t| {
            crate::ram::live::tpe_forecast(
                t.predictions(),
                self.config.tpe.effective_time_scale(),
                rc.lead_s,
            )
        });
        #[cfg(feature = "tpe")]
        let events = tpe.map(|t| t.events_soon());
        #[cfg(not(feature = "tpe"))]
        let (forecast, events) = (None, None);
        if rc.mode == crate::ram::RamMode::Predictive && forecast.is_none() {
            return Err(SetupError::Config(self.config.error(
                "ram.mode",
                "predictive needs the prediction engine's forecasts ([tpe] enabled = true, in a build with the tpe feature)",
            )));
        }
        let inputs = crate::ram::live::LiveInputs {
            tables: self.tables.clone(),
            telemetry: self.telemetry.clone(),
            run: self.ctl.clone(),
            forecast,
            events,
            carriers: self.port_carriers(),
        };
        let ram =
            crate::ram::live::LiveRam::start(&self.config, inputs).map_err(SetupError::Other)?;
        let c = crate::ram::live::RamCollector(ram.shared());
        self.metrics.with(|r| {
            r.sub_registry_with_prefix("ram")
                .register_collector(Box::new(c))
        });
        Ok(Some(ram))
    }

    /// Starts the `ctl` thread: metrics, status, the ctl socket, SIGHUP reloads.
    fn start_ctl(
        &mut self,
        start: Instant,
        live: &monitor::SharedLive,
        tpe: Option<Arc<dyn TpeLink>>,
        ram: Option<Arc<crate::ram::live::RamShared>>,
    ) -> Result<CtlThread, SetupError> {
        let listeners = std::mem::take(&mut self.listeners);
        #[cfg(feature = "dpdk")]
        if let Some(p) = &self.dpdk_ports {
            self.metrics
                .register_collector(Box::new(p.xstats_collector()));
        }
        self.metrics.register_collector(Box::new(SafeCollector {
            stats: self.stats.clone(),
            ports: self.port_list(),
            port_counters: self.port_counters.clone(),
            tables: self.tables.clone(),
            live: live.clone(),
            start,
        }));
        let state = CtlState {
            config: self.config.clone(),
            routes: RouteSet::from_config(&self.config, &self.extra_routes)?,
            extra: self.extra_routes.clone(),
            macs: self.macs.clone(),
            tables: self.tables.clone(),
            keys_override: None,
            run: self.ctl.clone(),
            stats: self.stats.clone(),
            live: live.clone(),
            start,
            ports: self.port_list(),
            endpoints: listeners.describe(),
            commands: Default::default(),
            tpe,
            ram,
        };
        state.register_metrics(&self.metrics);
        if let Some(a) = listeners.metrics_addr() {
            tracing::info!("metrics on http://{a}/metrics, status on http://{a}/status");
        }
        if let Some(p) = listeners.socket_path() {
            tracing::info!("ctl socket {}", p.display());
        }
        CtlThread::spawn(listeners, state, self.metrics.clone())
    }

    /// The controller loop's state (takes the histogram rings).
    fn monitor(
        &mut self,
        opts: &RunOptions,
        live: monitor::SharedLive,
        tpe: Option<Arc<dyn TpeLink>>,
        ram: Option<Arc<crate::ram::live::RamShared>>,
    ) -> Monitor {
        use std::io::IsTerminal;
        let view = if opts.quiet {
            View::Quiet
        } else if opts.screen && std::io::stderr().is_terminal() {
            View::Screen
        } else {
            View::Lines
        };
        let endpoints = format!(
            "metrics {}   ctl {}",
            self.metrics_addr()
                .map_or("off".to_string(), |a| format!("http://{a}/metrics")),
            self.ctl_socket()
                .map_or("off".to_string(), |p| p.display().to_string())
        );
        Monitor {
            hist_from: std::mem::take(&mut self.hist_from),
            hist_to: std::mem::take(&mut self.hist_to),
            live,
            stats: self.stats.clone(),
            run: self.ctl.clone(),
            interval: Duration::from_millis(self.config.general.stats_interval_ms.max(50)),
            exit_on_eof: self.config.general.exit_on_eof,
            view,
            info: ScreenInfo {
                config: self.config.source.name.clone(),
                ports: self.port_list(),
                tables: self.tables.clone(),
                endpoints,
                tpe,
                ram,
            },
        }
    }
}

/// Prints a human summary.
pub fn print_summary(s: &Summary) {
    let j = s.to_json();
    let t = &s.total;
    eprintln!("--- steerd summary ---");
    eprintln!(
        "workers {}  duration {:.2}s  rx {}  tx {}  steered {}  routed {}  drops {}",
        s.workers,
        s.elapsed.as_secs_f64(),
        t.rx,
        t.tx,
        t.steered,
        t.routed,
        t.total_drops()
    );
    eprintln!(
        "rate in {:.3} Mpps, out {:.3} Mpps; latency p50 {} p99 {} max {}",
        j["mpps_in"].as_f64().unwrap_or(0.0),
        j["mpps_out"].as_f64().unwrap_or(0.0),
        monitor::fmt_ns(s.latency_ns[0]),
        monitor::fmt_ns(s.latency_ns[2]),
        monitor::fmt_ns(s.latency_ns[4])
    );
    if t.total_drops() > 0 {
        eprintln!("drops by reason: {}", j["drops"]);
    }
    if t.fallback.iter().sum::<u64>() > 0 {
        eprintln!(
            "steering headers routed by LPM instead, by reason: {}",
            j["steering_fallbacks"]
        );
    }
    if t.local + t.cp_tx > 0 {
        eprintln!(
            "control plane: took {} packets, sent {} ({} refused by tx); {}",
            t.local, t.cp_tx, t.cp_tx_dropped, j["control_plane"]
        );
    }
    if let Some(l) = s.tpe["line"].as_str() {
        eprintln!(
            "{l}\ntpe: {} buckets, {} inferences ({} failed), {} fallbacks, promoted {} rejected {} refused {}",
            s.tpe["buckets"],
            s.tpe["inferences"],
            s.tpe["inference_failures"],
            s.tpe["fallbacks"],
            s.tpe["promotions"],
            s.tpe["rejections"],
            s.tpe["models_refused"]
        );
    }
    if !s.ram.is_null() {
        let w = &s.ram["workers"];
        eprintln!(
            "ram: {} mode, {} publications, {} destinations steered; workers active {} standby {}, {} wakes {} parks, {} standby s; pre-positionings early {} late {}",
            s.ram["mode"].as_str().unwrap_or("?"),
            s.ram["publications"],
            s.ram["steered"],
            w["active"],
            w["standby"],
            w["wakes"],
            w["parks"],
            w["standby_s"],
            s.ram["prepositions"]["early"],
            s.ram["prepositions"]["late"]
        );
    }
    eprintln!(
        "accounting: rx {} = tx {} + drops {} + local {} : {}",
        t.rx,
        t.tx,
        t.total_drops(),
        t.local,
        if t.accounted() { "ok" } else { "MISMATCH" }
    );
}

/// Loads the config at `path`, or the embedded default.
pub fn load_config(path: Option<&Path>) -> Result<Config, SetupError> {
    Ok(match path {
        Some(p) => Config::load(p)?,
        None => Config::embedded()?,
    })
}

/// Logs the `STEERD_*` overrides of a config that is about to run.
pub fn log_env_overrides(cfg: &Config) {
    if let Some(o) = cfg.env_overrides() {
        tracing::info!("{}: {o}", cfg.source.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpdk_ports_on_interfaces_and_nics_filter_frames_for_other_hosts() {
        for d in [
            "0000:01:00.0",
            "net_af_packet0,iface=eth1",
            "net_tap0",
            "net_af_xdp0",
        ] {
            assert!(dpdk_sees_others(d), "{d}");
        }
        for d in ["net_pcap0,rx_pcap=in.pcap", "net_null1", "net_ring0"] {
            assert!(!dpdk_sees_others(d), "{d}");
        }
    }
}
