//! The `[mark]` section of a configuration (cold): what `steerd mark` runs, and how it
//! becomes a [`MarkerConfig`]. Validated with the rest of the file by
//! [`Config::validate`](crate::config::Config::validate), errors naming the field
//! (`mark.rules[1].dst_port: ...`).
//!
//! ```toml
//! [mark]
//! pairs = [{ from = "host", to = "safe" }, { from = "safe", to = "host", mark = false }]
//! epoch = 1                      # default: [steering] epoch
//! active = [1]                   # predicted destinations; default: all below
//! [[mark.destinations]]
//! prefix = "10.2.0.0/24"
//! id = 1
//! [[mark.rules]]
//! dst = "10.2.0.0/24"
//! proto = "udp"
//! dst_port = "5000-5999"
//! app = "realtime"
//! priority = 3
//! ```

use std::path::PathBuf;

use serde::Deserialize;

use super::{MarkerConfig, PortRange, Prefix, Rule, Signature, app, default_signatures};
use crate::config::{Config, ConfigError};
use crate::steering::{Key, SteeringKeys};

/// An ingress → egress port pair of the marker.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MarkPair {
    /// Port packets are received on.
    pub from: String,
    /// Port they are sent out of.
    pub to: String,
    /// Mark packets of this direction (false: pass them through unchanged, e.g. the
    /// return direction toward the hosts).
    #[serde(default = "yes")]
    pub mark: bool,
}

/// A destination prefix.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MarkDestConfig {
    /// `ADDRESS/LENGTH`.
    pub prefix: String,
    /// Steering destination id (as in the SAFE's `[[steering.destinations]]`).
    pub id: u32,
}

/// A port or a range, as a number or text ("5000-5999").
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum PortSpec {
    /// One port.
    Num(u16),
    /// `80` or `5000-5999`.
    Text(String),
}

/// A protocol, by number or name (tcp, udp, icmp, icmpv6, sctp).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ProtoSpec {
    /// Protocol number.
    Num(u8),
    /// Name.
    Text(String),
}

/// An application class, by number or name.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum AppSpec {
    /// Class number.
    Num(u8),
    /// Name (see [`app::NAMES`]).
    Text(String),
}

/// A classification rule.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MarkRuleConfig {
    /// Source prefix.
    #[serde(default)]
    pub src: Option<String>,
    /// Destination prefix.
    #[serde(default)]
    pub dst: Option<String>,
    /// Protocol.
    #[serde(default)]
    pub proto: Option<ProtoSpec>,
    /// Source port or range.
    #[serde(default)]
    pub src_port: Option<PortSpec>,
    /// Destination port or range.
    #[serde(default)]
    pub dst_port: Option<PortSpec>,
    /// Application class (default unknown).
    #[serde(default)]
    pub app: Option<AppSpec>,
    /// Priority 0..=3 (default 0).
    #[serde(default)]
    pub priority: u8,
    /// Steer to this destination id instead of the destination map's.
    #[serde(default)]
    pub dest: Option<u32>,
    /// False: never mark matching flows.
    #[serde(default = "yes")]
    pub mark: bool,
}

/// A port signature (added to, or overriding, the built-in ones).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MarkSignatureConfig {
    /// Server port.
    pub port: u16,
    /// Only this protocol.
    #[serde(default)]
    pub proto: Option<ProtoSpec>,
    /// Application class.
    pub app: AppSpec,
    /// Priority 0..=3.
    #[serde(default)]
    pub priority: u8,
}

