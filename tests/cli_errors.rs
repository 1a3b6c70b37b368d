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
    let cases: [(&[&str], &str); 13] = [
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
            &[
                "gen-pcap",
                "--priority",
                "9",
                "--out",
                pcap.to_str().unwrap(),
            ],
            "--priority 9 is above 3",
        ),
        (
            &[
                "gen-pcap",
                "--dst",
                "10.0.0.0/33",
                "--out",
                pcap.to_str().unwrap(),
            ],
            "--dst: prefix length 33 is above 32",
        ),
        (
            &[
                "gen-pcap",
                "--dst-mac",
                "zz",
                "--out",
                pcap.to_str().unwrap(),
            ],
            "--dst-mac: \"zz\" is not a MAC address",
        ),
        (
            &["bench", "--tpe", "on", "--tpe-time-scale", "0"],
            "--tpe-time-scale 0 is outside 0.001..=100000",
        ),
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
            "'--duration <DURATION>': 0 seconds: expected more than 0",
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

/// Seconds that `Duration` cannot hold (NaN, infinity, negative) or that would stop a
/// run before it started are refused by flag name, not a panic.
#[test]
fn durations_and_timeouts_are_numbers_of_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("ctl.sock");
    let sock = sock.to_str().unwrap();
    let mark_cfg = dir.path().join("m.toml");
    std::fs::write(&mark_cfg, "").unwrap();
    let mark_cfg = mark_cfg.to_str().unwrap();
    let cases: [(&[&str], &str); 7] = [
        (
            &["run", "--duration", "nan"],
            "nan seconds: expected more than 0",
        ),
        (
            &["run", "--duration=-1"],
            "-1 seconds: expected more than 0",
        ),
        (
            &["run", "--duration", "0"],
            "0 seconds: expected more than 0",
        ),
        (&["run", "--duration", "1e300"], "at most 31536000 (a year)"),
        (
            &["run", "--duration", "5s"],
            "\"5s\" is not a number of seconds",
        ),
        (
            &["mark", "--config", mark_cfg, "--duration", "inf"],
            "inf seconds: expected more than 0",
        ),
        (
            &["ctl", "--socket", sock, "--timeout", "inf", "status"],
            "'--timeout <TIMEOUT>': inf seconds",
        ),
    ];
    for (args, msg) in cases {
        let o = Command::new(STEERD).args(args).output().unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains(msg), "{args:?}: {t}");
        assert!(!t.contains("panicked"), "{args:?}: {t}");
    }
}

/// `tpe eval --plot` to a path that cannot be created is refused before the evaluation,
/// not after its results were printed.
#[cfg(feature = "tpe")]
#[test]
fn an_unwritable_plot_is_refused_before_the_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("no-such-dir/tpe.svg");
    let o = Command::new(STEERD)
        .args(["tpe", "eval", "--json", "--plot", bad.to_str().unwrap()])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("--plot") && t.contains("cannot create"), "{t}");
    assert!(o.stdout.is_empty(), "no results before the refusal: {t}");
    // Baseline overrides outside their ranges, or not numbers, are refused as well.
    for (args, msg) in [
        (["--ewma-alpha", "5"], "--ewma-alpha 5 is outside (0, 1]"),
        (["--ewma-alpha", "0"], "--ewma-alpha 0 is outside (0, 1]"),
        (["--hw", "0.5,x,0.1,0.2"], "expected three numbers A,B,G"),
        (["--hw", "0.5,2,0.1"], "each within 0..=1"),
    ] {
        let o = Command::new(STEERD)
            .args(["tpe", "eval", "--json"])
            .args(args)
            .output()
            .unwrap();
        let t = text(&o);
        assert!(!o.status.success() && t.contains(msg), "{args:?}: {t}");
        assert!(o.stdout.is_empty(), "{args:?}: {t}");
    }
}
