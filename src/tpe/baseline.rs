//! Baseline forecasters: the simple forecasts an operator could use instead of the model.
//!
//! Every predictor is online: [`Predictor::observe`] is called once per bucket and
//! destination, in bucket order, and [`Predictor::predict`] forecasts the packets of the
//! bucket `horizon` buckets after the last observed one. All are cheap (O(1) per call) and
//! run beside the model on the `tpe` thread, so their accuracy is always known and one of
//! them can take over when the model fails.
//!
//! Parameters ([`BaselineParams::default`]) were chosen by a small grid search on the
//! *training* scenarios (`mixed` and `surge`, training seeds), not on the held-out set:
//! - EWMA: `α = 0.5` (grid 0.2, 0.3, 0.5, 0.7).
//! - Holt–Winters, additive, daily season (`m = 1440`): `α = 0.3`, `β = 0`, `γ = 0.1`
//!   (grid α ∈ {0.1, 0.3, 0.5}, β ∈ {0, 0.001}, γ ∈ {0.02, 0.1, 0.3}; β = 0 won: the
//!   growth is too slow for a trend term to pay for its noise, so the trend stays 0).
//!   The first `m` observations initialise the season (value − mean of the first day);
//!   until then it forecasts like Holt's linear method without season. Each seasonal
//!   index is updated once a day, so a flash crowd or a spike stays in the season for
//!   about `1/γ` days: that, not a bug, is why it trails EWMA at short horizons here.

use super::PredictorKind;
use super::scenario::DAY;

/// An online per-destination forecaster.
pub trait Predictor: Send {
    /// Which predictor this is.
    fn kind(&self) -> PredictorKind;
    /// Feeds the value of the next bucket of `dest`.
    fn observe(&mut self, dest: usize, value: f32);
    /// Forecast for `dest`, `horizon` buckets after the last observed one (≥ 0).
    fn predict(&self, dest: usize, horizon: usize) -> f32;
}

/// Tunable parameters of the baselines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaselineParams {
    /// EWMA smoothing factor.
    pub ewma_alpha: f32,
    /// Holt–Winters level smoothing.
    pub hw_alpha: f32,
    /// Holt–Winters trend smoothing.
    pub hw_beta: f32,
    /// Holt–Winters season smoothing.
    pub hw_gamma: f32,
    /// Season length in buckets.
    pub season: usize,
}

impl Default for BaselineParams {
    fn default() -> Self {
        BaselineParams {
            ewma_alpha: 0.5,
            hw_alpha: 0.3,
            hw_beta: 0.0,
            hw_gamma: 0.1,
            season: DAY as usize,
        }
    }
}

/// Forecast = the last observed value.
pub struct LastValue {
    last: Vec<f32>,
}

impl LastValue {
    /// For `n_dest` destinations.
    pub fn new(n_dest: usize) -> Self {
        LastValue {
            last: vec![0.0; n_dest],
        }
    }
}

impl Predictor for LastValue {
    fn kind(&self) -> PredictorKind {
        PredictorKind::LastValue
    }
    fn observe(&mut self, dest: usize, value: f32) {
        if let Some(v) = self.last.get_mut(dest) {
            *v = value;
        }
    }
    fn predict(&self, dest: usize, _horizon: usize) -> f32 {
        self.last.get(dest).copied().unwrap_or(0.0)
    }
}

/// Forecast = the value of the same bucket one season (day) earlier; the last value while
/// the history is shorter than that.
pub struct SeasonalNaive {
    m: usize,
    ring: Vec<Vec<f32>>,
    n: Vec<usize>,
}

impl SeasonalNaive {
    /// For `n_dest` destinations and season length `m` buckets.
    pub fn new(n_dest: usize, m: usize) -> Self {
        let m = m.max(1);
        SeasonalNaive {
            m,
            ring: vec![vec![0.0; m]; n_dest],
            n: vec![0; n_dest],
        }
    }
}

