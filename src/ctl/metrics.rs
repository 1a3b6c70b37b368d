//! The metrics registry and the SAFE collector (cold; encoded on the `ctl` thread at
//! each scrape).
//!
//! One [`MetricsRegistry`] per appliance, a `prometheus-client` registry with the prefix
//! `steerd` behind a mutex. Components register in it when they are built:
//! - SAFE (workers, ports, tables, latency) registers a [`SafeCollector`], which reads
//!   the workers' published counters (`WorkerStats` snapshots: relaxed loads, no lock on
//!   any worker) and the controller's merged latency histograms at scrape time;
//! - the control plane registers its own counters (`ctl_commands`, `reloads`);
//! - the TPE (when `[tpe] enabled`) registers its collector in the sub-registry `tpe`
//!   (`crate::tpe::live`; names `steerd_tpe_…`), read from the engine's last published
//!   stats; RAM, when it lands, does the same under `ram`. Nothing is exported on behalf
//!   of a component that does not run.
//!
//! Names follow Prometheus conventions: counters end in `_total` (added by the encoder),
//! times are in seconds, every known drop and fallback reason is exported (zeros
//! included) so `rate()` works from the first scrape. The list is in docs/ctl.md.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::monitor::{SharedLive, lock};
use crate::port::PortCounters;
use crate::safe::counters::{Local, WorkerStats};
use crate::safe::tables::TableHandle;
use crate::safe::tx::N_CLASSES;
use crate::safe::{DropReason, MAX_PORTS};
use crate::steering::Fallback;

/// Bucket upper bounds of the latency histogram, in seconds.
pub const LATENCY_BUCKETS_S: [f64; 18] = [
    250e-9, 500e-9, 1e-6, 2.5e-6, 5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3,
    5e-3, 10e-3, 25e-3, 100e-3, 1.0,
];

/// The appliance's metrics registry (shared; lock only from cold threads).
#[derive(Clone)]
pub struct MetricsRegistry {
    inner: Arc<Mutex<Registry>>,
}

impl Default for MetricsRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MetricsRegistry")
    }
}

impl MetricsRegistry {
    /// An empty registry with the `steerd` prefix.
    pub fn new() -> Self {
        MetricsRegistry {
            inner: Arc::new(Mutex::new(Registry::with_prefix("steerd"))),
        }
    }

    /// Runs `f` on the registry (to register metrics or take a sub-registry).
    pub fn with<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        let mut r = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut r)
    }

    /// Registers a collector, encoded at every scrape.
    pub fn register_collector(&self, c: Box<dyn Collector>) {
        self.with(|r| r.register_collector(c));
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn encode_prometheus(&self) -> String {
        let mut s = String::with_capacity(16 * 1024);
        self.with(|r| prometheus_client::encoding::prometheus_text::encode(&mut s, r))
            .expect("writing to a String does not fail");
        s
    }

    /// The OpenMetrics text exposition.
    pub fn encode_openmetrics(&self) -> String {
        let mut s = String::with_capacity(16 * 1024);
        self.with(|r| prometheus_client::encoding::text::encode(&mut s, r))
            .expect("writing to a String does not fail");
        s
    }
}

/// Content type of [`MetricsRegistry::encode_prometheus`].
pub const PROMETHEUS_CONTENT_TYPE: &str =
    prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// Content type of [`MetricsRegistry::encode_openmetrics`].
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Reads the forwarding plane's counters at scrape time.
pub struct SafeCollector {
    /// Per-worker counters.
    pub stats: Vec<Arc<WorkerStats>>,
    /// Port names and backends, by index.
    pub ports: Vec<(String, String)>,
    /// Per-queue counters of Linux interface ports.
    pub port_counters: Vec<Arc<PortCounters>>,
    /// Published tables.
    pub tables: Arc<TableHandle>,
    /// Latency and rates from the controller.
    pub live: SharedLive,
    /// Start of the run.
    pub start: Instant,
}

impl fmt::Debug for SafeCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SafeCollector")
            .field("workers", &self.stats.len())
            .finish()
    }
}

/// Labels of one sample.
pub(crate) type Labels = Vec<(&'static str, String)>;

/// Encodes one counter without labels.
pub(crate) fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> fmt::Result {
    e.encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&v, None)
}

/// Encodes one gauge without labels.
pub(crate) fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> fmt::Result {
    e.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&v)
}

fn family<V>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: impl IntoIterator<Item = (Labels, V)>,
    mut put: impl FnMut(&mut MetricEncoder, &V) -> fmt::Result,
) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, kind)?;
    for (labels, v) in rows {
        let mut f = m.encode_family(&labels)?;
        put(&mut f, &v)?;
    }
    Ok(())
}

