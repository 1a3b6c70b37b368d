//! Idle workers park (`general.idle_park_us`): with a slow generator the worker spends
//! most of the run asleep, loses nothing, and reports it; with 0 it never parks.

use std::path::Path;

use steerd::app::{Appliance, RunOptions};
use steerd::config::Config;

fn run(park_us: u64) -> steerd::app::Summary {
    let text = Config::embedded()
        .unwrap()
        .source
        .text
        .replace(
            "fault_fraction = 0.002",
            "fault_fraction = 0.0\nrate_pps = 50",
        )
        .replace(
            "steered_fraction = 0.1\n",
            "steered_fraction = 0.1\nrate_pps = 50\n",
        )
        .replace(
            "workers = 0 ",
            &format!("workers = 1\nidle_park_us = {park_us} #"),
        )
        .replace("enabled = true", "enabled = false");
    let mut cfg = Config::from_toml(&text, "park", Path::new("."), false).unwrap();
    cfg.general.pin_cores = false;
    assert_eq!(cfg.general.idle_park_us, park_us);
    let opts = RunOptions {
        duration: Some(std::time::Duration::from_secs(2)),
        quiet: true,
        ..RunOptions::default()
    };
    Appliance::build(cfg, &opts).unwrap().run(&opts).unwrap()
}

#[test]
fn idle_worker_parks_and_loses_nothing() {
    let s = run(1000);
    let t = &s.total;
    assert!(t.rx > 50, "{} packets", t.rx);
    assert!(t.accounted(), "every packet sent or counted");
    assert_eq!(t.total_drops(), 0);
    assert!(t.parks > 100, "{} parks", t.parks);
    let parked = t.parked_ns as f64 / 1e9;
    let v = s.to_json();
    assert!(
        parked > 0.5 * s.elapsed.as_secs_f64(),
        "parked {parked:.2} s of {:?}",
        s.elapsed
    );
    assert!(v["worker_awake_s"].as_f64().unwrap() < s.elapsed.as_secs_f64());
    // The p99 latency is bounded by the longest park plus a drain.
    assert!(
        v["p99_ns"].as_u64().unwrap() < 50_000_000,
        "{}",
        v["p99_ns"]
    );
}

#[test]
fn zero_means_pure_polling() {
    let s = run(0);
    assert_eq!(s.total.parks, 0);
    assert!(s.total.accounted());
}
