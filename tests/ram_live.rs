//! The RAM inside `steerd run` (`[ram] live = true`) on the mem generator: it publishes
//! the steering table (its own entries replace the config's), steered packets follow
//! them, nothing is dropped, and in reactive mode steerd's own workers go to standby
//! under low traffic and are woken under high traffic. The ctl socket shows it in
//! `/status`, refuses a reload that would replace its entries, and a route change
//! keeps them.

mod common;

use std::time::Duration;

use common::running::{Running, http_get};
use serde_json::Value;
use steerd::app::{Appliance, RunOptions, Summary};
use steerd::config::Config;
use steerd::ctl::proto::Request;
#[cfg(feature = "tpe")]
use steerd::ctl::tpe::EventRequest;

/// Three workers, one generator port (`rate` pps over all workers, half the flows with
/// steering headers for destinations 1 and 2 of `[steering]`). The RAM's topology
/// serves destination 1 only, so its table steers 1 and drops the config's entry for 2.
fn config(mode: &str, rate: u64) -> String {
    format!(
        r#"
[general]
workers = 3
pin_cores = false
idle_park_us = 0
telemetry_destinations = 8

[[ports]]
name = "p0"
backend = "mem"
mac = "02:00:00:00:00:10"
trusted = true
[ports.generator]
flows = 64
dst = ["198.18.0.0/16"]
sizes = [64]
steered_fraction = 0.5
rate_pps = {rate}

[[ports]]
name = "p1"
backend = "mem"
mac = "02:00:00:00:00:11"

[[next_hops]]
name = "steer-a"
port = "p1"
mac = "02:00:00:00:01:01"

[[next_hops]]
name = "r1"
port = "p1"
mac = "02:00:00:00:01:10"
dest = 1

[[routes]]
prefix = "198.18.0.0/16"
via = "r1"

[steering]
keys = ["5465737420676f6f64206b6579203031"]
epoch = 1
max_epoch_age = 1000000

[[steering.destinations]]
id = 1
next_hop = "r1"
max_priority = 3

[[steering.destinations]]
id = 2
next_hop = "r1"
max_priority = 3

[ram]
mode = "{mode}"
live = true
tick_ms = 100
measure_s = 0.3
release_hold_s = 0.3
headroom = 1.0
worker_pps = 100000
local_worker_pps = 4000
min_workers = 1
standby_park_us = 1000

[[ram.regions]]
name = "eu"
budget = 8

[[ram.zones]]
name = "eu-w"
region = "eu"
budget = 8

[[ram.sites]]
name = "fra"
zone = "eu-w"
max_workers = 4

[[ram.links]]
a = "edge"
b = "fra"
latency_us = 100
capacity_pps = 1000000
next_hop = "steer-a"

[[ram.destinations]]
id = 1
site = "fra"
"#
    )
}

fn run(mode: &str, rate: u64, secs: u64) -> Summary {
    let cfg = Config::from_toml(
        &config(mode, rate),
        "ram_live",
        std::path::Path::new("."),
        false,
    )
    .unwrap();
    let opts = RunOptions {
        duration: Some(Duration::from_secs(secs)),
        quiet: true,
        ..RunOptions::default()
    };
    Appliance::build(cfg, &opts).unwrap().run(&opts).unwrap()
}

