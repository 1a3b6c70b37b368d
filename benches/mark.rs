//! Cost of the packet marker per packet, side by side in one run (ratios, not absolute
//! times, are what to compare on a noisy machine):
//! - `classify`: `wire::classify` alone (the parse every path does);
//! - `mark`: `Marker::mark` on a known flow (parse, flow-table hit, SipHash tag, header
//!   insertion into the headroom);
//! - `mark_miss`: the same with more flows than the flow table holds (classification on
//!   every packet, clock eviction);
//! - `mark_with`: explicit parameters (no flow table).
//!
//! `cargo bench --bench mark` prints one JSON object; STEERD_BENCH_PACKETS (default
//! 2,000,000) per case.

use std::hint::black_box;
use std::time::Instant;

use steerd::ipm::{MarkParams, Marker, MarkerConfig, Prefix};
use steerd::port::{Buf, PktBuf};
use steerd::steering::Key;

fn frame(i: u32) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 1, 2], [2, 0, 0, 0, 1, 1])
        .ipv4([10, 1, (i >> 8) as u8, i as u8], [198, 18, 0, 1], 64)
        .udp(40000 + (i % 1000) as u16, 5201);
    let mut v = Vec::new();
    b.write(&mut v, &[0u8; 18]).expect("frame");
    v
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: u64 = if quick {
        10_000
    } else {
        std::env::var("STEERD_BENCH_PACKETS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2_000_000)
    };
    let mk = |flows: usize| {
        let mut c = MarkerConfig::new(
            vec![(Prefix::parse("198.18.0.0/16").expect("prefix"), 1)],
            Key::from_bytes([7; 16]),
        );
        c.flow_capacity = flows;
        Marker::new(c).expect("marker")
    };
    let few: Vec<Vec<u8>> = (0..64).map(frame).collect();
    let many: Vec<Vec<u8>> = (0..16_384).map(frame).collect();
    let mut b = PktBuf::new();
    let mut run = |name: &str, frames: &[Vec<u8>], f: &mut dyn FnMut(&mut PktBuf)| {
        let t0 = Instant::now();
        for i in 0..n {
            b.fill(&frames[i as usize % frames.len()]);
            f(&mut b);
            black_box(b.data());
        }
        let ns = t0.elapsed().as_nanos() as f64 / n as f64;
        (name.to_string(), ns)
    };
    let mut m1 = mk(65_536);
    let mut m2 = mk(1024);
    let mut m3 = mk(16);
    let p = MarkParams::new(1, 3, 0, 1);
    let fill_only = run("fill", &few, &mut |_| {});
    let results = [
        run("classify", &few, &mut |b| {
            black_box(steerd::wire::classify(b.data()).is_ok());
        }),
        run("mark", &few, &mut |b| {
            black_box(m1.mark(b));
        }),
        run("mark_miss", &many, &mut |b| {
            black_box(m2.mark(b));
        }),
        run("mark_with", &few, &mut |b| {
            black_box(m3.mark_with(b, &p).is_ok());
        }),
    ];
    let mut o = serde_json::Map::new();
    o.insert("packets_per_case".into(), n.into());
    o.insert(
        "build".into(),
        (if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        })
        .into(),
    );
    o.insert("fill_ns".into(), fill_only.1.into());
    for (k, ns) in &results {
        o.insert(format!("{k}_ns"), (ns - fill_only.1).max(0.0).into());
    }
    let c = (results[0].1 - fill_only.1).max(1e-9);
    o.insert(
        "mark_to_classify".into(),
        ((results[1].1 - fill_only.1) / c).into(),
    );
    o.insert(
        "flow_hit_rate_mark_miss".into(),
        (m2.stats().flow_hits as f64 / m2.stats().packets.max(1) as f64).into(),
    );
    println!("{}", serde_json::Value::Object(o));
}
