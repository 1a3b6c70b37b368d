//! The RAM's view of the network (`[ram]` in the config): sites in a hierarchy
//! region → zone → data center, transit routers, links with latency, cost and capacity,
//! and which data center serves each steering destination.
//!
//! Cold: parsed and validated once; [`Topology::build`] turns the config into index-based
//! tables the path computation and the capacity planner work on.

use std::collections::HashMap;

use serde::Deserialize;

use crate::safe::tx::MAX_PRIORITY;

/// Name of the node that stands for this appliance (where paths start).
pub const EDGE: &str = "edge";

/// How the RAM provisions capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RamMode {
    /// Act on the TPE's forecasts `lead_s` ahead (with the measured rate as a floor).
    #[default]
    Predictive,
    /// Scale when measured utilization crosses `up_threshold` / `down_threshold`.
    Reactive,
    /// Provision every data center for the peak seen in the history, all the time.
    Static,
}

impl RamMode {
    /// Name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            RamMode::Predictive => "predictive",
            RamMode::Reactive => "reactive",
            RamMode::Static => "static",
        }
    }

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "predictive" => Ok(RamMode::Predictive),
            "reactive" => Ok(RamMode::Reactive),
            "static" => Ok(RamMode::Static),
            _ => Err(format!(
                "unknown RAM mode {s:?} (predictive, reactive or static)"
            )),
        }
    }
}

/// A region: the top of the hierarchy, with a worker budget for everything below it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    /// Unique name.
    pub name: String,
    /// Most workers active at once in the region's data centers.
    pub budget: u32,
}

/// A zone of a region, with its own worker budget.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// Unique name.
    pub name: String,
    /// Region it belongs to.
    pub region: String,
    /// Most workers active at once in the zone's data centers.
    pub budget: u32,
}

/// A data center: forwarding engines (a pool of workers) serving destinations.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// Unique node name.
    pub name: String,
    /// Zone it belongs to.
    pub zone: String,
    /// Workers installed (the most that can be awake).
    pub max_workers: u32,
}

/// A link between two nodes (both directions).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// One end (`edge`, a router or a site).
    pub a: String,
    /// Other end.
    pub b: String,
    /// One-way latency in microseconds.
    pub latency_us: f64,
    /// Cost per unit of traffic (any unit, compared with `cost_weight`).
    #[serde(default)]
    pub cost: f64,
    /// Packets per second the link carries (logical seconds of the scenario).
    pub capacity_pps: f64,
    /// For links from `edge`: the `[[next_hops]]` entry steered traffic takes onto it.
    pub next_hop: Option<String>,
}

/// Which data center serves a steering destination.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RamDestConfig {
    /// Steering destination id (as in headers and telemetry).
    pub id: u16,
    /// The data center.
    pub site: String,
    /// Highest transmit class (0..=3) of this destination's steered traffic: the cap
    /// its steering entry puts on the header's priority, as `max_priority` does in
    /// `[[steering.destinations]]`. Default 3 (the header's priority stands).
    #[serde(default)]
    pub max_priority: Option<u8>,
}

