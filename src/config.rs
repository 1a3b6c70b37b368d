//! Typed, validated configuration (cold).
//!
//! Sources, later ones overriding earlier ones: the TOML file (or the embedded
//! `conf/default.toml`), then environment variables `STEERD_<SECTION>__<KEY>` (for
//! example `STEERD_GENERAL__WORKERS=2`), merged by the `config` crate. Unknown keys are
//! refused (typos don't pass silently); `STEERD_*` variables without a `__` are not
//! configuration (e.g. the test bed's `STEERD_TESTBED_PREFIX`). Every error names the file, the line where it can
//! be found, and the field path, e.g.
//! `conf/lab.toml:14: ports[1].mtu: invalid value: integer 70000, expected u16`.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::safe::tx::MAX_PRIORITY;

/// The configuration compiled into the binary (`conf/default.toml`).
pub const DEFAULT_TOML: &str = include_str!("../conf/default.toml");

/// A configuration error a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File (or `<embedded default>`).
    pub file: String,
    /// 1-based line, when it could be located.
    pub line: Option<usize>,
    /// The `STEERD_*` variable that set the field, when the bad value came from the
    /// environment rather than the file (then `line` is None).
    pub env: Option<String>,
    /// Field path, e.g. `ports[1].backend`.
    pub field: String,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.env, self.line) {
            (Some(v), _) => write!(f, "{v} (environment, over {}): ", self.file)?,
            (None, Some(l)) => write!(f, "{}:{}: ", self.file, l)?,
            (None, None) => write!(f, "{}: ", self.file)?,
        }
        if self.field.is_empty() {
            write!(f, "{}", self.msg)
        } else {
            write!(f, "{}: {}", self.field, self.msg)
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// An error about `field` of the config `file` at `line`: when one of the `env`
    /// overrides set the field, it cites that variable instead of the line; a key's
    /// value is never shown.
    fn new(
        file: &str,
        env: &[(String, String)],
        line: Option<usize>,
        field: String,
        msg: String,
    ) -> ConfigError {
        // An unknown section (`STEERD_GENERL__WORKERS`) is reported at the section, a
        // field the variable's path lies within: that variable brought it in.
        let env = env_var_for(env, &field).or_else(|| {
            msg.starts_with("unknown field")
                .then(|| unknown_from_env(env, &field))
                .flatten()
        });
        let msg = if is_secret(&field) {
            redact_quoted(&msg)
        } else {
            msg
        };
        ConfigError {
            file: file.to_string(),
            line: if env.is_some() { None } else { line },
            env,
            field,
            msg,
        }
    }
}

/// Whole-appliance settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct General {
    /// Forwarding workers (one per core); 0 = one per available core.
    pub workers: usize,
    /// Packets per burst (1..=32).
    pub burst: usize,
    /// Transmit drain deadline in microseconds.
    pub drain_us: u64,
    /// Buffers per worker pool.
    pub pool_buffers: usize,
    /// Pin workers to cores.
    pub pin_cores: bool,
    /// First core to pin worker 0 to.
    pub first_core: usize,
    /// Stats line interval in milliseconds.
    pub stats_interval_ms: u64,
    /// Exit when every input is exhausted (replayed files, finite generators).
    pub exit_on_eof: bool,
    /// Telemetry destinations (indices 0..n) counted per worker.
    pub telemetry_destinations: usize,
    /// Idle workers park: after 1,024 empty polls a worker sleeps, 8 µs at first and
    /// twice as long each time it finds nothing, up to this many microseconds (the most
    /// a packet waits for a parked worker). 0 = pure polling (never sleeps).
    pub idle_park_us: u64,
}

impl Default for General {
    fn default() -> Self {
        General {
            workers: 0,
            burst: 32,
            drain_us: 100,
            pool_buffers: 8192,
            pin_cores: true,
            first_core: 0,
            stats_interval_ms: 1000,
            exit_on_eof: true,
            telemetry_destinations: 256,
            idle_park_us: 0,
        }
    }
}

/// Most buffers in one worker's pool (`general.pool_buffers`).
pub const MAX_POOL_BUFFERS: usize = 1 << 20;
/// Most queues of one port (`ports[].queues`).
pub const MAX_PORT_QUEUES: usize = 256;
/// Most destinations counted per worker (`general.telemetry_destinations`): the steering
/// header's destination ids are 16-bit.
pub const MAX_TELEMETRY_DESTINATIONS: usize = 1 << 16;
/// Most destinations one live prediction engine predicts (`tpe.destinations`), as for
/// `steerd tpe eval`.
pub const MAX_TPE_DESTINATIONS: usize = 4096;

/// `tpe.time_scale` bounds: a thousandth of real time up to 100,000× (a bucket every
/// 0.6 ms).
pub const TIME_SCALE_RANGE: (f64, f64) = (0.001, 100_000.0);

/// A size entry of a generator: a plain size, or `[size, weight]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum SizeSpec {
    /// A size with weight 1.
    Plain(usize),
    /// `[size, weight]`.
    Weighted(usize, u32),
}

/// Generator settings of a `mem` port.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorConfig {
    /// Generate on this port (false = sink only).
    pub enabled: bool,
    /// Distinct flows.
    pub flows: usize,
    /// Destination prefixes (CIDR, IPv4 or IPv6).
    pub dst: Vec<String>,
    /// IPv4 source prefix.
    pub src_v4: String,
    /// IPv6 source prefix.
    pub src_v6: String,
    /// Frame sizes in bytes (without FCS), optionally weighted.
    pub sizes: Vec<SizeSpec>,
    /// Fraction of flows carrying a valid steering header.
    pub steered_fraction: f64,
    /// Fraction of flows that are faulty (TTL 1, truncated, bad checksum, forged …).
    pub fault_fraction: f64,
    /// Rate for the port in packets per second (0 = unlimited).
    pub rate_pps: u64,
    /// Packets to send in total (0 = unlimited).
    pub packets: u64,
    /// Seed for the templates.
    pub seed: u64,
    /// Steering priority written into headers.
    pub priority: u8,
    /// Application class written into headers.
    pub app_class: u8,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            enabled: true,
            flows: 1024,
            dst: Vec::new(),
            src_v4: "10.0.0.0/8".into(),
            src_v6: "2001:db8:ffff::/48".into(),
            sizes: vec![SizeSpec::Plain(64)],
            steered_fraction: 0.0,
            fault_fraction: 0.0,
            rate_pps: 0,
            packets: 0,
            seed: 1,
            priority: 1,
            app_class: 0,
        }
    }
}

/// One port.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// Unique name.
    pub name: String,
    /// Backend: mem, pcap (others arrive with their features).
    pub backend: String,
    /// The port's own MAC address.
    #[serde(default)]
    pub mac: Option<String>,
    /// Largest IP packet sent (bytes); 0 = no check.
    #[serde(default = "default_mtu")]
    pub mtu: u16,
    /// Honour steering headers received on this port.
    #[serde(default)]
    pub trusted: bool,
    /// Remove steering headers from packets sent on this port.
    #[serde(default = "yes")]
    pub strip_nsh: bool,
    /// Egress rate limit in Mbit/s on the wire (frame + 24 bytes), split evenly between
    /// the workers; what exceeds it is dropped as `tx_rate`. None = the port's own pace.
    #[serde(default)]
    pub tx_rate_mbps: Option<f64>,
    /// Weights of the transmit classes 0..=3 (lowest first), each 1..=1000: the port is
    /// shared in proportion to them when it is the bottleneck (rate limit or a full
    /// queue). None = strict priority (the highest class first).
    #[serde(default)]
    pub tx_weights: Option<Vec<u16>>,
    /// mem: generator settings.
    #[serde(default)]
    pub generator: Option<GeneratorConfig>,
    /// pcap: file to replay.
    #[serde(default)]
    pub rx_file: Option<PathBuf>,
    /// pcap: times to replay the file (0 = forever).
    #[serde(default = "one")]
    pub repeat: u64,
    /// pcap: file to write what is sent.
    #[serde(default)]
    pub tx_file: Option<PathBuf>,
    /// tap, afpacket, afxdp: the Linux interface (a tap is created when missing).
    #[serde(default)]
    pub ifname: Option<String>,
    /// tap, afpacket, afxdp, dpdk: queues (default: one per worker). dpdk: receive
    /// queues (more than one needs RSS in the PMD), 0 = transmit only.
    #[serde(default)]
    pub queues: Option<usize>,
    /// afpacket: put the interface in promiscuous mode.
    #[serde(default)]
    pub promisc: bool,
    /// afxdp: where the XDP program runs: auto, native, generic.
    #[serde(default)]
    pub xdp_mode: Option<String>,
    /// afxdp: how the sockets bind: auto (zero-copy if the driver has it, else copy),
    /// copy, zerocopy.
    #[serde(default)]
    pub xdp_bind: Option<String>,
    /// dpdk: the DPDK device, a vdev name from `[dpdk] vdevs` (e.g. "net_pcap0") or a
    /// PCI address from `[dpdk] allow`.
    #[serde(default)]
    pub device: Option<String>,
    /// The router's own addresses on this port, `ADDRESS/LENGTH` (IPv4 or IPv6): it
    /// answers ARP / neighbour solicitations and echo requests for them, sources ICMP
    /// errors from them, and routes their subnets (connected routes).
    #[serde(default)]
    pub addrs: Vec<String>,
}

/// Highest `ports[].tx_rate_mbps` (10 Tbit/s).
pub const MAX_TX_RATE_MBPS: f64 = 1e7;

impl PortConfig {
    /// The class weights for the fast path (all zero = strict priority).
    pub fn tx_weights_array(&self) -> [u16; crate::safe::tx::N_CLASSES] {
        let mut w = [0; crate::safe::tx::N_CLASSES];
        if let Some(v) = &self.tx_weights {
            for (a, b) in w.iter_mut().zip(v) {
                *a = *b;
            }
        }
        w
    }

    /// The rate limit in bits per second (0 = none).
    pub fn tx_rate_bps(&self) -> u64 {
        self.tx_rate_mbps.map_or(0, |m| (m * 1e6).round() as u64)
    }
}

fn default_mtu() -> u16 {
    1500
}
fn yes() -> bool {
    true
}
fn one() -> u64 {
    1
}

/// A next hop.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NextHopConfig {
    /// Unique name, used by routes and steering entries.
    pub name: String,
    /// Egress port name.
    pub port: String,
    /// The neighbour's MAC address (static); without it, `ip` is resolved by ARP / ND.
    #[serde(default)]
    pub mac: Option<String>,
    /// The neighbour's IP address, resolved to its MAC by ARP (IPv4) or neighbour
    /// discovery (IPv6) when `mac` is not given.
    #[serde(default)]
    pub ip: Option<String>,
    /// Telemetry destination index for traffic routed here.
    #[serde(default)]
    pub dest: Option<u16>,
}

/// One or several next-hop names.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Via {
    /// One next hop.
    One(String),
    /// An ECMP group.
    Many(Vec<String>),
}

impl Via {
    /// The names.
    pub fn names(&self) -> Vec<String> {
        match self {
            Via::One(s) => vec![s.clone()],
            Via::Many(v) => v.clone(),
        }
    }
}

/// A route in the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// CIDR prefix.
    pub prefix: String,
    /// Next hop name(s).
    pub via: Via,
}

/// Routing settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// A routes file (format in docs/routes-format.md), relative to the config file.
    pub routes_file: Option<PathBuf>,
    /// IPv4 tbl8 groups (prefixes longer than /24).
    pub tbl8_groups: u32,
    /// IPv6 table groups.
    pub v6_groups: u32,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            routes_file: None,
            tbl8_groups: 16384,
            v6_groups: 65536,
        }
    }
}

