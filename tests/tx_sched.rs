//! Transmit classes sharing a rate-limited port (`tx_rate_mbps`, `tx_weights`), end to
//! end through the appliance on conf/tx-classes.toml: p0's generator sends routed
//! traffic (class 0) and steered traffic (priority 2, class 2) out of p1, limited to
//! 20 Mbit/s on the wire. Strict priority (the example without its `tx_weights`) gives
//! class 2 the rate; the example's weights, 3:1 for class 0, give class 0 three quarters.
//! Nothing is lost unaccounted, and p1 never sends more than its rate allows.

use std::path::Path;

use steerd::app::{Appliance, RunOptions, Summary};
use steerd::config::Config;

const RATE_MBPS: f64 = 20.0;
/// The example's 128-byte frames (routed and steered alike) and the 24 bytes of FCS,
/// preamble and gap the rate counts.
const WIRE: f64 = 152.0;
/// What the buckets hold at the start (`safe::tx::max_burst`): at 20 Mbit/s, two of
/// the largest frames for strict priority; with weights, each class's bucket (the
/// classes' share of that depth, and at least one of the largest frames each).
fn depth_bytes(strict: bool) -> f64 {
    let weights = if strict { [0; 4] } else { [3, 1, 1, 1] };
    let sched = steerd::safe::tx::TxSched::for_worker(weights, 20_000_000, 1);
    steerd::safe::tx::max_burst(&sched).unwrap() as f64
}

/// The runs take turns: a worker kept off its core lets the bucket fill, and a full
/// bucket goes to every class staged (see `strict_priority_…`).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(strict: bool) -> Summary {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let mut text = std::fs::read_to_string(dir.join("tx-classes.toml")).unwrap();
    if strict {
        let w = "tx_weights = [3, 1, 1, 1]";
        assert!(text.contains(w));
        text = text.replace(w, "");
    }
    let mut cfg = Config::from_toml(&text, "tx-classes.toml", &dir, false).unwrap();
    assert_eq!(cfg.ports[1].tx_rate_bps(), 20_000_000, "the example's rate");
    assert_eq!(cfg.ports[1].tx_weights.is_none(), strict);
    cfg.general.pin_cores = false;
    let opts = RunOptions {
        duration: Some(std::time::Duration::from_secs(2)),
        quiet: true,
        ..RunOptions::default()
    };
    Appliance::build(cfg, &opts).unwrap().run(&opts).unwrap()
}

/// Checks what every run must hold and returns the packets sent per class.
fn check(s: &Summary, strict: bool) -> [u64; 4] {
    let t = &s.total;
    assert!(t.accounted(), "every packet sent or counted");
    // The rate holds on the wire (plus the bucket's depth at the start) …
    let allowed = RATE_MBPS * 1e6 / 8.0 * s.elapsed.as_secs_f64() + depth_bytes(strict);
    let sent = t.port_tx[1] as f64 * WIRE;
    assert!(
        sent <= allowed,
        "p1 sent {sent} wire bytes, the rate allows {allowed}"
    );
    // … and is used (loosely: a busy CI machine can keep the worker off its core).
    assert!(
        sent > 0.5 * allowed,
        "p1 sent {sent} wire bytes of {allowed}"
    );
    assert!(
        t.rx > 4 * t.port_tx[1],
        "the generator offers more than the rate"
    );
    let rate_drops = t.drops[steerd::safe::DropReason::TxRate.index()];
    assert_eq!(rate_drops, t.class_drops.iter().sum::<u64>());
    assert_eq!(
        rate_drops + t.tx,
        t.rx,
        "what was not sent was cut by the rate"
    );
    let v = s.to_json();
    assert_eq!(v["drops"]["tx_rate"], rate_drops);
    assert_eq!(v["tx_classes"][2]["tx_packets"], t.class_tx[2]);
    eprintln!(
        "p1 {:.2} Mbit/s on the wire; sent by class {:?}, dropped by class {:?}",
        sent * 8.0 / s.elapsed.as_secs_f64() / 1e6,
        t.class_tx,
        t.class_drops
    );
    t.class_tx
}

#[test]
fn strict_priority_gives_the_rate_to_the_highest_class() {
    let s = run(true);
    let c = check(&s, true);
    assert!(c[2] > 0 && c[0] > 0, "both classes offered: {c:?}");
    // Class 0 gets only what class 2 left of the bucket: its depth at the start and
    // after any moment the worker was off its core (the bucket refills meanwhile).
    assert!(
        c[0] * 10 < c[2],
        "class 0 sent {} against class 2's {}: {c:?}",
        c[0],
        c[2]
    );
    assert_eq!((c[1], c[3]), (0, 0));
}

#[test]
fn weights_share_the_rate_in_proportion() {
    let s = run(false);
    let c = check(&s, false);
    let share0 = c[0] as f64 / (c[0] + c[2]) as f64;
    assert!(
        (share0 - 0.75).abs() < 0.03,
        "class 0 (weight 3) has {share0:.3} of the rate against class 2 (weight 1): {c:?}"
    );
}

/// conf/ram-tx-weights.toml: the live RAM sets the weights of the rate-limited port
/// "out" from the demand it measures per class (destinations 1 and 3 in class 2, 2 in
/// class 1: 2:1), at least the floor (50) each; the classes then share the 4 Mbit/s
/// 2:1, and the routed traffic (class 0, half of what is offered) is held to its floor.
#[test]
fn the_live_ram_weighs_the_classes_by_their_demand() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let text = std::fs::read_to_string(dir.join("ram-tx-weights.toml")).unwrap();
    let cfg = Config::from_toml(&text, "ram-tx-weights.toml", &dir, false).unwrap();
    let opts = RunOptions {
        duration: Some(std::time::Duration::from_secs(3)),
        quiet: true,
        ..RunOptions::default()
    };
    let s = Appliance::build(cfg, &opts).unwrap().run(&opts).unwrap();
    let t = &s.total;
    assert!(t.accounted());
    let v = s.to_json();
    let w = &v["ram"]["tx_weights"][0];
    assert_eq!(w["port"], "out", "{w}");
    assert_eq!(w["set_by"], "ram", "{w}");
    let got: Vec<u64> = w["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!((got[0], got[3]), (50, 50), "the floor: {w}");
    assert!(
        got[1].abs_diff(333) <= 30 && got[2].abs_diff(667) <= 30,
        "{w}"
    );
    // Sent per class, in packets (the steered frames are all the same size).
    let c = t.class_tx;
    let ratio = c[1] as f64 / c[2] as f64;
    assert!(
        (ratio - 0.5).abs() < 0.08,
        "class 1 : class 2 = {ratio:.3}: {c:?}"
    );
    // Routed traffic: half of what is offered, its floor's share of what is sent.
    assert!(c[0] * 8 < c[2], "{c:?}");
    assert!(c[0] > 0, "the floor lets class 0 through: {c:?}");
    let wire = (t.tx_bytes + 24 * t.tx) as f64 * 8.0 / s.elapsed.as_secs_f64() / 1e6;
    assert!(wire < 4.3, "{wire:.3} Mbit/s on a 4 Mbit/s port");
    eprintln!("out: {wire:.3} Mbit/s on the wire, weights {got:?}, sent by class {c:?}");
}
