//! IPv4 longest-prefix match, DIR-24-8 style (after DPDK `rte_lpm`).
//!
//! Hot: [`Lpm4::lookup`] and [`Lpm4::lookup_burst`] (no allocation, no panics, one memory
//! read for an address whose best route is /24 or shorter, two reads otherwise).
//! Cold: [`Lpm4::new`], [`Lpm4::insert`], [`Lpm4::remove`], [`Lpm4::iter`].
//!
//! # Layout
//!
//! * `tbl24`: 2^24 entries indexed by the top 24 bits of the address (64 MiB, allocated
//!   zeroed up front, so the kernel pages it in lazily as routes are written).
//! * `tbl8`: groups of 256 entries indexed by the low 8 bits of the address. A tbl24 entry
//!   whose /24 holds at least one route longer than /24 points to one group. Groups are
//!   allocated on demand up to a configurable limit (1 KiB each); a freed group is reused.
//! * `rules`: per-length hash maps `prefix → value`, the source of truth used to rebuild
//!   entries on delete (the next covering less-specific route takes over, as in `rte_lpm`).
//!
//! # Entry encoding (`u32`, same in tbl24 and tbl8)
//!
//! ```text
//!  31    30    29..24      23..0
//! VALID  EXT   DEPTH(6)    VALUE (24 bits) | tbl8 GROUP INDEX when EXT
//! ```
//!
//! * `VALID`: the entry holds a route (or, with `EXT`, points to a group).
//! * `EXT` (tbl24 only): the low 24 bits are a tbl8 group index; depth is unused.
//! * `DEPTH`: length (0..=32) of the route that wrote the entry; insert overwrites only
//!   entries of equal or smaller depth, delete rewrites only entries of the deleted depth.
//! * `VALUE`: the route's value, at most [`Lpm4::MAX_VALUE`] (2^24 - 1).
//!
//! # Invariants
//!
//! 1. A tbl24 entry is `EXT` exactly when a rule longer than /24 lies inside its /24.
//! 2. Every other entry, in tbl24 or in a group, is the longest rule covering all the
//!    addresses the entry stands for (`VALID`, that rule's depth and value), or 0.
//! 3. So a group whose entries all have depth ≤ 24 is redundant: remove folds it back into
//!    its tbl24 entry and frees it.
//!
//! A /0 default route is an ordinary rule of depth 0 (it writes every tbl24 entry once).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use thiserror::Error;

use super::prefetch;

const TBL24_LEN: usize = 1 << 24;
const GROUP_LEN: usize = 256;
const VALID: u32 = 1 << 31;
const EXT: u32 = 1 << 30;
const DEPTH_SHIFT: u32 = 24;
const DEPTH_MASK: u32 = 0x3f;
const VALUE_MASK: u32 = (1 << 24) - 1;
/// How many addresses `lookup_burst` prefetches before resolving them.
const PREFETCH_CHUNK: usize = 64;

type Group = [u32; GROUP_LEN];

/// Errors of [`Lpm4`] and [`super::Lpm6`] updates.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LpmError {
    /// The prefix length is longer than the address.
    #[error("prefix length /{len} is longer than /{max}, the longest {family} prefix")]
    BadLength {
        /// Length given.
        len: u8,
        /// 32 or 128.
        max: u8,
        /// "IPv4" or "IPv6".
        family: &'static str,
    },
    /// Bits beyond the prefix length are set; routes must be written in canonical form.
    #[error("prefix {addr}/{len} has host bits set (did you mean {masked}/{len}?)")]
    HostBitsSet {
        /// Address given.
        addr: IpAddr,
        /// Length given.
        len: u8,
        /// The address with the host bits cleared.
        masked: IpAddr,
    },
    /// The value does not fit the entry's value field.
    #[error("route value {value} is larger than the maximum {max}")]
    ValueTooLarge {
        /// Value given.
        value: u32,
        /// Largest storable value.
        max: u32,
    },
    /// `remove` of a prefix that is not in the table.
    #[error("no route for {addr}/{len}")]
    NotFound {
        /// Address given.
        addr: IpAddr,
        /// Length given.
        len: u8,
    },
    /// Every tbl8 group is in use; the table is unchanged.
    #[error(
        "{family} LPM: all {max} tbl8 groups are in use; raise the group limit \
         (1 KiB of memory per group) or remove long prefixes"
    )]
    GroupsExhausted {
        /// The configured limit.
        max: u32,
        /// "IPv4" or "IPv6".
        family: &'static str,
    },
}

