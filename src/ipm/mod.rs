//! IPM, the Intelligent Packet Marker: classifies flows at the edge and inserts the
//! steering header (NSH MD type 2 with steerd's TLV and its authentication tag) that a
//! SAFE on a trusted port uses to skip the routing lookup.
//!
//! **Hot**: [`Marker::mark`] runs per packet on the marker's worker. After
//! [`Marker::new`] nothing allocates: the flow table, the active-destination bitmap and
//! the per-destination counters are sized at start. **Cold**: building a [`Marker`]
//! from a [`MarkerConfig`] (or from a `[mark]` config section, [`config`]).
//!
//! Per packet:
//!
//! ```text
//! classify (wire::classify, checked) ─► not IP / already NSH / malformed: pass unmarked
//!   └─► flow table (5-tuple → cached Decision; set-associative, clock eviction)
//!         miss: destination map (longest prefix → dest id)
//!               rules (first match: 5-tuple with optional prefixes/ports/protocol)
//!               port signatures (53 dns, 80/443 web, 5201 iperf, ...) → app, priority
//!   └─► decision excludes it / no destination: pass unmarked
//!   └─► destination not currently predicted (set_active): pass unmarked (not_predicted)
//!   └─► frame + 32 bytes over the MTU: pass unmarked (too_big)
//!   └─► insert the 32-byte header after L2 (EtherType 0x894F), tag under the current key
//! ```
//!
//! Every packet that is not marked passes **unmarked** (it is routed by LPM at the SAFE:
//! slower, but delivered) and is counted under an [`Unmarked`] reason. A frame that would
//! exceed the MTU with the header is passed unmarked rather than dropped: dropping it
//! would turn a missed optimisation into loss (and black-hole path-MTU discovery, since
//! the marker sends no ICMP); raising the MTU of the marker→SAFE link by 32 bytes makes
//! such frames markable.

pub mod config;
pub mod run;

use std::net::IpAddr;

use crate::port::Buf;
use crate::steering::{Key, MAX_DEST_ID, SteeringKeys, TagFields, compute_tag};
use crate::wire::ethernet::ethertype;
use crate::wire::ipv4::protocol;
use crate::wire::nsh::{self, STEERING_HEADER_LEN, SteeringRepr};
use crate::wire::{self, Classified, L3};

/// Application classes the marker assigns (the steering TLV's `app_class`; the SAFE's
/// telemetry keeps 16 classes, so classes are below 16).
pub mod app {
    /// Nothing matched.
    pub const UNKNOWN: u8 = 0;
    /// DNS (53).
    pub const DNS: u8 = 1;
    /// HTTP/HTTPS (80, 443, 8080, 8443).
    pub const WEB: u8 = 2;
    /// Bulk transfer / measurement (iperf3 5201, iperf 5001).
    pub const BULK: u8 = 3;
    /// Interactive (SSH 22, telnet 23).
    pub const INTERACTIVE: u8 = 4;
    /// NTP (123).
    pub const NTP: u8 = 5;
    /// ICMP and ICMPv6.
    pub const ICMP: u8 = 6;
    /// Real-time media (SIP 5060, RTP range by rule).
    pub const REALTIME: u8 = 7;
    /// Mail (25, 587, 993).
    pub const MAIL: u8 = 8;
    /// Classes are `0..COUNT`.
    pub const COUNT: u8 = 16;
    /// Names of the named classes (config files may use them instead of numbers).
    pub const NAMES: [(&str, u8); 9] = [
        ("unknown", UNKNOWN),
        ("dns", DNS),
        ("web", WEB),
        ("bulk", BULK),
        ("interactive", INTERACTIVE),
        ("ntp", NTP),
        ("icmp", ICMP),
        ("realtime", REALTIME),
        ("mail", MAIL),
    ];

