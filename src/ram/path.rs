//! Path computation over predicted load (cold, on the RAM's thread).
//!
//! A link's weight is `latency_weight × latency + cost_weight × cost + congestion`, where
//! congestion is `congestion_weight × latency × u / (1 − u)` at the utilization `u` the
//! link would have with the traffic already placed plus the new demand (an M/M/1 queue's
//! extra delay); a link that would be over capacity weighs [`OVERLOAD`] more, so it is
//! used only when nothing else reaches the site. Links marked down (an operator's
//! `ctl ram link down`, or an egress port without carrier: see [`super::live`]) are not
//! used at all. Destinations are placed largest demand first (greedy), each on its
//! cheapest path given what is already placed.
//!
//! For each destination the result has a primary path, and a backup that avoids the
//! primary's first link (what its traffic moves to if that link fails). Then the
//! equal-cost set ([`DestPath::ecmp`]): the backup when it weighs within [`ECMP_SLACK`]
//! of the primary, then the cheapest path avoiding the first links of all before it,
//! and so on while they stay within the slack, up to [`MAX_STEER_WAYS`] paths in all.
//! With an equal-cost set, the destination's demand is placed evenly over the primary
//! and those paths, and its steering entry names each path's first next hop; the edge
//! spreads the destination's flows over them by flow hash (see
//! [`super::steer::entries`]). Otherwise steered traffic follows the primary.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::topology::Topology;
use crate::steering::MAX_STEER_WAYS;

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
    /// Further paths within [`ECMP_SLACK`] of the primary's weight, each leaving the
    /// edge on a first link the primary and the others before it do not use (at most
    /// [`MAX_STEER_WAYS`] − 1; the first one, when any, is the backup). Empty: no ECMP.
    pub ecmp: Vec<Path>,
}

impl DestPath {
    /// The destination's flows are spread over more than one path.
    pub fn equal_cost(&self) -> bool {
        !self.ecmp.is_empty()
    }

