//! Next hops and ECMP groups, and the meaning of an LPM value.
//!
//! Hot: [`NextHopTable::resolve`] (no allocation, no panics; at most two reads from flat
//! arrays). Cold: everything else.
//!
//! # LPM value encoding (24 bits, see [`super::Lpm4::MAX_VALUE`])
//!
//! ```text
//!  23          22..0
//!  ECMP_FLAG   next-hop index (flag clear) | ECMP group index (flag set)
//! ```
//!
//! A next-hop index is below [`MAX_NEXT_HOPS`] (so [`NO_NEXT_HOP`] = `u16::MAX` is never a
//! real index). ECMP group members are kept in one flat array; a group is a `(start, len)`
//! span of it, so resolving a group costs one read for the span and one for the member.
//!
//! # ECMP member choice
//!
//! `member = members[(flow_hash × len) >> 32]` (multiply-shift: no division, uses the high
//! bits of the hash). The same hash always picks the same member of the same group, so a
//! flow stays on one path. The hash must be well mixed (an RSS Toeplitz hash, SipHash,
//! ...): consecutive small integers would all map to the first member. Listing a member
//! twice gives it twice the share (weighted ECMP). Member lists are sorted when a group is
//! added, so `a,b` and `b,a` are one group.

use std::collections::HashMap;

use thiserror::Error;

/// Set in an LPM value that names an ECMP group rather than a next hop.
pub const ECMP_FLAG: u32 = 1 << 23;
/// Returned by [`NextHopTable::resolve`] for a value that names nothing in the table.
pub const NO_NEXT_HOP: u16 = u16::MAX;
/// Most next hops a table holds (index `u16::MAX` is reserved for [`NO_NEXT_HOP`]).
pub const MAX_NEXT_HOPS: usize = u16::MAX as usize;
/// Most ECMP groups a table holds (23 bits of group index).
pub const MAX_ECMP_GROUPS: usize = 1 << 23;
/// Most members (counting repeats) in one ECMP group.
pub const MAX_ECMP_MEMBERS: usize = 4096;

/// Errors building a [`NextHopTable`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NextHopError {
    /// Two next hops share a name.
    #[error("next hop \"{name}\" is defined twice; next-hop names must be unique")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// More next hops than an index can name.
    #[error("{count} next hops defined; at most {max} are supported")]
    TooManyNextHops {
        /// How many were given.
        count: usize,
        /// [`MAX_NEXT_HOPS`].
        max: usize,
    },
    /// A route names a next hop that is not defined.
    #[error("unknown next hop \"{name}\"; defined next hops: {known}")]
    UnknownName {
        /// The name used.
        name: String,
        /// Some of the defined names, for the message.
        known: String,
    },
    /// A member index is not a next hop of the table.
    #[error("ECMP member {index} is not a next hop (the table has {count})")]
    UnknownMember {
        /// The index used.
        index: u16,
        /// Next hops in the table.
        count: usize,
    },
    /// An ECMP group without members.
    #[error("a route needs at least one next hop")]
    EmptyGroup,
    /// An ECMP group with too many members.
    #[error("ECMP group of {count} members; at most {max} are supported")]
    GroupTooLarge {
        /// Members given.
        count: usize,
        /// [`MAX_ECMP_MEMBERS`].
        max: usize,
    },
    /// More distinct ECMP groups than a value can name.
    #[error("more than {max} distinct ECMP groups")]
    TooManyGroups {
        /// [`MAX_ECMP_GROUPS`].
        max: usize,
    },
}

/// Where a routed packet goes: out of `port`, rewritten with these MAC addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NextHop {
    /// Name used in routes files and config.
    pub name: String,
    /// Egress port index.
    pub port: u16,
    /// Source MAC for the rewritten frame (the egress port's address).
    pub src_mac: [u8; 6],
    /// Destination MAC (the neighbor's address).
    pub dst_mac: [u8; 6],
}

