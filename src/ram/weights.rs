//! Transmit class weights from the RAM's plan (cold, on the RAM's thread;
//! `[ram] set_tx_weights = true`): the demand the RAM expects per egress port and
//! class becomes the port's `tx_weights`, so the classes share a port that turns out
//! to be the bottleneck in proportion to what was forecast for them, set before the
//! traffic arrives.
//!
//! - [`class_demand`]: wire bytes per second per (port, class) of the steered
//!   destinations, each on its steering entry's next hops (split evenly over ECMP ways,
//!   as the flow hash spreads them) in the class its entry caps the header at.
//! - [`shares`]: per-mille shares of a port's demand, with a floor so a class the RAM
//!   expects nothing in is never shut out.
//! - [`WeightHold`]: the hysteresis — a share that grows is raised at once (ahead of
//!   the traffic), one that shrinks is lowered only after it has stayed lower for the
//!   release hold, as the planner releases workers.
//!
//! Routed (LPM) traffic is in class 0 and the RAM has no forecast for it, so class 0
//! only holds what steered destinations with `max_priority = 0` bring, and at least
//! the floor.

use crate::safe::tx::{MAX_PRIORITY, N_CLASSES};
use crate::steering::SteerEntry;

/// Largest weight (`tx_weights` accepts 1..=1000): shares are per mille of the port.
pub const WEIGHT_SCALE: u16 = 1000;

/// A share moves only when it leaves this band around the published one (ratio), so
/// the weights are not republished for every small change of the forecast.
pub const DEAD_BAND: f64 = 1.1;

/// Bytes per second the RAM expects per (port, class): for every destination with an
/// entry, `expected_pps[d] × wire_bytes[d]` on the ports of its entry's next hops
/// (`nh_port`, by next-hop index; `None` = not a port of this appliance), divided
/// evenly over its ways, in the class `min(entry.max_priority, MAX_PRIORITY)`.
pub fn class_demand(
    entries: &[Option<SteerEntry>],
    expected_pps: &[f64],
    wire_bytes: &[f64],
    nh_port: &[Option<usize>],
    n_ports: usize,
) -> Vec<[f64; N_CLASSES]> {
    let mut out = vec![[0.0; N_CLASSES]; n_ports];
    for (d, e) in entries.iter().enumerate() {
        let Some(e) = e else { continue };
        let pps = expected_pps.get(d).copied().unwrap_or(0.0);
        let bytes = wire_bytes.get(d).copied().unwrap_or(0.0);
        let bps = pps * bytes;
        if !(bps.is_finite() && bps > 0.0) {
            continue;
        }
        let hops = e.hops();
        let share = bps / hops.len() as f64;
        let class = usize::from(e.max_priority.min(MAX_PRIORITY));
        for &h in hops {
            if let Some(&Some(p)) = nh_port.get(usize::from(h))
                && let Some(row) = out.get_mut(p)
            {
                row[class] += share;
            }
        }
    }
    out
}

/// Per-mille shares of a port's demand per class, each at least `floor` (1..=1000);
/// `None` when the RAM expects nothing on the port (its configured weights apply).
pub fn shares(demand: &[f64; N_CLASSES], floor: u16) -> Option<[u16; N_CLASSES]> {
    let total: f64 = demand.iter().filter(|x| x.is_finite() && **x > 0.0).sum();
    if total <= 0.0 {
        return None;
    }
    let floor = floor.clamp(1, WEIGHT_SCALE);
    let mut w = [floor; N_CLASSES];
    for (w, &x) in w.iter_mut().zip(demand) {
        if x.is_finite() && x > 0.0 {
            let s = (x / total * f64::from(WEIGHT_SCALE)).round() as u16;
            *w = s.clamp(floor, WEIGHT_SCALE);
        }
    }
    Some(w)
}

