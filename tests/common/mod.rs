//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

pub mod running;

/// The two pcap ports of a `steerd mark` test: `in` replays `plain.pcap`, `out` writes
/// `marked.pcap` (paths relative to the config file).
pub const MARK_PCAP_PORTS: &str = r#"
[[ports]]
name = "in"
backend = "pcap"
rx_file = "plain.pcap"
[[ports]]
name = "out"
backend = "pcap"
tx_file = "marked.pcap"
"#;

/// A finished command's stdout and stderr, in that order, as text (for messages and
/// assertions).
pub fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Writes `frames` to a pcap file at `p`, one microsecond apart.
pub fn write_pcap(p: &std::path::Path, frames: &[Vec<u8>]) {
    let f = std::fs::File::create(p).unwrap();
    let mut w = steerd::wire::pcap::PcapWriter::new(std::io::BufWriter::new(f), 65535).unwrap();
    for (i, fr) in frames.iter().enumerate() {
        w.write_packet(1_700_000_000, i as u32, fr).unwrap();
    }
    w.flush().unwrap();
}

/// True when running under CI (`CI=true`), where a skip is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Skips the calling test with a printed reason, or fails it under CI.
pub fn skip(reason: &str) {
    if in_ci() {
        panic!("CI=true and this test cannot run: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A capture fetched by scripts/get-captures.sh, if present.
pub fn capture(name: &str) -> Option<PathBuf> {
    let p = root().join("captures").join(name);
    p.exists().then_some(p)
}

/// True when `tool` is on PATH.
pub fn have(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null 2>&1")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
pub mod golden;