/// The `[mark]` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MarkSection {
    /// Port pairs (names of `[[ports]]`).
    pub pairs: Vec<MarkPair>,
    /// Destination map.
    #[serde(default)]
    pub destinations: Vec<MarkDestConfig>,
    /// Rules, first match wins.
    #[serde(default)]
    pub rules: Vec<MarkRuleConfig>,
    /// Extra signatures.
    #[serde(default)]
    pub signatures: Vec<MarkSignatureConfig>,
    /// Use the built-in signatures (53 dns, 80/443 web, 5201 bulk, ...).
    #[serde(default = "yes")]
    pub default_signatures: bool,
    /// Epoch written into headers (default: `[steering] epoch`).
    #[serde(default)]
    pub epoch: Option<u32>,
    /// Follow the epoch of a running `steerd run`: its ctl socket, polled every
    /// `epoch_poll_ms` (the config's epoch until the first answer).
    #[serde(default)]
    pub epoch_from: Option<PathBuf>,
    /// Poll interval for `epoch_from`.
    #[serde(default = "poll_ms")]
    pub epoch_poll_ms: u64,
    /// With `epoch_from`: the predicted set is the running steerd's steering table (the
    /// destinations it has an entry for, which its RAM installs ahead of the traffic),
    /// followed at the same poll interval, instead of `active`.
    #[serde(default)]
    pub follow_steering: bool,
    /// Predicted destinations (default: every destination named here).
    #[serde(default)]
    pub active: Option<Vec<u32>>,
    /// Flow table entries.
    #[serde(default = "flows")]
    pub flows: usize,
    /// Largest L2 payload (NSH + IP) toward the SAFE; larger marked frames pass
    /// unmarked (`too_big`). 0: no check.
    #[serde(default = "mtu")]
    pub mtu: u16,
    /// NSH SPI written into headers.
    #[serde(default)]
    pub spi: u32,
    /// NSH SI written into headers.
    #[serde(default = "si")]
    pub si: u8,
    /// Class of flows nothing matches.
    #[serde(default)]
    pub default_app: Option<AppSpec>,
    /// Priority of flows nothing matches.
    #[serde(default)]
    pub default_priority: u8,
    /// Microseconds to sleep after a loop that received nothing (0: spin, poll mode).
    #[serde(default)]
    pub idle_us: u64,
    /// Marker threads (`mark-0` …): each owns one receive and one transmit queue of every
    /// port it uses (tap and afpacket open that many; afxdp needs `queues` that many),
    /// its own flow table of `flows` entries, buffer pool and counters.
    #[serde(default = "one")]
    pub threads: usize,
    /// Cores the threads are pinned to, one per thread in order (default: not pinned).
    #[serde(default)]
    pub cores: Option<Vec<usize>>,
}

fn one() -> usize {
    1
}

/// Most marker threads.
pub const MAX_THREADS: usize = 64;

/// Checks a marker thread count and its cores (one per thread, each on this machine);
/// `label` names the count in the message ("2 thread(s)", "--threads 2"). The error is
/// (field, message); the field is `mark.threads` or `mark.cores`.
pub fn check_threads(
    threads: usize,
    cores: Option<&[usize]>,
    label: &str,
) -> Result<(), (&'static str, String)> {
    if !(1..=MAX_THREADS).contains(&threads) {
        return Err((
            "mark.threads",
            format!("{threads} is outside 1..={MAX_THREADS}"),
        ));
    }
    if let Some(c) = cores {
        if c.len() < threads {
            return Err((
                "mark.cores",
                format!(
                    "{} core(s) for {label}: name one core per thread (or leave cores out)",
                    c.len()
                ),
            ));
        }
        let have = core_affinity::get_core_ids().map_or(0, |v| v.len());
        if let Some(bad) = c.iter().find(|&&x| have > 0 && x >= have) {
            return Err((
                "mark.cores",
                format!(
                    "core {bad} does not exist (this machine has cores 0 to {})",
                    have - 1
                ),
            ));
        }
    }
    Ok(())
}

fn yes() -> bool {
    true
}
fn poll_ms() -> u64 {
    500
}
fn flows() -> usize {
    65_536
}
fn mtu() -> u16 {
    1500
}
fn si() -> u8 {
    255
}

fn proto(p: &ProtoSpec) -> Result<u8, String> {
    match p {
        ProtoSpec::Num(n) => Ok(*n),
        ProtoSpec::Text(s) => match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(6),
            "udp" => Ok(17),
            "icmp" => Ok(1),
            "icmpv6" => Ok(58),
            "sctp" => Ok(132),
            other => other.parse::<u8>().map_err(|_| {
                format!("\"{s}\" is not a protocol (tcp, udp, icmp, icmpv6, sctp or a number)")
            }),
        },
    }
}

