//! `steerd bench`: the in-memory pipeline measured on this machine, printing JSON.
//!
//! Two mem ports: p0 generates (pktgen-style, unlimited rate), p1 absorbs. Paths:
//! - `io`: no parsing or rewriting (the testpmd `io` baseline: generator + sink cost);
//! - `lpm`: plain IPv4/UDP to destinations spread over every prefix of an N-route table;
//! - `steer`: the same packets behind a valid steering header, the same N-route table
//!   loaded, so the difference to `lpm` is the steering fast path versus the LPM lookup.
//!
//! Several paths in one call run alternately (A B C A B C …) `repeat` times and report
//! each run and the median per path, so comparisons are side by side in one run.
//!
//! `tpe` = [off, on] runs every path twice per round, without and with the prediction
//! engine live in the same process (its threads reading the workers' telemetry, a
//! bucket every `60 s / tpe_time_scale`), and reports `tpe_ratio`: the on/off ratio of
//! the median rates, per path.

use std::time::Duration;

use serde_json::{Value, json};

use crate::app::{Appliance, RunOptions, SetupError};
use crate::config::{
    Config, General, GeneratorConfig, NextHopConfig, PortConfig, RoutingConfig, SizeSpec,
    SteerDestConfig, SteeringConfig, TpeConfig,
};
use crate::route;

/// Benchmark settings.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Paths to run: io, lpm, steer, lpm-wfq, steer-wfq (the last two with weighted
    /// transmit classes on the egress port).
    pub paths: Vec<String>,
    /// Routes in the table (1 = a single covering route).
    pub routes: usize,
    /// Workers.
    pub workers: usize,
    /// Frame size in bytes.
    pub size: usize,
    /// Seconds per run.
    pub duration: f64,
    /// Runs per path (alternating).
    pub repeat: usize,
    /// Distinct flows (destinations) generated.
    pub flows: usize,
    /// Run each path with the prediction engine off (`false`) and/or on (`true`);
    /// several modes alternate like paths do.
    pub tpe: Vec<bool>,
    /// `[tpe] time_scale` of the runs with the engine on.
    pub tpe_time_scale: f64,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            paths: vec!["lpm".into()],
            routes: 1,
            workers: 1,
            size: 64,
            duration: 5.0,
            repeat: 1,
            flows: 8192,
            tpe: vec![false],
            tpe_time_scale: 600.0,
        }
    }
}

const KEY: &str = "62656e63686d61726b206b6579203031";
/// Transmit class weights of the `-wfq` paths' egress port.
const WFQ_WEIGHTS: [u16; 4] = [1, 2, 4, 8];
/// The paths `steerd bench` runs.
pub const PATHS: [&str; 5] = ["io", "lpm", "steer", "lpm-wfq", "steer-wfq"];
/// Most synthetic routes of `--routes` (a full IPv4 table is about a million).
pub const MAX_ROUTES: usize = 4_000_000;
const N_HOPS: usize = 4;

fn next_hops() -> Vec<NextHopConfig> {
    (0..N_HOPS)
        .map(|i| NextHopConfig {
            name: format!("nh{i}"),
            port: "p1".into(),
            mac: Some(format!("02:00:00:00:01:{i:02x}")),
            ip: None,
            dest: Some(i as u16),
        })
        .collect()
}

/// The synthetic route table and the generator destinations for `n` routes.
fn routes_and_dsts(n: usize, flows: usize) -> (Vec<route::RouteSpec>, Vec<String>) {
    if n <= 1 {
        let p: route::Prefix = "198.18.0.0/15".parse().expect("static prefix");
        return (
            vec![route::RouteSpec {
                prefix: p,
                next_hops: vec!["nh0".into()],
                line: 1,
            }],
            vec!["198.18.0.0/15".into()],
        );
    }
    let table = route::synthetic_v4_routes(n, 42);
    let specs: Vec<route::RouteSpec> = table
        .iter()
        .enumerate()
        .map(|(i, (a, l))| route::RouteSpec {
            prefix: route::Prefix::new(std::net::IpAddr::V4(*a), *l)
                .expect("generated prefixes are clean"),
            next_hops: vec![format!("nh{}", i % N_HOPS)],
            line: i + 1,
        })
        .collect();
    // Destinations: one per flow, spread over the whole table.
    let step = (table.len() / flows.max(1)).max(1);
    let dsts = table
        .iter()
        .step_by(step)
        .take(flows)
        .map(|(a, l)| format!("{a}/{l}"))
        .collect();
    (specs, dsts)
}

