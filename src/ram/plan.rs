//! Capacity planning: how many workers each data center keeps awake, which destinations
//! get steering entries, with lead time, hysteresis and hierarchical budgets (cold, on
//! the RAM's thread; once per control tick).
//!
//! Per data center the planner computes a target worker count from the demand its mode
//! sees (see [`RamMode`]):
//! - **predictive**: the TPE's forecast for the next `lead_s` (raised by the calendar's
//!   announced events and a margin of its recent error), the trend [`nowcast`] of a
//!   rising rate over `wake_s`, the measured rate as a floor, and the reactive rule on
//!   top; it releases after `predictive_release_hold_s`, except while an announced
//!   event runs or is due (`release_hold_s`);
//! - **reactive**: the measured rate, acted on only when utilization of the provisioned
//!   capacity leaves `[down_threshold, up_threshold]`;
//! - **static**: the peak of the history, fixed.
//!
//! The hierarchy then caps the targets: each zone aggregates its data centers' requests
//! and grants at most its budget, each region does the same over its zones, and the
//! grants are handed back down (proportional shares, largest remainder). Raising a target
//! wakes workers, which carry traffic only `wake_s` later; lowering it waits until the
//! target has stayed lower for `release_hold_s` (hysteresis), then parks workers.
//!
//! Each wake is a *pre-positioning*: **early** when it became ready before the data
//! center's traffic exceeded the capacity it had, **late** when the traffic got there
//! first.

use super::topology::{RamConfig, RamMode, Topology};

/// A wake in progress.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Wake {
    site: usize,
    ready_at: f64,
    late: bool,
}

/// Per data center state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SiteState {
    /// Workers carrying traffic.
    pub active: u32,
    /// Workers woken, not ready yet.
    pub waking: u32,
    hold_since: Option<f64>,
    hold_max: u32,
    /// Last target before budgets.
    pub requested: u32,
    /// Last target after budgets.
    pub granted: u32,
    /// Demand the last target was computed from (packets per logical second).
    pub demand_pps: f64,
    /// At the last step, one of its destinations had an announced event running or
    /// due (`Demand::event_dests`): it keeps capacity for `release_hold_s`.
    pub event_hold: bool,
}

impl SiteState {
    /// Workers paid for: active and waking.
    pub fn provisioned(&self) -> u32 {
        self.active + self.waking
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct SteerState {
    on: bool,
    below_since: Option<f64>,
}

/// The demand the planner sees at one tick (packets per logical second per destination).
#[derive(Debug, Clone, Copy)]
pub struct Demand<'a> {
    /// Measured over the last `measure_s`.
    pub measured: &'a [f64],
    /// Forecast peak over the next `lead_s` (predictive mode; None before the first).
    pub forecast: Option<&'a [f64]>,
    /// Packets per logical second that reached each data center in the last tick.
    pub site_arrivals: &'a [f64],
    /// Per destination: an announced event that raises its traffic is running or due
    /// within the lead and wake time (empty: none). Predictive mode then provisions
    /// that destination's demand with `event_headroom`, and its data center releases
    /// capacity only after `release_hold_s`.
    pub event_dests: &'a [bool],
}

/// What changed in one step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    /// The set of steered destinations changed.
    pub steering: bool,
    /// Workers were woken.
    pub woken: u32,
    /// Workers were parked.
    pub parked: u32,
}

/// The planner.
#[derive(Debug, Clone)]
pub struct Planner {
    mode: RamMode,
    cfg: RamConfig,
    topo: Topology,
    sites: Vec<SiteState>,
    steer: Vec<SteerState>,
    wakes: Vec<Wake>,
    static_workers: Vec<u32>,
    expected: Vec<f64>,
    /// Pre-positionings ready before the traffic they were for.
    pub early: u64,
    /// Pre-positionings the traffic beat.
    pub late: u64,
    /// Workers woken in total.
    pub woken_total: u64,
    /// Workers parked in total.
    pub parked_total: u64,
}

fn workers_for(pps: f64, cfg: &RamConfig) -> u32 {
    (pps.max(0.0) * cfg.headroom / cfg.worker_pps)
        .ceil()
        .min(u32::MAX as f64) as u32
}

