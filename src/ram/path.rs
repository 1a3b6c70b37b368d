//! Path computation over predicted load (cold, on the RAM's thread).
//!
//! A link's weight is `latency_weight × latency + cost_weight × cost + congestion`, where
//! congestion is `congestion_weight × latency × u / (1 − u)` at the utilization `u` the
//! link would have with the traffic already placed plus the new demand (an M/M/1 queue's
//! extra delay); a link that would be over capacity weighs [`OVERLOAD`] more, so it is
//! used only when nothing else reaches the site. Destinations are placed largest demand
//! first (greedy), each on its cheapest path given what is already placed.
//!
//! For each destination the result has a primary path, and a backup that avoids the
//! primary's first link (taken if the primary's link fails); `equal_cost` says whether
//! the backup weighs within [`ECMP_SLACK`] of the primary. Then the destination is
//! split over both (ECMP): its demand is placed half on each, and its steering entry
//! names both paths' first next hops, over which the edge spreads its flows by flow hash
//! (see [`super::steer::entries`]); otherwise steered traffic follows the primary.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::topology::Topology;

/// Extra weight of a link that would be over capacity.
pub const OVERLOAD: f64 = 1e9;
/// Relative weight difference within which two paths are treated as equal (ECMP).
pub const ECMP_SLACK: f64 = 0.02;

/// Weights of the path metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathWeights {
    /// Per µs of latency.
    pub latency: f64,
    /// Per unit of cost.
    pub cost: f64,
    /// Of congestion.
    pub congestion: f64,
}

/// A path from the edge to a site.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// Links, from the edge outwards.
    pub links: Vec<usize>,
    /// Sum of link latencies (µs).
    pub latency_us: f64,
    /// Weight when it was chosen.
    pub weight: f64,
}

/// Where a destination's traffic goes.
#[derive(Debug, Clone, PartialEq)]
pub struct DestPath {
    /// Cheapest path.
    pub primary: Path,
    /// Cheapest path avoiding the primary's first link.
    pub backup: Option<Path>,
    /// The backup weighs within [`ECMP_SLACK`] of the primary.
    pub equal_cost: bool,
}

#[derive(PartialEq)]
struct Item(f64, usize);
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    fn cmp(&self, o: &Self) -> Ordering {
        o.0.total_cmp(&self.0).then(o.1.cmp(&self.1))
    }
}

/// Weight of link `l` carrying `load` plus `demand` packets per second.
pub fn link_weight(t: &Topology, w: &PathWeights, l: usize, load: f64, demand: f64) -> f64 {
    let k = &t.links[l];
    let u = (load + demand) / k.capacity_pps;
    let cong = if u >= 1.0 {
        OVERLOAD
    } else {
        w.congestion * k.latency_us.max(1.0) * u / (1.0 - u)
    };
    w.latency * k.latency_us + w.cost * k.cost + cong
}

/// Cheapest path from `from` to node `to` avoiding link `avoid`, under `load`.
pub fn shortest(
    t: &Topology,
    w: &PathWeights,
    from: usize,
    to: usize,
    load: &[f64],
    demand: f64,
    avoid: Option<usize>,
) -> Option<Path> {
    let n = t.nodes.len();
    let mut dist = vec![f64::INFINITY; n];
    let mut via: Vec<Option<usize>> = vec![None; n];
    let mut heap = BinaryHeap::new();
    dist[from] = 0.0;
    heap.push(Item(0.0, from));
    while let Some(Item(d, u)) = heap.pop() {
        if d > dist[u] {
            continue;
        }
        if u == to {
            break;
        }
        // Sites are end points, not transit.
        if u != from && matches!(t.nodes[u].1, super::topology::NodeKind::Site(_)) {
            continue;
        }
        for &l in &t.adj[u] {
            if Some(l) == avoid {
                continue;
            }
            let v = t.links[l].other(u);
            let nd = d + link_weight(t, w, l, load[l], demand);
            if nd < dist[v] {
                dist[v] = nd;
                via[v] = Some(l);
                heap.push(Item(nd, v));
            }
        }
    }
    if !dist[to].is_finite() {
        return None;
    }
    let mut links = Vec::new();
    let mut at = to;
    while at != from {
        let l = via[at]?;
        links.push(l);
        at = t.links[l].other(at);
    }
    links.reverse();
    let latency_us = links.iter().map(|&l| t.links[l].latency_us).sum();
    Some(Path {
        links,
        latency_us,
        weight: dist[to],
    })
}