/// The weights the RAM publishes for one port, with hysteresis: see the module doc.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightHold {
    /// Published: `None` = the port's configured `tx_weights` (the RAM expects nothing
    /// there).
    cur: Option<[u16; N_CLASSES]>,
    /// Per class: since when (logical s) its target share has been below the band.
    low_since: [Option<f64>; N_CLASSES],
    /// Since when the RAM has expected nothing on the port.
    none_since: Option<f64>,
}

impl Default for WeightHold {
    fn default() -> Self {
        WeightHold {
            cur: None,
            low_since: [None; N_CLASSES],
            none_since: None,
        }
    }
}

impl WeightHold {
    /// What is published (`None`: the configured weights).
    pub fn current(&self) -> Option<[u16; N_CLASSES]> {
        self.cur
    }

    /// Moves toward `target` (from [`shares`]) at logical time `now`: a share above
    /// the band is raised at once, one below it is lowered once it has stayed below for
    /// `hold` seconds; no demand at all returns the port to its configured weights
    /// after `hold`. Returns whether what is published changed.
    pub fn step(&mut self, now: f64, target: Option<[u16; N_CLASSES]>, hold: f64) -> bool {
        let before = self.cur;
        match (self.cur, target) {
            (_, None) => {
                self.low_since = [None; N_CLASSES];
                if self.cur.is_some() {
                    let since = *self.none_since.get_or_insert(now);
                    if now - since >= hold {
                        self.cur = None;
                        self.none_since = None;
                    }
                }
            }
            (None, Some(t)) => {
                self.cur = Some(t);
                self.none_since = None;
                self.low_since = [None; N_CLASSES];
            }
            (Some(mut c), Some(t)) => {
                self.none_since = None;
                for k in 0..N_CLASSES {
                    let (cur, want) = (f64::from(c[k]), f64::from(t[k]));
                    if want > cur * DEAD_BAND {
                        c[k] = t[k];
                        self.low_since[k] = None;
                    } else if want * DEAD_BAND < cur {
                        let since = *self.low_since[k].get_or_insert(now);
                        if now - since >= hold {
                            c[k] = t[k];
                            self.low_since[k] = None;
                        }
                    } else {
                        self.low_since[k] = None;
                    }
                }
                self.cur = Some(c);
            }
        }
        self.cur != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hops: &[u16], prio: u8) -> Option<SteerEntry> {
        Some(SteerEntry::ecmp(hops, prio).unwrap())
    }

    #[test]
    fn demand_lands_on_the_entries_ports_and_classes() {
        // Next hops 0 and 1 on port 1, next hop 2 on port 2, next hop 3 not a port.
        let nh_port = [Some(1), Some(1), Some(2), None];
        let entries = [
            entry(&[0], 3),    // 100 pps × 100 B on port 1, class 3
            None,              // no entry: no demand
            entry(&[1, 2], 1), // 200 pps × 50 B, half on port 1, half on port 2, class 1
            entry(&[3], 2),    // a next hop that is no port: nowhere
        ];
        let d = class_demand(
            &entries,
            &[100.0, 1e6, 200.0, 50.0],
            &[100.0, 100.0, 50.0, 80.0],
            &nh_port,
            3,
        );
        assert_eq!(d[0], [0.0; 4]);
        assert_eq!(d[1], [0.0, 5000.0, 0.0, 10_000.0]);
        assert_eq!(d[2], [0.0, 5000.0, 0.0, 0.0]);
        // NaN or negative demand counts as none.
        let d = class_demand(&entries[..1], &[f64::NAN], &[100.0], &nh_port, 3);
        assert_eq!(d[1], [0.0; 4]);
    }

    #[test]
    fn shares_are_per_mille_with_a_floor() {
        assert_eq!(shares(&[0.0; 4], 50), None);
        assert_eq!(shares(&[0.0, 1.0, 0.0, 3.0], 50), Some([50, 250, 50, 750]));
        // A tiny class gets the floor, not less.
        assert_eq!(shares(&[1.0, 0.0, 0.0, 999.0], 50), Some([50, 50, 50, 999]));
        assert_eq!(shares(&[0.0, 0.0, 0.0, 5.0], 1), Some([1, 1, 1, 1000]));
        // A floor outside 1..=1000 is clamped (validation refuses it earlier).
        assert_eq!(shares(&[1.0, 1.0, 1.0, 1.0], 0), Some([250; 4]));
    }

