//! Forwarding tables and their publication.
//!
//! [`Tables`] is an immutable snapshot: routes (LPM v4/v6, next hops, ECMP), the
//! steering table, per-port forwarding flags, the router's own addresses and the
//! neighbours' MAC addresses. Writers (config load, reload, ctl, RAM, the control plane)
//! build a new snapshot off the fast path and [`TableHandle::publish`] it.
//!
//! The route table sits behind an `Arc`: the control plane publishes a neighbour's new
//! MAC with [`Tables::with_l2`], a copy that shares the (possibly 1M-route, 64 MiB) LPM
//! tables and replaces only the small next-hop MAC array and host table.
//!
//! Workers read through a [`TableReader`]: once per burst they compare one atomic
//! generation number; only when it changed do they take the new `Arc` (lock-free via
//! arc-swap). A swap loses no packets: a burst is processed entirely with the snapshot
//! it started with.
//!
//! Freeing an old snapshot (the IPv4 table alone is 64 MiB) must not happen on a worker,
//! where it would be a syscall on the fast path. So the publisher keeps every retired
//! snapshot until all workers have reported (after dropping their reference) that they
//! moved past it; only then does [`TableHandle::reclaim`], on the publisher's thread,
//! drop the last reference.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use arc_swap::ArcSwap;
use crossbeam::utils::CachePadded;

use crate::route::RouteTable;
use crate::steering::SteeringTable;

/// Per-port forwarding flags the fast path needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortFlags {
    /// Steering headers arriving on this port may be honoured.
    pub trusted: bool,
    /// Remove the steering header from packets leaving this port (toward plain hosts).
    pub strip_nsh: bool,
    /// Largest IP packet (L3 bytes) the port sends.
    pub mtu: u16,
    /// The port's own MAC address.
    pub mac: [u8; 6],
    /// Drop unicast frames for other MAC addresses (Linux interface ports; not files
    /// and generators, whose frames carry whatever addresses they were made with).
    pub l2_filter: bool,
    /// The port has IPv4 addresses: ARP received here goes to the control plane.
    pub has_v4: bool,
    /// The port has IPv6 addresses: neighbour discovery goes to the control plane.
    pub has_v6: bool,
    /// Transmit class weights (`tx_weights`, index = class); all zero = strict priority.
    pub tx_weights: [u16; super::tx::N_CLASSES],
    /// Rate limit in bits per second on the wire (`tx_rate_mbps`), 0 = none.
    pub tx_rate_bps: u64,
}

/// Most router addresses per address family (over all ports): the fast path compares a
/// destination with each, so the list stays tiny.
pub const MAX_LOCAL_ADDRS: usize = 8;

/// The router's own addresses: a flat array per family for the fast path, and the
/// per-port list (address, prefix length) for the control plane.
#[derive(Clone, Debug, Default)]
pub struct LocalAddrs {
    v4: [u32; MAX_LOCAL_ADDRS],
    n4: usize,
    v6: [u128; MAX_LOCAL_ADDRS],
    n6: usize,
    /// Addresses of each port (index = port), with their prefix lengths.
    pub by_port: Vec<Vec<(IpAddr, u8)>>,
}

impl LocalAddrs {
    /// The addresses of each port (config validation bounds their number; extra ones are
    /// ignored by the fast path).
    pub fn new(by_port: Vec<Vec<(IpAddr, u8)>>) -> Self {
        let mut l = LocalAddrs {
            by_port,
            ..Default::default()
        };
        for (a, _) in l.by_port.iter().flatten() {
            match a {
                IpAddr::V4(v) if l.n4 < MAX_LOCAL_ADDRS => {
                    l.v4[l.n4] = u32::from(*v);
                    l.n4 += 1;
                }
                IpAddr::V6(v) if l.n6 < MAX_LOCAL_ADDRS => {
                    l.v6[l.n6] = u128::from(*v);
                    l.n6 += 1;
                }
                _ => {}
            }
        }
        l
    }

    /// True when `a` (host order) is one of the router's IPv4 addresses.
    #[inline]
    pub fn is_local_v4(&self, a: u32) -> bool {
        self.v4[..self.n4.min(MAX_LOCAL_ADDRS)].contains(&a)
    }

    /// True when `a` is one of the router's IPv6 addresses.
    #[inline]
    pub fn is_local_v6(&self, a: u128) -> bool {
        self.v6[..self.n6.min(MAX_LOCAL_ADDRS)].contains(&a)
    }