impl Predictor for SeasonalNaive {
    fn kind(&self) -> PredictorKind {
        PredictorKind::SeasonalNaive
    }
    fn observe(&mut self, dest: usize, value: f32) {
        if let (Some(r), Some(n)) = (self.ring.get_mut(dest), self.n.get_mut(dest)) {
            r[*n % self.m] = value;
            *n += 1;
        }
    }
    fn predict(&self, dest: usize, horizon: usize) -> f32 {
        let (Some(r), Some(&n)) = (self.ring.get(dest), self.n.get(dest)) else {
            return 0.0;
        };
        if n == 0 {
            return 0.0;
        }
        // Target bucket index n - 1 + h; one season earlier: n - 1 + h - m.
        let h = horizon.min(self.m);
        if n + h > self.m {
            r[(n - 1 + h) % self.m]
        } else {
            r[(n - 1) % self.m]
        }
    }
}

/// Forecast = exponentially weighted moving average (flat for all horizons).
pub struct Ewma {
    alpha: f32,
    s: Vec<f32>,
    init: Vec<bool>,
}

impl Ewma {
    /// For `n_dest` destinations with smoothing factor `alpha`.
    pub fn new(n_dest: usize, alpha: f32) -> Self {
        Ewma {
            alpha: alpha.clamp(1e-4, 1.0),
            s: vec![0.0; n_dest],
            init: vec![false; n_dest],
        }
    }
}

impl Predictor for Ewma {
    fn kind(&self) -> PredictorKind {
        PredictorKind::Ewma
    }
    fn observe(&mut self, dest: usize, value: f32) {
        if let (Some(s), Some(i)) = (self.s.get_mut(dest), self.init.get_mut(dest)) {
            *s = if *i {
                self.alpha * value + (1.0 - self.alpha) * *s
            } else {
                value
            };
            *i = true;
        }
    }
    fn predict(&self, dest: usize, _horizon: usize) -> f32 {
        self.s.get(dest).copied().unwrap_or(0.0)
    }
}

#[derive(Clone)]
struct HwState {
    n: usize,
    level: f32,
    trend: f32,
    season: Vec<f32>,
}

/// Additive Holt–Winters with a daily season.
pub struct HoltWinters {
    p: BaselineParams,
    st: Vec<HwState>,
}

impl HoltWinters {
    /// For `n_dest` destinations with parameters `p` (season length `p.season`).
    pub fn new(n_dest: usize, p: BaselineParams) -> Self {
        let p = BaselineParams {
            season: p.season.max(2),
            ..p
        };
        HoltWinters {
            st: vec![
                HwState {
                    n: 0,
                    level: 0.0,
                    trend: 0.0,
                    season: vec![0.0; p.season]
                };
                n_dest
            ],
            p,
        }
    }
}

impl Predictor for HoltWinters {
    fn kind(&self) -> PredictorKind {
        PredictorKind::HoltWinters
    }
    fn observe(&mut self, dest: usize, x: f32) {
        let m = self.p.season;
        let (a, b, g) = (self.p.hw_alpha, self.p.hw_beta, self.p.hw_gamma);
        let Some(s) = self.st.get_mut(dest) else {
            return;
        };
        let i = s.n % m;
        if s.n < m {
            // First season: remember raw values, track level and trend without season.
            s.season[i] = x;
            if s.n == 0 {
                s.level = x;
            } else {
                let l = a * x + (1.0 - a) * (s.level + s.trend);
                s.trend = b * (l - s.level) + (1.0 - b) * s.trend;
                s.level = l;
            }
            if s.n == m - 1 {
                let mean = s.season.iter().sum::<f32>() / m as f32;
                s.season.iter_mut().for_each(|v| *v -= mean);
                s.level = mean;
                s.trend = 0.0;
            }
        } else {
            let l = a * (x - s.season[i]) + (1.0 - a) * (s.level + s.trend);
            s.trend = b * (l - s.level) + (1.0 - b) * s.trend;
            s.season[i] = g * (x - l) + (1.0 - g) * s.season[i];
            s.level = l;
        }
        s.n += 1;
    }
    fn predict(&self, dest: usize, horizon: usize) -> f32 {
        let Some(s) = self.st.get(dest) else {
            return 0.0;
        };
        let m = self.p.season;
        let f = s.level + horizon as f32 * s.trend;
        let f = if s.n >= m {
            f + s.season[(s.n - 1 + horizon) % m]
        } else {
            f
        };
        f.max(0.0)
    }
}

