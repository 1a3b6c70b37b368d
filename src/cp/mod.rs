//! The control plane (cold): a router's duties that the fast path hands over — the
//! exception path of VPP and DPDK-based routers.
//!
//! One thread (`cp`) owns the neighbour table ([`neigh`]) and talks to every worker over
//! three SPSC rings ([`crate::safe::punt`]). It
//! - answers ARP requests and neighbour solicitations for the router's addresses, and
//!   learns neighbours from ARP, NS and NA;
//! - resolves next hops (configured by IP, or hosts on connected subnets): request,
//!   retry, hold a few packets meanwhile, release or drop them (counted), re-check
//!   reachable neighbours after `reachable_s`;
//! - answers ICMP / ICMPv6 echo requests to the router's addresses;
//! - sends ICMP time exceeded and destination unreachable (v4 and v6), rate-limited per
//!   port by a token bucket, never about ICMP errors, fragments other than the first, or
//!   multicast/broadcast;
//! - publishes neighbours' MACs into the forwarding tables ([`TableHandle::update`],
//!   sharing the LPM tables, see [`Tables::with_l2`]).
//!
//! Replies to a packet (ARP/NA/echo replies, time exceeded, no route) leave through the
//! port it came in on, to the MAC it came from. Errors about held packets that could not
//! be delivered are routed back to their source like any packet. Packets it makes from
//! nothing (ARP requests, solicitations) use the control plane's own buffer pool.

pub mod neigh;
pub mod packets;

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::config::ControlConfig;
use crate::port::{Buf, PktBuf, Pool};
use crate::safe::punt::{CpEnd, Inject, NO_PORT, Punt, PuntKind};
use crate::safe::tables::{HostTable, NhKind, NhL2, TableHandle, Tables};
use crate::wire::ethernet::ethertype;
use crate::wire::{self, L3, icmpv4, icmpv6};

use neigh::{Event, Hold, NeighConfig, NeighTable};
use packets as pk;

/// Buffers of the control plane's own pool (for packets it makes from nothing).
pub const POOL_BUFFERS: usize = 1024;
/// Most packets held over all neighbours (their buffers are missing from the workers'
/// pools meanwhile).
pub const MAX_HELD: usize = 1024;
/// How often the neighbour timers run.
const TICK: Duration = Duration::from_millis(10);

macro_rules! stats {
    ($($name:ident => $label:literal, $doc:literal;)*) => {
        /// What the control plane counts.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum Stat { $($name),* }

        impl Stat {
            /// Every counter.
            pub const ALL: &'static [Stat] = &[$(Stat::$name),*];
            /// Stable snake_case name.
            pub fn as_str(self) -> &'static str {
                match self { $(Stat::$name => $label),* }
            }
            /// What it counts.
            pub fn doc(self) -> &'static str {
                match self { $(Stat::$name => $doc),* }
            }
        }
    };
}

stats! {
    ArpReceived => "arp_received", "ARP packets received";
    ArpRepliesSent => "arp_replies_sent", "ARP replies for the router's addresses";
    ArpRequestsSent => "arp_requests_sent", "ARP requests (resolution and re-checks)";
    NdReceived => "nd_received", "neighbour discovery messages received (NS, NA, RS, RA)";
    NaSent => "na_sent", "neighbour advertisements for the router's addresses";
    NsSent => "ns_sent", "neighbour solicitations (resolution and re-checks)";
    EchoRepliesSent => "echo_replies_sent", "ICMP/ICMPv6 echo replies";
    TimeExceededSent => "time_exceeded_sent", "ICMP/ICMPv6 time exceeded";
    UnreachableSent => "unreachable_sent", "ICMP/ICMPv6 destination unreachable";
    IcmpRateLimited => "icmp_rate_limited", "ICMP errors not sent: over the port's rate";
    IcmpNotAllowed => "icmp_not_allowed", "ICMP errors not sent: about an ICMP error, a non-initial fragment, multicast or broadcast, or no address or route to send from";
    Held => "held", "packets held while their next hop was resolved";
    Released => "released", "held packets sent once resolved";
    Ignored => "ignored", "local packets consumed without an answer (ARP for others, replies, RS/RA)";
    NoBuffer => "no_buffer", "packets not made: the control plane's pool was empty";
    Publishes => "publishes", "forwarding-table updates with neighbour MACs (new ones, or put back into tables rebuilt by a route change or reload)";
    DropUnresolved => "neigh_unresolved", "held packets dropped: the neighbour never answered";
    DropHoldFull => "hold_queue_full", "packets dropped: too many held already";
    DropBad => "bad_packet", "local packets dropped: malformed, bad checksum or hop limit";
    DropNotRoutable => "not_routable", "packets to a connected subnet's network or broadcast address";
    DropShutdown => "held_at_exit", "packets still held when steerd stopped";
}