/// A trusted in-memory port of the benchmark configs (MTU 9000, NSH stripped on egress),
/// generating traffic when `generator` is given.
fn mem_port(name: &str, mac: &str, generator: Option<GeneratorConfig>) -> PortConfig {
    PortConfig {
        name: name.into(),
        backend: "mem".into(),
        mac: Some(mac.into()),
        mtu: 9000,
        trusted: true,
        strip_nsh: true,
        tx_rate_mbps: None,
        tx_weights: None,
        generator,
        rx_file: None,
        repeat: 1,
        tx_file: None,
        ifname: None,
        queues: None,
        promisc: false,
        xdp_mode: None,
        xdp_bind: None,
        device: None,
        addrs: Vec::new(),
    }
}

/// The configuration of one benchmark run (`tpe`: with the prediction engine running).
pub fn bench_config(path: &str, o: &BenchOptions, dsts: Vec<String>, tpe: bool) -> Config {
    let (base, wfq) = match path.strip_suffix("-wfq") {
        Some(b) => (b, true),
        None => (path, false),
    };
    let steer = base == "steer";
    let mut out = mem_port("p1", "02:00:00:00:00:11", None);
    if wfq {
        out.tx_weights = Some(WFQ_WEIGHTS.to_vec());
    }
    let gen_cfg = GeneratorConfig {
        flows: o.flows,
        dst: dsts,
        sizes: vec![SizeSpec::Plain(o.size)],
        steered_fraction: if steer { 1.0 } else { 0.0 },
        priority: 1,
        ..GeneratorConfig::default()
    };
    Config {
        general: General {
            workers: o.workers,
            stats_interval_ms: 1000,
            exit_on_eof: false,
            ..General::default()
        },
        ports: vec![mem_port("p0", "02:00:00:00:00:10", Some(gen_cfg)), out],
        next_hops: next_hops(),
        routes: Vec::new(),
        control: Default::default(),
        routing: RoutingConfig {
            tbl8_groups: 65536,
            ..RoutingConfig::default()
        },
        steering: SteeringConfig {
            keys: vec![KEY.into()],
            destinations: (0..16)
                .map(|i| SteerDestConfig {
                    id: 100 + i,
                    next_hop: format!("nh{}", i as usize % N_HOPS),
                    ecmp: Vec::new(),
                    max_priority: 3,
                })
                .collect(),
            ..SteeringConfig::default()
        },
        ctl: Default::default(),
        dpdk: Default::default(),
        ram: None,
        tpe: TpeConfig {
            enabled: tpe,
            time_scale: Some(o.tpe_time_scale),
            ..TpeConfig::default()
        },
        mark: None,
        source: Default::default(),
    }
}

/// Settings of `steerd gen-pcap`: a capture of generated traffic (the mem generator's
/// templates), for DPDK's net_pcap vdev and peer benchmarks.
#[derive(Clone, Debug)]
pub struct GenPcapOptions {
    /// Output file.
    pub out: std::path::PathBuf,
    /// Distinct flows (one packet each in the file).
    pub flows: usize,
    /// Frame size in bytes (without FCS).
    pub size: usize,
    /// Destination prefixes (flow i goes to prefix i mod len).
    pub dst: Vec<String>,
    /// Fraction of flows with a valid steering header (keys, epoch and destinations
    /// from the config's `[steering]`).
    pub steered: f64,
    /// Steering priority written into the headers.
    pub priority: u8,
    /// Destination MAC of the frames.
    pub dst_mac: String,
    /// Seed.
    pub seed: u64,
}

