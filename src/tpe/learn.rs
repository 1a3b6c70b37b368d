//! Continuous learning (cold, `tpe` thread): online correction of the model's error and
//! shadow evaluation of a candidate model.
//!
//! - [`Corrector`]: per destination and horizon, an EWMA (`alpha`) of the log ratio
//!   `ln((actual+1)/(raw+1))` between the actual value and the model's raw forecast made
//!   `h` buckets earlier, updated every bucket as actuals arrive. It multiplies new
//!   forecasts by `exp(c)`, `c` clamped to ±`bound`. A gate keeps it honest: per horizon it
//!   tracks the recent MAE of raw and corrected forecasts and applies the correction only
//!   while the corrected ones have been better.
//! - [`Shadow`]: a candidate model runs beside the active one on the same inputs; once
//!   `window` buckets have been scored, it is promoted if its MAE over them (all
//!   destinations and horizons) is below the active one's by more than `margin`
//!   (relative), and rejected otherwise.

use super::features::HORIZONS;

/// Slots per destination in a [`Pending`] ring (> the largest horizon).
const RING: usize = 64;

/// Forecasts waiting for their actuals: per destination, the forecasts made at bucket `t`.
#[derive(Debug, Clone)]
pub struct Pending<T: Copy> {
    slots: Vec<[Option<(u64, T)>; RING]>,
}

impl<T: Copy> Pending<T> {
    /// For `n` destinations.
    pub fn new(n: usize) -> Self {
        Pending {
            slots: vec![[None; RING]; n],
        }
    }
    /// Stores what was forecast for `dest` at the end of bucket `t`.
    pub fn put(&mut self, dest: usize, t: u64, v: T) {
        if let Some(s) = self.slots.get_mut(dest) {
            s[t as usize % RING] = Some((t, v));
        }
    }
    /// What was forecast for `dest` at bucket `t`, if still stored.
    pub fn get(&self, dest: usize, t: u64) -> Option<T> {
        match self.slots.get(dest)?[t as usize % RING] {
            Some((tt, v)) if tt == t => Some(v),
            _ => None,
        }
    }
}

/// Parameters of the online correction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CorrectionParams {
    /// EWMA factor of the log-ratio per bucket.
    pub alpha: f32,
    /// Largest |correction| in log units (0.3 ≈ ±35 %).
    pub bound: f32,
    /// EWMA factor of the gate's error tracking.
    pub gate_alpha: f32,
}

impl Default for CorrectionParams {
    fn default() -> Self {
        CorrectionParams {
            alpha: 0.02,
            bound: 0.3,
            gate_alpha: 0.002,
        }
    }
}

/// Online per-destination, per-horizon correction of a model's forecasts.
#[derive(Debug, Clone)]
pub struct Corrector {
    p: CorrectionParams,
    c: Vec<[f32; 3]>,
    pending: Pending<([f32; 3], [f32; 3])>,
    err_raw: [f64; 3],
    err_cor: [f64; 3],
    /// Number of updates applied.
    pub updates: u64,
}

impl Corrector {
    /// For `n_dest` destinations.
    pub fn new(n_dest: usize, p: CorrectionParams) -> Self {
        Corrector {
            p,
            c: vec![[0.0; 3]; n_dest],
            pending: Pending::new(n_dest),
            err_raw: [0.0; 3],
            err_cor: [0.0; 3],
            updates: 0,
        }
    }

    /// The current log corrections of `dest`.
    pub fn correction(&self, dest: usize) -> [f32; 3] {
        self.c.get(dest).copied().unwrap_or([0.0; 3])
    }

    /// Whether horizon `k` currently applies its correction (the gate).
    pub fn active(&self, k: usize) -> bool {
        self.err_cor[k] < self.err_raw[k]
    }

    /// Corrects the raw forecast `raw` of `dest` made at bucket `t`, remembers both, and
    /// returns the forecast to use.
    pub fn apply(&mut self, dest: usize, t: u64, raw: [f32; 3]) -> [f32; 3] {
        let c = self.correction(dest);
        let mut cor = raw;
        for k in 0..3 {
            cor[k] = (raw[k] + 1.0) * c[k].exp() - 1.0;
            cor[k] = cor[k].max(0.0);
        }
        self.pending.put(dest, t, (raw, cor));
        let mut out = raw;
        for k in 0..3 {
            if self.active(k) {
                out[k] = cor[k];
            }
        }
        out
    }

