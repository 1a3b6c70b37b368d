//! SAFE — the steering-aware forwarding engines: per-core poll loops (hot).
//!
//! Owns: the worker loop ([`worker`]), burst processing ([`pipeline`]), transmit
//! staging by priority ([`tx`]), per-core counters ([`counters`]), drop reasons
//! ([`drop`]), the published forwarding tables ([`tables`]) and the rings to the
//! control plane ([`punt`]).
//!
//! Invariant: once started, a worker never allocates, locks, logs or blocks; it reads
//! tables through one atomic generation check per burst and publishes its counters with
//! relaxed stores. For every packet received: received = sent + counted drops + handed to
//! the control plane (+ what is still staged while running; nothing after the drain on
//! stop).

pub mod counters;
pub mod drop;
pub mod pipeline;
pub mod punt;
pub mod tables;
pub mod tx;
pub mod worker;

pub use counters::{Local, MAX_PORTS, WorkerStats};

/// Most forwarding workers a run takes (DPDK's default `RTE_MAX_LCORE`). Each worker
/// owns a buffer pool and a queue per port, so a mistyped count would otherwise take
/// gigabytes before it forwarded anything.
pub const MAX_WORKERS: usize = 128;
pub use drop::DropReason;
pub use pipeline::{BURST, Mode};
pub use tables::{NhKind, NhL2, PortFlags, TableHandle, TableReader, Tables};
