//! Command-line entry points of the TPE (cold). `main.rs` hooks these into its clap tree:
//!
//! - `steerd tpe eval` → [`TpeEvalArgs`], [`run_eval`]
//! - `steerd tpe dataset` → [`TpeDatasetArgs`], [`run_dataset`] (features for train.py)
//! - `steerd telemetry export` → [`TelemetryExportArgs`], [`run_export`]

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::TpeError;
use super::eval::{EvalInput, EvalOptions, evaluate};
use super::features::{self, HORIZONS, Hist, N_FEATURES, WINDOW};
use super::model::{self, BatchModel};
use super::scenario::{EventCalendar, PRESETS, Scenario, ScenarioClock, ScenarioConfig};
use crate::telemetry::{self, Bucket};

/// `steerd tpe eval`: accuracy of the model and the baselines on held-out data.
///
/// Prints `{"horizons": ["5m","15m","1h"], "predictors": {NAME: {"5m": {"mae","rmse","mape"},
/// ...}}, "best_baseline": {...}, "ratio_to_best_baseline": {...}, ...}` with `--json`, else
/// a table. MAPE is in percent over actuals ≥ 1 only.
#[derive(Debug, Clone, Args)]
pub struct TpeEvalArgs {
    /// Telemetry CSV (`bucket,start_ms,dest,packets,bytes`) to evaluate on; an event
    /// calendar `FILE.events.json` beside it is used when present. Without it: the
    /// held-out generated scenarios (mixed and surge, seeds 9001 and 9002).
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Model to evaluate (`.onnx`, spec beside it as `.json`); `none` for baselines only.
    /// The default falls back to the model built into the binary when the file is absent.
    #[arg(long, value_name = "PATH", default_value = model::DEFAULT_MODEL_PATH)]
    pub model: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Draw actual vs 1 h forecasts of a few destinations into this SVG file.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Seed of the held-out scenarios (the second one uses seed + 1).
    #[arg(long, default_value_t = super::eval::HELDOUT_SEED)]
    pub seed: u64,
    /// Destinations of the held-out scenarios.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub destinations: usize,
    /// Override the EWMA baseline's α.
    #[arg(long, value_name = "A")]
    pub ewma_alpha: Option<f32>,
    /// Override Holt–Winters' α,β,γ (comma-separated).
    #[arg(long, value_name = "A,B,G")]
    pub hw: Option<String>,
    /// Exit with status 2 when the model's MAE exceeds this multiple of the best
    /// baseline's at any horizon (for CI).
    #[arg(long, value_name = "RATIO")]
    pub max_ratio: Option<f64>,
}

/// `steerd telemetry export`: writes telemetry buckets as CSV.
///
/// With no live appliance telemetry source, this exports a **generated** scenario
/// (`--scenario`, `--buckets`, `--seed`, `--destinations`): synthetic data, not measured
/// traffic. Beside the CSV it writes `FILE.events.json` with the scenario's event calendar.
#[derive(Debug, Clone, Args)]
pub struct TelemetryExportArgs {
    /// Output CSV file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Scenario preset: diurnal, surge or mixed.
    #[arg(long, default_value = "mixed")]
    pub scenario: String,
    /// Number of buckets (logical minutes).
    #[arg(long, default_value_t = 10_080)]
    pub buckets: usize,
    /// Scenario seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of destinations.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub destinations: usize,
}

/// `steerd tpe dataset`: feature rows and targets for `scripts/train.py`, as `.npy`.
#[derive(Debug, Clone, Args)]
pub struct TpeDatasetArgs {
    /// Telemetry CSV files to use (each with an optional `.events.json` beside it).
    #[arg(long, value_name = "FILE")]
    pub data: Vec<PathBuf>,
    /// Generated scenarios as `NAME:SEED` (repeatable), e.g. `mixed:1`.
    #[arg(long, value_name = "NAME:SEED")]
    pub scenario: Vec<String>,
    /// Buckets per generated scenario.
    #[arg(long, default_value_t = 30_240)]
    pub buckets: usize,
    /// Destinations per generated scenario.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub destinations: usize,
    /// Take one sample every STRIDE buckets per destination (offset by destination).
    #[arg(long, default_value_t = 10)]
    pub stride: usize,
    /// Output prefix: writes PREFIX.x.npy (rows × features) and PREFIX.y.npy (rows × 3).
    #[arg(long, value_name = "PREFIX")]
    pub out: PathBuf,
}