/// Memory held by an LPM table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryUsage {
    /// Bytes of the lookup structures (what the fast path reads), allocated size: pages of
    /// tbl24 never written may not be resident.
    pub lookup_bytes: usize,
    /// Estimated bytes of the rules table and other build-time state.
    pub build_bytes: usize,
}

/// IPv4 longest-prefix-match table (DIR-24-8). See the module docs for the layout.
pub struct Lpm4 {
    tbl24: Box<[u32; TBL24_LEN]>,
    tbl8: Vec<Group>,
    free_groups: Vec<u32>,
    max_tbl8_groups: u32,
    /// `rules[depth]`: masked prefix (host order) → value.
    rules: Vec<HashMap<u32, u32>>,
    len: usize,
}

#[inline]
const fn entry(depth: u8, value: u32) -> u32 {
    VALID | ((depth as u32) << DEPTH_SHIFT) | value
}

#[inline]
const fn depth_of(e: u32) -> u8 {
    ((e >> DEPTH_SHIFT) & DEPTH_MASK) as u8
}

#[inline]
const fn mask(len: u8) -> u32 {
    if len == 0 { 0 } else { u32::MAX << (32 - len) }
}

/// Allocates a zeroed tbl24 on the heap (calloc: pages are mapped lazily).
fn zeroed_tbl24() -> Box<[u32; TBL24_LEN]> {
    boxed_tbl24(vec![0u32; TBL24_LEN])
}

fn boxed_tbl24(v: Vec<u32>) -> Box<[u32; TBL24_LEN]> {
    match v.into_boxed_slice().try_into() {
        Ok(b) => b,
        Err(_) => unreachable!("tbl24 vector has exactly 2^24 entries"),
    }
}

impl Lpm4 {
    /// Largest value a route can carry (24 bits).
    pub const MAX_VALUE: u32 = VALUE_MASK;
    /// A sensible default for `max_tbl8_groups` (64 MiB worth of groups at most).
    pub const DEFAULT_TBL8_GROUPS: u32 = 65536;
    /// Largest usable `max_tbl8_groups` (the group index has 24 bits).
    pub const MAX_TBL8_GROUPS: u32 = 1 << 24;