/// Places every destination with demand (`demand[d]`, packets per logical second) on
/// a path from the edge to its site. Returns the per-destination paths (None: no site
/// or unreachable) and the resulting load per link.
pub fn place(t: &Topology, w: &PathWeights, demand: &[f64]) -> (Vec<Option<DestPath>>, Vec<f64>) {
    let mut load = vec![0.0; t.links.len()];
    let mut out: Vec<Option<DestPath>> = vec![None; demand.len()];
    let mut order: Vec<usize> = (0..demand.len()).collect();
    order.sort_by(|&a, &b| demand[b].total_cmp(&demand[a]).then(a.cmp(&b)));
    for d in order {
        let Some(site) = t.site_of(d) else {
            continue;
        };
        let to = t.sites[site].node;
        let dm = demand[d].max(0.0);
        let Some(primary) = shortest(t, w, 0, to, &load, dm, None) else {
            continue;
        };
        let backup = shortest(t, w, 0, to, &load, dm, primary.links.first().copied());
        let equal_cost = backup.as_ref().is_some_and(|a| {
            a.weight <= primary.weight * (1.0 + ECMP_SLACK) && a.weight < OVERLOAD
        });
        match backup.as_ref().filter(|_| equal_cost) {
            Some(b) => {
                for &l in primary.links.iter().chain(&b.links) {
                    load[l] += dm / 2.0;
                }
            }
            None => {
                for &l in &primary.links {
                    load[l] += dm;
                }
            }
        }
        out[d] = Some(DestPath {
            primary,
            backup,
            equal_cost,
        });
    }
    (out, load)
}

/// The path routing protocols would give a site without the RAM: least latency, no
/// load awareness, starting with the link `first` out of the edge.
pub fn static_path(t: &Topology, first: usize, site: usize) -> Option<Path> {
    let w = PathWeights {
        latency: 1.0,
        cost: 0.0,
        congestion: 0.0,
    };
    let zero = vec![0.0; t.links.len()];
    let hop = t.links[first].other(0);
    let to = t.sites[site].node;
    let mut p = if hop == to {
        Path {
            links: Vec::new(),
            latency_us: 0.0,
            weight: 0.0,
        }
    } else {
        shortest(t, &w, hop, to, &zero, 0.0, Some(first))?
    };
    p.links.insert(0, first);
    p.latency_us += t.links[first].latency_us;
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::super::topology::tests::small;
    use super::*;
    use proptest::prelude::*;

    fn weights() -> PathWeights {
        PathWeights {
            latency: 1.0,
            cost: 10.0,
            congestion: 4.0,
        }
    }

    #[test]
    fn light_load_takes_the_fast_link_heavy_load_moves_over() {
        let t = Topology::build(&small()).unwrap();
        // fra via r1 (200 µs) beats via r2 (400 µs + cost) when lightly loaded.
        let (p, _) = place(&t, &weights(), &[10.0, 10.0]);
        let fra = p[0].as_ref().unwrap();
        assert_eq!(
            t.links[fra.primary.links[0]].next_hop.as_deref(),
            Some("via-r1")
        );
        assert_eq!(fra.primary.latency_us, 200.0);
        assert!(!fra.equal_cost);
        assert!(fra.backup.is_some(), "backup via r2");
        // ams is only reachable via r2.
        let ams = p[1].as_ref().unwrap();
        assert_eq!(
            t.links[ams.primary.links[0]].next_hop.as_deref(),
            Some("via-r2")
        );
        // 1200 pps does not fit the 1000 pps edge-r1 link: fra moves to r2.
        let (p, load) = place(&t, &weights(), &[1200.0, 10.0]);
        let fra = p[0].as_ref().unwrap();
        assert_eq!(
            t.links[fra.primary.links[0]].next_hop.as_deref(),
            Some("via-r2")
        );
        assert!(load.iter().zip(&t.links).all(|(l, k)| *l <= k.capacity_pps));
    }

    #[test]
    fn static_path_ignores_load() {
        let t = Topology::build(&small()).unwrap();
        let p = static_path(&t, 0, 0).unwrap();
        assert_eq!(p.links.len(), 2);
        assert_eq!(p.latency_us, 200.0);
    }

    proptest! {
        /// Placed paths are connected walks from the edge to the destination's site, and
        /// no link is loaded beyond capacity when a path within capacity existed for all.
        #[test]
        fn placed_paths_are_valid(d0 in 0.0f64..3000.0, d1 in 0.0f64..3000.0) {
            let t = Topology::build(&small()).unwrap();
            let (p, load) = place(&t, &weights(), &[d0, d1]);
            for (d, dp) in p.iter().enumerate() {
                let dp = dp.as_ref().unwrap();
                for path in std::iter::once(&dp.primary).chain(dp.backup.iter()) {
                    let mut at = 0;
                    for &l in &path.links {
                        prop_assert!(t.links[l].ends.contains(&at));
                        at = t.links[l].other(at);
                    }
                    prop_assert_eq!(at, t.sites[t.site_of(d).unwrap()].node);
                }
            }
            let total: f64 = load.iter().sum();
            prop_assert!(total >= d0 + d1 - 1e-6);
            if d0 + d1 <= 1000.0 {
                prop_assert!(load.iter().zip(&t.links).all(|(l, k)| *l <= k.capacity_pps + 1e-9));
            }
        }
    }
}