/// The event-calendar file written beside an exported CSV.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventsFile {
    /// True when the CSV is generated data.
    pub generated: bool,
    /// Scenario name, when generated.
    #[serde(default)]
    pub scenario: Option<String>,
    /// Seed, when generated.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Logical time of bucket 0.
    pub origin_unix_ms: u64,
    /// The calendar.
    pub events: EventCalendar,
}

/// Path of the events file beside a CSV.
pub fn events_path(csv: &Path) -> PathBuf {
    csv.with_extension("events.json")
}

/// Loads a telemetry CSV (and its events file, if any) as an evaluation input.
pub fn load_data(path: &Path) -> Result<EvalInput, TpeError> {
    let buckets = telemetry::read_csv_file(path)?;
    if buckets.len() < WINDOW + 61 {
        return Err(TpeError::Config(format!(
            "{}: {} buckets, need at least {}",
            path.display(),
            buckets.len(),
            WINDOW + 61
        )));
    }
    let ep = events_path(path);
    let x = telemetry::packets_series(&buckets);
    let (events, origin, oracle) = if ep.exists() {
        let text = std::fs::read(&ep).map_err(|e| TpeError::io(ep.display(), e))?;
        let f: EventsFile = serde_json::from_slice(&text)
            .map_err(|e| TpeError::Config(format!("{}: {e}", ep.display())))?;
        // Generated data: the scenario can be rebuilt as the oracle floor.
        let oracle = match (f.generated, &f.scenario, f.seed) {
            (true, Some(name), Some(seed)) => {
                ScenarioConfig::preset(name, x.len()).map(|c| ScenarioClock::new(c, seed))
            }
            _ => None,
        };
        (f.events, f.origin_unix_ms, oracle)
    } else {
        (EventCalendar::default(), buckets[0].start_unix_ms, None)
    };
    let warmup = EvalInput::default_warmup(buckets.len());
    Ok(EvalInput {
        name: format!("telemetry file {}", path.display()),
        x,
        events,
        origin_unix_ms: origin,
        warmup,
        oracle,
    })
}

/// `--ewma-alpha` and `--hw`, checked before anything runs: smoothing factors within
/// (0, 1] for EWMA's α and [0, 1] for Holt–Winters' α, β, γ.
fn baseline_overrides(args: &TpeEvalArgs) -> Result<(Option<f32>, Option<[f32; 3]>), TpeError> {
    if let Some(a) = args.ewma_alpha
        && !(a > 0.0 && a <= 1.0)
    {
        return Err(TpeError::Config(format!(
            "--ewma-alpha {a} is outside (0, 1] (the weight of the newest bucket)"
        )));
    }
    let hw = match &args.hw {
        None => None,
        Some(hw) => {
            let v = hw
                .split(',')
                .map(|s| {
                    s.trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|x| (0.0..=1.0).contains(x))
                })
                .collect::<Option<Vec<f32>>>();
            match v.as_deref() {
                Some(&[a, b, g]) => Some([a, b, g]),
                _ => {
                    return Err(TpeError::Config(format!(
                        "--hw {hw:?}: expected three numbers A,B,G, each within 0..=1"
                    )));
                }
            }
        }
    };
    Ok((args.ewma_alpha, hw))
}

