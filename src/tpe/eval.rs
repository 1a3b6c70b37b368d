//! Offline evaluation of the model against the baselines (cold: CLI and tests).
//!
//! Every predictor sees the same series bucket by bucket (online, as in the engine); at
//! the end of each bucket `t` in the scored range it forecasts `t+5`, `t+15`, `t+60`, and
//! is scored against the actual value of that bucket. Metrics per horizon and predictor:
//!
//! - `mae`: mean |forecast − actual| (packets per bucket);
//! - `rmse`: √mean (forecast − actual)²;
//! - `mape`: 100 · mean(|forecast − actual| / actual) over the points with
//!   `actual ≥ 1` only (points with zero or near-zero actuals are skipped, not clipped).
//!
//! The default held-out set (no `--data`) is two generated scenarios with seeds that the
//! training never uses ([`HELDOUT_SEED`], `+1`): `mixed` and `surge`, each
//! [`HELDOUT_BUCKETS`] buckets (15 days) long; the first [`HELDOUT_WARMUP`] buckets (8
//! days) are history only, the last 7 days are scored. They contain flash crowds and
//! scheduled events.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::PredictorKind;
use super::baseline::{BaselineParams, all_baselines};
use super::features::{self, HORIZONS, Hist, N_FEATURES};
use super::learn::{CorrectionParams, Corrector};
use super::model::BatchModel;
use super::scenario::{DAY, EventCalendar, Scenario, ScenarioClock, ScenarioConfig, WEEK};

/// Base seed of the held-out scenarios (training uses seeds below 1000).
pub const HELDOUT_SEED: u64 = 9001;
/// Length of each held-out scenario.
pub const HELDOUT_BUCKETS: usize = 15 * DAY as usize;
/// History-only prefix of each held-out scenario.
pub const HELDOUT_WARMUP: usize = 8 * DAY as usize;

/// A series to evaluate on.
#[derive(Debug, Clone)]
pub struct EvalInput {
    /// Description for the report.
    pub name: String,
    /// Packets `[dest][bucket]`.
    pub x: Vec<Vec<f32>>,
    /// Known event calendar.
    pub events: EventCalendar,
    /// Logical time of bucket 0.
    pub origin_unix_ms: u64,
    /// First scored bucket (forecasts made at the end of buckets `>= warmup`).
    pub warmup: usize,
    /// For generated data: the scenario itself, scored as `oracle` (it knows the
    /// noise-free future rate, flash crowds included; a floor, not a forecaster) and as
    /// `oracle_causal` (it knows the present state exactly but not what starts later:
    /// [`ScenarioClock::expected_known_at`]).
    pub oracle: Option<ScenarioClock>,
}

impl EvalInput {
    /// The default held-out scenarios (see the module doc).
    pub fn heldout(seed: u64, n_dest: usize) -> Vec<EvalInput> {
        [("mixed", seed), ("surge", seed + 1)]
            .into_iter()
            .map(|(name, s)| {
                let cfg = ScenarioConfig::preset(name, n_dest).expect("preset");
                let series = Scenario::generate(&cfg, s, HELDOUT_BUCKETS);
                EvalInput {
                    name: format!("generated scenario {name}, seed {s}, {n_dest} destinations, {HELDOUT_BUCKETS} buckets"),
                    x: series.buckets,
                    events: series.events,
                    origin_unix_ms: series.origin_unix_ms,
                    warmup: HELDOUT_WARMUP,
                    oracle: Some(ScenarioClock::new(cfg, s)),
                }
            })
            .collect()
    }

    /// A scored range for data of `len` buckets: one week and a day of history when there
    /// is enough data, else half of it.
    pub fn default_warmup(len: usize) -> usize {
        ((WEEK + DAY) as usize).min(len / 2)
    }
}

/// Error sums of one predictor at one horizon.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Acc {
    n: u64,
    abs: f64,
    sq: f64,
    ape: f64,
    n_ape: u64,
}

impl Acc {
    /// Adds one forecast/actual pair.
    pub fn add(&mut self, pred: f32, actual: f32) {
        let e = f64::from(pred) - f64::from(actual);
        self.n += 1;
        self.abs += e.abs();
        self.sq += e * e;
        if actual >= 1.0 {
            self.ape += e.abs() / f64::from(actual);
            self.n_ape += 1;
        }
    }
    /// Mean absolute error.
    pub fn mae(&self) -> f64 {
        self.abs / self.n.max(1) as f64
    }
    /// Root mean squared error.
    pub fn rmse(&self) -> f64 {
        (self.sq / self.n.max(1) as f64).sqrt()
    }
    /// Mean absolute percentage error over actuals ≥ 1, in percent.
    pub fn mape(&self) -> f64 {
        100.0 * self.ape / self.n_ape.max(1) as f64
    }
    /// Number of points.
    pub fn n(&self) -> u64 {
        self.n
    }
}