    /// Creates an empty table that may use up to `max_tbl8_groups` tbl8 groups (one per /24
    /// holding routes longer than /24; clamped to [`Self::MAX_TBL8_GROUPS`]). Allocates the
    /// 64 MiB tbl24 up front (zeroed, paged in lazily); groups are allocated on demand.
    pub fn new(max_tbl8_groups: u32) -> Self {
        Lpm4 {
            tbl24: zeroed_tbl24(),
            tbl8: Vec::new(),
            free_groups: Vec::new(),
            max_tbl8_groups: max_tbl8_groups.min(Self::MAX_TBL8_GROUPS),
            rules: (0..=32).map(|_| HashMap::new()).collect(),
            len: 0,
        }
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// tbl8 groups in use (one per /24 that holds routes longer than /24).
    pub fn tbl8_groups_used(&self) -> usize {
        self.tbl8.len() - self.free_groups.len()
    }

    /// The configured tbl8 group limit.
    pub fn max_tbl8_groups(&self) -> u32 {
        self.max_tbl8_groups
    }

    /// Memory held by the table.
    pub fn memory(&self) -> MemoryUsage {
        let rules: usize = self
            .rules
            .iter()
            // hashbrown: one control byte per bucket, ~8/7 buckets per element slot.
            .map(|m| m.capacity() * (size_of::<(u32, u32)>() + 1) * 8 / 7)
            .sum();
        MemoryUsage {
            lookup_bytes: TBL24_LEN * size_of::<u32>() + self.tbl8.capacity() * size_of::<Group>(),
            build_bytes: rules + self.free_groups.capacity() * size_of::<u32>(),
        }
    }

    /// Releases spare capacity of the growable parts (tbl8, rules) after a bulk build.
    pub fn shrink_to_fit(&mut self) {
        self.tbl8.shrink_to_fit();
        self.free_groups.shrink_to_fit();
        for rules in &mut self.rules {
            rules.shrink_to_fit();
        }
    }

    /// The value of the route for exactly `prefix/len`, if present (cold).
    pub fn get(&self, prefix: Ipv4Addr, len: u8) -> Option<u32> {
        let ip = u32::from(prefix);
        self.rules.get(usize::from(len))?.get(&ip).copied()
    }

    /// Adds the route `prefix/len → value`, replacing the value of an existing route for
    /// the same prefix. Host bits must be zero. On error the table is unchanged.
    pub fn insert(&mut self, prefix: Ipv4Addr, len: u8, value: u32) -> Result<(), LpmError> {
        let ip = check_prefix(prefix, len)?;
        if value > Self::MAX_VALUE {
            return Err(LpmError::ValueTooLarge {
                value,
                max: Self::MAX_VALUE,
            });
        }
        let new = entry(len, value);
        if len <= 24 {
            let start = (ip >> 8) as usize;
            let count = 1usize << (24 - len);
            for i in start..start + count {
                let e = self.tbl24[i];
                if e & EXT != 0 {
                    let group = &mut self.tbl8[(e & VALUE_MASK) as usize];
                    for x in group.iter_mut() {
                        if *x & VALID == 0 || depth_of(*x) <= len {
                            *x = new;
                        }
                    }
                } else if e & VALID == 0 || depth_of(e) <= len {
                    self.tbl24[i] = new;
                }
            }
        } else {
            let i24 = (ip >> 8) as usize;
            let e = self.tbl24[i24];
            let g = if e & EXT != 0 {
                e & VALUE_MASK
            } else {
                // The new group starts as a copy of what the /24 resolved to so far.
                let g = self.alloc_group(if e & VALID != 0 { e } else { 0 })?;
                self.tbl24[i24] = VALID | EXT | g;
                g
            };
            let group = &mut self.tbl8[g as usize];
            let start = (ip & 0xff) as usize;
            let count = 1usize << (32 - len);
            for x in &mut group[start..start + count] {
                if *x & VALID == 0 || depth_of(*x) <= len {
                    *x = new;
                }
            }
        }
        if self.rules[usize::from(len)].insert(ip, value).is_none() {
            self.len += 1;
        }
        Ok(())
    }

    /// Removes the route for exactly `prefix/len`; addresses it covered fall back to the
    /// next covering shorter route (or to no route).
    pub fn remove(&mut self, prefix: Ipv4Addr, len: u8) -> Result<(), LpmError> {
        let ip = check_prefix(prefix, len)?;
        if self.rules[usize::from(len)].remove(&ip).is_none() {
            return Err(LpmError::NotFound {
                addr: IpAddr::V4(prefix),
                len,
            });
        }
        self.len -= 1;
        let new = self.covering_rule(ip, len).map_or(0, |(d, v)| entry(d, v));
        if len <= 24 {
            let start = (ip >> 8) as usize;
            let count = 1usize << (24 - len);
            for i in start..start + count {
                let e = self.tbl24[i];
                if e & EXT != 0 {
                    let group = &mut self.tbl8[(e & VALUE_MASK) as usize];
                    for x in group.iter_mut() {
                        if *x & VALID != 0 && depth_of(*x) == len {
                            *x = new;
                        }
                    }
                } else if e & VALID != 0 && depth_of(e) == len {
                    self.tbl24[i] = new;
                }
            }
        } else {
            let i24 = (ip >> 8) as usize;
            let e = self.tbl24[i24];
            debug_assert!(e & EXT != 0, "a /{len} rule exists, so its /24 has a group");
            if e & EXT == 0 {
                return Ok(());
            }
            let g = e & VALUE_MASK;
            let group = &mut self.tbl8[g as usize];
            let start = (ip & 0xff) as usize;
            let count = 1usize << (32 - len);
            for x in &mut group[start..start + count] {
                if *x & VALID != 0 && depth_of(*x) == len {
                    *x = new;
                }
            }
            // Invariant 3: no route longer than /24 left in this /24 → fold the group back.
            // (Invalid entries have depth 0.)
            if group.iter().all(|&x| depth_of(x) <= 24) {
                self.tbl24[i24] = group[0];
                self.free_group(g);
            }
        }
        Ok(())
    }

    /// Longest rule strictly shorter than `len` covering `ip`: (depth, value).
    fn covering_rule(&self, ip: u32, len: u8) -> Option<(u8, u32)> {
        (0..len).rev().find_map(|d| {
            let rules = &self.rules[usize::from(d)];
            if rules.is_empty() {
                return None;
            }
            rules.get(&(ip & mask(d))).map(|&v| (d, v))
        })
    }

    fn alloc_group(&mut self, fill: u32) -> Result<u32, LpmError> {
        if let Some(g) = self.free_groups.pop() {
            self.tbl8[g as usize] = [fill; GROUP_LEN];
            return Ok(g);
        }
        let used = self.tbl8.len();
        if used >= self.max_tbl8_groups as usize {
            return Err(LpmError::GroupsExhausted {
                max: self.max_tbl8_groups,
                family: "IPv4",
            });
        }
        self.tbl8.push([fill; GROUP_LEN]);
        Ok(used as u32)
    }

    fn free_group(&mut self, g: u32) {
        self.tbl8[g as usize] = [0; GROUP_LEN];
        self.free_groups.push(g);
    }

    /// Value of the longest route matching `addr` (host byte order), or `None`.
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        // In range: addr >> 8 < 2^24 = tbl24.len().
        let mut e = self.tbl24[(addr >> 8) as usize];
        if e & EXT != 0 {
            e = match self.tbl8.get((e & VALUE_MASK) as usize) {
                // In range: a u8 index into 256 entries.
                Some(group) => group[usize::from(addr as u8)],
                None => 0,
            };
        }
        if e & VALID != 0 {
            Some(e & VALUE_MASK)
        } else {
            None
        }
    }

