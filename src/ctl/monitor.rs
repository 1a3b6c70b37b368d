//! The controller loop (cold; the calling thread of `Appliance::run`): collects the
//! workers' latency histograms, decides when to stop, computes rates once per stats
//! interval and shows them (plain lines, the live screen, or nothing).
//!
//! Hand-off to the `ctl` thread: the controller is the only reader of the histogram
//! rings; it merges what it collects into [`Live`] behind a mutex, which the `ctl`
//! thread locks for a scrape or a status. Both are cold threads; workers never see the
//! lock.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::screen::{self, ScreenInfo};
use super::signals;
use crate::safe::counters::{Local, WorkerStats};
use crate::safe::worker::{Hist, RunControl};
use crate::safe::{DropReason, MAX_PORTS};

/// Rates over the last completed stats interval.
#[derive(Clone, Debug, Default)]
pub struct Rates {
    /// Time since start at the end of the interval.
    pub elapsed: Duration,
    /// Length of the interval in seconds (0 before the first one completes).
    pub interval_s: f64,
    /// Packets received per second.
    pub rx_pps: f64,
    /// Packets sent per second.
    pub tx_pps: f64,
    /// Share of forwarded packets that were steered, in percent.
    pub steered_pct: f64,
    /// Per port: (rx pps, tx pps).
    pub ports: Vec<(f64, f64)>,
    /// Per worker: (rx pps, tx pps, busy polls in percent of polls).
    pub workers: Vec<(f64, f64, f64)>,
    /// Drops per second by reason index.
    pub drops_ps: Vec<f64>,
}

/// What the controller shares with the `ctl` thread.
pub struct Live {
    /// Latency since start (ns).
    pub total: Histogram<u64>,
    /// Latency of the interval being filled.
    window: Histogram<u64>,
    /// Latency of the last completed interval.
    pub last_window: Histogram<u64>,
    /// Rates of the last completed interval.
    pub rates: Rates,
    /// The run is stopping (drain under way).
    pub stopping: bool,
}

/// The shared [`Live`] state.
pub type SharedLive = Arc<Mutex<Live>>;

/// An empty latency histogram (1 ns .. 60 s, 2 significant digits), as the workers use.
pub fn latency_hist() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 2).expect("static bounds")
}

impl Live {
    /// Empty state.
    pub fn shared() -> SharedLive {
        Arc::new(Mutex::new(Live {
            total: latency_hist(),
            window: latency_hist(),
            last_window: latency_hist(),
            rates: Rates::default(),
            stopping: false,
        }))
    }
}

/// Locks `live`, surviving a panicked holder (the data is plain counters).
pub fn lock(live: &Mutex<Live>) -> MutexGuard<'_, Live> {
    live.lock().unwrap_or_else(|e| e.into_inner())
}

/// How the controller shows progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// Nothing.
    Quiet,
    /// One line per interval on stderr.
    Lines,
    /// A screen redrawn in place (stderr is a terminal).
    Screen,
}

/// The controller.
pub struct Monitor {
    /// Histograms from each worker.
    pub hist_from: Vec<rtrb::Consumer<Hist>>,
    /// Empty histograms back to each worker.
    pub hist_to: Vec<rtrb::Producer<Hist>>,
    /// Shared with the ctl thread.
    pub live: SharedLive,
    /// Worker counters.
    pub stats: Vec<Arc<WorkerStats>>,
    /// Run control.
    pub run: Arc<RunControl>,
    /// Stats interval.
    pub interval: Duration,
    /// Stop when every input is exhausted.
    pub exit_on_eof: bool,
    /// How to show progress.
    pub view: View,
    /// What the screen shows besides counters.
    pub info: ScreenInfo,
}