/// What every live run shows: publications, steering of destination 1 (and only 1),
/// nothing lost.
fn common_checks(s: &Summary) -> Value {
    let j = s.to_json();
    let ram = j["ram"].clone();
    assert_eq!(ram["state"], "stopped", "{ram}");
    assert!(ram["publications"].as_u64().unwrap() > 0, "{ram}");
    assert_eq!(ram["steered_destinations"], serde_json::json!([1]), "{ram}");
    assert!(ram["epoch"].as_u64().unwrap() > 1, "epoch advanced: {ram}");
    let t = &s.total;
    assert!(t.steered > 0, "steered packets: {j}");
    assert_eq!(t.total_drops(), 0, "{}", j["drops"]);
    assert!(t.accounted(), "rx = tx + drops + local");
    // Destination 2 is the config's, not the RAM's: its headers fall back to LPM.
    assert!(
        j["steering_fallbacks"]["unknown_dest"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{}",
        j["steering_fallbacks"]
    );
    ram
}

#[test]
fn reactive_low_traffic_puts_workers_in_standby() {
    let s = run("reactive", 1500, 3);
    let ram = common_checks(&s);
    assert_eq!(ram["mode"], "reactive");
    let w = &ram["workers"];
    assert_eq!(w["total"], 3);
    // 1500 pps of 4000 per worker: one active, two in standby all along.
    assert_eq!(w["active"], 1, "{w}");
    assert_eq!(w["standby"], 2, "{w}");
    assert_eq!(w["wakes"], 0, "{w}");
    let standby_s = w["standby_s"].as_f64().unwrap();
    assert!(standby_s > 4.0, "two workers for ~3 s: {w}");
    assert_eq!(w["per_worker"][0]["state"], "active");
    assert_eq!(w["per_worker"][2]["state"], "standby");
    // The workers parked in standby (idle_park_us is 0: they would never park else).
    assert!(s.total.standby_parks > 100, "{}", s.total.standby_parks);
    assert!(s.total.standby_parked_ns > 1_000_000_000);
    assert_eq!(s.total.parks, s.total.standby_parks);
}

#[test]
fn reactive_high_traffic_wakes_workers() {
    let s = run("reactive", 30_000, 3);
    let ram = common_checks(&s);
    let w = &ram["workers"];
    // 30 kpps of 4000 per worker: all three woken early in the run, kept awake.
    assert_eq!(w["active"], 3, "{w}");
    assert_eq!(w["standby"], 0, "{w}");
    assert!(w["wakes"].as_u64().unwrap() >= 2, "{w}");
    assert!(w["per_worker"][2]["wakes"].as_u64().unwrap() >= 1, "{w}");
    assert!(ram["prepositions"]["late"].as_u64().unwrap() >= 2, "{ram}");
    assert!(s.total.rx > 50_000, "{}", s.total.rx);
}

#[test]
fn static_keeps_every_worker_and_steers() {
    let s = run("static", 1500, 2);
    let ram = common_checks(&s);
    let w = &ram["workers"];
    assert_eq!(w["active"], 3, "{w}");
    assert_eq!(
        (w["wakes"].as_u64(), w["parks"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(w["standby_s"].as_f64(), Some(0.0));
    assert_eq!(s.total.standby_parks, 0);
}

#[test]
fn ctl_shows_the_ram_and_respects_its_steering_table() {
    let r = Running::start(&config("reactive", 2000), true);
    r.wait_for("a RAM publication", |r| {
        r.status()["components"]["ram"]["publications"]
            .as_u64()
            .is_some_and(|n| n > 0)
    });
    let st = r.status();
    let ram = &st["components"]["ram"];
    assert_eq!(ram["state"], "running", "{ram}");
    assert_eq!(ram["mode"], "reactive");
    assert_eq!(ram["steered_destinations"], serde_json::json!([1]));
    assert_eq!(st["tables"]["steering_destinations"], 1, "{}", st["tables"]);
    let (code, _, body) = http_get(r.metrics.unwrap(), "/metrics", None);
    assert_eq!(code, 200);
    let line = body
        .lines()
        .find(|l| l.starts_with("steerd_ram_publications_total "))
        .unwrap_or_else(|| panic!("no steerd_ram_publications_total in {body}"));
    assert!(!line.ends_with(" 0"), "{line}");
    assert!(body.contains("steerd_ram_workers_standby "), "{body}");
    // A reload that would replace the RAM's entries is refused, naming the field.
    let path = r.config_path();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("id = 2\n", "id = 3\n")).unwrap();
    let e = r.err(Request::Reload { config: None });
    assert_eq!(e["code"], "steering_owned", "{e}");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("live RAM") && msg.contains("steering.destinations"),
        "{msg}"
    );
    std::fs::write(&path, &text).unwrap();
    // A route change keeps the RAM's steering entries and epoch.
    let epoch = st["tables"]["steering_epoch"].as_u64().unwrap();
    r.ok(Request::RoutesAdd {
        prefix: "203.0.113.0/24".into(),
        via: vec!["r1".into()],
        replace: false,
    });
    let st = r.status();
    assert_eq!(st["tables"]["steering_destinations"], 1, "{}", st["tables"]);
    assert!(st["tables"]["steering_epoch"].as_u64().unwrap() >= epoch);
    // A key rotation keeps the entries too.
    r.ok(Request::KeysRotate { key: None });
    let st = r.status();
    assert_eq!(st["tables"]["steering_destinations"], 1, "{}", st["tables"]);
    // A reload that leaves the steering section alone applies, keeping the entries.
    let rel = r.ok(Request::Reload { config: None });
    assert!(rel["generation"].as_u64().is_some(), "{rel}");
    let st = r.status();
    assert_eq!(st["tables"]["steering_destinations"], 1, "{}", st["tables"]);
    // So does one that appends a next hop (the entries' next-hop indices stay valid).
    std::fs::write(
        &path,
        format!(
            "{text}\n[[next_hops]]\nname = \"extra\"\nport = \"p1\"\nmac = \"02:00:00:00:01:99\"\n"
        ),
    )
    .unwrap();
    let rel = r.ok(Request::Reload { config: None });
    assert!(
        rel["changed"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("next_hops")),
        "{rel}"
    );
    let st = r.status();
    assert_eq!(st["tables"]["steering_destinations"], 1, "{}", st["tables"]);
    assert_eq!(st["tables"]["next_hops"], 3, "{}", st["tables"]);
    let s = r.finish();
    assert!(s.total.steered > 0);
    assert_eq!(s.total.total_drops(), 0);
    let ram = &s.to_json()["ram"];
    // Nobody replaced the RAM's table behind its back (it would have republished).
    assert_eq!(ram["republished_after_overwrite"], 0, "{ram}");
}

/// `config` with `set_tx_weights`: destination 1 is in class 2 (`max_priority = 2`,
/// the generator's headers say 3), and p1 is the port its next hop leaves on.
fn weights_config() -> String {
    config("reactive", 2000)
        .replace(
            "steered_fraction = 0.5",
            "steered_fraction = 0.5\npriority = 3",
        )
        .replace(
            "id = 1\nsite = \"fra\"",
            "id = 1\nsite = \"fra\"\nmax_priority = 2",
        )
        .replace(
            "standby_park_us = 1000",
            "standby_park_us = 1000\nset_tx_weights = true\ntx_weight_floor = 100",
        )
}

/// The RAM sets p1's transmit class weights from the demand it expects there per class
/// (all of it destination 1's, in class 2; the floor for the others), the workers'
/// tables carry them, a route change and a reload keep them, and a reload that would
/// change them is refused naming the field.
#[test]
fn the_ram_sets_the_class_weights_of_its_ports() {
    let r = Running::start(&weights_config(), false);
    let want = serde_json::json!([100, 100, 1000, 100]);
    r.wait_for("the RAM's weights on p1", |r| {
        r.status()["ports"][1]["tx_weights"] == want
    });
    let st = r.status();
    let w = &st["components"]["ram"]["tx_weights"];
    assert_eq!(w[0]["port"], "p1", "{w}");
    assert_eq!(w[0]["weights"], want, "{w}");
    assert_eq!(w[0]["set_by"], "ram", "{w}");
    let mbps = w[0]["expected_mbps"].as_array().unwrap();
    assert!(mbps[2].as_f64().unwrap() > 0.0, "{w}");
    assert!(
        [0, 1, 3].iter().all(|&c| mbps[c].as_f64() == Some(0.0)),
        "{w}"
    );
    // p0 is no port of a steering next hop: its flags stay the config's (none).
    assert_eq!(st["ports"][0]["tx_weights"], Value::Null, "{}", st["ports"]);
    // A route change rebuilds the tables from the config: the RAM's weights stay.
    r.ok(Request::RoutesAdd {
        prefix: "203.0.113.0/24".into(),
        via: vec!["r1".into()],
        replace: false,
    });
    assert_eq!(r.status()["ports"][1]["tx_weights"], want);
    // A reload may not set the weights the RAM owns ...
    let path = r.config_path();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace(
            "mac = \"02:00:00:00:00:11\"\n",
            "mac = \"02:00:00:00:00:11\"\ntx_weights = [1, 1, 1, 1]\n",
        ),
    )
    .unwrap();
    let e = r.err(Request::Reload { config: None });
    assert_eq!(e["code"], "steering_owned", "{e}");
    assert_eq!(
        e["fields"],
        serde_json::json!(["ports[1].tx_weights"]),
        "{e}"
    );
    // ... and one that leaves them alone keeps them.
    std::fs::write(&path, &text).unwrap();
    r.ok(Request::Reload { config: None });
    assert_eq!(r.status()["ports"][1]["tx_weights"], want);
    let s = r.finish();
    let j = s.to_json();
    assert_eq!(s.total.total_drops(), 0, "{}", j["drops"]);
    let classes = &j["tx_classes"];
    // Steered packets leave in class 2 (the entry's cap), routed ones in class 0.
    assert!(classes[2]["tx_packets"].as_u64().unwrap() > 0, "{classes}");
    assert!(classes[0]["tx_packets"].as_u64().unwrap() > 0, "{classes}");
    assert_eq!(j["ram"]["republished_after_overwrite"], 0, "{}", j["ram"]);
}

/// `config`'s run with a second way to the data center: the edge reaches `fra` through
/// router `r1` (next hop `steer-a` on port p1, 200 µs) or router `r2` (`steer-b` on
/// port p2, 400 µs), so destination 1 is steered through r1 until that link goes down.
fn two_path_config() -> String {
    config("reactive", 2000)
        .replace(
            "[[next_hops]]\nname = \"r1\"",
            "[[ports]]\nname = \"p2\"\nbackend = \"mem\"\nmac = \"02:00:00:00:00:12\"\n\n\
             [[next_hops]]\nname = \"steer-b\"\nport = \"p2\"\nmac = \"02:00:00:00:02:01\"\n\n\
             [[next_hops]]\nname = \"r1\"",
        )
        .replace(
            "[[ram.links]]\na = \"edge\"\nb = \"fra\"\nlatency_us = 100\ncapacity_pps = 1000000\nnext_hop = \"steer-a\"\n",
            "[[ram.links]]\na = \"edge\"\nb = \"r1\"\nlatency_us = 100\ncapacity_pps = 1000000\nnext_hop = \"steer-a\"\n\
             [[ram.links]]\na = \"edge\"\nb = \"r2\"\nlatency_us = 300\ncapacity_pps = 1000000\nnext_hop = \"steer-b\"\n\
             [[ram.links]]\na = \"r1\"\nb = \"fra\"\nlatency_us = 100\ncapacity_pps = 1000000\n\
             [[ram.links]]\na = \"r2\"\nb = \"fra\"\nlatency_us = 100\ncapacity_pps = 1000000\n",
        )
        .replace("[ram]\n", "[ram]\nrouters = [\"r1\", \"r2\"]\n")
}

fn port_tx(st: &Value, name: &str) -> u64 {
    st["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no port {name}: {}", st["ports"]))["tx_packets"]
        .as_u64()
        .unwrap()
}