fn ports(p: &PortSpec) -> Result<PortRange, String> {
    match p {
        PortSpec::Num(n) => Ok(PortRange::one(*n)),
        PortSpec::Text(s) => PortRange::parse(s),
    }
}

fn app_class(a: &AppSpec) -> Result<u8, String> {
    match a {
        AppSpec::Num(n) => app::parse(&n.to_string()),
        AppSpec::Text(s) => app::parse(s),
    }
}

fn prio(p: u8) -> Result<u8, String> {
    if p > super::MAX_PRIORITY {
        Err(format!("{p} is above {}", super::MAX_PRIORITY))
    } else {
        Ok(p)
    }
}

/// The marker configuration of `cfg`'s `[mark]` section (and `[steering] keys`), or the
/// first error, naming its field. `Ok(None)` when there is no `[mark]` section.
pub fn marker_config(cfg: &Config) -> Result<Option<MarkerConfig>, ConfigError> {
    let Some(m) = &cfg.mark else {
        return Ok(None);
    };
    let e = |f: String, msg: String| cfg.error(&f, msg);
    if m.pairs.is_empty() {
        return Err(e(
            "mark.pairs".into(),
            "at least one port pair is needed".into(),
        ));
    }
    let names = cfg.port_names();
    let mut froms = Vec::new();
    for (i, p) in m.pairs.iter().enumerate() {
        for (k, n) in [("from", &p.from), ("to", &p.to)] {
            if !names.contains(n) {
                return Err(e(
                    format!("mark.pairs[{i}].{k}"),
                    format!("no port named \"{n}\" (ports: {})", names.join(", ")),
                ));
            }
        }
        if p.from == p.to {
            return Err(e(
                format!("mark.pairs[{i}].to"),
                "a pair needs two different ports".into(),
            ));
        }
        if froms.contains(&p.from) {
            return Err(e(
                format!("mark.pairs[{i}].from"),
                format!("port \"{}\" is already the ingress of another pair", p.from),
            ));
        }
        froms.push(p.from.clone());
    }
    let key = match cfg.steering.keys.first() {
        Some(k) => Key::from_hex(k).map_err(|x| e("steering.keys[0]".into(), x))?,
        None if m.pairs.iter().any(|p| p.mark) => {
            return Err(e(
                "steering.keys".into(),
                "the marker needs a steering key to tag headers".into(),
            ));
        }
        None => Key::from_bytes([0; 16]),
    };
    let previous = match cfg.steering.keys.get(1) {
        Some(k) => Some(Key::from_hex(k).map_err(|x| e("steering.keys[1]".into(), x))?),
        None => None,
    };
    let mut destinations = Vec::new();
    for (i, d) in m.destinations.iter().enumerate() {
        let p =
            Prefix::parse(&d.prefix).map_err(|x| e(format!("mark.destinations[{i}].prefix"), x))?;
        if d.id > crate::steering::MAX_DEST_ID {
            return Err(e(
                format!("mark.destinations[{i}].id"),
                format!("{} is above {}", d.id, crate::steering::MAX_DEST_ID),
            ));
        }
        destinations.push((p, d.id));
    }
    let mut rules = Vec::new();
    for (i, r) in m.rules.iter().enumerate() {
        let f = |k: &str| format!("mark.rules[{i}].{k}");
        let pfx = |s: &Option<String>, k: &str| {
            s.as_deref()
                .map(Prefix::parse)
                .transpose()
                .map_err(|x| e(f(k), x))
        };
        let rule = Rule {
            src: pfx(&r.src, "src")?,
            dst: pfx(&r.dst, "dst")?,
            proto: r
                .proto
                .as_ref()
                .map(proto)
                .transpose()
                .map_err(|x| e(f("proto"), x))?,
            src_ports: r
                .src_port
                .as_ref()
                .map(ports)
                .transpose()
                .map_err(|x| e(f("src_port"), x))?,
            dst_ports: r
                .dst_port
                .as_ref()
                .map(ports)
                .transpose()
                .map_err(|x| e(f("dst_port"), x))?,
            app_class: r
                .app
                .as_ref()
                .map(app_class)
                .transpose()
                .map_err(|x| e(f("app"), x))?
                .unwrap_or(app::UNKNOWN),
            priority: prio(r.priority).map_err(|x| e(f("priority"), x))?,
            mark: r.mark,
            dest: r.dest,
        };
        if let (Some(s), Some(d)) = (rule.src, rule.dst)
            && s.v6 != d.v6
        {
            return Err(e(
                f("dst"),
                "src and dst are of different IP versions".into(),
            ));
        }
        if let Some(d) = r.dest
            && d > crate::steering::MAX_DEST_ID
        {
            return Err(e(
                f("dest"),
                format!("{d} is above {}", crate::steering::MAX_DEST_ID),
            ));
        }
        rules.push(rule);
    }
    let mut signatures = if m.default_signatures {
        default_signatures()
    } else {
        Vec::new()
    };
    for (i, s) in m.signatures.iter().enumerate() {
        let f = |k: &str| format!("mark.signatures[{i}].{k}");
        signatures.push(Signature {
            port: s.port,
            proto: s
                .proto
                .as_ref()
                .map(proto)
                .transpose()
                .map_err(|x| e(f("proto"), x))?,
            app_class: app_class(&s.app).map_err(|x| e(f("app"), x))?,
            priority: prio(s.priority).map_err(|x| e(f("priority"), x))?,
        });
    }
    if let Some(a) = &m.active {
        for (i, d) in a.iter().enumerate() {
            if *d > crate::steering::MAX_DEST_ID {
                return Err(e(
                    format!("mark.active[{i}]"),
                    format!("{d} is above {}", crate::steering::MAX_DEST_ID),
                ));
            }
        }
    }
    if !(16..=1 << 24).contains(&m.flows) {
        return Err(e(
            "mark.flows".into(),
            format!("{} is outside 16..=16777216", m.flows),
        ));
    }
    if m.mtu != 0 && m.mtu < 68 + super::STEERING_HEADER_LEN as u16 {
        return Err(e(
            "mark.mtu".into(),
            format!("{} is below 100 (or 0: no check)", m.mtu),
        ));
    }
    if m.spi >= 1 << 24 {
        return Err(e(
            "mark.spi".into(),
            format!("{} does not fit 24 bits", m.spi),
        ));
    }
    if m.follow_steering && m.epoch_from.is_none() {
        return Err(e(
            "mark.follow_steering".into(),
            "needs mark.epoch_from (the running steerd's ctl socket)".into(),
        ));
    }
    if m.follow_steering && m.active.is_some() {
        return Err(e(
            "mark.active".into(),
            "not used with mark.follow_steering (the predicted set is steerd's steering table); remove one".into(),
        ));
    }
    if m.epoch_from.is_some() && m.epoch_poll_ms == 0 {
        return Err(e("mark.epoch_poll_ms".into(), "must be above 0".into()));
    }
    if m.idle_us > 100_000 {
        return Err(e("mark.idle_us".into(), "at most 100000 (0.1 s)".into()));
    }
    check_threads(
        m.threads,
        m.cores.as_deref(),
        &format!("{} thread(s)", m.threads),
    )
    .map_err(|(f, msg)| e(f.into(), msg))?;
    let mc = MarkerConfig {
        rules,
        signatures,
        destinations,
        keys: SteeringKeys {
            current: key,
            previous,
        },
        epoch: m.epoch.unwrap_or(cfg.steering.epoch),
        active: m.active.clone(),
        flow_capacity: m.flows,
        mtu: m.mtu,
        spi: m.spi,
        si: m.si,
        default_app: m
            .default_app
            .as_ref()
            .map(app_class)
            .transpose()
            .map_err(|x| e("mark.default_app".into(), x))?
            .unwrap_or(app::UNKNOWN),
        default_priority: prio(m.default_priority)
            .map_err(|x| e("mark.default_priority".into(), x))?,
    };
    // The same checks the library does (nothing should be left for it to refuse).
    super::Marker::new(mc.clone()).map_err(|x| e("mark".into(), x))?;
    Ok(Some(mc))
}
