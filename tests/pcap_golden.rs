//! Golden test: a real capture through the pcap port, checked by an independent parser.
//!
//! pathspider's real.pcap (one hour of real traffic: IPv4/TCP, ARP, multicast with TTL 1)
//! is forwarded by a small route table (the router has no addresses: ARP is not handled,
//! multicast and broadcast are not routed). Every forwarded packet must come out with TTL−1,
//! a valid IPv4 header checksum, rewritten MACs and every other byte unchanged; every
//! packet not forwarded must be a drop counted under the reason an independent model of
//! the rules predicts; and in = out + drops.

mod common;

use common::golden;

use std::path::Path;

use serde_json::Value;
use steerd::app::{Appliance, RunOptions};
use steerd::config::Config;

fn config(rx: &Path, tx: &Path, workers: usize) -> Config {
    let text = format!(
        r#"
[general]
workers = {workers}
pin_cores = false

[[ports]]
name = "in"
backend = "pcap"
rx_file = "{}"

[[ports]]
name = "out"
backend = "pcap"
mac = "02:00:00:00:00:21"
tx_file = "{}"

{}"#,
        rx.display(),
        tx.display(),
        golden::ROUTES_TOML
    );
    Config::from_toml(&text, "golden.toml", Path::new("."), false).expect("test config is valid")
}

fn run(input: &Path, workers: usize) -> (Value, Vec<Vec<u8>>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.pcap");
    let json = dir.path().join("stats.json");
    let cfg = config(input, &out, workers);
    let opts = RunOptions {
        duration: Some(std::time::Duration::from_secs(120)),
        json: Some(json.clone()),
        quiet: true,
        ..RunOptions::default()
    };
    let app = Appliance::build(cfg, &opts).expect("build");
    let s = app.run(&opts).expect("run");
    assert!(
        s.elapsed.as_secs() < 110,
        "the replay should end by itself at end of file"
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let outp = golden::read_pcap(&out);
    (v, outp, dir)
}

fn check(input: &Path, workers: usize) {
    let inp = golden::read_pcap(input);
    let (v, outp, dir) = run(input, workers);
    golden::verify(&inp, &v, &outp, &dir.path().join("out.pcap"), workers == 1);
}

#[test]
fn real_capture_one_worker() {
    match common::capture("real.pcap") {
        Some(p) => check(&p, 1),
        None => common::skip("captures/real.pcap is missing: run scripts/get-captures.sh"),
    }
}

#[test]
fn real_capture_two_workers_software_rss() {
    match common::capture("real.pcap") {
        Some(p) => check(&p, 2),
        None => common::skip("captures/real.pcap is missing: run scripts/get-captures.sh"),
    }
}

#[test]
fn small_committed_capture() {
    // A capture committed with the repository (see tests/data/README.md), so this test
    // runs everywhere, fetched captures or not.
    check(&common::root().join("tests/data/steerd-testbed.pcap"), 1);
}