/// The `[ram]` section: the Resource Allocation Manager's settings and topology.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RamConfig {
    /// Default mode (`--ram` overrides it).
    pub mode: RamMode,
    /// How far ahead predictive mode provisions (logical seconds).
    pub lead_s: f64,
    /// How long a parked worker takes to carry traffic once woken (logical seconds).
    pub wake_s: f64,
    /// Demand must stay below the provisioned level this long before capacity or a
    /// steering entry is released (hysteresis, logical seconds).
    pub release_hold_s: f64,
    /// Predictive: the hold before releasing capacity while no announced event is
    /// running or due (its forecast already covers `lead_s`, so it needs less
    /// hysteresis than the reactive rule). Default: `release_hold_s`.
    pub predictive_release_hold_s: Option<f64>,
    /// Predictive: capacity per unit of expected demand at a data center while an
    /// announced event runs or is due there (the calendar's event hold). Traffic under
    /// an event is higher and, in absolute terms, burstier than usual. Default:
    /// `headroom`.
    pub event_headroom: Option<f64>,
    /// Predictive: extrapolate a rising measured rate over the wake time (the trend over
    /// `measure_s`), so a surge nobody forecast is provisioned for where it will be
    /// when the woken workers are ready, not where it was.
    pub nowcast: bool,
    /// Capacity provisioned per unit of expected demand (1.25 = 25 % headroom).
    pub headroom: f64,
    /// Packets per logical second one worker serves.
    pub worker_pps: f64,
    /// Packets a data center's queue holds before it drops.
    pub queue_packets: u64,
    /// Workers every data center keeps awake.
    pub min_workers: u32,
    /// Reactive: scale up when measured utilization exceeds this.
    pub up_threshold: f64,
    /// Reactive: scale down when measured utilization stays below this.
    pub down_threshold: f64,
    /// Window of the measured rate (logical seconds).
    pub measure_s: f64,
    /// Destinations expected below this rate (packets per logical second) get no
    /// steering entry (they take LPM routing).
    pub steer_min_pps: f64,
    /// Path weight per microsecond of latency.
    pub latency_weight: f64,
    /// Path weight per unit of link cost.
    pub cost_weight: f64,
    /// Path weight of congestion: `weight × latency × u / (1 - u)` at utilization `u`.
    pub congestion_weight: f64,
    /// Predictive: safety margin in units of the forecast's recent mean absolute error
    /// (capacity for `forecast + margin × MAE`, per destination).
    pub forecast_error_margin: f64,
    /// Real packets generated per scenario packet in `steerd run --scenario`.
    pub packet_scale: f64,
    /// Run the RAM inside `steerd run` (the `steerd-ram` thread): it owns the steering
    /// table and puts steerd's own workers in standby. Off: the `[ram]` section is only
    /// used by scenario runs.
    pub live: bool,
    /// Live RAM: control tick (wall milliseconds).
    pub tick_ms: u64,
    /// Live RAM: longest park of a worker in standby (µs), also when
    /// `general.idle_park_us` is 0.
    pub standby_park_us: u64,
    /// Live RAM: how often the carriers of the ports its links follow are read (wall
    /// ms; at most `tick_ms`). A kernel link notification also has them read at once;
    /// for DPDK ports and late notifications this is the longest a failed link keeps
    /// steered traffic.
    pub link_poll_ms: u64,
    /// Live RAM: a link whose carrier returns is used again only after it has stayed
    /// up this long (wall ms; 0 = at once), so a flapping link does not pull steered
    /// traffic back and forth. Operator changes (`ctl ram link up`) apply at once.
    pub link_up_hold_ms: u64,
    /// Live RAM: packets per (wall) second one of steerd's own workers serves, for the
    /// number of workers kept active (default: `worker_pps`).
    pub local_worker_pps: Option<f64>,
    /// Live RAM: set the transmit class weights (`tx_weights`) of the ports its steering
    /// next hops leave on, in proportion to the demand it expects per class there (the
    /// forecast over the lead time in predictive mode), raised at once and lowered
    /// after the release hold. The RAM then owns those ports' `tx_weights`.
    pub set_tx_weights: bool,
    /// Live RAM with `set_tx_weights`: the weight (per mille of the port, 1..=1000) of
    /// a class it expects little or no traffic in, so no class is shut out.
    pub tx_weight_floor: u16,
    /// Regions.
    pub regions: Vec<RegionConfig>,
    /// Zones.
    pub zones: Vec<ZoneConfig>,
    /// Data centers.
    pub sites: Vec<SiteConfig>,
    /// Transit routers (node names).
    pub routers: Vec<String>,
    /// Links.
    pub links: Vec<LinkConfig>,
    /// Destination → data center.
    pub destinations: Vec<RamDestConfig>,
}