/// Writes a capture of generated IPv4/IPv6 UDP flows; steered flows carry NSH steering
/// headers whose tags verify under `cfg`'s current key. Returns the packets written.
pub fn gen_pcap(cfg: &Config, o: &GenPcapOptions) -> Result<usize, SetupError> {
    use crate::app::gen_config;
    if !(0.0..=1.0).contains(&o.steered) {
        return Err(SetupError::Other("--steered: must be within 0..=1".into()));
    }
    let max = crate::safe::tx::MAX_PRIORITY;
    if o.priority > max {
        return Err(SetupError::Other(format!(
            "--priority {} is above {max} (priorities are 0..={max})",
            o.priority
        )));
    }
    // The flags become a generated port's fields: checked here, by flag name.
    if o.dst.is_empty() {
        return Err(SetupError::Other("--dst: give at least one prefix".into()));
    }
    for d in &o.dst {
        crate::config::parse_cidr(d).map_err(|e| SetupError::Other(format!("--dst: {e}")))?;
    }
    crate::config::parse_mac(&o.dst_mac)
        .map_err(|e| SetupError::Other(format!("--dst-mac: {e}")))?;
    if !(1..=crate::port::mem::MAX_FLOWS).contains(&o.flows) {
        return Err(SetupError::Other(format!(
            "--flows {} is outside 1..={}",
            o.flows,
            crate::port::mem::MAX_FLOWS
        )));
    }
    if o.steered > 0.0 && (cfg.steering.keys.is_empty() || cfg.steering.destinations.is_empty()) {
        return Err(SetupError::Other(format!(
            "--steered {} needs [steering] keys and destinations in {}",
            o.steered, cfg.source.name
        )));
    }
    if !(60..=crate::port::MAX_FRAME).contains(&o.size) {
        return Err(SetupError::Other(format!(
            "--size {} is outside 60..={}",
            o.size,
            crate::port::MAX_FRAME
        )));
    }
    // The generator of a mem port with these settings, in a copy of the config.
    let mut c = cfg.clone();
    let g = GeneratorConfig {
        flows: o.flows,
        dst: o.dst.clone(),
        sizes: vec![SizeSpec::Plain(o.size)],
        steered_fraction: o.steered,
        fault_fraction: 0.0,
        seed: o.seed,
        priority: o.priority,
        ..GeneratorConfig::default()
    };
    c.ports = vec![mem_port("gen", &o.dst_mac, Some(g))];
    let gc = gen_config(&c, 0)?.ok_or_else(|| SetupError::Other("no generator".into()))?;
    let tpl = crate::port::mem::Templates::build(&gc).map_err(SetupError::Other)?;
    let f = std::fs::File::create(&o.out)
        .map_err(|e| SetupError::Other(format!("cannot create {}: {e}", o.out.display())))?;
    let io = |e: std::io::Error| SetupError::Other(format!("{}: {e}", o.out.display()));
    let mut w =
        crate::wire::pcap::PcapWriter::new(std::io::BufWriter::new(f), 65535).map_err(io)?;
    for i in 0..tpl.len() {
        w.write_packet(i as u32 / 1_000_000, i as u32 % 1_000_000, tpl.get(i))
            .map_err(io)?;
    }
    w.flush().map_err(io)?;
    Ok(tpl.len())
}

