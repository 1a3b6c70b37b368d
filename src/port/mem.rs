//! The `mem` port: a pktgen-like generator on receive and a counting sink on transmit.
//!
//! Cold: [`Generator::build`] pre-builds one frame template per flow (Ethernet + IPv4 or
//! IPv6 + UDP, optionally behind a steering header with a valid tag, optionally a fault)
//! into one flat arena. Hot: `rx_burst` copies the next templates into pool buffers
//! (64-byte frames cost one cache line copy), paced by a token bucket when a rate is
//! set; `tx_burst` counts and recycles.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use crossbeam::utils::CachePadded;

use super::{PktBuf, Pool, RxQueue, TxQueue};
use crate::steering::{Key, TagFields, compute_tag};
use crate::wire::checksum;
use crate::wire::nsh::SteeringRepr;

/// An IPv4 or IPv6 prefix (generator destinations/sources).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenPrefix {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

/// Which fault a faulty flow carries (to exercise every drop and fallback path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// IPv4 TTL 1.
    TtlOne,
    /// Frame cut inside the IPv4 header.
    Truncated,
    /// IPv4 header checksum wrong.
    BadChecksum,
    /// IP version 5.
    BadVersion,
    /// Steering header with a forged tag.
    ForgedTag,
    /// Steering header with an old epoch.
    StaleEpoch,
    /// Steering header naming a destination not in the table.
    UnknownDest,
}

const FAULTS: [Fault; 7] = [
    Fault::TtlOne,
    Fault::Truncated,
    Fault::BadChecksum,
    Fault::BadVersion,
    Fault::ForgedTag,
    Fault::StaleEpoch,
    Fault::UnknownDest,
];

/// How steered flows are marked.
#[derive(Clone, Debug)]
pub struct GenSteering {
    /// Destination ids to mark with (round robin over steered flows).
    pub dests: Vec<u32>,
    /// Key the tags are computed with.
    pub key: Key,
    /// Epoch written into headers.
    pub epoch: u32,
    /// Priority written into headers.
    pub priority: u8,
    /// Application class written into headers.
    pub app_class: u8,
}

/// Generator settings.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Number of distinct flows (one template each).
    pub flows: usize,
    /// Destination prefixes; flow i goes to a random address of prefix i mod len.
    pub dst: Vec<GenPrefix>,
    /// IPv4 source prefix.
    pub src_v4: GenPrefix,
    /// IPv6 source prefix.
    pub src_v6: GenPrefix,
    /// Frame sizes (bytes without FCS) with weights.
    pub sizes: Vec<(usize, u32)>,
    /// Fraction of flows carrying a steering header.
    pub steered_fraction: f64,
    /// Marking of steered flows (required when steered_fraction > 0).
    pub steering: Option<GenSteering>,
    /// Fraction of flows that are faulty (cycling through every [`Fault`]).
    pub fault_fraction: f64,
    /// Packets per second for the whole port (0 = as fast as possible).
    pub rate_pps: u64,
    /// Packets to send in total for the port (0 = unlimited).
    pub packets: u64,
    /// Random seed (templates are deterministic for a seed).
    pub seed: u64,
    /// Destination MAC of generated frames (the appliance's port MAC).
    pub dst_mac: [u8; 6],
    /// Source MAC of generated frames.
    pub src_mac: [u8; 6],
}

/// The pre-built frames of a generator, shared read-only by its queues.
#[derive(Debug)]
pub struct Templates {
    arena: Vec<u8>,
    frames: Vec<(u32, u16)>,
}

impl Templates {
    /// Number of templates.
    pub fn len(&self) -> usize {
        self.frames.len()
    }
    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
    /// Template `i`.
    pub fn get(&self, i: usize) -> &[u8] {
        let (o, l) = self.frames[i];
        &self.arena[o as usize..o as usize + l as usize]
    }
}

