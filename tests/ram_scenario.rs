#![cfg(feature = "tpe")]
//! The closed loop of `steerd run --scenario`: generator → marker → SAFE → TPE → RAM →
//! tables, on the embedded conf/ram-surge.toml, in the three RAM modes. These check
//! that the loop runs and accounts for every packet; how the modes compare is a
//! benchmark (docs/benchmarks.md "RAM"), not asserted here.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use steerd::config::Config;
use steerd::ram::RamMode;
use steerd::ram::sim::{self, ForecastSource, SimOptions};
use steerd::tpe::scenario::{ScenarioClock, ScenarioConfig};

fn config(scale: f64) -> Config {
    let text = sim::SURGE_TOML.replace("packet_scale = 1.0", &format!("packet_scale = {scale}"));
    Config::from_toml(&text, "ram-surge", Path::new("."), false).unwrap()
}

fn run(mode: RamMode, duration_s: f64) -> Value {
    let opts = SimOptions {
        mode: Some(mode),
        duration_s,
        fast: true,
        ..SimOptions::default()
    };
    sim::run(&config(0.25), &opts).unwrap()
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

#[test]
fn three_modes_account_for_every_packet() {
    let mut ws = Vec::new();
    for mode in [RamMode::Predictive, RamMode::Reactive, RamMode::Static] {
        let v = run(mode, 4.0);
        assert_eq!(v["mode"], mode.as_str());
        for k in [
            "drops_during_surges",
            "p99_ns",
            "prepositions_early",
            "prepositions_late",
        ] {
            u(&v, k);
        }
        let packets = u(&v, "packets");
        assert!(packets > 10_000, "{packets} packets");
        assert_eq!(
            packets,
            u(&v, "delivered") + u(&v, "drops") + u(&v, "queued_at_end"),
            "every packet delivered, dropped (with a reason) or still queued"
        );
        let r = &v["drops_by_reason"];
        assert_eq!(
            u(&v, "drops"),
            u(r, "queue_full") + u(r, "link_congested") + u(r, "link_down") + u(r, "pipeline")
        );
        assert!(u(&v, "drops_during_surges") <= u(&v, "drops"));
        // Every packet went through the SAFE pipeline: steered (marker's header
        // accepted) or routed; the marker's headers all verify.
        assert_eq!(u(&v, "steered") + u(&v, "routed"), packets);
        assert!(u(&v, "steered") > 0);
        for (reason, n) in v["steering_fallbacks"].as_object().unwrap() {
            assert_eq!(n.as_u64(), Some(0), "fallback {reason}");
        }
        assert!(u(&v, "table_publications") >= 1);
        assert_eq!(
            v["timeline"].as_array().unwrap().len(),
            20,
            "one point per logical minute"
        );
        assert!(v["p99_ns"].as_u64().unwrap() >= v["p50_ns"].as_u64().unwrap());
        let sites = v["sites"].as_array().unwrap();
        assert_eq!(sites.len(), 5);
        let site_ws: f64 = sites
            .iter()
            .map(|s| s["worker_seconds"].as_f64().unwrap())
            .sum();
        let total_ws = v["worker_seconds"].as_f64().unwrap();
        assert!((site_ws - total_ws).abs() < 1e-6);
        if mode == RamMode::Static {
            assert_eq!(u(&v, "workers_woken"), 0, "static never wakes");
            assert_eq!(u(&v, "prepositions_early") + u(&v, "prepositions_late"), 0);
        }
        ws.push(total_ws);
    }
    // Static provisions for last week's peak the whole time.
    assert!(ws[2] >= ws[0] && ws[2] >= ws[1], "worker-seconds {ws:?}");
}

/// A link on the steered path fails for 10 logical minutes: the RAM places its
/// destinations elsewhere at the end of the tick it fails in, so the packets lost on it
/// are about one tick's worth; nothing is lost on it afterwards, and every packet is
/// still accounted for. An unknown link, or a failure after the run ends, is refused,
/// naming the flag.
#[test]
fn a_failed_link_costs_about_one_tick_of_its_traffic() {
    let opts = SimOptions {
        mode: Some(RamMode::Reactive),
        duration_s: 4.0,
        fast: true,
        fail_links: vec!["edge,core-a@5+10".parse().unwrap()],
        ..SimOptions::default()
    };
    let v = sim::run(&config(0.25), &opts).unwrap();
    let f = &v["link_failures"][0];
    assert_eq!(
        (f["a"].as_str(), f["b"].as_str()),
        (Some("edge"), Some("core-a")),
        "{f}"
    );
    assert_eq!((u(f, "from_s"), u(f, "to_s")), (300, 900), "{f}");
    let lost = u(f, "drops_on_link");
    assert_eq!(lost, u(&v["drops_by_reason"], "link_down"));
    let per_tick = u(&v, "packets") / u(&v, "logical_seconds");
    assert!(lost > 0, "traffic on core-a when it failed: {f}");
    assert!(
        lost <= 2 * per_tick,
        "{lost} lost, {per_tick} packets per tick in all"
    );
    assert_eq!(
        u(&v, "packets"),
        u(&v, "delivered") + u(&v, "drops") + u(&v, "queued_at_end")
    );
    let e = sim::run(
        &config(0.25),
        &SimOptions {
            fail_links: vec!["edge,fra9@5".parse().unwrap()],
            ..opts.clone()
        },
    )
    .unwrap_err();
    assert!(e.contains("--fail-link edge,fra9"), "{e}");
    // A failure after the run's end would have no effect: refused, with the end.
    let e = sim::run(
        &config(0.25),
        &SimOptions {
            fail_links: vec!["edge,core-a@100000".parse().unwrap()],
            ..opts
        },
    )
    .unwrap_err();
    assert!(
        e.contains("--fail-link edge,core-a@100000: the run ends at minute"),
        "{e}"
    );
}

#[test]
fn same_seed_same_result() {
    let a = run(RamMode::Predictive, 2.0);
    let b = run(RamMode::Predictive, 2.0);
    for k in [
        "packets",
        "drops",
        "drops_during_surges",
        "prepositions_early",
        "prepositions_late",
    ] {
        assert_eq!(a[k], b[k], "{k}");
    }
    assert_eq!(a["worker_seconds"], b["worker_seconds"]);
}

#[test]
fn bad_ram_config_names_the_field() {
    let text = sim::SURGE_TOML.replacen("b = \"fra1\"", "b = \"fra9\"", 1);
    let e = Config::from_toml(&text, "bad", Path::new("."), false).unwrap_err();
    assert!(e.to_string().contains("ram.links[2].b"), "{e}");
    let text = sim::SURGE_TOML.replace("next_hop = \"steer-b\"", "next_hop = \"nope\"");
    let e = Config::from_toml(&text, "bad", Path::new("."), false).unwrap_err();
    assert!(e.to_string().contains("ram.links[1].next_hop"), "{e}");
}

#[test]
fn cli_run_then_timeline_plot() {
    let dir = std::env::temp_dir().join(format!("steerd-ram-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("run.json");
    let out = Command::new(env!("CARGO_BIN_EXE_steerd"))
        .args([
            "run",
            "--scenario",
            "surge",
            "--ram",
            "reactive",
            "--duration",
            "1",
            "--fast",
            "--quiet",
            "--json",
        ])
        .arg(&json)
        .env("STEERD_RAM__PACKET_SCALE", "0.2")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("RAM reactive"), "{stdout}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["mode"], "reactive");
    assert_eq!(
        v["ram"]["packet_scale"], 0.2,
        "environment override of [ram]"
    );
    let svg = dir.join("t.svg");
    let out = Command::new(env!("CARGO_BIN_EXE_steerd"))
        .args(["ram", "timeline"])
        .arg(&json)
        .arg("--plot")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    // A bad mode is refused before anything runs.
    let out = Command::new(env!("CARGO_BIN_EXE_steerd"))
        .args([
            "run",
            "--scenario",
            "surge",
            "--ram",
            "psychic",
            "--duration",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("predictive"));
    std::fs::remove_dir_all(&dir).ok();
}

/// `--forecast oracle`: the predictive RAM is handed the scenario's noise-free rate for
/// each horizon's target bucket instead of the TPE's forecast, and the summary says so.
/// The timeline's 5-minute prediction for each bucket is then the scenario's own
/// expected rate there. The causal oracle is labelled as such over the same traffic
/// (how it differs from the oracle is tested in `tpe::scenario`). The clairvoyant's
/// prediction is the generated bucket, noise included.
#[test]
fn an_oracle_forecast_is_the_scenarios_rate_and_is_labelled() {
    let cfg = config(0.25);
    let oracle = |f: ForecastSource| {
        let opts = SimOptions {
            mode: Some(RamMode::Predictive),
            duration_s: 2.5,
            fast: true,
            forecast: f,
            ..SimOptions::default()
        };
        sim::run(&cfg, &opts).unwrap()
    };
    let v = oracle(ForecastSource::Oracle);
    assert_eq!(v["tpe_source"], "oracle");
    let nd = 16;
    let clock = ScenarioClock::new(ScenarioConfig::preset("surge", nd).unwrap(), 2026);
    let tl = v["timeline"].as_array().unwrap();
    assert!(tl.len() >= 12, "{} buckets", tl.len());
    for (i, r) in tl.iter().enumerate().skip(4) {
        let b = (sim::WARMUP_BUCKETS + i) as u64;
        let want: f64 = (0..nd).map(|d| clock.expected(d, b)).sum::<f64>() / 60.0;
        let got = r["predicted_pps"].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 0.01 + 1e-4 * want,
            "bucket {i}: {got} vs {want}"
        );
    }
    let c = oracle(ForecastSource::OracleCausal);
    assert_eq!(c["tpe_source"], "oracle_causal");
    assert_eq!(c["packets"], v["packets"], "the same traffic");
    // The clairvoyant's 5-minute prediction for a bucket is the generated bucket itself,
    // noise and spikes included, so it differs from the oracle's where the noise does.
    let k = oracle(ForecastSource::Clairvoyant);
    assert_eq!(k["tpe_source"], "clairvoyant");
    assert_eq!(k["packets"], v["packets"], "the same traffic");
    let mut off_the_rate = 0;
    for (i, (r, o)) in k["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .zip(tl)
        .enumerate()
        .skip(4)
    {
        let b = (sim::WARMUP_BUCKETS + i) as u64;
        let want: f64 = (0..nd).map(|d| f64::from(clock.packets(d, b))).sum::<f64>() / 60.0;
        let got = r["predicted_pps"].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 0.01 + 1e-4 * want,
            "bucket {i}: {got} vs {want}"
        );
        let oracle_pps = o["predicted_pps"].as_f64().unwrap();
        off_the_rate += usize::from((got - oracle_pps).abs() > 0.05);
    }
    assert!(off_the_rate > 0, "the clairvoyant sees the noise");
    // Only the predictive RAM reads a forecast; unknown sources are refused, naming the
    // flag.
    let opts = SimOptions {
        mode: Some(RamMode::Reactive),
        forecast: ForecastSource::Oracle,
        ..SimOptions::default()
    };
    let e = sim::run(&cfg, &opts).unwrap_err();
    assert!(
        e.contains("--forecast oracle") && e.contains("reactive"),
        "{e}"
    );
    let e = "crystal-ball".parse::<ForecastSource>().unwrap_err();
    assert!(
        e.contains("--forecast") && e.contains("oracle-causal") && e.contains("clairvoyant"),
        "{e}"
    );
}