    /// Feeds the actual value of `dest` in bucket `t`.
    pub fn observe(&mut self, dest: usize, t: u64, actual: f32) {
        let Some(c) = self.c.get_mut(dest) else {
            return;
        };
        for (k, &h) in HORIZONS.iter().enumerate() {
            let Some(made) = t.checked_sub(h as u64) else {
                continue;
            };
            let Some((raw, cor)) = self.pending.get(dest, made) else {
                continue;
            };
            let r = ((actual + 1.0).ln() - (raw[k] + 1.0).ln()).clamp(-2.0, 2.0);
            c[k] =
                ((1.0 - self.p.alpha) * c[k] + self.p.alpha * r).clamp(-self.p.bound, self.p.bound);
            let g = f64::from(self.p.gate_alpha);
            self.err_raw[k] = (1.0 - g) * self.err_raw[k] + g * f64::from((raw[k] - actual).abs());
            self.err_cor[k] = (1.0 - g) * self.err_cor[k] + g * f64::from((cor[k] - actual).abs());
            self.updates += 1;
        }
    }
}

/// Parameters of shadow evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShadowParams {
    /// Buckets scored before deciding.
    pub window: usize,
    /// Relative margin the candidate must win by (0 = any improvement).
    pub margin: f64,
}

impl Default for ShadowParams {
    fn default() -> Self {
        ShadowParams {
            window: 240,
            margin: 0.0,
        }
    }
}

/// Outcome of a shadow evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// The candidate won: make it active.
    Promote {
        /// Candidate MAE over the window.
        candidate_mae: f64,
        /// Active MAE over the window.
        active_mae: f64,
    },
    /// The candidate lost: drop it.
    Reject {
        /// Candidate MAE over the window.
        candidate_mae: f64,
        /// Active MAE over the window.
        active_mae: f64,
    },
}

/// Shadow evaluation of one candidate against the active model.
#[derive(Debug, Clone)]
pub struct Shadow {
    p: ShadowParams,
    pending: Pending<([f32; 3], [f32; 3])>,
    scored: usize,
    err_active: f64,
    err_cand: f64,
    n: u64,
    /// Candidates promoted.
    pub promotions: u64,
    /// Candidates rejected.
    pub rejections: u64,
    running: bool,
}

impl Shadow {
    /// For `n_dest` destinations.
    pub fn new(n_dest: usize, p: ShadowParams) -> Self {
        Shadow {
            p,
            pending: Pending::new(n_dest),
            scored: 0,
            err_active: 0.0,
            err_cand: 0.0,
            n: 0,
            promotions: 0,
            rejections: 0,
            running: false,
        }
    }

    /// Starts evaluating a new candidate (forgets the previous one's scores).
    pub fn start(&mut self) {
        let n = self.pending.slots.len();
        self.pending = Pending::new(n);
        self.scored = 0;
        self.err_active = 0.0;
        self.err_cand = 0.0;
        self.n = 0;
        self.running = true;
    }

    /// True while a candidate is being evaluated.
    pub fn running(&self) -> bool {
        self.running
    }

    /// Ends the evaluation without a decision (e.g. the candidate failed); counts a rejection.
    pub fn abort(&mut self) {
        if self.running {
            self.running = false;
            self.rejections += 1;
        }
    }

    /// Records both models' forecasts for `dest` made at bucket `t`.
    pub fn record(&mut self, dest: usize, t: u64, active: [f32; 3], candidate: [f32; 3]) {
        if self.running {
            self.pending.put(dest, t, (active, candidate));
        }
    }

