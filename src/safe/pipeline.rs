//! Burst processing: the per-packet decisions of the fast path, generic over the buffer
//! type so it runs on steerd's own buffers and on DPDK mbufs alike.
//!
//! One burst goes through two passes, l3fwd-style:
//! 1. classify every packet (checked parse), decide steer / LPM / drop, and gather the
//!    IPv4 destinations that need an LPM lookup;
//! 2. resolve all those lookups in one `lookup_burst` (prefetching the table), then
//!    rewrite (TTL with incremental checksum, MACs, NSH removal) and stage for transmit.
//!
//! Nothing here allocates, locks or panics on any input: malformed packets become a
//! [`DropReason`], steering headers that fail a check become a counted [`Fallback`].

use super::counters::Local;
use super::drop::DropReason;
use super::tables::Tables;
use super::tx::TxStage;
use crate::port::Buf;
use crate::steering::{Fallback, TagCache, TagFields};
use crate::telemetry::DestCounters;
use crate::wire::{self, Classified, L3};

/// Packets per burst.
pub const BURST: usize = 32;

/// What the pipeline does with packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Full forwarding: steering fast path, else LPM.
    Forward,
    /// No parsing or rewriting: packets from port p go out of `peer[p]` as they are
    /// (the testpmd `io` baseline).
    Io,
}

/// What pass 1 decided for a packet.
#[derive(Clone, Copy)]
enum Action {
    Drop(DropReason),
    /// Steering table hit: next hop chosen.
    Steer,
    /// IPv4: the LPM result is in `res4[slot]`.
    Lpm4,
    /// IPv6: looked up in pass 1; `value` holds the result.
    Lpm6,
}

/// The little pass 2 needs to know about a packet (kept small: it is written and read
/// once per packet).
#[derive(Clone, Copy)]
struct Meta {
    act: Action,
    v6: bool,
    prio: u8,
    app: u8,
    l2_len: u16,
    nsh_len: u16,
    l3_off: u16,
    nh: u16,
    dest: u16,
    slot: u8,
    flow_hash: u32,
    value: Option<u32>,
}

const META0: Meta = Meta {
    act: Action::Lpm4,
    v6: false,
    prio: 0,
    app: 0,
    l2_len: 0,
    nsh_len: 0,
    l3_off: 0,
    nh: 0,
    dest: u16::MAX,
    slot: 0,
    flow_hash: 0,
    value: None,
};

/// Scratch space for one burst, owned by a worker (allocated once).
pub struct Scratch {
    meta: [Meta; BURST],
    dst4: [u32; BURST],
    res4: [Option<u32>; BURST],
    /// Verified steering tags (cleared whenever the tables change).
    pub tags: TagCache,
    tags_generation: u64,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            meta: [META0; BURST],
            dst4: [0; BURST],
            res4: [None; BURST],
            tags: TagCache::new(16384),
            tags_generation: 0,
        }
    }
}

/// Context of one burst.
pub struct BurstCtx<'a> {
    /// Tables in use for this burst.
    pub tables: &'a Tables,
    /// Time the burst was received (ns since the run started).
    pub now_ns: u64,
    /// Port → peer port for [`Mode::Io`].
    pub io_peer: &'a [u16],
    /// Per-destination telemetry of this worker.
    pub telemetry: &'a DestCounters,
    /// Generation of `tables` (the tag cache is cleared when it changes).
    pub generation: u64,
}

