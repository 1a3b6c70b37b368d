//! IPv6 longest-prefix match: a multibit trie with a 16-bit first stride and 8-bit strides
//! after it, with controlled prefix expansion (the scheme of DPDK `rte_lpm6`, with a
//! smaller first table).
//!
//! Hot: [`Lpm6::lookup`] and [`Lpm6::lookup_burst`] (no allocation, no panics).
//! Cold: [`Lpm6::new`], [`Lpm6::insert`], [`Lpm6::remove`], [`Lpm6::iter`].
//!
//! # Layout
//!
//! * `top`: 2^16 entries indexed by address bits 0..16 (256 KiB: stays in L2).
//! * `groups`: groups of 256 entries. Level `L ≥ 1` indexes address bits
//!   `16 + 8(L-1) .. 16 + 8L`, so a route of length `len` lands on level
//!   `0` if `len ≤ 16`, else `⌈(len - 16) / 8⌉` (a /48 on level 4, a /128 on level 14).
//!   Lookup reads `1 + level` entries: /32 → 3, /48 → 5. Groups are allocated on demand
//!   up to a configurable limit (1 KiB each) and freed when no longer needed.
//! * `top_depth` / `group_depth`: the depth (0..=128) of the route behind each entry, in
//!   parallel arrays that only insert and delete read (a depth does not fit in the entry
//!   beside a 24-bit value, and lookups need not pay for it).
//! * `rules`: per-length hash maps `prefix → value` for delete.
//!
//! # Entry encoding (`u32`)
//!
//! ```text
//!  31    30    29..24    23..0
//! VALID  EXT   unused    VALUE (24 bits) | GROUP INDEX when EXT
//! ```
//!
//! # Invariants
//!
//! 1. The entry for a block of addresses at level `L` (a prefix `P` of length
//!    `b = 16 + 8L`) is `EXT` exactly when a rule longer than `b` lies inside `P`.
//! 2. Every other entry is the longest rule covering the whole block (`VALID`, value; its
//!    length in the depth array) or 0 (depth 0).
//! 3. Hence a group of a block `P` whose entries are all non-`EXT` with depth ≤ `len(P)`
//!    is redundant; remove folds it into its parent entry and frees it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

use super::lpm4::{LpmError, MemoryUsage};
use super::prefetch;

const TOP_BITS: u8 = 16;
const TOP_LEN: usize = 1 << TOP_BITS;
const GROUP_LEN: usize = 256;
/// Deepest level (a /128 lands on level 14).
const MAX_LEVEL: u8 = 14;
const VALID: u32 = 1 << 31;
const EXT: u32 = 1 << 30;
const VALUE_MASK: u32 = (1 << 24) - 1;
/// How many addresses `lookup_burst` walks in lock step.
const BURST_CHUNK: usize = 32;

type Group = [u32; GROUP_LEN];

/// Where an entry lives: the top table or one group.
#[derive(Clone, Copy, Debug)]
enum Table {
    Top,
    Group(u32),
}

/// IPv6 longest-prefix-match table. See the module docs for the layout.
pub struct Lpm6 {
    top: Box<[u32; TOP_LEN]>,
    top_depth: Vec<u8>,
    groups: Vec<Group>,
    group_depth: Vec<[u8; GROUP_LEN]>,
    free_groups: Vec<u32>,
    max_groups: u32,
    /// `rules[depth]`: masked prefix (host order) → value.
    rules: Vec<HashMap<u128, u32>>,
    len: usize,
}

#[inline]
const fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len as u32)
    }
}

/// Level a route of length `len` lands on.
const fn level_of(len: u8) -> u8 {
    if len <= TOP_BITS {
        0
    } else {
        (len - TOP_BITS).div_ceil(8)
    }
}

/// Number of address bits resolved after level `level` (16, 24, ..., 128).
const fn level_end(level: u8) -> u8 {
    TOP_BITS + 8 * level
}

/// Index of `ip` in a table of level `level`.
const fn index_at(ip: u128, level: u8) -> usize {
    if level == 0 {
        (ip >> (128 - TOP_BITS as u32)) as usize
    } else {
        ((ip >> (128 - level_end(level) as u32)) & 0xff) as usize
    }
}

