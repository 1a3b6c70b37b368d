//! The live stats screen of `steerd run` on a terminal (cold), in the spirit of testpmd's
//! and pktgen's pages: ports, workers, rates, steered share, drops by reason, latency,
//! recent log events. Redrawn in place with plain ANSI sequences on the alternate
//! screen; the final summary prints on the normal screen after it closes.
//!
//! While the screen is up, log events (see [`LogWriter`], the writer `steerd`'s tracing
//! subscriber uses) are kept in a small ring shown at the bottom, and printed again when
//! the screen closes so none is lost. The prediction (TPE) section comes from the
//! engine's [`super::tpe::TpeLink`] when it runs, and the live RAM's line when it runs.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;

use super::monitor::{Rates, fmt_ns};
use crate::safe::counters::Local;
use crate::safe::tables::TableHandle;
use crate::safe::{DropReason, MAX_PORTS};
use crate::steering::Fallback;

/// What the screen shows besides counters.
#[derive(Clone)]
pub struct ScreenInfo {
    /// Config name.
    pub config: String,
    /// Port names and backends.
    pub ports: Vec<(String, String)>,
    /// Published tables (for the generation).
    pub tables: Arc<TableHandle>,
    /// Where metrics and ctl listen.
    pub endpoints: String,
    /// The prediction engine, when it runs.
    pub tpe: Option<Arc<dyn super::tpe::TpeLink>>,
    /// The live RAM, when it runs.
    pub ram: Option<Arc<crate::ram::live::RamShared>>,
}

const EVENTS_KEPT: usize = 200;
const EVENTS_SHOWN: usize = 6;

/// Log lines captured while the screen is up (None: write them to stderr).
static EVENTS: Mutex<Option<VecDeque<String>>> = Mutex::new(None);

fn events() -> std::sync::MutexGuard<'static, Option<VecDeque<String>>> {
    EVENTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Switches stderr to the alternate screen and starts capturing log lines.
pub fn enter() {
    *events() = Some(VecDeque::new());
    let mut e = std::io::stderr().lock();
    let _ = write!(e, "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J");
    let _ = e.flush();
}

/// Restores the normal screen and prints the log lines captured meanwhile.
pub fn leave() {
    let kept = events().take();
    let mut e = std::io::stderr().lock();
    let _ = write!(e, "\x1b[?25h\x1b[?1049l");
    for l in kept.into_iter().flatten() {
        let _ = e.write_all(l.as_bytes());
    }
    let _ = e.flush();
}

