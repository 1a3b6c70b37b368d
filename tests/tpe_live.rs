//! The traffic prediction engine inside a running appliance: predictions on /status and
//! /metrics, `model load` refusing bad models (the running one stays), a NaN-output
//! model falling back to a baseline, shadow decisions — with forwarding going on and
//! every packet accounted for throughout. No timing assertions: waits are bounded
//! polls on what the engine publishes.
#![cfg(feature = "tpe")]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::running::{CliRun, Running, http_get, sample};
use serde_json::Value;
use steerd::ctl::proto::Request;
use steerd::tpe::model::sha256_hex;

/// Two mem ports at a bounded rate; p0's traffic goes to telemetry destination 1, p1's
/// to destination 3. The TPE predicts 8 destinations in buckets of 100 ms.
const CFG: &str = r#"
[general]
workers = 1
pin_cores = false
stats_interval_ms = 200
exit_on_eof = false

[[ports]]
name = "p0"
backend = "mem"
mac = "02:00:00:00:00:10"
[ports.generator]
flows = 256
dst = ["198.18.0.0/16"]
sizes = [64]
rate_pps = 100000

[[ports]]
name = "p1"
backend = "mem"
mac = "02:00:00:00:00:11"
[ports.generator]
flows = 256
dst = ["198.19.0.0/16"]
sizes = [64]
rate_pps = 50000
seed = 2

[[next_hops]]
name = "to-p1"
port = "p1"
mac = "02:00:00:00:01:01"
dest = 1

[[next_hops]]
name = "to-p0"
port = "p0"
mac = "02:00:00:00:02:01"
dest = 3

[[routes]]
prefix = "198.18.0.0/16"
via = "to-p1"

[[routes]]
prefix = "198.19.0.0/16"
via = "to-p0"

[tpe]
enabled = true
bucket_ms = 100
destinations = 8
shadow_window = 8
shard_timeout_ms = 5000
"#;

/// Two scheduled events for [`CFG`]: one over within the first test's run, one later.
/// On destinations without traffic, so that they do not move the forecasts the test
/// looks at (the mem generator does not follow them).
const EVENTS: &str = r#"
[[tpe.events]]
start_after_min = 2
duration_min = 3
destinations = [6]
factor = 1.5

[[tpe.events]]
name = "later"
start_after_min = 100000
duration_min = 60
destinations = [5, 7]
factor = 0.5
"#;

fn data(name: &str) -> PathBuf {
    common::root().join("tests/data").join(name)
}

