//! Throughput harness: the in-memory pipeline on every path, side by side in one run.
//!
//! `cargo bench --bench pipeline` prints one JSON object per line:
//! 1. io vs lpm vs steer, 1 worker, 64 B, 1 route;
//! 2. the same on a 1M-prefix BGP-like table;
//! 3. lpm with 1 and 2 workers (scaling).
//!
//! Set STEERD_BENCH_SECS (default 3) and STEERD_BENCH_REPEAT (default 3) to change the
//! length. The same runs are available as `steerd bench`.

use steerd::bench::{BenchOptions, run};

fn env(k: &str, d: f64) -> f64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn main() {
    // `cargo test --benches` runs this binary too; keep it quick there.
    let quick = std::env::args().any(|a| a == "--test" || a == "--list");
    let secs = if quick {
        0.2
    } else {
        env("STEERD_BENCH_SECS", 3.0)
    };
    let repeat = if quick {
        1
    } else {
        env("STEERD_BENCH_REPEAT", 3.0) as usize
    };
    let base = BenchOptions {
        paths: vec!["io".into(), "lpm".into(), "steer".into()],
        routes: 1,
        workers: 1,
        size: 64,
        duration: secs,
        repeat,
        flows: 8192,
        ..BenchOptions::default()
    };
    let mut cases = vec![base.clone()];
    if !quick {
        cases.push(BenchOptions {
            routes: 1_000_000,
            ..base.clone()
        });
        for w in [1, 2] {
            cases.push(BenchOptions {
                paths: vec!["lpm".into()],
                routes: 1_000_000,
                workers: w,
                ..base.clone()
            });
        }
    }
    for c in cases {
        match run(&c) {
            Ok(v) => {
                let mut v = v;
                if let Some(o) = v.as_object_mut() {
                    o.remove("runs");
                }
                println!("{v}");
            }
            Err(e) => {
                eprintln!("bench failed: {e}");
                std::process::exit(1);
            }
        }
    }
}