/// splitmix64: a small deterministic RNG for template building.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn random_in(p: &GenPrefix, r: &mut Rng) -> IpAddr {
    match p.addr {
        IpAddr::V4(a) => {
            let host_bits = 32 - p.len.min(32) as u32;
            let mask = if host_bits == 32 {
                u32::MAX
            } else {
                (1u32 << host_bits) - 1
            };
            let mut h = (r.next() as u32) & mask;
            if host_bits >= 2 {
                // avoid network and broadcast addresses
                h = h.clamp(1, mask - 1);
            }
            IpAddr::V4((u32::from(a) & !mask | h).into())
        }
        IpAddr::V6(a) => {
            let host_bits = 128 - p.len.min(128) as u32;
            let mask = if host_bits == 128 {
                u128::MAX
            } else {
                (1u128 << host_bits) - 1
            };
            let h = (((r.next() as u128) << 64) | r.next() as u128) & mask;
            IpAddr::V6((u128::from(a) & !mask | h.max(1) & mask).into())
        }
    }
}

/// Writes a one's-complement checksum of `bytes` (with `init` folded in) as big-endian.
fn csum(init: u16, bytes: &[u8]) -> u16 {
    !checksum::combine(&[init, checksum::data(bytes)])
}

/// Most flows a generator takes (one frame template each: up to 2 GiB of frames).
pub const MAX_FLOWS: usize = 1 << 20;

impl Templates {
    /// Builds the templates (cold; allocates).
    pub fn build(cfg: &GenConfig) -> Result<Templates, String> {
        if cfg.dst.is_empty() {
            return Err("generator: `dst` needs at least one destination prefix".into());
        }
        if cfg.sizes.is_empty() || cfg.sizes.iter().all(|s| s.1 == 0) {
            return Err("generator: `sizes` needs at least one size with a weight > 0".into());
        }
        if cfg.steered_fraction > 0.0 && cfg.steering.as_ref().is_none_or(|s| s.dests.is_empty()) {
            return Err(
                "generator: steered_fraction > 0 needs steering destinations (steering.entries)"
                    .into(),
            );
        }
        if !(1..=MAX_FLOWS).contains(&cfg.flows) {
            return Err(format!(
                "generator: {} flows is outside 1..={MAX_FLOWS}",
                cfg.flows
            ));
        }
        let flows = cfg.flows;
        let mut r = Rng(cfg.seed ^ 0x5eed);
        let total_w: u64 = cfg.sizes.iter().map(|s| s.1 as u64).sum();
        let mut arena = Vec::new();
        let mut frames = Vec::with_capacity(flows);
        let n_steered = (flows as f64 * cfg.steered_fraction).round() as usize;
        // Every fault kind gets at least one flow when faults are asked for at all.
        let mut n_faulty = (flows as f64 * cfg.fault_fraction).round() as usize;
        if cfg.fault_fraction > 0.0 {
            n_faulty = n_faulty.max(FAULTS.len()).min(flows);
        }
        for i in 0..flows {
            let dst = random_in(&cfg.dst[i % cfg.dst.len()], &mut r);
            let src = match dst {
                IpAddr::V4(_) => random_in(&cfg.src_v4, &mut r),
                IpAddr::V6(_) => random_in(&cfg.src_v6, &mut r),
            };
            let mut pick = r.next() % total_w.max(1);
            let mut size = cfg.sizes[0].0;
            for &(s, w) in &cfg.sizes {
                if pick < w as u64 {
                    size = s;
                    break;
                }
                pick -= w as u64;
            }
            // Spread steered and faulty flows evenly over the flow list.
            let steered = n_steered > 0 && (i * n_steered / flows) != ((i + 1) * n_steered / flows);
            let fault = if n_faulty > 0 && (i * n_faulty / flows) != ((i + 1) * n_faulty / flows) {
                Some(FAULTS[(i * n_faulty / flows) % FAULTS.len()])
            } else {
                None
            };
            let steering = if steered
                || matches!(
                    fault,
                    Some(Fault::ForgedTag | Fault::StaleEpoch | Fault::UnknownDest)
                ) {
                cfg.steering.as_ref()
            } else {
                None
            };
            let sport = 1024 + (r.next() % 60000) as u16;
            let dport = 1024 + (r.next() % 60000) as u16;
            // Steered flows take the destinations in turn (by their rank among the
            // steered flows, so every destination gets its share however they interleave).
            let slot = if steered { i * n_steered / flows } else { i };
            let f = build_frame(cfg, src, dst, sport, dport, size, steering, i, slot, fault);
            frames.push((arena.len() as u32, f.len() as u16));
            arena.extend_from_slice(&f);
        }
        Ok(Templates { arena, frames })
    }
}