/// The trend nowcast: from one destination's rate over the measure window, one sample
/// per tick (newest first), the rate `ahead` ticks from now if the rise of the newer
/// half over the older half goes on. `None` when the rate is not rising (or the window
/// is shorter than 2). Predictive mode provisions for it (see [`RamConfig::nowcast`]).
pub fn nowcast(newest_first: &[f64], ahead: f64) -> Option<f64> {
    let half = newest_first.len() / 2;
    if half == 0 {
        return None;
    }
    let (new, old) = newest_first.split_at(half);
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let (mn, mo) = (mean(new), mean(old));
    // The halves' centres are `len / 2` ticks apart; the newer one's is `(half − 1) / 2`
    // ticks ago.
    let slope = (mn - mo) / (newest_first.len() as f64 / 2.0);
    (slope > 0.0).then(|| mn + slope * (ahead + (half as f64 - 1.0) / 2.0))
}

/// Scales `req[i]` for `i` in `members` down to at most `budget` in total (each keeps at
/// least `floor`), proportionally, handing out the remainder by largest fraction.
fn cap_group(req: &mut [u32], members: &[usize], budget: u32, floor: u32) {
    let sum: u64 = members.iter().map(|&i| u64::from(req[i])).sum();
    if sum <= u64::from(budget) || members.is_empty() {
        return;
    }
    let floor_total = floor as u64 * members.len() as u64;
    let budget = u64::from(budget).max(floor_total);
    let scale = budget as f64 / sum as f64;
    let mut fr: Vec<(f64, usize)> = Vec::with_capacity(members.len());
    let mut given = 0u64;
    for &i in members {
        let exact = f64::from(req[i]) * scale;
        let g = (exact.floor() as u32).max(floor.min(req[i]));
        fr.push((exact - exact.floor(), i));
        given += u64::from(g);
        req[i] = g;
    }
    // Floors can push the total over: take back from the largest grants.
    while given > budget {
        let Some(&i) = members
            .iter()
            .filter(|&&i| req[i] > floor)
            .max_by_key(|&&i| (req[i], std::cmp::Reverse(i)))
        else {
            break;
        };
        req[i] -= 1;
        given -= 1;
    }
    fr.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in fr {
        if given >= budget {
            break;
        }
        req[i] += 1;
        given += 1;
    }
}

/// Applies the hierarchy's budgets to per-site requests (zones, then regions).
pub fn allocate(t: &Topology, requests: &[u32], floor: u32) -> Vec<u32> {
    let mut g = requests.to_vec();
    for (z, (_, _, budget)) in t.zones.iter().enumerate() {
        let members: Vec<usize> = (0..t.sites.len())
            .filter(|&s| t.sites[s].zone == z)
            .collect();
        cap_group(&mut g, &members, *budget, floor);
    }
    for (r, (_, budget)) in t.regions.iter().enumerate() {
        let members: Vec<usize> = (0..t.sites.len())
            .filter(|&s| t.zones[t.sites[s].zone].1 == r)
            .collect();
        cap_group(&mut g, &members, *budget, floor);
    }
    g
}

impl Planner {
    /// A planner in `mode`. `peak_pps[s]` is site `s`'s peak in the history (static
    /// mode provisions for it; the others start from it too, like a running system).
    pub fn new(
        cfg: &RamConfig,
        topo: &Topology,
        mode: RamMode,
        peak_pps: &[f64],
        start_pps: &[f64],
    ) -> Self {
        let n = topo.sites.len();
        let req: Vec<u32> = (0..n)
            .map(|s| workers_for(peak_pps.get(s).copied().unwrap_or(0.0), cfg))
            .enumerate()
            .map(|(s, w)| w.clamp(cfg.min_workers, topo.sites[s].max_workers))
            .collect();
        let static_workers = allocate(topo, &req, cfg.min_workers);
        let sites = (0..n)
            .map(|s| {
                let active = match mode {
                    RamMode::Static => static_workers[s],
                    _ => workers_for(start_pps.get(s).copied().unwrap_or(0.0), cfg)
                        .clamp(cfg.min_workers, topo.sites[s].max_workers),
                };
                SiteState {
                    active,
                    granted: active,
                    requested: active,
                    ..SiteState::default()
                }
            })
            .collect();
        let nd = topo.n_dest();
        Planner {
            mode,
            cfg: cfg.clone(),
            topo: topo.clone(),
            sites,
            steer: vec![SteerState::default(); nd],
            wakes: Vec::new(),
            static_workers,
            expected: vec![0.0; nd],
            early: 0,
            late: 0,
            woken_total: 0,
            parked_total: 0,
        }
    }

    /// The mode.
    pub fn mode(&self) -> RamMode {
        self.mode
    }

    /// Per data center state.
    pub fn sites(&self) -> &[SiteState] {
        &self.sites
    }

