//! scripts/bench-testbed.sh works end to end (root): one short round through Linux's own
//! forwarding and steerd on every backend this test binary's steerd has (tap, afpacket,
//! afxdp with `--features afxdp`, dpdk with `--features dpdk`), and it prints one JSON line per router with the
//! fields docs/benchmarks.md quotes. This checks the harness, not the rates: a debug
//! build's figures mean nothing, and no figure is compared with a threshold except that
//! every router delivered something and the ratios are consistent with the rates.
//!
//! Without root or trafgen it prints `SKIPPED: <reason>`; with `CI=true` it fails instead.

mod common;

use std::process::Command;

use serde_json::Value;

const STEERD: &str = env!("CARGO_BIN_EXE_steerd");

#[test]
fn bench_testbed_prints_one_line_per_router() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        common::skip("scripts/bench-testbed.sh needs root (network namespaces)");
        return;
    }
    for (tool, pkg) in [
        ("trafgen", "netsniff-ng"),
        ("ethtool", "ethtool"),
        ("ping", "iputils-ping"),
    ] {
        if !common::have(tool) {
            common::skip(&format!(
                "{tool} is missing (apt-get install {pkg}, or scripts/install-testbed-deps.sh)"
            ));
            return;
        }
    }
    let mut routers = vec!["linux", "tap", "afpacket"];
    if cfg!(feature = "afxdp") {
        routers.push("afxdp");
    }
    if cfg!(feature = "dpdk") {
        routers.push("dpdk");
    }
    let out = Command::new(common::root().join("scripts/bench-testbed.sh"))
        .args(["--steerd", STEERD, "--duration", "1", "--rounds", "1"])
        .args(["--routers", &routers.join(",")])
        .output()
        .expect("scripts/bench-testbed.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench-testbed.sh failed:\n{stdout}\n{stderr}"
    );
    eprintln!("{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let names: Vec<&str> = lines.iter().filter_map(|j| j["router"].as_str()).collect();
    assert_eq!(names, routers, "one line per router, in order:\n{stdout}");
    let linux = lines[0]["delivered_pps"]
        .as_f64()
        .expect("linux delivered_pps");
    for j in &lines {
        println!("{j}");
        let delivered = j["delivered_pps"].as_f64().expect("delivered_pps");
        let sent = j["sent_pps"].as_f64().expect("sent_pps");
        assert!(delivered > 0.0 && sent > 0.0, "nothing crossed: {j}");
        assert!(delivered <= sent * 1.01, "more delivered than sent: {j}");
        let ratio = j["ratio_to_linux"].as_f64().expect("ratio_to_linux");
        assert!(
            (ratio - delivered / linux).abs() <= 0.002 * ratio.max(1.0),
            "ratio_to_linux is not delivered / linux's: {j}"
        );
        assert_eq!(j["runs_pps"].as_array().map(Vec::len), Some(1), "{j}");
        assert_eq!(j["frame_bytes"], 64, "{j}");
    }
}