fn link_req(a: &str, b: &str, state: &str) -> Request {
    Request::RamLink {
        a: Some(a.into()),
        b: Some(b.into()),
        index: None,
        state: state.into(),
    }
}

/// An operator takes the link the steered destination uses down: the RAM moves it to
/// the other path at once (the steering entry names the other next hop, the packets
/// leave on the other port), and back when the link comes up; refusals name the field.
#[test]
fn a_link_taken_down_over_ctl_moves_the_steered_traffic_to_the_backup_path() {
    let r = Running::start(&two_path_config(), true);
    r.wait_for("a RAM publication", |r| {
        r.status()["components"]["ram"]["publications"]
            .as_u64()
            .is_some_and(|n| n > 0)
    });
    let v = r.ok(Request::RamLinks);
    assert_eq!(v["links"].as_array().unwrap().len(), 4, "{v}");
    assert_eq!(v["links_down"], 0, "{v}");
    // mem ports have no carrier: only the operator changes these links.
    assert_eq!(
        v["link_watch"]["how"], "no link follows a port's carrier (ctl ram link only)",
        "{v}"
    );
    assert_eq!(v["link_watch"]["events"], 0, "{v}");
    let path = &v["paths"][0];
    assert_eq!(path["dest"], 1, "{v}");
    assert_eq!(path["next_hops"], serde_json::json!(["steer-a"]), "{v}");
    assert_eq!(
        path["primary"]["via"],
        serde_json::json!(["edge", "r1", "fra"]),
        "{v}"
    );
    assert_eq!(
        path["backup"]["via"],
        serde_json::json!(["edge", "r2", "fra"]),
        "{v}"
    );
    let st = r.status();
    assert_eq!(port_tx(&st, "p2"), 0, "nothing uses p2 yet");
    // Down: the reply already shows the new path.
    let d = r.ok(link_req("r1", "edge", "down"));
    assert_eq!(d["applied"], true, "{d}");
    assert_eq!(d["changed"], true, "{d}");
    assert_eq!(d["link"]["state"], "down", "{d}");
    assert_eq!(d["link"]["down_because"], "ctl", "{d}");
    assert_eq!(
        d["paths"][0]["next_hops"],
        serde_json::json!(["steer-b"]),
        "{d}"
    );
    assert_eq!(
        d["paths"][0]["primary"]["via"],
        serde_json::json!(["edge", "r2", "fra"]),
        "{d}"
    );
    assert!(d["paths"][0]["backup"].is_null(), "no third way: {d}");
    r.wait_for("steered packets on p2", |r| {
        port_tx(&r.status(), "p2") > 100
    });
    let st = r.status();
    assert_eq!(st["components"]["ram"]["links_down"], 1);
    let (code, _, body) = http_get(r.metrics.unwrap(), "/metrics", None);
    assert_eq!(code, 200);
    assert!(body.contains("steerd_ram_links_down 1"), "{body}");
    assert!(
        body.contains("steerd_ram_link_notifications_total 0"),
        "{body}"
    );
    // Again: no change.
    let d = r.ok(link_req("edge", "r1", "down"));
    assert_eq!(d["changed"], false, "{d}");
    // Up: back on r1, p2 stops growing.
    let u = r.ok(link_req("edge", "r1", "up"));
    assert_eq!(u["link"]["state"], "up", "{u}");
    assert_eq!(
        u["paths"][0]["next_hops"],
        serde_json::json!(["steer-a"]),
        "{u}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let p2 = port_tx(&r.status(), "p2");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(port_tx(&r.status(), "p2"), p2, "p2 is no longer used");
    // Refusals.
    let e = r.err(link_req("edge", "nowhere", "down"));
    assert_eq!(e["code"], "unknown_link", "{e}");
    assert!(e["message"].as_str().unwrap().contains("edge – r1"), "{e}");
    let e = r.err(link_req("edge", "r1", "sideways"));
    assert_eq!(
        (e["code"].as_str(), e["field"].as_str()),
        (Some("bad_link"), Some("state")),
        "{e}"
    );
    let e = r.err(Request::RamLink {
        a: None,
        b: None,
        index: Some(9),
        state: "down".into(),
    });
    assert_eq!(e["code"], "unknown_link", "{e}");
    let e = r.err(Request::RamLink {
        a: Some("edge".into()),
        b: None,
        index: None,
        state: "down".into(),
    });
    assert_eq!(e["field"], "b", "{e}");
    // By index: link 1 is edge – r2, unused while r1 is up.
    let d = r.ok(Request::RamLink {
        a: None,
        b: None,
        index: Some(1),
        state: "down".into(),
    });
    assert_eq!(
        (d["link"]["a"].as_str(), d["link"]["b"].as_str()),
        (Some("edge"), Some("r2")),
        "{d}"
    );
    assert_eq!(
        d["paths"][0]["next_hops"],
        serde_json::json!(["steer-a"]),
        "{d}"
    );
    assert!(d["paths"][0]["backup"].is_null(), "{d}");
    // Both ways down: no path, no steering entry (its headers fall back to LPM).
    let d = r.ok(link_req("edge", "r1", "down"));
    assert_eq!(d["paths"], serde_json::json!([]), "{d}");
    r.wait_for("no steering entry", |r| {
        r.status()["tables"]["steering_destinations"] == 0
    });
    let s = r.finish();
    assert_eq!(s.total.total_drops(), 0, "{}", s.to_json()["drops"]);
    assert!(s.total.accounted());
    let ram = &s.to_json()["ram"];
    assert!(ram["link_changes"].as_u64().unwrap() >= 4, "{ram}");
}

#[test]
fn predictive_without_the_engine_is_a_config_error_naming_ram_mode() {
    let text = config("predictive", 1000);
    let e = Config::from_toml(&text, "ram_live", std::path::Path::new("."), false).unwrap_err();
    assert_eq!(e.field, "ram.mode", "{e}");
    assert!(e.to_string().contains("predictive"), "{e}");
}

#[cfg(feature = "tpe")]
#[test]
fn predictive_follows_the_engine_forecast() {
    // Buckets of 100 ms (time_scale 600): forecasts from the first bucket on.
    let text = format!(
        "{}\n[tpe]\nenabled = true\ntime_scale = 600\nbaselines_only = true\n",
        config("predictive", 1500)
    );
    let cfg = Config::from_toml(&text, "ram_live", std::path::Path::new("."), false).unwrap();
    let opts = RunOptions {
        duration: Some(Duration::from_secs(3)),
        quiet: true,
        ..RunOptions::default()
    };
    let s = Appliance::build(cfg, &opts).unwrap().run(&opts).unwrap();
    let ram = common_checks(&s);
    assert_eq!(ram["mode"], "predictive");
    let p = ram["predicted_pps"].as_f64().expect("a forecast was read");
    assert!(p > 100.0, "predicted {p} pps of ~1500: {ram}");
    let w = &ram["workers"];
    // ~1500 pps forecast and measured: one worker of 4000 pps is enough.
    assert_eq!(w["active"], 1, "{w}");
    assert!(w["standby_s"].as_f64().unwrap() > 3.0, "{w}");
    assert!(s.to_json()["tpe"]["buckets"].as_u64().unwrap() > 5);
}

/// Events scheduled over ctl at run time (`events.add`): the engine lists them, and a
/// predictive live RAM holds its capacity at the event's site while one is due or
/// running, and stops when it is removed (`events.del`). Bad events are refused with
/// the field named.
#[cfg(feature = "tpe")]
#[test]
fn events_added_over_ctl_reach_the_engine_and_the_live_ram() {
    let text = format!(
        "{}\n[tpe]\nenabled = true\ntime_scale = 600\nbaselines_only = true\ndestinations = 8\n",
        config("predictive", 1500)
    );
    let r = Running::start(&text, false);
    let hold = |r: &Running| r.status()["components"]["ram"]["sites"][0]["event_hold"].clone();
    r.wait_for("RAM ticks", |r| {
        r.status()["components"]["ram"]["ticks"]
            .as_u64()
            .is_some_and(|n| n > 2)
    });
    assert_eq!(hold(&r), false);
    let event = |start: Option<&str>, in_min: Option<u64>, name: Option<&str>| EventRequest {
        start: start.map(String::from),
        start_in_min: in_min,
        duration_min: 600,
        destinations: vec![2],
        factor: 2.0,
        name: name.map(String::from),
    };
    let add = |name: &str, dests: Vec<u16>, factor: f32| {
        Request::EventsAdd(EventRequest {
            destinations: dests,
            factor,
            ..event(None, Some(2), Some(name))
        })
    };
    let ev = r.ok(add("launch", vec![1], 3.0));
    assert_eq!(ev["origin"], "ctl", "{ev}");
    assert_eq!(ev["name"], "launch");
    assert_eq!(ev["destinations"], serde_json::json!([1]));
    assert_eq!(ev["scheduled"], 1);
    // Destination 1 lives at fra: due within lead_s + wake_s, so fra holds (the event
    // lasts 600 logical minutes, 60 s here: it is still on when it is removed below).
    r.wait_for("fra's event hold", |r| hold(r) == true);
    let list = r.ok(Request::EventsList);
    assert_eq!(list["events"][0]["name"], "launch", "{list}");
    let st = r.status();
    let tpe = &st["components"]["tpe"];
    assert_eq!(tpe["events"][0]["origin"], "ctl", "{tpe}");
    // Refusals name the field.
    for (req, field) in [
        (add("x", vec![99], 2.0), "destinations[0]"),
        (add("launch", vec![2], 2.0), "name"),
        (add("y", vec![2], 500.0), "factor"),
        (Request::EventsAdd(event(None, None, None)), "start"),
        (
            Request::EventsAdd(event(Some("2001-01-01T00:00:00Z"), None, None)),
            "start",
        ),
    ] {
        let e = r.err(req.clone());
        assert_eq!(e["code"], "bad_event", "{req:?}: {e}");
        assert_eq!(e["field"], field, "{req:?}: {e}");
    }
    let e = r.err(Request::EventsDel {
        event: "nope".into(),
    });
    assert_eq!(e["code"], "unknown_event", "{e}");
    // An event for a destination the RAM does not place holds nothing.
    r.ok(add("elsewhere", vec![2], 3.0));
    let gone = r.ok(Request::EventsDel {
        event: "launch".into(),
    });
    assert_eq!(gone["removed"], true, "{gone}");
    r.wait_for("fra's hold released", |r| hold(r) == false);
    let list = r.ok(Request::EventsList);
    assert_eq!(list["events"].as_array().unwrap().len(), 1, "{list}");
    let s = r.finish();
    assert_eq!(s.total.total_drops(), 0);
}

/// The plain per-second stats output carries a RAM line (mode, steered destinations,
/// workers, each data center's capacity).
#[test]
fn the_stats_lines_show_the_ram() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("steerd.toml");
    std::fs::write(&cfg, config("reactive", 1000)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_steerd"))
        .args([
            "run",
            "--duration",
            "2.5",
            "--metrics-listen",
            "off",
            "--ctl-socket",
            "off",
            "--config",
        ])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("] ram: reactive steered 1 "))
        .unwrap_or_else(|| panic!("no RAM stats line: {err}"));
    assert!(line.contains("workers 1/3 active"), "{line}");
    assert!(line.contains("  fra "), "{line}");
}