    /// Destinations with a steering entry.
    pub fn steered(&self, d: usize) -> bool {
        self.steer.get(d).is_some_and(|s| s.on)
    }

    /// The demand per destination the last step planned for (for path placement).
    pub fn expected(&self) -> &[f64] {
        &self.expected
    }

    /// Wakes still in progress.
    pub fn pending_wakes(&self) -> usize {
        self.wakes.len()
    }

    /// One control tick at logical time `now` (seconds).
    pub fn step(&mut self, now: f64, d: Demand<'_>) -> Changes {
        let cfg = &self.cfg;
        let mut ch = Changes::default();
        // Wakes that finished; wakes the traffic beat.
        let mut i = 0;
        while i < self.wakes.len() {
            let w = self.wakes[i];
            let s = &mut self.sites[w.site];
            let cap = f64::from(s.active) * cfg.worker_pps;
            if d.site_arrivals.get(w.site).copied().unwrap_or(0.0) > cap {
                self.wakes[i].late = true;
            }
            if now + 1e-9 >= w.ready_at {
                s.waking -= 1;
                s.active += 1;
                if self.wakes[i].late {
                    self.late += 1;
                } else {
                    self.early += 1;
                }
                self.wakes.swap_remove(i);
            } else {
                i += 1;
            }
        }
        // Expected demand per destination.
        let nd = self.expected.len();
        for dest in 0..nd {
            let m = d.measured.get(dest).copied().unwrap_or(0.0);
            self.expected[dest] = match (self.mode, d.forecast) {
                (RamMode::Predictive, Some(f)) => m.max(f.get(dest).copied().unwrap_or(0.0)),
                _ => m,
            };
        }
        // Steering entries (static: every destination, always).
        for dest in 0..nd {
            let e = self.expected[dest];
            let st = &mut self.steer[dest];
            let want = self.mode == RamMode::Static || e >= cfg.steer_min_pps;
            if want {
                st.below_since = None;
                if !st.on {
                    st.on = true;
                    ch.steering = true;
                }
            } else if st.on && (e < cfg.steer_min_pps / 2.0 || st.below_since.is_some()) {
                let since = *st.below_since.get_or_insert(now);
                if now - since >= cfg.release_hold_s {
                    st.on = false;
                    st.below_since = None;
                    ch.steering = true;
                }
            }
        }
        // Targets per site.
        let n = self.sites.len();
        let mut site_expected = vec![0.0; n];
        let mut site_measured = vec![0.0; n];
        // Predictive: expected demand weighted by its headroom over the plain one (an
        // event's destinations get `event_headroom`), and the sites with an event.
        let mut site_weighted = vec![0.0; n];
        let mut site_event = vec![false; n];
        let event_w = cfg.event_headroom.unwrap_or(cfg.headroom) / cfg.headroom;
        for dest in 0..nd {
            if let Some(s) = self.topo.site_of(dest) {
                let ev = d.event_dests.get(dest).copied().unwrap_or(false);
                site_expected[s] += self.expected[dest];
                site_weighted[s] += self.expected[dest] * if ev { event_w } else { 1.0 };
                site_event[s] |= ev;
                site_measured[s] += d.measured.get(dest).copied().unwrap_or(0.0);
            }
        }
        let mut req = vec![0u32; n];
        for s in 0..n {
            let st = &self.sites[s];
            let prov_cap = f64::from(st.provisioned()) * cfg.worker_pps;
            let m = site_measured[s];
            let reactive = if m > cfg.up_threshold * prov_cap || m < cfg.down_threshold * prov_cap {
                workers_for(m, cfg)
            } else {
                st.provisioned()
            };
            let t = match self.mode {
                RamMode::Static => self.static_workers[s],
                RamMode::Reactive => reactive,
                RamMode::Predictive => {
                    let p = workers_for(site_weighted[s], cfg);
                    if m > cfg.up_threshold * prov_cap {
                        p.max(reactive)
                    } else {
                        p
                    }
                }
            };
            req[s] = t.clamp(cfg.min_workers, self.topo.sites[s].max_workers);
            self.sites[s].requested = req[s];
            self.sites[s].demand_pps = site_expected[s];
            self.sites[s].event_hold = site_event[s];
        }
        let grant = allocate(&self.topo, &req, cfg.min_workers);
        for (s, &g) in grant.iter().enumerate() {
            let st = &mut self.sites[s];
            st.granted = g;
            let prov = st.provisioned();
            if g > prov {
                st.hold_since = None;
                for _ in prov..g {
                    self.wakes.push(Wake {
                        site: s,
                        ready_at: now + cfg.wake_s,
                        late: false,
                    });
                }
                st.waking += g - prov;
                ch.woken += g - prov;
                self.woken_total += u64::from(g - prov);
                if cfg.wake_s <= 0.0 {
                    // Immediate wakes: ready now.
                    st.active += st.waking;
                    self.early += u64::from(st.waking);
                    st.waking = 0;
                    self.wakes.retain(|w| w.site != s);
                }
            } else if g < prov {
                let since = *st.hold_since.get_or_insert(now);
                st.hold_max = if since == now { g } else { st.hold_max.max(g) };
                let event = st.event_hold;
                let hold = match (self.mode, cfg.predictive_release_hold_s) {
                    (RamMode::Predictive, Some(h)) if !event => h,
                    _ => cfg.release_hold_s,
                };
                if now - since >= hold {
                    let mut drop_n = prov - st.hold_max;
                    ch.parked += drop_n;
                    self.parked_total += u64::from(drop_n);
                    // Cancel wakes first (latest first), then park active workers.
                    while drop_n > 0 && st.waking > 0 {
                        if let Some(pos) = self.wakes.iter().rposition(|w| w.site == s) {
                            self.wakes.remove(pos);
                        }
                        st.waking -= 1;
                        drop_n -= 1;
                    }
                    st.active -= drop_n.min(st.active);
                    st.hold_since = None;
                }
            } else {
                st.hold_since = None;
            }
        }
        ch
    }
}