/// Runs the benchmark; returns one JSON object.
pub fn run(o: &BenchOptions) -> Result<Value, SetupError> {
    // The flags are checked here, by their names; the generated config would name its
    // own fields instead.
    let range = |flag: &str, v: usize, lo: usize, hi: usize| {
        if (lo..=hi).contains(&v) {
            Ok(())
        } else {
            Err(SetupError::Other(format!(
                "{flag} {v} is outside {lo}..={hi}"
            )))
        }
    };
    range("--routes", o.routes, 1, MAX_ROUTES)?;
    range("--workers", o.workers, 0, crate::safe::MAX_WORKERS)?;
    range("--size", o.size, 60, crate::port::MAX_FRAME)?;
    range("--repeat", o.repeat, 1, 1000)?;
    range("--flows", o.flows, 1, crate::port::mem::MAX_FLOWS)?;
    if !(o.duration.is_finite() && o.duration > 0.0) {
        return Err(SetupError::Other(format!(
            "--duration {} must be above 0 seconds",
            o.duration
        )));
    }
    for p in &o.paths {
        if !PATHS.contains(&p.as_str()) {
            return Err(SetupError::Other(format!(
                "--path: unknown path \"{p}\" ({})",
                PATHS.join(", ")
            )));
        }
    }
    let (lo, hi) = crate::config::TIME_SCALE_RANGE;
    if o.tpe.contains(&true) && !(lo..=hi).contains(&o.tpe_time_scale) {
        return Err(SetupError::Other(format!(
            "--tpe-time-scale {} is outside {lo}..={hi} (600: a bucket every 100 ms)",
            o.tpe_time_scale
        )));
    }
    if o.tpe.is_empty() {
        return Err(SetupError::Other("--tpe: give on, off or on,off".into()));
    }
    if o.tpe.contains(&true) && !cfg!(feature = "tpe") {
        return Err(SetupError::Other(
            "--tpe on: this build has no prediction engine (built without the tpe feature)".into(),
        ));
    }
    let (specs, dsts) = routes_and_dsts(o.routes, o.flows);
    let mut runs: Vec<(String, Value)> = Vec::new();
    let modes = o.tpe.len() > 1;
    let label = |p: &str, tpe: bool| {
        if modes {
            format!("{p}/tpe_{}", if tpe { "on" } else { "off" })
        } else {
            p.to_string()
        }
    };
    let mut labels: Vec<String> = Vec::new();
    for _ in 0..o.repeat {
        for (p, &tpe) in o
            .paths
            .iter()
            .flat_map(|p| o.tpe.iter().map(move |t| (p, t)))
        {
            let cfg = bench_config(p, o, dsts.clone(), tpe);
            cfg.validate()?;
            let opts = RunOptions {
                duration: Some(Duration::from_secs_f64(o.duration)),
                quiet: true,
                workers: Some(o.workers),
                io_mode: p == "io",
                ..RunOptions::default()
            };
            let app = Appliance::build_with_routes(cfg, &opts, &specs)?;
            let s = app.run(&opts)?;
            let secs = s.elapsed.as_secs_f64();
            let pkts = s.total.tx.max(1);
            let l = label(p, tpe);
            if !labels.contains(&l) {
                labels.push(l.clone());
            }
            runs.push((
                l,
                json!({
                    "path": p,
                    "tpe": if tpe { "on" } else { "off" },
                    "tpe_buckets": s.tpe["buckets"],
                    "tpe_inferences": s.tpe["inferences"],
                    "tpe_inference_failures": s.tpe["inference_failures"],
                    "tpe_infer_p50_us": s.tpe["inference_us"]["p50"],
                    "tpe_infer_p99_us": s.tpe["inference_us"]["p99"],
                    "mpps": s.total.tx as f64 / secs / 1e6,
                    "ns_per_pkt": secs * 1e9 * s.workers as f64 / pkts as f64,
                    "p50_ns": s.latency_ns[0],
                    "p99_ns": s.latency_ns[2],
                    "drops": s.total.total_drops(),
                    "steered": s.total.steered,
                    "routed": s.total.routed,
                    "accounted": s.total.accounted(),
                }),
            ));
        }
    }
    let median = |p: &str, k: &str| -> f64 {
        let mut v: Vec<f64> = runs
            .iter()
            .filter(|(q, _)| q == p)
            .filter_map(|(_, r)| r[k].as_f64())
            .collect();
        v.sort_by(|a, b| a.total_cmp(b));
        if v.is_empty() { 0.0 } else { v[v.len() / 2] }
    };
    let mut out = serde_json::Map::new();
    out.insert("workers".into(), json!(o.workers));
    out.insert("routes".into(), json!(o.routes));
    out.insert("size".into(), json!(o.size));
    out.insert("duration_s".into(), json!(o.duration));
    out.insert("repeat".into(), json!(o.repeat));
    if labels.len() == 1 {
        let p = &labels[0];
        out.insert("path".into(), json!(p));
        for k in ["mpps", "ns_per_pkt", "p50_ns", "p99_ns", "drops"] {
            out.insert(k.into(), json!(median(p, k)));
        }
    } else {
        let mut per = serde_json::Map::new();
        for p in &labels {
            per.insert(
                p.clone(),
                json!({
                    "mpps": median(p, "mpps"),
                    "ns_per_pkt": median(p, "ns_per_pkt"),
                    "p50_ns": median(p, "p50_ns"),
                    "p99_ns": median(p, "p99_ns"),
                    "drops": median(p, "drops"),
                }),
            );
        }
        out.insert("path".into(), json!(o.paths.join(",")));
        out.insert("paths".into(), Value::Object(per));
    }
    if modes {
        // Forwarding with the engine running relative to without, per path (medians).
        let mut ratio = serde_json::Map::new();
        for p in &o.paths {
            let off = median(&label(p, false), "mpps");
            let on = median(&label(p, true), "mpps");
            ratio.insert(
                p.clone(),
                json!({"mpps_tpe_on": on, "mpps_tpe_off": off,
                       "ratio_on_to_off": if off > 0.0 { on / off } else { 0.0 }}),
            );
        }
        out.insert(
            "tpe".into(),
            json!(
                o.tpe
                    .iter()
                    .map(|&t| if t { "on" } else { "off" })
                    .collect::<Vec<_>>()
            ),
        );
        out.insert("tpe_time_scale".into(), json!(o.tpe_time_scale));
        out.insert("tpe_ratio".into(), Value::Object(ratio));
    }
    out.insert(
        "runs".into(),
        Value::Array(runs.into_iter().map(|(_, v)| v).collect()),
    );
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = r#"
[general]
workers = 1
pin_cores = false
exit_on_eof = true

[[ports]]
name = "in"
backend = "pcap"
trusted = true
rx_file = "IN"

[[ports]]
name = "out"
backend = "pcap"
tx_file = "OUT"

[[next_hops]]
name = "gw"
port = "out"
mac = "02:00:00:00:09:01"

[[routes]]
prefix = "198.18.0.0/15"
via = "gw"

[steering]
keys = ["62656e63686d61726b206b6579203031"]
[[steering.destinations]]
id = 100
next_hop = "gw"
[[steering.destinations]]
id = 101
next_hop = "gw"
"#;

    fn gen_and_forward(steered: f64) -> crate::app::Summary {
        let dir = tempfile::tempdir().unwrap();
        let inp = dir.path().join("in.pcap");
        let out = dir.path().join("out.pcap");
        let text = CFG
            .replace("IN", &inp.display().to_string())
            .replace("OUT", &out.display().to_string());
        let cfg = Config::from_toml(&text, "t.toml", dir.path(), false).unwrap();
        let n = gen_pcap(
            &cfg,
            &GenPcapOptions {
                out: inp.clone(),
                flows: 64,
                size: 64,
                dst: vec!["198.18.0.0/16".into()],
                steered,
                priority: 0,
                dst_mac: "02:00:00:00:00:10".into(),
                seed: 1,
            },
        )
        .unwrap();
        assert_eq!(n, 64);
        let opts = RunOptions {
            duration: Some(Duration::from_secs(30)),
            quiet: true,
            ..RunOptions::default()
        };
        let s = Appliance::build(cfg, &opts).unwrap().run(&opts).unwrap();
        assert_eq!(s.total.rx, 64);
        assert_eq!(s.total.tx, 64, "every generated packet is forwarded");
        s
    }

    #[test]
    fn gen_pcap_steered_headers_verify_under_the_config_key() {
        let s = gen_and_forward(1.0);
        assert_eq!(s.total.steered, 64, "every packet steered: {:?}", s.total);
        assert_eq!(s.total.fallback.iter().sum::<u64>(), 0);
    }

    #[test]
    fn gen_pcap_plain_packets_take_lpm() {
        let s = gen_and_forward(0.0);
        assert_eq!(s.total.routed, 64);
        assert_eq!(s.total.steered, 0);
    }
}