    #[test]
    fn raised_at_once_lowered_after_the_hold() {
        let mut h = WeightHold::default();
        assert!(
            !h.step(0.0, None, 10.0),
            "nothing expected, nothing published"
        );
        assert!(h.step(1.0, Some([50, 50, 50, 850]), 10.0));
        assert_eq!(h.current(), Some([50, 50, 50, 850]));
        // Within the band: no change.
        assert!(!h.step(2.0, Some([54, 50, 50, 800]), 10.0));
        // A surge forecast for class 1: raised at once; class 3's fall waits.
        assert!(h.step(3.0, Some([50, 600, 50, 300]), 10.0));
        assert_eq!(h.current(), Some([50, 600, 50, 850]));
        assert!(!h.step(12.9, Some([50, 600, 50, 300]), 10.0));
        assert!(h.step(13.0, Some([50, 600, 50, 300]), 10.0));
        assert_eq!(h.current(), Some([50, 600, 50, 300]));
        // Class 3 back up at once; class 1's fall starts its hold, and a target back
        // inside the band restarts it.
        assert!(h.step(14.0, Some([50, 400, 50, 550]), 10.0));
        assert_eq!(h.current(), Some([50, 600, 50, 550]));
        assert!(!h.step(15.0, Some([50, 580, 50, 550]), 10.0));
        assert!(!h.step(20.0, Some([50, 400, 50, 550]), 10.0));
        assert!(!h.step(29.0, Some([50, 400, 50, 550]), 10.0));
        assert!(h.step(30.0, Some([50, 400, 50, 550]), 10.0));
        assert_eq!(h.current(), Some([50, 400, 50, 550]));
        // No demand any more: back to the configured weights after the hold.
        assert!(!h.step(31.0, None, 10.0));
        assert!(
            !h.step(35.0, Some([50, 400, 50, 550]), 10.0),
            "demand is back"
        );
        assert!(!h.step(36.0, None, 10.0));
        assert!(!h.step(45.9, None, 10.0));
        assert!(h.step(46.0, None, 10.0));
        assert_eq!(h.current(), None);
        // A zero hold follows the target at once.
        assert!(h.step(47.0, Some([50, 50, 50, 850]), 0.0));
        assert!(h.step(47.0, Some([50, 50, 850, 50]), 0.0));
        assert_eq!(h.current(), Some([50, 50, 850, 50]));
    }

    proptest::proptest! {
        /// Whatever the demand, the shares are valid `tx_weights` (1..=1000 each), and
        /// what the hold publishes is always one of them, component by component
        /// between the lowest and highest target seen.
        #[test]
        fn weights_stay_valid(
            demand in proptest::collection::vec(
                proptest::array::uniform4(0.0f64..1e9), 1..40),
            floor in 1u16..=1000,
            hold in 0.0f64..5.0,
        ) {
            let mut h = WeightHold::default();
            let mut lo = [u16::MAX; N_CLASSES];
            let mut hi = [0u16; N_CLASSES];
            for (i, d) in demand.iter().enumerate() {
                let t = shares(d, floor);
                if let Some(t) = t {
                    for k in 0..N_CLASSES {
                        proptest::prop_assert!((1..=WEIGHT_SCALE).contains(&t[k]));
                        proptest::prop_assert!(t[k] >= floor);
                        lo[k] = lo[k].min(t[k]);
                        hi[k] = hi[k].max(t[k]);
                    }
                }
                h.step(i as f64, t, hold);
                if let Some(c) = h.current() {
                    for k in 0..N_CLASSES {
                        proptest::prop_assert!((lo[k]..=hi[k]).contains(&c[k]), "{c:?}");
                    }
                }
            }
        }
    }
}