fn counters(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, u64)>,
) -> fmt::Result {
    family(e, name, help, MetricType::Counter, rows, |m, v| {
        m.encode_counter::<NoLabelSet, _, u64>(v, None)
    })
}

/// Encodes a gauge family.
pub(crate) fn gauges(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, f64)>,
) -> fmt::Result {
    family(e, name, help, MetricType::Gauge, rows, |m, v| {
        m.encode_gauge(v)
    })
}

impl Collector for SafeCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let per: Vec<Local> = self.stats.iter().map(|s| s.snapshot()).collect();
        let mut t = Local::default();
        for l in &per {
            t.add(l);
        }
        let e = &mut e;
        counter(e, "rx_packets", "Packets received, all ports", t.rx)?;
        counter(e, "tx_packets", "Packets transmitted, all ports", t.tx)?;
        counter(e, "tx_bytes", "Bytes transmitted, all ports", t.tx_bytes)?;
        counters(
            e,
            "forwarded_packets",
            "Packets forwarded, by path: steered (steering table) or routed (LPM)",
            [
                (vec![("path", "steered".to_string())], t.steered),
                (vec![("path", "routed".to_string())], t.routed),
            ],
        )?;
        counters(
            e,
            "drops",
            "Packets dropped, by reason",
            (0..DropReason::COUNT).map(|i| {
                let r = DropReason::from_index(i).expect("index in range");
                (vec![("reason", r.as_str().to_string())], t.drops[i])
            }),
        )?;
        counters(
            e,
            "steering_fallbacks",
            "Packets with a steering header routed by LPM instead, by reason",
            Fallback::ALL.map(|f| {
                (
                    vec![("reason", f.as_str().to_string())],
                    t.fallback[f as usize],
                )
            }),
        )?;
        let n_ports = self.ports.len().min(MAX_PORTS);
        let port_labels = |i: usize| -> Labels {
            vec![
                ("port", self.ports[i].0.clone()),
                ("backend", self.ports[i].1.clone()),
            ]
        };
        counters(
            e,
            "port_rx_packets",
            "Packets received per port",
            (0..n_ports).map(|i| (port_labels(i), t.port_rx[i])),
        )?;
        counters(
            e,
            "port_tx_packets",
            "Packets transmitted per port",
            (0..n_ports).map(|i| (port_labels(i), t.port_tx[i])),
        )?;
        let class_labels = |c: usize| -> Labels { vec![("class", c.to_string())] };
        counters(
            e,
            "class_tx_packets",
            "Packets transmitted per priority class (0 = lowest), all ports",
            (0..N_CLASSES).map(|c| (class_labels(c), t.class_tx[c])),
        )?;
        counters(
            e,
            "class_tx_drops",
            "Packets of each priority class dropped at transmit (tx_full, tx_rate), all ports",
            (0..N_CLASSES).map(|c| (class_labels(c), t.class_drops[c])),
        )?;
        let wl = |w: usize| -> Labels { vec![("worker", w.to_string())] };
        type Field = fn(&Local) -> u64;
        let worker_fields: [(&str, &str, Field); 5] = [
            ("worker_rx_packets", "Packets received per worker", |l| l.rx),
            ("worker_tx_packets", "Packets transmitted per worker", |l| {
                l.tx
            }),
            (
                "worker_handoff_packets",
                "Packets handed to this worker by the distributor (software RSS)",
                |l| l.rx_handoff,
            ),
            (
                "worker_busy_polls",
                "Poll-loop iterations that received packets",
                |l| l.busy_polls,
            ),
            (
                "worker_idle_polls",
                "Poll-loop iterations that received nothing",
                |l| l.idle_polls,
            ),
        ];
        for (name, help, f) in worker_fields {
            counters(
                e,
                name,
                help,
                per.iter().enumerate().map(|(w, l)| (wl(w), f(l))),
            )?;
        }
        let wp = |w: usize, p: usize| -> Labels {
            vec![("worker", w.to_string()), ("port", self.ports[p].0.clone())]
        };
        counters(
            e,
            "worker_port_rx_packets",
            "Packets received per worker and port (one receive queue each on multi-queue ports)",
            per.iter()
                .enumerate()
                .flat_map(|(w, l)| (0..n_ports).map(move |p| (w, p, l.port_rx[p])))
                .map(|(w, p, v)| (wp(w, p), v)),
        )?;
        counters(
            e,
            "worker_port_tx_packets",
            "Packets transmitted per worker and port (one transmit queue each)",
            per.iter()
                .enumerate()
                .flat_map(|(w, l)| (0..n_ports).map(move |p| (w, p, l.port_tx[p])))
                .map(|(w, p, v)| (wp(w, p), v)),
        )?;
        self.encode_queues(e)?;
        let tables = self.tables.load();
        gauge(e, "workers", "Forwarding workers", per.len() as f64)?;
        gauge(
            e,
            "uptime_seconds",
            "Seconds since the run started",
            self.start.elapsed().as_secs_f64(),
        )?;
        gauge(
            e,
            "table_generation",
            "Generation of the published forwarding tables (bumps at each publication)",
            self.tables.generation() as f64,
        )?;
        gauges(
            e,
            "routes",
            "Routes in the published table, by family",
            [
                (
                    vec![("family", "ipv4".to_string())],
                    tables.routes.v4.len() as f64,
                ),
                (
                    vec![("family", "ipv6".to_string())],
                    tables.routes.v6.len() as f64,
                ),
            ],
        )?;
        gauge(
            e,
            "steering_destinations",
            "Destinations in the published steering table",
            tables.steering.len() as f64,
        )?;
        gauge(
            e,
            "steering_epoch",
            "Epoch of the published steering table",
            tables.steering.epoch as f64,
        )?;
        drop(tables);
        let l = lock(&self.live);
        gauge(
            e,
            "stopping",
            "1 while the run drains before exit",
            if l.stopping { 1.0 } else { 0.0 },
        )?;
        gauges(
            e,
            "latency_quantile_seconds",
            "Latency (receive to transmit) over the last stats interval, by quantile",
            [0.5, 0.9, 0.99, 0.999].map(|q| {
                (
                    vec![("quantile", q.to_string())],
                    l.last_window.value_at_quantile(q) as f64 * 1e-9,
                )
            }),
        )?;
        let h = &l.total;
        let mut buckets = Vec::with_capacity(LATENCY_BUCKETS_S.len());
        let mut below = 0u64;
        for b in LATENCY_BUCKETS_S {
            let ns = (b * 1e9) as u64;
            let upto = if h.is_empty() {
                0
            } else {
                h.count_between(0, ns)
            };
            buckets.push((b, upto.saturating_sub(below)));
            below = upto.max(below);
        }
        let count = h.len();
        let sum = h.mean() * count as f64 * 1e-9;
        e.encode_descriptor(
            "latency_seconds",
            "Latency from receive to transmit, per flushed batch, since start",
            None,
            MetricType::Histogram,
        )?
        .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        Ok(())
    }
}

