//! Model input features (cold: the `tpe` thread, evaluation and dataset export).
//!
//! This is the one implementation of the features: `scripts/train.py` does not compute
//! features itself, it asks `steerd tpe dataset` (which calls [`features`]) for them, so
//! training and inference cannot drift apart. The model spec lists [`FEATURE_NAMES`]; a
//! model whose spec lists anything else is refused.
//!
//! For destination `d` at the end of bucket `t` (the last observed one), with
//! `xd(i) = x(i) / ev(i)` the history with the *scheduled* event profile divided out and
//! `L = mean(xd(t-W+1..=t))` the de-evented window mean (`W` = [`WINDOW`]):
//!
//! | names | value |
//! | --- | --- |
//! | `w00`..`w31` | `ln((xd(i)+1)/(L+1))`, oldest first, clipped to ±[`CLIP`] |
//! | `log_level` | `ln(L+1)/10` |
//! | `tod_sin`, `tod_cos`, `dow_sin`, `dow_cos` | time of day / day of week of bucket `t` (logical UTC) |
//! | `ev_now` | `ln ev(t)` |
//! | `ev_5`, `ev_15`, `ev_60` | `ln ev(t+h)`: the calendar's factor at the target bucket |
//! | `day_5`, `day_15`, `day_60` | `ln(S(t+h−1440)+1) − ln(Y+1)`: yesterday's change from "now" to the target time |
//! | `day_lvl` | `ln(L+1) − ln(Y+1)`: today's level against yesterday's at the same time |
//! | `has_day` | 1 when a day of history exists, else 0 (and the `day_*` are 0) |
//! | `week_5`, `week_15`, `week_60`, `week_lvl`, `has_week` | the same one week back |
//!
//! `S(c)` is the mean of `xd` over `c−3..=c+3`, `Y` the mean of `xd` over the window one
//! day (week) back. Target of the model for horizon `h`: `ln((x(t+h)+1)/(L+1))`; the
//! forecast is `(L+1)·exp(ŷ) − 1` ([`denormalize`]).

use super::scenario::{DAY, WEEK};

/// Past buckets in the window.
pub const WINDOW: usize = 32;
/// Horizons in buckets (5 min, 15 min, 1 h).
pub const HORIZONS: [usize; 3] = [5, 15, 60];
/// Clip of the normalised window values and the model output.
pub const CLIP: f32 = 4.0;
/// Number of features.
pub const N_FEATURES: usize = WINDOW + 19;
/// History a destination needs for every feature to be present.
pub const HISTORY: usize = WEEK as usize + WINDOW + 4;
/// Normalisation method name written in the model spec.
pub const NORMALIZATION: &str = "log1p_ratio_to_deevented_window_mean";
/// Half width of the smoothing of the seasonal references.
const SMOOTH: u64 = 3;

/// Feature names, in input order.
pub fn feature_names() -> Vec<String> {
    let mut v: Vec<String> = (0..WINDOW).map(|i| format!("w{i:02}")).collect();
    for n in [
        "log_level",
        "tod_sin",
        "tod_cos",
        "dow_sin",
        "dow_cos",
        "ev_now",
        "ev_5",
        "ev_15",
        "ev_60",
    ] {
        v.push(n.into());
    }
    for p in ["day", "week"] {
        for h in HORIZONS {
            v.push(format!("{p}_{h}"));
        }
        v.push(format!("{p}_lvl"));
        v.push(format!("has_{p}"));
    }
    v
}

/// One destination's history: `x[i]` is bucket `base + i`; the last element is bucket `t`.
pub struct Hist<'a> {
    /// Values.
    pub x: &'a [f32],
    /// Absolute bucket index of `x[0]`.
    pub base: u64,
}

impl Hist<'_> {
    /// Absolute index of the last bucket.
    pub fn t(&self) -> u64 {
        self.base + self.x.len() as u64 - 1
    }
    fn get(&self, i: u64) -> Option<f32> {
        i.checked_sub(self.base)
            .and_then(|k| self.x.get(k as usize))
            .copied()
    }
}

fn mean_de(h: &Hist, ev: &dyn Fn(u64) -> f32, from: u64, to: u64) -> Option<f32> {
    let mut s = 0.0f64;
    let mut n = 0u32;
    for i in from..=to {
        let v = h.get(i)?;
        s += f64::from(v / ev(i).max(1e-3));
        n += 1;
    }
    (n > 0).then(|| (s / f64::from(n)) as f32)
}