    /// Scores bucket `t` with `actual[dest]`; returns a decision once `window` buckets
    /// with at least one scored forecast have been seen.
    pub fn observe_bucket(&mut self, t: u64, actual: &[f32]) -> Option<Decision> {
        if !self.running {
            return None;
        }
        let mut any = false;
        for (d, &x) in actual.iter().enumerate() {
            for (k, &h) in HORIZONS.iter().enumerate() {
                let Some(made) = t.checked_sub(h as u64) else {
                    continue;
                };
                if let Some((a, c)) = self.pending.get(d, made) {
                    self.err_active += f64::from((a[k] - x).abs());
                    self.err_cand += f64::from((c[k] - x).abs());
                    self.n += 1;
                    any = true;
                }
            }
        }
        if any {
            self.scored += 1;
        }
        if self.scored < self.p.window.max(1) {
            return None;
        }
        self.running = false;
        let n = self.n.max(1) as f64;
        let (active_mae, candidate_mae) = (self.err_active / n, self.err_cand / n);
        Some(if candidate_mae < active_mae * (1.0 - self.p.margin) {
            self.promotions += 1;
            Decision::Promote {
                candidate_mae,
                active_mae,
            }
        } else {
            self.rejections += 1;
            Decision::Reject {
                candidate_mae,
                active_mae,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correction_learns_a_bias_and_is_bounded() {
        let mut c = Corrector::new(
            1,
            CorrectionParams {
                alpha: 0.1,
                bound: 0.3,
                gate_alpha: 0.05,
            },
        );
        // Model forecasts 100 everywhere; actual is always 150.
        let mut last = [0.0; 3];
        for t in 0..400u64 {
            c.observe(0, t, 150.0);
            last = c.apply(0, t, [100.0; 3]);
        }
        let corr = c.correction(0);
        // ln(151/101) = 0.402 > bound: clamped.
        assert!(corr.iter().all(|&v| (v - 0.3).abs() < 1e-6), "{corr:?}");
        assert!(c.active(0) && c.active(2));
        assert!(
            last.iter()
                .all(|&v| (v - (101.0 * 0.3f32.exp() - 1.0)).abs() < 1e-3),
            "{last:?}"
        );
    }

    #[test]
    fn correction_converges_to_the_log_ratio() {
        let mut c = Corrector::new(
            2,
            CorrectionParams {
                alpha: 0.1,
                bound: 1.0,
                gate_alpha: 0.05,
            },
        );
        for t in 0..500u64 {
            c.observe(1, t, 120.0);
            c.apply(1, t, [100.0; 3]);
        }
        let want = (121.0f32 / 101.0).ln();
        assert!(c.correction(1).iter().all(|v| (v - want).abs() < 1e-3));
        assert_eq!(c.correction(0), [0.0; 3]);
    }

    #[test]
    fn gate_keeps_correction_off_when_it_does_not_help() {
        let mut c = Corrector::new(
            1,
            CorrectionParams {
                alpha: 0.5,
                bound: 1.0,
                gate_alpha: 0.05,
            },
        );
        // Unbiased but alternating actuals: a fast correction chases noise.
        for t in 0..400u64 {
            c.observe(0, t, if (t / 5) % 2 == 0 { 50.0 } else { 150.0 });
            c.apply(0, t, [100.0; 3]);
        }
        assert!(!c.active(0));
    }

    #[test]
    fn shadow_promotes_a_better_candidate() {
        let mut s = Shadow::new(
            2,
            ShadowParams {
                window: 20,
                margin: 0.0,
            },
        );
        s.start();
        let mut decision = None;
        for t in 0..200u64 {
            if let Some(d) = s.observe_bucket(t, &[100.0, 200.0]) {
                decision = Some(d);
                break;
            }
            s.record(0, t, [90.0; 3], [99.0; 3]);
            s.record(1, t, [220.0; 3], [201.0; 3]);
        }
        assert!(
            matches!(decision, Some(Decision::Promote { .. })),
            "{decision:?}"
        );
        assert_eq!((s.promotions, s.rejections), (1, 0));
        assert!(!s.running());
    }

    #[test]
    fn shadow_rejects_a_worse_or_equal_candidate() {
        let mut s = Shadow::new(
            1,
            ShadowParams {
                window: 10,
                margin: 0.05,
            },
        );
        s.start();
        let mut decision = None;
        for t in 0..200u64 {
            if let Some(d) = s.observe_bucket(t, &[100.0]) {
                decision = Some(d);
                break;
            }
            // Candidate slightly better but not by the 5 % margin.
            s.record(0, t, [110.0; 3], [109.9; 3]);
        }
        match decision {
            Some(Decision::Reject {
                candidate_mae,
                active_mae,
            }) => assert!(candidate_mae < active_mae),
            d => panic!("{d:?}"),
        }
        assert_eq!((s.promotions, s.rejections), (0, 1));
    }

    #[test]
    fn pending_ring_forgets_old_slots() {
        let mut p = Pending::new(1);
        p.put(0, 3, 1.0f32);
        assert_eq!(p.get(0, 3), Some(1.0));
        p.put(0, 3 + RING as u64, 2.0);
        assert_eq!(p.get(0, 3), None);
        assert_eq!(p.get(5, 3), None);
    }
}