/// A steering destination.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SteerDestConfig {
    /// Destination id carried in steering headers.
    pub id: u32,
    /// Next hop name.
    pub next_hop: String,
    /// More next hops of equal cost: the destination's flows are spread over
    /// `next_hop` and these by flow hash (ECMP; at most 3 more).
    #[serde(default)]
    pub ecmp: Vec<String>,
    /// Highest transmit priority class granted (0..=3).
    #[serde(default = "max_prio")]
    pub max_priority: u8,
}

fn max_prio() -> u8 {
    3
}

/// Steering settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SteeringConfig {
    /// Keys, 32 hex digits each: the current one first, then optionally the previous.
    pub keys: Vec<String>,
    /// Current prediction epoch.
    pub epoch: u32,
    /// Accepted age of a header's epoch.
    pub max_epoch_age: u32,
    /// Destinations.
    pub destinations: Vec<SteerDestConfig>,
}

impl Default for SteeringConfig {
    fn default() -> Self {
        SteeringConfig {
            keys: Vec::new(),
            epoch: 1,
            max_epoch_age: 4,
            destinations: Vec::new(),
        }
    }
}

/// Control-plane settings (`[ctl]`): where the `ctl` thread listens. Command-line flags
/// (`--metrics-listen`, `--ctl-socket`) override them; absent here and there, `steerd run`
/// uses its defaults and a library user gets neither.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CtlConfig {
    /// Prometheus `/metrics` and JSON `/status` over HTTP: `ADDRESS:PORT`, or `"off"`.
    pub metrics_listen: Option<String>,
    /// The `steerd ctl` Unix socket path, or `"off"`.
    pub socket: Option<String>,
}

/// DPDK EAL and pool settings (`[dpdk]`), used when ports have `backend = "dpdk"`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DpdkConfig {
    /// EAL lcores (`-l`), e.g. "0" or "0-1"; the first is the EAL's main lcore. Workers
    /// are placed by `general.first_core` / `pin_cores` as for every backend.
    pub cores: String,
    /// Run without hugepages (`--no-huge`; about half the speed).
    pub no_huge: bool,
    /// EAL memory in MB (`-m`); 0 = the EAL's default (512 with `no_huge`).
    pub mem_mb: u32,
    /// Hugetlbfs mount (`--huge-dir`); unset = the EAL finds one.
    pub huge_dir: Option<String>,
    /// Runtime file prefix (`--file-prefix`): distinct per concurrent DPDK process.
    pub file_prefix: String,
    /// Virtual devices (`--vdev`), e.g. "net_pcap0,rx_pcap=in.pcap" or "net_null0".
    pub vdevs: Vec<String>,
    /// PCI allow-list (`-a`), e.g. "0000:01:00.0"; empty = `--no-pci`.
    pub allow: Vec<String>,
    /// More EAL arguments, passed as they are.
    pub extra_args: Vec<String>,
    /// EAL log level (`--log-level`), e.g. "notice", "error".
    pub log_level: String,
    /// Mbufs per NUMA socket pool (raised to what the rings need).
    pub mbufs: u32,
    /// Receive descriptors per queue.
    pub rx_desc: u16,
    /// Transmit descriptors per queue.
    pub tx_desc: u16,
}

impl Default for DpdkConfig {
    fn default() -> Self {
        DpdkConfig {
            cores: "0".into(),
            no_huge: false,
            mem_mb: 0,
            huge_dir: None,
            file_prefix: "steerd".into(),
            vdevs: Vec::new(),
            allow: Vec::new(),
            extra_args: Vec::new(),
            log_level: "notice".into(),
            mbufs: 16383,
            rx_desc: 1024,
            tx_desc: 1024,
        }
    }
}

impl DpdkConfig {
    /// The device names the EAL will create: each vdev's name (before the first comma)
    /// and each allow-listed PCI address.
    pub fn device_names(&self) -> Vec<String> {
        self.vdevs
            .iter()
            .map(|v| v.split(',').next().unwrap_or_default().trim().to_string())
            .chain(self.allow.iter().map(|a| a.trim().to_string()))
            .collect()
    }
}

/// Control-plane (slow path) settings: neighbour resolution and ICMP.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// ICMP errors (time exceeded, destination unreachable) per second per port; 0 = none.
    pub icmp_rate: u32,
    /// ICMP errors a port may send in a burst before the rate applies.
    pub icmp_burst: u32,
    /// ARP requests / neighbour solicitations sent for an address before giving up.
    pub arp_retries: u32,
    /// Time between two requests for the same address, in milliseconds.
    pub arp_retry_ms: u64,
    /// A neighbour's MAC is trusted this long after it was confirmed, then re-checked
    /// (seconds).
    pub reachable_s: u64,
    /// Packets held per unresolved neighbour while it is resolved (more are dropped,
    /// counted).
    pub hold_packets: usize,
    /// Install a route for the subnet of every port address, its hosts resolved on demand.
    pub connected_routes: bool,
    /// Slots of each worker's ring to the slow path (and of the ring back).
    pub ring_slots: usize,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            icmp_rate: 100,
            icmp_burst: 50,
            arp_retries: 3,
            arp_retry_ms: 1000,
            reachable_s: 60,
            hold_packets: 16,
            connected_routes: true,
            ring_slots: 512,
        }
    }
}

/// Traffic prediction engine settings (`[tpe]`): the `tpe` thread(s) of `steerd run`.
/// Absent section: the TPE does not run (the embedded default config turns it on).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TpeConfig {
    /// Run the engine beside the workers.
    pub enabled: bool,
    /// The `.onnx` model (its spec is the `.json` beside it), relative to the config
    /// file; absent: `models/tpe-default.onnx` from the working directory, else the copy
    /// embedded in the binary.
    pub model: Option<PathBuf>,
    /// Run the baselines only, without a model.
    pub baselines_only: bool,
    /// Time compression: a bucket (one logical minute) lasts `60 s / time_scale` of wall
    /// time, so the 5 min / 15 min / 1 h horizons pass `time_scale` times faster.
    pub time_scale: Option<f64>,
    /// Wall length of a bucket in milliseconds: another way to give `time_scale`
    /// (`time_scale = 60000 / bucket_ms`); give one or the other.
    pub bucket_ms: Option<u64>,
    /// Engine instances; destination `d` is predicted by instance `d % shards`. A failed
    /// instance falls back to a baseline for its destinations.
    pub shards: usize,
    /// Destinations predicted (`0..n`); 0 = `general.telemetry_destinations`.
    pub destinations: usize,
    /// How long the engine waits for an instance's answer per bucket (ms) before
    /// serving its destinations with a baseline.
    pub shard_timeout_ms: u64,
    /// Online correction of the model's error, updated every bucket.
    pub correction: bool,
    /// Buckets a candidate model runs in shadow before it is promoted or rejected.
    pub shadow_window: usize,
    /// Relative margin a candidate's MAE must beat the active model's by (0 = any).
    pub shadow_margin: f64,
    /// Buckets of the rolling accuracy (MAE) per predictor.
    pub accuracy_window: usize,
    /// Scheduled events (`[[tpe.events]]`): known traffic changes the model is told
    /// about in advance (its `ev_*` features).
    pub events: Vec<TpeEventConfig>,
}

/// Most `[[tpe.events]]` entries.
pub const MAX_TPE_EVENTS: usize = 1024;
/// Longest scheduled event, minutes (30 days).
pub const MAX_TPE_EVENT_MIN: u32 = 43_200;
/// Largest expected traffic factor of a scheduled event.
pub const MAX_TPE_EVENT_FACTOR: f32 = 100.0;

/// One scheduled event (`[[tpe.events]]`). Give its start as `start` (RFC 3339 with an
/// offset, e.g. `"2026-12-24T18:00:00Z"`) or as `start_after_min` (minutes after the
/// engine starts, i.e. a bucket offset from bucket 0), not both. Times are the engine's
/// logical time: with `time_scale = 1` that is the wall clock; with a compressed clock,
/// logical time starts at the wall clock when the engine starts and runs `time_scale`
/// times faster, so `start_after_min` is usually what a compressed run wants.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TpeEventConfig {
    /// Start time, RFC 3339 (`2026-12-24T18:00:00Z`, `2026-12-24T19:00:00+01:00`).
    pub start: Option<String>,
    /// Start as logical minutes (buckets) after the engine's first bucket.
    pub start_after_min: Option<u64>,
    /// Length in minutes (buckets), 1..=43200.
    pub duration_min: u32,
    /// Telemetry destination ids affected (each below `tpe.destinations`).
    pub destinations: Vec<u16>,
    /// Expected traffic multiplier while the event runs (0..=100; 2 = twice the usual).
    pub factor: f32,
    /// Free text shown in `/status`.
    pub name: Option<String>,
}

impl TpeEventConfig {
    /// Checks one event against `nd` predicted destinations. The error names the field
    /// within the event (`start`, `destinations[1]`, …) and says what is wrong; the
    /// config prefixes it with `tpe.events[i].`, `steerd ctl events add` reports it as is.
    pub fn check(&self, nd: usize) -> Result<(), (String, String)> {
        let err = |k: &str, m: String| Err((k.to_string(), m));
        match (&self.start, self.start_after_min) {
            (Some(_), Some(_)) => {
                return err(
                    "start_after_min",
                    "give start (RFC 3339) or start_after_min, not both".into(),
                );
            }
            (None, None) => {
                return err(
                    "start",
                    "give start (RFC 3339, e.g. \"2026-12-24T18:00:00Z\") or start_after_min (minutes after the engine starts)".into(),
                );
            }
            (Some(s), None) => {
                if let Err(m) = parse_rfc3339_ms(s) {
                    return err("start", m);
                }
            }
            (None, Some(m)) if m > 100 * u64::from(MAX_TPE_EVENT_MIN) => {
                return err(
                    "start_after_min",
                    format!("{m} is more than 100 × {MAX_TPE_EVENT_MIN} minutes away"),
                );
            }
            (None, Some(_)) => {}
        }
        if !(1..=MAX_TPE_EVENT_MIN).contains(&self.duration_min) {
            return err(
                "duration_min",
                format!(
                    "{} is outside 1..={MAX_TPE_EVENT_MIN} minutes",
                    self.duration_min
                ),
            );
        }
        if !self.factor.is_finite() || !(0.0..=MAX_TPE_EVENT_FACTOR).contains(&self.factor) {
            return err(
                "factor",
                format!(
                    "{} is outside 0..={MAX_TPE_EVENT_FACTOR} (the expected traffic multiplier: 2 = twice the usual)",
                    self.factor
                ),
            );
        }
        if self.destinations.is_empty() {
            return err("destinations", "give at least one destination id".into());
        }
        for (j, &d) in self.destinations.iter().enumerate() {
            if usize::from(d) >= nd {
                return err(
                    &format!("destinations[{j}]"),
                    format!("{d} is not a predicted destination (0..{nd}, tpe.destinations)"),
                );
            }
            if self.destinations[..j].contains(&d) {
                return err(
                    &format!("destinations[{j}]"),
                    format!("{d} is listed twice"),
                );
            }
        }
        Ok(())
    }

    /// Start as Unix ms (for `start`) or as a bucket offset (for `start_after_min`).
    /// Validated config: exactly one is set and `start` parses.
    pub fn start_at(&self) -> EventStart {
        match (&self.start, self.start_after_min) {
            (Some(s), _) => EventStart::UnixMs(parse_rfc3339_ms(s).unwrap_or(0)),
            (None, m) => EventStart::AfterMin(m.unwrap_or(0)),
        }
    }
}

/// When a [`TpeEventConfig`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStart {
    /// Logical Unix time in ms.
    UnixMs(u64),
    /// Minutes (buckets) after the engine's bucket 0.
    AfterMin(u64),
}