    /// A class by name or number ("web", "2").
    pub fn parse(s: &str) -> Result<u8, String> {
        if let Some((_, v)) = NAMES.iter().find(|(n, _)| *n == s) {
            return Ok(*v);
        }
        match s.parse::<u8>() {
            Ok(v) if v < COUNT => Ok(v),
            _ => Err(format!(
                "\"{s}\" is not an application class (a number below {COUNT} or one of {})",
                NAMES.iter().map(|n| n.0).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// The name of a class ("app<N>" for unnamed ones).
    pub fn name(v: u8) -> String {
        NAMES
            .iter()
            .find(|(_, c)| *c == v)
            .map(|(n, _)| n.to_string())
            .unwrap_or_else(|| format!("app{v}"))
    }
}

/// Highest priority the marker writes (the SAFE's highest transmit class).
pub use crate::safe::tx::MAX_PRIORITY;

/// An IPv4 or IPv6 prefix. IPv4 addresses live in the low 32 bits of `addr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    /// Network address (host bits zero).
    pub addr: u128,
    /// Prefix length.
    pub len: u8,
    /// IPv6 (else IPv4).
    pub v6: bool,
}

impl Prefix {
    /// A prefix from an address and length (host bits are cleared).
    pub fn new(addr: IpAddr, len: u8) -> Result<Prefix, String> {
        let (a, v6, max) = match addr {
            IpAddr::V4(a) => (u128::from(u32::from(a)), false, 32),
            IpAddr::V6(a) => (u128::from(a), true, 128),
        };
        if len > max {
            return Err(format!("prefix length {len} is above {max}"));
        }
        let p = Prefix { addr: a, len, v6 };
        Ok(Prefix {
            addr: a & p.mask(),
            ..p
        })
    }

    /// Parses `ADDRESS/LENGTH` (or a bare address: a host prefix).
    pub fn parse(s: &str) -> Result<Prefix, String> {
        match s.split_once('/') {
            Some(_) => {
                let (a, l) = crate::config::parse_cidr(s)?;
                Prefix::new(a, l)
            }
            None => {
                let a: IpAddr = s
                    .trim()
                    .parse()
                    .map_err(|_| format!("\"{s}\" is not an IP address or prefix"))?;
                Prefix::new(a, if a.is_ipv4() { 32 } else { 128 })
            }
        }
    }

    #[inline]
    fn mask(&self) -> u128 {
        let bits = if self.v6 { 128 } else { 32 };
        if self.len == 0 {
            0
        } else {
            let all = if self.v6 {
                u128::MAX
            } else {
                u128::from(u32::MAX)
            };
            all & !((1u128 << (bits - u32::from(self.len))) - 1)
        }
    }

    /// True when `addr` (IPv4 in the low 32 bits when `!v6`) is inside.
    #[inline]
    pub fn contains(&self, v6: bool, addr: u128) -> bool {
        self.v6 == v6 && addr & self.mask() == self.addr
    }
}

/// An inclusive port range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// Lowest port.
    pub lo: u16,
    /// Highest port.
    pub hi: u16,
}

impl PortRange {
    /// One port.
    pub const fn one(p: u16) -> PortRange {
        PortRange { lo: p, hi: p }
    }

    /// Parses `80` or `5000-5999`.
    pub fn parse(s: &str) -> Result<PortRange, String> {
        let bad = || format!("\"{s}\" is not a port or a port range like 5000-5999");
        let (lo, hi) = match s.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (s.trim(), s.trim()),
        };
        let lo: u16 = lo.parse().map_err(|_| bad())?;
        let hi: u16 = hi.parse().map_err(|_| bad())?;
        if lo > hi {
            return Err(bad());
        }
        Ok(PortRange { lo, hi })
    }

    #[inline]
    fn contains(&self, p: u16) -> bool {
        self.lo <= p && p <= self.hi
    }
}

/// A classification rule: every given field must match; the first matching rule wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Source prefix.
    pub src: Option<Prefix>,
    /// Destination prefix.
    pub dst: Option<Prefix>,
    /// IP protocol (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...).
    pub proto: Option<u8>,
    /// Source ports (a packet without ports never matches a port condition).
    pub src_ports: Option<PortRange>,
    /// Destination ports.
    pub dst_ports: Option<PortRange>,
    /// Application class of matching flows.
    pub app_class: u8,
    /// Priority of matching flows (0..=3).
    pub priority: u8,
    /// False: matching flows are never marked (counted `excluded`).
    pub mark: bool,
    /// Steer matching flows to this destination instead of the destination map's.
    pub dest: Option<u32>,
}

impl Rule {
    /// A rule matching everything, class `app_class`, priority 0, marked.
    pub const fn any(app_class: u8) -> Rule {
        Rule {
            src: None,
            dst: None,
            proto: None,
            src_ports: None,
            dst_ports: None,
            app_class,
            priority: 0,
            mark: true,
            dest: None,
        }
    }

    #[inline]
    fn matches(&self, k: &FlowKey) -> bool {
        let ports = k.has_ports;
        self.src.is_none_or(|p| p.contains(k.v6, k.src))
            && self.dst.is_none_or(|p| p.contains(k.v6, k.dst))
            && self.proto.is_none_or(|p| p == k.proto)
            && self
                .src_ports
                .is_none_or(|r| ports && r.contains(k.src_port))
            && self
                .dst_ports
                .is_none_or(|r| ports && r.contains(k.dst_port))
    }
}

/// A port-based application signature: a flow whose server port (the destination port,
/// else the source port, for replies) is `port` gets `app_class` and `priority`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    /// Well-known port.
    pub port: u16,
    /// Only this protocol (None: TCP, UDP and SCTP alike).
    pub proto: Option<u8>,
    /// Application class.
    pub app_class: u8,
    /// Priority (0..=3).
    pub priority: u8,
}