/// A `tracing-subscriber` writer: stderr, or the screen's event ring while it is up.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut ev = events();
        match ev.as_mut() {
            Some(q) => {
                q.push_back(String::from_utf8_lossy(buf).into_owned());
                while q.len() > EVENTS_KEPT {
                    q.pop_front();
                }
                Ok(buf.len())
            }
            None => {
                drop(ev);
                std::io::stderr().write(buf)
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

fn mpps(pps: f64) -> String {
    format!("{:>9.3}", pps / 1e6)
}

/// Draws one frame (cursor home, each line cleared to its end, the rest cleared).
pub fn render(info: &ScreenInfo, t: &Local, r: &Rates, lat: &Histogram<u64>) -> String {
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push_str("\x1b[K\n");
    };
    line(format!(
        "\x1b[1msteerd {}\x1b[0m  config {}  workers {}  up {:.0}s  tables gen {}   (Ctrl-C stops and drains)",
        env!("CARGO_PKG_VERSION"),
        info.config,
        r.workers.len(),
        r.elapsed.as_secs_f64(),
        info.tables.generation()
    ));
    line(format!("  {}", info.endpoints));
    line(String::new());
    line(format!(
        "\x1b[1m{:<20} {:>9} {:>9} {:>16} {:>16}\x1b[0m",
        "port", "rx Mpps", "tx Mpps", "rx packets", "tx packets"
    ));
    for (i, (name, backend)) in info.ports.iter().enumerate().take(MAX_PORTS) {
        let (rx, tx) = r.ports.get(i).copied().unwrap_or_default();
        line(format!(
            "{:<20} {} {} {:>16} {:>16}",
            format!("{name} ({backend})"),
            mpps(rx),
            mpps(tx),
            t.port_rx[i],
            t.port_tx[i]
        ));
    }
    line(format!(
        "{:<20} {} {} {:>16} {:>16}",
        "total",
        mpps(r.rx_pps),
        mpps(r.tx_pps),
        t.rx,
        t.tx
    ));
    line(String::new());
    line(format!(
        "\x1b[1m{:<20} {:>9} {:>9} {:>9}\x1b[0m",
        "worker", "rx Mpps", "tx Mpps", "busy %"
    ));
    for (w, (rx, tx, busy)) in r.workers.iter().enumerate() {
        line(format!(
            "{:<20} {} {} {:>9.1}",
            format!("safe-{w}"),
            mpps(*rx),
            mpps(*tx),
            busy
        ));
    }
    line(String::new());
    line(format!(
        "forwarding: steered {:>5.1}% of forwarded (total steered {}, routed {})",
        r.steered_pct, t.steered, t.routed
    ));
    let mut fb = String::new();
    for f in Fallback::ALL {
        let n = t.fallback[f as usize];
        if n > 0 {
            let _ = write!(fb, " {}={n}", f.as_str());
        }
    }
    line(format!(
        "steering fallbacks (total):{}",
        if fb.is_empty() { " none" } else { &fb }
    ));
    let mut items = Vec::new();
    let mut dps = 0.0;
    for i in 0..DropReason::COUNT {
        let total = t.drops[i];
        let rate = r.drops_ps.get(i).copied().unwrap_or(0.0);
        dps += rate;
        if total > 0 {
            let name = DropReason::from_index(i).expect("index in range").as_str();
            items.push(format!("{name}={total} ({rate:.0}/s)"));
        }
    }
    line(format!("drops: {:.0}/s, total {}", dps, t.total_drops()));
    let mut row = String::new();
    for it in items {
        if !row.is_empty() && row.len() + it.len() > 96 {
            line(format!("  {}", row.trim_end()));
            row.clear();
        }
        row.push_str(&it);
        row.push_str("  ");
    }
    if !row.is_empty() {
        line(format!("  {}", row.trim_end()));
    }
    line(format!(
        "latency (last interval): p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        fmt_ns(lat.value_at_quantile(0.5)),
        fmt_ns(lat.value_at_quantile(0.9)),
        fmt_ns(lat.value_at_quantile(0.99)),
        fmt_ns(lat.value_at_quantile(0.999)),
        fmt_ns(lat.max())
    ));
    if let Some(t) = &info.tpe {
        line(String::new());
        for l in t.screen_lines() {
            line(l);
        }
    }
    if let Some(r) = &info.ram {
        line(String::new());
        line(r.line());
    }
    line(String::new());
    line("\x1b[1mrecent events\x1b[0m".to_string());
    let ev: Vec<String> = events()
        .as_ref()
        .map(|q| {
            q.iter()
                .rev()
                .take(EVENTS_SHOWN)
                .rev()
                .map(|l| l.trim_end().to_string())
                .collect()
        })
        .unwrap_or_default();
    for e in ev {
        line(format!("  {e}"));
    }
    format!("\x1b[H{s}\x1b[J")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::build_tables;
    use crate::config::Config;

    #[test]
    fn frame_shows_ports_workers_drops_latency() {
        let cfg = Config::embedded().unwrap();
        let tables = TableHandle::new(build_tables(&cfg, &[], None).unwrap(), 1);
        let info = ScreenInfo {
            config: "test".into(),
            ports: vec![("p0".into(), "mem".into()), ("p1".into(), "mem".into())],
            tables,
            endpoints: "metrics off".into(),
            tpe: None,
            ram: None,
        };
        let mut t = Local {
            rx: 100,
            tx: 90,
            ..Local::default()
        };
        t.drops[DropReason::TtlExpired.index()] = 10;
        let r = Rates {
            workers: vec![(1e6, 1e6, 50.0)],
            ports: vec![(2e6, 0.0), (0.0, 2e6)],
            drops_ps: vec![0.0; DropReason::COUNT],
            ..Rates::default()
        };
        let f = render(&info, &t, &r, &super::super::monitor::latency_hist());
        assert!(f.starts_with("\x1b[H") && f.ends_with("\x1b[J"));
        assert!(f.contains("p0 (mem)"), "{f}");
        assert!(f.contains("safe-0"), "{f}");
        assert!(f.contains("ttl_expired=10"), "{f}");
        assert!(f.contains("    2.000"), "{f}");
        assert!(f.contains("latency"), "{f}");
    }
}
