//! Control plane (cold, never on the fast path): watching, changing and stopping a
//! running appliance.
//!
//! Threads:
//! - the controller ([`monitor`], the thread that called `Appliance::run`): stop
//!   decisions, latency histograms from the workers, rates, the stats lines or the live
//!   screen ([`screen`]);
//! - `ctl` ([`server`], mio): Prometheus `/metrics` and JSON `/status` over HTTP
//!   ([`http`], [`metrics`]), the `steerd ctl` Unix socket ([`proto`]), SIGHUP reloads,
//!   table changes ([`ops`]) built from the control plane's route list ([`routes`]).
//!
//! Invariants: workers never wait on either thread. They publish counters with relaxed
//! stores and pick up tables published with `TableHandle::publish` between bursts; the
//! controller and `ctl` share the merged latency histograms behind a mutex (cold only).
//! A failed change leaves the tables, the running config and the route list untouched.

pub mod client;
pub mod http;
pub mod metrics;
pub mod monitor;
pub mod ops;
pub mod proto;
pub mod routes;
pub mod screen;
pub mod server;
pub mod signals;
pub mod tpe;

use std::path::PathBuf;

pub use metrics::MetricsRegistry;
pub use server::{CtlThread, Listeners};

/// Where `steerd run` serves metrics unless told otherwise.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9477";

/// The ctl socket `steerd run` and `steerd ctl` use unless told otherwise:
/// `/run/steerd/ctl.sock` for root, else `$XDG_RUNTIME_DIR/steerd.sock`, else
/// `/tmp/steerd-$UID.sock`.
pub fn default_socket_path() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        return PathBuf::from("/run/steerd/ctl.sock");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("steerd.sock"),
        _ => PathBuf::from(format!("/tmp/steerd-{uid}.sock")),
    }
}