/// The built-in signatures: 53 dns, 80/443/8080/8443 web, 5201/5001 bulk (iperf),
/// 22/23 interactive, 123 ntp, 5060 realtime (SIP), 25/587/993 mail.
pub fn default_signatures() -> Vec<Signature> {
    let s = |port, app_class, priority| Signature {
        port,
        proto: None,
        app_class,
        priority,
    };
    vec![
        s(53, app::DNS, 3),
        s(123, app::NTP, 3),
        s(22, app::INTERACTIVE, 2),
        s(23, app::INTERACTIVE, 2),
        s(5060, app::REALTIME, 3),
        s(80, app::WEB, 1),
        s(443, app::WEB, 1),
        s(8080, app::WEB, 1),
        s(8443, app::WEB, 1),
        s(25, app::MAIL, 0),
        s(587, app::MAIL, 0),
        s(993, app::MAIL, 0),
        s(5201, app::BULK, 0),
        s(5001, app::BULK, 0),
    ]
}

/// Everything a [`Marker`] is built from.
#[derive(Clone, Debug)]
pub struct MarkerConfig {
    /// Classification rules, first match wins (checked before signatures).
    pub rules: Vec<Rule>,
    /// Port signatures (later entries for the same port and protocol win).
    pub signatures: Vec<Signature>,
    /// Destination map: prefix → steering destination id (longest prefix wins).
    pub destinations: Vec<(Prefix, u32)>,
    /// Keys: headers are tagged with `current`; `previous` is kept for [`Marker::keys`]
    /// symmetry with the SAFE (a marker never tags with it).
    pub keys: SteeringKeys,
    /// Epoch written into headers until [`Marker::set_epoch`].
    pub epoch: u32,
    /// Destinations predicted at start (None: every destination of the map and rules).
    pub active: Option<Vec<u32>>,
    /// Flow table entries (rounded up to a power of two, at least 4).
    pub flow_capacity: usize,
    /// Largest L2 payload (NSH + IP packet) the link toward the SAFE carries; a frame
    /// that would exceed it with the header passes unmarked (`too_big`). 0: no check.
    pub mtu: u16,
    /// NSH service path id written into headers (24 bits).
    pub spi: u32,
    /// NSH service index written into headers.
    pub si: u8,
    /// Class and priority of flows no rule or signature matches.
    pub default_app: u8,
    /// See `default_app`.
    pub default_priority: u8,
}

impl MarkerConfig {
    /// A config with the built-in signatures, no rules, the given destinations and key,
    /// epoch 1, every destination active, 65,536 flows, MTU 1500, SPI 0, SI 255.
    pub fn new(destinations: Vec<(Prefix, u32)>, key: Key) -> MarkerConfig {
        MarkerConfig {
            rules: Vec::new(),
            signatures: default_signatures(),
            destinations,
            keys: SteeringKeys {
                current: key,
                previous: None,
            },
            epoch: 1,
            active: None,
            flow_capacity: 65_536,
            mtu: 1500,
            spi: 0,
            si: 255,
            default_app: app::UNKNOWN,
            default_priority: 0,
        }
    }
}

/// Explicit header contents, for [`Marker::mark_with`] (no classification).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkParams {
    /// Destination id.
    pub dest_id: u32,
    /// Application class.
    pub app_class: u8,
    /// Priority.
    pub priority: u8,
    /// Epoch.
    pub epoch: u32,
    /// NSH service path id (24 bits).
    pub spi: u32,
    /// NSH service index.
    pub si: u8,
}

impl MarkParams {
    /// Params with SPI 0 and SI 255 (what [`MarkerConfig::new`] uses).
    pub const fn new(dest_id: u32, app_class: u8, priority: u8, epoch: u32) -> MarkParams {
        MarkParams {
            dest_id,
            app_class,
            priority,
            epoch,
            spi: 0,
            si: 255,
        }
    }
}

/// Why a packet passed unmarked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Unmarked {
    /// Not IPv4 or IPv6 (ARP, LLDP, ...).
    NotIp = 0,
    /// Already carries an NSH header (never double-marked).
    AlreadyNsh,
    /// The frame does not parse (`wire::classify` rejected it): passed as it is, the
    /// SAFE counts its drop reason.
    Malformed,
    /// No destination prefix matches its destination address.
    NoDest,
    /// Its destination is not currently predicted ([`Marker::set_active`]).
    NotPredicted,
    /// A rule with `mark = false` matched.
    Excluded,
    /// Frame + 32 bytes would exceed the MTU.
    TooBig,
    /// The buffer has no 32 bytes of headroom (PktBufs from a pool always have).
    NoHeadroom,
}