impl SafeCollector {
    /// Per-queue counters of Linux interface ports (tap, afpacket, afxdp).
    fn encode_queues(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        if self.port_counters.is_empty() {
            return Ok(());
        }
        let ql = |p: &PortCounters, q: usize| -> Labels {
            vec![("port", p.name.clone()), ("queue", q.to_string())]
        };
        use std::sync::atomic::Ordering::Relaxed;
        type RxF = fn(&crate::port::stats::RxCounters) -> &std::sync::atomic::AtomicU64;
        type TxF = fn(&crate::port::stats::TxCounters) -> &std::sync::atomic::AtomicU64;
        let rx: [(&str, &str, RxF); 5] = [
            (
                "queue_rx_packets",
                "Packets read from a receive queue",
                |c| &c.packets,
            ),
            ("queue_rx_bytes", "Bytes read from a receive queue", |c| {
                &c.bytes
            }),
            (
                "queue_rx_kernel_drops",
                "Packets the kernel dropped because a receive queue was not read fast enough",
                |c| &c.drops,
            ),
            (
                "queue_rx_truncated",
                "Frames delivered cut short (dropped)",
                |c| &c.truncated,
            ),
            (
                "queue_rx_errors",
                "Read errors and malformed ring entries",
                |c| &c.errors,
            ),
        ];
        for (name, help, f) in rx {
            counters(
                e,
                name,
                help,
                self.port_counters.iter().flat_map(|p| {
                    p.rx.iter()
                        .enumerate()
                        .map(move |(q, c)| (ql(p, q), f(c).load(Relaxed)))
                }),
            )?;
        }
        let tx: [(&str, &str, TxF); 5] = [
            (
                "queue_tx_packets",
                "Packets handed to a transmit queue",
                |c| &c.packets,
            ),
            ("queue_tx_bytes", "Bytes handed to a transmit queue", |c| {
                &c.bytes
            }),
            (
                "queue_tx_full",
                "Bursts cut short by a full transmit queue",
                |c| &c.full,
            ),
            (
                "queue_tx_errors",
                "Packets a transmit queue discarded",
                |c| &c.errors,
            ),
            (
                "queue_tx_discarded",
                "Packets a transmit queue had taken and discarded unsent (no carrier)",
                |c| &c.discarded,
            ),
        ];
        for (name, help, f) in tx {
            counters(
                e,
                name,
                help,
                self.port_counters.iter().flat_map(|p| {
                    p.tx.iter()
                        .enumerate()
                        .map(move |(q, c)| (ql(p, q), f(c).load(Relaxed)))
                }),
            )?;
        }
        Ok(())
    }
}
