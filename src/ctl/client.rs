//! The `steerd ctl` client: one request over the Unix socket, one response, printed as
//! JSON (`--json`) or as text for people.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::proto::Request;

/// Why a call failed before a response arrived.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No steerd listens there.
    #[error("cannot connect to {path}: {source} (is `steerd run` running with this --ctl-socket?)")]
    Connect {
        /// The socket.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The exchange failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The answer was not JSON.
    #[error("steerd answered something that is not JSON: {0}")]
    BadAnswer(String),
}

/// Sends `req` and returns the response object. `timeout` bounds each read and write
/// (`drain` waits for the whole drain: give it enough).
pub fn call(socket: &Path, req: &Request, timeout: Duration) -> Result<Value, ClientError> {
    let mut s = UnixStream::connect(socket).map_err(|e| ClientError::Connect {
        path: socket.display().to_string(),
        source: e,
    })?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut line = serde_json::to_string(req).expect("JSON of plain values");
    line.push('\n');
    s.write_all(line.as_bytes())?;
    let mut r = BufReader::new(s);
    let mut answer = String::new();
    r.read_line(&mut answer)?;
    serde_json::from_str(answer.trim()).map_err(|_| ClientError::BadAnswer(answer))
}

/// The strings of a JSON array (none for anything else).
fn strs(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

fn num(v: &Value, p: &str) -> f64 {
    v.pointer(p).and_then(Value::as_f64).unwrap_or(0.0)
}

fn ns(v: &Value, p: &str) -> String {
    super::monitor::fmt_ns(v.pointer(p).and_then(Value::as_u64).unwrap_or(0))
}

/// A response as text for people (the error message for failures).
pub fn render(req: &Request, resp: &Value) -> String {
    if resp["ok"] != Value::Bool(true) {
        let e = &resp["error"];
        return format!(
            "error ({}): {}",
            e["code"].as_str().unwrap_or("?"),
            e["message"].as_str().unwrap_or("?")
        );
    }
    let r = &resp["result"];
    match req {
        Request::Status => render_status(r),
        Request::RoutesList => {
            let mut s = String::new();
            for x in r["routes"].as_array().into_iter().flatten() {
                let via: Vec<&str> = strs(&x["via"]).collect();
                s.push_str(&format!(
                    "{:<24} via {:<30} ({})\n",
                    x["prefix"].as_str().unwrap_or("?"),
                    via.join(","),
                    x["origin"].as_str().unwrap_or("?")
                ));
            }
            s.push_str(&format!(
                "{} routes, table generation {}",
                r["routes"].as_array().map_or(0, Vec::len),
                r["generation"]
            ));
            s
        }
        Request::RoutesAdd { .. } => format!(
            "route {} via {} added (table generation {})",
            r["prefix"].as_str().unwrap_or("?"),
            strs(&r["via"]).collect::<Vec<_>>().join(","),
            r["generation"]
        ),
        Request::RoutesDel { .. } => format!(
            "route {} deleted (table generation {})",
            r["prefix"].as_str().unwrap_or("?"),
            r["generation"]
        ),
        Request::KeysRotate { .. } => {
            let mut s = format!(
                "steering key rotated (table generation {}); the previous key stays accepted",
                r["generation"]
            );
            if let Some(k) = r["key"].as_str() {
                s.push_str(&format!("\nnew key: {k}"));
            }
            s.push_str(&format!("\nnote: {}", r["note"].as_str().unwrap_or("")));
            s
        }
        Request::Reload { .. } => {
            let changed: Vec<&str> = strs(&r["changed"]).collect();
            let mut s = format!(
                "reloaded {} (table generation {}): {}\nroutes {} → {} ({} ctl changes kept)",
                r["config"].as_str().unwrap_or("?"),
                r["generation"],
                if changed.is_empty() {
                    "no change".to_string()
                } else {
                    format!("changed {}", changed.join(", "))
                },
                r["routes"]["before"],
                r["routes"]["after"],
                r["routes"]["ctl_changes_kept"]
            );
            if let Some(k) = r["runtime_key_rotation"].as_str() {
                s.push_str(&format!("\nruntime key rotation: {k}"));
            }
            s
        }
        Request::Drain => {
            let sm = &r["summary"];
            format!(
                "drained: rx {} tx {} drops {} ({}), accounted: {}",
                sm["rx_packets"], sm["tx_packets"], sm["drops_total"], sm["drops"], sm["accounted"]
            )
        }
        Request::Shutdown => {
            "stopping: receive stopped, queues draining; steerd exits when done".into()
        }
        Request::EventsList => render_events(r),
        Request::RamLinks => render_links(r),
        Request::RamLink { .. } => {
            let mut s = format!(
                "link {} {}{}",
                link_label(&r["link"]),
                link_state(&r["link"]),
                if r["changed"] == true {
                    ""
                } else {
                    " (no change)"
                }
            );
            if r["applied"] != true {
                s.push_str("\nnote: the RAM has not acted on it yet (it does at its next tick)");
            }
            s.push('\n');
            s.push_str(&render_paths(&r["paths"]));
            s.trim_end().to_string()
        }
        Request::EventsAdd(_) => format!(
            "event {} scheduled: {}\nnote: {}",
            event_label(r),
            event_line(r),
            r["note"].as_str().unwrap_or("")
        ),
        Request::EventsDel { .. } => {
            let mut s = format!(
                "event {} removed ({} still scheduled)",
                event_label(r),
                r["scheduled"]
            );
            if let Some(n) = r["note"].as_str() {
                s.push_str(&format!("\nnote: {n}"));
            }
            s
        }
        Request::ModelLoad { .. } => format!(
            "{}\n{}",
            r["message"].as_str().unwrap_or("model loaded"),
            r["note"].as_str().unwrap_or("")
        )
        .trim_end()
        .to_string(),
    }
}

/// `name (#index)` or `#index`.
fn event_label(e: &Value) -> String {
    match e["name"].as_str() {
        Some(n) => format!("{n} (#{})", e["index"]),
        None => format!("#{}", e["index"]),
    }
}

/// One event: state, buckets, destinations, factor.
fn event_line(e: &Value) -> String {
    format!(
        "{} from bucket {} for {} min, destinations {}, factor {}",
        e["state"].as_str().unwrap_or("?"),
        e["start_bucket"],
        e["duration_min"],
        e["destinations"],
        e["factor"]
    )
}

fn render_events(r: &Value) -> String {
    let list = r["events"].as_array().cloned().unwrap_or_default();
    let mut s = String::new();
    for e in &list {
        s.push_str(&format!(
            "{:<24} {:<6} {}\n",
            event_label(e),
            e["origin"].as_str().unwrap_or("?"),
            event_line(e)
        ));
    }
    s.push_str(&format!(
        "{} scheduled event(s), now bucket {}",
        list.len(),
        r["now_bucket"]
    ));
    s
}

/// `a – b`.
fn link_label(l: &Value) -> String {
    format!(
        "{} – {}",
        l["a"].as_str().unwrap_or("?"),
        l["b"].as_str().unwrap_or("?")
    )
}

/// `up`, or `down (why)`.
fn link_state(l: &Value) -> String {
    match l["down_because"].as_str() {
        Some(w) => format!("down ({w})"),
        None => l["state"].as_str().unwrap_or("?").to_string(),
    }
}

fn render_links(r: &Value) -> String {
    let mut s = String::new();
    for (i, l) in r["links"].as_array().into_iter().flatten().enumerate() {
        s.push_str(&format!(
            "{i:>3} {:<28} {:<18} placed {:>10.1} of {:>10.1} pps{}{}\n",
            link_label(l),
            link_state(l),
            l["placed_pps"].as_f64().unwrap_or(0.0),
            l["capacity_pps"].as_f64().unwrap_or(0.0),
            l["next_hop"]
                .as_str()
                .map(|n| format!("  next hop {n}"))
                .unwrap_or_default(),
            l["carrier_of"]
                .as_str()
                .map(|n| format!(", carrier of {n}"))
                .unwrap_or_default(),
        ));
    }
    s.push_str(&format!(
        "{} link(s) down, {} state change(s)\n",
        r["links_down"], r["link_changes"]
    ));
    if let Some(how) = r["link_watch"]["how"].as_str() {
        s.push_str(&format!(
            "link state from: {how}; {} notification(s)\n",
            r["link_watch"]["events"]
        ));
    }
    s.push_str(&render_paths(&r["paths"]));
    s.trim_end().to_string()
}

fn render_paths(paths: &Value) -> String {
    let via = |p: &Value| strs(&p["via"]).collect::<Vec<_>>().join(" → ");
    let list = paths.as_array().cloned().unwrap_or_default();
    let mut s = String::new();
    for p in &list {
        let hops: Vec<&str> = strs(&p["next_hops"]).collect();
        s.push_str(&format!(
            "dest {:>5} → {:<8} via {} ({} µs), next hop {}",
            p["dest"],
            p["site"].as_str().unwrap_or("?"),
            via(&p["primary"]),
            p["primary"]["latency_us"],
            hops.join(",")
        ));
        for e in p["ecmp"].as_array().into_iter().flatten() {
            s.push_str(&format!("; ecmp {}", via(e)));
        }
        if p["backup"].is_object() && p["ecmp"].as_array().is_none_or(Vec::is_empty) {
            s.push_str(&format!("; backup {}", via(&p["backup"])));
        }
        s.push('\n');
    }
    s.push_str(&format!(
        "{} steered destination(s) with a path",
        list.len()
    ));
    s
}

fn render_status(r: &Value) -> String {
    let mut s = format!(
        "steerd {} pid {} — {} for {:.0}s, config {}, {} workers\n",
        r["version"].as_str().unwrap_or("?"),
        r["pid"],
        r["state"].as_str().unwrap_or("?"),
        num(r, "/uptime_s"),
        r["config"].as_str().unwrap_or("?"),
        r["workers"]
    );
    s.push_str(&format!(
        "tables: generation {}, {} IPv4 + {} IPv6 routes ({} ctl changes), {} steering destinations, epoch {}\n",
        r["tables"]["generation"],
        r["tables"]["routes_v4"],
        r["tables"]["routes_v6"],
        r["tables"]["route_changes_by_ctl"],
        r["tables"]["steering_destinations"],
        r["tables"]["steering_epoch"]
    ));
    s.push_str(&format!(
        "rates: rx {:.3} Mpps, tx {:.3} Mpps, steered {:.1}%, drops {:.0}/s\n",
        num(r, "/rates/rx_pps") / 1e6,
        num(r, "/rates/tx_pps") / 1e6,
        num(r, "/rates/steered_pct"),
        num(r, "/rates/drops_ps")
    ));
    s.push_str(&format!(
        "totals: rx {} tx {} steered {} routed {} drops {}\n",
        r["totals"]["rx_packets"],
        r["totals"]["tx_packets"],
        r["totals"]["steered_packets"],
        r["totals"]["routed_packets"],
        r["totals"]["drops_total"]
    ));
    if r["totals"]["drops_total"].as_u64().unwrap_or(0) > 0 {
        s.push_str(&format!("drops by reason: {}\n", r["totals"]["drops"]));
    }
    s.push_str(&format!(
        "latency (last interval): p50 {} p99 {} p99.9 {} max {}\n",
        ns(r, "/latency_ns/p50"),
        ns(r, "/latency_ns/p99"),
        ns(r, "/latency_ns/p999"),
        ns(r, "/latency_ns/max")
    ));
    for p in r["ports"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "port {:<12} {:<9} rx {:>8.3} Mpps tx {:>8.3} Mpps ({} / {} packets)\n",
            p["name"].as_str().unwrap_or("?"),
            p["backend"].as_str().unwrap_or("?"),
            num(p, "/rx_pps") / 1e6,
            num(p, "/tx_pps") / 1e6,
            p["rx_packets"],
            p["tx_packets"]
        ));
    }
    match &r["components"]["tpe"] {
        Value::String(t) => s.push_str(&format!("tpe: {t}\n")),
        t if t["line"].is_string() => {
            s.push_str(&format!("{}\n", t["line"].as_str().unwrap_or("")));
            s.push_str(&format!(
                "tpe: model {}, {} buckets, {} inferences ({} failed), {} fallbacks, promoted {} rejected {} refused {}\n",
                t["model"].as_str().unwrap_or("none"),
                t["buckets"],
                t["inferences"],
                t["inference_failures"],
                t["fallbacks"],
                t["promotions"],
                t["rejections"],
                t["models_refused"]
            ));
        }
        t if t["state"].is_string() => {
            s.push_str(&format!("tpe: {}\n", t["state"].as_str().unwrap_or("?")));
        }
        _ => {}
    }
    if let Some(m) = r["endpoints"]["metrics"].as_str() {
        s.push_str(&format!("metrics: {m}\n"));
    }
    s.trim_end().to_string()
}
