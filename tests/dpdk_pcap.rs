//! Golden test of the DPDK backend: a real capture through steerd on DPDK ports, a
//! net_pcap vdev in (rx_pcap = the capture) and a net_pcap vdev out (tx_pcap), checked
//! like the pcap-port golden test (tests/common/golden.rs): TTL−1, valid checksums,
//! rewritten MACs, every other byte unchanged, drops under the predicted reasons, and
//! in = out + counted drops, with idle parking on, and a live RAM that reads the out
//! port's DPDK link state. Runs with `--features dpdk`; needs root (the EAL's runtime
//! directory, vdevs) and uses `--no-huge`, so no hugepages are needed.
#![cfg(feature = "dpdk")]

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::golden;
use serde_json::Value;
use steerd::app::{Appliance, RunOptions};
use steerd::config::Config;

fn config(rx: &Path, tx: &Path) -> Config {
    let text = format!(
        r#"
[general]
workers = 1
pin_cores = false
# Idle parking on the DPDK loop too: once the capture has been read the worker parks
# (checked below), and parking loses nothing.
idle_park_us = 200

[dpdk]
cores = "0"
no_huge = true
mem_mb = 256
file_prefix = "steerd-test-{pid}"
log_level = "error"
vdevs = ["net_pcap0,rx_pcap={rx}", "net_pcap1,tx_pcap={tx}"]

[[ports]]
name = "in"
backend = "dpdk"
device = "net_pcap0"

[[ports]]
name = "out"
backend = "dpdk"
device = "net_pcap1"
queues = 0
mac = "02:00:00:00:00:21"
{routes}
# The live RAM beside the DPDK worker: its one link leaves on port "out", so it follows
# that DPDK port's link state (checked below). The capture has no steering headers, so
# its steering table changes nothing here.
[steering]
keys = ["000102030405060708090a0b0c0d0e0f"]

[ram]
mode = "reactive"
live = true
tick_ms = 100
worker_pps = 100000
local_worker_pps = 100000

[[ram.regions]]
name = "r"
budget = 4

[[ram.zones]]
name = "z"
region = "r"
budget = 4

[[ram.sites]]
name = "dc"
zone = "z"
max_workers = 4

[[ram.links]]
a = "edge"
b = "dc"
latency_us = 100
capacity_pps = 1000000
next_hop = "gw"

[[ram.destinations]]
id = 1
site = "dc"
"#,
        pid = std::process::id(),
        rx = rx.display(),
        tx = tx.display(),
        routes = golden::ROUTES_TOML
    );
    Config::from_toml(&text, "dpdk-golden.toml", Path::new("."), false)
        .expect("test config is valid")
}

#[test]
fn real_capture_through_dpdk_net_pcap() {
    let Some(input) = common::capture("real.pcap") else {
        common::skip("captures/real.pcap is missing: run scripts/get-captures.sh");
        return;
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        common::skip("the DPDK EAL needs root here (runtime directory under /var/run/dpdk)");
        return;
    }
    let inp = golden::read_pcap(&input);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.pcap");
    let json = dir.path().join("stats.json");
    let opts = RunOptions {
        duration: Some(Duration::from_secs(120)),
        json: Some(json.clone()),
        quiet: true,
        metrics_listen: Some("off".into()),
        ctl_socket: Some("off".into()),
        ..RunOptions::default()
    };
    let app = Appliance::build(config(&input, &out), &opts).expect("build on DPDK");
    // A net_pcap port stays open after its file ends: stop once every packet has been
    // received and the counters stand still.
    let ctl = app.ctl.clone();
    let stats = app.stats.clone();
    let want = inp.len() as u64;
    let stopper = std::thread::spawn(move || {
        let t0 = Instant::now();
        let mut last = None;
        while t0.elapsed() < Duration::from_secs(100) {
            std::thread::sleep(Duration::from_millis(200));
            let mut rx = 0;
            let mut tx = 0;
            for s in &stats {
                let l = s.snapshot();
                rx += l.rx;
                tx += l.tx + l.total_drops();
            }
            if rx >= want && last == Some((rx, tx)) {
                break;
            }
            last = Some((rx, tx));
        }
        ctl.stop.store(true, Ordering::SeqCst);
    });
    let s = app.run(&opts).expect("run");
    stopper.join().unwrap();
    assert!(
        s.elapsed < Duration::from_secs(100),
        "stopped by the stopper"
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // DPDK's own counters agree with steerd's.
    let d = &v["dpdk"]["ports"];
    assert_eq!(
        d[0]["stats"]["ipackets"].as_u64(),
        Some(want),
        "{}",
        v["dpdk"]
    );
    assert_eq!(
        d[1]["stats"]["opackets"].as_u64(),
        v["tx_packets"].as_u64(),
        "{}",
        v["dpdk"]
    );
    assert!(
        d[0]["xstats"]["rx_good_packets"].as_u64().is_some(),
        "extended stats exported: {}",
        v["dpdk"]
    );
    // The worker parked once the capture was read (idle_park_us on the DPDK loop).
    assert!(
        v["worker_parks"].as_u64().is_some_and(|n| n > 0),
        "worker_parks: {}",
        v["worker_parks"]
    );
    // The live RAM read the out port's DPDK link state: up.
    let link = &v["ram"]["links"][0];
    assert_eq!(link["carrier_of"], "dpdk port 1", "{}", v["ram"]);
    assert_eq!(link["state"], "up", "{}", v["ram"]);
    // DPDK ports send no kernel link notifications: their link state is polled.
    assert_eq!(
        v["ram"]["link_watch"]["how"], "poll every 100 ms",
        "{}",
        v["ram"]
    );
    let outp = golden::read_pcap(&out);
    golden::verify(&inp, &v, &outp, &out, true);
}
