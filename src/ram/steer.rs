//! From the RAM's plan to a steering table (cold, on the RAM's thread): one entry per
//! steered destination, on the next hop of the first link of its primary path. Shared
//! by the scenario run ([`super::sim`]) and the live RAM ([`super::live`]).

use super::path::DestPath;
use super::topology::Topology;
use crate::config::Config;
use crate::steering::{SteerEntry, SteeringTable};

/// Largest priority a RAM steering entry honours.
pub const MAX_PRIORITY: u8 = 3;

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

/// The steering entry of each destination: the next hop (from `link_nh`, see
/// [`link_next_hops`]) of the first link of its primary path, for every steered
/// destination (`steered[d]`) that has one; `None` for the others.
pub fn entries(
    link_nh: &[Option<u16>],
    steered: &[bool],
    paths: &[Option<DestPath>],
) -> Vec<Option<u16>> {
    steered
        .iter()
        .enumerate()
        .map(|(d, &on)| {
            if !on {
                return None;
            }
            let p = paths.get(d)?.as_ref()?;
            p.primary
                .links
                .first()
                .and_then(|&l| link_nh.get(l).copied().flatten())
        })
        .collect()
}

/// A steering table with `cur`'s keys and epoch age at `epoch`, with one entry per
/// destination that has a next hop in `entries` (from [`entries`]).
pub fn steering_table(cur: &SteeringTable, epoch: u32, entries: &[Option<u16>]) -> SteeringTable {
    let mut st = SteeringTable::new(cur.keys, epoch, cur.max_epoch_age);
    for (d, nh) in entries.iter().enumerate() {
        let Some(nh) = *nh else {
            continue;
        };
        // Cannot fail: ids come from the topology (≤ u16::MAX).
        let _ = st.insert(
            d as u32,
            SteerEntry {
                next_hop: nh,
                max_priority: MAX_PRIORITY,
            },
        );
    }
    st
}

#[cfg(test)]
mod tests {
    use super::super::path::{PathWeights, place};
    use super::super::topology::tests::small;
    use super::*;
    use crate::steering::{Key, SteeringKeys};

    #[test]
    fn entries_follow_the_primary_paths_first_hop() {
        let t = Topology::build(&small()).unwrap();
        let w = PathWeights {
            latency: 1.0,
            cost: 10.0,
            congestion: 4.0,
        };
        // fra (0) lightly loaded: via r1; ams (1): only via r2.
        let (paths, _) = place(&t, &w, &[10.0, 10.0]);
        let link_nh: Vec<Option<u16>> = t
            .links
            .iter()
            .map(|l| match l.next_hop.as_deref() {
                Some("via-r1") => Some(7),
                Some("via-r2") => Some(9),
                _ => None,
            })
            .collect();
        assert_eq!(
            entries(&link_nh, &[true, true], &paths),
            vec![Some(7), Some(9)]
        );
        let e = entries(&link_nh, &[false, true, true], &paths);
        assert_eq!(e, vec![None, Some(9), None], "off, on, no path");
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
        assert_eq!(st.get(1).map(|x| x.next_hop), Some(9));
        assert!(st.get(0).is_none());
    }
}
