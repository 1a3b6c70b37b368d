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
//!
//! The exception path (VPP/DPDK style): packets the data plane cannot finish go to the
//! control plane through `punt` ([`Punt`]): ARP, neighbour discovery and echo requests
//! for the router's own addresses (counted `local`), packets whose next hop's MAC is not
//! resolved yet (rewritten, then held by the control plane; counted `local`), and copies
//! of the reason for ICMP errors: expired TTL and missing routes stay counted drops, the
//! buffer only carries the invoking packet to the control plane, which answers with a
//! rate-limited ICMP error.

use super::counters::Local;
use super::drop::DropReason;
use super::punt::{Punt, PuntKind};
use super::tables::{NhL2, PortFlags, Tables};
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
    /// A counted drop whose buffer then goes to the control plane for an ICMP error.
    DropIcmp(DropReason, PuntKind),
    /// For the control plane (ARP, ND, echo to the router).
    Local,
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
    /// Destination address (IPv4 in the low 32 bits), for punts to the control plane.
    dst: u128,
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
    dst: 0,
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
/// port's [`TxStage`], handed to the control plane through `punt` (which gives the packet
/// back when its ring is full), or given to `free` and counted as a drop.
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn process_burst<B: Buf>(
    mode: Mode,
    ctx: &BurstCtx<'_>,
    pkts: &mut Vec<B>,
    s: &mut Scratch,
    stages: &mut [TxStage<B>],
    c: &mut Local,
    mut free: impl FnMut(B),
    mut punt: impl FnMut(Punt<B>) -> Result<(), Punt<B>>,
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
    // The flow hash only picks an ECMP member (route group or steering entry): skip it
    // when the tables have none. Decided once per burst.
    let hash = t.routes.next_hops.has_ecmp() || t.steering.has_ecmp();
    // Pass 1: classify and decide; gather IPv4 destinations for one batched lookup.
    for (b, m) in pkts.iter().zip(s.meta.iter_mut()) {
        decide(t, hash, &mut s.tags, b, c, m);
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
            Action::DropIcmp(r, kind) => {
                c.drop(r);
                if let Err(p) = punt(Punt::new(b, kind, m)) {
                    free(p.buf);
                }
                continue;
            }
            Action::Local => {
                match punt(Punt::new(b, PuntKind::Local, m)) {
                    Ok(()) => c.local += 1,
                    Err(p) => {
                        c.drop(DropReason::SlowPathFull);
                        free(p.buf);
                    }
                }
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
                        if let Err(p) = punt(Punt::new(b, PuntKind::NoRoute, m)) {
                            free(p.buf);
                        }
                        continue;
                    }
                }
            }
        }
        match rewrite(t, &mut b, m) {
            Ok((port, false)) => {
                // The next hop's MAC is not known yet: the control plane holds the
                // (rewritten) packet while it resolves the neighbour.
                let mut p = Punt::new(b, PuntKind::Hold, m);
                p.port = port;
                p.nh = m.nh;
                match punt(p) {
                    Ok(()) => c.local += 1,
                    Err(p) => {
                        c.drop(DropReason::SlowPathFull);
                        free(p.buf);
                    }
                }
            }
            Ok((port, true)) => {
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
fn decide<B: Buf>(t: &Tables, hash: bool, tags: &mut TagCache, b: &B, c: &mut Local, m: &mut Meta) {
    // Parsed in place (a record returned by value was copied on every packet).
    let mut k = wire::Classified::EMPTY;
    let parsed = if hash {
        wire::classify_into::<true>(b.data(), &mut k)
    } else {
        wire::classify_into::<false>(b.data(), &mut k)
    };
    if let Err(e) = parsed {
        m.act = Action::Drop(DropReason::Parse(e));
        return;
    }
    let v6 = matches!(k.l3, L3::Ipv6);
    m.v6 = v6;
    m.dst = if v6 { k.dst_v6 } else { u128::from(k.dst_v4) };
    let pf = t
        .ports
        .get(b.rx_port() as usize)
        .copied()
        .unwrap_or_default();
    if let Some(a) = local_action(t, &pf, b.data(), &k) {
        m.act = a;
        return;
    }
    if k.ttl <= 1 {
        m.act = Action::DropIcmp(DropReason::TtlExpired, PuntKind::TtlExpired);
        return;
    }
    m.l2_len = k.l2_len;
    m.nsh_len = k.nsh_len;
    m.l3_off = k.l3_off;
    m.flow_hash = k.flow_hash;
    m.prio = 0;
    m.app = 0;
    m.dest = u16::MAX;
    if k.nsh_len != 0 {
        let fb = match (pf.trusted, k.nsh) {
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
                        m.nh = e.pick(k.flow_hash);
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

/// What the router does with packets for itself (and frames not for it): `None` for
/// packets to be routed. A few compares for routed packets: the frame's destination MAC,
/// the router's own addresses (at most [`super::tables::MAX_LOCAL_ADDRS`] per family),
/// multicast and link-local scopes.
#[inline]
fn local_action(t: &Tables, pf: &PortFlags, d: &[u8], m: &Classified) -> Option<Action> {
    // classify() checked the 14-byte Ethernet header.
    if pf.l2_filter && d[0] & 1 == 0 && d[..6] != pf.mac {
        return Some(Action::Drop(DropReason::NotOurMac));
    }
    let l4_type = || {
        if m.l4_off == 0 || m.nsh_len != 0 {
            None
        } else {
            d.get(m.l4_off as usize).copied()
        }
    };
    match m.l3 {
        L3::Arp => Some(if pf.has_v4 {
            Action::Local
        } else {
            Action::Drop(DropReason::ArpNotHandled)
        }),
        L3::Other(_) => Some(Action::Drop(DropReason::UnsupportedEthertype)),
        L3::Ipv4 => {
            let dst = m.dst_v4;
            if t.local.is_local_v4(dst) {
                let echo = m.proto == wire::ipv4::protocol::ICMP
                    && l4_type() == Some(wire::icmpv4::msg_type::ECHO_REQUEST);
                return Some(if echo {
                    Action::Local
                } else {
                    Action::Drop(DropReason::LocalNotHandled)
                });
            }
            // Multicast and limited broadcast are not routed.
            if dst >> 28 == 0xe || dst == u32::MAX {
                return Some(Action::Drop(DropReason::LocalNotHandled));
            }
            None
        }
        L3::Ipv6 => {
            let dst = m.dst_v6;
            let multicast = dst >> 120 == 0xff;
            if multicast || t.local.is_local_v6(dst) {
                use wire::icmpv6::msg_type as ty;
                let ok = pf.has_v6
                    && m.proto == wire::icmpv6::PROTOCOL
                    && match l4_type() {
                        Some(ty::ROUTER_SOLICIT..=ty::NEIGHBOR_ADVERT) => true,
                        Some(ty::ECHO_REQUEST) => !multicast,
                        _ => false,
                    };
                return Some(if ok {
                    Action::Local
                } else {
                    Action::Drop(DropReason::LocalNotHandled)
                });
            }
            // Link-local unicast (fe80::/10) is never routed.
            if dst >> 118 == 0x3fa {
                return Some(Action::Drop(DropReason::LocalNotHandled));
            }
            None
        }
    }
}

impl<B> Punt<B> {
    /// A punt of `buf` for `kind`, with the destination pass 1 found.
    #[inline]
    fn new(buf: B, kind: PuntKind, m: &Meta) -> Self {
        Punt {
            buf,
            kind,
            port: 0,
            nh: 0,
            dst: m.dst,
            v6: m.v6,
        }
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
/// Returns the egress port and whether the destination MAC was known (when it was not,
/// everything but the destination MAC is rewritten).
#[inline(always)]
fn rewrite<B: Buf>(t: &Tables, b: &mut B, m: &Meta) -> Result<(u16, bool), DropReason> {
    let Some(hop) = t.routes.next_hops.get(m.nh) else {
        return Err(DropReason::BadEgressPort);
    };
    let port = hop.port;
    let dst_mac = match t.nh_l2.get(m.nh as usize) {
        Some(NhL2::Mac(mac)) => Some(*mac),
        Some(NhL2::Pending) => None,
        Some(NhL2::Connected) => {
            if m.v6 {
                t.hosts.get_v6(m.dst, port)
            } else {
                t.hosts.get_v4(m.dst as u32, port)
            }
        }
        None => Some(hop.dst_mac),
    };
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
    if let Some(mac) = dst_mac {
        d[0..6].copy_from_slice(&mac);
    }
    d[6..12].copy_from_slice(&hop.src_mac);
    Ok((port, dst_mac.is_some()))
}

/// Moves the first `N` bytes of `d` forward by `by` (`d` holds at least `N + by`).
#[inline(always)]
fn move_fixed<const N: usize>(d: &mut [u8], by: usize) {
    if let Some(head) = d.first_chunk::<N>().copied()
        && let Some(to) = d.get_mut(by..by + N)
    {
        to.copy_from_slice(&head);
    }
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
    // Fixed-size moves for the usual L2 headers (untagged, one VLAN tag): `copy_within`
    // of a run-time length is a `memmove` call.
    match l2 {
        14 => move_fixed::<12>(d, nsh),
        18 => move_fixed::<16>(d, nsh),
        _ => d.copy_within(0..l2 - 2, nsh),
    }
    d[nsh + l2 - 2..nsh + l2].copy_from_slice(&et.to_be_bytes());
    if !b.adj(nsh) {
        return Err(DropReason::NshStripFailed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cp::packets as pk;
    use crate::port::{PktBuf, Pool};
    use crate::safe::tables::{HostTable, NhKind};
    use crate::wire::ethernet::ethertype;
    use crate::wire::ipv4::protocol;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const MAC_A: [u8; 6] = [2, 0, 0, 0, 1, 1];
    const MAC_B: [u8; 6] = [2, 0, 0, 0, 2, 1];
    const HOST_A: [u8; 6] = [2, 0, 0, 0, 1, 2];
    const HOST_B: [u8; 6] = [2, 0, 0, 0, 2, 2];

    /// The test bed's router: ports a and b with addresses, IPv4 via next hops by IP,
    /// IPv6 by the connected routes.
    fn tables() -> Tables {
        let text = r#"
[[ports]]
name = "a"
backend = "mem"
mac = "02:00:00:00:01:01"
addrs = ["10.1.0.1/24", "fd01::1/64"]
[[ports]]
name = "b"
backend = "mem"
mac = "02:00:00:00:02:01"
addrs = ["10.2.0.1/24", "fd02::1/64"]
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
        crate::app::build_tables(&cfg, &[], None).unwrap()
    }

    fn v4(dst: Ipv4Addr, ttl: u8, proto: u8, l4: &[u8]) -> Vec<u8> {
        let ip = pk::ipv4(Ipv4Addr::new(10, 1, 0, 2), dst, proto, ttl, 1, l4);
        pk::frame(MAC_A, HOST_A, ethertype::IPV4, &ip)
    }

    fn v6(dst: Ipv6Addr, l4: &[u8]) -> Vec<u8> {
        let ip = pk::ipv6("fd01::2".parse().unwrap(), dst, 17, 64, l4);
        pk::frame(MAC_A, HOST_A, ethertype::IPV6, &ip)
    }

    struct Out {
        c: Local,
        punted: Vec<(PuntKind, u16, Vec<u8>)>,
        sent: Vec<(usize, Vec<u8>)>,
        freed: usize,
    }

    #[test]
    fn strip_nsh_keeps_every_l2_header_length() {
        // Untagged, one VLAN tag, two tags (the generic path): the L2 header but its
        // EtherType moves over the NSH header, the EtherType becomes the inner one.
        for (l2, nsh, v6) in [
            (14, 32, false),
            (18, 32, true),
            (22, 36, false),
            (14, 252, true),
        ] {
            let frame: Vec<u8> = (0..l2 + nsh + 40).map(|i| i as u8).collect();
            let mut pool = Pool::new(1);
            let mut b = pool.get().unwrap();
            b.fill(&frame);
            let m = Meta {
                v6,
                l2_len: l2 as u16,
                nsh_len: nsh as u16,
                ..META0
            };
            strip_nsh(&mut b, &m).unwrap();
            let et: u16 = if v6 { ethertype::IPV6 } else { ethertype::IPV4 };
            let mut want = frame[..l2 - 2].to_vec();
            want.extend_from_slice(&et.to_be_bytes());
            want.extend_from_slice(&frame[l2 + nsh..]);
            assert_eq!(b.data(), &want[..], "l2 {l2} nsh {nsh}");
        }
    }

    fn run(t: &Tables, frames: &[Vec<u8>]) -> Out {
        let mut pool = Pool::new(64);
        let mut pkts = Vec::with_capacity(BURST);
        for f in frames {
            let mut b = pool.get().unwrap();
            b.fill(f);
            b.port = 0;
            pkts.push(b);
        }
        let tel = DestCounters::new(4, 4);
        let ctx = BurstCtx {
            tables: t,
            now_ns: 0,
            io_peer: &[],
            telemetry: &tel,
            generation: 1,
        };
        let mut stages: Vec<TxStage<PktBuf>> = (0..2).map(|_| TxStage::new(64)).collect();
        let mut s = Scratch::default();
        let mut c = Local::default();
        let mut punted = Vec::new();
        let mut freed = 0;
        process_burst(
            Mode::Forward,
            &ctx,
            &mut pkts,
            &mut s,
            &mut stages,
            &mut c,
            |_| freed += 1,
            |p: Punt<PktBuf>| {
                punted.push((p.kind, p.nh, p.buf.data().to_vec()));
                Ok(())
            },
        );
        let mut sent = Vec::new();
        for (i, st) in stages.iter().enumerate() {
            for b in st.classes.iter().flatten() {
                sent.push((i, b.data().to_vec()));
            }
        }
        Out {
            c,
            punted,
            sent,
            freed,
        }
    }

    /// Static next hops m1, m2 on port b; 10.2.0.0/24 via both (ECMP) when `ecmp`.
    fn ecmp_tables(ecmp: bool) -> Tables {
        let via = if ecmp { r#"["m1", "m2"]"# } else { r#""m1""# };
        let text = format!(
            r#"
[[ports]]
name = "a"
backend = "mem"
[[ports]]
name = "b"
backend = "mem"
[[next_hops]]
name = "m1"
port = "b"
mac = "02:00:00:00:09:01"
[[next_hops]]
name = "m2"
port = "b"
mac = "02:00:00:00:09:02"
[[routes]]
prefix = "10.2.0.0/24"
via = {via}
"#
        );
        let cfg =
            crate::config::Config::from_toml(&text, "t", std::path::Path::new("."), false).unwrap();
        crate::app::build_tables(&cfg, &[], None).unwrap()
    }

    #[test]
    fn ecmp_spreads_flows_and_plain_routes_need_no_hash() {
        let frames: Vec<Vec<u8>> = (0..32u16)
            .map(|i| {
                let mut udp = vec![0u8; 8];
                udp[0..2].copy_from_slice(&(1000 + i).to_be_bytes());
                udp[2..4].copy_from_slice(&53u16.to_be_bytes());
                udp[5] = 8;
                v4(Ipv4Addr::new(10, 2, 0, 2), 64, protocol::UDP, &udp)
            })
            .collect();
        let t = ecmp_tables(true);
        assert!(t.routes.next_hops.has_ecmp());
        let o = run(&t, &frames);
        assert_eq!(o.sent.len(), 32);
        let to_m2 = o.sent.iter().filter(|(_, f)| f[5] == 2).count();
        assert!(
            0 < to_m2 && to_m2 < 32,
            "both members used: {to_m2} of 32 to m2"
        );
        // The same flow always takes the same member.
        let again = run(&t, &frames);
        assert_eq!(o.sent, again.sent);
        let t = ecmp_tables(false);
        assert!(!t.routes.next_hops.has_ecmp());
        let o = run(&t, &frames);
        assert!(o.sent.iter().all(|(p, f)| *p == 1 && f[5] == 1));
    }

    #[test]
    fn router_traffic_goes_to_the_control_plane() {
        let t = tables();
        let echo = pk::icmpv4(8, 0, [0, 1, 0, 1], b"ping");
        let frames = vec![
            pk::arp_request(
                HOST_A,
                Ipv4Addr::new(10, 1, 0, 2),
                Ipv4Addr::new(10, 1, 0, 1),
                None,
            ),
            v4(Ipv4Addr::new(10, 1, 0, 1), 64, protocol::ICMP, &echo),
            // The router's address on the other port answers too.
            v4(Ipv4Addr::new(10, 2, 0, 1), 1, protocol::ICMP, &echo),
            pk::neighbor_solicit(
                HOST_A,
                "fd01::2".parse().unwrap(),
                "fd01::1".parse().unwrap(),
                None,
            ),
            // Not services the router offers, or not for routing.
            v4(Ipv4Addr::new(10, 1, 0, 1), 64, protocol::UDP, &[0; 8]),
            v4(Ipv4Addr::new(224, 0, 0, 251), 255, protocol::UDP, &[0; 8]),
            v6("fe80::9".parse().unwrap(), &[0; 8]),
        ];
        let o = run(&t, &frames);
        assert_eq!(o.c.local, 4);
        assert_eq!(o.punted.len(), 4);
        assert!(o.punted.iter().all(|p| p.0 == PuntKind::Local));
        assert_eq!(o.c.drops[DropReason::LocalNotHandled.index()], 3);
        assert_eq!(o.freed, 3);
        assert!(o.sent.is_empty());
        assert_eq!(o.c.local + o.c.total_drops(), frames.len() as u64);
    }

    #[test]
    fn expired_and_unroutable_packets_are_counted_then_sent_for_icmp() {
        let t = tables();
        let o = run(
            &t,
            &[
                v4(Ipv4Addr::new(10, 2, 0, 2), 1, protocol::UDP, &[0; 8]),
                v4(Ipv4Addr::new(192, 0, 2, 1), 64, protocol::UDP, &[0; 8]),
                v6("2001:db8::1".parse().unwrap(), &[0; 8]),
            ],
        );
        assert_eq!(o.c.drops[DropReason::TtlExpired.index()], 1);
        assert_eq!(o.c.drops[DropReason::NoRouteV4.index()], 1);
        assert_eq!(o.c.drops[DropReason::NoRouteV6.index()], 1);
        let kinds: Vec<PuntKind> = o.punted.iter().map(|p| p.0).collect();
        assert_eq!(
            kinds,
            [PuntKind::TtlExpired, PuntKind::NoRoute, PuntKind::NoRoute]
        );
        assert_eq!(
            o.c.local, 0,
            "drops, not local: the buffers only carry the ICMP"
        );
        assert_eq!(o.punted[0].2[22], 1, "as received, TTL untouched");
    }

    #[test]
    fn unresolved_next_hops_hold_until_published() {
        let t = tables();
        let to_b = v4(Ipv4Addr::new(10, 2, 0, 2), 64, protocol::UDP, &[0; 8]);
        let to_b6 = v6("fd02::5".parse().unwrap(), &[0; 8]);
        let o = run(&t, &[to_b.clone(), to_b6.clone()]);
        assert_eq!(o.c.local, 2);
        assert_eq!(o.punted.len(), 2);
        let (kind, nh, held) = &o.punted[0];
        assert_eq!(*kind, PuntKind::Hold);
        assert_eq!(
            t.nh_kind[*nh as usize],
            NhKind::Neighbor("10.2.0.2".parse().unwrap())
        );
        assert_eq!(&held[6..12], &MAC_B, "rewritten: source MAC of port b");
        assert_eq!(&held[0..6], &MAC_A, "destination MAC not yet known");
        assert_eq!(held[22], 63, "TTL decremented");
        assert_eq!(o.punted[1].0, PuntKind::Hold);
        assert_eq!(t.nh_kind[o.punted[1].1 as usize], NhKind::Connected);
        // The control plane resolved both: a new snapshot sharing the routes.
        let mut l2 = t.nh_l2.clone();
        l2[0] = NhL2::Mac(HOST_B);
        let host6 = u128::from("fd02::5".parse::<Ipv6Addr>().unwrap());
        let t2 = t.with_l2(l2, HostTable::build(&[], &[(host6, 1, [2, 0, 0, 0, 2, 5])]));
        assert!(std::sync::Arc::ptr_eq(&t.routes, &t2.routes));
        let o = run(&t2, &[to_b, to_b6]);
        assert!(o.punted.is_empty());
        assert_eq!(o.sent.len(), 2);
        assert_eq!(o.sent[0].0, 1, "out of port b");
        assert_eq!(&o.sent[0].1[0..6], &HOST_B);
        assert_eq!(&o.sent[1].1[0..6], &[2, 0, 0, 0, 2, 5]);
    }

    #[test]
    fn frames_for_other_macs_are_not_routed_on_interface_ports() {
        let mut t = tables();
        t.ports[0].l2_filter = true;
        let mut f = v4(Ipv4Addr::new(10, 2, 0, 2), 64, protocol::UDP, &[0; 8]);
        f[0..6].copy_from_slice(&[2, 9, 9, 9, 9, 9]);
        let o = run(&t, &[f]);
        assert_eq!(o.c.drops[DropReason::NotOurMac.index()], 1);
        // Broadcast still reaches the control plane (ARP).
        let arp = pk::arp_request(
            HOST_A,
            Ipv4Addr::new(10, 1, 0, 2),
            Ipv4Addr::new(10, 1, 0, 1),
            None,
        );
        let o = run(&t, &[arp]);
        assert_eq!(o.c.local, 1);
    }
}