/// An ECMP group: next-hop indices, sorted; a repeated index counts as a weight.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EcmpGroup {
    members: Vec<u16>,
}

impl EcmpGroup {
    /// The member next-hop indices, sorted.
    pub fn members(&self) -> &[u16] {
        &self.members
    }
}

/// One group's members in the flat member array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

/// Next hops and ECMP groups; turns an LPM value and a flow hash into a next-hop index.
#[derive(Debug, Clone, Default)]
pub struct NextHopTable {
    hops: Vec<NextHop>,
    by_name: HashMap<String, u16>,
    groups: Vec<EcmpGroup>,
    group_index: HashMap<Vec<u16>, u32>,
    // Fast path: spans[group] → members[start..start + len].
    spans: Vec<Span>,
    members: Vec<u16>,
}

impl NextHopTable {
    /// A table of `hops` (index = position) and no ECMP groups.
    pub fn new(hops: Vec<NextHop>) -> Result<Self, NextHopError> {
        if hops.len() > MAX_NEXT_HOPS {
            return Err(NextHopError::TooManyNextHops {
                count: hops.len(),
                max: MAX_NEXT_HOPS,
            });
        }
        let mut by_name = HashMap::with_capacity(hops.len());
        for (i, h) in (0u16..).zip(&hops) {
            if by_name.insert(h.name.clone(), i).is_some() {
                return Err(NextHopError::DuplicateName {
                    name: h.name.clone(),
                });
            }
        }
        Ok(NextHopTable {
            hops,
            by_name,
            ..Default::default()
        })
    }

    /// Number of next hops.
    pub fn len(&self) -> usize {
        self.hops.len()
    }

    /// True when there is no next hop.
    pub fn is_empty(&self) -> bool {
        self.hops.is_empty()
    }

    /// All next hops; a next-hop index is a position in this slice.
    pub fn hops(&self) -> &[NextHop] {
        &self.hops
    }

    /// The next hop at `index`.
    #[inline]
    pub fn get(&self, index: u16) -> Option<&NextHop> {
        self.hops.get(usize::from(index))
    }

    /// Index of the next hop called `name`.
    pub fn index_of(&self, name: &str) -> Option<u16> {
        self.by_name.get(name).copied()
    }

    /// All ECMP groups; group `i` is the LPM value `ECMP_FLAG | i`.
    pub fn groups(&self) -> &[EcmpGroup] {
        &self.groups
    }

    /// The LPM value that names next hop `index`.
    pub const fn hop_value(index: u16) -> u32 {
        index as u32
    }

    /// The ECMP group an LPM value names, if it names one.
    pub fn group_of(&self, value: u32) -> Option<&EcmpGroup> {
        if value & ECMP_FLAG == 0 {
            return None;
        }
        self.groups.get((value & !ECMP_FLAG) as usize)
    }

    /// The LPM value for traffic spread over `members` (next-hop indices): the next hop
    /// itself when all members are one next hop, else an ECMP group, shared with any
    /// earlier group of the same members (in any order).
    pub fn add_group(&mut self, members: &[u16]) -> Result<u32, NextHopError> {
        let Some(&first) = members.first() else {
            return Err(NextHopError::EmptyGroup);
        };
        if members.len() > MAX_ECMP_MEMBERS {
            return Err(NextHopError::GroupTooLarge {
                count: members.len(),
                max: MAX_ECMP_MEMBERS,
            });
        }
        if let Some(&index) = members.iter().find(|&&m| usize::from(m) >= self.hops.len()) {
            return Err(NextHopError::UnknownMember {
                index,
                count: self.hops.len(),
            });
        }
        if members.iter().all(|&m| m == first) {
            return Ok(Self::hop_value(first));
        }
        let mut key = members.to_vec();
        key.sort_unstable();
        if let Some(&g) = self.group_index.get(&key) {
            return Ok(ECMP_FLAG | g);
        }
        if self.groups.len() >= MAX_ECMP_GROUPS {
            return Err(NextHopError::TooManyGroups {
                max: MAX_ECMP_GROUPS,
            });
        }
        let g = self.groups.len() as u32;
        self.spans.push(Span {
            start: self.members.len() as u32,
            len: key.len() as u32,
        });
        self.members.extend_from_slice(&key);
        self.group_index.insert(key.clone(), g);
        self.groups.push(EcmpGroup { members: key });
        Ok(ECMP_FLAG | g)
    }