    /// The paths the destination's flows take: the primary, then the equal-cost ones.
    pub fn ways(&self) -> impl Iterator<Item = &Path> {
        std::iter::once(&self.primary).chain(&self.ecmp)
    }
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

/// Cheapest path from `from` to node `to` under `load`, using no link `l` with
/// `skip[l]` (a shorter `skip` skips nothing beyond its end).
pub fn shortest(
    t: &Topology,
    w: &PathWeights,
    from: usize,
    to: usize,
    load: &[f64],
    demand: f64,
    skip: &[bool],
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
            if skip.get(l).copied().unwrap_or(false) {
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
/// a path from the edge to its site, using no link `l` with `down[l]` (a shorter `down`
/// leaves the rest up). Returns the per-destination paths (None: no site, or no path
/// left) and the resulting load per link.
pub fn place(
    t: &Topology,
    w: &PathWeights,
    demand: &[f64],
    down: &[bool],
) -> (Vec<Option<DestPath>>, Vec<f64>) {
    let mut load = vec![0.0; t.links.len()];
    let mut out: Vec<Option<DestPath>> = vec![None; demand.len()];
    let mut order: Vec<usize> = (0..demand.len()).collect();
    order.sort_by(|&a, &b| demand[b].total_cmp(&demand[a]).then(a.cmp(&b)));
    let base: Vec<bool> = (0..t.links.len())
        .map(|l| down.get(l).copied().unwrap_or(false))
        .collect();
    let mut skip = base.clone();
    for d in order {
        let Some(site) = t.site_of(d) else {
            continue;
        };
        let to = t.sites[site].node;
        let dm = demand[d].max(0.0);
        let Some(primary) = shortest(t, w, 0, to, &load, dm, &base) else {
            continue;
        };
        // The backup, then more equal-cost paths: each avoids the first links of all
        // before it.
        skip.copy_from_slice(&base);
        let avoid_first = |p: &Path, skip: &mut [bool]| {
            if let Some(&l) = p.links.first() {
                skip[l] = true;
            }
        };
        avoid_first(&primary, &mut skip);
        let backup = shortest(t, w, 0, to, &load, dm, &skip);
        let equal =
            |p: &Path| p.weight <= primary.weight * (1.0 + ECMP_SLACK) && p.weight < OVERLOAD;
        let mut ecmp: Vec<Path> = Vec::new();
        let mut next = backup.clone();
        while let Some(p) = next.take().filter(|p| equal(p)) {
            avoid_first(&p, &mut skip);
            ecmp.push(p);
            if ecmp.len() + 1 < MAX_STEER_WAYS {
                next = shortest(t, w, 0, to, &load, dm, &skip);
            }
        }
        let share = dm / (1 + ecmp.len()) as f64;
        for p in std::iter::once(&primary).chain(&ecmp) {
            for &l in &p.links {
                load[l] += share;
            }
        }
        out[d] = Some(DestPath {
            primary,
            backup,
            ecmp,
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
        let mut skip = vec![false; t.links.len()];
        skip[first] = true;
        shortest(t, &w, hop, to, &zero, 0.0, &skip)?
    };
    p.links.insert(0, first);
    p.latency_us += t.links[first].latency_us;
    Some(p)
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::topology::tests::small;
    use super::*;
    use proptest::prelude::*;

    pub(in crate::ram) fn weights() -> PathWeights {
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
        let (p, _) = place(&t, &weights(), &[10.0, 10.0], &[]);
        let fra = p[0].as_ref().unwrap();
        assert_eq!(
            t.links[fra.primary.links[0]].next_hop.as_deref(),
            Some("via-r1")
        );
        assert_eq!(fra.primary.latency_us, 200.0);
        assert!(!fra.equal_cost());
        assert!(fra.backup.is_some(), "backup via r2");
        // ams is only reachable via r2.
        let ams = p[1].as_ref().unwrap();
        assert_eq!(
            t.links[ams.primary.links[0]].next_hop.as_deref(),
            Some("via-r2")
        );
        // 1200 pps does not fit the 1000 pps edge-r1 link: fra moves to r2.
        let (p, load) = place(&t, &weights(), &[1200.0, 10.0], &[]);
        let fra = p[0].as_ref().unwrap();
        assert_eq!(
            t.links[fra.primary.links[0]].next_hop.as_deref(),
            Some("via-r2")
        );
        assert!(load.iter().zip(&t.links).all(|(l, k)| *l <= k.capacity_pps));
    }

    /// The edge reaches `fra` through three routers at the same latency and cost.
    pub(in crate::ram) fn three_way() -> Topology {
        let mut text = String::from(
            "worker_pps = 100\nrouters = [\"r1\", \"r2\", \"r3\"]\n\
             [[regions]]\nname = \"eu\"\nbudget = 8\n\
             [[zones]]\nname = \"w\"\nregion = \"eu\"\nbudget = 8\n\
             [[sites]]\nname = \"fra\"\nzone = \"w\"\nmax_workers = 8\n\
             [[destinations]]\nid = 0\nsite = \"fra\"\n",
        );
        for r in ["r1", "r2", "r3"] {
            text.push_str(&format!(
                "[[links]]\na = \"edge\"\nb = \"{r}\"\nlatency_us = 100\ncapacity_pps = 100000\nnext_hop = \"via-{r}\"\n\
                 [[links]]\na = \"{r}\"\nb = \"fra\"\nlatency_us = 100\ncapacity_pps = 100000\n"
            ));
        }
        Topology::build(&toml::from_str(&text).unwrap()).unwrap()
    }

    #[test]
    fn three_equal_paths_make_a_three_way_split() {
        let t = three_way();
        let (p, load) = place(&t, &weights(), &[300.0], &[]);
        let dp = p[0].as_ref().unwrap();
        assert_eq!(dp.ecmp.len(), 2, "{dp:?}");
        assert!(dp.equal_cost());
        let mut firsts: Vec<usize> = dp.ways().map(|w| w.links[0]).collect();
        firsts.sort_unstable();
        assert_eq!(firsts, vec![0, 2, 4], "one way per edge link");
        for l in [0, 2, 4] {
            assert!((load[l] - 100.0).abs() < 1e-9, "a third on each: {load:?}");
        }
        assert_eq!(dp.backup.as_ref(), dp.ecmp.first());
    }

    #[test]
    fn down_links_are_never_used() {
        let t = three_way();
        // r2's edge link down: two ways left.
        let (p, load) = place(&t, &weights(), &[300.0], &[false, false, true]);
        let dp = p[0].as_ref().unwrap();
        assert_eq!(dp.ecmp.len(), 1);
        assert!(dp.ways().all(|w| !w.links.contains(&2)));
        assert_eq!(load[2], 0.0);
        // r1 – fra down as well (beyond the edge): one way, through r3, and no backup.
        let (p, _) = place(&t, &weights(), &[300.0], &[false, true, true]);
        let dp = p[0].as_ref().unwrap();
        assert!(!dp.equal_cost() && dp.backup.is_none(), "{dp:?}");
        assert_eq!(dp.primary.links, vec![4, 5]);
        // Every way down: no path.
        let (p, load) = place(&t, &weights(), &[300.0], &[true, false, true, false, true]);
        assert!(p[0].is_none());
        assert!(load.iter().all(|&l| l == 0.0));
    }

    #[test]
    fn static_path_ignores_load() {
        let t = Topology::build(&small()).unwrap();
        let p = static_path(&t, 0, 0).unwrap();
        assert_eq!(p.links.len(), 2);
        assert_eq!(p.latency_us, 200.0);
    }

    proptest! {
        /// Whatever is down, no path (primary, backup or equal-cost) uses a down link,
        /// and a destination has a path exactly when its site is reachable without them.
        #[test]
        fn no_path_uses_a_down_link(down in proptest::collection::vec(any::<bool>(), 6), d in 0.0f64..3000.0) {
            let t = three_way();
            let (p, load) = place(&t, &weights(), &[d], &down);
            let reachable = (0..3).any(|r| !down[2 * r] && !down[2 * r + 1]);
            prop_assert_eq!(p[0].is_some(), reachable);
            if let Some(dp) = &p[0] {
                for w in dp.ways().chain(dp.backup.iter()) {
                    prop_assert!(w.links.iter().all(|&l| !down[l]), "{:?} uses a down link", w);
                }
                prop_assert!(dp.ecmp.len() < MAX_STEER_WAYS);
            }
            for (l, &x) in load.iter().enumerate() {
                prop_assert!(!down[l] || x == 0.0);
            }
        }

        /// Placed paths are connected walks from the edge to the destination's site, and
        /// no link is loaded beyond capacity when a path within capacity existed for all.
        #[test]
        fn placed_paths_are_valid(d0 in 0.0f64..3000.0, d1 in 0.0f64..3000.0) {
            let t = Topology::build(&small()).unwrap();
            let (p, load) = place(&t, &weights(), &[d0, d1], &[]);
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