    /// Looks up a burst: `out[i] = self.lookup(addrs[i])` for `i < min(addrs.len(),
    /// out.len())`. Prefetches the tbl24 entries of up to 64 addresses before resolving
    /// them, so their cache misses overlap.
    pub fn lookup_burst(&self, addrs: &[u32], out: &mut [Option<u32>]) {
        debug_assert_eq!(addrs.len(), out.len());
        for (a, o) in addrs
            .chunks(PREFETCH_CHUNK)
            .zip(out.chunks_mut(PREFETCH_CHUNK))
        {
            for &x in a {
                prefetch(&self.tbl24[(x >> 8) as usize]);
            }
            for (&x, o) in a.iter().zip(o.iter_mut()) {
                *o = self.lookup(x);
            }
        }
    }

    /// All routes as `(prefix, len, value)`, ordered by length, then by prefix (cold:
    /// sorts one length at a time).
    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Addr, u8, u32)> + '_ {
        self.rules.iter().zip(0u8..).flat_map(|(rules, len)| {
            let mut v: Vec<(u32, u32)> = rules.iter().map(|(&p, &v)| (p, v)).collect();
            v.sort_unstable();
            v.into_iter().map(move |(p, v)| (Ipv4Addr::from(p), len, v))
        })
    }
}

/// Validates `prefix/len` and returns the prefix in host order.
fn check_prefix(prefix: Ipv4Addr, len: u8) -> Result<u32, LpmError> {
    if len > 32 {
        return Err(LpmError::BadLength {
            len,
            max: 32,
            family: "IPv4",
        });
    }
    let ip = u32::from(prefix);
    if ip & !mask(len) != 0 {
        return Err(LpmError::HostBitsSet {
            addr: IpAddr::V4(prefix),
            len,
            masked: IpAddr::V4(Ipv4Addr::from(ip & mask(len))),
        });
    }
    Ok(ip)
}

impl Clone for Lpm4 {
    fn clone(&self) -> Self {
        Lpm4 {
            // Through a Vec: Box<[u32; 2^24]>::clone could build the array on the stack.
            tbl24: boxed_tbl24(self.tbl24.to_vec()),
            tbl8: self.tbl8.clone(),
            free_groups: self.free_groups.clone(),
            max_tbl8_groups: self.max_tbl8_groups,
            rules: self.rules.clone(),
            len: self.len,
        }
    }
}