    /// True when the router has no address at all (no control plane needed).
    pub fn is_empty(&self) -> bool {
        self.n4 == 0 && self.n6 == 0
    }

    /// The addresses of port `p`.
    pub fn of_port(&self, p: usize) -> &[(IpAddr, u8)] {
        self.by_port.get(p).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// How a next hop's destination MAC is found (hot: read per routed packet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NhL2 {
    /// Known: configured, or resolved by ARP/ND.
    Mac([u8; 6]),
    /// Being resolved (or resolution failed): packets go to the control plane, which
    /// holds a few and drops the rest, counted.
    Pending,
    /// A connected subnet: the destination itself is the neighbour, looked up in
    /// [`Tables::hosts`]; a miss goes to the control plane to be resolved.
    Connected,
}

/// What a next hop is, for the control plane (cold).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NhKind {
    /// Configured with a MAC.
    Static,
    /// Configured with an IP address, resolved by ARP/ND.
    Neighbor(IpAddr),
    /// The connected route of a port address.
    Connected,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Host4 {
    ip: u32,
    port: u16,
    used: bool,
    mac: [u8; 6],
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Host6 {
    ip: u128,
    port: u16,
    used: bool,
    mac: [u8; 6],
}

/// Resolved neighbours on connected subnets: small open-addressing tables (load at most
/// one half, so a probe ends at an empty slot after a few compares), rebuilt by the
/// control plane whenever a neighbour changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostTable {
    v4: Box<[Host4]>,
    v6: Box<[Host6]>,
}

#[inline]
fn slot_of(h: u64, len: usize) -> usize {
    // len is a power of two.
    ((h.wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 32) as usize & (len - 1)
}

#[inline]
fn fold6(ip: u128) -> u64 {
    (ip as u64) ^ ((ip >> 64) as u64).rotate_left(17)
}

impl HostTable {
    /// A table of the given neighbours (address, port, MAC).
    pub fn build(v4: &[(u32, u16, [u8; 6])], v6: &[(u128, u16, [u8; 6])]) -> Self {
        let size = |n: usize| {
            if n == 0 {
                0
            } else {
                (2 * n).next_power_of_two().max(16)
            }
        };
        let mut t4 = vec![Host4::default(); size(v4.len())].into_boxed_slice();
        for &(ip, port, mac) in v4 {
            let mut i = slot_of(u64::from(ip), t4.len());
            while t4[i].used && !(t4[i].ip == ip && t4[i].port == port) {
                i = (i + 1) & (t4.len() - 1);
            }
            t4[i] = Host4 {
                ip,
                port,
                used: true,
                mac,
            };
        }
        let mut t6 = vec![Host6::default(); size(v6.len())].into_boxed_slice();
        for &(ip, port, mac) in v6 {
            let mut i = slot_of(fold6(ip), t6.len());
            while t6[i].used && !(t6[i].ip == ip && t6[i].port == port) {
                i = (i + 1) & (t6.len() - 1);
            }
            t6[i] = Host6 {
                ip,
                port,
                used: true,
                mac,
            };
        }
        HostTable { v4: t4, v6: t6 }
    }

    /// The MAC of IPv4 neighbour `ip` (host order) on `port`.
    #[inline]
    pub fn get_v4(&self, ip: u32, port: u16) -> Option<[u8; 6]> {
        let len = self.v4.len();
        if len == 0 {
            return None;
        }
        let mut i = slot_of(u64::from(ip), len);
        for _ in 0..len {
            let h = self.v4.get(i)?;
            if !h.used {
                return None;
            }
            if h.ip == ip && h.port == port {
                return Some(h.mac);
            }
            i = (i + 1) & (len - 1);
        }
        None
    }

    /// The MAC of IPv6 neighbour `ip` on `port`.
    #[inline]
    pub fn get_v6(&self, ip: u128, port: u16) -> Option<[u8; 6]> {
        let len = self.v6.len();
        if len == 0 {
            return None;
        }
        let mut i = slot_of(fold6(ip), len);
        for _ in 0..len {
            let h = self.v6.get(i)?;
            if !h.used {
                return None;
            }
            if h.ip == ip && h.port == port {
                return Some(h.mac);
            }
            i = (i + 1) & (len - 1);
        }
        None
    }

    /// Number of neighbours held.
    pub fn len(&self) -> usize {
        self.v4.iter().filter(|h| h.used).count() + self.v6.iter().filter(|h| h.used).count()
    }

    /// True when no neighbour is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One immutable snapshot of everything the fast path looks up.
pub struct Tables {
    /// LPM tables and next hops (shared between snapshots that differ only in L2).
    pub routes: Arc<RouteTable>,
    /// Steering destinations, keys and epoch.
    pub steering: SteeringTable,
    /// Flags per port index.
    pub ports: Vec<PortFlags>,
    /// Telemetry destination index per next hop (for routed traffic).
    pub nh_dest: Vec<u16>,
    /// The router's own addresses.
    pub local: LocalAddrs,
    /// Per next hop: its destination MAC, or how to find it. A next hop beyond the end
    /// uses the MAC in its [`crate::route::NextHop`].
    pub nh_l2: Vec<NhL2>,
    /// Per next hop: what it is (for the control plane).
    pub nh_kind: Vec<NhKind>,
    /// Resolved neighbours on connected subnets.
    pub hosts: HostTable,
}

impl Tables {
    /// Tables with only routes and steering: every next hop static, no router addresses.
    pub fn new(
        routes: RouteTable,
        steering: SteeringTable,
        ports: Vec<PortFlags>,
        nh_dest: Vec<u16>,
    ) -> Self {
        let n = routes.next_hops.len();
        let nh_l2 = routes
            .next_hops
            .hops()
            .iter()
            .map(|h| NhL2::Mac(h.dst_mac))
            .collect();
        Tables {
            routes: Arc::new(routes),
            steering,
            ports,
            nh_dest,
            local: LocalAddrs::default(),
            nh_l2,
            nh_kind: vec![NhKind::Static; n],
            hosts: HostTable::default(),
        }
    }

    /// A copy with new neighbour information, sharing the route table (cheap: no LPM
    /// table is copied).
    pub fn with_l2(&self, nh_l2: Vec<NhL2>, hosts: HostTable) -> Tables {
        Tables {
            routes: Arc::clone(&self.routes),
            steering: self.steering.clone(),
            ports: self.ports.clone(),
            nh_dest: self.nh_dest.clone(),
            local: self.local.clone(),
            nh_l2,
            nh_kind: self.nh_kind.clone(),
            hosts,
        }
    }
}

impl Tables {
    /// A copy with a new steering table (the RAM's publication), sharing the route
    /// table and copying only the small per-port and per-next-hop arrays.
    pub fn with_steering(&self, steering: SteeringTable) -> Tables {
        Tables {
            routes: Arc::clone(&self.routes),
            steering,
            ports: self.ports.clone(),
            nh_dest: self.nh_dest.clone(),
            local: self.local.clone(),
            nh_l2: self.nh_l2.clone(),
            nh_kind: self.nh_kind.clone(),
            hosts: self.hosts.clone(),
        }
    }
}

/// Shared handle through which tables are published and read.
pub struct TableHandle {
    current: ArcSwap<Tables>,
    generation: CachePadded<AtomicU64>,
    seen: Box<[CachePadded<AtomicU64>]>,
    retired: Mutex<Vec<(u64, Arc<Tables>)>>,
}

impl TableHandle {
    /// A handle for `workers` readers, starting with `t` at generation 1.
    pub fn new(t: Tables, workers: usize) -> Arc<Self> {
        Arc::new(TableHandle {
            current: ArcSwap::from_pointee(t),
            generation: CachePadded::new(AtomicU64::new(1)),
            seen: (0..workers)
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
            retired: Mutex::new(Vec::new()),
        })
    }

    /// The current snapshot (cold readers: ctl, stats, RAM).
    pub fn load(&self) -> Arc<Tables> {
        self.current.load_full()
    }

    /// Current generation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Publishes a new snapshot and returns its generation. The old one is retired and
    /// freed by a later [`TableHandle::reclaim`] once no worker can hold it.
    pub fn publish(&self, t: Tables) -> u64 {
        let retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        self.publish_locked(retired, t)
    }

    /// Builds a new snapshot from the current one and publishes it, atomically with
    /// respect to other publishers (so a neighbour update never undoes a route update
    /// published at the same time). `f` returning `None` publishes nothing.
    pub fn update(&self, f: impl FnOnce(&Tables) -> Option<Tables>) -> Option<u64> {
        let retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        let cur = self.current.load_full();
        let t = f(&cur)?;
        drop(cur);
        Some(self.publish_locked(retired, t))
    }

    fn publish_locked(
        &self,
        mut retired: MutexGuard<'_, Vec<(u64, Arc<Tables>)>>,
        t: Tables,
    ) -> u64 {
        let old = self.current.swap(Arc::new(t));
        let g = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        retired.push((g, old));
        drop(retired);
        self.reclaim();
        g
    }

    /// Drops retired snapshots no worker can still be using. Returns how many remain.
    pub fn reclaim(&self) -> usize {
        let min_seen = self
            .seen
            .iter()
            .map(|s| s.load(Ordering::Acquire))
            .min()
            .unwrap_or(u64::MAX);
        let mut retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        // A snapshot retired by generation g was current before g; a worker that has seen
        // g (or later) has dropped it.
        retired.retain(|(g, _)| *g > min_seen);
        retired.len()
    }

    /// Marks worker `w` as gone (it will never read again), so reclaim does not wait for it.
    pub fn retire_reader(&self, w: usize) {
        if let Some(s) = self.seen.get(w) {
            s.store(u64::MAX, Ordering::Release);
        }
    }

    /// A reader for worker `w`.
    pub fn reader(self: &Arc<Self>, w: usize) -> TableReader {
        let g = self.generation();
        let t = self.current.load_full();
        if let Some(s) = self.seen.get(w) {
            s.store(g, Ordering::Release);
        }
        TableReader {
            handle: Arc::clone(self),
            worker: w,
            generation: g,
            tables: t,
        }
    }
}

/// A worker's view of the tables.
pub struct TableReader {
    handle: Arc<TableHandle>,
    worker: usize,
    generation: u64,
    tables: Arc<Tables>,
}

impl TableReader {
    /// Picks up a newer snapshot if one was published (one atomic load when none was).
    #[inline]
    pub fn refresh(&mut self) {
        let g = self.handle.generation.load(Ordering::Acquire);
        if g != self.generation {
            self.swap(g);
        }
    }

    #[cold]
    fn swap(&mut self, g: u64) {
        let new = self.handle.current.load_full();
        let old = std::mem::replace(&mut self.tables, new);
        // Drop our reference before reporting, so the publisher's is the last one.
        drop(old);
        self.generation = g;
        if let Some(s) = self.handle.seen.get(self.worker) {
            s.store(g, Ordering::Release);
        }
    }

    /// The snapshot in use.
    #[inline]
    pub fn get(&self) -> &Tables {
        &self.tables
    }

    /// Generation of the snapshot in use.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_table_finds_what_it_holds_and_nothing_else() {
        let v4: Vec<(u32, u16, [u8; 6])> = (0..100u32)
            .map(|i| {
                (
                    0x0a01_0000 + i * 7,
                    (i % 3) as u16,
                    [2, 0, 0, 0, 0, i as u8],
                )
            })
            .collect();
        let v6: Vec<(u128, u16, [u8; 6])> = (0..50u128)
            .map(|i| {
                (
                    (0xfd01u128 << 112) | (i << 64) | i,
                    1,
                    [2, 0, 0, 0, 1, i as u8],
                )
            })
            .collect();
        let t = HostTable::build(&v4, &v6);
        assert_eq!(t.len(), 150);
        for &(ip, port, mac) in &v4 {
            assert_eq!(t.get_v4(ip, port), Some(mac));
            assert_eq!(t.get_v4(ip, port + 1), None, "another port");
            assert_eq!(t.get_v4(ip + 1, port), None);
        }
        for &(ip, port, mac) in &v6 {
            assert_eq!(t.get_v6(ip, port), Some(mac));
            assert_eq!(t.get_v6(ip ^ 1 << 100, port), None);
        }
        let e = HostTable::default();
        assert_eq!(e.get_v4(1, 0), None);
        assert_eq!(e.get_v6(1, 0), None);
    }

    #[test]
    fn local_addrs_match_exactly() {
        let l = LocalAddrs::new(vec![
            vec![
                ("10.1.0.1".parse().unwrap(), 24),
                ("fd01::1".parse().unwrap(), 64),
            ],
            vec![("10.2.0.1".parse().unwrap(), 24)],
        ]);
        assert!(l.is_local_v4(0x0a01_0001));
        assert!(l.is_local_v4(0x0a02_0001));
        assert!(!l.is_local_v4(0x0a01_0002));
        assert!(l.is_local_v6(u128::from("fd01::1".parse::<std::net::Ipv6Addr>().unwrap())));
        assert!(!l.is_local_v6(1));
        assert_eq!(l.of_port(1).len(), 1);
        assert!(l.of_port(5).is_empty());
        assert!(LocalAddrs::default().is_empty());
    }
}