impl Monitor {
    /// Runs until the duration passes, every input is exhausted (with `exit_on_eof`),
    /// a signal arrives or someone sets the run's stop flag; then sets the stop flag.
    pub fn watch(&mut self, start: Instant, duration: Option<Duration>) {
        let mut prev: Vec<Local> = vec![Local::default(); self.stats.len()];
        let mut prev_t = start;
        let mut next_line = start + self.interval;
        let mut exhausted_seen = 0;
        if self.view == View::Screen {
            screen::enter();
        }
        loop {
            std::thread::sleep(Duration::from_millis(20));
            self.collect();
            let now = Instant::now();
            let done_time = duration.is_some_and(|d| now.duration_since(start) >= d);
            if self.exit_on_eof && self.run.all_exhausted() {
                exhausted_seen += 1;
            } else {
                exhausted_seen = 0;
            }
            // Stop requests: the duration, the end of every input, a signal, or another
            // thread (ctl, tests) setting the run's stop flag.
            let stop = done_time
                || exhausted_seen >= 3
                || signals::stop_requested()
                || self.run.stop.load(Ordering::SeqCst);
            if now >= next_line && !stop {
                let cur: Vec<Local> = self.stats.iter().map(|s| s.snapshot()).collect();
                let rates = rates(
                    now.duration_since(start),
                    &cur,
                    &prev,
                    now.duration_since(prev_t),
                );
                let line = {
                    let mut l = lock(&self.live);
                    let l = &mut *l;
                    std::mem::swap(&mut l.window, &mut l.last_window);
                    l.window.reset();
                    l.rates = rates;
                    match self.view {
                        View::Quiet => None,
                        View::Lines => {
                            let mut s = stats_line(&l.rates, &l.last_window);
                            if let Some(t) = &self.info.tpe {
                                s.push_str(&format!(
                                    "\n[{:>5.1}s] {}",
                                    l.rates.elapsed.as_secs_f64(),
                                    t.line()
                                ));
                            }
                            if let Some(r) = &self.info.ram {
                                s.push_str(&format!(
                                    "\n[{:>5.1}s] {}",
                                    l.rates.elapsed.as_secs_f64(),
                                    r.line()
                                ));
                            }
                            Some(s)
                        }
                        View::Screen => {
                            let total = sum(&cur);
                            Some(screen::render(&self.info, &total, &l.rates, &l.last_window))
                        }
                    }
                };
                if let Some(text) = line {
                    let mut e = std::io::stderr().lock();
                    let _ = match self.view {
                        View::Screen => write!(e, "{text}"),
                        _ => writeln!(e, "{text}"),
                    };
                    let _ = e.flush();
                }
                prev = cur;
                prev_t = now;
                while next_line <= now {
                    next_line += self.interval;
                }
            }
            if stop {
                break;
            }
        }
        lock(&self.live).stopping = true;
        self.run.stop.store(true, Ordering::SeqCst);
    }

    /// Leaves the live screen (if shown) so the summary prints on the normal screen.
    pub fn close_view(&mut self) {
        if self.view == View::Screen {
            screen::leave();
            self.view = View::Quiet;
        }
    }