fn boxed_top(v: Vec<u32>) -> Box<[u32; TOP_LEN]> {
    match v.into_boxed_slice().try_into() {
        Ok(b) => b,
        Err(_) => unreachable!("top table vector has exactly 2^16 entries"),
    }
}

impl Lpm6 {
    /// Largest value a route can carry (24 bits).
    pub const MAX_VALUE: u32 = VALUE_MASK;
    /// Default for `max_groups`: 2^18 groups (at most 320 MiB, allocated only as used).
    /// A realistic table needs about one group per route longer than /40 (100k generated
    /// BGP-like routes used ~92k groups), so this fits a full IPv6 table of today.
    pub const DEFAULT_GROUPS: u32 = 1 << 18;
    /// Largest usable `max_groups` (the group index has 24 bits).
    pub const MAX_GROUPS: u32 = 1 << 24;

    /// Creates an empty table that may use up to `max_groups` groups of 256 entries
    /// (1.25 KiB each with their depths; clamped to [`Self::MAX_GROUPS`]). A route of
    /// length `len > 16` needs up to `level` groups on its path, shared with the routes
    /// next to it.
    pub fn new(max_groups: u32) -> Self {
        Lpm6 {
            top: boxed_top(vec![0; TOP_LEN]),
            top_depth: vec![0; TOP_LEN],
            groups: Vec::new(),
            group_depth: Vec::new(),
            free_groups: Vec::new(),
            max_groups: max_groups.min(Self::MAX_GROUPS),
            rules: (0..=128).map(|_| HashMap::new()).collect(),
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

    /// Groups in use.
    pub fn groups_used(&self) -> usize {
        self.groups.len() - self.free_groups.len()
    }

    /// The configured group limit.
    pub fn max_groups(&self) -> u32 {
        self.max_groups
    }

    /// Memory held by the table.
    pub fn memory(&self) -> MemoryUsage {
        let rules: usize = self
            .rules
            .iter()
            .map(|m| m.capacity() * (size_of::<(u128, u32)>() + 1) * 8 / 7)
            .sum();
        MemoryUsage {
            lookup_bytes: TOP_LEN * size_of::<u32>() + self.groups.capacity() * size_of::<Group>(),
            build_bytes: rules
                + self.top_depth.capacity()
                + self.group_depth.capacity() * GROUP_LEN
                + self.free_groups.capacity() * size_of::<u32>(),
        }
    }

    /// Releases spare capacity of the growable parts (groups, rules) after a bulk build.
    pub fn shrink_to_fit(&mut self) {
        self.groups.shrink_to_fit();
        self.group_depth.shrink_to_fit();
        self.free_groups.shrink_to_fit();
        for rules in &mut self.rules {
            rules.shrink_to_fit();
        }
    }

    /// The value of the route for exactly `prefix/len`, if present (cold).
    pub fn get(&self, prefix: Ipv6Addr, len: u8) -> Option<u32> {
        self.rules
            .get(usize::from(len))?
            .get(&u128::from(prefix))
            .copied()
    }

    fn entry(&self, t: Table, i: usize) -> (u32, u8) {
        match t {
            Table::Top => (self.top[i], self.top_depth[i]),
            Table::Group(g) => (self.groups[g as usize][i], self.group_depth[g as usize][i]),
        }
    }

    fn set_entry(&mut self, t: Table, i: usize, e: u32, depth: u8) {
        match t {
            Table::Top => {
                self.top[i] = e;
                self.top_depth[i] = depth;
            }
            Table::Group(g) => {
                self.groups[g as usize][i] = e;
                self.group_depth[g as usize][i] = depth;
            }
        }
    }

    /// Adds the route `prefix/len → value`, replacing the value of an existing route for
    /// the same prefix. Host bits must be zero. On error the table is unchanged.
    pub fn insert(&mut self, prefix: Ipv6Addr, len: u8, value: u32) -> Result<(), LpmError> {
        let ip = check_prefix(prefix, len)?;
        if value > Self::MAX_VALUE {
            return Err(LpmError::ValueTooLarge {
                value,
                max: Self::MAX_VALUE,
            });
        }
        let target = level_of(len);
        // Count the groups this route needs before touching anything.
        let mut t = Table::Top;
        let mut needed = 0usize;
        for level in 0..target {
            let (e, _) = self.entry(t, index_at(ip, level));
            if e & EXT == 0 {
                needed = usize::from(target - level);
                break;
            }
            t = Table::Group(e & VALUE_MASK);
        }
        let available =
            self.free_groups.len() + (self.max_groups as usize).saturating_sub(self.groups.len());
        if needed > available {
            return Err(LpmError::GroupsExhausted {
                max: self.max_groups,
                family: "IPv6",
            });
        }
        // Walk down, creating groups that copy the entry they replace.
        let mut t = Table::Top;
        for level in 0..target {
            let i = index_at(ip, level);
            let (e, d) = self.entry(t, i);
            let g = if e & EXT != 0 {
                e & VALUE_MASK
            } else {
                let g = self.alloc_group(e, d);
                self.set_entry(t, i, VALID | EXT | g, 0);
                g
            };
            t = Table::Group(g);
        }
        let start = index_at(ip, target);
        let count = 1usize << (level_end(target) - len);
        let new = VALID | value;
        for i in start..start + count {
            self.insert_at(t, i, new, len);
        }
        if self.rules[usize::from(len)].insert(ip, value).is_none() {
            self.len += 1;
        }
        Ok(())
    }

    /// Writes route (`new`, `len`) into entry `i` of `t` where it is the longest match,
    /// descending into groups below.
    fn insert_at(&mut self, t: Table, i: usize, new: u32, len: u8) {
        let (e, d) = self.entry(t, i);
        if e & EXT != 0 {
            let g = e & VALUE_MASK;
            for j in 0..GROUP_LEN {
                self.insert_at(Table::Group(g), j, new, len);
            }
        } else if e & VALID == 0 || d <= len {
            self.set_entry(t, i, new, len);
        }
    }

    /// Replaces the entries written by the route of length `len` with `new` (of depth
    /// `new_depth`), descending into groups below.
    fn remove_at(&mut self, t: Table, i: usize, len: u8, new: u32, new_depth: u8) {
        let (e, d) = self.entry(t, i);
        if e & EXT != 0 {
            let g = e & VALUE_MASK;
            for j in 0..GROUP_LEN {
                self.remove_at(Table::Group(g), j, len, new, new_depth);
            }
        } else if e & VALID != 0 && d == len {
            self.set_entry(t, i, new, new_depth);
        }
    }

    /// Removes the route for exactly `prefix/len`; addresses it covered fall back to the
    /// next covering shorter route (or to no route).
    pub fn remove(&mut self, prefix: Ipv6Addr, len: u8) -> Result<(), LpmError> {
        let ip = check_prefix(prefix, len)?;
        if self.rules[usize::from(len)].remove(&ip).is_none() {
            return Err(LpmError::NotFound {
                addr: IpAddr::V6(prefix),
                len,
            });
        }
        self.len -= 1;
        let (new, new_depth) = match self.covering_rule(ip, len) {
            Some((d, v)) => (VALID | v, d),
            None => (0, 0),
        };
        let target = level_of(len);
        // path[l] = the table of level l on the way to `target`.
        let mut path = [Table::Top; MAX_LEVEL as usize + 1];
        for level in 0..target {
            let (e, _) = self.entry(path[usize::from(level)], index_at(ip, level));
            debug_assert!(e & EXT != 0, "a /{len} rule exists, so its path exists");
            if e & EXT == 0 {
                return Ok(());
            }
            path[usize::from(level) + 1] = Table::Group(e & VALUE_MASK);
        }
        let t = path[usize::from(target)];
        let start = index_at(ip, target);
        let count = 1usize << (level_end(target) - len);
        for i in start..start + count {
            self.remove_at(t, i, len, new, new_depth);
        }
        // Fold redundant groups on the path back into their parents, deepest first.
        for level in (1..=target).rev() {
            let Table::Group(g) = path[usize::from(level)] else {
                break;
            };
            let block_len = level_end(level - 1);
            let gi = g as usize;
            let redundant = self.groups[gi]
                .iter()
                .zip(&self.group_depth[gi])
                .all(|(&e, &d)| e & EXT == 0 && d <= block_len);
            if !redundant {
                break;
            }
            let (e, d) = (self.groups[gi][0], self.group_depth[gi][0]);
            self.set_entry(path[usize::from(level - 1)], index_at(ip, level - 1), e, d);
            self.free_group(g);
        }
        Ok(())
    }

    /// Longest rule strictly shorter than `len` covering `ip`: (depth, value).
    fn covering_rule(&self, ip: u128, len: u8) -> Option<(u8, u32)> {
        (0..len).rev().find_map(|d| {
            let rules = &self.rules[usize::from(d)];
            if rules.is_empty() {
                return None;
            }
            rules.get(&(ip & mask(d))).map(|&v| (d, v))
        })
    }

    /// Takes a group (the caller checked the limit) filled with the entry it expands.
    fn alloc_group(&mut self, e: u32, d: u8) -> u32 {
        let (e, d) = if e & VALID != 0 { (e, d) } else { (0, 0) };
        if let Some(g) = self.free_groups.pop() {
            self.groups[g as usize] = [e; GROUP_LEN];
            self.group_depth[g as usize] = [d; GROUP_LEN];
            return g;
        }
        self.groups.push([e; GROUP_LEN]);
        self.group_depth.push([d; GROUP_LEN]);
        (self.groups.len() - 1) as u32
    }

    fn free_group(&mut self, g: u32) {
        self.groups[g as usize] = [0; GROUP_LEN];
        self.group_depth[g as usize] = [0; GROUP_LEN];
        self.free_groups.push(g);
    }

    /// Value of the longest route matching `addr` (host order: `u128::from(ipv6addr)`).
    #[inline]
    pub fn lookup(&self, addr: u128) -> Option<u32> {
        // In range: addr >> 112 < 2^16 = top.len().
        let mut e = self.top[(addr >> 112) as usize];
        let mut shift = 112u32;
        while e & EXT != 0 {
            // A well-formed chain is at most 14 groups deep, so shift stays ≥ 0.
            shift = shift.checked_sub(8)?;
            e = match self.groups.get((e & VALUE_MASK) as usize) {
                // In range: a u8 index into 256 entries.
                Some(g) => g[usize::from((addr >> shift) as u8)],
                None => return None,
            };
        }
        if e & VALID != 0 {
            Some(e & VALUE_MASK)
        } else {
            None
        }
    }

    /// Looks up a burst: `out[i] = self.lookup(addrs[i])` for `i < min(addrs.len(),
    /// out.len())`. Walks up to 32 addresses level by level in lock step, prefetching each
    /// level's entries for all of them first, so their cache misses overlap.
    pub fn lookup_burst(&self, addrs: &[u128], out: &mut [Option<u32>]) {
        debug_assert_eq!(addrs.len(), out.len());
        for (a, o) in addrs.chunks(BURST_CHUNK).zip(out.chunks_mut(BURST_CHUNK)) {
            let mut ent = [0u32; BURST_CHUNK];
            for (e, &x) in ent.iter_mut().zip(a) {
                *e = self.top[(x >> 112) as usize];
            }
            let mut shift = 112u32;
            while let Some(s) = shift.checked_sub(8) {
                shift = s;
                let mut pending = false;
                for (&e, &x) in ent.iter().zip(a) {
                    if e & EXT != 0 {
                        pending = true;
                        if let Some(g) = self.groups.get((e & VALUE_MASK) as usize) {
                            prefetch(&g[usize::from((x >> shift) as u8)]);
                        }
                    }
                }
                if !pending {
                    break;
                }
                for (e, &x) in ent.iter_mut().zip(a) {
                    if *e & EXT != 0 {
                        *e = match self.groups.get((*e & VALUE_MASK) as usize) {
                            Some(g) => g[usize::from((x >> shift) as u8)],
                            None => 0,
                        };
                    }
                }
            }
            for (o, &e) in o.iter_mut().zip(&ent) {
                *o = if e & (VALID | EXT) == VALID {
                    Some(e & VALUE_MASK)
                } else {
                    None
                };
            }
        }
    }

    /// All routes as `(prefix, len, value)`, ordered by length, then by prefix (cold).
    pub fn iter(&self) -> impl Iterator<Item = (Ipv6Addr, u8, u32)> + '_ {
        self.rules.iter().zip(0u8..).flat_map(|(rules, len)| {
            let mut v: Vec<(u128, u32)> = rules.iter().map(|(&p, &v)| (p, v)).collect();
            v.sort_unstable();
            v.into_iter().map(move |(p, v)| (Ipv6Addr::from(p), len, v))
        })
    }
}

/// Validates `prefix/len` and returns the prefix in host order.
fn check_prefix(prefix: Ipv6Addr, len: u8) -> Result<u128, LpmError> {
    if len > 128 {
        return Err(LpmError::BadLength {
            len,
            max: 128,
            family: "IPv6",
        });
    }
    let ip = u128::from(prefix);
    if ip & !mask(len) != 0 {
        return Err(LpmError::HostBitsSet {
            addr: IpAddr::V6(prefix),
            len,
            masked: IpAddr::V6(Ipv6Addr::from(ip & mask(len))),
        });
    }
    Ok(ip)
}

impl Clone for Lpm6 {
    fn clone(&self) -> Self {
        Lpm6 {
            top: boxed_top(self.top.to_vec()),
            top_depth: self.top_depth.clone(),
            groups: self.groups.clone(),
            group_depth: self.group_depth.clone(),
            free_groups: self.free_groups.clone(),
            max_groups: self.max_groups,
            rules: self.rules.clone(),
            len: self.len,
        }
    }
}

impl std::fmt::Debug for Lpm6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lpm6")
            .field("routes", &self.len)
            .field("groups_used", &self.groups_used())
            .field("max_groups", &self.max_groups)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().expect("test address")
    }

    fn look(t: &Lpm6, s: &str) -> Option<u32> {
        t.lookup(u128::from(ip(s)))
    }

    #[test]
    fn levels() {
        assert_eq!(level_of(0), 0);
        assert_eq!(level_of(16), 0);
        assert_eq!(level_of(17), 1);
        assert_eq!(level_of(24), 1);
        assert_eq!(level_of(32), 2);
        assert_eq!(level_of(48), 4);
        assert_eq!(level_of(128), MAX_LEVEL);
        assert_eq!(level_end(MAX_LEVEL), 128);
    }

    #[test]
    fn empty_and_default_route() {
        let mut t = Lpm6::new(16);
        assert_eq!(look(&t, "2001:db8::1"), None);
        t.insert(Ipv6Addr::UNSPECIFIED, 0, 3).unwrap();
        assert_eq!(look(&t, "2001:db8::1"), Some(3));
        assert_eq!(look(&t, "::"), Some(3));
        assert_eq!(look(&t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), Some(3));
        t.insert(ip("2001:db8::"), 32, 4).unwrap();
        assert_eq!(look(&t, "2001:db8::1"), Some(4));
        t.remove(Ipv6Addr::UNSPECIFIED, 0).unwrap();
        assert_eq!(look(&t, "2001:db9::1"), None);
        assert_eq!(look(&t, "2001:db8::1"), Some(4));
    }

    #[test]
    fn host_route_uses_fourteen_groups_and_frees_them() {
        let mut t = Lpm6::new(64);
        t.insert(ip("2001:db8::1"), 128, 9).unwrap();
        assert_eq!(t.groups_used(), 14);
        assert_eq!(look(&t, "2001:db8::1"), Some(9));
        assert_eq!(look(&t, "2001:db8::"), None);
        assert_eq!(look(&t, "2001:db8::2"), None);
        t.insert(ip("2001:db8::"), 127, 8).unwrap();
        assert_eq!(t.groups_used(), 14);
        assert_eq!(look(&t, "2001:db8::"), Some(8));
        t.remove(ip("2001:db8::1"), 128).unwrap();
        assert_eq!(look(&t, "2001:db8::1"), Some(8));
        assert_eq!(t.groups_used(), 14);
        t.remove(ip("2001:db8::"), 127).unwrap();
        assert_eq!(t.groups_used(), 0);
        assert!(t.is_empty());
        assert!(t.top.iter().all(|&e| e == 0));
    }

    #[test]
    fn overlapping_prefixes_and_delete_restores_covering() {
        let mut t = Lpm6::new(64);
        t.insert(ip("2001:db8::"), 32, 32).unwrap();
        t.insert(ip("2001:db8:1::"), 48, 48).unwrap();
        t.insert(ip("2001::"), 16, 16).unwrap(); // shorter after longer
        t.insert(ip("2001:db8:1:2::"), 64, 64).unwrap();
        t.insert(ip("2001:db8:1:2::"), 63, 63).unwrap();
        t.insert(ip("2000::"), 3, 3).unwrap();
        assert_eq!(look(&t, "3000::"), Some(3));
        assert_eq!(look(&t, "2001:1::"), Some(16));
        assert_eq!(look(&t, "2001:db8:2::"), Some(32));
        assert_eq!(look(&t, "2001:db8:1:1::"), Some(48));
        assert_eq!(look(&t, "2001:db8:1:2::5"), Some(64));
        assert_eq!(look(&t, "2001:db8:1:3::5"), Some(63));
        assert_eq!(look(&t, "4000::"), None);
        t.remove(ip("2001:db8:1:2::"), 64).unwrap();
        assert_eq!(look(&t, "2001:db8:1:2::5"), Some(63));
        t.remove(ip("2001:db8:1:2::"), 63).unwrap();
        assert_eq!(look(&t, "2001:db8:1:2::5"), Some(48));
        t.remove(ip("2001:db8::"), 32).unwrap();
        assert_eq!(look(&t, "2001:db8:2::"), Some(16));
        assert_eq!(look(&t, "2001:db8:1:2::5"), Some(48));
        t.remove(ip("2001:db8:1::"), 48).unwrap();
        assert_eq!(look(&t, "2001:db8:1:2::5"), Some(16));
        assert_eq!(t.groups_used(), 0);
    }

    #[test]
    fn exhaustion_is_an_error_and_leaves_table_unchanged() {
        let mut t = Lpm6::new(3);
        t.insert(ip("2001:db8::"), 40, 1).unwrap(); // levels 1..3: 3 groups
        assert_eq!(t.groups_used(), 3);
        let err = t.insert(ip("2001:db8:1::"), 48, 2).unwrap_err();
        assert_eq!(
            err,
            LpmError::GroupsExhausted {
                max: 3,
                family: "IPv6"
            }
        );
        assert_eq!(t.len(), 1);
        assert_eq!(t.groups_used(), 3);
        assert_eq!(t.get(ip("2001:db8:1::"), 48), None);
        assert_eq!(look(&t, "2001:db8:1::"), Some(1)); // still the covering /40
        // A route landing in existing groups still fits.
        t.insert(ip("2001:db8:100::"), 40, 3).unwrap();
        assert_eq!(look(&t, "2001:db8:100::1"), Some(3));
        assert_eq!(look(&t, "2001:db8::1"), Some(1));
    }

    #[test]
    fn bad_input_is_rejected() {
        let mut t = Lpm6::new(8);
        assert_eq!(
            t.insert(ip("2001:db8::1"), 32, 1).unwrap_err().to_string(),
            "prefix 2001:db8::1/32 has host bits set (did you mean 2001:db8::/32?)"
        );
        assert!(matches!(
            t.insert(ip("::"), 129, 1),
            Err(LpmError::BadLength { len: 129, .. })
        ));
        assert!(matches!(
            t.insert(ip("::"), 1, Lpm6::MAX_VALUE + 1),
            Err(LpmError::ValueTooLarge { .. })
        ));
        assert!(matches!(
            t.remove(ip("2001:db8::"), 32),
            Err(LpmError::NotFound { .. })
        ));
    }

    // ---- property test against a naive reference ----

    #[derive(Default)]
    struct Naive(Vec<(u128, u8, u32)>);

    impl Naive {
        fn insert(&mut self, p: u128, l: u8, v: u32) {
            match self.0.iter_mut().find(|r| r.0 == p && r.1 == l) {
                Some(r) => r.2 = v,
                None => self.0.push((p, l, v)),
            }
        }
        fn remove(&mut self, p: u128, l: u8) -> bool {
            let n = self.0.len();
            self.0.retain(|r| !(r.0 == p && r.1 == l));
            n != self.0.len()
        }
        fn lookup(&self, a: u128) -> Option<u32> {
            self.0
                .iter()
                .filter(|r| a & mask(r.1) == r.0)
                .max_by_key(|r| r.1)
                .map(|r| r.2)
        }
    }

    const BASES: [u128; 3] = [
        0x2001_0db8_0000_0000_0000_0000_0000_0000,
        0x2001_0db8_0001_0002_0000_0000_0000_0000,
        0xfe80_0000_0000_0000_0000_0000_0000_0001,
    ];

    fn arb_len() -> impl Strategy<Value = u8> {
        prop_oneof![1 => 0u8..16, 2 => 16u8..=48, 2 => 40u8..=72, 1 => 64u8..=128]
    }

    /// Prefixes clustered around a few bases (random bits sprinkled in a few places) so
    /// that they overlap often.
    fn arb_prefix() -> impl Strategy<Value = (u128, u8)> {
        (0usize..4, any::<u128>(), arb_len()).prop_map(|(b, r, len)| {
            let sprinkle: u128 = 0x0003_0000_0003_0003_0000_0000_0000_0003;
            let a = match BASES.get(b) {
                Some(base) => base ^ (r & sprinkle),
                None => r,
            };
            (a & mask(len), len)
        })
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u128, u8, u32),
        RemoveExisting(usize),
        RemoveAny(u128, u8),
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (arb_prefix(), 0..=Lpm6::MAX_VALUE).prop_map(|((p, l), v)| Op::Insert(p, l, v)),
            3 => any::<usize>().prop_map(Op::RemoveExisting),
            1 => arb_prefix().prop_map(|(p, l)| Op::RemoveAny(p, l)),
        ]
    }

    fn probes(p: u128, l: u8, r: u128) -> [u128; 5] {
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
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn matches_naive_reference(
            ops in proptest::collection::vec(arb_op(), 1..60),
            randoms in proptest::collection::vec(any::<u128>(), 32),
        ) {
            let mut t = Lpm6::new(4096);
            let mut naive = Naive::default();
            let mut seen = Vec::new();
            for op in ops {
                let (p, l) = match op {
                    Op::Insert(p, l, v) => {
                        t.insert(Ipv6Addr::from(p), l, v).unwrap();
                        naive.insert(p, l, v);
                        (p, l)
                    }
                    Op::RemoveExisting(i) => {
                        if naive.0.is_empty() { continue; }
                        let (p, l, _) = naive.0[i % naive.0.len()];
                        t.remove(Ipv6Addr::from(p), l).unwrap();
                        prop_assert!(naive.remove(p, l));
                        (p, l)
                    }
                    Op::RemoveAny(p, l) => {
                        let removed = naive.remove(p, l);
                        prop_assert_eq!(t.remove(Ipv6Addr::from(p), l).is_ok(), removed);
                        (p, l)
                    }
                };
                seen.push((p, l));
                for a in probes(p, l, p.rotate_left(29)) {
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
            let mut got: Vec<_> = t.iter().map(|(p, l, v)| (u128::from(p), l, v)).collect();
            let mut want = naive.0.clone();
            got.sort_unstable();
            want.sort_unstable();
            prop_assert_eq!(got, want);
            // Groups are exactly the blocks holding a longer route: one per distinct
            // (level, block) on the paths of routes longer than /16.
            let mut blocks: Vec<(u8, u128)> = Vec::new();
            for &(p, l, _) in &naive.0 {
                for level in 1..=level_of(l) {
                    let block_len = level_end(level - 1);
                    blocks.push((level, p & mask(block_len)));
                }
            }
            blocks.sort_unstable();
            blocks.dedup();
            prop_assert_eq!(t.groups_used(), blocks.len());
        }
    }
}
