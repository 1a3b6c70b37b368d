//! Forwarding tables and their publication.
//!
//! [`Tables`] is an immutable snapshot: routes (LPM v4/v6, next hops, ECMP), the
//! steering table and per-port forwarding flags. Writers (config load, reload, ctl,
//! RAM) build a new snapshot off the fast path and [`TableHandle::publish`] it.
//!
//! Workers read through a [`TableReader`]: once per burst they compare one atomic
//! generation number; only when it changed do they take the new `Arc` (lock-free via
//! arc-swap). A swap loses no packets: a burst is processed entirely with the snapshot
//! it started with.
//!
//! Freeing an old snapshot (the IPv4 table alone is 64 MiB) must not happen on a worker,
//! where it would be a syscall on the fast path. So the publisher keeps every retired
//! snapshot until all workers have reported (after dropping their reference) that they
//! moved past it; only then does [`TableHandle::reclaim`], on the publisher's thread,
//! drop the last reference.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use crossbeam::utils::CachePadded;

use crate::route::RouteTable;
use crate::steering::SteeringTable;

/// Per-port forwarding flags the fast path needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortFlags {
    /// Steering headers arriving on this port may be honoured.
    pub trusted: bool,
    /// Remove the steering header from packets leaving this port (toward plain hosts).
    pub strip_nsh: bool,
    /// Largest IP packet (L3 bytes) the port sends.
    pub mtu: u16,
}

/// One immutable snapshot of everything the fast path looks up.
pub struct Tables {
    /// LPM tables and next hops.
    pub routes: RouteTable,
    /// Steering destinations, keys and epoch.
    pub steering: SteeringTable,
    /// Flags per port index.
    pub ports: Vec<PortFlags>,
    /// Telemetry destination index per next hop (for routed traffic).
    pub nh_dest: Vec<u16>,
}

/// Shared handle through which tables are published and read.
pub struct TableHandle {
    current: ArcSwap<Tables>,
    generation: CachePadded<AtomicU64>,
    seen: Box<[CachePadded<AtomicU64>]>,
    retired: Mutex<Vec<(u64, Arc<Tables>)>>,
}

impl TableHandle {
    /// A handle for `workers` readers, starting with `t` at generation 1.
    pub fn new(t: Tables, workers: usize) -> Arc<Self> {
        Arc::new(TableHandle {
            current: ArcSwap::from_pointee(t),
            generation: CachePadded::new(AtomicU64::new(1)),
            seen: (0..workers)
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
            retired: Mutex::new(Vec::new()),
        })
    }

    /// The current snapshot (cold readers: ctl, stats, RAM).
    pub fn load(&self) -> Arc<Tables> {
        self.current.load_full()
    }

    /// Current generation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Publishes a new snapshot and returns its generation. The old one is retired and
    /// freed by a later [`TableHandle::reclaim`] once no worker can hold it.
    pub fn publish(&self, t: Tables) -> u64 {
        let mut retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.current.swap(Arc::new(t));
        let g = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        retired.push((g, old));
        drop(retired);
        self.reclaim();
        g
    }

    /// Drops retired snapshots no worker can still be using. Returns how many remain.
    pub fn reclaim(&self) -> usize {
        let min_seen = self
            .seen
            .iter()
            .map(|s| s.load(Ordering::Acquire))
            .min()
            .unwrap_or(u64::MAX);
        let mut retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        // A snapshot retired by generation g was current before g; a worker that has seen
        // g (or later) has dropped it.
        retired.retain(|(g, _)| *g > min_seen);
        retired.len()
    }

    /// Marks worker `w` as gone (it will never read again), so reclaim does not wait for it.
    pub fn retire_reader(&self, w: usize) {
        if let Some(s) = self.seen.get(w) {
            s.store(u64::MAX, Ordering::Release);
        }
    }

    /// A reader for worker `w`.
    pub fn reader(self: &Arc<Self>, w: usize) -> TableReader {
        let g = self.generation();
        let t = self.current.load_full();
        if let Some(s) = self.seen.get(w) {
            s.store(g, Ordering::Release);
        }
        TableReader {
            handle: Arc::clone(self),
            worker: w,
            generation: g,
            tables: t,
        }
    }
}

/// A worker's view of the tables.
pub struct TableReader {
    handle: Arc<TableHandle>,
    worker: usize,
    generation: u64,
    tables: Arc<Tables>,
}

impl TableReader {
    /// Picks up a newer snapshot if one was published (one atomic load when none was).
    #[inline]
    pub fn refresh(&mut self) {
        let g = self.handle.generation.load(Ordering::Acquire);
        if g != self.generation {
            self.swap(g);
        }
    }

    #[cold]
    fn swap(&mut self, g: u64) {
        let new = self.handle.current.load_full();
        let old = std::mem::replace(&mut self.tables, new);
        // Drop our reference before reporting, so the publisher's is the last one.
        drop(old);
        self.generation = g;
        if let Some(s) = self.handle.seen.get(self.worker) {
            s.store(g, Ordering::Release);
        }
    }

    /// The snapshot in use.
    #[inline]
    pub fn get(&self) -> &Tables {
        &self.tables
    }

    /// Generation of the snapshot in use.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}