/// `steerd check` accepts the commented example and prints the RAM's summary line.
#[test]
fn conf_ram_live_toml_passes_steerd_check() {
    let conf = common::root().join("conf/ram-live.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_steerd"))
        .args(["check", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ram = text
        .lines()
        .find(|l| l.starts_with("ram: "))
        .unwrap_or_else(|| panic!("no ram line: {text}"));
    assert!(ram.contains("reactive mode, 2 site(s)"), "{ram}");
    assert!(
        ram.contains("live: tick 200 ms, owns the steering table"),
        "{ram}"
    );
    let cfg = Config::load(&conf).unwrap();
    assert!(cfg.ram.as_ref().is_some_and(|r| r.live));

    // An override from the environment is listed; a bad one is cited by its variable.
    let check_with = |value: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_steerd"))
            .args(["check", "--config"])
            .arg(&conf)
            .env("STEERD_RAM__LINK_POLL_MS", value)
            .output()
            .unwrap()
    };
    let out = check_with("10");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("carriers read every 10 ms"), "{text}");
    assert!(
        text.contains("set from the environment: STEERD_RAM__LINK_POLL_MS=10"),
        "{text}"
    );
    let out = check_with("0");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "STEERD_RAM__LINK_POLL_MS=0 (environment, over {}): ram.link_poll_ms: 0 must be \
             within 1..=60000",
            conf.display()
        )),
        "{err}"
    );
}

