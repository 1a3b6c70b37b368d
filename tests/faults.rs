//! Bad input end to end: the generator emits every fault kind; each must be a drop counted
//! under its exact reason, or (for steering headers that fail a check) an LPM fallback
//! counted under its reason, never forwarded by the steering table — and in = out + drops.
//! Also: steered packets leave without their NSH header toward plain hosts, TTL−1.

mod common;

use std::path::Path;

use serde_json::Value;
use steerd::app::{Appliance, RunOptions};
use steerd::config::Config;

const BASE: &str = r#"
[general]
workers = 1
pin_cores = false

[[ports]]
name = "gen"
backend = "mem"
mac = "02:00:00:00:00:10"
trusted = TRUSTED
[ports.generator]
flows = FLOWS
dst = ["198.18.0.0/16"]
sizes = [64]
steered_fraction = STEERED
fault_fraction = FAULTS
packets = PACKETS

[[ports]]
name = "out"
backend = "pcap"
mac = "02:00:00:00:00:21"
tx_file = "OUT"

[[next_hops]]
name = "gw"
port = "out"
mac = "02:00:00:00:09:01"

[[next_hops]]
name = "steer-gw"
port = "out"
mac = "02:00:00:00:09:02"

[[routes]]
prefix = "198.18.0.0/16"
via = "gw"

[steering]
keys = ["00112233445566778899aabbccddeeff"]
epoch = 5
max_epoch_age = 4

[[steering.destinations]]
id = 7
next_hop = "steer-gw"
"#;

fn run(
    trusted: bool,
    flows: usize,
    steered: f64,
    faults: f64,
    packets: u64,
) -> (Value, Vec<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.pcap");
    let text = BASE
        .replace("TRUSTED", &trusted.to_string())
        .replace("FLOWS", &flows.to_string())
        .replace("STEERED", &steered.to_string())
        .replace("FAULTS", &faults.to_string())
        .replace("PACKETS", &packets.to_string())
        .replace("OUT", &out.display().to_string());
    let cfg = Config::from_toml(&text, "faults.toml", Path::new("."), false).unwrap();
    let json = dir.path().join("s.json");
    let opts = RunOptions {
        duration: Some(std::time::Duration::from_secs(60)),
        json: Some(json.clone()),
        quiet: true,
        ..RunOptions::default()
    };
    Appliance::build(cfg, &opts).unwrap().run(&opts).unwrap();
    let v: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let d = std::fs::read(&out).unwrap();
    let mut frames = Vec::new();
    let mut off = 24;
    while off + 16 <= d.len() {
        let n = u32::from_le_bytes([d[off + 8], d[off + 9], d[off + 10], d[off + 11]]) as usize;
        frames.push(d[off + 16..off + 16 + n].to_vec());
        off += 16 + n;
    }
    (v, frames)
}

fn n(v: &Value, k: &str) -> u64 {
    v.pointer(k).and_then(Value::as_u64).unwrap_or(0)
}

#[test]
fn every_fault_kind_is_counted_under_its_reason() {
    // 70 flows, all faulty, cycling through the 7 fault kinds: 10 flows each, and 7000
    // packets = 100 per flow = 1000 per kind.
    let (v, frames) = run(true, 70, 0.0, 1.0, 7000);
    assert_eq!(n(&v, "/rx_packets"), 7000);
    assert_eq!(n(&v, "/drops/ttl_expired"), 1000, "{v}");
    assert_eq!(n(&v, "/drops/truncated_ipv4"), 1000, "{v}");
    assert_eq!(n(&v, "/drops/bad_ipv4_checksum"), 1000, "{v}");
    assert_eq!(n(&v, "/drops/bad_ipv4_version"), 1000, "{v}");
    // Forged, stale and unknown-destination headers: routed by LPM, never steered.
    assert_eq!(n(&v, "/steering_fallbacks/bad_tag"), 1000, "{v}");
    assert_eq!(n(&v, "/steering_fallbacks/stale_epoch"), 1000, "{v}");
    assert_eq!(n(&v, "/steering_fallbacks/unknown_dest"), 1000, "{v}");
    assert_eq!(n(&v, "/steered_packets"), 0, "{v}");
    assert_eq!(n(&v, "/routed_packets"), 3000, "{v}");
    assert_eq!(n(&v, "/tx_packets"), 3000);
    assert!(v["accounted"].as_bool().unwrap());
    // The LPM next hop, not the steering one, and the header is gone toward the host.
    for f in &frames {
        assert_eq!(&f[0..6], &[2, 0, 0, 0, 9, 1], "routed by LPM to gw");
        assert_eq!(&f[12..14], &[0x08, 0x00], "NSH removed on egress");
    }
}

#[test]
fn valid_headers_are_steered_and_stripped() {
    let (v, frames) = run(true, 64, 1.0, 0.0, 6400);
    assert_eq!(n(&v, "/steered_packets"), 6400, "{v}");
    assert_eq!(n(&v, "/routed_packets"), 0, "{v}");
    assert_eq!(frames.len(), 6400);
    for f in &frames {
        assert_eq!(
            &f[0..6],
            &[2, 0, 0, 0, 9, 2],
            "steered to the steering entry's next hop"
        );
        assert_eq!(
            &f[6..12],
            &[2, 0, 0, 0, 0, 0x21],
            "source MAC is the egress port's"
        );
        assert_eq!(
            &f[12..14],
            &[0x08, 0x00],
            "NSH removed toward the plain host"
        );
        assert_eq!(f[14] >> 4, 4);
        assert_eq!(f[14 + 8], 63, "TTL 64 - 1");
        // header checksum valid
        let mut s: u32 = 0;
        for c in f[14..34].chunks(2) {
            s += u16::from_be_bytes([c[0], c[1]]) as u32;
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        assert_eq!(s, 0xffff);
    }
}

#[test]
fn headers_from_untrusted_ports_are_never_steered() {
    let (v, _) = run(false, 64, 1.0, 0.0, 6400);
    assert_eq!(n(&v, "/steered_packets"), 0, "{v}");
    assert_eq!(n(&v, "/steering_fallbacks/untrusted_port"), 6400, "{v}");
    assert_eq!(n(&v, "/routed_packets"), 6400, "{v}");
}