#[allow(clippy::too_many_arguments)]
fn build_frame(
    cfg: &GenConfig,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    size: usize,
    steering: Option<&GenSteering>,
    flow: usize,
    dest_slot: usize,
    fault: Option<Fault>,
) -> Vec<u8> {
    let nsh = if steering.is_some() { 32 } else { 0 };
    let ip_hdr = if src.is_ipv4() { 20 } else { 40 };
    let min = 14 + nsh + ip_hdr + 8;
    let size = size.clamp(min.max(60), super::MAX_FRAME);
    let mut f = vec![0u8; size];
    f[0..6].copy_from_slice(&cfg.dst_mac);
    f[6..12].copy_from_slice(&cfg.src_mac);
    let l3 = 14 + nsh;
    let ip_len = size - l3;
    let udp_len = ip_len - ip_hdr;
    let (ethertype, next_proto) = match src {
        IpAddr::V4(_) => (0x0800u16, 1u8),
        IpAddr::V6(_) => (0x86ddu16, 2u8),
    };
    f[12..14].copy_from_slice(&(if nsh > 0 { 0x894f } else { ethertype }).to_be_bytes());
    // payload: a recognisable pattern
    for (k, b) in f[l3 + ip_hdr + 8..].iter_mut().enumerate() {
        *b = (k as u8).wrapping_add(flow as u8);
    }
    let l4 = l3 + ip_hdr;
    f[l4..l4 + 2].copy_from_slice(&sport.to_be_bytes());
    f[l4 + 2..l4 + 4].copy_from_slice(&dport.to_be_bytes());
    f[l4 + 4..l4 + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let ip = &mut f[l3..l3 + 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
            ip[4..6].copy_from_slice(&(flow as u16).to_be_bytes());
            ip[6] = 0x40; // DF
            ip[8] = if fault == Some(Fault::TtlOne) { 1 } else { 64 };
            ip[9] = 17;
            ip[12..16].copy_from_slice(&s.octets());
            ip[16..20].copy_from_slice(&d.octets());
            let c = csum(0, ip);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            if fault == Some(Fault::BadChecksum) {
                ip[10] ^= 0x5a;
            }
            if fault == Some(Fault::BadVersion) {
                ip[0] = 0x55;
            }
            let ph = checksum::pseudo_header_v4(s, d, 17, udp_len as u16);
            let uc = csum(ph, &f[l4..]);
            f[l4 + 6..l4 + 8].copy_from_slice(&(if uc == 0 { 0xffff } else { uc }).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let ip = &mut f[l3..l3 + 40];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
            ip[6] = 17;
            ip[7] = if fault == Some(Fault::TtlOne) { 1 } else { 64 };
            ip[8..24].copy_from_slice(&s.octets());
            ip[24..40].copy_from_slice(&d.octets());
            let ph = checksum::pseudo_header_v6(s, d, 17, udp_len as u32);
            let uc = csum(ph, &f[l4..]);
            f[l4 + 6..l4 + 8].copy_from_slice(&(if uc == 0 { 0xffff } else { uc }).to_be_bytes());
        }
        _ => unreachable!("source and destination families are chosen to match"),
    }
    if let Some(st) = steering {
        let mut fields = TagFields {
            dest_id: st.dests[dest_slot % st.dests.len()],
            app_class: st.app_class,
            priority: st.priority,
            flags: 0,
            epoch: st.epoch,
            spi: 1,
            si: 255,
        };
        if fault == Some(Fault::UnknownDest) {
            fields.dest_id = 0xfff0;
        }
        if fault == Some(Fault::StaleEpoch) {
            fields.epoch = st.epoch.wrapping_sub(1000);
        }
        let (sb, db): (Vec<u8>, Vec<u8>) = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => (s.octets().to_vec(), d.octets().to_vec()),
            (IpAddr::V6(s), IpAddr::V6(d)) => (s.octets().to_vec(), d.octets().to_vec()),
            _ => unreachable!("families match"),
        };
        let mut tag = compute_tag(&st.key, &fields, &sb, &db);
        if fault == Some(Fault::ForgedTag) {
            tag ^= 0xdead_beef;
        }
        let repr = SteeringRepr {
            spi: fields.spi,
            si: fields.si,
            ttl: 63,
            next_protocol: next_proto,
            dest_id: fields.dest_id,
            app_class: fields.app_class,
            priority: fields.priority,
            flags: fields.flags,
            epoch: fields.epoch,
            tag,
        };
        f[14..46].copy_from_slice(&repr.to_bytes());
    }
    if fault == Some(Fault::Truncated) {
        f.truncate(l3 + 10);
    }
    f
}

