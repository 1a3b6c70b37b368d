//! TPE benchmarks, one JSON object per line:
//! `{"bench":"tpe_infer","dests":64,"p50_us":..,"p99_us":..}` (model inference for all
//! destinations of one bucket), plus feature building and a whole engine bucket step.
//! Run: `cargo bench --bench tpe`.

use std::time::Instant;

use hdrhistogram::Histogram;
use steerd::tpe::features::{self, Hist, N_FEATURES};
use steerd::tpe::model::{BatchModel, ModelRunner};
use steerd::tpe::scenario::{Scenario, ScenarioConfig};

/// Prints one JSON line from a histogram of nanoseconds.
fn report(name: &str, dests: usize, h: &Histogram<u64>) {
    let (p50, p99) = (h.value_at_quantile(0.5), h.value_at_quantile(0.99));
    println!(
        "{{\"bench\":\"{name}\",\"dests\":{dests},\"p50_us\":{:.2},\"p99_us\":{:.2},\"n\":{}}}",
        p50 as f64 / 1000.0,
        p99 as f64 / 1000.0,
        h.len()
    );
}

fn main() {
    let iters: usize = std::env::var("TPE_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let mut model = ModelRunner::load_or_embedded(std::path::Path::new("models/tpe-default.onnx"))
        .expect("default model");
    let series = Scenario::generate(&ScenarioConfig::preset("mixed", 256).unwrap(), 7, 11_000);
    let evm = series.events.factor_matrix(256, series.len());
    for dests in [64usize, 256] {
        // Real feature rows from the last bucket.
        let t = series.len() - 1;
        let mut x = vec![0.0f32; dests * N_FEATURES];
        let mut feat_h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for _ in 0..(iters / 10).max(10) {
            let t0 = Instant::now();
            for d in 0..dests {
                let row: &mut [f32; N_FEATURES] = (&mut x[d * N_FEATURES..(d + 1) * N_FEATURES])
                    .try_into()
                    .unwrap();
                let ev = |i: u64| evm[d].get(i as usize).copied().unwrap_or(1.0);
                features::features(
                    &Hist {
                        x: &series.buckets[d][..=t],
                        base: 0,
                    },
                    &ev,
                    series.origin_unix_ms,
                    row,
                );
            }
            feat_h.record(t0.elapsed().as_nanos() as u64).unwrap();
        }
        let mut out = vec![[0.0f32; 3]; dests];
        for _ in 0..100 {
            model.infer(&x, &mut out).unwrap();
        }
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for _ in 0..iters {
            let t0 = Instant::now();
            model.infer(&x, &mut out).unwrap();
            h.record(t0.elapsed().as_nanos() as u64).unwrap();
        }
        report("tpe_infer", dests, &h);
        report("tpe_features", dests, &feat_h);
    }
}