impl std::fmt::Debug for Lpm4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lpm4")
            .field("routes", &self.len)
            .field("tbl8_groups_used", &self.tbl8_groups_used())
            .field("max_tbl8_groups", &self.max_tbl8_groups)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("test address")
    }

    fn look(t: &Lpm4, s: &str) -> Option<u32> {
        t.lookup(u32::from(ip(s)))
    }

    #[test]
    fn empty_table_misses() {
        let t = Lpm4::new(16);
        assert!(t.is_empty());
        assert_eq!(look(&t, "1.2.3.4"), None);
        assert_eq!(look(&t, "0.0.0.0"), None);
        assert_eq!(look(&t, "255.255.255.255"), None);
    }

    #[test]
    fn default_route_matches_everything() {
        let mut t = Lpm4::new(16);
        t.insert(ip("0.0.0.0"), 0, 7).unwrap();
        assert_eq!(t.len(), 1);
        for a in ["0.0.0.0", "1.2.3.4", "255.255.255.255", "10.0.0.1"] {
            assert_eq!(look(&t, a), Some(7), "{a}");
        }
        t.insert(ip("10.0.0.0"), 8, 1).unwrap();
        assert_eq!(look(&t, "10.9.9.9"), Some(1));
        assert_eq!(look(&t, "11.0.0.0"), Some(7));
        t.remove(ip("0.0.0.0"), 0).unwrap();
        assert_eq!(look(&t, "11.0.0.0"), None);
        assert_eq!(look(&t, "10.9.9.9"), Some(1));
    }

    #[test]
    fn host_route() {
        let mut t = Lpm4::new(16);
        t.insert(ip("192.0.2.1"), 32, 5).unwrap();
        assert_eq!(look(&t, "192.0.2.1"), Some(5));
        assert_eq!(look(&t, "192.0.2.0"), None);
        assert_eq!(look(&t, "192.0.2.2"), None);
        assert_eq!(t.tbl8_groups_used(), 1);
        t.remove(ip("192.0.2.1"), 32).unwrap();
        assert_eq!(look(&t, "192.0.2.1"), None);
        assert_eq!(t.tbl8_groups_used(), 0);
    }

    #[test]
    fn long_prefixes_in_tbl8() {
        let mut t = Lpm4::new(16);
        t.insert(ip("10.0.0.0"), 24, 24).unwrap();
        let mut start = 0x0a00_0000u32;
        // 10.0.0.128/25, 10.0.0.192/26, ... 10.0.0.255/32: nested, each in the upper half.
        for len in 25..=32u8 {
            start |= 1 << (32 - len);
            t.insert(Ipv4Addr::from(start), len, u32::from(len))
                .unwrap();
        }
        assert_eq!(t.tbl8_groups_used(), 1);
        assert_eq!(look(&t, "10.0.0.0"), Some(24));
        assert_eq!(look(&t, "10.0.0.127"), Some(24));
        assert_eq!(look(&t, "10.0.0.128"), Some(25));
        assert_eq!(look(&t, "10.0.0.191"), Some(25));
        assert_eq!(look(&t, "10.0.0.192"), Some(26));
        assert_eq!(look(&t, "10.0.0.224"), Some(27));
        assert_eq!(look(&t, "10.0.0.252"), Some(30));
        assert_eq!(look(&t, "10.0.0.254"), Some(31));
        assert_eq!(look(&t, "10.0.0.255"), Some(32));
        assert_eq!(look(&t, "10.0.1.0"), None);
    }

    #[test]
    fn overlapping_prefixes_take_the_longest() {
        let mut t = Lpm4::new(16);
        t.insert(ip("10.0.0.0"), 8, 8).unwrap();
        t.insert(ip("10.1.2.0"), 24, 24).unwrap();
        t.insert(ip("10.1.0.0"), 16, 16).unwrap(); // shorter after longer
        t.insert(ip("10.1.2.64"), 26, 26).unwrap();
        t.insert(ip("10.0.0.0"), 7, 7).unwrap();
        assert_eq!(look(&t, "11.0.0.0"), Some(7));
        assert_eq!(look(&t, "10.0.0.0"), Some(8));
        assert_eq!(look(&t, "10.1.0.0"), Some(16));
        assert_eq!(look(&t, "10.1.2.1"), Some(24));
        assert_eq!(look(&t, "10.1.2.64"), Some(26));
        assert_eq!(look(&t, "10.1.2.128"), Some(24));
        assert_eq!(look(&t, "10.1.3.0"), Some(16));
        assert_eq!(look(&t, "12.0.0.0"), None);
    }

    #[test]
    fn short_prefix_written_into_existing_group() {
        let mut t = Lpm4::new(16);
        t.insert(ip("10.1.2.64"), 26, 26).unwrap();
        assert_eq!(look(&t, "10.1.2.1"), None);
        t.insert(ip("10.0.0.0"), 8, 8).unwrap();
        assert_eq!(look(&t, "10.1.2.1"), Some(8));
        assert_eq!(look(&t, "10.1.2.65"), Some(26));
        t.remove(ip("10.0.0.0"), 8).unwrap();
        assert_eq!(look(&t, "10.1.2.1"), None);
        assert_eq!(look(&t, "10.1.2.65"), Some(26));
    }

    #[test]
    fn delete_restores_covering_prefix() {
        let mut t = Lpm4::new(16);
        t.insert(ip("10.0.0.0"), 8, 8).unwrap();
        t.insert(ip("10.1.0.0"), 16, 16).unwrap();
        t.insert(ip("10.1.2.0"), 24, 24).unwrap();
        t.insert(ip("10.1.2.128"), 25, 25).unwrap();
        t.insert(ip("10.1.2.192"), 27, 27).unwrap();
        t.remove(ip("10.1.2.192"), 27).unwrap();
        assert_eq!(look(&t, "10.1.2.200"), Some(25));
        t.remove(ip("10.1.2.0"), 24).unwrap();
        assert_eq!(look(&t, "10.1.2.1"), Some(16));
        assert_eq!(look(&t, "10.1.2.200"), Some(25));
        t.remove(ip("10.1.0.0"), 16).unwrap();
        assert_eq!(look(&t, "10.1.2.1"), Some(8));
        assert_eq!(look(&t, "10.1.9.1"), Some(8));
        t.remove(ip("10.1.2.128"), 25).unwrap();
        assert_eq!(look(&t, "10.1.2.200"), Some(8));
        assert_eq!(t.tbl8_groups_used(), 0);
        assert_eq!(t.len(), 1);
        assert_eq!(
            t.remove(ip("10.1.0.0"), 16),
            Err(LpmError::NotFound {
                addr: "10.1.0.0".parse().unwrap(),
                len: 16
            })
        );
    }

    #[test]
    fn group_freed_with_last_long_prefix_and_reused() {
        let mut t = Lpm4::new(16);
        t.insert(ip("10.1.2.0"), 24, 24).unwrap();
        t.insert(ip("10.1.2.0"), 25, 25).unwrap();
        t.insert(ip("10.1.2.4"), 30, 30).unwrap();
        assert_eq!(t.tbl8_groups_used(), 1);
        t.remove(ip("10.1.2.0"), 25).unwrap();
        assert_eq!(t.tbl8_groups_used(), 1);
        assert_eq!(look(&t, "10.1.2.5"), Some(30));
        assert_eq!(look(&t, "10.1.2.1"), Some(24));
        t.remove(ip("10.1.2.4"), 30).unwrap();
        assert_eq!(t.tbl8_groups_used(), 0);
        // Folded back into tbl24: a plain entry of the /24.
        assert_eq!(t.tbl24[0x0a0102], entry(24, 24));
        assert_eq!(look(&t, "10.1.2.5"), Some(24));
        // The freed group is reused.
        t.insert(ip("10.9.9.9"), 32, 1).unwrap();
        assert_eq!(t.tbl8.len(), 1);
        assert_eq!(t.tbl8_groups_used(), 1);
        assert_eq!(look(&t, "10.9.9.8"), None);
        assert_eq!(look(&t, "10.9.9.9"), Some(1));
    }

    #[test]
    fn group_exhaustion_is_an_error_and_leaves_table_unchanged() {
        let mut t = Lpm4::new(2);
        t.insert(ip("10.0.0.0"), 25, 1).unwrap();
        t.insert(ip("10.0.1.0"), 25, 2).unwrap();
        let err = t.insert(ip("10.0.2.0"), 25, 3).unwrap_err();
        assert_eq!(
            err,
            LpmError::GroupsExhausted {
                max: 2,
                family: "IPv4"
            }
        );
        assert!(err.to_string().contains("raise the group limit"), "{err}");
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(ip("10.0.2.0"), 25), None);
        assert_eq!(look(&t, "10.0.2.1"), None);
        // Existing groups still take more long prefixes; short ones need no group.
        t.insert(ip("10.0.0.128"), 26, 4).unwrap();
        t.insert(ip("10.0.2.0"), 24, 5).unwrap();
        assert_eq!(look(&t, "10.0.0.129"), Some(4));
        assert_eq!(look(&t, "10.0.2.1"), Some(5));
        // Freeing one makes room again.
        t.remove(ip("10.0.1.0"), 25).unwrap();
        t.insert(ip("10.0.2.0"), 25, 3).unwrap();
        assert_eq!(look(&t, "10.0.2.1"), Some(3));
    }

    #[test]
    fn replace_value() {
        let mut t = Lpm4::new(16);
        t.insert(ip("10.0.0.0"), 8, 1).unwrap();
        t.insert(ip("10.0.0.0"), 30, 2).unwrap();
        t.insert(ip("10.0.0.0"), 8, 3).unwrap();
        t.insert(ip("10.0.0.0"), 30, 4).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(look(&t, "10.0.0.1"), Some(4));
        assert_eq!(look(&t, "10.0.0.5"), Some(3));
        assert_eq!(t.get(ip("10.0.0.0"), 8), Some(3));
    }

    #[test]
    fn bad_input_is_rejected() {
        let mut t = Lpm4::new(16);
        let err = t.insert(ip("10.0.0.1"), 8, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "prefix 10.0.0.1/8 has host bits set (did you mean 10.0.0.0/8?)"
        );
        assert!(matches!(
            t.insert(ip("10.0.0.0"), 33, 1),
            Err(LpmError::BadLength { len: 33, .. })
        ));
        assert!(matches!(
            t.insert(ip("10.0.0.0"), 8, 1 << 24),
            Err(LpmError::ValueTooLarge { .. })
        ));
        t.insert(ip("10.0.0.0"), 8, Lpm4::MAX_VALUE).unwrap();
        assert_eq!(look(&t, "10.1.1.1"), Some(Lpm4::MAX_VALUE));
        assert!(matches!(
            t.remove(ip("10.0.0.0"), 9),
            Err(LpmError::NotFound { .. })
        ));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn burst_matches_single_lookups_and_iter_is_sorted() {
        let mut t = Lpm4::new(16);
        t.insert(ip("10.0.0.0"), 8, 1).unwrap();
        t.insert(ip("10.0.0.0"), 28, 2).unwrap();
        t.insert(ip("192.168.0.0"), 16, 3).unwrap();
        t.insert(ip("9.0.0.0"), 8, 4).unwrap();
        let addrs: Vec<u32> = (0..200u32).map(|i| i.wrapping_mul(0x9e37_79b9)).collect();
        let mut out = vec![None; addrs.len()];
        t.lookup_burst(&addrs, &mut out);
        for (a, o) in addrs.iter().zip(&out) {
            assert_eq!(*o, t.lookup(*a));
        }
        let all: Vec<_> = t.iter().collect();
        assert_eq!(
            all,
            vec![
                (ip("9.0.0.0"), 8, 4),
                (ip("10.0.0.0"), 8, 1),
                (ip("192.168.0.0"), 16, 3),
                (ip("10.0.0.0"), 28, 2),
            ]
        );
        let c = t.clone();
        assert_eq!(c.iter().collect::<Vec<_>>(), all);
        assert_eq!(c.lookup(0x0a00_0001), Some(2));
    }

    // ---- property test against a naive reference ----

    /// Naive reference: a list of routes, longest match by scan.
    #[derive(Default)]
    struct Naive(Vec<(u32, u8, u32)>);

    impl Naive {
        fn insert(&mut self, p: u32, l: u8, v: u32) {
            match self.0.iter_mut().find(|r| r.0 == p && r.1 == l) {
                Some(r) => r.2 = v,
                None => self.0.push((p, l, v)),
            }
        }
        fn remove(&mut self, p: u32, l: u8) -> bool {
            let n = self.0.len();
            self.0.retain(|r| !(r.0 == p && r.1 == l));
            n != self.0.len()
        }
        fn lookup(&self, a: u32) -> Option<u32> {
            self.0
                .iter()
                .filter(|r| a & mask(r.1) == r.0)
                .max_by_key(|r| r.1)
                .map(|r| r.2)
        }
    }

    const BASES: [u32; 4] = [0x0a00_0000, 0x0a01_0200, 0xc0a8_0000, 0xffff_ff00];

    fn arb_len() -> impl Strategy<Value = u8> {
        prop_oneof![1 => 0u8..8, 3 => 8u8..=24, 6 => 20u8..=32]
    }

    /// Prefixes clustered around a few bases so that they overlap often.
    fn arb_prefix() -> impl Strategy<Value = (u32, u8)> {
        (0usize..5, any::<u32>(), arb_len()).prop_map(|(b, r, len)| {
            let a = match BASES.get(b) {
                Some(base) => base ^ (r & 0x0003_03ff),
                None => r,
            };
            (a & mask(len), len)
        })
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32, u8, u32),
        RemoveExisting(usize),
        RemoveAny(u32, u8),
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (arb_prefix(), 0..=Lpm4::MAX_VALUE).prop_map(|((p, l), v)| Op::Insert(p, l, v)),
            3 => any::<usize>().prop_map(Op::RemoveExisting),
            1 => arb_prefix().prop_map(|(p, l)| Op::RemoveAny(p, l)),
        ]
    }

    fn probes(p: u32, l: u8, r: u32) -> [u32; 5] {
        let last = p | !mask(l);
        [
            p,
            last,
            p | (r & !mask(l)),
            p.wrapping_sub(1),
            last.wrapping_add(1),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn matches_naive_reference(
            ops in proptest::collection::vec(arb_op(), 1..60),
            randoms in proptest::collection::vec(any::<u32>(), 32),
        ) {
            let mut t = Lpm4::new(64);
            let mut naive = Naive::default();
            let mut seen = Vec::new();
            for op in ops {
                let (p, l) = match op {
                    Op::Insert(p, l, v) => {
                        t.insert(Ipv4Addr::from(p), l, v).unwrap();
                        naive.insert(p, l, v);
                        (p, l)
                    }
                    Op::RemoveExisting(i) => {
                        if naive.0.is_empty() { continue; }
                        let (p, l, _) = naive.0[i % naive.0.len()];
                        t.remove(Ipv4Addr::from(p), l).unwrap();
                        prop_assert!(naive.remove(p, l));
                        (p, l)
                    }
                    Op::RemoveAny(p, l) => {
                        let removed = naive.remove(p, l);
                        prop_assert_eq!(t.remove(Ipv4Addr::from(p), l).is_ok(), removed);
                        (p, l)
                    }
                };
                seen.push((p, l));
                for a in probes(p, l, p.rotate_left(7)) {
                    prop_assert_eq!(t.lookup(a), naive.lookup(a), "after {:?} addr {:#x}", op, a);
                }
            }
            let mut addrs = randoms.clone();
            for (i, &(p, l)) in seen.iter().enumerate() {
                addrs.extend(probes(p, l, randoms[i % randoms.len()]));
            }
            let mut out = vec![None; addrs.len()];
            t.lookup_burst(&addrs, &mut out);
            for (&a, &o) in addrs.iter().zip(&out) {
                prop_assert_eq!(o, naive.lookup(a), "addr {:#x}", a);
                prop_assert_eq!(t.lookup(a), o);
            }
            prop_assert_eq!(t.len(), naive.0.len());
            let mut got: Vec<_> = t.iter().map(|(p, l, v)| (u32::from(p), l, v)).collect();
            let mut want = naive.0.clone();
            got.sort_unstable();
            want.sort_unstable();
            prop_assert_eq!(got, want);
            // One group per /24 holding routes longer than /24, no more (groups are freed).
            let mut long24: Vec<u32> = naive.0.iter().filter(|r| r.1 > 24).map(|r| r.0 >> 8).collect();
            long24.sort_unstable();
            long24.dedup();
            prop_assert_eq!(t.tbl8_groups_used(), long24.len());
        }
    }
}