#[cfg(test)]
mod tests {
    use super::super::topology::tests::small;
    use super::*;
    use proptest::prelude::*;

    fn planner(mode: RamMode) -> Planner {
        let mut c = small();
        c.wake_s = 10.0;
        c.release_hold_s = 30.0;
        c.headroom = 1.0;
        let t = Topology::build(&c).unwrap();
        Planner::new(&c, &t, mode, &[400.0, 100.0], &[100.0, 100.0])
    }

    fn step(p: &mut Planner, now: f64, m: [f64; 2], f: Option<[f64; 2]>) -> Changes {
        let arrivals = m;
        p.step(
            now,
            Demand {
                measured: &m,
                forecast: f.as_ref().map(|f| &f[..]),
                site_arrivals: &arrivals,
                event_dests: &[],
            },
        )
    }

    #[test]
    fn predictive_wakes_ahead_and_counts_early() {
        let mut p = planner(RamMode::Predictive);
        assert_eq!(p.sites()[0].active, 1);
        // Forecast 500 pps for site 0: 5 workers, woken now, ready at 10.
        let ch = step(&mut p, 0.0, [100.0, 50.0], Some([500.0, 50.0]));
        assert_eq!(ch.woken, 4);
        assert_eq!(p.sites()[0].waking, 4);
        for t in 1..=10 {
            step(&mut p, f64::from(t), [100.0, 50.0], Some([500.0, 50.0]));
        }
        assert_eq!(p.sites()[0].active, 5);
        assert_eq!((p.early, p.late), (4, 0));
    }

    #[test]
    fn reactive_is_late_when_traffic_jumps() {
        let mut p = planner(RamMode::Reactive);
        for t in 0..=12 {
            step(&mut p, f64::from(t), [500.0, 50.0], None);
        }
        assert_eq!(p.sites()[0].active, 5);
        assert_eq!(p.late, 4, "the traffic was there before the workers");
    }

    #[test]
    fn release_waits_for_the_hold() {
        let mut p = planner(RamMode::Reactive);
        for t in 0..=12 {
            step(&mut p, f64::from(t), [500.0, 50.0], None);
        }
        let mut parked_at = None;
        for t in 13..100 {
            let ch = step(&mut p, f64::from(t), [50.0, 50.0], None);
            if ch.parked > 0 && parked_at.is_none() {
                parked_at = Some(t);
            }
        }
        assert_eq!(parked_at, Some(43), "released after 30 s below");
        assert_eq!(p.sites()[0].active, 1);
    }

    #[test]
    fn static_keeps_the_peak() {
        let mut p = planner(RamMode::Static);
        assert_eq!(p.sites()[0].active, 4);
        for t in 0..100 {
            step(&mut p, f64::from(t), [1.0, 1.0], None);
        }
        assert_eq!(p.sites()[0].active, 4);
        assert!(p.steered(0) && p.steered(1));
    }