/// Writes the features of the last bucket of `h` into `out` and returns the level `L`.
/// `ev(i)` is the calendar's event factor for this destination at bucket `i`;
/// `origin_unix_ms` is the logical time of bucket 0. `h.x` must not be empty.
pub fn features(
    h: &Hist,
    ev: &dyn Fn(u64) -> f32,
    origin_unix_ms: u64,
    out: &mut [f32; N_FEATURES],
) -> f32 {
    let t = h.t();
    let first = t.saturating_sub(WINDOW as u64 - 1).max(h.base);
    // Window, de-evented; pad the front with the oldest value when history is short.
    let mut win = [0.0f32; WINDOW];
    for (k, w) in win.iter_mut().enumerate() {
        let i = (t + k as u64 + 1).saturating_sub(WINDOW as u64).max(first);
        *w = h.get(i).unwrap_or(0.0) / ev(i).max(1e-3);
    }
    let level = win.iter().sum::<f32>() / WINDOW as f32;
    let ll = (level + 1.0).ln();
    for (o, w) in out.iter_mut().zip(win) {
        *o = ((w + 1.0).ln() - ll).clamp(-CLIP, CLIP);
    }
    let mut k = WINDOW;
    let mut push = |v: f32| {
        out[k] = if v.is_finite() { v } else { 0.0 };
        k += 1;
    };
    push(ll / 10.0);
    let minute = origin_unix_ms / 60_000 + t;
    let tod = (minute % DAY) as f32 / DAY as f32;
    let dow = ((minute + 3 * DAY) % WEEK) as f32 / WEEK as f32; // 0 = Monday 00:00
    let tau = std::f32::consts::TAU;
    push((tau * tod).sin());
    push((tau * tod).cos());
    push((tau * dow).sin());
    push((tau * dow).cos());
    push(ev(t).max(1e-3).ln());
    for hz in HORIZONS {
        push(ev(t + hz as u64).max(1e-3).ln());
    }
    for period in [DAY, WEEK] {
        let y = t
            .checked_sub(period)
            .and_then(|c| mean_de(h, ev, c.checked_sub(WINDOW as u64 - 1)?, c));
        match y {
            Some(y) => {
                let ly = (y + 1.0).ln();
                for hz in HORIZONS {
                    let c = t + hz as u64 - period;
                    let s = mean_de(h, ev, c.saturating_sub(SMOOTH), c + SMOOTH).unwrap_or(y);
                    push(((s + 1.0).ln() - ly).clamp(-CLIP, CLIP));
                }
                push((ll - ly).clamp(-CLIP, CLIP));
                push(1.0);
            }
            None => {
                for _ in 0..HORIZONS.len() + 2 {
                    push(0.0);
                }
            }
        }
    }
    debug_assert_eq!(k, N_FEATURES);
    level
}

/// Model target for an actual value `x` given the level `L`.
pub fn normalize_target(x: f32, level: f32) -> f32 {
    ((x + 1.0).ln() - (level + 1.0).ln()).clamp(-CLIP, CLIP)
}

/// Forecast (packets per bucket) from a model output `y` and the level `L`.
pub fn denormalize(y: f32, level: f32) -> f32 {
    ((level + 1.0) * y.clamp(-CLIP, CLIP).exp() - 1.0).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_count() {
        let n = feature_names();
        assert_eq!(n.len(), N_FEATURES);
        assert_eq!(n[0], "w00");
        assert_eq!(n[WINDOW], "log_level");
        assert_eq!(n[N_FEATURES - 1], "has_week");
    }

    #[test]
    fn flat_history_gives_zero_window_and_seasonal_refs() {
        let x = vec![99.0f32; WEEK as usize + 100];
        let h = Hist { x: &x, base: 0 };
        let mut f = [0.0; N_FEATURES];
        let l = features(&h, &|_| 1.0, 0, &mut f);
        assert_eq!(l, 99.0);
        assert!(f[..WINDOW].iter().all(|v| v.abs() < 1e-6));
        assert!((f[WINDOW] - 100f32.ln() / 10.0).abs() < 1e-6);
        let names = feature_names();
        let get = |n: &str| f[names.iter().position(|x| x == n).unwrap()];
        assert_eq!(get("has_day"), 1.0);
        assert_eq!(get("has_week"), 1.0);
        assert!(get("day_60").abs() < 1e-6 && get("week_lvl").abs() < 1e-6);
        assert_eq!(get("ev_15"), 0.0);
    }

    #[test]
    fn short_history_is_padded_and_flags_missing_seasons() {
        let x = [10.0f32, 20.0];
        let h = Hist { x: &x, base: 500 };
        let mut f = [1.0; N_FEATURES];
        let l = features(&h, &|_| 1.0, 0, &mut f);
        assert!((l - (31.0 * 10.0 + 20.0) / 32.0).abs() < 1e-4);
        let names = feature_names();
        let get = |n: &str| f[names.iter().position(|x| x == n).unwrap()];
        assert_eq!(get("has_day"), 0.0);
        assert_eq!(get("day_5"), 0.0);
        assert_eq!(get("has_week"), 0.0);
    }

    #[test]
    fn events_are_divided_out_and_announced() {
        let x = vec![100.0f32; 100];
        let h = Hist { x: &x, base: 0 };
        // Event x2 from bucket 98 on: the last two window values are de-evented to 50.
        let ev = |i: u64| if i >= 98 { 2.0 } else { 1.0 };
        let mut f = [0.0; N_FEATURES];
        features(&h, &ev, 0, &mut f);
        let names = feature_names();
        let get = |n: &str| f[names.iter().position(|x| x == n).unwrap()];
        assert!((get("ev_now") - 2f32.ln()).abs() < 1e-6);
        assert!((get("ev_60") - 2f32.ln()).abs() < 1e-6);
        assert!(get("w31") < -0.5);
    }

    #[test]
    fn time_features() {
        let x = [1.0f32];
        let mut f = [0.0; N_FEATURES];
        // Monday 2024-01-01 06:00 UTC = bucket 360 from the default origin.
        features(
            &Hist { x: &x, base: 360 },
            &|_| 1.0,
            super::super::scenario::DEFAULT_ORIGIN_UNIX_MS,
            &mut f,
        );
        assert!((f[WINDOW + 1] - 1.0).abs() < 1e-6); // sin(2π·0.25)
        let dow = 0.25 / 7.0 * std::f32::consts::TAU;
        assert!((f[WINDOW + 3] - dow.sin()).abs() < 1e-5);
    }

    #[test]
    fn target_round_trip() {
        for (x, l) in [(0.0, 10.0), (50.0, 100.0), (1e4, 300.0)] {
            let y = normalize_target(x, l);
            assert!((denormalize(y, l) - x).abs() < x * 1e-4 + 1e-3);
        }
    }
}