impl Unmarked {
    /// Number of reasons.
    pub const COUNT: usize = 8;
    /// Every reason, in index order.
    pub const ALL: [Unmarked; Self::COUNT] = [
        Unmarked::NotIp,
        Unmarked::AlreadyNsh,
        Unmarked::Malformed,
        Unmarked::NoDest,
        Unmarked::NotPredicted,
        Unmarked::Excluded,
        Unmarked::TooBig,
        Unmarked::NoHeadroom,
    ];
    /// Stable snake_case name (JSON keys).
    pub const fn as_str(self) -> &'static str {
        match self {
            Unmarked::NotIp => "not_ip",
            Unmarked::AlreadyNsh => "already_nsh",
            Unmarked::Malformed => "malformed",
            Unmarked::NoDest => "no_dest",
            Unmarked::NotPredicted => "not_predicted",
            Unmarked::Excluded => "excluded",
            Unmarked::TooBig => "too_big",
            Unmarked::NoHeadroom => "no_headroom",
        }
    }
}

/// What [`Marker::mark`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Marked for this destination id.
    Marked(u32),
    /// Passed unchanged.
    Unmarked(Unmarked),
}

/// The classification of a flow (what the flow table caches).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Decision {
    /// Destination id (None: no prefix matched and no rule named one).
    pub dest: Option<u32>,
    /// Application class.
    pub app_class: u8,
    /// Priority.
    pub priority: u8,
    /// False when a rule excludes the flow from marking.
    pub mark: bool,
}

/// Counters of a marker (plain integers: one marker belongs to one thread).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MarkStats {
    /// Packets offered to `mark`/`mark_with`.
    pub packets: u64,
    /// Packets marked.
    pub marked: u64,
    /// Packets passed unmarked, by [`Unmarked`] index.
    pub unmarked: [u64; Unmarked::COUNT],
    /// Marked packets per destination id (index = id; sized at start for the ids the
    /// config names; others are counted only in `marked`).
    pub marked_by_dest: Vec<u64>,
    /// Flow table lookups that found the flow.
    pub flow_hits: u64,
    /// Lookups that had to classify.
    pub flow_misses: u64,
    /// Entries evicted to make room.
    pub flow_evictions: u64,
}

impl MarkStats {
    /// Unmarked packets of one reason.
    pub fn unmarked(&self, r: Unmarked) -> u64 {
        self.unmarked[r as usize]
    }
    /// All unmarked packets.
    pub fn unmarked_total(&self) -> u64 {
        self.unmarked.iter().sum()
    }

    /// Adds another marker's counters (several marker threads, one summary).
    pub fn add(&mut self, o: &MarkStats) {
        self.packets += o.packets;
        self.marked += o.marked;
        for (a, b) in self.unmarked.iter_mut().zip(&o.unmarked) {
            *a += b;
        }
        if self.marked_by_dest.len() < o.marked_by_dest.len() {
            self.marked_by_dest.resize(o.marked_by_dest.len(), 0);
        }
        for (a, b) in self.marked_by_dest.iter_mut().zip(&o.marked_by_dest) {
            *a += b;
        }
        self.flow_hits += o.flow_hits;
        self.flow_misses += o.flow_misses;
        self.flow_evictions += o.flow_evictions;
    }
}

/// The 5-tuple (plus family) a flow is keyed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct FlowKey {
    src: u128,
    dst: u128,
    src_port: u16,
    dst_port: u16,
    proto: u8,
    v6: bool,
    has_ports: bool,
}

impl FlowKey {
    fn of(k: &Classified) -> FlowKey {
        let v6 = matches!(k.l3, L3::Ipv6);
        let has_ports = k.l4_off != 0
            && matches!(k.proto, protocol::TCP | protocol::UDP | 132)
            && !k.is_fragment;
        FlowKey {
            src: if v6 { k.src_v6 } else { u128::from(k.src_v4) },
            dst: if v6 { k.dst_v6 } else { u128::from(k.dst_v4) },
            src_port: k.src_port,
            dst_port: k.dst_port,
            proto: k.proto,
            v6,
            has_ports,
        }
    }
}

#[derive(Clone, Copy, Default)]
struct FlowSlot {
    key: FlowKey,
    dec: Decision,
    used: bool,
    referenced: bool,
}

const FLOW_WAYS: usize = 4;

/// Fixed-capacity flow table: 4-way set-associative, second-chance (clock) eviction
/// within a set. Allocated once.
struct FlowTable {
    slots: Box<[FlowSlot]>,
    hands: Box<[u8]>,
    set_mask: usize,
}

impl FlowTable {
    fn new(capacity: usize) -> FlowTable {
        let sets = (capacity / FLOW_WAYS).max(1).next_power_of_two();
        FlowTable {
            slots: vec![FlowSlot::default(); sets * FLOW_WAYS].into_boxed_slice(),
            hands: vec![0u8; sets].into_boxed_slice(),
            set_mask: sets - 1,
        }
    }

    fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.used).count()
    }

    fn clear(&mut self) {
        for s in self.slots.iter_mut() {
            s.used = false;
        }
    }

    #[inline]
    fn get(&mut self, hash: u32, key: &FlowKey) -> Option<Decision> {
        let base = (hash as usize & self.set_mask) * FLOW_WAYS;
        for s in &mut self.slots[base..base + FLOW_WAYS] {
            if s.used && s.key == *key {
                s.referenced = true;
                return Some(s.dec);
            }
        }
        None
    }

    /// Inserts; returns true when an entry was evicted for it.
    #[inline]
    fn insert(&mut self, hash: u32, key: FlowKey, dec: Decision) -> bool {
        let set = hash as usize & self.set_mask;
        let base = set * FLOW_WAYS;
        let ways = &mut self.slots[base..base + FLOW_WAYS];
        let new = FlowSlot {
            key,
            dec,
            used: true,
            referenced: false,
        };
        if let Some(s) = ways.iter_mut().find(|s| !s.used) {
            *s = new;
            return false;
        }
        // Clock: skip (and clear) referenced entries, at most one full turn plus one.
        let hand = &mut self.hands[set];
        for _ in 0..=FLOW_WAYS {
            let w = *hand as usize % FLOW_WAYS;
            *hand = ((w + 1) % FLOW_WAYS) as u8;
            if ways[w].referenced {
                ways[w].referenced = false;
            } else {
                ways[w] = new;
                return true;
            }
        }
        let w = *hand as usize % FLOW_WAYS;
        ways[w] = new;
        true
    }
}

impl std::fmt::Debug for Marker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Marker")
            .field("rules", &self.rules.len())
            .field("destinations", &self.dests.len())
            .field("epoch", &self.epoch)
            .field("flow_capacity", &self.flows.capacity())
            .field("mtu", &self.mtu)
            .finish_non_exhaustive()
    }
}

/// The marker. One per thread (it holds plain counters and its own flow table).
pub struct Marker {
    rules: Vec<Rule>,
    /// (port, proto or 0 for any, app, priority), last definition per (port, proto) wins.
    signatures: Vec<(u16, u8, u8, u8)>,
    /// Destination map, longest prefix first.
    dests: Vec<(Prefix, u32)>,
    keys: SteeringKeys,
    epoch: u32,
    active: Box<[u64]>,
    flows: FlowTable,
    mtu: u16,
    spi: u32,
    si: u8,
    default_app: u8,
    default_priority: u8,
    stats: MarkStats,
}

const ACTIVE_WORDS: usize = (MAX_DEST_ID as usize + 1) / 64;

impl Marker {
    /// Builds a marker (cold; allocates everything it will use). Refuses destination ids
    /// above [`MAX_DEST_ID`], application classes ≥ 16 and priorities above 3.
    pub fn new(cfg: MarkerConfig) -> Result<Marker, String> {
        let check = |what: &str, app_class: u8, priority: u8| {
            if app_class >= app::COUNT {
                return Err(format!(
                    "{what}: application class {app_class} is not below {}",
                    app::COUNT
                ));
            }
            if priority > MAX_PRIORITY {
                return Err(format!(
                    "{what}: priority {priority} is above {MAX_PRIORITY}"
                ));
            }
            Ok(())
        };
        let check_dest = |what: &str, d: u32| {
            if d > MAX_DEST_ID {
                Err(format!("{what}: destination id {d} is above {MAX_DEST_ID}"))
            } else {
                Ok(())
            }
        };
        let mut max_dest = 0u32;
        for (i, r) in cfg.rules.iter().enumerate() {
            check(&format!("rule {i}"), r.app_class, r.priority)?;
            if let Some(d) = r.dest {
                check_dest(&format!("rule {i}"), d)?;
                max_dest = max_dest.max(d);
            }
        }
        for s in &cfg.signatures {
            check(&format!("signature {}", s.port), s.app_class, s.priority)?;
        }
        check("default", cfg.default_app, cfg.default_priority)?;
        for (_, d) in &cfg.destinations {
            check_dest("destination map", *d)?;
            max_dest = max_dest.max(*d);
        }
        let mut dests = cfg.destinations.clone();
        // Longest first; stable, so the first of two equal prefixes wins.
        dests.sort_by_key(|d| std::cmp::Reverse(d.0.len));
        let mut signatures: Vec<(u16, u8, u8, u8)> = Vec::new();
        for s in &cfg.signatures {
            let proto = s.proto.unwrap_or(0);
            signatures.retain(|x| !(x.0 == s.port && x.1 == proto));
            signatures.push((s.port, proto, s.app_class, s.priority));
        }
        let mut m = Marker {
            rules: cfg.rules.clone(),
            signatures,
            dests,
            keys: cfg.keys,
            epoch: cfg.epoch,
            active: vec![0u64; ACTIVE_WORDS].into_boxed_slice(),
            flows: FlowTable::new(cfg.flow_capacity.max(FLOW_WAYS)),
            mtu: cfg.mtu,
            spi: cfg.spi & 0x00ff_ffff,
            si: cfg.si,
            default_app: cfg.default_app,
            default_priority: cfg.default_priority,
            stats: MarkStats {
                marked_by_dest: vec![0; max_dest as usize + 1],
                ..MarkStats::default()
            },
        };
        match &cfg.active {
            Some(ids) => {
                for &d in ids {
                    check_dest("active", d)?;
                    m.activate(d);
                }
            }
            None => {
                let ids: Vec<u32> = cfg
                    .destinations
                    .iter()
                    .map(|d| d.1)
                    .chain(cfg.rules.iter().filter_map(|r| r.dest))
                    .collect();
                for d in ids {
                    m.activate(d);
                }
            }
        }
        Ok(m)
    }