fn tpe(r: &Running) -> Value {
    r.status()["components"]["tpe"].clone()
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

/// Waits (bounded) until the engine has published `n` more epochs than now.
fn wait_epochs(r: &Running, n: u64) {
    let e0 = u(&tpe(r), "epoch");
    let t0 = Instant::now();
    while u(&tpe(r), "epoch") < e0 + n {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the engine published no new predictions: {}",
            tpe(r)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rx(r: &Running) -> u64 {
    r.status()["totals"]["rx_packets"].as_u64().unwrap()
}

/// The final summary: every packet accounted for, nothing dropped, the engine stopped.
fn finish(r: Running) -> Value {
    let s = r.finish();
    let j = s.to_json();
    assert!(s.total.rx > 0);
    assert_eq!(s.total.total_drops(), 0, "{j}");
    assert_eq!(s.total.rx, s.total.tx, "{j}");
    assert_eq!(j["accounted"], true, "{j}");
    assert_eq!(j["tpe"]["state"], "stopped", "{j}");
    j["tpe"].clone()
}

#[test]
fn predictions_are_published_on_status_and_metrics() {
    let r = Running::start(&format!("{CFG}{EVENTS}"), true);
    let t = tpe(&r);
    assert_eq!(t["state"], "running", "{t}");
    assert_eq!(t["destinations"], 8);
    assert_eq!(t["bucket_ms"].as_f64(), Some(100.0));
    assert!(t["model"].as_str().unwrap().contains("tpe-default"), "{t}");
    // Enough buckets for the 5-minute horizon (5 buckets) to be scored.
    r.wait_for("accuracy scored", |r| {
        tpe(r)["accuracy"]["model"]["scored"].as_u64().unwrap_or(0) >= 2
    });
    let t = tpe(&r);
    assert_eq!(t["source"], "model", "{t}");
    assert_eq!(t["failed_shards"], Value::Array(vec![]), "{t}");
    assert!(u(&t, "inferences") >= u(&t, "buckets") - 1, "{t}");
    assert_eq!(u(&t, "inference_failures"), 0, "{t}");
    assert!(t["inference_us"]["p99"].as_u64().unwrap() > 0, "{t}");
    // The destinations with traffic are the ones predicted highest, 1 (p0's) first.
    let top: Vec<u64> = t["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["dest"].as_u64().unwrap())
        .collect();
    assert_eq!(&top[..2], &[1, 3], "{t}");
    for h in ["5m", "15m", "1h"] {
        let v = t["top"][0][h].as_f64().unwrap();
        assert!(v.is_finite() && v > 0.0, "{h}: {t}");
        // A horizon's MAE is given once forecasts that far ahead have been scored.
        let scored = t["accuracy"]["ewma"]["scored_per_horizon"][h]
            .as_u64()
            .unwrap();
        assert_eq!(
            t["accuracy"]["ewma"]["mae"][h].is_number(),
            scored > 0,
            "{h}: {t}"
        );
    }
    assert!(
        t["accuracy"]["model"]["mae"]["5m"].as_f64().unwrap() >= 0.0,
        "{t}"
    );
    assert!(
        t["model_mae_ratio_to_best_baseline"]["5m"].is_number(),
        "{t}"
    );
    assert!(t["line"].as_str().unwrap().contains("next 5m: d1"), "{t}");
    // The configured events, as the engine scheduled them.
    let ev = t["events"].as_array().unwrap();
    assert_eq!(ev.len(), 2, "{t}");
    assert_eq!(ev[0]["start_bucket"], 2, "{t}");
    assert_eq!(ev[0]["duration_min"], 3, "{t}");
    assert_eq!(ev[0]["destinations"], serde_json::json!([6]), "{t}");
    assert_eq!(ev[0]["factor"].as_f64(), Some(1.5), "{t}");
    assert_eq!(ev[0]["state"], "done", "{t}");
    assert_eq!(ev[1]["name"], "later", "{t}");
    assert_eq!(ev[1]["state"], "scheduled", "{t}");
    assert_eq!(ev[1]["start_bucket"], 100_000, "{t}");
    // The same on /metrics.
    let m = http_get(r.metrics.unwrap(), "/metrics", None).2;
    assert!(
        sample(&m, "steerd_tpe_buckets_total").unwrap() >= 5.0,
        "{m}"
    );
    assert!(sample(&m, "steerd_tpe_inferences_total").unwrap() >= 5.0);
    assert_eq!(sample(&m, "steerd_tpe_inference_failures_total"), Some(0.0));
    assert_eq!(sample(&m, "steerd_tpe_failed_shards"), Some(0.0));
    assert!(
        sample(
            &m,
            "steerd_tpe_inference_quantile_seconds{quantile=\"0.99\"}"
        )
        .unwrap()
            > 0.0,
        "{m}"
    );
    assert!(
        sample(
            &m,
            "steerd_tpe_mae_packets{predictor=\"model\",horizon=\"5m\"}"
        )
        .is_some(),
        "{m}"
    );
    assert_eq!(
        sample(&m, "steerd_tpe_destinations_by_source{source=\"model\"}"),
        Some(8.0),
        "{m}"
    );
    let f = finish(r);
    assert!(u(&f, "buckets") >= 5, "{f}");
}

/// A spec beside `onnx` in `dir`: the shipped spec, edited by `edit`, its sha256 that of
/// `onnx`.
fn model_pair(dir: &Path, name: &str, onnx: &[u8], edit: impl Fn(&mut Value)) -> PathBuf {
    let mut spec: Value = serde_json::from_slice(
        &std::fs::read(common::root().join("models/tpe-default.json")).unwrap(),
    )
    .unwrap();
    spec["sha256"] = Value::String(sha256_hex(onnx));
    edit(&mut spec);
    let p = dir.join(format!("{name}.onnx"));
    std::fs::write(&p, onnx).unwrap();
    std::fs::write(p.with_extension("json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    p
}

#[test]
fn bad_models_are_refused_and_the_running_one_stays() {
    let r = Running::start(CFG, false);
    wait_epochs(&r, 2);
    let before = tpe(&r);
    let model = before["model"].as_str().unwrap().to_string();
    let dir = r.dir.path();
    let garbage: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let good = std::fs::read(common::root().join("models/tpe-default.onnx")).unwrap();
    let cases: Vec<(PathBuf, &str)> = vec![
        (model_pair(dir, "corrupt", &garbage, |_| {}), "corrupt"),
        (
            model_pair(dir, "truncated", &good[..good.len() / 2], |_| {}),
            "corrupt",
        ),
        (data("tpe-wrong-shape.onnx"), "shape mismatch"),
        (
            model_pair(dir, "window", &good, |s| s["inputs"]["window"] = 7.into()),
            "window 7",
        ),
        (
            model_pair(dir, "hash", &good, |s| s["sha256"] = "0".repeat(64).into()),
            "does not match",
        ),
        (dir.join("missing.onnx"), "cannot read"),
    ];
    for (i, (path, why)) in cases.iter().enumerate() {
        let rx0 = rx(&r);
        let e = r.err(Request::ModelLoad {
            path: path.display().to_string(),
        });
        assert_eq!(e["code"], "model_refused", "{}: {e}", path.display());
        let msg = e["message"].as_str().unwrap();
        assert!(msg.contains(why), "{}: {msg}", path.display());
        assert!(msg.contains("keeps serving"), "{msg}");
        assert_eq!(e["active"], model.as_str(), "{e}");
        // The running model keeps serving, the refusal is counted, forwarding goes on.
        wait_epochs(&r, 1);
        let t = tpe(&r);
        assert_eq!(t["model"], model.as_str(), "{t}");
        assert_eq!(t["candidate"], Value::Null, "{t}");
        assert_eq!(t["source"], "model", "{t}");
        assert_eq!(u(&t, "models_refused"), i as u64 + 1, "{t}");
        r.wait_for("forwarding continues", |r| rx(r) > rx0 + 1000);
    }
    let f = finish(r);
    assert_eq!(u(&f, "models_refused"), cases.len() as u64);
    assert_eq!(u(&f, "inference_failures"), 0, "{f}");
}

#[test]
fn a_candidate_no_better_than_the_active_model_is_rejected_in_shadow() {
    let r = Running::start(CFG, false);
    wait_epochs(&r, 2);
    let model = tpe(&r)["model"].as_str().unwrap().to_string();
    // The same network under another name: equal error, so it does not beat the active one.
    let good = std::fs::read(common::root().join("models/tpe-default.onnx")).unwrap();
    let cand = model_pair(r.dir.path(), "same", &good, |_| {});
    let ok = r.ok(Request::ModelLoad {
        path: cand.display().to_string(),
    });
    assert!(ok["message"].as_str().unwrap().contains("shadow"), "{ok}");
    r.wait_for("the candidate in shadow", |r| {
        tpe(r)["candidate"].as_str().is_some() || u(&tpe(r), "rejections") > 0
    });
    r.wait_for("a decision", |r| u(&tpe(r), "rejections") == 1);
    let t = tpe(&r);
    assert_eq!(u(&t, "promotions"), 0, "{t}");
    assert_eq!(t["model"], model.as_str(), "the active model stays: {t}");
    assert_eq!(t["candidate"], Value::Null, "{t}");
    finish(r);
}

#[test]
fn a_nan_model_falls_back_to_a_baseline_per_shard() {
    let cfg = CFG.replace(
        "bucket_ms = 100",
        &format!(
            "bucket_ms = 100\nshards = 2\nmodel = \"{}\"",
            data("tpe-nan.onnx").display()
        ),
    );
    let r = Running::start(&cfg, true);
    wait_epochs(&r, 3);
    let t = tpe(&r);
    assert!(t["model"].as_str().unwrap().contains("tpe-nan"), "{t}");
    assert_ne!(t["source"], "model", "{t}");
    assert_eq!(t["failed_shards"], serde_json::json!([0, 1]), "{t}");
    assert!(u(&t, "inference_failures") >= 2, "{t}");
    assert!(u(&t, "fallbacks") >= 8, "{t}");
    assert_eq!(t["destinations_by_source"]["model"], Value::Null, "{t}");
    // The baseline's forecasts are finite and follow the traffic.
    assert_eq!(t["top"][0]["dest"], 1, "{t}");
    assert!(t["top"][0]["5m"].as_f64().unwrap() > 0.0, "{t}");
    assert!(t["line"].as_str().unwrap().contains("FALLBACK"), "{t}");
    let m = http_get(r.metrics.unwrap(), "/metrics", None).2;
    assert_eq!(sample(&m, "steerd_tpe_failed_shards"), Some(2.0), "{m}");
    assert!(sample(&m, "steerd_tpe_inference_failures_total").unwrap() >= 2.0);
    // A working model loaded now replaces the failing one at once (nothing to shadow).
    r.ok(Request::ModelLoad {
        path: common::root()
            .join("models/tpe-default.onnx")
            .display()
            .to_string(),
    });
    r.wait_for("the model serves again", |r| {
        let t = tpe(r);
        t["source"] == "model" && t["failed_shards"] == serde_json::json!([])
    });
    let t = tpe(&r);
    assert!(t["model"].as_str().unwrap().contains("tpe-default"), "{t}");
    assert_eq!(u(&t, "promotions"), 2, "one per shard: {t}");
    finish(r);
}

#[test]
fn cli_run_shows_the_tpe_and_ctl_model_load_refuses_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("steerd.toml");
    std::fs::write(&cfg, CFG).unwrap();
    let json = dir.path().join("final.json");
    let bad = dir.path().join("bad.onnx");
    std::fs::write(&bad, b"not a model").unwrap();
    std::fs::write(bad.with_extension("json"), b"{}").unwrap();
    let bin = env!("CARGO_BIN_EXE_steerd");
    let mut run = CliRun::start(bin, dir.path(), &cfg, &["--json", json.to_str().unwrap()]);
    let (code, _, err) = run.ctl(&["model", "load", bad.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("model_refused") && err.contains("bad.json"),
        "{err}"
    );
    // Events at run time: add, list, a refusal naming the field, delete.
    let (code, out, err) = run.ctl(&[
        "events",
        "add",
        "--in-min",
        "5",
        "--duration-min",
        "20",
        "--dest",
        "1,2",
        "--factor",
        "2",
        "--name",
        "promo",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("event promo (#0) scheduled: scheduled from bucket"),
        "{out}"
    );
    let (code, out, _) = run.ctl(&["events", "list"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("promo (#0)") && out.contains("ctl"), "{out}");
    assert!(out.contains("1 scheduled event(s)"), "{out}");
    let (code, _, err) = run.ctl(&[
        "events",
        "add",
        "--in-min",
        "5",
        "--duration-min",
        "0",
        "--dest",
        "1",
        "--factor",
        "2",
    ]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("bad_event") && err.contains("duration_min"),
        "{err}"
    );
    let (code, out, _) = run.ctl(&["events", "del", "0"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("event promo (#0) removed (0 still scheduled)"),
        "{out}"
    );
    // Let a few buckets pass, then stop.
    let t0 = Instant::now();
    loop {
        let (_, out, _) = run.ctl(&["--json", "status"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        if v["result"]["components"]["tpe"]["epoch"]
            .as_u64()
            .unwrap_or(0)
            >= 8
        {
            let (_, text, _) = run.ctl(&["status"]);
            assert!(text.contains("tpe: bucket"), "{text}");
            assert!(text.contains("refused 1"), "{text}");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no predictions: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, _, _) = run.ctl(&["shutdown"]);
    assert_eq!(code, Some(0));
    let (status, err) = run.wait();
    assert!(status.success(), "{err}");
    // The plain stats line carries a TPE line; the summary and the JSON a tpe part.
    assert!(err.contains("] tpe: bucket"), "{err}");
    assert!(err.contains("refused 1"), "{err}");
    assert!(
        err.contains("accounting: rx") && err.contains(": ok"),
        "{err}"
    );
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(j["tpe"]["state"], "stopped", "{j}");
    assert!(j["tpe"]["buckets"].as_u64().unwrap() >= 8, "{j}");
    assert_eq!(j["tpe"]["models_refused"], 1, "{j}");
    assert_eq!(j["accounted"], true);
}