/// Results of an evaluation.
#[derive(Debug, Clone, Default)]
pub struct EvalResult {
    /// Accuracy per predictor name, per horizon.
    pub acc: BTreeMap<String, [Acc; 3]>,
    /// Scored buckets × destinations.
    pub points: u64,
    /// Inputs described.
    pub data: Vec<String>,
    /// Traces for the plot: `(dest, [(target bucket, actual, forecasts by name at 1 h)])`.
    pub traces: Vec<(usize, Trace)>,
}

/// Points of a plot trace: (target bucket, actual, 1 h forecasts by predictor name).
pub type Trace = Vec<(u64, f32, BTreeMap<String, f32>)>;

/// Options of [`evaluate`].
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Baseline parameters.
    pub baseline: BaselineParams,
    /// Online correction of the model.
    pub correction: CorrectionParams,
    /// Destinations of the first input to trace for the plot.
    pub trace_dests: Vec<usize>,
    /// Buckets at the end of the scored range to trace.
    pub trace_len: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            baseline: BaselineParams::default(),
            correction: CorrectionParams::default(),
            trace_dests: Vec::new(),
            trace_len: 2 * DAY as usize,
        }
    }
}

/// The predictors whose MAE is also reported as a ratio to the best baseline's.
const FLOORED: [&str; 5] = [
    "model",
    "model_corrected",
    "oracle",
    "oracle_causal",
    "oracle_filtered",
];

