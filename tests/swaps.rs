//! Table publication loses no packets: 1,000 swaps of the forwarding tables while the
//! generator runs at full rate, every packet sent or (none expected) counted.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use steerd::app::{Appliance, RunOptions, Summary, build_tables};
use steerd::config::Config;
use steerd::safe::tables::TableHandle;

/// Runs the embedded config without faults on two workers while `publish` (on its own
/// thread) publishes tables; stops once it is done and every retired snapshot is freed.
/// Returns the run's summary and what `publish` returned (its publication count).
fn run_while_publishing(
    publish: impl FnOnce(Arc<TableHandle>, Config) -> u32 + Send + 'static,
) -> (Summary, u32) {
    let cfg = Config::embedded().unwrap();
    // No faults: every packet must come out.
    let text = cfg
        .source
        .text
        .replace("fault_fraction = 0.002", "fault_fraction = 0.0");
    let mut cfg = Config::from_toml(&text, "swaps", Path::new("."), false).unwrap();
    cfg.general.workers = 2;
    cfg.general.pin_cores = false;
    let opts = RunOptions {
        duration: Some(std::time::Duration::from_secs(30)),
        quiet: true,
        ..RunOptions::default()
    };
    let app = Appliance::build(cfg.clone(), &opts).unwrap();
    let handle = app.tables.clone();
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let publisher = std::thread::spawn(move || {
        let n = publish(handle.clone(), cfg);
        // Let workers move past the last one, then everything retired is freed.
        while handle.reclaim() > 0 {
            std::thread::yield_now();
        }
        d2.store(true, Ordering::SeqCst);
        n
    });
    let ctl = app.ctl.clone();
    let stopper = std::thread::spawn(move || {
        while !done.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        ctl.stop.store(true, Ordering::SeqCst);
    });
    let s = app.run(&opts).unwrap();
    let n = publisher.join().unwrap();
    stopper.join().unwrap();
    (s, n)
}

#[test]
fn thousand_swaps_at_full_rate_lose_nothing() {
    let (s, swaps) = run_while_publishing(|handle, cfg| {
        let mut n = 0;
        while n < 1000 {
            let mut t = build_tables(&cfg, &[], None).unwrap();
            // Alternate the steering epoch so each snapshot differs.
            t.steering.epoch = cfg.steering.epoch + (n % 2);
            handle.publish(t);
            n += 1;
        }
        n
    });
    assert_eq!(swaps, 1000);
    assert!(s.total.rx > 0);
    assert_eq!(
        s.total.total_drops(),
        0,
        "drops: {:?}",
        s.to_json()["drops"]
    );
    assert_eq!(
        s.total.rx, s.total.tx,
        "every packet sent across 1000 swaps"
    );
    eprintln!(
        "1000 swaps during {:.2}s, {} packets, none lost",
        s.elapsed.as_secs_f64(),
        s.total.rx
    );
}

/// The RAM's way of publishing: a copy of the current snapshot with a new steering table
/// ([`steerd::safe::tables::Tables::with_steering`]), its entries moving between next
/// hops and the epoch advancing, 1,000 times while steered traffic runs at full rate.
#[test]
fn thousand_ram_publications_at_full_rate_lose_nothing() {
    use steerd::steering::{SteerEntry, SteeringTable};
    let (s, n) = run_while_publishing(|handle, cfg| {
        let nh = |name: &str| cfg.next_hops.iter().position(|h| h.name == name).unwrap() as u16;
        let (a, b) = (nh("to-p1"), nh("to-p1-b"));
        let base = handle.load();
        let epoch0 = base.steering.epoch;
        let mut n = 0u32;
        while n < 1000 {
            let cur = handle.load();
            // Headers carry the config's epoch: keep the table within max_epoch_age of
            // it (as the marker follows the RAM's epoch) while the entries move.
            let mut st = SteeringTable::new(
                cur.steering.keys,
                epoch0 + n % (cur.steering.max_epoch_age + 1),
                cur.steering.max_epoch_age,
            );
            // Entries move between a, b and both (ECMP over a and b).
            for (d, e) in base.steering.iter() {
                let p = e.max_priority;
                let entry = match (d, (n + d) % 3) {
                    (20, _) => e,
                    (_, 0) => SteerEntry::new(a, p),
                    (_, 1) => SteerEntry::new(b, p),
                    _ => SteerEntry::ecmp(&[a, b], p).unwrap(),
                };
                st.insert(d, entry).unwrap();
            }
            let t = cur.with_steering(st);
            drop(cur);
            handle.publish(t);
            n += 1;
        }
        n
    });
    assert_eq!(n, 1000);
    assert!(
        s.total.steered > 0,
        "steered traffic ran during the publications"
    );
    assert_eq!(
        s.total.total_drops(),
        0,
        "drops: {:?}",
        s.to_json()["drops"]
    );
    assert_eq!(
        s.total.rx, s.total.tx,
        "every packet sent across 1000 publications"
    );
    assert_eq!(
        s.total.fallback.iter().sum::<u64>(),
        s.total.fallback[steerd::steering::Fallback::Untrusted as usize],
        "no header refused for a stale epoch or a missing entry: {:?}",
        s.to_json()["steering_fallbacks"]
    );
}