/// Transmit/receive counters of a mem port, shared with the stats thread.
#[derive(Default)]
pub struct MemPortStats {
    /// Packets generated.
    pub generated: CachePadded<AtomicU64>,
    /// Packets absorbed by the sink.
    pub sunk: CachePadded<AtomicU64>,
}

/// One receive queue of a generator port.
pub struct MemRx {
    port: u16,
    tpl: Arc<Templates>,
    next: usize,
    remaining: u64,
    unlimited: bool,
    rate_pps: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl MemRx {
    /// Queue `q` of `nq` of a generator over `tpl`.
    pub fn new(port: u16, tpl: Arc<Templates>, cfg: &GenConfig, q: usize, nq: usize) -> Self {
        let nq = nq.max(1) as u64;
        let share = |total: u64| total / nq + u64::from((q as u64) < total % nq);
        MemRx {
            port,
            next: (tpl.len() * q) / nq as usize,
            tpl,
            remaining: share(cfg.packets),
            unlimited: cfg.packets == 0,
            rate_pps: if cfg.rate_pps == 0 {
                0.0
            } else {
                share(cfg.rate_pps).max(1) as f64
            },
            tokens: 0.0,
            last: None,
        }
    }
}

impl RxQueue for MemRx {
    type Buf = PktBuf;
    type Pool = Pool;

    #[inline]
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut Vec<PktBuf>, max: usize) -> usize {
        let mut n = max;
        if !self.unlimited {
            n = n.min(self.remaining as usize);
        }
        if self.rate_pps > 0.0 {
            let now = Instant::now();
            let last = *self.last.get_or_insert(now);
            self.tokens = (self.tokens + now.duration_since(last).as_secs_f64() * self.rate_pps)
                .min(self.rate_pps.max(max as f64));
            self.last = Some(now);
            n = n.min(self.tokens as usize);
        }
        let mut got = 0;
        while got < n {
            let Some(mut b) = pool.get() else { break };
            b.fill(self.tpl.get(self.next));
            b.port = self.port;
            out.push(b);
            self.next += 1;
            if self.next == self.tpl.len() {
                self.next = 0;
            }
            got += 1;
        }
        if !self.unlimited {
            self.remaining -= got as u64;
        }
        if self.rate_pps > 0.0 {
            self.tokens -= got as f64;
        }
        got
    }

