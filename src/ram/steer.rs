//! From the RAM's plan to a steering table (cold, on the RAM's thread): one entry per
//! steered destination, on the next hop of the first link of its primary path. Shared
//! by the scenario run ([`super::sim`]) and the live RAM ([`super::live`]).

use super::path::DestPath;
use super::topology::Topology;
use crate::config::Config;
use crate::steering::{MAX_STEER_WAYS, SteerEntry, SteeringTable};

/// Largest priority a RAM steering entry honours (the SAFE's highest transmit class).
pub use crate::safe::tx::MAX_PRIORITY;

/// The steering next hop (index into `[[next_hops]]`, as in the route table) of each
/// link of the topology: `Some` for links from the edge, `None` for the others.
pub fn link_next_hops(cfg: &Config, topo: &Topology) -> Result<Vec<Option<u16>>, String> {
    let name_nh = |n: &str| {
        cfg.next_hops
            .iter()
            .position(|h| h.name == n)
            .map(|i| i as u16)
    };
    let mut link_nh = vec![None; topo.links.len()];
    for (l, k) in topo.links.iter().enumerate() {
        if let Some(n) = &k.next_hop {
            link_nh[l] = Some(name_nh(n).ok_or_else(|| {
                format!("ram.links[{l}].next_hop: no next hop {n:?} in [[next_hops]]")
            })?);
        }
    }
    Ok(link_nh)
}

/// The steering entry of each destination, for every steered destination (`steered[d]`)
/// that has a path: the next hop (from `link_nh`, see [`link_next_hops`]) of the first
/// link of its primary path, then those of its equal-cost paths
/// ([`DestPath::ecmp`]) that leave on other next hops (ECMP: the destination's flows
/// are spread over them by flow hash). `None` for the others. Each entry caps the
/// header's priority at the destination's class in `priority` ([`MAX_PRIORITY`] for
/// destinations beyond its end; see [`Topology::priority_of`]).
pub fn entries(
    link_nh: &[Option<u16>],
    steered: &[bool],
    paths: &[Option<DestPath>],
    priority: &[u8],
) -> Vec<Option<SteerEntry>> {
    let first_nh = |p: &super::path::Path| {
        p.links
            .first()
            .and_then(|&l| link_nh.get(l).copied().flatten())
    };
    steered
        .iter()
        .enumerate()
        .map(|(d, &on)| {
            if !on {
                return None;
            }
            let p = paths.get(d)?.as_ref()?;
            let primary = first_nh(&p.primary)?;
            let mut hops = [primary; MAX_STEER_WAYS];
            let mut n = 1;
            for nh in p.ecmp.iter().filter_map(first_nh) {
                if n < MAX_STEER_WAYS && !hops[..n].contains(&nh) {
                    hops[n] = nh;
                    n += 1;
                }
            }
            let prio = priority.get(d).copied().unwrap_or(MAX_PRIORITY);
            // 1..=MAX_STEER_WAYS hops: cannot fail.
            SteerEntry::ecmp(&hops[..n], prio).ok()
        })
        .collect()
}

/// A steering table with `cur`'s keys and epoch age at `epoch`, with the entries of
/// `entries` (from [`entries`]).
pub fn steering_table(
    cur: &SteeringTable,
    epoch: u32,
    entries: &[Option<SteerEntry>],
) -> SteeringTable {
    let mut st = SteeringTable::new(cur.keys, epoch, cur.max_epoch_age);
    for (d, e) in entries.iter().enumerate() {
        if let Some(e) = *e {
            // Cannot fail: ids come from the topology (≤ u16::MAX).
            let _ = st.insert(d as u32, e);
        }
    }
    st
}

#[cfg(test)]
mod tests {
    use super::super::path::{PathWeights, place};
    use super::super::topology::tests::small;
    use super::*;
    use crate::steering::{Key, SteeringKeys};

