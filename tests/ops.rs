//! Operations end to end: a running appliance watched over /metrics and /status, changed
//! over the ctl socket (routes, keys, reload) and stopped by ctl (shutdown, drain) —
//! with every packet accounted for and, for table changes, none lost.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::running::{CliRun, Running, http_get, sample};
use serde_json::{Value, json};
use steerd::ctl::proto::Request;

/// Two mem ports generating at a bounded rate; p0 → 198.18.0.0/16 via NH, p1 → 198.19/16.
const CFG: &str = r#"
[general]
workers = 1
pin_cores = false
stats_interval_ms = 200
exit_on_eof = false

[[ports]]
name = "p0"
backend = "mem"
mac = "02:00:00:00:00:10"
trusted = true
[ports.generator]
flows = 256
dst = ["198.18.0.0/16"]
sizes = [64]
steered_fraction = STEERED
fault_fraction = FAULTS
rate_pps = 200000

[[ports]]
name = "p1"
backend = "mem"
mac = "02:00:00:00:00:11"
[ports.generator]
flows = 256
dst = ["198.19.0.0/16"]
sizes = [64]
rate_pps = 200000
seed = 2

[[next_hops]]
name = "to-p1"
port = "p1"
mac = "02:00:00:00:01:01"
dest = 1

[[next_hops]]
name = "to-p1-b"
port = "p1"
mac = "02:00:00:00:01:02"
dest = 2

[[next_hops]]
name = "to-p0"
port = "p0"
mac = "02:00:00:00:02:01"
dest = 3

[[routes]]
prefix = "198.18.0.0/16"
via = "NH"

[[routes]]
prefix = "198.19.0.0/16"
via = "to-p0"

[steering]
keys = ["5465737420676f6f64206b6579203031"]
epoch = 1

[[steering.destinations]]
id = 10
next_hop = "to-p1"
"#;

fn cfg_text(nh: &str, steered: f64, faults: f64) -> String {
    CFG.replace("NH", nh)
        .replace("STEERED", &steered.to_string())
        .replace("FAULTS", &faults.to_string())
}

#[test]
fn metrics_scrape_values_move() {
    let r = Running::start(&cfg_text("to-p1", 0.5, 0.01), true);
    let addr = r
        .metrics
        .expect("metrics enabled on port 0 gets a real port");
    assert_ne!(addr.port(), 0);
    let scrape = || http_get(addr, "/metrics", None);
    r.wait_for("first packets", |_| {
        sample(&scrape().2, "steerd_rx_packets_total").unwrap_or(0.0) > 0.0
    });
    let (code, head, m1) = scrape();
    assert_eq!(code, 200);
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    for name in [
        "steerd_rx_packets_total",
        "steerd_tx_packets_total",
        "steerd_forwarded_packets_total{path=\"steered\"}",
        "steerd_forwarded_packets_total{path=\"routed\"}",
        "steerd_drops_total{reason=\"ttl_expired\"}",
        "steerd_drops_total{reason=\"tx_full\"}",
        "steerd_steering_fallbacks_total{reason=\"bad_tag\"}",
        "steerd_port_rx_packets_total{port=\"p0\",backend=\"mem\"}",
        "steerd_worker_rx_packets_total{worker=\"0\"}",
        "steerd_worker_port_tx_packets_total{worker=\"0\",port=\"p1\"}",
        "steerd_class_tx_packets_total{class=\"0\"}",
        "steerd_class_tx_drops_total{class=\"3\"}",
        "steerd_drops_total{reason=\"tx_rate\"}",
        "steerd_latency_seconds_count",
        "steerd_latency_quantile_seconds{quantile=\"0.99\"}",
        "steerd_table_generation",
        "steerd_routes{family=\"ipv4\"}",
        "steerd_workers",
    ] {
        assert!(sample(&m1, name).is_some(), "{name} missing in:\n{m1}");
    }
    assert_eq!(sample(&m1, "steerd_workers"), Some(1.0));
    assert_eq!(sample(&m1, "steerd_routes{family=\"ipv4\"}"), Some(2.0));
    // Counters move between scrapes, and the latency histogram fills (hand-off every 100 ms).
    let rx1 = sample(&m1, "steerd_rx_packets_total").unwrap();
    r.wait_for("counters and latency move", |_| {
        let m = scrape().2;
        sample(&m, "steerd_rx_packets_total").unwrap() > rx1
            && sample(&m, "steerd_latency_seconds_count").unwrap() > 0.0
            && sample(&m, "steerd_forwarded_packets_total{path=\"steered\"}").unwrap() > 0.0
            && sample(&m, "steerd_drops_total{reason=\"ttl_expired\"}").unwrap() > 0.0
    });
    // OpenMetrics on request.
    let (code, head, om) = http_get(addr, "/metrics", Some("application/openmetrics-text"));
    assert_eq!(code, 200);
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(om.ends_with("# EOF\n"));
    // Status as JSON.
    let (code, _, st) = http_get(addr, "/status", None);
    assert_eq!(code, 200);
    let st: Value = serde_json::from_str(&st).unwrap();
    assert_eq!(st["state"], "running");
    assert_eq!(st["workers"], 1);
    assert!(st["totals"]["rx_packets"].as_u64().unwrap() > 0);
    assert_eq!(st["ports"][1]["name"], "p1");
    // No [tpe] section: the prediction engine is off (tests/tpe_live.rs runs it).
    assert_eq!(st["components"]["tpe"]["state"], "off", "{st}");
    assert_eq!(http_get(addr, "/nope", None).0, 404);
    // The ctl commands counter is registered and counts.
    r.ok(Request::Status);
    let m = scrape().2;
    assert_eq!(
        sample(
            &m,
            "steerd_ctl_commands_total{cmd=\"status\",result=\"ok\"}"
        ),
        Some(1.0),
        "{m}"
    );
    let s = r.finish();
    assert_eq!(s.total.rx, s.total.tx + s.total.total_drops());
}