impl Default for RamConfig {
    fn default() -> Self {
        RamConfig {
            mode: RamMode::Predictive,
            lead_s: 300.0,
            wake_s: 30.0,
            release_hold_s: 300.0,
            predictive_release_hold_s: None,
            event_headroom: None,
            nowcast: true,
            headroom: 1.25,
            worker_pps: 100.0,
            queue_packets: 200,
            min_workers: 1,
            up_threshold: 0.8,
            down_threshold: 0.4,
            measure_s: 10.0,
            steer_min_pps: 1.0,
            latency_weight: 1.0,
            cost_weight: 10.0,
            congestion_weight: 4.0,
            forecast_error_margin: 2.0,
            packet_scale: 1.0,
            live: false,
            tick_ms: 1000,
            standby_park_us: 1000,
            link_poll_ms: 100,
            link_up_hold_ms: 0,
            local_worker_pps: None,
            set_tx_weights: false,
            tx_weight_floor: 50,
            regions: Vec::new(),
            zones: Vec::new(),
            sites: Vec::new(),
            routers: Vec::new(),
            links: Vec::new(),
            destinations: Vec::new(),
        }
    }
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// This appliance.
    Edge,
    /// A transit router.
    Router,
    /// A data center (index into [`Topology::sites`]).
    Site(usize),
}

/// A link of the built topology.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// Node indices of the two ends.
    pub ends: [usize; 2],
    /// One-way latency (µs).
    pub latency_us: f64,
    /// Cost.
    pub cost: f64,
    /// Capacity (packets per logical second).
    pub capacity_pps: f64,
    /// Name of the edge next hop onto this link (links from the edge only).
    pub next_hop: Option<String>,
}

impl Link {
    /// The end that is not `n`.
    pub fn other(&self, n: usize) -> usize {
        if self.ends[0] == n {
            self.ends[1]
        } else {
            self.ends[0]
        }
    }
}

/// A data center of the built topology.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// Name.
    pub name: String,
    /// Node index.
    pub node: usize,
    /// Zone index.
    pub zone: usize,
    /// Workers installed.
    pub max_workers: u32,
}

/// The validated topology, index-based.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// Node names (index 0 is the edge).
    pub nodes: Vec<(String, NodeKind)>,
    /// Links.
    pub links: Vec<Link>,
    /// Per node: the links touching it.
    pub adj: Vec<Vec<usize>>,
    /// Data centers.
    pub sites: Vec<Site>,
    /// Zones: (name, region index, budget).
    pub zones: Vec<(String, usize, u32)>,
    /// Regions: (name, budget).
    pub regions: Vec<(String, u32)>,
    /// Site index per destination id (None: not served by any site).
    pub dest_site: Vec<Option<usize>>,
    /// Highest transmit class per destination id (`max_priority`, default 3).
    pub dest_priority: Vec<u8>,
}

/// Indices of the links whose ends, by name, are `a` and `b` (either order).
pub fn links_between<'n>(
    ends: impl IntoIterator<Item = (&'n str, &'n str)>,
    a: &str,
    b: &str,
) -> Vec<usize> {
    ends.into_iter()
        .enumerate()
        .filter(|(_, (x, y))| (*x == a && *y == b) || (*x == b && *y == a))
        .map(|(i, _)| i)
        .collect()
}

/// A topology error: the config field and what is wrong with it.
pub type FieldError = (String, String);

fn err(field: String, msg: impl Into<String>) -> FieldError {
    (field, msg.into())
}