/// Processes `pkts` (at most [`BURST`]; all drained): each packet is staged on its egress
/// port's [`TxStage`] or given to `free` and counted as a drop.
#[inline]
pub fn process_burst<B: Buf>(
    mode: Mode,
    ctx: &BurstCtx<'_>,
    pkts: &mut Vec<B>,
    s: &mut Scratch,
    stages: &mut [TxStage<B>],
    c: &mut Local,
    mut free: impl FnMut(B),
) {
    if mode == Mode::Io {
        for b in pkts.drain(..) {
            let p = b.rx_port() as usize;
            let out = ctx.io_peer.get(p).copied().unwrap_or(p as u16) as usize;
            match stages.get_mut(out) {
                Some(st) => {
                    c.routed += 1;
                    st.push(0, b, ctx.now_ns);
                }
                None => {
                    c.drop(DropReason::BadEgressPort);
                    free(b);
                }
            }
        }
        return;
    }
    let t = ctx.tables;
    if s.tags_generation != ctx.generation {
        s.tags.clear();
        s.tags_generation = ctx.generation;
    }
    debug_assert!(pkts.len() <= BURST, "callers pass at most a burst");
    let n = pkts.len().min(BURST);
    let mut n4 = 0usize;
    // Pass 1: classify and decide; gather IPv4 destinations for one batched lookup.
    for (b, m) in pkts.iter().zip(s.meta.iter_mut()) {
        decide(t, &mut s.tags, b, c, m);
        if let Action::Lpm4 = m.act {
            m.slot = n4 as u8;
            s.dst4[n4] = m.value.unwrap_or(0);
            n4 += 1;
        }
    }
    // Batched IPv4 LPM (prefetches the whole burst's tbl24 entries first).
    t.routes.v4.lookup_burst(&s.dst4[..n4], &mut s.res4[..n4]);
    // Pass 2: resolve, rewrite, stage.
    for (i, mut b) in pkts.drain(..).enumerate() {
        if i >= n {
            // Unreachable while callers respect the burst size; never lose a packet.
            c.drop(DropReason::TxFull);
            free(b);
            continue;
        }
        let m = &mut s.meta[i];
        match m.act {
            Action::Drop(r) => {
                c.drop(r);
                free(b);
                continue;
            }
            Action::Steer => c.steered += 1,
            Action::Lpm4 | Action::Lpm6 => {
                let r = if let Action::Lpm4 = m.act {
                    s.res4[m.slot as usize]
                } else {
                    m.value
                };
                match r {
                    Some(v) => {
                        c.routed += 1;
                        m.nh = t.routes.next_hops.resolve(v, m.flow_hash);
                        m.dest = nh_dest(t, m.nh);
                    }
                    None => {
                        c.drop(if m.v6 {
                            DropReason::NoRouteV6
                        } else {
                            DropReason::NoRouteV4
                        });
                        free(b);
                        continue;
                    }
                }
            }
        }
        match rewrite(t, &mut b, m) {
            Ok(port) => {
                ctx.telemetry.add(m.dest, m.app, b.len() as u32);
                match stages.get_mut(port as usize) {
                    Some(st) => st.push(m.prio, b, ctx.now_ns),
                    None => {
                        c.drop(DropReason::BadEgressPort);
                        free(b);
                    }
                }
            }
            Err(r) => {
                c.drop(r);
                free(b);
            }
        }
    }
}

#[inline]
fn nh_dest(t: &Tables, nh: u16) -> u16 {
    t.nh_dest.get(nh as usize).copied().unwrap_or(u16::MAX)
}

/// Classifies one packet and decides what to do with it, writing `m`.
#[inline(always)]
fn decide<B: Buf>(t: &Tables, tags: &mut TagCache, b: &B, c: &mut Local, m: &mut Meta) {
    let k = match wire::classify(b.data()) {
        Ok(k) => k,
        Err(e) => {
            m.act = Action::Drop(DropReason::Parse(e));
            return;
        }
    };
    let v6 = match k.l3 {
        L3::Ipv4 => false,
        L3::Ipv6 => true,
        L3::Arp => {
            m.act = Action::Drop(DropReason::ArpNotHandled);
            return;
        }
        L3::Other(_) => {
            m.act = Action::Drop(DropReason::UnsupportedEthertype);
            return;
        }
    };
    if k.ttl <= 1 {
        m.act = Action::Drop(DropReason::TtlExpired);
        return;
    }
    m.v6 = v6;
    m.l2_len = k.l2_len;
    m.nsh_len = k.nsh_len;
    m.l3_off = k.l3_off;
    m.flow_hash = k.flow_hash;
    m.prio = 0;
    m.app = 0;
    m.dest = u16::MAX;
    if k.nsh_len != 0 {
        let port = b.rx_port() as usize;
        let trusted = t.ports.get(port).map(|p| p.trusted).unwrap_or(false);
        let fb = match (trusted, k.nsh) {
            (false, _) => Fallback::Untrusted,
            (true, None) => Fallback::NoSteeringTlv,
            (true, Some(h)) => {
                let f = TagFields {
                    dest_id: h.dest_id,
                    app_class: h.app_class,
                    priority: h.priority,
                    flags: h.flags,
                    epoch: h.epoch,
                    spi: h.spi,
                    si: h.si,
                };
                let (src, dst) = addr_bytes(b.data(), &k);
                match t.steering.admit_cached(tags, &f, h.tag, src, dst) {
                    Ok(e) => {
                        m.act = Action::Steer;
                        m.nh = e.next_hop;
                        m.prio = h.priority.min(e.max_priority).min(TxStage::<B>::MAX_CLASS);
                        m.app = h.app_class;
                        m.dest = h.dest_id as u16;
                        return;
                    }
                    Err(fb) => fb,
                }
            }
        };
        c.fallback[fb as usize] += 1;
        m.app = k.nsh.map(|h| h.app_class).unwrap_or(0);
    }
    if v6 {
        m.act = Action::Lpm6;
        m.value = t.routes.v6.lookup(k.dst_v6);
    } else {
        m.act = Action::Lpm4;
        m.value = Some(k.dst_v4);
    }
}

