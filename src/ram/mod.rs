//! RAM, the Resource Allocation Manager: turns predictions into configuration before the
//! traffic arrives (cold: the RAM's thread; never a worker).
//!
//! - [`topology`]: the `[ram]` section — sites in a hierarchy region → zone → data
//!   center, transit routers, links with latency, cost and capacity, destination → site.
//! - [`path`]: path computation over predicted load (latency + cost + congestion), with a
//!   backup path per destination.
//! - [`plan`]: how many workers each data center keeps awake and which destinations get
//!   steering entries — predictive (lead time), reactive (thresholds) or static (peak) —
//!   with hysteresis on release and budgets handed down the hierarchy.
//! - [`sim`] (with the `tpe` feature): `steerd run --scenario`, the closed loop
//!   generator → marker → SAFE → telemetry → TPE → RAM → tables, measured.
//! - [`timeline`]: `steerd ram timeline --plot`, predicted demand, actual traffic and
//!   capacity over a run.
//! - [`steer`]: the steering table of a plan (one entry per steered destination, on
//!   its primary path's first next hop), shared by [`sim`] and [`live`].
//! - [`weights`]: with `set_tx_weights`, the transmit class weights of the ports its
//!   steering next hops leave on, from the demand it expects per class there.
//! - [`live`]: the RAM inside `steerd run` (`[ram] live = true`, the `steerd-ram`
//!   thread): measured telemetry and the TPE's forecast in, steering tables and the
//!   workers' standby flags out.
//!
//! The RAM publishes steering tables like the other writers (config reload, ctl, the
//! control plane): it builds a new [`crate::safe::tables::Tables`] off the fast path with
//! [`crate::safe::tables::Tables::with_steering`] and swaps it in through the
//! [`crate::safe::tables::TableHandle`]; workers pick it up between bursts. While the
//! live RAM runs it owns the steering table (docs/design.md "Who publishes tables").

#[cfg(feature = "tpe")]
pub mod cli;
pub mod live;
pub mod path;
pub mod plan;
#[cfg(feature = "tpe")]
pub mod sim;
pub mod steer;
pub mod timeline;
pub mod topology;
pub mod weights;

pub use topology::{RamConfig, RamMode, Topology};
