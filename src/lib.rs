//! # steerd — a predictive, steering-aware poll-mode forwarding appliance
//!
//! Module map (hot = on the per-packet fast path; cold = set-up or control threads):
//!
//! | module | owns | hot/cold |
//! | --- | --- | --- |
//! | [`wire`] | checked packet views and `Repr`s: Ethernet, ARP, IPv4, IPv6, UDP, TCP, ICMP, NSH | hot |
//! | [`route`] | IPv4 DIR-24-8 and IPv6 LPM, next hops, ECMP groups, routes files | hot lookups, cold builds |
//! | [`port`] | the `RxQueue`/`TxQueue` traits, buffers and pools, port backends | hot |
//! | [`safe`] | worker loops, burst pipeline, tx staging, counters, table publication | hot |
//! | [`steering`] | steering table, keys, header authentication | hot lookups |
//! | [`telemetry`] | per-worker per-destination counters | hot writes, cold reads |
//! | [`ipm`] | the packet marker: flow classification, steering header insertion, `steerd mark` | hot marking, cold set-up |
//! | [`cp`] | control plane: ARP/ND, neighbour table, echo, ICMP errors, held packets | cold (own thread) |
//! | [`config`] | typed, validated configuration | cold |
//! | [`app`] | building ports/tables/workers from config, running, summaries | cold |
//! | [`ctl`] | control plane: controller loop, live screen, metrics, status, ctl socket, reload | cold |
//! | [`bench`] | the in-memory benchmark harness behind `steerd bench` | cold |
//! | [`panics`] | panic policy: abort, except inside `contain` (model code on the TPE threads) | cold |
//!
//! Rules of the fast path (see docs/design.md):
//! 1. Bursts of 32 everywhere; the clock is read at most once per burst.
//! 2. No allocation, no locks, no syscalls except a port's own I/O, no logging after start-up.
//! 3. Share nothing: each core owns its pool, queues and counters (cache-padded).
//! 4. Untrusted bytes go through checked constructors; a malformed packet is a counted
//!    drop with a `DropReason`, never a panic.
//! 5. `unsafe` only in port backends, buffer pools and rings, each with a `// SAFETY:` comment.
#![warn(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod app;
pub mod bench;
pub mod config;
pub mod cp;
pub mod ctl;
pub mod ipm;
pub mod panics;
pub mod port;
pub mod ram;
pub mod route;
pub mod safe;
pub mod steering;
pub mod telemetry;
#[cfg(feature = "tpe")]
pub mod tpe;
pub mod wire;