    /// Sets the epoch written into new headers (the prediction epoch of the SAFE's
    /// steering table; a header older than its `max_epoch_age` is refused there).
    pub fn set_epoch(&mut self, epoch: u32) {
        self.epoch = epoch;
    }

    /// The epoch written into new headers.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Replaces the set of predicted (pre-positioned) destinations: packets for any
    /// other destination pass unmarked (`not_predicted`). Ids above [`MAX_DEST_ID`] are
    /// ignored. No allocation.
    pub fn set_active(&mut self, ids: &[u32]) {
        self.active.fill(0);
        for &d in ids {
            self.activate(d);
        }
    }

    /// Replaces the predicted set with a bitmap (bit `d % 64` of word `d / 64` set:
    /// `d` predicted; missing words are zero). No allocation.
    pub fn set_active_words(&mut self, words: &[u64]) {
        self.active.fill(0);
        for (a, w) in self.active.iter_mut().zip(words) {
            *a = *w;
        }
    }

    /// Marks `dest` as predicted.
    pub fn activate(&mut self, dest: u32) {
        if dest <= MAX_DEST_ID {
            self.active[dest as usize / 64] |= 1 << (dest % 64);
        }
    }

    /// Marks `dest` as not predicted.
    pub fn deactivate(&mut self, dest: u32) {
        if dest <= MAX_DEST_ID {
            self.active[dest as usize / 64] &= !(1 << (dest % 64));
        }
    }

    /// True when `dest` is predicted.
    #[inline]
    pub fn is_active(&self, dest: u32) -> bool {
        dest <= MAX_DEST_ID && self.active[dest as usize / 64] & (1 << (dest % 64)) != 0
    }

    /// Rotates the keys: `new` tags from now on, the old current key becomes the
    /// previous one (the SAFE must rotate too; it accepts current and previous).
    pub fn rotate(&mut self, new: Key) {
        self.keys.rotate(new);
    }

    /// Replaces both keys.
    pub fn set_keys(&mut self, keys: SteeringKeys) {
        self.keys = keys;
    }

    /// The keys.
    pub fn keys(&self) -> &SteeringKeys {
        &self.keys
    }

    /// The counters.
    pub fn stats(&self) -> &MarkStats {
        &self.stats
    }

    /// Flow table capacity (entries).
    pub fn flow_capacity(&self) -> usize {
        self.flows.capacity()
    }

    /// Flows in the table now (cold: walks the table).
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// Forgets every cached flow decision.
    pub fn clear_flows(&mut self) {
        self.flows.clear();
    }

    /// Classifies a flow without touching the flow table or counters (cold/test use):
    /// `None` for frames that are not markable IP.
    pub fn classify(&self, frame: &[u8]) -> Option<Decision> {
        let k = wire::classify_no_hash(frame).ok()?;
        if !matches!(k.l3, L3::Ipv4 | L3::Ipv6) || k.nsh_present {
            return None;
        }
        Some(self.decide(&FlowKey::of(&k)))
    }

    /// The destination the destination map gives an address (longest prefix).
    pub fn dest_of(&self, addr: IpAddr) -> Option<u32> {
        let (v6, a) = match addr {
            IpAddr::V4(a) => (false, u128::from(u32::from(a))),
            IpAddr::V6(a) => (true, u128::from(a)),
        };
        self.lookup_dest(v6, a)
    }

    #[inline]
    fn lookup_dest(&self, v6: bool, addr: u128) -> Option<u32> {
        self.dests
            .iter()
            .find(|(p, _)| p.contains(v6, addr))
            .map(|d| d.1)
    }