    /// Moves every histogram the workers handed over into the shared totals.
    pub fn collect(&mut self) {
        let mut l = lock(&self.live);
        let l = &mut *l;
        for (from, to) in self.hist_from.iter_mut().zip(self.hist_to.iter_mut()) {
            while let Ok(mut h) = from.pop() {
                let _ = l.total.add(&*h);
                let _ = l.window.add(&*h);
                h.reset();
                let _ = to.push(h);
            }
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        // A run that fails half-way must not leave the terminal on the alternate screen.
        self.close_view();
    }
}

/// Sum of per-worker counters.
pub fn sum(v: &[Local]) -> Local {
    let mut t = Local::default();
    for l in v {
        t.add(l);
    }
    t
}

/// Rates between two sets of per-worker snapshots taken `dt` apart.
pub fn rates(elapsed: Duration, cur: &[Local], prev: &[Local], dt: Duration) -> Rates {
    let s = dt.as_secs_f64().max(1e-9);
    let c = sum(cur);
    let p = sum(prev);
    let d = |a: u64, b: u64| a.saturating_sub(b) as f64 / s;
    let fwd = (c.steered + c.routed).saturating_sub(p.steered + p.routed);
    let steered = c.steered.saturating_sub(p.steered);
    Rates {
        elapsed,
        interval_s: s,
        rx_pps: d(c.rx, p.rx),
        tx_pps: d(c.tx, p.tx),
        steered_pct: if fwd == 0 {
            0.0
        } else {
            steered as f64 * 100.0 / fwd as f64
        },
        ports: (0..MAX_PORTS)
            .map(|i| (d(c.port_rx[i], p.port_rx[i]), d(c.port_tx[i], p.port_tx[i])))
            .collect(),
        workers: cur
            .iter()
            .zip(prev)
            .map(|(c, p)| {
                let busy = c.busy_polls.saturating_sub(p.busy_polls);
                let idle = c.idle_polls.saturating_sub(p.idle_polls);
                let pct = if busy + idle == 0 {
                    0.0
                } else {
                    busy as f64 * 100.0 / (busy + idle) as f64
                };
                (d(c.rx, p.rx), d(c.tx, p.tx), pct)
            })
            .collect(),
        drops_ps: (0..DropReason::COUNT)
            .map(|i| d(c.drops[i], p.drops[i]))
            .collect(),
    }
}

/// Formats nanoseconds for people.
pub fn fmt_ns(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{:.1}ms", ns as f64 / 1e6)
    } else if ns >= 1_000 {
        format!("{:.1}us", ns as f64 / 1e3)
    } else {
        format!("{ns}ns")
    }
}

/// One line of live stats (when stderr is not a terminal).
pub fn stats_line(r: &Rates, h: &Histogram<u64>) -> String {
    let mut drops = String::new();
    let mut dsum = 0u64;
    for (i, d) in r.drops_ps.iter().enumerate() {
        let n = (d * r.interval_s).round() as u64;
        if n > 0 {
            dsum += n;
            let name = DropReason::from_index(i).expect("index in range").as_str();
            drops.push_str(&format!(" {name}={n}"));
        }
    }
    format!(
        "[{:>5.1}s] rx {:>7.3} Mpps  tx {:>7.3} Mpps  steered {:>5.1}%  drops {}{}  p50 {} p99 {}",
        r.elapsed.as_secs_f64(),
        r.rx_pps / 1e6,
        r.tx_pps / 1e6,
        r.steered_pct,
        dsum,
        if drops.is_empty() {
            String::new()
        } else {
            format!(" [{}]", drops.trim())
        },
        fmt_ns(h.value_at_quantile(0.5)),
        fmt_ns(h.value_at_quantile(0.99)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_line() {
        let prev = vec![Local::default()];
        let mut c = Local {
            rx: 2000,
            tx: 1990,
            steered: 500,
            routed: 1490,
            busy_polls: 30,
            idle_polls: 10,
            ..Local::default()
        };
        c.port_rx[0] = 2000;
        c.port_tx[1] = 1990;
        c.drop(DropReason::TtlExpired);
        c.drops[DropReason::TtlExpired.index()] = 10;
        let r = rates(Duration::from_secs(3), &[c], &prev, Duration::from_secs(2));
        assert_eq!(r.rx_pps, 1000.0);
        assert_eq!(r.ports[1].1, 995.0);
        assert_eq!(r.workers[0].2, 75.0);
        assert!((r.steered_pct - 500.0 * 100.0 / 1990.0).abs() < 1e-9);
        let mut h = latency_hist();
        h.record(1500).unwrap();
        let line = stats_line(&r, &h);
        assert!(line.contains("drops 10 [ttl_expired=10]"), "{line}");
        assert!(line.contains("p50 1.5us"), "{line}");
    }
}