/// `steerd mark` with `follow_steering` takes the running steerd's steering table (what
/// its live RAM installed: destination 1 only) as its predicted set: frames for 1 are
/// marked with steerd's epoch, frames for 2 (in the marker's map, in the config's
/// `[steering]`, but not in the RAM's table) pass unmarked as `not_predicted`.
#[test]
fn steerd_mark_follows_the_live_ram_steering_table() {
    let r = Running::start(&config("reactive", 2000), false);
    r.wait_for("a RAM publication", |r| {
        r.status()["components"]["ram"]["publications"]
            .as_u64()
            .is_some_and(|n| n > 0)
    });
    let st = r.status();
    assert_eq!(st["tables"]["steering_ids"], serde_json::json!([1]), "{st}");
    let epoch = st["tables"]["steering_epoch"].as_u64().unwrap();
    let d = r.dir.path();
    let frame = |dst: [u8; 4]| {
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 1, 2], [2, 0, 0, 0, 1, 1])
            .ipv4([10, 1, 0, 2], dst, 64)
            .udp(40000, 5201);
        let mut v = Vec::new();
        b.write(&mut v, &[7u8; 100]).unwrap();
        v
    };
    let frames: Vec<Vec<u8>> = (0..60u8)
        .map(|i| {
            frame(if i % 3 == 0 {
                [198, 19, 0, i]
            } else {
                [198, 18, 0, i]
            })
        })
        .collect();
    common::write_pcap(&d.join("plain.pcap"), &frames);
    std::fs::write(
        d.join("mark.toml"),
        format!(
            r#"{}
[steering]
keys = ["5465737420676f6f64206b6579203031"]
epoch = 1
[mark]
pairs = [{{ from = "in", to = "out" }}]
epoch_from = "{}"
epoch_poll_ms = 50
follow_steering = true
[[mark.destinations]]
prefix = "198.18.0.0/16"
id = 1
[[mark.destinations]]
prefix = "198.19.0.0/16"
id = 2
"#,
            common::MARK_PCAP_PORTS,
            r.socket.display()
        ),
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_steerd"))
        .args(["mark", "--config"])
        .arg(d.join("mark.toml"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let m: Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert_eq!(m["rx_packets"], 60, "{m}");
    assert_eq!(m["marked"], 40, "{m}");
    assert_eq!(m["marked_by_dest"]["1"], 40, "{m}");
    assert_eq!(m["unmarked"]["not_predicted"], 20, "{m}");
    assert_eq!(m["epoch"], epoch, "{m}");
    assert!(m["steering_updates"].as_u64().unwrap() >= 1, "{m}");
    r.finish();
}