/// The inner packet's source and destination address bytes (4 or 16 each).
#[inline]
fn addr_bytes<'a>(d: &'a [u8], m: &Classified) -> (&'a [u8], &'a [u8]) {
    let o = m.l3_off as usize;
    let (s, l) = match m.l3 {
        L3::Ipv4 => (o + 12, 4),
        _ => (o + 8, 16),
    };
    let src = d.get(s..s + l).unwrap_or(&[]);
    let dst = d.get(s + l..s + 2 * l).unwrap_or(&[]);
    (src, dst)
}

/// Rewrites a packet for next hop `nh`: TTL/hop limit, optional NSH removal, MACs.
/// Returns the egress port.
#[inline(always)]
fn rewrite<B: Buf>(t: &Tables, b: &mut B, m: &Meta) -> Result<u16, DropReason> {
    let Some(hop) = t.routes.next_hops.get(m.nh) else {
        return Err(DropReason::BadEgressPort);
    };
    let port = hop.port;
    let flags = t
        .ports
        .get(port as usize)
        .copied()
        .ok_or(DropReason::BadEgressPort)?;
    let l3 = m.l3_off as usize;
    {
        let d = b.data_mut();
        let ip = d.get_mut(l3..).ok_or(DropReason::NshStripFailed)?;
        if m.v6 {
            let mut p = wire::ipv6::Packet::new_unchecked(ip);
            let h = p.hop_limit();
            p.set_hop_limit(h.saturating_sub(1));
        } else {
            let mut p = wire::ipv4::Packet::new_unchecked(ip);
            p.decrement_ttl();
        }
    }
    let l3_len = b.len().saturating_sub(l3);
    if flags.mtu != 0 && l3_len > flags.mtu as usize {
        return Err(DropReason::MtuExceeded);
    }
    if m.nsh_len != 0 && flags.strip_nsh {
        strip_nsh(b, m)?;
    }
    let d = b.data_mut();
    if d.len() < 12 {
        return Err(DropReason::NshStripFailed);
    }
    d[0..6].copy_from_slice(&hop.dst_mac);
    d[6..12].copy_from_slice(&hop.src_mac);
    Ok(port)
}

/// Removes the NSH header between L2 and the inner IP packet: the L2 header moves
/// forward over it and its EtherType becomes the inner packet's.
#[inline]
fn strip_nsh<B: Buf>(b: &mut B, m: &Meta) -> Result<(), DropReason> {
    let l2 = m.l2_len as usize;
    let nsh = m.nsh_len as usize;
    let et: u16 = if m.v6 {
        wire::ethernet::ethertype::IPV6
    } else {
        wire::ethernet::ethertype::IPV4
    };
    let d = b.data_mut();
    if l2 < 14 || d.len() < l2 + nsh {
        return Err(DropReason::NshStripFailed);
    }
    d.copy_within(0..l2, nsh);
    d[nsh + l2 - 2..nsh + l2].copy_from_slice(&et.to_be_bytes());
    if !b.adj(nsh) {
        return Err(DropReason::NshStripFailed);
    }
    Ok(())
}