    /// The LPM value for a route to the next hops called `names` (one name: that next
    /// hop; several: an ECMP group, see [`Self::add_group`]).
    pub fn value_for_names<S: AsRef<str>>(&mut self, names: &[S]) -> Result<u32, NextHopError> {
        if let [name] = names
            && let Some(i) = self.index_of(name.as_ref())
        {
            return Ok(Self::hop_value(i));
        }
        let mut members = Vec::with_capacity(names.len());
        for name in names {
            let name = name.as_ref();
            match self.index_of(name) {
                Some(i) => members.push(i),
                None => {
                    return Err(NextHopError::UnknownName {
                        name: name.to_string(),
                        known: self.known_names(),
                    });
                }
            }
        }
        self.add_group(&members)
    }

    /// The next hops an LPM value stands for (cold; for listing routes).
    pub fn members_of(&self, value: u32) -> Vec<u16> {
        if value & ECMP_FLAG == 0 {
            u16::try_from(value)
                .ok()
                .filter(|&i| usize::from(i) < self.hops.len())
                .into_iter()
                .collect()
        } else {
            self.group_of(value)
                .map(|g| g.members.clone())
                .unwrap_or_default()
        }
    }

    /// A short list of defined names for error messages.
    fn known_names(&self) -> String {
        const SHOWN: usize = 8;
        if self.hops.is_empty() {
            return "none (define next hops in the config first)".to_string();
        }
        let mut s = self
            .hops
            .iter()
            .take(SHOWN)
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        if self.hops.len() > SHOWN {
            s.push_str(&format!(" and {} more", self.hops.len() - SHOWN));
        }
        s
    }

    /// True when the table has an ECMP group (only then does [`Self::resolve`] use
    /// the flow hash).
    #[inline]
    pub fn has_ecmp(&self) -> bool {
        !self.spans.is_empty()
    }

    /// The next-hop index for an LPM `value` and the packet's `flow_hash`. A value that
    /// names nothing in this table gives [`NO_NEXT_HOP`].
    #[inline]
    pub fn resolve(&self, value: u32, flow_hash: u32) -> u16 {
        if value & ECMP_FLAG == 0 {
            return if (value as usize) < self.hops.len() {
                value as u16
            } else {
                NO_NEXT_HOP
            };
        }
        let Some(&Span { start, len }) = self.spans.get((value & !ECMP_FLAG) as usize) else {
            return NO_NEXT_HOP;
        };
        // pick < len: (hash < 2^32) × len >> 32.
        let pick = (u64::from(flow_hash) * u64::from(len)) >> 32;
        self.members
            .get(start as usize + pick as usize)
            .copied()
            .unwrap_or(NO_NEXT_HOP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hop(name: &str, port: u16) -> NextHop {
        NextHop {
            name: name.to_string(),
            port,
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, port as u8],
        }
    }

    fn table(n: u16) -> NextHopTable {
        NextHopTable::new((0..n).map(|i| hop(&format!("nh{i}"), i)).collect()).unwrap()
    }

    /// A well-mixed 32-bit hash of `i` (splitmix64 finalizer).
    fn mix(i: u64) -> u32 {
        let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) as u32
    }