/// Runs all predictors (and the model, if given) over `inputs` and pools the metrics.
pub fn evaluate(
    inputs: &[EvalInput],
    mut model: Option<&mut dyn BatchModel>,
    opts: &EvalOptions,
) -> EvalResult {
    let mut res = EvalResult::default();
    let mut names: Vec<&str> = PredictorKind::BASELINES.iter().map(|k| k.name()).collect();
    if model.is_some() {
        names.extend(["model", "model_corrected"]);
    }
    if inputs.iter().any(|i| i.oracle.is_some()) {
        names.extend(["oracle", "oracle_causal", "oracle_filtered"]);
    }
    for n in &names {
        res.acc.insert(n.to_string(), [Acc::default(); 3]);
    }
    for (ii, inp) in inputs.iter().enumerate() {
        res.data.push(inp.name.clone());
        let n_dest = inp.x.len();
        let len = inp.x.first().map_or(0, Vec::len);
        let evm = inp.events.factor_matrix(n_dest, len);
        let mut bases = all_baselines(n_dest, opts.baseline);
        let mut corr = Corrector::new(n_dest, opts.correction);
        let mut xf = vec![0.0f32; n_dest * N_FEATURES];
        let mut levels = vec![0.0f32; n_dest];
        let mut out = vec![[0.0f32; 3]; n_dest];
        let model_from = inp.warmup.saturating_sub(DAY as usize);
        let trace_from = len.saturating_sub(60 + opts.trace_len).max(inp.warmup);
        let tracing = ii == 0 && !opts.trace_dests.is_empty();
        let mut traces: Vec<Trace> = vec![Vec::new(); opts.trace_dests.len()];
        // For `oracle_filtered`: everything but the drift, for buckets already seen.
        let known: Vec<Vec<f64>> = match &inp.oracle {
            Some(o) => (0..n_dest)
                .map(|d| {
                    (0..len as u64)
                        .map(|i| o.known_but_drift(d, i, i))
                        .collect()
                })
                .collect(),
            None => Vec::new(),
        };
        for t in 0..len.saturating_sub(60) {
            for d in 0..n_dest {
                let v = inp.x[d][t];
                for b in bases.iter_mut() {
                    b.observe(d, v);
                }
                corr.observe(d, t as u64, v);
            }
            let scored = t >= inp.warmup;
            let mut model_ok = false;
            if let Some(m) = model.as_deref_mut()
                && t >= model_from
            {
                for d in 0..n_dest {
                    let h = Hist {
                        x: &inp.x[d][..=t],
                        base: 0,
                    };
                    let row = &mut xf[d * N_FEATURES..(d + 1) * N_FEATURES];
                    let row: &mut [f32; N_FEATURES] = row.try_into().expect("row length");
                    let ev = |i: u64| {
                        evm[d]
                            .get(i as usize)
                            .copied()
                            .unwrap_or_else(|| inp.events.factor(d, i))
                    };
                    levels[d] = features::features(&h, &ev, inp.origin_unix_ms, row);
                }
                model_ok = m.infer(&xf, &mut out).is_ok();
            }
            if !scored {
                if model_ok {
                    for d in 0..n_dest {
                        let raw = [0, 1, 2].map(|k| features::denormalize(out[d][k], levels[d]));
                        corr.apply(d, t as u64, raw);
                    }
                }
                continue;
            }
            res.points += n_dest as u64;
            for d in 0..n_dest {
                let trace_k = if tracing && t >= trace_from {
                    opts.trace_dests.iter().position(|&x| x == d)
                } else {
                    None
                };
                let mut fc: BTreeMap<String, f32> = BTreeMap::new();
                for (k, &h) in HORIZONS.iter().enumerate() {
                    let actual = inp.x[d][t + h];
                    for b in &bases {
                        let p = b.predict(d, h);
                        res.acc.get_mut(b.kind().name()).expect("baseline acc")[k].add(p, actual);
                        if k == 2 && trace_k.is_some() {
                            fc.insert(b.kind().name().to_string(), p);
                        }
                    }
                }
                if let Some(o) = &inp.oracle {
                    let targets = HORIZONS.map(|h| (t + h) as u64);
                    let filtered = o.filtered_known_at(d, &inp.x[d], &known[d], t as u64, targets);
                    for (k, &h) in HORIZONS.iter().enumerate() {
                        let (target, actual) = (targets[k], inp.x[d][t + h]);
                        res.acc.get_mut("oracle").expect("oracle acc")[k]
                            .add(o.expected(d, target) as f32, actual);
                        res.acc.get_mut("oracle_causal").expect("oracle acc")[k]
                            .add(o.expected_known_at(d, target, t as u64) as f32, actual);
                        res.acc.get_mut("oracle_filtered").expect("oracle acc")[k]
                            .add(filtered[k] as f32, actual);
                    }
                }
                if model.is_some() {
                    let raw = if model_ok {
                        [0, 1, 2].map(|k| features::denormalize(out[d][k], levels[d]))
                    } else {
                        [0, 1, 2].map(|k| bases[3].predict(d, HORIZONS[k]))
                    };
                    let cor = corr.apply(d, t as u64, raw);
                    for (k, &h) in HORIZONS.iter().enumerate() {
                        let actual = inp.x[d][t + h];
                        res.acc.get_mut("model").expect("model acc")[k].add(raw[k], actual);
                        res.acc.get_mut("model_corrected").expect("model acc")[k]
                            .add(cor[k], actual);
                    }
                    if trace_k.is_some() {
                        fc.insert("model".into(), raw[2]);
                    }
                }
                if let Some(k) = trace_k {
                    traces[k].push(((t + 60) as u64, inp.x[d][t + 60], fc));
                }
            }
        }
        if tracing {
            res.traces = opts.trace_dests.iter().copied().zip(traces).collect();
        }
    }
    res
}

