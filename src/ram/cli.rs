//! The RAM's command-line tools: `steerd run --scenario` and `steerd ram timeline`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::sim::{self, SimOptions};
use super::timeline;
use super::topology::RamMode;

/// Where the last scenario run of each mode is kept for `steerd ram timeline`.
pub fn last_run_path(mode: &str) -> PathBuf {
    std::env::temp_dir().join(format!("steerd-ram-last-{mode}.json"))
}

/// Arguments of a scenario run.
#[derive(Debug, Clone)]
pub struct ScenarioArgs {
    /// Config (default: the embedded conf/ram-surge.toml).
    pub config: Option<PathBuf>,
    /// Scenario preset.
    pub scenario: String,
    /// RAM mode (default: the config's).
    pub ram: Option<String>,
    /// Wall seconds (default 60).
    pub duration: Option<f64>,
    /// JSON summary file.
    pub json: Option<PathBuf>,
    /// Do not pace to wall time.
    pub fast: bool,
    /// Scenario seed.
    pub seed: u64,
    /// No progress lines.
    pub quiet: bool,
    /// `--fail-link A,B@MIN[+DUR]`, unparsed.
    pub fail_links: Vec<String>,
    /// `--forecast model|oracle|oracle-causal|clairvoyant`, unparsed (None: model).
    pub forecast: Option<String>,
}

/// `steerd run --scenario`: runs it, prints a summary, writes the JSON.
pub fn run_scenario(a: &ScenarioArgs) -> Result<i32, String> {
    let cfg = sim::load_config(a.config.as_deref())?;
    let mode = a.ram.as_deref().map(RamMode::parse).transpose()?;
    let opts = SimOptions {
        scenario: a.scenario.clone(),
        mode,
        duration_s: a.duration.unwrap_or(60.0),
        fast: a.fast,
        seed: a.seed,
        verbose: !a.quiet,
        fail_links: a
            .fail_links
            .iter()
            .map(|f| f.parse().map_err(|e| format!("--fail-link {e}")))
            .collect::<Result<_, String>>()?,
        forecast: a
            .forecast
            .as_deref()
            .map(str::parse)
            .transpose()?
            .unwrap_or_default(),
    };
    let out = a
        .json
        .as_deref()
        .map(|p| crate::app::OutFile::create("--json", p))
        .transpose()
        .map_err(|e| e.to_string())?;
    let v = sim::run(&cfg, &opts)?;
    let text = serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?;
    if let Some(out) = out {
        out.write(&text).map_err(|e| e.to_string())?;
    }
    let mode = v["mode"].as_str().unwrap_or("?");
    // Best effort: the record `steerd ram timeline` plots without arguments.
    let _ = std::fs::write(last_run_path(mode), &text);
    println!("{}", summary(&v));
    Ok(0)
}

/// One-paragraph human summary of a scenario run.
pub fn summary(v: &Value) -> String {
    let u = |k: &str| v[k].as_u64().unwrap_or(0);
    let mut s = format!(
        "scenario {} ({} logical s in {} s), RAM {}: {} packets, {} drops ({} during surges: {} scheduled events, {} flash crowds), \
p99 {:.2} ms, {:.0} worker-seconds, pre-positionings {} early / {} late, {} steered / {} routed, {} table publications",
        v["scenario"].as_str().unwrap_or("?"),
        u("logical_seconds"),
        v["wall_seconds"],
        v["mode"].as_str().unwrap_or("?"),
        u("packets"),
        u("drops"),
        u("drops_during_surges"),
        v["drops_during_surges_by_kind"]["scheduled_event"]
            .as_u64()
            .unwrap_or(0),
        v["drops_during_surges_by_kind"]["flash_crowd"]
            .as_u64()
            .unwrap_or(0),
        u("p99_ns") as f64 / 1e6,
        v["worker_seconds"].as_f64().unwrap_or(0.0),
        u("prepositions_early"),
        u("prepositions_late"),
        u("steered"),
        u("routed"),
        u("table_publications"),
    );
    for f in v["link_failures"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "; link {} – {} failed from {} s to {} s: {} packets dropped on it",
            f["a"].as_str().unwrap_or("?"),
            f["b"].as_str().unwrap_or("?"),
            f["from_s"],
            f["to_s"],
            f["drops_on_link"]
        ));
    }
    s
}

/// `steerd ram timeline [FILES] --plot OUT.svg`: without files, the last run of each mode.
pub fn run_timeline(files: &[PathBuf], plot: &Path) -> Result<i32, String> {
    let files: Vec<PathBuf> = if files.is_empty() {
        let found: Vec<PathBuf> = ["predictive", "reactive", "static"]
            .iter()
            .map(|m| last_run_path(m))
            .filter(|p| p.exists())
            .collect();
        if found.is_empty() {
            return Err(format!(
                "no scenario run on record in {}: run `steerd run --scenario surge --ram predictive` first, or name the JSON files",
                std::env::temp_dir().display()
            ));
        }
        found
    } else {
        files.to_vec()
    };
    let mut runs = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        runs.push(timeline::from_json(&v).map_err(|e| format!("{}: {e}", f.display()))?);
    }
    timeline::plot_svg(&runs, plot)?;
    eprintln!(
        "steerd: wrote {} ({} run{}: {})",
        plot.display(),
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        runs.iter()
            .map(|r| r.label.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(0)
}