    fn decide(&self, k: &FlowKey) -> Decision {
        let dest = self.lookup_dest(k.v6, k.dst);
        if let Some(r) = self.rules.iter().find(|r| r.matches(k)) {
            return Decision {
                dest: r.dest.or(dest),
                app_class: r.app_class,
                priority: r.priority,
                mark: r.mark,
            };
        }
        let sig = |port: u16| {
            self.signatures
                .iter()
                .find(|s| s.0 == port && s.1 == k.proto)
                .or_else(|| self.signatures.iter().find(|s| s.0 == port && s.1 == 0))
        };
        let found = if k.has_ports {
            sig(k.dst_port).or_else(|| sig(k.src_port))
        } else {
            None
        };
        let (app_class, priority) = match found {
            Some(s) => (s.2, s.3),
            None if k.proto == protocol::ICMP || k.proto == wire::icmpv6::PROTOCOL => {
                (app::ICMP, self.default_priority)
            }
            None => (self.default_app, self.default_priority),
        };
        Decision {
            dest,
            app_class,
            priority,
            mark: true,
        }
    }

    #[inline]
    fn unmarked(&mut self, r: Unmarked) -> Outcome {
        self.stats.unmarked[r as usize] += 1;
        Outcome::Unmarked(r)
    }

    /// Classifies the frame and, when its flow's destination is predicted, inserts the
    /// steering header in place (the buffer's headroom takes the 32 bytes; the L2
    /// header moves to the front). Anything else passes unchanged, counted by reason.
    /// Never panics, never allocates.
    #[inline]
    pub fn mark<B: Buf>(&mut self, b: &mut B) -> Outcome {
        let (k, params) = match self.prepare(b.data()) {
            Ok(x) => x,
            Err(r) => return self.unmarked(r),
        };
        match self.insert_buf(b, &k, &params) {
            Ok(()) => self.marked(params.dest_id),
            Err(r) => self.unmarked(r),
        }
    }

    /// [`Marker::mark`] on a frame in a `Vec` (the bytes after L2 move up by 32; the
    /// `Vec` grows, which allocates only when its capacity is short by 32 bytes).
    pub fn mark_vec(&mut self, frame: &mut Vec<u8>) -> Outcome {
        let (k, params) = match self.prepare(frame) {
            Ok(x) => x,
            Err(r) => return self.unmarked(r),
        };
        match self.insert_vec(frame, &k, &params) {
            Ok(()) => self.marked(params.dest_id),
            Err(r) => self.unmarked(r),
        }
    }

    /// Inserts a header with exactly `p` (no classification, no flow table, no
    /// predicted-destination check; the MTU check applies), tagged under the current
    /// key. For simulations and tests that choose the destination themselves.
    #[inline]
    pub fn mark_with<B: Buf>(&mut self, b: &mut B, p: &MarkParams) -> Result<(), Unmarked> {
        self.stats.packets += 1;
        let r = self
            .parse_markable(b.data())
            .and_then(|k| self.insert_buf(b, &k, p));
        self.settle(r, p.dest_id)
    }

    /// [`Marker::mark_with`] on a frame in a `Vec`.
    pub fn mark_vec_with(&mut self, frame: &mut Vec<u8>, p: &MarkParams) -> Result<(), Unmarked> {
        self.stats.packets += 1;
        let r = self
            .parse_markable(frame)
            .and_then(|k| self.insert_vec(frame, &k, p));
        self.settle(r, p.dest_id)
    }

    /// Counts the result of an explicit marking as marked (for `dest`) or unmarked.
    #[inline]
    fn settle(&mut self, r: Result<(), Unmarked>, dest: u32) -> Result<(), Unmarked> {
        match r {
            Ok(()) => {
                self.marked(dest);
                Ok(())
            }
            Err(e) => {
                self.unmarked(e);
                Err(e)
            }
        }
    }

    #[inline]
    fn marked(&mut self, dest: u32) -> Outcome {
        self.stats.marked += 1;
        if let Some(c) = self.stats.marked_by_dest.get_mut(dest as usize) {
            *c += 1;
        }
        Outcome::Marked(dest)
    }

    #[inline]
    fn parse_markable(&self, d: &[u8]) -> Result<Classified, Unmarked> {
        let k = wire::classify(d).map_err(|_| Unmarked::Malformed)?;
        if k.nsh_present {
            return Err(Unmarked::AlreadyNsh);
        }
        if !matches!(k.l3, L3::Ipv4 | L3::Ipv6) {
            return Err(Unmarked::NotIp);
        }
        Ok(k)
    }

