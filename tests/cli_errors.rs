//! Command-line mistakes are refused before anything runs, naming the flag: a result
//! file that cannot be created (instead of losing the result at the end of a long run)
//! and a worker count beyond what a run takes.

mod common;

use common::text;
use std::process::{Command, Output};

const STEERD: &str = env!("CARGO_BIN_EXE_steerd");

/// `steerd run` on the embedded config with its listeners in `dir`, plus `args`.
fn run(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(STEERD)
        .arg("run")
        .args(["--quiet", "--metrics-listen", "127.0.0.1:0", "--ctl-socket"])
        .arg(dir.join("ctl.sock"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn an_unwritable_json_path_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("no-such-dir/run.json");
    let o = run(
        dir.path(),
        &["--duration", "30", "--json", bad.to_str().unwrap()],
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("--json") && t.contains("cannot create"), "{t}");
    assert!(
        !t.contains("steerd summary"),
        "refused before forwarding: {t}"
    );
    // The same path in a directory that exists gets the summary.
    let good = dir.path().join("run.json");
    let o = run(
        dir.path(),
        &["--duration", "0.3", "--json", good.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&good).unwrap()).unwrap();
    assert!(v["rx_packets"].as_u64().unwrap() > 0, "{v}");
}

#[test]
fn an_unwritable_json_path_is_refused_before_the_scenario_run() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("no-such-dir/surge.json");
    // 600 logical seconds take tens of seconds unpaced: refused before any of them.
    let o = Command::new(STEERD)
        .args([
            "run",
            "--scenario",
            "surge",
            "--ram",
            "reactive",
            "--duration",
            "600",
        ])
        .args(["--fast", "--quiet", "--json", bad.to_str().unwrap()])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("--json") && t.contains("cannot create"), "{t}");
    assert!(
        !t.contains("drops during surges"),
        "refused before running: {t}"
    );
}

#[test]
fn too_many_workers_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["--duration", "1", "--workers", "1000"]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("--workers 1000 is above 128"), "{t}");
    assert!(!t.contains("steerd summary"), "{t}");
    // More workers than cores runs, with a warning that they share cores.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = (cores + 1).to_string();
    let o = run(dir.path(), &["--duration", "0.3", "--workers", &n]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("share cores"), "{t}");
    assert!(t.contains(&format!("workers {n} ")), "{t}");
}

#[test]
fn sizes_out_of_range_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("a.pcap");
    let csv = dir.path().join("t.csv");
    let cases: [(&[&str], &str); 9] = [
        (
            &["gen-pcap", "--flows", "0", "--out", pcap.to_str().unwrap()],
            "--flows 0 is outside 1..=1048576",
        ),
        (
            &["bench", "--flows", "0", "--duration", "0.1"],
            "--flows 0 is outside 1..=1048576",
        ),
        (&["bench", "--size", "10"], "--size 10 is outside 60..=1920"),
        (
            &["bench", "--workers", "1000"],
            "--workers 1000 is outside 0..=128",
        ),
        (
            &["bench", "--routes", "0"],
            "--routes 0 is outside 1..=4000000",
        ),
        (
            &["bench", "--repeat", "0"],
            "--repeat 0 is outside 1..=1000",
        ),
        (
            &["bench", "--duration", "0"],
            "--duration 0 must be above 0 seconds",
        ),
        (
            &[
                "telemetry",
                "export",
                "--buckets",
                "0",
                "--out",
                csv.to_str().unwrap(),
            ],
            "--buckets 0 out of range 1..=525600",
        ),
        (
            &[
                "telemetry",
                "export",
                "--destinations",
                "0",
                "--out",
                csv.to_str().unwrap(),
            ],
            "--destinations 0 out of range 1..=65535",
        ),
    ];
    for (args, msg) in cases {
        let o = Command::new(STEERD).args(args).output().unwrap();
        let t = text(&o);
        assert!(!o.status.success(), "{args:?}: {t}");
        assert!(t.contains(msg), "{args:?}: {t}");
    }
    assert!(!pcap.exists() && !csv.exists(), "nothing written");
}