impl Stat {
    /// True for counters of dropped packets (they appear under `drops` in the JSON).
    pub fn is_drop(self) -> bool {
        matches!(
            self,
            Stat::DropUnresolved
                | Stat::DropHoldFull
                | Stat::DropBad
                | Stat::DropNotRoutable
                | Stat::DropShutdown
        )
    }
}

/// The control plane's counters (one writer, any readers).
#[derive(Debug)]
pub struct CpStats {
    c: Box<[AtomicU64]>,
    neighbors: AtomicU64,
}

impl Default for CpStats {
    fn default() -> Self {
        CpStats {
            c: Stat::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            neighbors: AtomicU64::new(0),
        }
    }
}

impl CpStats {
    fn add(&self, s: Stat, n: u64) {
        self.c[s as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Current value of a counter.
    pub fn get(&self, s: Stat) -> u64 {
        self.c[s as usize].load(Ordering::Relaxed)
    }

    /// Neighbours with a known MAC.
    pub fn neighbors(&self) -> u64 {
        self.neighbors.load(Ordering::Relaxed)
    }

    /// Sum of the drop counters.
    pub fn drops(&self) -> u64 {
        Stat::ALL
            .iter()
            .filter(|s| s.is_drop())
            .map(|s| self.get(*s))
            .sum()
    }

    /// The counters as a JSON object (drops grouped under `drops`).
    pub fn to_json(&self) -> Value {
        let mut o = serde_json::Map::new();
        let mut d = serde_json::Map::new();
        for s in Stat::ALL {
            if s.is_drop() {
                d.insert(s.as_str().into(), json!(self.get(*s)));
            } else {
                o.insert(s.as_str().into(), json!(self.get(*s)));
            }
        }
        o.insert("drops".into(), Value::Object(d));
        o.insert("neighbors".into(), json!(self.neighbors()));
        Value::Object(o)
    }
}

/// A packet waiting for its next hop's MAC: the worker's buffer, rewritten but for the
/// destination MAC.
pub struct Held {
    buf: PktBuf,
    worker: usize,
}

struct Bucket {
    tokens: f64,
    last: u64,
}

/// The control-plane thread's state.
pub struct ControlPlane {
    handle: Arc<TableHandle>,
    ends: Vec<CpEnd>,
    backlog: Vec<VecDeque<Inject>>,
    pool: Pool,
    neigh: NeighTable<Held>,
    cfg: ControlConfig,
    buckets: Vec<Bucket>,
    stats: Arc<CpStats>,
    stop: Arc<AtomicBool>,
    epoch: Instant,
    ip_id: u16,
    held_now: usize,
    events: Vec<Event<Held>>,
    /// Generation of the snapshot whose L2 state was last checked (or published) here.
    seen_generation: u64,
}

enum ErrKind {
    TimeExceeded,
    NoRoute,
    HostUnreachable,
}

impl ControlPlane {
    /// A control plane for the workers at the other ends of `ends`.
    pub fn new(
        handle: Arc<TableHandle>,
        ends: Vec<CpEnd>,
        cfg: &ControlConfig,
        ports: usize,
        stop: Arc<AtomicBool>,
    ) -> (ControlPlane, Arc<CpStats>) {
        let stats = Arc::new(CpStats::default());
        let ncfg = NeighConfig {
            retries: cfg.arp_retries,
            retry_ns: cfg.arp_retry_ms * 1_000_000,
            reachable_ns: cfg.reachable_s * 1_000_000_000,
            hold: cfg.hold_packets,
            ..NeighConfig::default()
        };
        let n = ends.len();
        let cp = ControlPlane {
            handle,
            ends,
            backlog: (0..n).map(|_| VecDeque::new()).collect(),
            pool: Pool::new(POOL_BUFFERS),
            neigh: NeighTable::new(ncfg),
            cfg: cfg.clone(),
            buckets: (0..ports)
                .map(|_| Bucket {
                    tokens: f64::from(cfg.icmp_burst),
                    last: 0,
                })
                .collect(),
            stats: stats.clone(),
            stop,
            epoch: Instant::now(),
            ip_id: 1,
            held_now: 0,
            events: Vec::new(),
            seen_generation: 0,
        };
        (cp, stats)
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Runs until the stop flag is set (after the workers stopped).
    pub fn run(mut self) {
        let mut next_tick = 0u64;
        loop {
            let stopping = self.stop.load(Ordering::Acquire);
            let now = self.now();
            let t = self.handle.load();
            let mut work = 0usize;
            for k in 0..self.ends.len() {
                while let Ok(b) = self.ends[k].repay.pop() {
                    self.pool.put(b);
                }
                for _ in 0..256 {
                    let Ok(p) = self.ends[k].punt.pop() else {
                        break;
                    };
                    work += 1;
                    self.punt(&t, k, p, now);
                }
            }
            if now >= next_tick {
                let mut ev = std::mem::take(&mut self.events);
                self.neigh.tick(now, &mut ev);
                self.events = ev;
                next_tick = now + TICK.as_nanos() as u64;
                self.handle.reclaim();
            }
            self.process_events(&t, now);
            drop(t);
            // A snapshot from another publisher (at start, the first): a route change or
            // reload (ctl) rebuilds the tables from the config, without the MACs resolved
            // here and perhaps with new next hops to resolve.
            let other = self.handle.generation() != self.seen_generation;
            if self.neigh.take_changed() || other {
                self.publish(now);
            }
            work += self.flush_backlog();
            self.stats
                .neighbors
                .store(self.neigh.resolved().count() as u64, Ordering::Relaxed);
            if stopping {
                break;
            }
            if work == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        self.stats.add(Stat::DropShutdown, self.held_now as u64);
    }

    fn punt(&mut self, t: &Tables, k: usize, p: Punt<PktBuf>, now: u64) {
        match p.kind {
            PuntKind::Local => self.local(t, k, p.buf, now),
            PuntKind::TtlExpired => self.error_back(t, k, p.buf, now, ErrKind::TimeExceeded),
            PuntKind::NoRoute => self.error_back(t, k, p.buf, now, ErrKind::NoRoute),
            PuntKind::Hold => self.hold(t, k, p, now),
        }
    }

    /// Queues an inject for worker `k`.
    fn inject(&mut self, k: usize, inj: Inject) {
        let k = k.min(self.ends.len().saturating_sub(1));
        if !self.backlog[k].is_empty() {
            self.backlog[k].push_back(inj);
        } else if let Err(rtrb::PushError::Full(i)) = self.ends[k].inject.push(inj) {
            self.backlog[k].push_back(i);
        }
    }

    fn flush_backlog(&mut self) -> usize {
        let mut n = 0;
        for (b, e) in self.backlog.iter_mut().zip(self.ends.iter_mut()) {
            while let Some(i) = b.pop_front() {
                match e.inject.push(i) {
                    Ok(()) => n += 1,
                    Err(rtrb::PushError::Full(i)) => {
                        b.push_front(i);
                        break;
                    }
                }
            }
        }
        n
    }

    /// Sends `frame` out of `port` in worker `k`'s buffer `buf`.
    fn send(&mut self, k: usize, mut buf: PktBuf, port: u16, frame: &[u8]) {
        buf.fill(frame);
        self.inject(
            k,
            Inject {
                buf,
                port,
                owed: false,
            },
        );
    }

    /// Gives worker `k`'s buffer back unsent.
    fn give_back(&mut self, k: usize, buf: PktBuf) {
        self.inject(
            k,
            Inject {
                buf,
                port: NO_PORT,
                owed: false,
            },
        );
    }

    /// Sends a packet made from nothing, in a buffer of the control plane's pool.
    fn send_new(&mut self, port: u16, frame: &[u8]) -> bool {
        let Some(mut buf) = self.pool.get() else {
            self.stats.add(Stat::NoBuffer, 1);
            return false;
        };
        buf.fill(frame);
        // Through worker 0: it can send on every port. On a DPDK port with fewer transmit
        // queues than workers only the first workers have one (queue w is worker w's).
        self.inject(
            0,
            Inject {
                buf,
                port,
                owed: true,
            },
        );
        true
    }

    fn next_id(&mut self) -> u16 {
        self.ip_id = self.ip_id.wrapping_add(1);
        self.ip_id
    }

    /// Token bucket of `port`: true when an ICMP error may go now.
    fn allow(&mut self, port: u16, now: u64) -> bool {
        let (rate, burst) = (
            f64::from(self.cfg.icmp_rate),
            f64::from(self.cfg.icmp_burst.max(1)),
        );
        let Some(b) = self.buckets.get_mut(port as usize) else {
            return false;
        };
        b.tokens = (b.tokens + now.saturating_sub(b.last) as f64 * rate / 1e9).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// ARP, neighbour discovery and echo requests for the router.
    fn local(&mut self, t: &Tables, k: usize, buf: PktBuf, now: u64) {
        let rx = buf.port;
        let d = buf.data();
        let Ok(m) = wire::classify(d) else {
            self.stats.add(Stat::DropBad, 1);
            return self.give_back(k, buf);
        };
        let Some(pf) = t.ports.get(rx as usize) else {
            self.stats.add(Stat::DropBad, 1);
            return self.give_back(k, buf);
        };
        let our_mac = pf.mac;
        let l2 = &d[..m.l2_len as usize];
        let mut from = [0u8; 6];
        from.copy_from_slice(&d[6..12]);
        let addrs = t.local.of_port(rx as usize);
        let l3 = &d[m.l3_off as usize..];
        let reply: Option<Vec<u8>> = match m.l3 {
            L3::Arp => {
                self.stats.add(Stat::ArpReceived, 1);
                let Some(a) = pk::parse_arp(l3) else {
                    self.stats.add(Stat::DropBad, 1);
                    return self.give_back(k, buf);
                };
                let for_us = addrs.iter().any(|(x, _)| *x == IpAddr::V4(a.tpa));
                if !a.spa.is_unspecified() && a.sha[0] & 1 == 0 && a.sha != our_mac {
                    let key = (rx, IpAddr::V4(a.spa));
                    let released = self.neigh.learn(key, a.sha, for_us && a.op == 1, now);
                    self.release(key, released, a.sha);
                }
                if a.op == 1 && for_us {
                    self.stats.add(Stat::ArpRepliesSent, 1);
                    Some(pk::arp_reply(l2, &a, our_mac))
                } else {
                    self.stats.add(Stat::Ignored, 1);
                    None
                }
            }
            L3::Ipv4 => {
                let id = self.next_id();
                match pk::echo_reply_v4(l2, l3, our_mac, from, id) {
                    Some(f) => {
                        self.stats.add(Stat::EchoRepliesSent, 1);
                        Some(f)
                    }
                    None => {
                        self.stats.add(Stat::DropBad, 1);
                        return self.give_back(k, buf);
                    }
                }
            }
            L3::Ipv6 => {
                let src = Ipv6Addr::from(m.src_v6);
                let dst = Ipv6Addr::from(m.dst_v6);
                let end =
                    (m.l3_off as usize + 40 + usize::from(u16::from_be_bytes([l3[4], l3[5]])))
                        .min(d.len());
                let msg = d.get(m.l4_off as usize..end).unwrap_or_default();
                let p = match icmpv6::Packet::new_checked(msg) {
                    Ok(p) if m.l4_off != 0 && p.verify_checksum(src, dst) => p,
                    _ => {
                        self.stats.add(Stat::DropBad, 1);
                        return self.give_back(k, buf);
                    }
                };
                use icmpv6::msg_type as ty;
                let nd = (ty::ROUTER_SOLICIT..=ty::NEIGHBOR_ADVERT).contains(&p.msg_type());
                if nd {
                    self.stats.add(Stat::NdReceived, 1);
                    if m.ttl != 255 {
                        // RFC 4861: ND from beyond the link is discarded.
                        self.stats.add(Stat::DropBad, 1);
                        return self.give_back(k, buf);
                    }
                }
                match p.msg_type() {
                    ty::ECHO_REQUEST if t.local.is_local_v6(m.dst_v6) => {
                        self.stats.add(Stat::EchoRepliesSent, 1);
                        pk::echo_reply_v6(l2, src, dst, msg, our_mac, from)
                    }
                    ty::NEIGHBOR_SOLICIT => {
                        let (Some(target), Ok(sll)) = (p.target_addr(), p.lladdr_option()) else {
                            self.stats.add(Stat::DropBad, 1);
                            return self.give_back(k, buf);
                        };
                        let for_us = addrs.iter().any(|(x, _)| *x == IpAddr::V6(target));
                        if !src.is_unspecified()
                            && let Some(mac) = sll
                        {
                            let key = (rx, IpAddr::V6(src));
                            let released = self.neigh.learn(key, mac.0, for_us, now);
                            self.release(key, released, mac.0);
                        }
                        if for_us {
                            self.stats.add(Stat::NaSent, 1);
                            Some(if src.is_unspecified() {
                                let all = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
                                pk::neighbor_advert(
                                    l2,
                                    our_mac,
                                    target,
                                    all,
                                    pk::multicast_mac(all),
                                    false,
                                )
                            } else {
                                let to = sll.map(|m| m.0).unwrap_or(from);
                                pk::neighbor_advert(l2, our_mac, target, src, to, true)
                            })
                        } else {
                            self.stats.add(Stat::Ignored, 1);
                            None
                        }
                    }
                    ty::NEIGHBOR_ADVERT => {
                        match (p.target_addr(), p.lladdr_option()) {
                            (Some(target), Ok(tll)) => {
                                let mac = tll.map(|m| m.0).unwrap_or(from);
                                let key = (rx, IpAddr::V6(target));
                                let released = self.neigh.learn(key, mac, false, now);
                                self.release(key, released, mac);
                                self.stats.add(Stat::Ignored, 1);
                            }
                            _ => self.stats.add(Stat::DropBad, 1),
                        }
                        None
                    }
                    _ => {
                        self.stats.add(Stat::Ignored, 1);
                        None
                    }
                }
            }
            L3::Other(_) => {
                self.stats.add(Stat::DropBad, 1);
                None
            }
        };
        match reply {
            Some(f) => self.send(k, buf, rx, &f),
            None => self.give_back(k, buf),
        }
    }

    /// Sends held packets now that `key` is at `mac`.
    fn release(&mut self, key: neigh::Key, held: Vec<Held>, mac: [u8; 6]) {
        self.held_now = self.held_now.saturating_sub(held.len());
        for mut h in held {
            if let Some(d) = h.buf.data_mut().get_mut(..6) {
                d.copy_from_slice(&mac);
            }
            self.stats.add(Stat::Released, 1);
            self.inject(
                h.worker,
                Inject {
                    buf: h.buf,
                    port: key.0,
                    owed: false,
                },
            );
        }
    }

    /// A routed packet whose next hop's MAC is not known.
    fn hold(&mut self, t: &Tables, k: usize, p: Punt<PktBuf>, now: u64) {
        let dst = if p.v6 {
            IpAddr::V6(Ipv6Addr::from(p.dst))
        } else {
            IpAddr::V4(Ipv4Addr::from(p.dst as u32))
        };
        let ip = match t.nh_kind.get(p.nh as usize) {
            Some(NhKind::Neighbor(ip)) => *ip,
            Some(NhKind::Connected) => {
                if !t
                    .local
                    .of_port(p.port as usize)
                    .iter()
                    .any(|(a, l)| host_of(*a, *l, dst))
                {
                    self.stats.add(Stat::DropNotRoutable, 1);
                    return self.give_back(k, p.buf);
                }
                dst
            }
            _ => {
                self.stats.add(Stat::DropBad, 1);
                return self.give_back(k, p.buf);
            }
        };
        if self.held_now >= MAX_HELD {
            self.stats.add(Stat::DropHoldFull, 1);
            return self.give_back(k, p.buf);
        }
        let key = (p.port, ip);
        let h = Held {
            buf: p.buf,
            worker: k,
        };
        let mut ev = std::mem::take(&mut self.events);
        let r = self.neigh.hold(key, h, now, &mut ev);
        self.events = ev;
        match r {
            Hold::Send(mac, h) => {
                self.held_now += 1;
                self.release(key, vec![h], mac);
            }
            Hold::Held => {
                self.held_now += 1;
                self.stats.add(Stat::Held, 1);
            }
            Hold::Full(h) => {
                self.stats.add(Stat::DropHoldFull, 1);
                self.give_back(h.worker, h.buf);
            }
        }
    }

    fn process_events(&mut self, t: &Tables, now: u64) {
        let events = std::mem::take(&mut self.events);
        for e in events {
            match e {
                Event::Request { key, to } => self.request(t, key, to),
                Event::Failed { held, .. } => {
                    self.held_now = self.held_now.saturating_sub(held.len());
                    for h in held {
                        self.stats.add(Stat::DropUnresolved, 1);
                        self.error_routed(t, h, now);
                    }
                }
            }
        }
    }

    /// An ARP request or neighbour solicitation for `key`.
    fn request(&mut self, t: &Tables, key: neigh::Key, to: Option<[u8; 6]>) {
        let (port, target) = key;
        let Some(pf) = t.ports.get(port as usize) else {
            return;
        };
        let Some(src) = pk::source_for(t.local.of_port(port as usize), target) else {
            return;
        };
        let f = match (src, target) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                self.stats.add(Stat::ArpRequestsSent, 1);
                pk::arp_request(pf.mac, s, d, to)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                self.stats.add(Stat::NsSent, 1);
                pk::neighbor_solicit(pf.mac, s, d, to)
            }
            _ => return,
        };
        self.send_new(port, &f);
    }

    /// An ICMP error about a packet as it was received (not rewritten), back out of the
    /// port it came in on to the MAC it came from.
    fn error_back(&mut self, t: &Tables, k: usize, buf: PktBuf, now: u64, kind: ErrKind) {
        let rx = buf.port;
        let d = buf.data();
        let frame = (|| {
            let m = wire::classify(d).ok()?;
            let ip = &d[m.l3_off as usize..];
            if d[0] & 1 != 0 || pk::no_error_about(ip) {
                return None;
            }
            let peer = m.src_addr()?;
            let src = source_addr(t, rx, peer)?;
            let pf = t.ports.get(rx as usize)?;
            let mut from = [0u8; 6];
            from.copy_from_slice(&d[6..12]);
            Some((
                src,
                ip.to_vec(),
                d[..m.l2_len as usize].to_vec(),
                pf.mac,
                from,
            ))
        })();
        let Some((src, ip, l2, our_mac, from)) = frame else {
            self.stats.add(Stat::IcmpNotAllowed, 1);
            return self.give_back(k, buf);
        };
        if self.cfg.icmp_rate == 0 || !self.allow(rx, now) {
            self.stats.add(Stat::IcmpRateLimited, 1);
            return self.give_back(k, buf);
        }
        let Some((pkt, et)) = self.error_packet(&kind, src, &ip) else {
            self.stats.add(Stat::IcmpNotAllowed, 1);
            return self.give_back(k, buf);
        };
        self.count_error(&kind);
        let f = pk::frame_like(&l2, from, our_mac, et, &pkt);
        self.send(k, buf, rx, &f);
    }

    /// An ICMP destination unreachable (host) about a held packet that could not be
    /// delivered, routed back toward its source.
    fn error_routed(&mut self, t: &Tables, h: Held, now: u64) {
        let d = h.buf.data();
        let out = (|| {
            let m = wire::classify(d).ok()?;
            let ip = &d[m.l3_off as usize..];
            if pk::no_error_about(ip) {
                return None;
            }
            let peer = m.src_addr()?;
            let (port, mac) = self.route_to(t, peer)?;
            let src = source_addr(t, port, peer)?;
            let our = t.ports.get(port as usize)?.mac;
            Some((port, mac, our, src, ip.to_vec()))
        })();
        let Some((port, mac, our, src, ip)) = out else {
            self.stats.add(Stat::IcmpNotAllowed, 1);
            return self.give_back(h.worker, h.buf);
        };
        if self.cfg.icmp_rate == 0 || !self.allow(port, now) {
            self.stats.add(Stat::IcmpRateLimited, 1);
            return self.give_back(h.worker, h.buf);
        }
        let kind = ErrKind::HostUnreachable;
        let Some((pkt, et)) = self.error_packet(&kind, src, &ip) else {
            self.stats.add(Stat::IcmpNotAllowed, 1);
            return self.give_back(h.worker, h.buf);
        };
        self.count_error(&kind);
        let f = pk::frame(mac, our, et, &pkt);
        self.send(h.worker, h.buf, port, &f);
    }

    fn count_error(&self, kind: &ErrKind) {
        self.stats.add(
            match kind {
                ErrKind::TimeExceeded => Stat::TimeExceededSent,
                _ => Stat::UnreachableSent,
            },
            1,
        );
    }

    fn error_packet(&mut self, kind: &ErrKind, src: IpAddr, ip: &[u8]) -> Option<(Vec<u8>, u16)> {
        match src {
            IpAddr::V4(s) => {
                let (ty, code) = match kind {
                    ErrKind::TimeExceeded => (icmpv4::msg_type::TIME_EXCEEDED, 0),
                    ErrKind::NoRoute => (icmpv4::msg_type::DST_UNREACHABLE, 0),
                    ErrKind::HostUnreachable => (icmpv4::msg_type::DST_UNREACHABLE, 1),
                };
                let id = self.next_id();
                Some((pk::icmp_error_v4(ty, code, s, ip, id)?, ethertype::IPV4))
            }
            IpAddr::V6(s) => {
                let (ty, code) = match kind {
                    ErrKind::TimeExceeded => (icmpv6::msg_type::TIME_EXCEEDED, 0),
                    ErrKind::NoRoute => (icmpv6::msg_type::DST_UNREACHABLE, 0),
                    ErrKind::HostUnreachable => (icmpv6::msg_type::DST_UNREACHABLE, 3),
                };
                Some((pk::icmp_error_v6(ty, code, s, ip)?, ethertype::IPV6))
            }
        }
    }

    /// Egress port and neighbour MAC toward `dst`, by the forwarding tables.
    fn route_to(&self, t: &Tables, dst: IpAddr) -> Option<(u16, [u8; 6])> {
        let nh = match dst {
            IpAddr::V4(a) => t.routes.lookup_v4(u32::from(a), 0)?,
            IpAddr::V6(a) => t.routes.lookup_v6(u128::from(a), 0)?,
        };
        let hop = t.routes.next_hops.get(nh)?;
        let mac = match (t.nh_kind.get(nh as usize), t.nh_l2.get(nh as usize)) {
            (_, Some(NhL2::Mac(m))) => *m,
            (Some(NhKind::Neighbor(ip)), _) => self.neigh.lookup(&(hop.port, *ip))?,
            (Some(NhKind::Connected), _) => self.neigh.lookup(&(hop.port, dst))?,
            _ => hop.dst_mac,
        };
        Some((hop.port, mac))
    }

    /// Publishes the neighbours' MACs into the forwarding tables, unless the current
    /// snapshot has them already, and resolves (and keeps resolved) exactly the next hops
    /// the snapshot configures by address.
    fn publish(&mut self, now: u64) {
        let neigh = &self.neigh;
        let g0 = self.handle.generation();
        let mut wanted = Vec::new();
        let published = self.handle.update(|cur| {
            for (k, hop) in cur.nh_kind.iter().zip(cur.routes.next_hops.hops()) {
                if let NhKind::Neighbor(ip) = k {
                    wanted.push((hop.port, *ip));
                }
            }
            let nh_l2 = cur
                .nh_kind
                .iter()
                .enumerate()
                .map(
                    |(i, kind)| match (kind, cur.routes.next_hops.get(i as u16)) {
                        (NhKind::Static, Some(h)) => NhL2::Mac(h.dst_mac),
                        (NhKind::Neighbor(ip), Some(h)) => neigh
                            .lookup(&(h.port, *ip))
                            .map_or(NhL2::Pending, NhL2::Mac),
                        (NhKind::Connected, _) => NhL2::Connected,
                        (_, None) => NhL2::Pending,
                    },
                )
                .collect();
            let mut v4 = Vec::new();
            let mut v6 = Vec::new();
            for ((port, ip), mac) in neigh.resolved() {
                match ip {
                    IpAddr::V4(a) => v4.push((u32::from(a), port, mac)),
                    IpAddr::V6(a) => v6.push((u128::from(a), port, mac)),
                }
            }
            let hosts = HostTable::build(&v4, &v6);
            if nh_l2 == cur.nh_l2 && hosts == cur.hosts {
                return None;
            }
            Some(cur.with_l2(nh_l2, hosts))
        });
        // A snapshot published after `g0` was read is the one `update` looked at, or a
        // later one, which the next round checks again.
        self.seen_generation = published.unwrap_or(g0);
        if published.is_some() {
            self.stats.add(Stat::Publishes, 1);
        }
        self.neigh.want_only(&wanted, now, &mut self.events);
    }
}

/// True when `dst` is a host address of the subnet of port address `a/len` (not the
/// network or, for IPv4, the broadcast address of subnets larger than /31).
fn host_of(a: IpAddr, len: u8, dst: IpAddr) -> bool {
    let p = crate::route::Prefix::new_masked(a, len);
    if !p.contains(dst) {
        return false;
    }
    match dst {
        IpAddr::V4(d) if len < 31 => {
            let host_bits = !(u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0));
            let h = u32::from(d) & host_bits;
            h != 0 && h != host_bits
        }
        IpAddr::V4(_) => true,
        IpAddr::V6(_) => dst != p.addr() || len >= 127,
    }
}

/// The router's address to send an ICMP error toward `peer` from: one of the port's,
/// else one of any port.
fn source_addr(t: &Tables, port: u16, peer: IpAddr) -> Option<IpAddr> {
    pk::source_for(t.local.of_port(port as usize), peer)
        .or_else(|| t.local.by_port.iter().find_map(|a| pk::source_for(a, peer)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_hosts() {
        let a: IpAddr = "10.1.0.1".parse().unwrap();
        let h = |d: &str| host_of(a, 24, d.parse().unwrap());
        assert!(h("10.1.0.2"));
        assert!(h("10.1.0.254"));
        assert!(!h("10.1.0.0"), "network");
        assert!(!h("10.1.0.255"), "broadcast");
        assert!(!h("10.1.1.2"), "another subnet");
        assert!(
            host_of(a, 31, "10.1.0.0".parse().unwrap()),
            "/31 has no broadcast"
        );
        let b: IpAddr = "fd01::1".parse().unwrap();
        assert!(host_of(b, 64, "fd01::2".parse().unwrap()));
        assert!(
            !host_of(b, 64, "fd01::".parse().unwrap()),
            "subnet-router anycast"
        );
    }

    #[test]
    fn stat_names_are_unique() {
        let mut s = std::collections::HashSet::new();
        for x in Stat::ALL {
            assert!(s.insert(x.as_str()));
            assert!(!x.doc().is_empty());
        }
    }

    /// The control plane on its thread, fed through the rings as a worker would.
    #[test]
    fn answers_resolves_holds_and_releases_through_the_rings() {
        use crate::safe::punt::link;
        let text = r#"
[[ports]]
name = "a"
backend = "mem"
mac = "02:00:00:00:01:01"
addrs = ["10.1.0.1/24"]
[[ports]]
name = "b"
backend = "mem"
mac = "02:00:00:00:02:01"
addrs = ["10.2.0.1/24"]
[[next_hops]]
name = "host-b"
port = "b"
ip = "10.2.0.2"
[[routes]]
prefix = "10.2.0.0/24"
via = "host-b"
"#;
        let cfg =
            crate::config::Config::from_toml(text, "t", std::path::Path::new("."), false).unwrap();
        let handle = TableHandle::new(crate::app::build_tables(&cfg, &[], None).unwrap(), 1);
        let (mut w, end) = link(64);
        let stop = Arc::new(AtomicBool::new(false));
        let (cp, stats) =
            ControlPlane::new(handle.clone(), vec![end], &cfg.control, 2, stop.clone());
        let th = std::thread::spawn(move || cp.run());
        let recv = |w: &mut crate::safe::punt::CpLink| -> Inject {
            let t0 = Instant::now();
            loop {
                if let Ok(i) = w.inject.pop() {
                    return i;
                }
                assert!(
                    t0.elapsed() < Duration::from_secs(5),
                    "nothing from the control plane"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        let punt = |w: &mut crate::safe::punt::CpLink, f: &[u8], port: u16, kind: PuntKind| {
            let mut b = PktBuf::new();
            b.fill(f);
            b.port = port;
            let m = wire::classify(f).unwrap();
            let p = Punt {
                buf: b,
                kind,
                port: 1,
                nh: 0,
                dst: u128::from(m.dst_v4),
                v6: false,
            };
            assert!(w.punt.push(p).is_ok());
        };
        let host_a = [2, 0, 0, 0, 1, 2];
        let host_b = [2, 0, 0, 0, 2, 2];
        // At start it resolves the configured next hop: an ARP request out of port b.
        let i = recv(&mut w);
        assert_eq!((i.port, i.owed), (1, true));
        let a = pk::parse_arp(&i.buf.data()[14..]).unwrap();
        assert_eq!(
            (a.op, a.spa, a.tpa),
            (1, Ipv4Addr::new(10, 2, 0, 1), Ipv4Addr::new(10, 2, 0, 2))
        );
        assert!(
            w.repay.push(PktBuf::new()).is_ok(),
            "the worker repays the buffer"
        );
        // Host A asks for the router: answered on port a.
        let req = pk::arp_request(
            host_a,
            Ipv4Addr::new(10, 1, 0, 2),
            Ipv4Addr::new(10, 1, 0, 1),
            None,
        );
        punt(&mut w, &req, 0, PuntKind::Local);
        let i = recv(&mut w);
        assert_eq!((i.port, i.owed), (0, false));
        let r = pk::parse_arp(&i.buf.data()[14..]).unwrap();
        assert_eq!((r.op, r.sha, r.tha), (2, [2, 0, 0, 0, 1, 1], host_a));
        // A packet for host B waits; host B's reply releases it with B's MAC.
        let ip = pk::ipv4(
            Ipv4Addr::new(10, 1, 0, 2),
            Ipv4Addr::new(10, 2, 0, 2),
            17,
            63,
            1,
            &[0; 8],
        );
        let fwd = pk::frame([2, 0, 0, 0, 1, 1], [2, 0, 0, 0, 2, 1], 0x0800, &ip);
        punt(&mut w, &fwd, 0, PuntKind::Hold);
        std::thread::sleep(Duration::from_millis(20));
        assert!(w.inject.pop().is_err(), "held");
        let reply = pk::frame(
            [2, 0, 0, 0, 2, 1],
            host_b,
            0x0806,
            &pk::arp(
                2,
                host_b,
                Ipv4Addr::new(10, 2, 0, 2),
                [2, 0, 0, 0, 2, 1],
                Ipv4Addr::new(10, 2, 0, 1),
            ),
        );
        punt(&mut w, &reply, 1, PuntKind::Local);
        let mut got = [recv(&mut w), recv(&mut w)];
        got.sort_by_key(|i| i.port);
        assert_eq!(got[0].port, 1, "the held packet, out of port b");
        assert_eq!(&got[0].buf.data()[0..6], &host_b);
        assert_eq!(&got[0].buf.data()[14..], &fwd[14..]);
        assert_eq!(got[1].port, NO_PORT, "the reply's buffer comes back");
        let host_b_published = |what: &str| {
            let t0 = Instant::now();
            while handle.load().nh_l2[0] != NhL2::Mac(host_b) {
                assert!(t0.elapsed() < Duration::from_secs(5), "{what}");
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        host_b_published("host B's MAC not published");
        // Another publisher's snapshot that keeps the MACs (as the RAM's steering
        // publications do) is left alone; one rebuilt from the config (as ctl's route
        // changes and reloads are) gets host B's MAC and host A's entry back.
        let published = stats.get(Stat::Publishes);
        let cur = handle.load();
        handle.publish(cur.with_steering(cur.steering.clone()));
        drop(cur);
        let rebuilt = crate::app::build_tables(&cfg, &[], None).unwrap();
        assert_eq!(rebuilt.nh_l2[0], NhL2::Pending);
        handle.publish(rebuilt);
        host_b_published("host B's MAC not published again after a rebuild");
        assert_eq!(
            handle
                .load()
                .hosts
                .get_v4(u32::from(Ipv4Addr::new(10, 1, 0, 2)), 0),
            Some(host_a)
        );
        assert_eq!(stats.get(Stat::Publishes), published + 1);
        // TTL 1: time exceeded back to host A, from the router's address on port a.
        let ip = pk::ipv4(
            Ipv4Addr::new(10, 1, 0, 2),
            Ipv4Addr::new(10, 2, 0, 2),
            17,
            1,
            1,
            &[0; 8],
        );
        let exp = pk::frame([2, 0, 0, 0, 1, 1], host_a, 0x0800, &ip);
        punt(&mut w, &exp, 0, PuntKind::TtlExpired);
        let i = recv(&mut w);
        let d = i.buf.data();
        assert_eq!((i.port, &d[0..6]), (0, &host_a[..]));
        assert_eq!(&d[26..30], &[10, 1, 0, 1], "from the router");
        assert_eq!(&d[30..34], &[10, 1, 0, 2], "to host A");
        assert_eq!((d[34], d[35]), (11, 0), "time exceeded");
        assert_eq!(&d[42..42 + ip.len()], &ip[..], "quoting the packet");
        stop.store(true, Ordering::Release);
        th.join().unwrap();
        assert_eq!(stats.get(Stat::ArpRepliesSent), 1);
        assert_eq!(stats.get(Stat::Released), 1);
        assert_eq!(stats.get(Stat::TimeExceededSent), 1);
        assert_eq!(stats.drops(), 0);
        assert_eq!(stats.neighbors(), 2, "host B, and host A from its request");
    }
}