    /// Classify, flow table, decision, predicted check: what to write, or why not.
    #[inline]
    fn prepare(&mut self, d: &[u8]) -> Result<(Classified, MarkParams), Unmarked> {
        self.stats.packets += 1;
        let k = self.parse_markable(d)?;
        let key = FlowKey::of(&k);
        let dec = match self.flows.get(k.flow_hash, &key) {
            Some(dec) => {
                self.stats.flow_hits += 1;
                dec
            }
            None => {
                self.stats.flow_misses += 1;
                let dec = self.decide(&key);
                if self.flows.insert(k.flow_hash, key, dec) {
                    self.stats.flow_evictions += 1;
                }
                dec
            }
        };
        if !dec.mark {
            return Err(Unmarked::Excluded);
        }
        let dest = dec.dest.ok_or(Unmarked::NoDest)?;
        if !self.is_active(dest) {
            return Err(Unmarked::NotPredicted);
        }
        Ok((
            k,
            MarkParams {
                dest_id: dest,
                app_class: dec.app_class,
                priority: dec.priority,
                epoch: self.epoch,
                spi: self.spi,
                si: self.si,
            },
        ))
    }

    /// The 32 header bytes for packet `d` (classified as `k`) with `p`.
    #[inline]
    fn header(&self, d: &[u8], k: &Classified, p: &MarkParams) -> [u8; STEERING_HEADER_LEN] {
        let o = k.l3_off as usize;
        let (s, l, np) = match k.l3 {
            L3::Ipv4 => (o + 12, 4, nsh::next_protocol::IPV4),
            _ => (o + 8, 16, nsh::next_protocol::IPV6),
        };
        // classify() validated the IP header, so both addresses are inside `d`.
        let src = d.get(s..s + l).unwrap_or(&[]);
        let dst = d.get(s + l..s + 2 * l).unwrap_or(&[]);
        let f = TagFields {
            dest_id: p.dest_id,
            app_class: p.app_class,
            priority: p.priority,
            flags: 0,
            epoch: p.epoch,
            spi: p.spi & 0x00ff_ffff,
            si: p.si,
        };
        SteeringRepr {
            spi: f.spi,
            si: f.si,
            ttl: nsh::DEFAULT_TTL,
            next_protocol: np,
            dest_id: f.dest_id,
            app_class: f.app_class,
            priority: f.priority,
            flags: 0,
            epoch: f.epoch,
            tag: compute_tag(&self.keys.current, &f, src, dst),
        }
        .to_bytes()
    }

    #[inline]
    fn fits(&self, len: usize, l2: usize) -> bool {
        self.mtu == 0 || len - l2 + STEERING_HEADER_LEN <= usize::from(self.mtu)
    }

    #[inline]
    fn insert_buf<B: Buf>(
        &self,
        b: &mut B,
        k: &Classified,
        p: &MarkParams,
    ) -> Result<(), Unmarked> {
        let l2 = k.l2_len as usize;
        if !self.fits(b.len(), l2) {
            return Err(Unmarked::TooBig);
        }
        let hdr = self.header(b.data(), k, p);
        if l2 < 14 || !b.prepend(STEERING_HEADER_LEN) {
            return Err(Unmarked::NoHeadroom);
        }
        let d = b.data_mut();
        d.copy_within(STEERING_HEADER_LEN..STEERING_HEADER_LEN + l2, 0);
        d[l2 - 2..l2].copy_from_slice(&ethertype::NSH.to_be_bytes());
        d[l2..l2 + STEERING_HEADER_LEN].copy_from_slice(&hdr);
        Ok(())
    }

    fn insert_vec(&self, v: &mut Vec<u8>, k: &Classified, p: &MarkParams) -> Result<(), Unmarked> {
        let l2 = k.l2_len as usize;
        if !self.fits(v.len(), l2) {
            return Err(Unmarked::TooBig);
        }
        if l2 < 14 {
            return Err(Unmarked::Malformed);
        }
        let hdr = self.header(v, k, p);
        let n = v.len();
        v.resize(n + STEERING_HEADER_LEN, 0);
        v.copy_within(l2..n, l2 + STEERING_HEADER_LEN);
        v[l2 - 2..l2].copy_from_slice(&ethertype::NSH.to_be_bytes());
        v[l2..l2 + STEERING_HEADER_LEN].copy_from_slice(&hdr);
        Ok(())
    }
}

/// Removes a steering (or any NSH) header from a frame held in a `Vec`, restoring the
/// inner packet's EtherType: what a SAFE's `strip_nsh` port does, for library users
/// that hand marked frames to plain hosts. Returns false, changing nothing, when the
/// frame carries no well-formed NSH header over IPv4/IPv6.
pub fn strip_vec(frame: &mut Vec<u8>) -> bool {
    let Ok(k) = wire::classify_no_hash(frame) else {
        return false;
    };
    if !k.nsh_present || k.nsh_len == 0 {
        return false;
    }
    let (l2, n) = (k.l2_len as usize, k.nsh_len as usize);
    let et = match k.l3 {
        L3::Ipv4 => ethertype::IPV4,
        L3::Ipv6 => ethertype::IPV6,
        _ => return false,
    };
    frame.drain(l2..l2 + n);
    frame[l2 - 2..l2].copy_from_slice(&et.to_be_bytes());
    true
}

#[cfg(test)]
mod tests;