impl Topology {
    /// Validates `[ram]` and builds the topology. Errors name the field (`ram.links[3].b`).
    pub fn build(c: &RamConfig) -> Result<Topology, FieldError> {
        let pos = |f: &str, v: f64| -> Result<(), FieldError> {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(err(
                    format!("ram.{f}"),
                    format!("{v} must be a positive number"),
                ))
            }
        };
        let nonneg = |f: &str, v: f64| -> Result<(), FieldError> {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(err(format!("ram.{f}"), format!("{v} must be ≥ 0")))
            }
        };
        pos("worker_pps", c.worker_pps)?;
        pos("packet_scale", c.packet_scale)?;
        pos("measure_s", c.measure_s)?;
        nonneg("lead_s", c.lead_s)?;
        nonneg("wake_s", c.wake_s)?;
        nonneg("release_hold_s", c.release_hold_s)?;
        if let Some(h) = c.predictive_release_hold_s {
            nonneg("predictive_release_hold_s", h)?;
        }
        nonneg("steer_min_pps", c.steer_min_pps)?;
        nonneg("latency_weight", c.latency_weight)?;
        nonneg("cost_weight", c.cost_weight)?;
        nonneg("congestion_weight", c.congestion_weight)?;
        nonneg("forecast_error_margin", c.forecast_error_margin)?;
        if !(c.headroom.is_finite() && c.headroom >= 1.0) {
            return Err(err(
                "ram.headroom".into(),
                format!("{} must be ≥ 1", c.headroom),
            ));
        }
        if let Some(h) = c.event_headroom
            && !(h.is_finite() && h >= 1.0)
        {
            return Err(err("ram.event_headroom".into(), format!("{h} must be ≥ 1")));
        }
        if !(c.up_threshold > 0.0 && c.up_threshold <= 1.0) {
            return Err(err(
                "ram.up_threshold".into(),
                format!("{} must be within (0, 1]", c.up_threshold),
            ));
        }
        if !(c.down_threshold >= 0.0 && c.down_threshold < c.up_threshold) {
            return Err(err(
                "ram.down_threshold".into(),
                format!("{} must be within [0, up_threshold)", c.down_threshold),
            ));
        }
        if c.tick_ms == 0 {
            return Err(err("ram.tick_ms".into(), "must be at least 1"));
        }
        if c.tick_ms > 3_600_000 {
            return Err(err(
                "ram.tick_ms".into(),
                format!("{} is more than an hour", c.tick_ms),
            ));
        }
        if !(1..=1_000_000).contains(&c.standby_park_us) {
            return Err(err(
                "ram.standby_park_us".into(),
                format!("{} must be within 1..=1000000", c.standby_park_us),
            ));
        }
        if !(1..=60_000).contains(&c.link_poll_ms) {
            return Err(err(
                "ram.link_poll_ms".into(),
                format!("{} must be within 1..=60000", c.link_poll_ms),
            ));
        }
        if c.link_up_hold_ms > 3_600_000 {
            return Err(err(
                "ram.link_up_hold_ms".into(),
                format!("{} is more than an hour", c.link_up_hold_ms),
            ));
        }
        if let Some(v) = c.local_worker_pps {
            pos("local_worker_pps", v)?;
        }
        if c.queue_packets == 0 {
            return Err(err("ram.queue_packets".into(), "must be at least 1"));
        }
        if c.sites.is_empty() {
            return Err(err(
                "ram.sites".into(),
                "the RAM needs at least one data center",
            ));
        }
        let mut regions = Vec::new();
        let mut region_idx = HashMap::new();
        for (i, r) in c.regions.iter().enumerate() {
            if region_idx.insert(r.name.clone(), i).is_some() {
                return Err(err(
                    format!("ram.regions[{i}].name"),
                    format!("{:?} is given twice", r.name),
                ));
            }
            regions.push((r.name.clone(), r.budget));
        }
        let mut zones = Vec::new();
        let mut zone_idx = HashMap::new();
        for (i, z) in c.zones.iter().enumerate() {
            let Some(&r) = region_idx.get(&z.region) else {
                return Err(err(
                    format!("ram.zones[{i}].region"),
                    format!("no region {:?}", z.region),
                ));
            };
            if zone_idx.insert(z.name.clone(), i).is_some() {
                return Err(err(
                    format!("ram.zones[{i}].name"),
                    format!("{:?} is given twice", z.name),
                ));
            }
            zones.push((z.name.clone(), r, z.budget));
        }
        let mut nodes: Vec<(String, NodeKind)> = vec![(EDGE.to_string(), NodeKind::Edge)];
        let mut node_idx: HashMap<String, usize> = HashMap::new();
        node_idx.insert(EDGE.to_string(), 0);
        for (i, r) in c.routers.iter().enumerate() {
            if node_idx.insert(r.clone(), nodes.len()).is_some() {
                return Err(err(
                    format!("ram.routers[{i}]"),
                    format!("node name {r:?} is used twice"),
                ));
            }
            nodes.push((r.clone(), NodeKind::Router));
        }
        let mut sites = Vec::new();
        for (i, s) in c.sites.iter().enumerate() {
            let Some(&z) = zone_idx.get(&s.zone) else {
                return Err(err(
                    format!("ram.sites[{i}].zone"),
                    format!("no zone {:?}", s.zone),
                ));
            };
            if s.max_workers == 0 {
                return Err(err(
                    format!("ram.sites[{i}].max_workers"),
                    "must be at least 1",
                ));
            }
            if s.max_workers < c.min_workers {
                return Err(err(
                    format!("ram.sites[{i}].max_workers"),
                    format!(
                        "{} is below ram.min_workers ({})",
                        s.max_workers, c.min_workers
                    ),
                ));
            }
            if node_idx.insert(s.name.clone(), nodes.len()).is_some() {
                return Err(err(
                    format!("ram.sites[{i}].name"),
                    format!("node name {:?} is used twice", s.name),
                ));
            }
            sites.push(Site {
                name: s.name.clone(),
                node: nodes.len(),
                zone: z,
                max_workers: s.max_workers,
            });
            nodes.push((s.name.clone(), NodeKind::Site(sites.len() - 1)));
        }
        let mut links = Vec::new();
        let mut adj = vec![Vec::new(); nodes.len()];
        for (i, l) in c.links.iter().enumerate() {
            let f = |k: &str| format!("ram.links[{i}].{k}");
            let a = *node_idx
                .get(&l.a)
                .ok_or_else(|| err(f("a"), format!("no node {:?}", l.a)))?;
            let b = *node_idx
                .get(&l.b)
                .ok_or_else(|| err(f("b"), format!("no node {:?}", l.b)))?;
            if a == b {
                return Err(err(f("b"), "a link joins two different nodes"));
            }
            if !(l.latency_us.is_finite() && l.latency_us >= 0.0) {
                return Err(err(
                    f("latency_us"),
                    format!("{} must be ≥ 0", l.latency_us),
                ));
            }
            if !(l.cost.is_finite() && l.cost >= 0.0) {
                return Err(err(f("cost"), format!("{} must be ≥ 0", l.cost)));
            }
            if !(l.capacity_pps.is_finite() && l.capacity_pps > 0.0) {
                return Err(err(
                    f("capacity_pps"),
                    format!("{} must be positive", l.capacity_pps),
                ));
            }
            let touches_edge = a == 0 || b == 0;
            match (&l.next_hop, touches_edge) {
                (None, true) => {
                    return Err(err(
                        f("next_hop"),
                        "a link from the edge names the next hop steered traffic takes",
                    ));
                }
                (Some(_), false) => {
                    return Err(err(
                        f("next_hop"),
                        "only links from the edge have a next hop",
                    ));
                }
                _ => {}
            }
            adj[a].push(links.len());
            adj[b].push(links.len());
            links.push(Link {
                ends: [a, b],
                latency_us: l.latency_us,
                cost: l.cost,
                capacity_pps: l.capacity_pps,
                next_hop: l.next_hop.clone(),
            });
        }
        if !(1..=1000).contains(&c.tx_weight_floor) {
            return Err(err(
                "ram.tx_weight_floor".into(),
                format!("{} is outside 1..=1000", c.tx_weight_floor),
            ));
        }
        let mut dest_site: Vec<Option<usize>> = Vec::new();
        let mut dest_priority: Vec<u8> = Vec::new();
        for (i, d) in c.destinations.iter().enumerate() {
            let Some(s) = sites.iter().position(|s| s.name == d.site) else {
                return Err(err(
                    format!("ram.destinations[{i}].site"),
                    format!("no site {:?}", d.site),
                ));
            };
            let id = d.id as usize;
            if dest_site.len() <= id {
                dest_site.resize(id + 1, None);
            }
            if dest_site[id].is_some() {
                return Err(err(
                    format!("ram.destinations[{i}].id"),
                    format!("destination {id} is given twice"),
                ));
            }
            dest_site[id] = Some(s);
            let prio = d.max_priority.unwrap_or(MAX_PRIORITY);
            if prio > MAX_PRIORITY {
                return Err(err(
                    format!("ram.destinations[{i}].max_priority"),
                    format!("{prio} is outside 0..={MAX_PRIORITY}"),
                ));
            }
            dest_priority.resize(dest_site.len(), MAX_PRIORITY);
            dest_priority[id] = prio;
        }
        dest_priority.resize(dest_site.len(), MAX_PRIORITY);
        let t = Topology {
            nodes,
            links,
            adj,
            sites,
            zones,
            regions,
            dest_site,
            dest_priority,
        };
        // Every site must be reachable from the edge.
        let reach = t.reachable(0);
        for (i, s) in t.sites.iter().enumerate() {
            if !reach[s.node] {
                return Err(err(
                    format!("ram.sites[{i}]"),
                    format!(
                        "{:?} cannot be reached from the edge over ram.links",
                        s.name
                    ),
                ));
            }
        }
        Ok(t)
    }

    fn reachable(&self, from: usize) -> Vec<bool> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![from];
        seen[from] = true;
        while let Some(n) = stack.pop() {
            for &l in &self.adj[n] {
                let o = self.links[l].other(n);
                if !seen[o] {
                    seen[o] = true;
                    stack.push(o);
                }
            }
        }
        seen
    }

    /// Indices of the links between the nodes named `a` and `b` (either order; there
    /// can be parallel links).
    pub fn links_between(&self, a: &str, b: &str) -> Vec<usize> {
        links_between(
            self.links.iter().map(|k| {
                (
                    self.nodes[k.ends[0]].0.as_str(),
                    self.nodes[k.ends[1]].0.as_str(),
                )
            }),
            a,
            b,
        )
    }

    /// Site serving destination `d`.
    pub fn site_of(&self, d: usize) -> Option<usize> {
        self.dest_site.get(d).copied().flatten()
    }

    /// Packets per second one of steerd's own workers serves (live RAM).
    pub fn local_worker_pps(c: &RamConfig) -> f64 {
        c.local_worker_pps.unwrap_or(c.worker_pps)
    }

    /// Highest transmit class of destination `d`'s steered traffic.
    pub fn priority_of(&self, d: usize) -> u8 {
        self.dest_priority.get(d).copied().unwrap_or(MAX_PRIORITY)
    }

    /// Destinations served by a site.
    pub fn destinations_served(&self) -> usize {
        self.dest_site.iter().filter(|s| s.is_some()).count()
    }

    /// Number of destination ids (highest id + 1).
    pub fn n_dest(&self) -> usize {
        self.dest_site.len()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small two-region topology used by the RAM tests.
    pub fn small() -> RamConfig {
        let text = r#"
worker_pps = 100
routers = ["r1", "r2"]
[[regions]]
name = "eu"
budget = 20
[[zones]]
name = "eu-w"
region = "eu"
budget = 12
[[sites]]
name = "fra"
zone = "eu-w"
max_workers = 8
[[sites]]
name = "ams"
zone = "eu-w"
max_workers = 8
[[links]]
a = "edge"
b = "r1"
latency_us = 100
capacity_pps = 1000
next_hop = "via-r1"
[[links]]
a = "edge"
b = "r2"
latency_us = 300
cost = 1
capacity_pps = 5000
next_hop = "via-r2"
[[links]]
a = "r1"
b = "fra"
latency_us = 100
capacity_pps = 5000
[[links]]
a = "r2"
b = "fra"
latency_us = 100
capacity_pps = 5000
[[links]]
a = "r2"
b = "ams"
latency_us = 200
capacity_pps = 5000
[[destinations]]
id = 0
site = "fra"
[[destinations]]
id = 1
site = "ams"
"#;
        toml::from_str(text).unwrap()
    }

    #[test]
    fn links_between_finds_either_order_and_parallel_links() {
        let t = Topology::build(&small()).unwrap();
        assert_eq!(t.links_between("fra", "r1"), vec![2]);
        assert_eq!(t.links_between("edge", "fra"), Vec::<usize>::new());
        let ends = [("a", "b"), ("b", "c"), ("b", "a")];
        assert_eq!(links_between(ends, "a", "b"), vec![0, 2]);
    }

    #[test]
    fn builds_and_indexes() {
        let t = Topology::build(&small()).unwrap();
        assert_eq!(t.nodes[0].0, EDGE);
        assert_eq!(t.sites.len(), 2);
        assert_eq!(t.site_of(1), Some(1));
        assert_eq!(t.site_of(7), None);
        assert_eq!(t.adj[0].len(), 2);
        // The destinations' classes: the header's priority stands unless capped.
        assert_eq!(
            (t.priority_of(0), t.priority_of(1), t.priority_of(7)),
            (3, 3, 3)
        );
        let mut c = small();
        c.destinations[1].max_priority = Some(1);
        let t = Topology::build(&c).unwrap();
        assert_eq!((t.priority_of(0), t.priority_of(1)), (3, 1));
    }

    #[test]
    fn errors_name_the_field() {
        let mut c = small();
        c.links[2].b = "nowhere".into();
        assert_eq!(Topology::build(&c).unwrap_err().0, "ram.links[2].b");
        let mut c = small();
        c.links[0].next_hop = None;
        assert_eq!(Topology::build(&c).unwrap_err().0, "ram.links[0].next_hop");
        let mut c = small();
        c.links.retain(|l| l.b != "ams");
        let e = Topology::build(&c).unwrap_err();
        assert_eq!(e.0, "ram.sites[1]");
        assert!(e.1.contains("cannot be reached"), "{}", e.1);
        let mut c = small();
        c.destinations[1].id = 0;
        assert_eq!(Topology::build(&c).unwrap_err().0, "ram.destinations[1].id");
        let mut c = small();
        c.destinations[1].max_priority = Some(4);
        let e = Topology::build(&c).unwrap_err();
        assert_eq!(e.0, "ram.destinations[1].max_priority");
        assert!(e.1.contains("outside 0..=3"), "{}", e.1);
        let mut c = small();
        c.tx_weight_floor = 0;
        assert_eq!(Topology::build(&c).unwrap_err().0, "ram.tx_weight_floor");
        let mut c = small();
        c.headroom = 0.5;
        assert_eq!(Topology::build(&c).unwrap_err().0, "ram.headroom");
        let mut c = small();
        c.down_threshold = 0.9;
        assert_eq!(Topology::build(&c).unwrap_err().0, "ram.down_threshold");
        let mut c = small();
        c.tick_ms = 0;
        let e = Topology::build(&c).unwrap_err();
        assert_eq!(e.0, "ram.tick_ms");
        let mut c = small();
        c.standby_park_us = 0;
        assert_eq!(Topology::build(&c).unwrap_err().0, "ram.standby_park_us");
        for bad in [0, 60_001] {
            let mut c = small();
            c.link_poll_ms = bad;
            assert_eq!(Topology::build(&c).unwrap_err().0, "ram.link_poll_ms");
        }
        let mut c = small();
        c.link_up_hold_ms = 3_600_001;
        assert_eq!(Topology::build(&c).unwrap_err().0, "ram.link_up_hold_ms");
        let mut c = small();
        c.local_worker_pps = Some(-1.0);
        assert_eq!(Topology::build(&c).unwrap_err().0, "ram.local_worker_pps");
        let mut c = small();
        c.predictive_release_hold_s = Some(f64::NAN);
        assert_eq!(
            Topology::build(&c).unwrap_err().0,
            "ram.predictive_release_hold_s"
        );
        let mut c = small();
        c.event_headroom = Some(0.9);
        assert_eq!(Topology::build(&c).unwrap_err().0, "ram.event_headroom");
        assert!(
            RamMode::parse("psychic")
                .unwrap_err()
                .contains("predictive")
        );
    }
}