#[test]
fn ctl_commands_status_routes_keys_errors() {
    let r = Running::start(&cfg_text("to-p1", 0.5, 0.0), false);
    let st = r.status();
    assert_eq!(st["state"], "running");
    assert_eq!(st["tables"]["generation"], 1);
    assert_eq!(st["endpoints"]["metrics"], Value::Null);
    // routes add → list → del → list
    let add = Request::RoutesAdd {
        prefix: "203.0.113.0/24".into(),
        via: vec!["to-p0".into(), "to-p1".into()],
        replace: false,
    };
    let a = r.ok(add.clone());
    assert_eq!(a["generation"], 2);
    let list = r.ok(Request::RoutesList);
    let routes = list["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 3);
    assert!(
        routes.contains(
            &json!({"prefix": "203.0.113.0/24", "via": ["to-p0", "to-p1"], "origin": "ctl"})
        ),
        "{list}"
    );
    assert!(
        routes.contains(&json!({"prefix": "198.18.0.0/16", "via": ["to-p1"], "origin": "config"}))
    );
    assert_eq!(r.status()["tables"]["routes_v4"], 3);
    assert_eq!(r.err(add).get("code").unwrap(), "exists");
    let e = r.err(Request::RoutesAdd {
        prefix: "203.0.113.0/24".into(),
        via: vec!["nowhere".into()],
        replace: true,
    });
    assert_eq!(e["code"], "invalid_argument");
    assert!(e["message"].as_str().unwrap().contains("nowhere"), "{e}");
    let e = r.err(Request::RoutesAdd {
        prefix: "203.0.113.1/24".into(),
        via: vec!["to-p0".into()],
        replace: false,
    });
    assert_eq!(e["code"], "invalid_argument", "host bits set: {e}");
    r.ok(Request::RoutesDel {
        prefix: "203.0.113.0/24".into(),
    });
    let list = r.ok(Request::RoutesList);
    assert_eq!(list["routes"].as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list["generation"], 3);
    let e = r.err(Request::RoutesDel {
        prefix: "203.0.113.0/24".into(),
    });
    assert_eq!(e["code"], "not_found");
    // keys rotate: a generated key is shown once; a given one is checked.
    let k = r.ok(Request::KeysRotate { key: None });
    assert_eq!(k["key"].as_str().unwrap().len(), 32, "{k}");
    assert_eq!(r.status()["tables"]["previous_key_accepted"], true);
    let e = r.err(Request::KeysRotate {
        key: Some("abc".into()),
    });
    assert_eq!(e["code"], "invalid_argument");
    // model load: the TPE is not running in this config.
    let e = r.err(Request::ModelLoad {
        path: "models/x.onnx".into(),
    });
    assert_eq!(e["code"], "tpe_off", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("[tpe] enabled"),
        "{e}"
    );
    let e = r.err(Request::EventsList);
    assert_eq!(e["code"], "tpe_off", "{e}");
    // ram links: the live RAM is not running in this config.
    let e = r.err(Request::RamLinks);
    assert_eq!(e["code"], "ram_off", "{e}");
    assert!(e["message"].as_str().unwrap().contains("[ram] live"), "{e}");
    let e = r.err(Request::RamLink {
        a: Some("edge".into()),
        b: Some("core".into()),
        index: None,
        state: "down".into(),
    });
    assert_eq!(e["code"], "ram_off", "{e}");
    // Raw protocol: unknown command, bad JSON, two requests pipelined with ids.
    let mut s = UnixStream::connect(&r.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"{\"cmd\":\"fly\",\"id\":1}\nnot json\n{\"cmd\":\"routes.list\",\"id\":\"b\"}\n")
        .unwrap();
    let mut rd = BufReader::new(s);
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut l = String::new();
        rd.read_line(&mut l).unwrap();
        lines.push(serde_json::from_str::<Value>(&l).unwrap());
    }
    assert_eq!(lines[0]["error"]["code"], "unknown_command");
    assert_eq!(lines[0]["id"], 1);
    assert!(
        lines[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("routes.add")
    );
    assert_eq!(lines[1]["error"]["code"], "bad_request");
    assert_eq!(lines[2]["ok"], true);
    assert_eq!(lines[2]["id"], "b");
    let s = r.finish();
    assert_eq!(s.total.total_drops(), 0, "{}", s.to_json());
    assert_eq!(s.total.rx, s.total.tx);
}

#[test]
fn key_rotation_keeps_the_previous_key_then_retires_it() {
    // Every p0 flow carries a header marked with the configured key.
    let r = Running::start(&cfg_text("to-p1", 1.0, 0.0), false);
    let steered = |r: &Running| r.status()["totals"]["steered_packets"].as_u64().unwrap();
    let bad_tag = |r: &Running| {
        r.status()["totals"]["steering_fallbacks"]["bad_tag"]
            .as_u64()
            .unwrap_or(0)
    };
    r.wait_for("steered traffic", |r| steered(r) > 0);
    r.ok(Request::KeysRotate { key: None });
    // The marker's key is now the previous one: still accepted.
    let s1 = steered(&r);
    r.wait_for("still steered after one rotation", |r| {
        steered(r) > s1 + 1000
    });
    assert_eq!(bad_tag(&r), 0);
    r.ok(Request::KeysRotate {
        key: Some("000102030405060708090a0b0c0d0e0f".into()),
    });
    // Two rotations later the marker's key is gone: routed by LPM, counted as bad_tag.
    r.wait_for("bad tags after two rotations", |r| bad_tag(r) > 1000);
    let s2 = steered(&r);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(steered(&r), s2, "nothing steered under retired keys");
    let s = r.finish();
    assert_eq!(s.total.total_drops(), 0);
    assert_eq!(s.total.rx, s.total.tx);
}

#[test]
fn bad_reload_keeps_the_running_config() {
    let good = cfg_text("to-p1", 0.0, 0.0);
    let r = Running::start(&good, false);
    r.ok(Request::RoutesAdd {
        prefix: "192.0.2.0/24".into(),
        via: vec!["to-p0".into()],
        replace: false,
    });
    let routes_before = r.ok(Request::RoutesList)["routes"].clone();
    let gen_before = r.status()["tables"]["generation"].clone();
    let path = r.config_path();
    let check_unchanged = |r: &Running| {
        assert_eq!(r.ok(Request::RoutesList)["routes"], routes_before);
        assert_eq!(r.status()["tables"]["generation"], gen_before);
    };
    // A semantic error: the field is named, with its line.
    std::fs::write(&path, good.replace("port = \"p1\"", "port = \"p9\"")).unwrap();
    let e = r.err(Request::Reload { config: None });
    assert_eq!(e["code"], "config", "{e}");
    assert_eq!(e["field"], "next_hops[0].port", "{e}");
    assert!(e["line"].as_u64().is_some(), "{e}");
    assert!(e["message"].as_str().unwrap().contains("p9"), "{e}");
    check_unchanged(&r);
    // A syntax error.
    std::fs::write(&path, good.replace("epoch = 1", "epoch = = 1")).unwrap();
    let e = r.err(Request::Reload { config: None });
    assert_eq!(e["code"], "config", "{e}");
    assert!(e["line"].as_u64().is_some(), "{e}");
    check_unchanged(&r);
    // A change that needs a restart: refused whole (the route change with it is not applied).
    std::fs::write(
        &path,
        good.replace("workers = 1", "workers = 2")
            .replace("prefix = \"198.19.0.0/16\"", "prefix = \"198.20.0.0/16\""),
    )
    .unwrap();
    let e = r.err(Request::Reload { config: None });
    assert_eq!(e["code"], "restart_required", "{e}");
    assert_eq!(e["fields"], json!(["general.workers"]), "{e}");
    assert!(e["message"].as_str().unwrap().contains("restart"), "{e}");
    check_unchanged(&r);
    // A route naming a next hop that does not exist (caught when the table is built).
    std::fs::write(&path, good.replace("via = \"to-p0\"", "via = \"to-p2\"")).unwrap();
    let e = r.err(Request::Reload { config: None });
    assert_eq!(e["code"], "config", "{e}");
    assert_eq!(e["field"], "routes[1].via", "{e}");
    check_unchanged(&r);
    // The good file again: applied, ctl change kept.
    std::fs::write(&path, &good).unwrap();
    let ok = r.ok(Request::Reload { config: None });
    assert_eq!(ok["changed"], json!([]), "{ok}");
    assert_eq!(ok["routes"]["ctl_changes_kept"], 1);
    assert_eq!(r.ok(Request::RoutesList)["routes"], routes_before);
    let s = r.finish();
    assert_eq!(s.total.total_drops(), 0);
    assert_eq!(s.total.rx, s.total.tx);
}

#[test]
fn good_reload_moves_a_route_without_losing_a_packet() {
    let r = Running::start(&cfg_text("to-p1", 0.0, 0.0), false);
    // 198.18/16 goes to to-p1 (telemetry destination 1).
    r.wait_for("traffic to dest 1", |r| r.dest(1) > 10_000);
    assert_eq!(r.dest(2), 0);
    std::fs::write(r.config_path(), cfg_text("to-p1-b", 0.0, 0.0)).unwrap();
    let rep = r.ok(Request::Reload { config: None });
    assert_eq!(rep["changed"], json!(["routes"]), "{rep}");
    assert_eq!(rep["generation"], 2);
    // Now it goes to to-p1-b (destination 2), and no longer to destination 1.
    r.wait_for("traffic to dest 2", |r| r.dest(2) > 10_000);
    let d1 = r.dest(1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(r.dest(1), d1, "the old route is out of use");
    let s = r.finish();
    assert!(s.total.rx > 20_000);
    assert_eq!(s.total.total_drops(), 0, "{}", s.to_json());
    assert_eq!(
        s.total.rx, s.total.tx,
        "every packet forwarded across the reload"
    );
}

#[test]
fn reload_applies_a_rate_limit_and_class_weights_live() {
    let text = cfg_text("to-p1", 0.0, 0.0);
    let r = Running::start(&text, false);
    let p1_tx = |r: &Running| {
        let s = r.status();
        (
            Instant::now(),
            s["ports"][1]["tx_packets"].as_u64().unwrap(),
        )
    };
    // 200,000 packets/s of 64-byte frames (88 bytes on the wire) leave p1: 140.8 Mbit/s.
    let wire_mbps = |a: (Instant, u64), b: (Instant, u64)| {
        (b.1 - a.1) as f64 * 88.0 * 8.0 / (b.0 - a.0).as_secs_f64() / 1e6
    };
    r.wait_for("traffic", |r| p1_tx(r).1 > 20_000);
    let mac = "mac = \"02:00:00:00:00:11\"";
    let limited = text.replace(
        mac,
        &format!("{mac}\ntx_rate_mbps = 10\ntx_weights = [1, 1, 1, 1]"),
    );
    assert_ne!(limited, text);
    std::fs::write(r.config_path(), &limited).unwrap();
    let rep = r.ok(Request::Reload { config: None });
    assert_eq!(
        rep["changed"],
        json!(["ports[1].tx_rate_mbps", "ports[1].tx_weights"]),
        "{rep}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let a = p1_tx(&r);
    std::thread::sleep(Duration::from_secs(1));
    let b = p1_tx(&r);
    let limited_mbps = wire_mbps(a, b);
    // The rate, plus the token bucket's depth (two jumbo frames: 0.15 Mbit over a second).
    assert!(
        limited_mbps < 10.5,
        "{limited_mbps:.2} Mbit/s above the 10 Mbit/s limit"
    );
    assert!(
        limited_mbps > 5.0,
        "{limited_mbps:.2} Mbit/s: the limit is not used"
    );
    let drops = |r: &Running| {
        r.status()["totals"]["drops"]["tx_rate"]
            .as_u64()
            .unwrap_or(0)
    };
    assert!(drops(&r) > 50_000, "{}", r.status());
    // Lifted again by a reload: back to the generator's rate, no more tx_rate drops.
    std::fs::write(r.config_path(), &text).unwrap();
    let rep = r.ok(Request::Reload { config: None });
    assert_eq!(
        rep["changed"],
        json!(["ports[1].tx_rate_mbps", "ports[1].tx_weights"])
    );
    std::thread::sleep(Duration::from_millis(200));
    let d = drops(&r);
    let a = p1_tx(&r);
    std::thread::sleep(Duration::from_secs(1));
    let b = p1_tx(&r);
    assert!(
        wire_mbps(a, b) > 5.0 * limited_mbps,
        "{:.2} Mbit/s",
        wire_mbps(a, b)
    );
    assert_eq!(drops(&r), d, "no rate limit any more");
    let s = r.finish();
    assert_eq!(s.to_json()["accounted"], true);
    assert_eq!(s.total.total_drops(), d, "the rate limit's drops only");
}

#[test]
fn ctl_shutdown_mid_run_accounts_for_every_packet() {
    // Faults on purpose: drops happen, and they must be counted.
    let mut r = Running::start(&cfg_text("to-p1", 0.5, 0.05), false);
    r.wait_for("traffic", |r| {
        r.status()["totals"]["rx_packets"].as_u64().unwrap() > 50_000
    });
    let a = r.ok(Request::Shutdown);
    assert_eq!(a["stopping"], true);
    let s = r.join_summary();
    let j = s.to_json();
    assert!(s.total.rx > 50_000);
    assert!(s.total.total_drops() > 0, "{j}");
    assert_eq!(j["accounted"], true, "{j}");
}

#[test]
fn ctl_drain_answers_with_the_final_stats() {
    let mut r = Running::start(&cfg_text("to-p1", 0.5, 0.05), false);
    r.wait_for("traffic", |r| {
        r.status()["totals"]["rx_packets"].as_u64().unwrap() > 50_000
    });
    let d = r.ok(Request::Drain);
    let s = r.join_summary();
    assert_eq!(d["drained"], true);
    assert_eq!(d["summary"]["accounted"], true, "{d}");
    assert_eq!(
        d["summary"]["rx_packets"], s.total.rx,
        "the reply is the final summary"
    );
    assert_eq!(d["summary"]["tx_packets"], s.total.tx);
}

#[test]
fn cli_run_ctl_sighup_and_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("steerd.toml");
    let text = cfg_text("to-p1", 0.0, 0.0);
    std::fs::write(&cfg, &text).unwrap();
    let bin = env!("CARGO_BIN_EXE_steerd");
    let mut run = CliRun::start(bin, dir.path(), &cfg, &["--quiet"]);
    let (code, out, _) = run.ctl(&["status"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("running"), "{out}");
    let (code, out, _) = run.ctl(&["routes", "add", "192.0.2.0/24", "via", "to-p0,to-p1"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out, _) = run.ctl(&["--json", "routes", "list"]);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["result"]["routes"].as_array().unwrap().len(), 3, "{v}");
    let (code, _, err) = run.ctl(&["routes", "del", "192.0.2.0/25"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not_found"), "{err}");
    // SIGHUP reloads the file: the route moves to to-p1-b.
    std::fs::write(&cfg, cfg_text("to-p1-b", 0.0, 0.0)).unwrap();
    // SAFETY: sending a signal to our own child process.
    assert_eq!(
        unsafe { libc::kill(run.child.id() as i32, libc::SIGHUP) },
        0
    );
    let t0 = Instant::now();
    loop {
        let (_, out, _) = run.ctl(&["--json", "routes", "list"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        if v["result"]["routes"]
            .as_array()
            .unwrap()
            .contains(&json!({"prefix": "198.18.0.0/16", "via": ["to-p1-b"], "origin": "config"}))
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "SIGHUP did not reload: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, out, _) = run.ctl(&["shutdown"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("stopping"), "{out}");
    let (status, err) = run.wait();
    assert!(status.success(), "{err}");
    assert!(err.contains("accounting: rx"), "{err}");
    assert!(err.contains(": ok"), "{err}");
    assert!(err.contains("reload applied"), "{err}");
    assert!(!run.sock.exists(), "socket removed at exit");
    // A client without a server says so.
    let (code, _, err) = run.ctl(&["status"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cannot connect"), "{err}");
}