/// Parses an RFC 3339 timestamp (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, `T` or space,
/// seconds required) into Unix milliseconds (1970 onwards).
pub fn parse_rfc3339_ms(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "\"{s}\" is not an RFC 3339 time like \"2026-12-24T18:00:00Z\" (an offset or Z is required)"
        )
    };
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let t = s.get(r).ok_or_else(bad)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse::<i64>().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut ms = 0i64;
    if b[i] == b'.' {
        let st = i + 1;
        i = st;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == st {
            return Err(bad());
        }
        let frac = &s[st..i.min(st + 3)];
        ms = frac.parse::<i64>().map_err(|_| bad())? * 10i64.pow(3 - frac.len() as u32);
    }
    let off_min = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&c @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            (oh * 60 + om) * if c == b'-' { -1 } else { 1 }
        }
        _ => return Err(bad()),
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo)
        || d < 1
        || d > mdays[(mo - 1) as usize]
        || h > 23
        || mi > 59
        || sec > 60
    {
        return Err(bad());
    }
    // Days from 1970-01-01 (H. Hinnant's days_from_civil).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec.min(59) - off_min * 60;
    u64::try_from(secs * 1000 + ms).map_err(|_| format!("\"{s}\" is before 1970"))
}

impl Default for TpeConfig {
    fn default() -> Self {
        TpeConfig {
            enabled: false,
            model: None,
            baselines_only: false,
            time_scale: None,
            bucket_ms: None,
            shards: 1,
            destinations: 0,
            shard_timeout_ms: 500,
            correction: true,
            shadow_window: 240,
            shadow_margin: 0.0,
            accuracy_window: 120,
            events: Vec::new(),
        }
    }
}

impl TpeConfig {
    /// The effective time compression (validated config: finite, positive).
    pub fn effective_time_scale(&self) -> f64 {
        match (self.bucket_ms, self.time_scale) {
            (Some(ms), _) => 60_000.0 / ms.max(1) as f64,
            (None, Some(t)) => t,
            (None, None) => 1.0,
        }
    }

    /// Wall duration of a bucket.
    pub fn bucket_wall(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(60.0 / self.effective_time_scale())
    }

    /// Destinations predicted, given `general.telemetry_destinations`.
    pub fn n_destinations(&self, telemetry_destinations: usize) -> usize {
        if self.destinations == 0 {
            telemetry_destinations
        } else {
            self.destinations
        }
    }
}

/// A port address `ADDRESS/LENGTH` (host bits may be set: it is an interface address).
pub fn parse_ifaddr(s: &str) -> Result<(IpAddr, u8), String> {
    let (a, l) = parse_cidr(s)?;
    let bad = match a {
        IpAddr::V4(v) => {
            v.is_unspecified() || v.is_multicast() || v.is_broadcast() || v.is_loopback()
        }
        IpAddr::V6(v) => v.is_unspecified() || v.is_multicast() || v.is_loopback(),
    };
    if bad {
        return Err(format!(
            "{a} cannot be a port address (unspecified, multicast, broadcast or loopback)"
        ));
    }
    Ok((a, l))
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Appliance settings.
    #[serde(default)]
    pub general: General,
    /// Ports (index = position).
    pub ports: Vec<PortConfig>,
    /// Next hops.
    #[serde(default)]
    pub next_hops: Vec<NextHopConfig>,
    /// Routes given inline.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Routing settings.
    #[serde(default)]
    pub routing: RoutingConfig,
    /// Steering settings.
    #[serde(default)]
    pub steering: SteeringConfig,
    /// Control plane.
    #[serde(default)]
    pub ctl: CtlConfig,
    /// Control-plane settings (ARP/ND, ICMP).
    #[serde(default)]
    pub control: ControlConfig,
    /// DPDK EAL settings (for `backend = "dpdk"` ports).
    #[serde(default)]
    pub dpdk: DpdkConfig,
    /// Traffic prediction engine.
    #[serde(default)]
    pub tpe: TpeConfig,
    /// Resource Allocation Manager: topology and provisioning (`steerd run --scenario`).
    #[serde(default)]
    pub ram: Option<crate::ram::RamConfig>,
    /// The packet marker (`steerd mark`; ignored by `steerd run`).
    #[serde(default)]
    pub mark: Option<crate::ipm::config::MarkSection>,
    /// Where this config came from (set by the loader).
    #[serde(skip)]
    pub source: ConfigSource,
}

/// Where a configuration came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigSource {
    /// Name used in messages.
    pub name: String,
    /// The file it was read from (None: embedded or given as text); reload reads it again.
    pub path: Option<PathBuf>,
    /// Directory relative paths are resolved against.
    pub dir: PathBuf,
    /// The TOML text.
    pub text: String,
    /// Fields set by `STEERD_*` variables: (field path, `NAME=value`).
    pub env: Vec<(String, String)>,
}

/// The variable (`NAME=value`) in `env` that set `field` (or a table around it).
fn env_var_for(env: &[(String, String)], field: &str) -> Option<String> {
    let within = |inner: &str, outer: &str| {
        inner == outer
            || inner
                .strip_prefix(outer)
                .is_some_and(|r| r.starts_with('.') || r.starts_with('['))
    };
    env.iter()
        .find(|(path, _)| !field.is_empty() && within(field, path))
        .map(|(_, var)| var.clone())
}

/// The variable whose path starts with the unknown `field` (a section no config has).
fn unknown_from_env(env: &[(String, String)], field: &str) -> Option<String> {
    env.iter()
        .find(|(path, _)| {
            !field.is_empty()
                && path
                    .strip_prefix(field)
                    .is_some_and(|r| r.starts_with('.') || r.starts_with('['))
        })
        .map(|(_, var)| var.clone())
}

/// Whether a field holds secrets (steering keys): its values are never shown.
fn is_secret(field: &str) -> bool {
    let last = field.rsplit('.').next().unwrap_or(field);
    last.split('[').next().is_some_and(|k| k.contains("key"))
}

/// `msg` with what it quotes (`"…"`, the value serde saw) replaced by `<redacted>`.
fn redact_quoted(msg: &str) -> String {
    match (msg.find('"'), msg.rfind('"')) {
        (Some(a), Some(b)) if b > a => format!("{}<redacted>{}", &msg[..a], &msg[b + 1..]),
        _ => msg.to_string(),
    }
}

/// The field path a `STEERD_<SECTION>__<KEY>` variable sets (`ram.link_poll_ms`), as the
/// `config` crate reads it.
fn env_field(var: &str) -> Option<String> {
    let rest = var.strip_prefix("STEERD_")?;
    rest.contains("__")
        .then(|| rest.to_ascii_lowercase().replace("__", "."))
}

/// Parses a MAC address `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(format!(
            "\"{s}\" is not a MAC address (want aa:bb:cc:dd:ee:ff)"
        ));
    }
    let mut m = [0u8; 6];
    for (d, p) in m.iter_mut().zip(parts) {
        *d = u8::from_str_radix(p, 16)
            .map_err(|_| format!("\"{s}\" is not a MAC address (want aa:bb:cc:dd:ee:ff)"))?;
    }
    Ok(m)
}

/// Parses a CIDR prefix with host bits zero.
pub fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let (a, l) = s
        .split_once('/')
        .ok_or_else(|| format!("\"{s}\" is not a prefix (want ADDRESS/LENGTH)"))?;
    let addr: IpAddr = a
        .trim()
        .parse()
        .map_err(|_| format!("\"{a}\" is not an IP address"))?;
    let len: u8 = l
        .trim()
        .parse()
        .map_err(|_| format!("\"{l}\" is not a prefix length"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(format!("prefix length {len} is above {max}"));
    }
    Ok((addr, len))
}

/// Backends this build can open.
#[cfg(all(feature = "afxdp", feature = "dpdk"))]
pub const BACKENDS: &[&str] = &["mem", "pcap", "tap", "afpacket", "afxdp", "dpdk"];
/// Backends this build can open.
#[cfg(all(feature = "afxdp", not(feature = "dpdk")))]
pub const BACKENDS: &[&str] = &["mem", "pcap", "tap", "afpacket", "afxdp"];
/// Backends this build can open.
#[cfg(all(not(feature = "afxdp"), feature = "dpdk"))]
pub const BACKENDS: &[&str] = &["mem", "pcap", "tap", "afpacket", "dpdk"];
/// Backends this build can open.
#[cfg(all(not(feature = "afxdp"), not(feature = "dpdk")))]
pub const BACKENDS: &[&str] = &["mem", "pcap", "tap", "afpacket"];

impl Config {
    /// The embedded default configuration.
    pub fn embedded() -> Result<Config, ConfigError> {
        Self::from_toml(
            DEFAULT_TOML,
            "<embedded conf/default.toml>",
            Path::new("."),
            true,
        )
    }

