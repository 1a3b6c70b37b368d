//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

pub mod running;

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