/// Runs `steerd tpe eval`; returns the process exit status.
pub fn run_eval(args: &TpeEvalArgs) -> Result<i32, TpeError> {
    let (ewma, hw) = baseline_overrides(args)?;
    // The plot's file is created first: an evaluation takes a while and its results
    // would be printed before a path that cannot be written failed.
    if let Some(p) = &args.plot {
        std::fs::File::create(p)
            .map_err(|e| TpeError::Config(format!("--plot {}: cannot create: {e}", p.display())))?;
    }
    let inputs = match &args.data {
        Some(p) => vec![load_data(p)?],
        None => {
            if args.destinations == 0 || args.destinations > crate::config::MAX_TPE_DESTINATIONS {
                return Err(TpeError::Config(format!(
                    "--destinations {} out of range 1..={}",
                    args.destinations,
                    crate::config::MAX_TPE_DESTINATIONS
                )));
            }
            EvalInput::heldout(args.seed, args.destinations)
        }
    };
    let mut runner = if args.model.as_os_str() == "none" {
        None
    } else {
        Some(model::resolve(Some(&args.model))?)
    };
    let n_dest = inputs[0].x.len();
    let mut opts = EvalOptions {
        trace_dests: if args.plot.is_some() {
            (0..n_dest.min(3)).collect()
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    if let Some(a) = ewma {
        opts.baseline.ewma_alpha = a;
    }
    if let Some([a, b, g]) = hw {
        (
            opts.baseline.hw_alpha,
            opts.baseline.hw_beta,
            opts.baseline.hw_gamma,
        ) = (a, b, g);
    }
    let res = evaluate(
        &inputs,
        runner.as_mut().map(|m| m as &mut dyn BatchModel),
        &opts,
    );
    let extra = match &runner {
        Some(m) => json!({
            "model": {
                "path": m.label(),
                "name": m.spec().name,
                "version": m.spec().version,
                "sha256": m.spec().sha256,
                "inferences": m.inferences,
                "rejected": m.failures + m.rejected_nonfinite,
                "batch": m.batch(),
                "infer_p50_us": m.timings.value_at_quantile(0.5),
                "infer_p99_us": m.timings.value_at_quantile(0.99),
            },
        }),
        None => json!({"model": null}),
    };
    let mut extra = extra;
    extra["mape_definition"] =
        json!("100 * mean(|forecast - actual| / actual) over points with actual >= 1");
    if res.acc.contains_key("oracle") {
        extra["oracle_definition"] = json!(
            "not a forecaster: the generated scenario's noise-free rate at the target bucket (knows future flash crowds); the floor set by per-bucket noise"
        );
        extra["oracle_causal_definition"] = json!(
            "not a forecaster: the noise-free rate at the target bucket as known at the forecast's time by an observer who knows the scenario's state exactly (seasonality, the drift's current segment, the calendar, events and flash crowds that have started) but not what starts later (later drift at its median, no new flash crowds, responses of events to come at 1); an estimate of the floor for forecasters that see only the past and the calendar"
        );
        extra["oracle_filtered_definition"] = json!(
            "not a forecaster: oracle_causal with the drift estimated from the observed buckets instead of read from the generator (the posterior median under the scenario's own priors and noise sigma, spikes above 3.5 sd left out); still knows the seasonality, the calendar's responses and a started flash crowd's shape exactly"
        );
    }
    if args.json {
        let v = res.to_json(extra);
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        for d in &res.data {
            println!("data: {d}");
        }
        if let Some(m) = &runner {
            println!(
                "model: {} ({} v{})",
                m.label(),
                m.spec().name,
                m.spec().version
            );
        }
        print!("{}", res.to_table());
    }
    if let Some(p) = &args.plot {
        res.plot_svg(p)
            .map_err(|e| TpeError::Config(format!("plot {}: {e}", p.display())))?;
        eprintln!("wrote {}", p.display());
    }
    if let (Some(max), Some(_)) = (args.max_ratio, &runner) {
        let worst = (0..3)
            .map(|k| res.acc["model"][k].mae() / res.acc[res.best_baseline(k)][k].mae().max(1e-12))
            .fold(0.0, f64::max);
        if worst > max {
            eprintln!("model MAE ratio {worst:.3} to the best baseline exceeds {max}");
            return Ok(2);
        }
    }
    Ok(0)
}

/// Generated buckets of a scenario (packets, and bytes = packets × a per-destination mean size).
pub fn scenario_buckets(
    name: &str,
    seed: u64,
    n_buckets: usize,
    n_dest: usize,
) -> Result<(Vec<Bucket>, EventsFile), TpeError> {
    let cfg = ScenarioConfig::preset(name, n_dest).ok_or_else(|| {
        TpeError::Config(format!(
            "unknown scenario {name:?}; presets: {}",
            PRESETS.join(", ")
        ))
    })?;
    let series = Scenario::generate(&cfg, seed, n_buckets);
    let clock = ScenarioClock::new(cfg.clone(), seed);
    let sizes: Vec<u64> = (0..n_dest)
        .map(|d| u64::from(clock.mean_packet_size(d)))
        .collect();
    let buckets = (0..n_buckets)
        .map(|t| {
            let packets: Vec<u64> = (0..n_dest).map(|d| series.buckets[d][t] as u64).collect();
            let bytes = packets.iter().zip(&sizes).map(|(p, s)| p * s).collect();
            Bucket::per_dest(
                t as u64,
                cfg.origin_unix_ms + t as u64 * telemetry::BUCKET_LOGICAL_MS,
                packets,
                bytes,
            )
        })
        .collect();
    let ev = EventsFile {
        generated: true,
        scenario: Some(name.into()),
        seed: Some(seed),
        origin_unix_ms: cfg.origin_unix_ms,
        events: series.events,
    };
    Ok((buckets, ev))
}

/// Writes buckets to a CSV file and, when given, the events file beside it.
pub fn export_buckets(
    out: &Path,
    buckets: &[Bucket],
    events: Option<&EventsFile>,
) -> Result<(), TpeError> {
    let f = std::fs::File::create(out).map_err(|e| TpeError::io(out.display(), e))?;
    telemetry::write_csv(std::io::BufWriter::new(f), buckets)
        .map_err(|e| TpeError::io(out.display(), e))?;
    if let Some(ev) = events {
        let p = events_path(out);
        let text = serde_json::to_vec_pretty(ev).map_err(|e| TpeError::Config(e.to_string()))?;
        std::fs::write(&p, text).map_err(|e| TpeError::io(p.display(), e))?;
    }
    Ok(())
}

/// Runs `steerd telemetry export` from a generated scenario.
pub fn run_export(args: &TelemetryExportArgs) -> Result<i32, TpeError> {
    if args.destinations == 0 || args.destinations > u16::MAX as usize {
        return Err(TpeError::Config(format!(
            "--destinations {} out of range 1..={}",
            args.destinations,
            u16::MAX
        )));
    }
    // At least one bucket, at most a year of them.
    if !(1..=525_600).contains(&args.buckets) {
        return Err(TpeError::Config(format!(
            "--buckets {} out of range 1..=525600 (a year of one-minute buckets)",
            args.buckets
        )));
    }
    let (buckets, ev) =
        scenario_buckets(&args.scenario, args.seed, args.buckets, args.destinations)?;
    export_buckets(&args.out, &buckets, Some(&ev))?;
    eprintln!(
        "wrote {} ({} buckets x {} destinations of GENERATED scenario {:?}, seed {}) and {}",
        args.out.display(),
        args.buckets,
        args.destinations,
        args.scenario,
        args.seed,
        events_path(&args.out).display()
    );
    Ok(0)
}

/// Writes a little-endian f32 `.npy` file of shape `(rows, cols)`.
pub fn write_npy(path: &Path, data: &[f32], rows: usize, cols: usize) -> Result<(), TpeError> {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let f = std::fs::File::create(path).map_err(|e| TpeError::io(path.display(), e))?;
    let mut w = std::io::BufWriter::new(f);
    let io = |e| TpeError::io(path.display(), e);
    w.write_all(b"\x93NUMPY\x01\x00").map_err(io)?;
    w.write_all(&(header.len() as u16).to_le_bytes())
        .map_err(io)?;
    w.write_all(header.as_bytes()).map_err(io)?;
    for v in data {
        w.write_all(&v.to_le_bytes()).map_err(io)?;
    }
    w.flush().map_err(io)
}

/// Feature rows and targets of one input: samples at buckets `t ≡ dest (mod stride)`
/// with `t + 60` inside the data.
pub fn dataset_rows(inp: &EvalInput, stride: usize, xs: &mut Vec<f32>, ys: &mut Vec<f32>) {
    let stride = stride.max(1);
    let len = inp.x.first().map_or(0, Vec::len);
    let evm = inp.events.factor_matrix(inp.x.len(), len);
    let mut row = [0.0f32; N_FEATURES];
    for (d, x) in inp.x.iter().enumerate() {
        let ev = |i: u64| {
            evm[d]
                .get(i as usize)
                .copied()
                .unwrap_or_else(|| inp.events.factor(d, i))
        };
        let mut t = WINDOW + d % stride;
        while t + 60 < len {
            let level = features::features(
                &Hist {
                    x: &x[..=t],
                    base: 0,
                },
                &ev,
                inp.origin_unix_ms,
                &mut row,
            );
            xs.extend_from_slice(&row);
            for h in HORIZONS {
                ys.push(features::normalize_target(x[t + h], level));
            }
            t += stride;
        }
    }
}

/// Runs `steerd tpe dataset`.
pub fn run_dataset(args: &TpeDatasetArgs) -> Result<i32, TpeError> {
    let mut inputs = Vec::new();
    for p in &args.data {
        inputs.push(load_data(p)?);
    }
    for s in &args.scenario {
        let (name, seed) = s
            .split_once(':')
            .ok_or_else(|| TpeError::Config(format!("--scenario {s:?}: expected NAME:SEED")))?;
        let seed: u64 = seed
            .parse()
            .map_err(|_| TpeError::Config(format!("--scenario {s:?}: bad seed")))?;
        if seed >= 1000 {
            return Err(TpeError::Config(format!(
                "--scenario {s:?}: training seeds must be < 1000 (held-out seeds start at 9001)"
            )));
        }
        let cfg = ScenarioConfig::preset(name, args.destinations).ok_or_else(|| {
            TpeError::Config(format!(
                "unknown scenario {name:?}; presets: {}",
                PRESETS.join(", ")
            ))
        })?;
        let series = Scenario::generate(&cfg, seed, args.buckets);
        inputs.push(EvalInput {
            name: s.clone(),
            x: series.buckets,
            events: series.events,
            origin_unix_ms: series.origin_unix_ms,
            warmup: 0,
            oracle: None,
        });
    }
    if inputs.is_empty() {
        return Err(TpeError::Config(
            "give --data FILE or --scenario NAME:SEED".into(),
        ));
    }
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for inp in &inputs {
        dataset_rows(inp, args.stride, &mut xs, &mut ys);
    }
    let rows = ys.len() / 3;
    let px = args.out.with_extension("x.npy");
    let py = args.out.with_extension("y.npy");
    write_npy(&px, &xs, rows, N_FEATURES)?;
    write_npy(&py, &ys, rows, 3)?;
    let meta = json!({
        "features": features::feature_names(),
        "window": WINDOW,
        "horizons": HORIZONS,
        "normalization": features::NORMALIZATION,
        "clip": features::CLIP,
        "rows": rows,
        "stride": args.stride,
        "inputs": inputs.iter().map(|i| i.name.clone()).collect::<Vec<_>>(),
    });
    let pm = args.out.with_extension("meta.json");
    std::fs::write(&pm, serde_json::to_vec_pretty(&meta).unwrap_or_default())
        .map_err(|e| TpeError::io(pm.display(), e))?;
    eprintln!(
        "wrote {}, {} and {} ({rows} rows, {N_FEATURES} features)",
        px.display(),
        py.display(),
        pm.display()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.csv");
        let args = TelemetryExportArgs {
            out: out.clone(),
            scenario: "surge".into(),
            buckets: 200,
            seed: 3,
            destinations: 4,
        };
        assert_eq!(run_export(&args).unwrap(), 0);
        let inp = load_data(&out).unwrap();
        let series = Scenario::generate(&ScenarioConfig::preset("surge", 4).unwrap(), 3, 200);
        assert_eq!(inp.x, series.buckets);
        assert_eq!(inp.events, series.events);
        assert_eq!(inp.origin_unix_ms, series.origin_unix_ms);
        let bad = TelemetryExportArgs {
            scenario: "nope".into(),
            ..args
        };
        assert!(
            run_export(&bad)
                .unwrap_err()
                .to_string()
                .contains("presets")
        );
    }

    #[test]
    fn npy_header_is_aligned() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        write_npy(&p, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3).unwrap();
        let b = std::fs::read(&p).unwrap();
        assert_eq!(&b[..6], b"\x93NUMPY");
        let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hl) % 64, 0);
        assert_eq!(b.len(), 10 + hl + 24);
        assert_eq!(&b[10 + hl..10 + hl + 4], &1.0f32.to_le_bytes());
    }

    #[test]
    fn dataset_rows_shapes() {
        let series = Scenario::generate(&ScenarioConfig::preset("mixed", 2).unwrap(), 1, 300);
        let inp = EvalInput {
            name: "m".into(),
            x: series.buckets,
            events: series.events,
            origin_unix_ms: 0,
            warmup: 0,
            oracle: None,
        };
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        dataset_rows(&inp, 10, &mut xs, &mut ys);
        assert_eq!(xs.len() / N_FEATURES, ys.len() / 3);
        assert!(!ys.is_empty() && ys.iter().all(|v| v.is_finite()));
    }
}
