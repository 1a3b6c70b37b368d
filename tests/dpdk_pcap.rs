//! Golden test of the DPDK backend: a real capture through steerd on DPDK ports, a
//! net_pcap vdev in (rx_pcap = the capture) and a net_pcap vdev out (tx_pcap), checked
//! like the pcap-port golden test (tests/common/golden.rs): TTL−1, valid checksums,
//! rewritten MACs, every other byte unchanged, drops under the predicted reasons, and
//! in = out + counted drops, with idle parking on, and a live RAM that reads the out
//! port's DPDK link state. Runs with `--features dpdk`; needs root (the EAL's runtime
//! directory, vdevs) and uses `--no-huge`, so no hugepages are needed.
//!
//! A second test runs the control plane on a DPDK port (ARP, ND, echo, ICMP errors,
//! neighbour resolution) through the `steerd` binary.
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

/// The control plane on a DPDK port: `steerd run` (the real binary: a process of its own,
/// so its own EAL) on one net_pcap vdev that reads frames from a host and writes what
/// steerd sends back. The router answers ARP, neighbour solicitation and echo, sends
/// ICMP time exceeded for TTL 1, resolves a connected host for a packet that waits for
/// it (an ARP request out of the port), and forwards routed traffic as before.
#[test]
fn the_control_plane_answers_on_a_dpdk_port() {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use steerd::cp::packets as pk;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        common::skip("the DPDK EAL needs root here (runtime directory under /var/run/dpdk)");
        return;
    }
    let router = [2, 0, 0, 0, 0, 1];
    let host = [2, 0, 0, 0, 0, 2];
    let gw = [2, 0, 0, 0, 0, 0xfe];
    let (r4, h4) = (Ipv4Addr::new(10, 1, 0, 1), Ipv4Addr::new(10, 1, 0, 2));
    let (r6, h6): (Ipv6Addr, Ipv6Addr) = ("fd01::1".parse().unwrap(), "fd01::2".parse().unwrap());
    let udp = |dst: Ipv4Addr, ttl: u8, id: u16| {
        let l4 = [0x04, 0xd2, 0x16, 0x2e, 0, 12, 0, 0, b'd', b'p', b'd', b'k'];
        pk::frame(router, host, 0x0800, &pk::ipv4(h4, dst, 17, ttl, id, &l4))
    };
    let echo = pk::icmpv4(8, 0, [0, 7, 0, 1], b"ping");
    let frames = vec![
        pk::arp_request(host, h4, r4, None),
        pk::neighbor_solicit(host, h6, r6, None),
        pk::frame(router, host, 0x0800, &pk::ipv4(h4, r4, 1, 64, 1, &echo)),
        udp(Ipv4Addr::new(10, 9, 0, 5), 1, 2),
        udp(Ipv4Addr::new(10, 9, 0, 5), 64, 3),
        udp(Ipv4Addr::new(10, 1, 0, 3), 64, 4),
    ];
    let dir = tempfile::tempdir().unwrap();
    let (inp, out) = (dir.path().join("in.pcap"), dir.path().join("out.pcap"));
    common::write_pcap(&inp, &frames);
    let cfg = dir.path().join("steerd.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
# Two workers on a port with one transmit queue: only worker 0 can send on it, so the
# control plane's own packets (its ARP request) must go through worker 0.
[general]
workers = 2
pin_cores = false

[dpdk]
cores = "0"
no_huge = true
mem_mb = 256
file_prefix = "steerd-test-cp-{pid}"
log_level = "error"
vdevs = ["net_pcap0,rx_pcap={inp},tx_pcap={out}"]

[[ports]]
name = "lan"
backend = "dpdk"
device = "net_pcap0"
mac = "02:00:00:00:00:01"
addrs = ["10.1.0.1/24", "fd01::1/64"]

[[next_hops]]
name = "gw"
port = "lan"
mac = "02:00:00:00:00:fe"

[[routes]]
prefix = "10.9.0.0/16"
via = "gw"
"#,
            pid = std::process::id(),
            inp = inp.display(),
            out = out.display(),
        ),
    )
    .unwrap();
    let json = dir.path().join("stats.json");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_steerd"))
        .args([
            "run",
            "--quiet",
            "--duration",
            "2",
            "--metrics-listen",
            "off",
        ])
        .args(["--ctl-socket", "off", "--config"])
        .arg(&cfg)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run steerd");
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "steerd failed: {log}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["accounted"], true, "{v}");
    let cp = &v["control_plane"];
    for (k, n) in [
        ("arp_replies_sent", 1),
        ("na_sent", 1),
        ("echo_replies_sent", 1),
        ("time_exceeded_sent", 1),
        ("arp_requests_sent", 1),
    ] {
        assert!(cp[k].as_u64().unwrap_or(0) >= n, "{k}: {cp}");
    }
    let sent = golden::read_pcap(&out);
    let arp = |op: u16, tpa: Ipv4Addr| {
        sent.iter().any(|f| {
            f.get(12..14) == Some(&[8, 6])
                && pk::parse_arp(&f[14..])
                    .is_some_and(|a| a.op == op && a.spa == r4 && a.tpa == tpa)
        })
    };
    let icmp4 = |ty: u8| {
        sent.iter().any(|f| {
            f.get(12..14) == Some(&[8, 0])
                && f[0..6] == host
                && f[14 + 9] == 1
                && f[14 + 12..14 + 16] == r4.octets()
                && f[14 + 16..14 + 20] == h4.octets()
                && f[34] == ty
        })
    };
    let na = sent.iter().any(|f| {
        f.get(12..14) == Some(&[0x86, 0xdd]) && f[14 + 6] == 58 && f[54] == 136 && f[0..6] == host
    });
    let forwarded = sent.iter().any(|f| {
        f[0..6] == gw && f[6..12] == router && f[14 + 8] == 63 && f[14 + 4..14 + 6] == [0, 3]
    });
    assert!(arp(2, h4), "an ARP reply to the host: {sent:02x?}");
    assert!(na, "a neighbour advertisement to the host: {sent:02x?}");
    assert!(icmp4(0), "an echo reply: {sent:02x?}");
    assert!(icmp4(11), "time exceeded for TTL 1: {sent:02x?}");
    assert!(
        arp(1, Ipv4Addr::new(10, 1, 0, 3)),
        "an ARP request for 10.1.0.3: {sent:02x?}"
    );
    assert!(
        forwarded,
        "the routed packet, TTL 63, to the gateway: {sent:02x?}"
    );
    assert!(v["cp_tx_packets"].as_u64().unwrap_or(0) >= 5, "{v}");
    assert_eq!(v["cp_tx_dropped"], 0, "{v}");
}