    #[test]
    fn single_hops_and_groups() {
        let mut t = table(4);
        assert_eq!(t.value_for_names(&["nh2"]).unwrap(), 2);
        assert_eq!(t.resolve(2, 12345), 2);
        let v = t.value_for_names(&["nh1", "nh3"]).unwrap();
        assert_eq!(v, ECMP_FLAG);
        // Same members in another order: the same group.
        assert_eq!(t.value_for_names(&["nh3", "nh1"]).unwrap(), v);
        assert_eq!(t.groups().len(), 1);
        assert_eq!(t.group_of(v).unwrap().members(), &[1, 3]);
        assert_eq!(t.members_of(v), vec![1, 3]);
        assert_eq!(t.members_of(2), vec![2]);
        // One name repeated is that next hop, not a group.
        assert_eq!(t.value_for_names(&["nh0", "nh0"]).unwrap(), 0);
        assert_eq!(t.resolve(v, 0), 1);
        assert_eq!(t.resolve(v, u32::MAX), 3);
        // Values naming nothing.
        assert_eq!(t.resolve(4, 0), NO_NEXT_HOP);
        assert_eq!(t.resolve(ECMP_FLAG | 7, 0), NO_NEXT_HOP);
    }

    #[test]
    fn errors() {
        let dup = NextHopTable::new(vec![hop("a", 0), hop("a", 1)]).unwrap_err();
        assert_eq!(
            dup.to_string(),
            "next hop \"a\" is defined twice; next-hop names must be unique"
        );
        let mut t = table(10);
        let e = t.value_for_names(&["nh0", "nope"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown next hop \"nope\"; defined next hops: nh0, nh1, nh2, nh3, nh4, nh5, \
             nh6, nh7 and 2 more"
        );
        assert_eq!(
            t.value_for_names::<&str>(&[]),
            Err(NextHopError::EmptyGroup)
        );
        assert!(matches!(
            t.add_group(&[1, 10]),
            Err(NextHopError::UnknownMember { index: 10, .. })
        ));
        let mut empty = NextHopTable::new(Vec::new()).unwrap();
        assert!(
            empty
                .value_for_names(&["x"])
                .unwrap_err()
                .to_string()
                .contains("define next hops in the config first")
        );
    }

    #[test]
    fn weights_by_repetition() {
        let mut t = table(2);
        let v = t.add_group(&[0, 0, 0, 1]).unwrap();
        let n = 40_000u64;
        let zeros = (0..n).filter(|&i| t.resolve(v, mix(i)) == 0).count() as f64;
        let share = zeros / n as f64;
        assert!((share - 0.75).abs() < 0.02, "share {share}");
    }

    proptest! {
        #[test]
        fn same_hash_same_member(members in proptest::collection::vec(0u16..16, 2..12), hash in any::<u32>()) {
            let mut t = table(16);
            let v = t.add_group(&members).unwrap();
            let m = t.resolve(v, hash);
            prop_assert!(members.contains(&m));
            prop_assert_eq!(t.resolve(v, hash), m);
            // Another table built with the same group picks the same member.
            let mut t2 = table(16);
            let mut rev = members.clone();
            rev.reverse();
            let v2 = t2.add_group(&rev).unwrap();
            prop_assert_eq!(t2.resolve(v2, hash), m);
        }

        #[test]
        fn spread_is_roughly_even(n in 2u16..=16, seed in any::<u64>()) {
            let mut t = table(16);
            let members: Vec<u16> = (0..n).collect();
            let v = t.add_group(&members).unwrap();
            let samples = 20_000u64 * u64::from(n);
            let mut counts = vec![0u64; usize::from(n)];
            for i in 0..samples {
                counts[usize::from(t.resolve(v, mix(seed ^ i.wrapping_mul(0x9e37_79b9))))] += 1;
            }
            let expect = samples as f64 / f64::from(n);
            for (m, &c) in counts.iter().enumerate() {
                let dev = (c as f64 - expect).abs() / expect;
                prop_assert!(dev < 0.05, "member {} got {} of {} (expected {})", m, c, samples, expect);
            }
        }
    }
}