    fn exhausted(&self) -> bool {
        !self.unlimited && self.remaining == 0
    }
}

/// One transmit queue of a sink port.
pub struct MemTx {
    stats: Arc<MemPortStats>,
    local: u64,
}

impl MemTx {
    /// A sink queue counting into `stats`.
    pub fn new(stats: Arc<MemPortStats>) -> Self {
        MemTx { stats, local: 0 }
    }
}

impl TxQueue for MemTx {
    type Buf = PktBuf;
    type Pool = Pool;

    #[inline]
    fn tx_burst(&mut self, pool: &mut Pool, bufs: &mut Vec<PktBuf>) -> usize {
        let n = bufs.len();
        for b in bufs.drain(..) {
            pool.put(b);
        }
        self.local += n as u64;
        n
    }

    fn flush(&mut self) {
        if self.local > 0 {
            self.stats.sunk.fetch_add(self.local, Relaxed);
            self.local = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn cfg() -> GenConfig {
        GenConfig {
            flows: 64,
            dst: vec![
                GenPrefix {
                    addr: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 0)),
                    len: 16,
                },
                GenPrefix {
                    addr: IpAddr::V6("2001:db8:1::".parse::<Ipv6Addr>().unwrap()),
                    len: 48,
                },
            ],
            src_v4: GenPrefix {
                addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)),
                len: 8,
            },
            src_v6: GenPrefix {
                addr: IpAddr::V6("2001:db8:ff::".parse::<Ipv6Addr>().unwrap()),
                len: 48,
            },
            sizes: vec![(64, 1)],
            steered_fraction: 0.5,
            steering: Some(GenSteering {
                dests: vec![1, 2],
                key: Key::from_bytes([7; 16]),
                epoch: 1,
                priority: 2,
                app_class: 3,
            }),
            fault_fraction: 0.0,
            rate_pps: 0,
            packets: 100,
            seed: 1,
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_mac: [2, 0, 0, 0, 0, 2],
        }
    }

    #[test]
    fn templates_are_deterministic_and_sized() {
        let a = Templates::build(&cfg()).unwrap();
        let b = Templates::build(&cfg()).unwrap();
        assert_eq!(a.len(), 64);
        for i in 0..a.len() {
            assert_eq!(a.get(i), b.get(i));
            assert!(
                a.get(i).len() >= 64,
                "frame {i} is {} bytes",
                a.get(i).len()
            );
        }
        let steered = (0..a.len())
            .filter(|&i| a.get(i)[12..14] == [0x89, 0x4f])
            .count();
        assert_eq!(steered, 32);
        // The steered flows take the destinations in turn: 16 each.
        let mut per = [0usize; 3];
        for i in 0..a.len() {
            if let Some(h) = crate::wire::classify(a.get(i)).unwrap().nsh {
                per[h.dest_id as usize] += 1;
            }
        }
        assert_eq!(per, [0, 16, 16]);
    }

    #[test]
    fn generator_respects_packet_budget_across_queues() {
        let c = cfg();
        let t = Arc::new(Templates::build(&c).unwrap());
        let mut pool = Pool::new(256);
        let mut total = 0;
        for q in 0..3 {
            let mut rx = MemRx::new(0, t.clone(), &c, q, 3);
            let mut out = Vec::with_capacity(64);
            loop {
                let n = rx.rx_burst(&mut pool, &mut out, 32);
                total += n;
                for b in out.drain(..) {
                    pool.put(b);
                }
                if n == 0 {
                    break;
                }
            }
            assert!(rx.exhausted());
        }
        assert_eq!(total, 100);
    }

    #[test]
    fn bad_generator_config_is_refused() {
        let mut c = cfg();
        c.dst.clear();
        assert!(Templates::build(&c).unwrap_err().contains("dst"));
        let mut c = cfg();
        c.steering = None;
        assert!(Templates::build(&c).unwrap_err().contains("steering"));
    }
}