impl EvalResult {
    /// Name of the baseline with the lowest MAE at horizon `k`.
    pub fn best_baseline(&self, k: usize) -> &'static str {
        PredictorKind::BASELINES
            .iter()
            .map(|b| b.name())
            .min_by(|a, b| self.acc[*a][k].mae().total_cmp(&self.acc[*b][k].mae()))
            .expect("four baselines")
    }

    /// The report as JSON (shape documented in `steerd tpe eval --help`).
    pub fn to_json(&self, extra: Value) -> Value {
        let labels: Vec<&str> = super::HORIZONS.iter().map(|h| h.label).collect();
        let mut preds = serde_json::Map::new();
        for (name, accs) in &self.acc {
            let mut m = serde_json::Map::new();
            for (k, a) in accs.iter().enumerate() {
                m.insert(labels[k].into(), json!({"mae": round4(a.mae()), "rmse": round4(a.rmse()), "mape": round4(a.mape())}));
            }
            preds.insert(name.clone(), Value::Object(m));
        }
        let mut best = serde_json::Map::new();
        let mut ratio = serde_json::Map::new();
        for (k, l) in labels.iter().enumerate() {
            best.insert((*l).into(), json!(self.best_baseline(k)));
        }
        for name in FLOORED {
            if let Some(accs) = self.acc.get(name) {
                let mut m = serde_json::Map::new();
                for (k, l) in labels.iter().enumerate() {
                    let b = self.acc[self.best_baseline(k)][k].mae();
                    m.insert((*l).into(), json!(round4(accs[k].mae() / b.max(1e-12))));
                }
                ratio.insert(name.into(), Value::Object(m));
            }
        }
        let mut v = json!({
            "horizons": labels,
            "predictors": preds,
            "best_baseline": best,
            "ratio_to_best_baseline": ratio,
            "data": self.data,
            "points": self.points,
        });
        if let (Value::Object(o), Value::Object(e)) = (&mut v, extra) {
            o.extend(e);
        }
        v
    }

    /// A readable table.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "{:<16} {:>8} {:>12} {:>12} {:>9}\n",
            "predictor", "horizon", "mae", "rmse", "mape%"
        ));
        for (name, accs) in &self.acc {
            for (k, a) in accs.iter().enumerate() {
                s.push_str(&format!(
                    "{:<16} {:>8} {:>12.2} {:>12.2} {:>9.2}\n",
                    name,
                    super::HORIZONS[k].label,
                    a.mae(),
                    a.rmse(),
                    a.mape()
                ));
            }
        }
        for name in FLOORED {
            if let Some(accs) = self.acc.get(name) {
                let r: Vec<String> = (0..3)
                    .map(|k| {
                        let b = self.best_baseline(k);
                        format!(
                            "{}: {:.3} (vs {b})",
                            super::HORIZONS[k].label,
                            accs[k].mae() / self.acc[b][k].mae().max(1e-12)
                        )
                    })
                    .collect();
                s.push_str(&format!(
                    "{name} MAE / best baseline MAE: {}\n",
                    r.join(", ")
                ));
            }
        }
        s
    }

    /// Draws the traces (1 h forecasts vs actual) as an SVG file.
    pub fn plot_svg(&self, path: &std::path::Path) -> Result<(), String> {
        use plotters::prelude::*;
        if self.traces.is_empty() {
            return Err("nothing to plot".into());
        }
        let n = self.traces.len();
        let root = SVGBackend::new(path, (1200, 320 * n as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let areas = root.split_evenly((n, 1));
        let best = self.best_baseline(2);
        for ((dest, tr), area) in self.traces.iter().zip(areas) {
            if tr.is_empty() {
                continue;
            }
            let x0 = tr[0].0;
            let x1 = tr[tr.len() - 1].0;
            let drawn = |f: &BTreeMap<String, f32>| {
                ["model", best].map(|n| f.get(n).copied().unwrap_or(0.0))
            };
            let ymax = tr
                .iter()
                .flat_map(|(_, a, f)| std::iter::once(*a).chain(drawn(f)))
                .fold(1.0f32, f32::max)
                * 1.05;
            let mut chart = ChartBuilder::on(&area)
                .caption(
                    format!("destination {dest}: actual vs 1 h forecast"),
                    ("sans-serif", 16),
                )
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(60)
                .build_cartesian_2d(x0 as f64..x1 as f64, 0f64..f64::from(ymax))
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("bucket (minutes)")
                .y_desc("packets / bucket")
                .draw()
                .map_err(|e| e.to_string())?;
            let series: [(&str, RGBColor); 3] = [
                ("actual", RGBColor(120, 120, 120)),
                ("model", RGBColor(200, 30, 30)),
                (best, RGBColor(30, 80, 200)),
            ];
            for (name, color) in series {
                let pts: Vec<(f64, f64)> = tr
                    .iter()
                    .filter_map(|(t, a, f)| {
                        let y = if name == "actual" {
                            Some(*a)
                        } else {
                            f.get(name).copied()
                        };
                        y.map(|y| (*t as f64, f64::from(y)))
                    })
                    .collect();
                chart
                    .draw_series(LineSeries::new(
                        pts,
                        color.stroke_width(if name == "actual" { 1 } else { 2 }),
                    ))
                    .map_err(|e| e.to_string())?
                    .label(name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())
    }
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_known_values() {
        let mut a = Acc::default();
        a.add(110.0, 100.0); // e = 10, ape 0.1
        a.add(0.0, 50.0); // e = -50, ape 1.0
        a.add(3.0, 0.0); // e = 3, actual < 1: not in MAPE
        assert!((a.mae() - 21.0).abs() < 1e-9);
        assert!((a.rmse() - ((100.0 + 2500.0 + 9.0) / 3.0f64).sqrt()).abs() < 1e-9);
        assert!((a.mape() - 55.0).abs() < 1e-9);
        assert_eq!(a.n(), 3);
        assert_eq!(Acc::default().mape(), 0.0);
    }

    #[test]
    fn baselines_are_exact_on_constant_series() {
        let inp = EvalInput {
            name: "const".into(),
            x: vec![vec![42.0; 400]],
            events: EventCalendar::default(),
            origin_unix_ms: 0,
            warmup: 100,
            oracle: None,
        };
        let r = evaluate(&[inp], None, &EvalOptions::default());
        for b in ["last_value", "seasonal_naive", "ewma", "holt_winters"] {
            for k in 0..3 {
                assert!(r.acc[b][k].mae() < 1e-3, "{b} {k} {}", r.acc[b][k].mae());
            }
        }
        assert_eq!(r.points, (400 - 60 - 100) as u64);
        let j = r.to_json(json!({}));
        assert_eq!(j["horizons"], json!(["5m", "15m", "1h"]));
        assert!(j["predictors"]["holt_winters"]["1h"]["mae"].is_number());
    }

    struct Oracle;
    impl BatchModel for Oracle {
        fn name(&self) -> &str {
            "zero"
        }
        fn infer(
            &mut self,
            _x: &[f32],
            out: &mut [[f32; 3]],
        ) -> Result<(), super::super::model::ModelError> {
            out.iter_mut().for_each(|o| *o = [0.0; 3]);
            Ok(())
        }
    }

    #[test]
    fn model_keys_appear_with_a_model() {
        let inp = EvalInput {
            name: "ramp".into(),
            x: vec![(0..300).map(|i| i as f32).collect()],
            events: EventCalendar::default(),
            origin_unix_ms: 0,
            warmup: 50,
            oracle: None,
        };
        let mut m = Oracle;
        let opts = EvalOptions {
            trace_dests: vec![0],
            ..Default::default()
        };
        let r = evaluate(&[inp], Some(&mut m), &opts);
        assert!(r.acc.contains_key("model") && r.acc.contains_key("model_corrected"));
        // Output 0 = "same as the window mean": lags a ramp.
        assert!(r.acc["model"][0].mae() > 5.0);
        assert!(!r.traces[0].1.is_empty());
        let j = r.to_json(json!({"extra": 1}));
        assert!(j["ratio_to_best_baseline"]["model"]["5m"].is_number());
        assert_eq!(j["extra"], 1);
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("p.svg");
        r.plot_svg(&svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg") && text.contains("destination 0"));
    }

    #[test]
    fn the_causal_floor_lies_between_the_oracle_and_the_baselines() {
        // Short held-out scenarios: 4 destinations, scored over the last 2 days.
        let inputs: Vec<EvalInput> = EvalInput::heldout(HELDOUT_SEED, 4)
            .into_iter()
            .map(|mut i| {
                let len = 10 * DAY as usize;
                i.x.iter_mut().for_each(|r| r.truncate(len));
                i.warmup = len - 2 * DAY as usize;
                i
            })
            .collect();
        let r = evaluate(&inputs, None, &EvalOptions::default());
        let mae = |n: &str, k: usize| r.acc[n][k].mae();
        for k in 0..3 {
            let best = mae(r.best_baseline(k), k);
            assert!(mae("oracle", k) < mae("oracle_causal", k), "horizon {k}");
            assert!(mae("oracle_causal", k) < best, "horizon {k}");
        }
        // Not knowing what starts later costs more the further ahead it looks.
        assert!(mae("oracle_causal", 0) < mae("oracle_causal", 2));
        // Estimating the drift from the buckets costs something at 5 and 15 minutes; an
        // hour ahead both floors have the drift at its median.
        for k in 0..2 {
            assert!(
                mae("oracle_causal", k) < mae("oracle_filtered", k),
                "horizon {k}"
            );
            assert!(
                mae("oracle_filtered", k) < mae(r.best_baseline(k), k),
                "horizon {k}"
            );
        }
        let (c, f) = (mae("oracle_causal", 2), mae("oracle_filtered", 2));
        assert!((c - f).abs() < 1e-6 * c, "{c} vs {f}");
        let j = r.to_json(json!({}));
        assert!(j["ratio_to_best_baseline"]["oracle_causal"]["5m"].is_number());
        assert!(j["ratio_to_best_baseline"]["oracle_filtered"]["5m"].is_number());
    }
}