    /// Next hop 7 behind `via-r1`, 9 behind `via-r2`.
    fn test_link_nh(t: &Topology) -> Vec<Option<u16>> {
        t.links
            .iter()
            .map(|l| match l.next_hop.as_deref() {
                Some("via-r1") => Some(7),
                Some("via-r2") => Some(9),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn entries_follow_the_primary_paths_first_hop() {
        let t = Topology::build(&small()).unwrap();
        let w = PathWeights {
            latency: 1.0,
            cost: 10.0,
            congestion: 4.0,
        };
        // fra (0) lightly loaded: via r1; ams (1): only via r2.
        let (paths, _) = place(&t, &w, &[10.0, 10.0], &[]);
        let link_nh = test_link_nh(&t);
        let hop = |e: &Option<SteerEntry>| e.map(|e| e.hops().to_vec());
        let e = entries(&link_nh, &[true, true], &paths, &[]);
        assert_eq!(
            e.iter().map(hop).collect::<Vec<_>>(),
            vec![Some(vec![7]), Some(vec![9])]
        );
        let e = entries(&link_nh, &[false, true, true], &paths, &[]);
        assert_eq!(
            e.iter().map(hop).collect::<Vec<_>>(),
            vec![None, Some(vec![9]), None],
            "off, on, no path"
        );
        let cur = SteeringTable::new(
            SteeringKeys {
                current: Key::from_bytes([1; 16]),
                previous: None,
            },
            4,
            9,
        );
        let st = steering_table(&cur, 5, &e);
        assert_eq!((st.epoch, st.max_epoch_age, st.len()), (5, 9, 1));
        assert!(st.keys.current == cur.keys.current && st.keys.previous.is_none());
        assert_eq!(st.get(1).map(|x| x.primary()), Some(9));
        assert!(st.get(0).is_none());
    }

    #[test]
    fn three_equal_paths_make_a_three_hop_entry() {
        let t = super::super::path::tests::three_way();
        let (paths, _) = place(&t, &super::super::path::tests::weights(), &[300.0], &[]);
        let link_nh: Vec<Option<u16>> = (0..t.links.len())
            .map(|l| (l % 2 == 0).then_some(10 + l as u16))
            .collect();
        let e = entries(&link_nh, &[true], &paths, &[])[0].unwrap();
        let mut hops = e.hops().to_vec();
        hops.sort_unstable();
        assert_eq!(hops, vec![10, 12, 14]);
        // Two edge links on the same next hop: it is named once.
        let same: Vec<Option<u16>> = (0..t.links.len())
            .map(|l| (l % 2 == 0).then_some(if l == 4 { 10 } else { 10 + l as u16 }))
            .collect();
        let e = entries(&same, &[true], &paths, &[2])[0].unwrap();
        assert_eq!(e.max_priority, 2, "the destination's class");
        let mut hops = e.hops().to_vec();
        hops.sort_unstable();
        assert_eq!(hops, vec![10, 12]);
    }

    #[test]
    fn equal_cost_paths_make_an_ecmp_entry() {
        let mut c = small();
        // fra by r1 or by r2 at the same latency and cost.
        c.links[1].latency_us = 100.0;
        c.links[1].cost = 0.0;
        c.links[1].capacity_pps = 1000.0;
        let t = Topology::build(&c).unwrap();
        let w = PathWeights {
            latency: 1.0,
            cost: 10.0,
            congestion: 4.0,
        };
        let (paths, load) = place(&t, &w, &[100.0, 0.0], &[]);
        let p = paths[0].as_ref().unwrap();
        assert!(p.equal_cost(), "{p:?}");
        // Half of the demand on each edge link.
        assert_eq!((load[0], load[1]), (50.0, 50.0));
        let link_nh = test_link_nh(&t);
        let e = entries(&link_nh, &[true, false], &paths, &[])[0].unwrap();
        assert_eq!(e.max_priority, MAX_PRIORITY);
        let mut hops = e.hops().to_vec();
        hops.sort_unstable();
        assert_eq!(hops, vec![7, 9]);
        assert_eq!(e.primary(), link_nh[p.primary.links[0]].unwrap());
    }
}
