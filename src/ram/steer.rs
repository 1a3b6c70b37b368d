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

/// A steering table with `cur`'s keys and epoch age at `epoch`, with an entry for every
/// steered destination (`steered[d]`) that has a path, on the next hop of the path's
/// first link (`link_nh`, from [`link_next_hops`]).
pub fn steering_table(
    cur: &SteeringTable,
    epoch: u32,
    link_nh: &[Option<u16>],
    steered: &[bool],
    paths: &[Option<DestPath>],
) -> SteeringTable {
    let mut st = SteeringTable::new(cur.keys, epoch, cur.max_epoch_age);
    for (d, on) in steered.iter().enumerate() {
        if !on {
            continue;
        }
        let Some(p) = paths.get(d).and_then(|p| p.as_ref()) else {
            continue;
        };
        let Some(nh) = p
            .primary
            .links
            .first()
            .and_then(|&l| link_nh.get(l).copied().flatten())
        else {
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