    #[test]
    fn steering_entries_follow_demand_with_hysteresis() {
        let mut p = planner(RamMode::Predictive);
        step(&mut p, 0.0, [0.0, 0.0], Some([0.0, 5.0]));
        assert!(!p.steered(0) && p.steered(1));
        step(&mut p, 1.0, [0.0, 0.0], Some([0.0, 0.0]));
        assert!(p.steered(1), "held");
        for t in 2..=31 {
            step(&mut p, f64::from(t), [0.0, 0.0], Some([0.0, 0.0]));
        }
        assert!(!p.steered(1), "released after the hold");
    }

    #[test]
    fn nowcast_extrapolates_a_rise_only() {
        // 10 pps more every second over a 10-second window, newest first: the newer
        // half's mean is 100 + 10·7 at t−2; 60 s after now the rate is 100 + 10·69.
        let w: Vec<f64> = (0..10).rev().map(|k| 100.0 + 10.0 * f64::from(k)).collect();
        let n = nowcast(&w, 60.0).unwrap();
        assert!((n - 790.0).abs() < 1e-9, "{n}");
        let flat = vec![500.0; 10];
        assert_eq!(nowcast(&flat, 60.0), None);
        let falling: Vec<f64> = w.iter().rev().copied().collect();
        assert_eq!(nowcast(&falling, 60.0), None);
        assert_eq!(nowcast(&[5.0], 60.0), None);
    }

    /// One step with `m` measured, forecast and arrived, and `events` announced.
    fn step_events(p: &mut Planner, now: f64, m: [f64; 2], events: &[bool]) {
        p.step(
            now,
            Demand {
                measured: &m,
                forecast: Some(&m),
                site_arrivals: &m,
                event_dests: events,
            },
        );
    }

    /// `event_headroom` applies to the destinations with an announced event only, in
    /// predictive mode only.
    #[test]
    fn event_headroom_provisions_the_event_destinations() {
        let mut c = small();
        c.wake_s = 0.0;
        c.headroom = 1.0;
        c.event_headroom = Some(2.0);
        let t = Topology::build(&c).unwrap();
        let active = |mode: RamMode, events: &[bool]| {
            let mut p = Planner::new(&c, &t, mode, &[400.0, 100.0], &[100.0, 100.0]);
            step_events(&mut p, 0.0, [300.0, 200.0], events);
            (p.sites()[0].active, p.sites()[1].active)
        };
        // 300 and 200 pps at 100 pps per worker.
        assert_eq!(active(RamMode::Predictive, &[]), (3, 2));
        assert_eq!(active(RamMode::Predictive, &[true, false]), (6, 2));
        assert_eq!(active(RamMode::Predictive, &[false, true]), (3, 4));
        assert_eq!(
            active(RamMode::Reactive, &[true, true]),
            (3, 2),
            "reactive ignores it"
        );
    }

    #[test]
    fn predictive_releases_sooner_unless_an_event_is_due() {
        let mut c = small();
        c.wake_s = 0.0;
        c.release_hold_s = 30.0;
        c.predictive_release_hold_s = Some(5.0);
        c.headroom = 1.0;
        let t = Topology::build(&c).unwrap();
        let run = |event: bool| {
            let mut p = Planner::new(
                &c,
                &t,
                RamMode::Predictive,
                &[400.0, 100.0],
                &[100.0, 100.0],
            );
            let hold = [event, false];
            step_events(&mut p, 0.0, [500.0, 50.0], &hold);
            assert_eq!(p.sites()[0].active, 5);
            (1..60)
                .find(|&now| {
                    step_events(&mut p, f64::from(now), [100.0, 50.0], &hold);
                    p.sites()[0].active == 1
                })
                .unwrap()
        };
        assert_eq!(run(false), 6, "predictive hold");
        assert_eq!(run(true), 31, "an announced event keeps release_hold_s");
    }

    proptest! {
        /// Grants never exceed requests or budgets, and each site keeps its floor.
        #[test]
        fn budgets_hold(r0 in 0u32..40, r1 in 0u32..40, floor in 0u32..3) {
            let t = Topology::build(&small()).unwrap();
            let g = allocate(&t, &[r0, r1], floor);
            prop_assert!(g[0] <= r0.max(floor.min(r0)) && g[1] <= r1.max(floor.min(r1)));
            prop_assert!(g[0] + g[1] <= 12u32.max(2 * floor));
            prop_assert!(g[0] >= floor.min(r0) && g[1] >= floor.min(r1));
            if r0 + r1 <= 12 {
                prop_assert_eq!(g, vec![r0, r1]);
            }
        }
    }
}