    /// Loads a configuration file, with environment overrides.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            line: None,
            env: None,
            field: String::new(),
            msg: format!("cannot read the configuration file: {e}"),
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut cfg = Self::from_toml(&text, &path.display().to_string(), &dir, true)?;
        cfg.source.path = Some(path.to_path_buf());
        Ok(cfg)
    }

    /// Parses and validates TOML text; `env` applies `STEERD_*` overrides.
    pub fn from_toml(text: &str, name: &str, dir: &Path, env: bool) -> Result<Config, ConfigError> {
        // Only STEERD_<SECTION>__<KEY>: other STEERD_* variables (the test bed's
        // STEERD_TESTBED_PREFIX, ...) are not configuration.
        let vars = if env {
            std::env::vars()
                .filter(|(k, _)| env_field(k).is_some())
                .collect()
        } else {
            config::Map::new()
        };
        Self::from_toml_vars(text, name, dir, vars)
    }

    /// [`Config::from_toml`] with the overrides given as `STEERD_*` name and value.
    fn from_toml_vars(
        text: &str,
        name: &str,
        dir: &Path,
        vars: config::Map<String, String>,
    ) -> Result<Config, ConfigError> {
        // Fields the environment sets: an error about one cites the variable, not the
        // file's line for that key (which holds the value that was overridden).
        // Keys are secrets: their values are never shown (in errors or the log).
        let env_fields: Vec<(String, String)> = vars
            .iter()
            .filter_map(|(k, v)| {
                let field = env_field(k)?;
                let shown = if is_secret(&field) { "<redacted>" } else { v };
                Some((field, format!("{k}={shown}")))
            })
            .collect();
        let err = |line, field: String, msg: String| {
            ConfigError::new(name, &env_fields, line, field, msg)
        };
        // Syntax first, with the toml crate's precise positions.
        if let Err(e) = text.parse::<toml::Table>() {
            let line = e.span().map(|s| line_of(text, s.start));
            return Err(err(line, String::new(), e.message().to_string()));
        }
        let mut b = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml));
        if !vars.is_empty() {
            b = b.add_source(
                config::Environment::with_prefix("STEERD")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(vars)),
            );
        }
        let merged = b
            .build()
            .map_err(|e| err(None, String::new(), e.to_string()))?;
        let mut cfg: Config = serde_path_to_error::deserialize(merged).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let inner = e.into_inner().to_string();
            let line = locate(text, &path);
            err(line, path, strip_config_suffix(&inner))
        })?;
        cfg.source = ConfigSource {
            name: name.to_string(),
            path: None,
            dir: dir.to_path_buf(),
            text: text.to_string(),
            env: env_fields,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// "set from the environment: NAME=value, ..." when `STEERD_*` variables override
    /// the file (for `steerd check` and the start-up log: an override is easy to forget).
    pub fn env_overrides(&self) -> Option<String> {
        let mut vars: Vec<&str> = self.source.env.iter().map(|(_, v)| v.as_str()).collect();
        vars.sort_unstable();
        (!vars.is_empty()).then(|| format!("set from the environment: {}", vars.join(", ")))
    }

    /// An error about `field` in this config, located in its text.
    pub fn error(&self, field: &str, msg: impl Into<String>) -> ConfigError {
        ConfigError::new(
            &self.source.name,
            &self.source.env,
            locate(&self.source.text, field),
            field.to_string(),
            msg.into(),
        )
    }

    /// Resolves a path from the config relative to the config file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.source.dir.join(p)
        }
    }

    /// Checks everything that types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let g = &self.general;
        if g.workers > crate::safe::MAX_WORKERS {
            return Err(self.error(
                "general.workers",
                format!(
                    "{} is above {} (0 = one per available core)",
                    g.workers,
                    crate::safe::MAX_WORKERS
                ),
            ));
        }
        if !(1..=32).contains(&g.burst) {
            return Err(self.error("general.burst", format!("{} is outside 1..=32", g.burst)));
        }
        if g.idle_park_us > 100_000 {
            return Err(self.error(
                "general.idle_park_us",
                format!("{} is above 100000 (100 ms)", g.idle_park_us),
            ));
        }
        if g.pool_buffers < 256 {
            return Err(self.error(
                "general.pool_buffers",
                "at least 256 buffers per worker are needed",
            ));
        }
        if g.pool_buffers > MAX_POOL_BUFFERS {
            return Err(self.error(
                "general.pool_buffers",
                format!(
                    "{} is above {MAX_POOL_BUFFERS} buffers per worker ({} MiB of frames each)",
                    g.pool_buffers,
                    (MAX_POOL_BUFFERS * crate::port::buf::BUF_SIZE) >> 20
                ),
            ));
        }
        if g.drain_us > 100_000 {
            return Err(self.error(
                "general.drain_us",
                format!(
                    "{} is above 100000 (100 ms): the longest a staged packet waits for its burst",
                    g.drain_us
                ),
            ));
        }
        if !(100..=3_600_000).contains(&g.stats_interval_ms) {
            return Err(self.error(
                "general.stats_interval_ms",
                format!(
                    "{} is outside 100..=3600000 (--quiet turns the stats lines off)",
                    g.stats_interval_ms
                ),
            ));
        }
        if g.telemetry_destinations > MAX_TELEMETRY_DESTINATIONS {
            return Err(self.error(
                "general.telemetry_destinations",
                format!(
                    "{} is above {MAX_TELEMETRY_DESTINATIONS} (steering destination ids are 16-bit)",
                    g.telemetry_destinations
                ),
            ));
        }
        if self.ports.is_empty() {
            return Err(self.error("ports", "at least one port is needed"));
        }
        if self.ports.len() > crate::safe::MAX_PORTS {
            return Err(self.error("ports", format!("at most {} ports", crate::safe::MAX_PORTS)));
        }
        if self.ports.iter().any(|p| p.backend == "dpdk") {
            let d = &self.dpdk;
            if d.cores.trim().is_empty()
                || !d
                    .cores
                    .chars()
                    .all(|c| c.is_ascii_digit() || ",-@()".contains(c))
            {
                return Err(self.error(
                    "dpdk.cores",
                    format!(
                        "\"{}\" is not an EAL core list (e.g. \"0\", \"0-1\", \"2,4\")",
                        d.cores
                    ),
                ));
            }
            if d.file_prefix.is_empty()
                || !d
                    .file_prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
            {
                return Err(self.error(
                    "dpdk.file_prefix",
                    "letters, digits, '_' and '-' only, not empty",
                ));
            }
            for (j, v) in d.vdevs.iter().enumerate() {
                let name = v.split(',').next().unwrap_or_default();
                if !name.starts_with("net_") || v.chars().any(char::is_whitespace) {
                    return Err(self.error(
                        &format!("dpdk.vdevs[{j}]"),
                        format!("\"{v}\" is not a network vdev: DRIVER[N][,key=value...] without spaces, the driver a net_ PMD (net_null0, net_pcap0,rx_pcap=FILE, net_tap0,iface=NAME, net_af_packet0,iface=NAME)"),
                    ));
                }
            }
            if d.no_huge && d.huge_dir.is_some() {
                return Err(self.error(
                    "dpdk.huge_dir",
                    "no_huge = true uses no hugepages: drop huge_dir",
                ));
            }
            if d.mbufs < 1024 {
                return Err(self.error("dpdk.mbufs", "at least 1024"));
            }
            for (k, v) in [("dpdk.rx_desc", d.rx_desc), ("dpdk.tx_desc", d.tx_desc)] {
                if !(64..=16384).contains(&v) {
                    return Err(self.error(k, "must be within 64..=16384"));
                }
            }
        }
        let mut names = HashMap::new();
        let mut own_addrs: Vec<(usize, IpAddr)> = Vec::new();
        let mut subnets: Vec<(usize, crate::route::Prefix)> = Vec::new();
        for (i, p) in self.ports.iter().enumerate() {
            let f = |k: &str| format!("ports[{i}].{k}");
            if names.insert(p.name.as_str(), i).is_some() {
                return Err(self.error(
                    &f("name"),
                    format!("port name \"{}\" is used twice", p.name),
                ));
            }
            if !BACKENDS.contains(&p.backend.as_str()) {
                let msg = if p.backend == "afxdp" {
                    "backend \"afxdp\" needs a build with the afxdp feature (cargo build --release --features afxdp)".to_string()
                } else if p.backend == "dpdk" {
                    format!(
                        "backend \"dpdk\" is not available in this build (available: {}): install DPDK (apt-get install libdpdk-dev clang libclang-dev pkg-config) and build with --features dpdk",
                        BACKENDS.join(", ")
                    )
                } else {
                    format!(
                        "unknown backend \"{}\" (expected one of: {})",
                        p.backend,
                        BACKENDS.join(", ")
                    )
                };
                return Err(self.error(&f("backend"), msg));
            }
            if let Some(m) = &p.mac {
                parse_mac(m).map_err(|e| self.error(&f("mac"), e))?;
            }
            if let Some(r) = p.tx_rate_mbps
                && !(r.is_finite() && r > 0.0 && r <= MAX_TX_RATE_MBPS)
            {
                return Err(self.error(
                    &f("tx_rate_mbps"),
                    format!(
                        "{r} is outside (0, {MAX_TX_RATE_MBPS}] Mbit/s (leave it out for no limit)"
                    ),
                ));
            }
            if let Some(w) = &p.tx_weights {
                let n = crate::safe::tx::N_CLASSES;
                let max = crate::safe::tx::MAX_WEIGHT;
                if w.len() != n {
                    return Err(self.error(
                        &f("tx_weights"),
                        format!(
                            "{} weights: one per transmit class 0..={}, lowest first, is {n}",
                            w.len(),
                            n - 1
                        ),
                    ));
                }
                if let Some((c, x)) = w.iter().enumerate().find(|(_, x)| !(1..=max).contains(*x)) {
                    return Err(self.error(
                        &format!("ports[{i}].tx_weights[{c}]"),
                        format!("{x} is outside 1..={max}"),
                    ));
                }
            }
            for (j, a) in p.addrs.iter().enumerate() {
                let field = format!("ports[{i}].addrs[{j}]");
                let (addr, len) = parse_ifaddr(a).map_err(|e| self.error(&field, e))?;
                let subnet = crate::route::Prefix::new_masked(addr, len);
                if let Some((pi, _)) = own_addrs.iter().find(|(_, x)| *x == addr) {
                    return Err(self.error(
                        &field,
                        format!(
                            "{addr} is already an address of port \"{}\"",
                            self.ports[*pi].name
                        ),
                    ));
                }
                if let Some((pi, _)) = subnets.iter().find(|(_, x)| *x == subnet) {
                    if *pi != i {
                        return Err(self.error(
                            &field,
                            format!(
                                "subnet {subnet} is also on port \"{}\" (a subnet belongs to one port)",
                                self.ports[*pi].name
                            ),
                        ));
                    }
                } else {
                    subnets.push((i, subnet));
                }
                own_addrs.push((i, addr));
            }
            let n4 = own_addrs.iter().filter(|(_, a)| a.is_ipv4()).count();
            let n6 = own_addrs.len() - n4;
            if n4 > crate::safe::tables::MAX_LOCAL_ADDRS
                || n6 > crate::safe::tables::MAX_LOCAL_ADDRS
            {
                return Err(self.error(
                    &f("addrs"),
                    format!(
                        "at most {} IPv4 and {} IPv6 router addresses over all ports",
                        crate::safe::tables::MAX_LOCAL_ADDRS,
                        crate::safe::tables::MAX_LOCAL_ADDRS
                    ),
                ));
            }
            match p.backend.as_str() {
                "mem" => {
                    if p.rx_file.is_some() || p.tx_file.is_some() {
                        return Err(
                            self.error(&f("backend"), "rx_file/tx_file belong to the pcap backend")
                        );
                    }
                    if let Some(gc) = &p.generator {
                        let gf = |k: &str| format!("ports[{i}].generator.{k}");
                        if gc.enabled && gc.dst.is_empty() {
                            return Err(self.error(
                                &gf("dst"),
                                "a generator needs at least one destination prefix",
                            ));
                        }
                        for (j, d) in gc.dst.iter().enumerate() {
                            parse_cidr(d).map_err(|e| {
                                self.error(&format!("ports[{i}].generator.dst[{j}]"), e)
                            })?;
                        }
                        for k in ["src_v4", "src_v6"] {
                            let v = if k == "src_v4" {
                                &gc.src_v4
                            } else {
                                &gc.src_v6
                            };
                            let (a, _) = parse_cidr(v).map_err(|e| self.error(&gf(k), e))?;
                            if a.is_ipv4() != (k == "src_v4") {
                                return Err(self.error(
                                    &gf(k),
                                    format!("\"{v}\" is the wrong address family"),
                                ));
                            }
                        }
                        if !(1..=crate::port::mem::MAX_FLOWS).contains(&gc.flows) {
                            return Err(self.error(
                                &gf("flows"),
                                format!(
                                    "{} is outside 1..={} (one frame template per flow)",
                                    gc.flows,
                                    crate::port::mem::MAX_FLOWS
                                ),
                            ));
                        }
                        if !(0.0..=1.0).contains(&gc.steered_fraction) {
                            return Err(self.error(&gf("steered_fraction"), "must be within 0..=1"));
                        }
                        if gc.priority > MAX_PRIORITY {
                            return Err(self.error(
                                &gf("priority"),
                                format!(
                                    "{} is above {MAX_PRIORITY} (priorities are 0..={MAX_PRIORITY})",
                                    gc.priority
                                ),
                            ));
                        }
                        if !(0.0..=1.0).contains(&gc.fault_fraction) {
                            return Err(self.error(&gf("fault_fraction"), "must be within 0..=1"));
                        }
                        if gc.sizes.is_empty() {
                            return Err(
                                self.error(&gf("sizes"), "at least one frame size is needed")
                            );
                        }
                        for s in &gc.sizes {
                            let sz = match s {
                                SizeSpec::Plain(s) | SizeSpec::Weighted(s, _) => *s,
                            };
                            if !(60..=crate::port::MAX_FRAME).contains(&sz) {
                                return Err(self.error(
                                    &gf("sizes"),
                                    format!(
                                        "frame size {sz} is outside 60..={}",
                                        crate::port::MAX_FRAME
                                    ),
                                ));
                            }
                        }
                        if gc.steered_fraction > 0.0 && self.steering.destinations.is_empty() {
                            return Err(self.error(
                                &gf("steered_fraction"),
                                "steered traffic needs [[steering.destinations]]",
                            ));
                        }
                        if gc.steered_fraction > 0.0 && self.steering.keys.is_empty() {
                            return Err(
                                self.error("steering.keys", "steered traffic needs a steering key")
                            );
                        }
                    }
                }
                "tap" | "afpacket" | "afxdp" => {
                    if p.ifname.as_deref().is_none_or(str::is_empty) {
                        return Err(
                            self.error(&f("backend"), format!("a {} port needs ifname", p.backend))
                        );
                    }
                    if let Some(n) = &p.ifname
                        && let Err(why) = crate::port::netdev::check_ifname(n)
                    {
                        return Err(self.error(&f("ifname"), format!("\"{n}\": {why}")));
                    }
                    if p.generator.is_some() || p.rx_file.is_some() || p.tx_file.is_some() {
                        return Err(self.error(
                            &f("backend"),
                            "generator/rx_file/tx_file do not belong to a Linux interface port",
                        ));
                    }
                    if p.queues == Some(0) {
                        return Err(self.error(&f("queues"), "at least one queue"));
                    }
                    if let Some(q) = p.queues
                        && q > MAX_PORT_QUEUES
                    {
                        return Err(
                            self.error(&f("queues"), format!("{q} is above {MAX_PORT_QUEUES}"))
                        );
                    }
                    if let Some(m) = &p.xdp_mode
                        && !["auto", "native", "generic"].contains(&m.as_str())
                    {
                        return Err(self.error(
                            &f("xdp_mode"),
                            format!("\"{m}\" is not one of auto, native, generic"),
                        ));
                    }
                    if let Some(b) = &p.xdp_bind
                        && !["auto", "copy", "zerocopy"].contains(&b.as_str())
                    {
                        return Err(self.error(
                            &f("xdp_bind"),
                            format!("\"{b}\" is not one of auto, copy, zerocopy"),
                        ));
                    }
                }
                "dpdk" => {
                    let dev = p.device.as_deref().unwrap_or_default().trim();
                    if dev.is_empty() {
                        return Err(self.error(
                            &f("device"),
                            "a dpdk port needs device (a vdev name from [dpdk] vdevs, e.g. \"net_pcap0\", or a PCI address from [dpdk] allow)",
                        ));
                    }
                    let known = self.dpdk.device_names();
                    if !known.iter().any(|k| k == dev) {
                        return Err(self.error(
                            &f("device"),
                            format!(
                                "\"{dev}\" is not among the [dpdk] devices ({})",
                                if known.is_empty() {
                                    "none: add it to dpdk.vdevs or dpdk.allow".to_string()
                                } else {
                                    known.join(", ")
                                }
                            ),
                        ));
                    }
                    if let Some((j, q)) =
                        self.ports.iter().enumerate().find(|(j, q)| {
                            *j < i && q.device.as_deref().map(str::trim) == Some(dev)
                        })
                    {
                        return Err(self.error(
                            &f("device"),
                            format!(
                                "device \"{dev}\" is already port \"{}\" (ports[{j}])",
                                q.name
                            ),
                        ));
                    }
                    if let Some(j) = self.ports.iter().position(|q| q.backend != "dpdk") {
                        return Err(self.error(
                            &format!("ports[{j}].backend"),
                            format!(
                                "a run with dpdk ports needs every port on DPDK (port \"{}\" is {}): use a DPDK vdev instead (net_pcap for files, net_tap or net_af_packet for Linux interfaces)",
                                self.ports[j].name, self.ports[j].backend
                            ),
                        ));
                    }
                    if p.generator.is_some()
                        || p.rx_file.is_some()
                        || p.tx_file.is_some()
                        || p.ifname.is_some()
                    {
                        return Err(self.error(
                            &f("backend"),
                            "generator/rx_file/tx_file/ifname do not belong to a dpdk port (files and interfaces are DPDK vdevs: net_pcap0,rx_pcap=FILE,tx_pcap=FILE)",
                        ));
                    }
                }
                "pcap" => {
                    if p.generator.is_some() {
                        return Err(
                            self.error(&f("generator"), "a generator belongs to the mem backend")
                        );
                    }
                    if p.rx_file.is_none() && p.tx_file.is_none() {
                        return Err(
                            self.error(&f("rx_file"), "a pcap port needs rx_file, tx_file or both")
                        );
                    }
                }
                _ => {}
            }
        }
        let mut nh_names = HashMap::new();
        for (i, n) in self.next_hops.iter().enumerate() {
            if nh_names.insert(n.name.as_str(), i).is_some() {
                return Err(self.error(
                    &format!("next_hops[{i}].name"),
                    format!("next hop \"{}\" is defined twice", n.name),
                ));
            }
            if !names.contains_key(n.port.as_str()) {
                return Err(self.error(
                    &format!("next_hops[{i}].port"),
                    format!(
                        "no port named \"{}\" (ports: {})",
                        n.port,
                        self.port_names().join(", ")
                    ),
                ));
            }
            if let Some(m) = &n.mac {
                parse_mac(m).map_err(|e| self.error(&format!("next_hops[{i}].mac"), e))?;
            }
            match (&n.mac, &n.ip) {
                (None, None) => {
                    return Err(self.error(
                        &format!("next_hops[{i}].name"),
                        format!(
                            "next hop \"{}\" needs mac (static) or ip (resolved by ARP/ND)",
                            n.name
                        ),
                    ));
                }
                (_, Some(ip)) => {
                    let field = format!("next_hops[{i}].ip");
                    let a: IpAddr = ip.trim().parse().map_err(|_| {
                        self.error(&field, format!("\"{ip}\" is not an IP address"))
                    })?;
                    if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
                        return Err(self.error(&field, format!("{a} cannot be a next hop")));
                    }
                    let pi = names[n.port.as_str()];
                    if n.mac.is_none()
                        && !own_addrs
                            .iter()
                            .any(|(p, x)| *p == pi && x.is_ipv4() == a.is_ipv4())
                    {
                        return Err(self.error(
                            &field,
                            format!(
                                "resolving {a} needs an {} address on port \"{}\" (ports[{pi}].addrs) to send {} from",
                                if a.is_ipv4() { "IPv4" } else { "IPv6" },
                                n.port,
                                if a.is_ipv4() { "ARP requests" } else { "neighbour solicitations" },
                            ),
                        ));
                    }
                    if own_addrs.iter().any(|(_, x)| *x == a) {
                        return Err(
                            self.error(&field, format!("{a} is one of the router's own addresses"))
                        );
                    }
                }
                (Some(_), None) => {}
            }
            if let Some(d) = n.dest
                && d as usize >= g.telemetry_destinations
            {
                return Err(self.error(
                    &format!("next_hops[{i}].dest"),
                    format!(
                        "{d} is not below general.telemetry_destinations ({})",
                        g.telemetry_destinations
                    ),
                ));
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            parse_cidr(&r.prefix).map_err(|e| self.error(&format!("routes[{i}].prefix"), e))?;
            for n in r.via.names() {
                if !nh_names.contains_key(n.as_str()) {
                    return Err(self.error(
                        &format!("routes[{i}].via"),
                        format!("no next hop named \"{n}\""),
                    ));
                }
            }
        }
        for (i, k) in self.steering.keys.iter().enumerate() {
            crate::steering::Key::from_hex(k)
                .map_err(|e| self.error(&format!("steering.keys[{i}]"), e))?;
        }
        if self.steering.keys.len() > 2 {
            return Err(self.error(
                "steering.keys",
                "give the current key and at most one previous key",
            ));
        }
        for (i, d) in self.steering.destinations.iter().enumerate() {
            if !nh_names.contains_key(d.next_hop.as_str()) {
                return Err(self.error(
                    &format!("steering.destinations[{i}].next_hop"),
                    format!("no next hop named \"{}\"", d.next_hop),
                ));
            }
            if d.ecmp.len() >= crate::steering::MAX_STEER_WAYS {
                return Err(self.error(
                    &format!("steering.destinations[{i}].ecmp"),
                    format!(
                        "{} next hops: at most {} besides next_hop",
                        d.ecmp.len(),
                        crate::steering::MAX_STEER_WAYS - 1
                    ),
                ));
            }
            for (j, n) in d.ecmp.iter().enumerate() {
                if !nh_names.contains_key(n.as_str()) {
                    return Err(self.error(
                        &format!("steering.destinations[{i}].ecmp[{j}]"),
                        format!("no next hop named \"{n}\""),
                    ));
                }
                if *n == d.next_hop || d.ecmp[..j].contains(n) {
                    return Err(self.error(
                        &format!("steering.destinations[{i}].ecmp[{j}]"),
                        format!("next hop \"{n}\" is listed twice"),
                    ));
                }
            }
            if d.id > crate::steering::MAX_DEST_ID {
                return Err(self.error(
                    &format!("steering.destinations[{i}].id"),
                    format!("{} is above {}", d.id, crate::steering::MAX_DEST_ID),
                ));
            }
            if d.max_priority > MAX_PRIORITY {
                return Err(self.error(
                    &format!("steering.destinations[{i}].max_priority"),
                    format!("must be 0..={MAX_PRIORITY}"),
                ));
            }
        }
        if let Some(m) = &self.ctl.metrics_listen
            && m != "off"
            && m.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(self.error(
                "ctl.metrics_listen",
                format!("\"{m}\" is not ADDRESS:PORT (e.g. 127.0.0.1:9477) or \"off\""),
            ));
        }
        if self.ctl.socket.as_deref() == Some("") {
            return Err(self.error("ctl.socket", "give a path or \"off\""));
        }
        let c = &self.control;
        if c.arp_retries == 0 {
            return Err(self.error("control.arp_retries", "at least one request is needed"));
        }
        if c.arp_retry_ms == 0 {
            return Err(self.error("control.arp_retry_ms", "must be above 0"));
        }
        if c.reachable_s == 0 {
            return Err(self.error("control.reachable_s", "must be above 0"));
        }
        if !(16..=65536).contains(&c.ring_slots) {
            return Err(self.error("control.ring_slots", "must be within 16..=65536"));
        }
        if c.hold_packets > 256 {
            return Err(self.error("control.hold_packets", "at most 256"));
        }
        if !self.steering.destinations.is_empty() && self.steering.keys.is_empty() {
            return Err(self.error(
                "steering.keys",
                "steering destinations need a key to verify headers",
            ));
        }
        self.validate_tpe()?;
        self.validate_ram()?;
        crate::ipm::config::marker_config(self)?;
        Ok(())
    }

    fn validate_ram(&self) -> Result<(), ConfigError> {
        let Some(r) = &self.ram else {
            return Ok(());
        };
        crate::ram::Topology::build(r).map_err(|(f, m)| self.error(&f, m))?;
        for (i, l) in r.links.iter().enumerate() {
            if let Some(n) = &l.next_hop
                && !self.next_hops.iter().any(|h| &h.name == n)
            {
                return Err(self.error(
                    &format!("ram.links[{i}].next_hop"),
                    format!("no next hop {n:?} in [[next_hops]]"),
                ));
            }
        }
        if !r.live {
            if r.set_tx_weights {
                return Err(self.error(
                    "ram.set_tx_weights",
                    "only the live RAM sets transmit weights: set ram.live = true (scenario runs have no egress ports to weigh)",
                ));
            }
            return Ok(());
        }
        // The live RAM (`steerd run` with `ram.live = true`).
        if r.mode == crate::ram::RamMode::Predictive {
            if !cfg!(feature = "tpe") {
                return Err(self.error(
                    "ram.mode",
                    "predictive needs the prediction engine, and this build has none (built without the tpe feature); use reactive or static",
                ));
            }
            if !self.tpe.enabled {
                return Err(self.error(
                    "ram.mode",
                    "predictive needs the prediction engine's forecasts: set [tpe] enabled = true, or use reactive or static",
                ));
            }
        }
        for (i, d) in r.destinations.iter().enumerate() {
            if usize::from(d.id) >= self.general.telemetry_destinations {
                return Err(self.error(
                    &format!("ram.destinations[{i}].id"),
                    format!(
                        "{} is not below general.telemetry_destinations ({}): the live RAM could not measure it",
                        d.id, self.general.telemetry_destinations
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_tpe(&self) -> Result<(), ConfigError> {
        let t = &self.tpe;
        if let Some(ts) = t.time_scale {
            if t.bucket_ms.is_some() {
                return Err(self.error(
                    "tpe.bucket_ms",
                    "give tpe.time_scale or tpe.bucket_ms, not both (time_scale = 60000 / bucket_ms)",
                ));
            }
            let (lo, hi) = TIME_SCALE_RANGE;
            if !ts.is_finite() || !(lo..=hi).contains(&ts) {
                return Err(self.error(
                    "tpe.time_scale",
                    format!(
                        "{ts} is outside {lo}..={hi} (1 = real time; 60 = a minute per second)"
                    ),
                ));
            }
        }
        if let Some(ms) = t.bucket_ms
            && !(10..=3_600_000).contains(&ms)
        {
            return Err(self.error(
                "tpe.bucket_ms",
                format!("{ms} is outside 10..=3600000 (60000 = real time)"),
            ));
        }
        let td = self.general.telemetry_destinations;
        let nd = t.n_destinations(td);
        if t.destinations > td {
            return Err(self.error(
                "tpe.destinations",
                format!(
                    "{} is above general.telemetry_destinations ({td}): the engine only sees counted destinations",
                    t.destinations
                ),
            ));
        }
        if t.enabled && nd > MAX_TPE_DESTINATIONS {
            return Err(self.error(
                "tpe.destinations",
                format!(
                    "the engine would predict {nd} destinations, above {MAX_TPE_DESTINATIONS} (a week of history each): set tpe.destinations to predict the first ones only"
                ),
            ));
        }
        if t.enabled && nd == 0 {
            return Err(self.error(
                "tpe.destinations",
                "the TPE needs at least one destination (general.telemetry_destinations is 0)",
            ));
        }
        if t.shards == 0 || t.shards > 64 {
            return Err(self.error("tpe.shards", format!("{} is outside 1..=64", t.shards)));
        }
        if t.enabled && t.shards > nd {
            return Err(self.error(
                "tpe.shards",
                format!(
                    "{} shards for {nd} destinations: at most one shard per destination",
                    t.shards
                ),
            ));
        }
        if !(1..=60_000).contains(&t.shard_timeout_ms) {
            return Err(self.error("tpe.shard_timeout_ms", "must be within 1..=60000"));
        }
        if !(1..=100_000).contains(&t.shadow_window) {
            return Err(self.error("tpe.shadow_window", "must be within 1..=100000 buckets"));
        }
        if !(0.0..1.0).contains(&t.shadow_margin) {
            return Err(self.error("tpe.shadow_margin", "must be within 0 (any gain) and 1"));
        }
        if !(1..=100_000).contains(&t.accuracy_window) {
            return Err(self.error("tpe.accuracy_window", "must be within 1..=100000 buckets"));
        }
        if t.baselines_only && t.model.is_some() {
            return Err(self.error(
                "tpe.model",
                "tpe.baselines_only runs without a model: remove one of the two",
            ));
        }
        if t.events.len() > MAX_TPE_EVENTS {
            return Err(self.error(
                "tpe.events",
                format!("{} events: at most {MAX_TPE_EVENTS}", t.events.len()),
            ));
        }
        for (i, e) in t.events.iter().enumerate() {
            e.check(nd)
                .map_err(|(k, m)| self.error(&format!("tpe.events[{i}].{k}"), m))?;
        }
        Ok(())
    }

    /// Port names in index order.
    pub fn port_names(&self) -> Vec<String> {
        self.ports.iter().map(|p| p.name.clone()).collect()
    }
}

/// The config crate appends " for key `path`" to type errors; the field is already named.
fn strip_config_suffix(s: &str) -> String {
    match s.rfind(" for key `") {
        Some(i) if s.ends_with('`') || s.ends_with("` in the environment") => s[..i].to_string(),
        _ => s.to_string(),
    }
}

/// 1-based line of byte offset `off`.
fn line_of(text: &str, off: usize) -> usize {
    text[..off.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// Finds the line a field path like `ports[1].generator.dst[0]` is written on.
/// Best effort over the usual layouts (`[[ports]]` array tables, `[section]` tables,
/// `key = value` lines, and inline tables); returns the closest enclosing line found.
pub fn locate(text: &str, path: &str) -> Option<usize> {
    if path.is_empty() {
        return None;
    }
    // Split into segments: name with optional index.
    let segs: Vec<(String, Option<usize>)> = path
        .split('.')
        .map(|s| match s.split_once('[') {
            Some((n, rest)) => (n.to_string(), rest.trim_end_matches(']').parse().ok()),
            None => (s.to_string(), None),
        })
        .collect();
    let lines: Vec<&str> = text.lines().collect();
    let mut best: Option<usize> = None;
    // Table header prefix built so far, e.g. "ports" then "ports.generator".
    let mut start = 0usize;
    let mut end = lines.len();
    let mut header = String::new();
    for (si, (name, idx)) in segs.iter().enumerate() {
        let full = if header.is_empty() {
            name.clone()
        } else {
            format!("{header}.{name}")
        };
        // Array of tables: find the idx-th [[full]] within [start, end).
        let aot = format!("[[{full}]]");
        let tbl = format!("[{full}]");
        let mut found = false;
        if let Some(k) = idx {
            let hits: Vec<usize> = (start..end).filter(|&l| lines[l].trim() == aot).collect();
            if let Some(&h) = hits.get(*k) {
                let next = (h + 1..end)
                    .find(|&l| lines[l].trim() == aot)
                    .unwrap_or(end);
                start = h;
                end = next;
                best = Some(h + 1);
                header = full.clone();
                found = true;
            }
        }
        if !found && let Some(h) = (start..end).find(|&l| lines[l].trim() == tbl) {
            start = h;
            best = Some(h + 1);
            header = full.clone();
            found = true;
        }
        if !found {
            // A key line within the current section.
            let key_line = (start..end).find(|&l| {
                let t = lines[l].trim_start();
                t.starts_with(name.as_str()) && t[name.len()..].trim_start().starts_with('=')
            });
            if let Some(l) = key_line {
                best = Some(l + 1);
                if si + 1 < segs.len() {
                    start = l;
                }
                header = full;
                continue;
            }
            break;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Config, ConfigError> {
        Config::from_toml(t, "t.toml", Path::new("."), false)
    }

    const DPDK: &str = r#"
[dpdk]
no_huge = true
vdevs = ["net_pcap0,rx_pcap=in.pcap", "net_null0"]

[[ports]]
name = "in"
backend = "dpdk"
device = "net_pcap0"

[[ports]]
name = "out"
backend = "dpdk"
device = "net_null0"
queues = 0

[[next_hops]]
name = "gw"
port = "out"
mac = "02:00:00:00:01:01"
"#;

    #[test]
    fn dpdk_ports_are_checked_naming_the_field() {
        let field = |t: &str| parse(t).map(|_| ()).map_err(|e| e.field);
        let built = BACKENDS.contains(&"dpdk");
        if built {
            assert_eq!(field(DPDK), Ok(()));
            // The control plane runs on DPDK ports too.
            assert_eq!(
                field(&DPDK.replace("queues = 0", "queues = 0\naddrs = [\"10.0.0.1/24\"]")),
                Ok(())
            );
        } else {
            let e = parse(DPDK).unwrap_err();
            assert_eq!(e.field, "ports[0].backend");
            assert!(e.to_string().contains("apt-get install libdpdk-dev"), "{e}");
            return;
        }
        let bad = [
            (
                DPDK.replace("device = \"net_null0\"", "device = \"net_null7\""),
                "ports[1].device",
            ),
            (
                DPDK.replace("device = \"net_null0\"\n", ""),
                "ports[1].device",
            ),
            (
                DPDK.replace("device = \"net_null0\"", "device = \"net_pcap0\""),
                "ports[1].device",
            ),
            (
                DPDK.replace("\"net_null0\"]", "\"null0\"]"),
                "dpdk.vdevs[1]",
            ),
            (
                DPDK.replace("no_huge = true", "cores = \"a\""),
                "dpdk.cores",
            ),
            (
                DPDK.replace("no_huge = true", "file_prefix = \"a b\""),
                "dpdk.file_prefix",
            ),
            (
                DPDK.replace("no_huge = true", "no_huge = true\nhuge_dir = \"/h\""),
                "dpdk.huge_dir",
            ),
            (
                DPDK.replace(
                    "backend = \"dpdk\"\ndevice = \"net_null0\"",
                    "backend = \"mem\"",
                ),
                "ports[1].backend",
            ),
        ];
        for (t, f) in bad {
            assert_eq!(field(&t), Err(f.to_string()), "{t}");
        }
    }

    const OK: &str = r#"
[general]
workers = 1

[[ports]]
name = "p0"
backend = "mem"
trusted = true
[ports.generator]
dst = ["198.18.0.0/16"]

[[ports]]
name = "p1"
backend = "mem"

[[next_hops]]
name = "nh1"
port = "p1"
mac = "02:00:00:00:01:01"

[[routes]]
prefix = "198.18.0.0/16"
via = "nh1"
"#;

    /// A `[ram]` section over [`OK`]'s next hop (one site behind `nh1`).
    const RAM: &str = r#"
[ram]
mode = "reactive"
live = true
worker_pps = 1000
[[ram.regions]]
name = "r"
budget = 4
[[ram.zones]]
name = "z"
region = "r"
budget = 4
[[ram.sites]]
name = "dc"
zone = "z"
max_workers = 4
[[ram.links]]
a = "edge"
b = "dc"
latency_us = 10
capacity_pps = 100000
next_hop = "nh1"
[[ram.destinations]]
id = 1
site = "dc"
"#;

    #[test]
    fn live_ram_settings_are_checked_naming_the_field() {
        let ok = format!("{OK}{RAM}");
        let c = parse(&ok).unwrap();
        let r = c.ram.as_ref().unwrap();
        assert!(r.live);
        assert_eq!((r.tick_ms, r.standby_park_us), (1000, 1000));
        // Existing [ram] sections (no live, tick_ms …) stay valid and default to off.
        let c = parse(&ok.replace("live = true\n", "")).unwrap();
        assert!(!c.ram.unwrap().live);
        let field = |t: String| parse(&t).map(|_| ()).unwrap_err();
        let e = field(ok.replace("live = true", "live = true\ntick_ms = 0"));
        assert_eq!(e.field, "ram.tick_ms", "{e}");
        assert_eq!(e.line, Some(28), "{e}");
        let e = field(ok.replace("live = true", "live = true\nstandby_park_us = 0"));
        assert_eq!(e.field, "ram.standby_park_us", "{e}");
        let e = field(ok.replace("live = true", "live = true\nlocal_worker_pps = 0"));
        assert_eq!(e.field, "ram.local_worker_pps", "{e}");
        let e = field(ok.replace("live = true", "live = \"maybe\""));
        assert!(e.to_string().contains("ram.live"), "{e}");
        // Predictive needs the engine's forecasts.
        let e = field(ok.replace("mode = \"reactive\"", "mode = \"predictive\""));
        assert_eq!(e.field, "ram.mode", "{e}");
        assert!(e.msg.contains("predictive"), "{e}");
        // ... unless it is only for scenario runs.
        let t = ok
            .replace("mode = \"reactive\"", "mode = \"predictive\"")
            .replace("live = true\n", "");
        assert!(parse(&t).is_ok());
        if cfg!(feature = "tpe") {
            let t = format!(
                "{}\n[tpe]\nenabled = true\n",
                ok.replace("mode = \"reactive\"", "mode = \"predictive\"")
            );
            parse(&t).unwrap();
        }
        // Transmit weights are set by the live RAM only; the floor is a weight.
        let e = field(ok.replace("live = true\n", "").replace(
            "worker_pps = 1000",
            "worker_pps = 1000\nset_tx_weights = true",
        ));
        assert_eq!(e.field, "ram.set_tx_weights", "{e}");
        assert!(e.msg.contains("ram.live = true"), "{e}");
        let e = field(ok.replace(
            "live = true",
            "live = true\nset_tx_weights = true\ntx_weight_floor = 1001",
        ));
        assert_eq!(e.field, "ram.tx_weight_floor", "{e}");
        let t = ok.replace("live = true", "live = true\nset_tx_weights = true");
        let c = parse(&t).unwrap();
        assert_eq!(
            crate::ram::live::weight_ports(&c),
            vec![1],
            "nh1 leaves on p1"
        );
        assert!(crate::ram::live::weight_ports(&parse(&ok).unwrap()).is_empty());
        let e = field(ok.replace("site = \"dc\"", "site = \"dc\"\nmax_priority = 9"));
        assert_eq!(e.field, "ram.destinations[0].max_priority", "{e}");
        // A destination the telemetry does not count.
        let t = ok.replace("workers = 1", "workers = 1\ntelemetry_destinations = 1");
        let e = field(t);
        assert_eq!(e.field, "ram.destinations[0].id", "{e}");
    }

    #[test]
    fn embedded_default_is_valid() {
        let c = Config::embedded().unwrap();
        assert!(!c.ports.is_empty());
    }

    #[test]
    fn good_config_parses() {
        let c = parse(OK).unwrap();
        assert_eq!(c.ports.len(), 2);
        assert_eq!(c.general.workers, 1);
        assert_eq!(c.routes[0].via.names(), vec!["nh1"]);
    }

    #[test]
    fn syntax_error_names_line() {
        let e = parse("[general]\nworkers = = 2\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn type_error_names_field_and_line() {
        let t = OK.replace(
            "backend = \"mem\"\n\n[[next",
            "backend = \"mem\"\nmtu = 70000\n\n[[next",
        );
        let e = parse(&t).unwrap_err();
        assert_eq!(e.field, "ports[1].mtu", "{e}");
        assert_eq!(e.line, Some(15), "{e}");
        assert!(!e.msg.contains("for key"), "{e}");
    }

    #[test]
    fn steering_ecmp_is_checked_naming_the_field() {
        let with = |ecmp: &str| {
            format!(
                "{OK}\n[steering]\nkeys = [\"00112233445566778899aabbccddeeff\"]\n\
                 [[steering.destinations]]\nid = 1\nnext_hop = \"nh1\"\necmp = {ecmp}\n"
            )
        };
        assert!(parse(&with("[]")).is_ok());
        let e = parse(&with("[\"nope\"]")).unwrap_err();
        assert_eq!(e.field, "steering.destinations[0].ecmp[0]", "{e}");
        assert!(e.msg.contains("nope"), "{e}");
        let e = parse(&with("[\"nh1\"]")).unwrap_err();
        assert_eq!(e.field, "steering.destinations[0].ecmp[0]", "{e}");
        assert!(e.msg.contains("twice"), "{e}");
        let e = parse(&with("[\"a\", \"b\", \"c\", \"d\"]")).unwrap_err();
        assert_eq!(e.field, "steering.destinations[0].ecmp", "{e}");
    }

    #[test]
    fn unknown_key_is_refused() {
        let t = OK.replace("workers = 1", "workers = 1\nwrokers = 2");
        let e = parse(&t).unwrap_err();
        assert!(e.to_string().contains("wrokers"), "{e}");
    }

    #[test]
    fn semantic_errors_name_field_and_line() {
        let t = OK.replace("port = \"p1\"", "port = \"p9\"");
        let e = parse(&t).unwrap_err();
        assert_eq!(e.field, "next_hops[0].port");
        assert_eq!(e.line, Some(18), "{e}");
        assert!(e.msg.contains("p9"));
        let t = OK.replace("backend = \"mem\"\ntrusted", "backend = \"nope\"\ntrusted");
        let e = parse(&t).unwrap_err();
        assert_eq!(e.field, "ports[0].backend");
        assert_eq!(e.line, Some(7), "{e}");
        let t = OK.replace("dst = [\"198.18.0.0/16\"]", "dst = [\"198.18.0.0/33\"]");
        let e = parse(&t).unwrap_err();
        assert_eq!(e.field, "ports[0].generator.dst[0]");
        assert_eq!(e.line, Some(10), "{e}");
    }

    #[test]
    fn xdp_settings_are_validated_by_name() {
        let iface = |extra: &str| {
            OK.replace(
                "name = \"p1\"\nbackend = \"mem\"",
                &format!("name = \"p1\"\nbackend = \"afpacket\"\nifname = \"eth0\"\n{extra}"),
            )
        };
        parse(&iface("xdp_bind = \"copy\"")).unwrap();
        let e = parse(&iface("xdp_bind = \"fast\"")).unwrap_err();
        assert_eq!(e.field, "ports[1].xdp_bind", "{e}");
        assert!(e.msg.contains("auto, copy, zerocopy"), "{e}");
        let e = parse(&iface("xdp_mode = \"driver\"")).unwrap_err();
        assert_eq!(e.field, "ports[1].xdp_mode", "{e}");
    }

    #[test]
    fn ctl_section_is_validated() {
        let t = format!("{OK}\n[ctl]\nmetrics_listen = \"127.0.0.1:0\"\nsocket = \"off\"\n");
        let c = parse(&t).unwrap();
        assert_eq!(c.ctl.metrics_listen.as_deref(), Some("127.0.0.1:0"));
        let e = parse(&t.replace("127.0.0.1:0", "localhost")).unwrap_err();
        assert_eq!(e.field, "ctl.metrics_listen", "{e}");
        assert_eq!(e.line, Some(26), "{e}");
    }

    #[test]
    fn env_overrides_apply() {
        let name = "STEERD_GENERAL__STATS_INTERVAL_MS";
        // SAFETY: no other test reads or writes this variable.
        unsafe { std::env::set_var(name, "250") };
        let c = Config::from_toml(OK, "t.toml", Path::new("."), true).unwrap();
        // SAFETY: as above.
        unsafe { std::env::remove_var(name) };
        assert_eq!(c.general.stats_interval_ms, 250);
        assert_eq!(
            c.env_overrides().as_deref(),
            Some("set from the environment: STEERD_GENERAL__STATS_INTERVAL_MS=250")
        );
        let plain = Config::from_toml(OK, "t.toml", Path::new("."), false).unwrap();
        assert_eq!(plain.env_overrides(), None);
    }
    #[test]
    fn general_sizes_beyond_their_bounds_name_the_field() {
        let bad = |from: &str, to: &str, field: &str, msg: &str| {
            let t = OK.replace(from, to);
            assert_ne!(t, OK, "{from} is in the test config");
            let e = Config::from_toml(&t, "t.toml", Path::new("."), false).unwrap_err();
            assert_eq!(e.field, field, "{to}: {e}");
            assert!(e.msg.contains(msg), "{to}: {e}");
        };
        let w = "workers = 1";
        bad(
            w,
            "workers = 1\npool_buffers = 4000000000",
            "general.pool_buffers",
            "above 1048576",
        );
        bad(
            w,
            "workers = 1\ndrain_us = 100001",
            "general.drain_us",
            "above 100000",
        );
        let d = "dst = [\"198.18.0.0/16\"]";
        bad(
            d,
            &format!("{d}\nflows = 0"),
            "ports[0].generator.flows",
            "outside 1..=1048576",
        );
        bad(
            d,
            &format!("{d}\npriority = 4"),
            "ports[0].generator.priority",
            "4 is above 3",
        );
        bad(
            w,
            "workers = 1\nstats_interval_ms = 0",
            "general.stats_interval_ms",
            "--quiet",
        );
        bad(
            w,
            "workers = 1\ntelemetry_destinations = 100000000",
            "general.telemetry_destinations",
            "16-bit",
        );
        // Counted, but more than one engine predicts: the engine names what to set.
        bad(
            w,
            "workers = 1\ntelemetry_destinations = 5000\n[tpe]\nenabled = true",
            "tpe.destinations",
            "above 4096",
        );
        let ok = |to: &str| {
            Config::from_toml(&OK.replace(w, to), "t.toml", Path::new("."), false)
                .unwrap_or_else(|e| panic!("{to}: {e}"))
        };
        ok("workers = 1\npool_buffers = 1048576\ndrain_us = 100000\nstats_interval_ms = 100");
        ok("workers = 1\ntelemetry_destinations = 65536\n[tpe]\nenabled = true\ndestinations = 64");
    }

    #[test]
    fn interface_ports_check_ifname_and_queues_without_opening_anything() {
        let port = |extra: &str| {
            let t = OK.replace(
                "name = \"p1\"\nbackend = \"mem\"",
                &format!("name = \"p1\"\nbackend = \"afpacket\"\n{extra}"),
            );
            assert_ne!(t, OK);
            Config::from_toml(&t, "t.toml", Path::new("."), false)
        };
        let e = port("ifname = \"averyveryverylongname\"").unwrap_err();
        assert_eq!(e.field, "ports[1].ifname");
        assert!(e.msg.contains("at most 15 bytes"), "{e}");
        let e = port("ifname = \"a/b\"").unwrap_err();
        assert_eq!(e.field, "ports[1].ifname", "{e}");
        let e = port("ifname = \"veth0\"\nqueues = 1000").unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.msg.as_str()),
            ("ports[1].queues", "1000 is above 256")
        );
        port("ifname = \"veth0\"\nqueues = 2").expect("an interface that need not exist yet");
    }

    #[test]
    fn tx_rate_and_weights_are_checked_naming_the_field() {
        let port = |extra: &str| {
            let t = OK.replace(
                "name = \"p1\"\nbackend = \"mem\"",
                &format!("name = \"p1\"\nbackend = \"mem\"\n{extra}"),
            );
            assert_ne!(t, OK);
            Config::from_toml(&t, "t.toml", Path::new("."), false)
        };
        for bad in ["0", "-5", "nan", "inf", "1e8"] {
            let e = port(&format!("tx_rate_mbps = {bad}")).unwrap_err();
            assert_eq!(e.field, "ports[1].tx_rate_mbps", "{bad}: {e}");
            assert!(e.msg.contains("outside (0, 10000000] Mbit/s"), "{e}");
        }
        let e = port("tx_weights = [1, 2, 3]").unwrap_err();
        assert_eq!(e.field, "ports[1].tx_weights");
        assert!(
            e.msg.starts_with("3 weights: one per transmit class 0..=3"),
            "{e}"
        );
        let e = port("tx_weights = [1, 0, 3, 4]").unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.msg.as_str()),
            ("ports[1].tx_weights[1]", "0 is outside 1..=1000")
        );
        let e = port("tx_weights = [1, 2, 3, 1001]").unwrap_err();
        assert_eq!(e.field, "ports[1].tx_weights[3]");
        let c = port("tx_rate_mbps = 2.5\ntx_weights = [1, 2, 4, 8]").expect("valid");
        assert_eq!(c.ports[1].tx_rate_bps(), 2_500_000);
        assert_eq!(c.ports[1].tx_weights_array(), [1, 2, 4, 8]);
        assert_eq!(c.ports[0].tx_weights_array(), [0; 4], "strict by default");
        assert_eq!(c.ports[0].tx_rate_bps(), 0);
    }

    #[test]
    fn too_many_workers_are_refused_naming_the_field() {
        let t = OK.replace("workers = 1", "workers = 1000");
        let e = Config::from_toml(&t, "t.toml", Path::new("."), false).unwrap_err();
        assert_eq!(e.field, "general.workers");
        assert!(e.msg.contains("1000 is above 128"), "{e}");
        let t = OK.replace("workers = 1", "workers = 128");
        assert!(Config::from_toml(&t, "t.toml", Path::new("."), false).is_ok());
    }
    #[test]
    fn errors_from_the_environment_name_the_variable_not_the_files_line() {
        let t = OK.replace("workers = 1", "workers = 1\nburst = 32");
        let vars = |k: &str, v: &str| config::Map::from([(k.to_string(), v.to_string())]);
        let bad = |k: &str, v: &str| {
            Config::from_toml_vars(&t, "t.toml", Path::new("."), vars(k, v)).unwrap_err()
        };
        // Validated after the merge.
        let e = bad("STEERD_GENERAL__BURST", "99");
        assert_eq!(e.field, "general.burst");
        assert_eq!(e.line, None, "{e}");
        assert_eq!(
            e.to_string(),
            "STEERD_GENERAL__BURST=99 (environment, over t.toml): general.burst: 99 is outside \
             1..=32"
        );
        // Refused while deserializing.
        let e = bad("STEERD_GENERAL__BURST", "many");
        assert_eq!((e.field.as_str(), e.line), ("general.burst", None), "{e}");
        assert!(
            e.to_string()
                .starts_with("STEERD_GENERAL__BURST=many (environment"),
            "{e}"
        );
        assert!(e.msg.ends_with("expected an integer"), "{e}");
        // A key no table has.
        let e = bad("STEERD_GENERAL__BRUST", "8");
        assert_eq!(e.env.as_deref(), Some("STEERD_GENERAL__BRUST=8"), "{e}");
        assert_eq!(e.field, "general.brust", "{e}");
        // A section no config has: the variable is named, not the file.
        let e = bad("STEERD_GENERL__WORKERS", "1");
        assert_eq!(e.env.as_deref(), Some("STEERD_GENERL__WORKERS=1"), "{e}");
        assert_eq!(e.field, "generl", "{e}");
        assert!(e.msg.starts_with("unknown field"), "{e}");
        // A key's value is not shown.
        let key = "00112233445566778899aabbccddeeff";
        let e = bad("STEERD_STEERING__KEYS", key);
        assert_eq!(
            e.env.as_deref(),
            Some("STEERD_STEERING__KEYS=<redacted>"),
            "{e}"
        );
        assert_eq!(e.field, "steering.keys", "{e}");
        assert!(!e.to_string().contains("aabb"), "{e}");
        assert!(e.msg.contains("<redacted>"), "{e}");
        // The file's own mistakes still cite its line, with an unrelated override set.
        let t2 = t.replace("burst = 32", "burst = 33");
        let e = Config::from_toml_vars(
            &t2,
            "t.toml",
            Path::new("."),
            vars("STEERD_GENERAL__STATS_INTERVAL_MS", "250"),
        )
        .unwrap_err();
        assert_eq!((e.env, e.line), (None, Some(4)));
    }

    #[test]
    fn other_steerd_variables_are_not_configuration() {
        let name = "STEERD_TESTBED_PREFIX";
        // SAFETY: no other test reads or writes this variable.
        unsafe { std::env::set_var(name, "sdx-") };
        let c = Config::from_toml(OK, "t.toml", Path::new("."), true);
        // SAFETY: as above.
        unsafe { std::env::remove_var(name) };
        assert!(c.is_ok(), "{c:?}");
    }

    #[test]
    fn router_addresses_and_resolved_next_hops() {
        let t = OK
            .replace(
                "backend = \"mem\"\n\n[[next",
                "backend = \"mem\"\naddrs = [\"10.2.0.1/24\", \"fd02::1/64\"]\n\n[[next",
            )
            .replace("mac = \"02:00:00:00:01:01\"", "ip = \"10.2.0.2\"");
        let c = parse(&t).unwrap();
        assert_eq!(c.ports[1].addrs.len(), 2);
        assert_eq!(c.next_hops[0].mac, None);
        let e = parse(&t.replace("10.2.0.1/24", "10.2.0.1/33")).unwrap_err();
        assert_eq!(e.field, "ports[1].addrs[0]", "{e}");
        assert_eq!(e.line, Some(15), "{e}");
        let e = parse(&t.replace("10.2.0.1/24", "224.0.0.1/24")).unwrap_err();
        assert!(e.msg.contains("cannot be a port address"), "{e}");
        let e = parse(&t.replace("\"fd02::1/64\"", "\"fd02::1/64\", \"10.2.0.1/16\"")).unwrap_err();
        assert!(e.msg.contains("already an address"), "{e}");
        // Resolving needs an address of the family on the port.
        let e = parse(
            &t.replace("ip = \"10.2.0.2\"", "ip = \"fd09::2\"")
                .replace(", \"fd02::1/64\"", ""),
        )
        .unwrap_err();
        assert_eq!(e.field, "next_hops[0].ip", "{e}");
        assert!(
            e.msg.contains("needs an IPv6 address on port \"p1\""),
            "{e}"
        );
        let e = parse(&t.replace("ip = \"10.2.0.2\"", "ip = \"10.2.0.1\"")).unwrap_err();
        assert!(e.msg.contains("router's own"), "{e}");
        let e = parse(&t.replace("ip = \"10.2.0.2\"\n", "")).unwrap_err();
        assert_eq!(e.field, "next_hops[0].name", "{e}");
        assert!(e.msg.contains("needs mac"), "{e}");
        let e = parse(&format!("{t}\n[control]\nring_slots = 4\n")).unwrap_err();
        assert_eq!(e.field, "control.ring_slots", "{e}");
    }

    #[test]
    fn tpe_section_is_typed_and_validated() {
        let c = parse(OK).unwrap();
        assert!(!c.tpe.enabled, "no [tpe] section: the TPE does not run");
        let t = format!("{OK}\n[tpe]\nenabled = true\ntime_scale = 300\nshards = 2\n");
        let c = parse(&t).unwrap();
        assert!(c.tpe.enabled);
        assert_eq!(c.tpe.effective_time_scale(), 300.0);
        assert_eq!(c.tpe.bucket_wall(), std::time::Duration::from_millis(200));
        assert_eq!(c.tpe.n_destinations(256), 256);
        let c = parse(&format!("{OK}\n[tpe]\nenabled = true\nbucket_ms = 500\n")).unwrap();
        assert_eq!(c.tpe.effective_time_scale(), 120.0);
        let e = parse(&format!("{t}bucket_ms = 100\n")).unwrap_err();
        assert_eq!(e.field, "tpe.bucket_ms", "{e}");
        assert!(e.msg.contains("not both"), "{e}");
        let e = parse(&t.replace("time_scale = 300", "time_scale = -1")).unwrap_err();
        assert_eq!(e.field, "tpe.time_scale", "{e}");
        assert_eq!(e.line, Some(27), "{e}");
        let e = parse(&t.replace("shards = 2", "shards = 0")).unwrap_err();
        assert_eq!(e.field, "tpe.shards", "{e}");
        let e = parse(&format!("{t}destinations = 9999\n")).unwrap_err();
        assert_eq!(e.field, "tpe.destinations", "{e}");
        assert!(e.msg.contains("telemetry_destinations"), "{e}");
        let e = parse(&format!("{t}shadow_margin = 1.5\n")).unwrap_err();
        assert_eq!(e.field, "tpe.shadow_margin", "{e}");
        let e = parse(&format!("{t}modle = \"x.onnx\"\n")).unwrap_err();
        assert!(e.to_string().contains("modle"), "{e}");
        let e = parse(&format!("{OK}\n[tpe]\ntime_scale = \"fast\"\n")).unwrap_err();
        assert_eq!(e.field, "tpe.time_scale", "{e}");
        let e = parse(&format!("{t}baselines_only = true\nmodel = \"m.onnx\"\n")).unwrap_err();
        assert_eq!(e.field, "tpe.model", "{e}");
    }

    #[test]
    fn tpe_events_are_typed_and_validated() {
        let base = format!("{OK}\n[tpe]\nenabled = true\ndestinations = 8\n");
        let ev = |body: &str| {
            format!(
                "{base}\n[[tpe.events]]\nstart_after_min = 10\nduration_min = 30\ndestinations = [1, 3]\nfactor = 2.5\n\n[[tpe.events]]\n{body}\n"
            )
        };
        let good = "start = \"2026-12-24T18:00:00Z\"\nduration_min = 90\ndestinations = [0]\nfactor = 0.5\nname = \"maintenance\"";
        let c = parse(&ev(good)).unwrap();
        assert_eq!(c.tpe.events.len(), 2);
        assert_eq!(c.tpe.events[0].start_at(), EventStart::AfterMin(10));
        assert_eq!(c.tpe.events[0].destinations, vec![1, 3]);
        assert_eq!(
            c.tpe.events[1].start_at(),
            EventStart::UnixMs(1_798_135_200_000)
        );
        assert_eq!(c.tpe.events[1].name.as_deref(), Some("maintenance"));
        let bad = |body: &str, field: &str, msg: &str| {
            let e = parse(&ev(body)).unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(e.msg.contains(msg), "{e}");
            assert!(e.to_string().contains(field), "{e}");
            e
        };
        let e = bad(
            &good.replace("0.5", "-1"),
            "tpe.events[1].factor",
            "outside 0..=100",
        );
        assert!(e.line.is_some(), "{e}");
        bad(
            &good.replace("0.5", "nan"),
            "tpe.events[1].factor",
            "outside",
        );
        bad(
            &good.replace("= 90", "= 0"),
            "tpe.events[1].duration_min",
            "outside 1..=43200",
        );
        bad(
            &good.replace("[0]", "[8]"),
            "tpe.events[1].destinations[0]",
            "not a predicted destination",
        );
        bad(
            &good.replace("[0]", "[2, 2]"),
            "tpe.events[1].destinations[1]",
            "twice",
        );
        bad(
            &good.replace("[0]", "[]"),
            "tpe.events[1].destinations",
            "at least one",
        );
        bad(
            &good.replace("18:00:00Z", "18:00:00"),
            "tpe.events[1].start",
            "RFC 3339",
        );
        bad(
            &good.replace("12-24", "13-24"),
            "tpe.events[1].start",
            "RFC 3339",
        );
        bad(
            &format!("{good}\nstart_after_min = 5"),
            "tpe.events[1].start_after_min",
            "not both",
        );
        bad(
            &good.replace("start = \"2026-12-24T18:00:00Z\"\n", ""),
            "tpe.events[1].start",
            "give start",
        );
        // Types and unknown keys are refused by serde, naming the key.
        let e = parse(&ev(&format!("{good}\nfactr = 2"))).unwrap_err();
        assert!(e.to_string().contains("factr"), "{e}");
        let e = parse(&ev(&good.replace("= 90", "= \"an hour\""))).unwrap_err();
        assert!(e.to_string().contains("duration_min"), "{e}");
    }

    #[test]
    fn rfc3339_times_parse_to_unix_ms() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339_ms("2024-01-01T00:00:00Z"),
            Ok(1_704_067_200_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T12:30:15.25Z"),
            Ok(1_709_209_815_250)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-01-01T01:00:00+01:00"),
            parse_rfc3339_ms("2024-01-01T00:00:00Z")
        );
        assert_eq!(
            parse_rfc3339_ms("2023-12-31 19:00:00-05:00"),
            Ok(1_704_067_200_000)
        );
        for bad in [
            "2023-02-29T00:00:00Z",
            "2024-01-01",
            "2024-01-01T24:00:00Z",
            "1969-12-31T23:59:59Z",
            "2024-01-01T00:00:00+1:00",
            "2024-01-01T00:00:00.Z",
            "x024-01-01T00:00:00Z",
        ] {
            assert!(parse_rfc3339_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn embedded_default_runs_the_tpe_fast() {
        let c = Config::embedded().unwrap();
        assert!(c.tpe.enabled);
        assert!(c.tpe.bucket_wall() <= std::time::Duration::from_secs(1));
    }
}