/// The four baselines, in the order of [`PredictorKind::BASELINES`].
pub fn all_baselines(n_dest: usize, p: BaselineParams) -> Vec<Box<dyn Predictor>> {
    vec![
        Box::new(LastValue::new(n_dest)),
        Box::new(SeasonalNaive::new(n_dest, p.season)),
        Box::new(Ewma::new(n_dest, p.ewma_alpha)),
        Box::new(HoltWinters::new(n_dest, p)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(p: &mut dyn Predictor, xs: &[f32]) {
        for &x in xs {
            p.observe(0, x);
        }
    }

    #[test]
    fn last_value() {
        let mut p = LastValue::new(1);
        assert_eq!(p.predict(0, 5), 0.0);
        feed(&mut p, &[1.0, 2.0, 7.0]);
        assert_eq!(p.predict(0, 5), 7.0);
        assert_eq!(p.predict(3, 5), 0.0); // unknown destination: no panic
    }

    #[test]
    fn seasonal_naive_uses_one_season_back_and_falls_back() {
        let mut p = SeasonalNaive::new(1, 4);
        feed(&mut p, &[1.0, 2.0]);
        assert_eq!(p.predict(0, 1), 2.0); // history too short: last value
        feed(&mut p, &[3.0, 4.0]);
        // Observed buckets 0..=3; bucket 3+1 = 4, one season back = bucket 0.
        assert_eq!(p.predict(0, 1), 1.0);
        assert_eq!(p.predict(0, 3), 3.0);
        feed(&mut p, &[10.0]);
        assert_eq!(p.predict(0, 4), 10.0); // bucket 8 <- bucket 4
        assert_eq!(p.predict(0, 1), 2.0); // bucket 5 <- bucket 1
    }

    #[test]
    fn ewma_known_sequence() {
        let mut p = Ewma::new(1, 0.5);
        feed(&mut p, &[4.0, 8.0, 0.0]);
        // 4 -> 6 -> 3
        assert_eq!(p.predict(0, 15), 3.0);
    }

    #[test]
    fn holt_winters_learns_a_pure_season() {
        let m = 8;
        let pat = [10.0, 12.0, 20.0, 30.0, 25.0, 15.0, 11.0, 9.0];
        let params = BaselineParams {
            hw_alpha: 0.3,
            hw_beta: 0.01,
            hw_gamma: 0.3,
            season: m,
            ..Default::default()
        };
        let mut p = HoltWinters::new(1, params);
        for _ in 0..20 {
            feed(&mut p, &pat);
        }
        for h in 1..=8 {
            let want = pat[(h - 1) % m];
            assert!(
                (p.predict(0, h) - want).abs() < 0.05,
                "h={h} {} vs {want}",
                p.predict(0, h)
            );
        }
    }

    #[test]
    fn holt_winters_follows_a_trend() {
        let params = BaselineParams {
            hw_alpha: 0.5,
            hw_beta: 0.2,
            hw_gamma: 0.1,
            season: 4,
            ..Default::default()
        };
        let mut p = HoltWinters::new(1, params);
        let xs: Vec<f32> = (0..200).map(|i| 100.0 + 2.0 * i as f32).collect();
        feed(&mut p, &xs);
        // Last observed 498; 5 ahead = 508.
        assert!((p.predict(0, 5) - 508.0).abs() < 1.0, "{}", p.predict(0, 5));
    }

    #[test]
    fn predictions_never_negative() {
        let mut p = HoltWinters::new(
            1,
            BaselineParams {
                season: 4,
                ..Default::default()
            },
        );
        feed(&mut p, &[100.0, 50.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        for h in 0..60 {
            assert!(p.predict(0, h) >= 0.0);
        }
    }
}
