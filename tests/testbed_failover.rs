//! Link failover on real interfaces (root): steerd runs in its own network namespace
//! with two afpacket egress ports, veth pairs to a host namespace B, and the live RAM's
//! topology has one path through each (`edge – rx` on port x, 200 µs; `edge – ry` on
//! port y, 400 µs). A mem generator sends steered traffic for destination 1.
//!
//! - The RAM steers destination 1 through x; B receives it on its x interface.
//! - B's x interface goes down (`ip link set … down` in B): steerd's side loses its
//!   carrier, the RAM routes around the link within its carrier poll (100 ms), and B
//!   receives the traffic on its y interface. The test prints how long the RAM took to
//!   publish the new path and how many packets were lost meanwhile (what steerd sent
//!   on x in that time: its port discards them, `tx_discarded`).
//! - B's x interface comes up again: the traffic goes back through x.
//! - `steerd ctl ram links` shows the link down with the reason, as text.
//!
//! Without root or `ip` the test prints `SKIPPED: <reason>`; with `CI=true` it fails.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use steerd::ctl::client;
use steerd::ctl::proto::Request;

const STEERD: &str = env!("CARGO_BIN_EXE_steerd");

/// Generated packets per second (all steered, destination 1).
const RATE: u64 = 4000;

fn sh(args: &[&str]) {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run a command");
    assert!(
        o.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Two namespaces (steerd's and host B's) and two veth pairs between them.
struct Bed {
    s: String,
    b: String,
    p: String,
}

impl Bed {
    /// `tag`: one letter, distinct per test (they run in parallel in one process).
    fn up(tag: &str) -> Option<Bed> {
        // SAFETY: geteuid() has no arguments and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            common::skip("needs root (network namespaces)");
            return None;
        }
        if !common::have("ip") {
            common::skip("ip is missing (scripts/install-testbed-deps.sh installs iproute2)");
            return None;
        }
        let p = format!("sdf{tag}{}", std::process::id() % 100_000);
        let bed = Bed {
            s: format!("{p}s"),
            b: format!("{p}b"),
            p,
        };
        sh(&["ip", "netns", "add", &bed.s]);
        sh(&["ip", "netns", "add", &bed.b]);
        for (x, mac) in [("x", "02:00:00:00:0b:01"), ("y", "02:00:00:00:0b:02")] {
            let (si, bi) = (bed.ifname("s", x), bed.ifname("b", x));
            sh(&[
                "ip", "link", "add", &si, "netns", &bed.s, "type", "veth", "peer", "name", &bi,
                "netns", &bed.b, "address", mac,
            ]);
            sh(&["ip", "-n", &bed.s, "link", "set", &si, "up"]);
            sh(&["ip", "-n", &bed.b, "link", "set", &bi, "up"]);
        }
        sh(&["ip", "-n", &bed.s, "link", "set", "lo", "up"]);
        Some(bed)
    }

    fn ifname(&self, side: &str, x: &str) -> String {
        format!("{}{side}{x}", self.p)
    }

    /// Packets B's interface `x` received.
    fn rx(&self, x: &str) -> u64 {
        let o = Command::new("ip")
            .args(["netns", "exec", &self.b, "cat"])
            .arg(format!(
                "/sys/class/net/{}/statistics/rx_packets",
                self.ifname("b", x)
            ))
            .output()
            .expect("read a counter");
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("counter: {o:?}"))
    }

    fn set_b(&self, x: &str, state: &str) {
        sh(&[
            "ip",
            "-n",
            &self.b,
            "link",
            "set",
            &self.ifname("b", x),
            state,
        ]);
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        for ns in [&self.s, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn config(bed: &Bed, up_hold_ms: u64) -> String {
    format!(
        r#"
[general]
workers = 1
pin_cores = false
telemetry_destinations = 8

[[ports]]
name = "gen"
backend = "mem"
mac = "02:00:00:00:00:10"
trusted = true
[ports.generator]
flows = 64
dst = ["198.18.1.0/24"]
sizes = [64]
steered_fraction = 1.0
rate_pps = {RATE}

[[ports]]
name = "x"
backend = "afpacket"
ifname = "{sx}"

[[ports]]
name = "y"
backend = "afpacket"
ifname = "{sy}"

[[next_hops]]
name = "steer-x"
port = "x"
mac = "02:00:00:00:0b:01"

[[next_hops]]
name = "steer-y"
port = "y"
mac = "02:00:00:00:0b:02"

[[next_hops]]
name = "r1"
port = "x"
mac = "02:00:00:00:0b:01"
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

[ram]
mode = "reactive"
live = true
tick_ms = 1000
link_up_hold_ms = {up_hold_ms}
worker_pps = 100000
local_worker_pps = 100000
routers = ["rx", "ry"]

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
b = "rx"
latency_us = 100
capacity_pps = 1000000
next_hop = "steer-x"

[[ram.links]]
a = "edge"
b = "ry"
latency_us = 300
capacity_pps = 1000000
next_hop = "steer-y"

[[ram.links]]
a = "rx"
b = "fra"
latency_us = 100
capacity_pps = 1000000

[[ram.links]]
a = "ry"
b = "fra"
latency_us = 100
capacity_pps = 1000000

[[ram.destinations]]
id = 1
site = "fra"
"#,
        sx = bed.ifname("s", "x"),
        sy = bed.ifname("s", "y"),
    )
}

struct Steerd {
    child: Child,
    socket: std::path::PathBuf,
    log: std::path::PathBuf,
    json: std::path::PathBuf,
}

impl Steerd {
    fn links(&self) -> Value {
        let r = client::call(&self.socket, &Request::RamLinks, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("ctl: {e}: {}", self.log_text()));
        assert_eq!(r["ok"], true, "{r}");
        r["result"].clone()
    }

    fn next_hops(&self) -> Value {
        self.links()["paths"][0]["next_hops"].clone()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most `secs`) until `f` holds; returns how long it took.
    fn wait(&mut self, what: &str, secs: u64, mut f: impl FnMut(&Steerd) -> bool) -> Duration {
        let t0 = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("steerd exited ({st}): {}", self.log_text());
            }
            if f(self) {
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "timed out: {what}: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Steerd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn ctl_text(socket: &Path, args: &[&str]) -> String {
    let o = Command::new(STEERD)
        .args(["ctl", "--socket"])
        .arg(socket)
        .args(args)
        .output()
        .expect("steerd ctl");
    assert!(o.status.success(), "{o:?}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_lost_carrier_moves_steered_traffic_to_the_other_path() {
    failover("a", 0);
}

/// With `link_up_hold_ms`, the path comes back only once the carrier has stayed up.
#[test]
fn a_returning_carrier_is_used_again_only_after_the_up_hold() {
    failover("h", 300);
}

fn failover(tag: &str, up_hold_ms: u64) {
    let Some(bed) = Bed::up(tag) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("steerd.toml");
    std::fs::write(&cfg, config(&bed, up_hold_ms)).unwrap();
    let socket = dir.path().join("ctl.sock");
    let log = dir.path().join("steerd.log");
    let json = dir.path().join("summary.json");
    let child = Command::new("ip")
        .args([
            "netns", "exec", &bed.s, STEERD, "run", "--quiet", "--config",
        ])
        .arg(&cfg)
        .arg("--ctl-socket")
        .arg(&socket)
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start steerd");
    let mut s = Steerd {
        child,
        socket,
        log,
        json,
    };
    s.wait("the ctl socket", 20, |s| s.socket.exists());
    s.wait("the RAM's path through x", 10, |s| {
        s.next_hops() == serde_json::json!(["steer-x"])
    });
    s.wait("traffic at B's x", 10, |_| bed.rx("x") > 1000);
    let y0 = bed.rx("y");

    // B's x goes down: steerd's x loses its carrier. (At a random point of the RAM's
    // 100 ms carrier poll, so runs sample how long it takes.)
    std::thread::sleep(Duration::from_millis(u64::from(unix_ms() as u32 % 100)));
    let x_before = bed.rx("x");
    let t0 = Instant::now();
    let t0_ms = unix_ms();
    bed.set_b("x", "down");
    let took = s.wait("the RAM's path through y", 5, |s| {
        s.next_hops() == serde_json::json!(["steer-y"])
    });
    let v = s.links();
    assert_eq!(v["links"][0]["state"], "down", "{v}");
    assert_eq!(v["links"][0]["down_because"], "no carrier", "{v}");
    // When the RAM saw it (and re-placed, in the same step), from before `ip link set`.
    let seen_ms = v["links"][0]["changed_unix_ms"]
        .as_u64()
        .unwrap()
        .saturating_sub(t0_ms);
    assert_eq!(v["links"][1]["state"], "up", "{v}");
    // The RAM listens for the kernel's link notifications about x and y (whether this
    // change reached it by one or by the poll is a race between the two).
    assert!(
        v["link_watch"]["how"]
            .as_str()
            .is_some_and(|h| h.starts_with("link notifications (")),
        "{v}"
    );
    s.wait("traffic at B's y", 5, |_| bed.rx("y") > y0 + 1000);
    let text = ctl_text(&s.socket, &["ram", "links"]);
    assert!(
        text.contains("down (no carrier)")
            && text.contains("next hop steer-y")
            && text.contains("link state from: link notifications (sd"),
        "{text}"
    );
    println!("{text}");

    // B's x comes back: so does the path (after the up hold, if there is one).
    bed.set_b("x", "up");
    let t_up = Instant::now();
    if up_hold_ms > 0 {
        s.wait("x held down while its carrier returns", 5, |s| {
            s.links()["links"][0]["down_because"] == "carrier returning"
        });
    }
    let back = s.wait("the RAM's path through x again", 5, |s| {
        s.next_hops() == serde_json::json!(["steer-x"])
    });
    // Not before the hold, counted from the first read of the returned carrier (which
    // `ip link set up` had restored before it returned; allow for a slow command).
    assert!(
        t_up.elapsed() >= Duration::from_millis(up_hold_ms * 2 / 3),
        "back on x {back:?} after its carrier returned, with a {up_hold_ms} ms hold"
    );
    let x_up = bed.rx("x");
    s.wait("traffic at B's x again", 5, |_| bed.rx("x") > x_up + 1000);
    // The kernel announces a change within a second (its link watch's rate limit).
    s.wait("a link notification about x", 5, |s| {
        s.links()["link_watch"]["events"]
            .as_u64()
            .is_some_and(|n| n >= 1)
    });
    let down_s = t0.elapsed().as_secs_f64();

    // SAFETY: kill() on our own child's pid (ip netns exec execs steerd) with SIGINT.
    unsafe { libc::kill(s.child.id() as libc::pid_t, libc::SIGINT) };
    let t_stop = Instant::now();
    let status = loop {
        if let Some(st) = s.child.try_wait().expect("wait for steerd") {
            break st;
        }
        assert!(
            t_stop.elapsed() < Duration::from_secs(15),
            "steerd did not stop on SIGINT: {}",
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}: {}", s.log_text());
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&s.json).unwrap()).unwrap();
    assert_eq!(j["accounted"], true, "{j}");
    let ram = &j["ram"];
    assert!(ram["link_changes"].as_u64().unwrap() >= 2, "{ram}");
    // Loss: what the generator sent that B never received: what steerd sent on x
    // between the carrier loss and the new path. The kernel refuses those frames while x
    // has no carrier, and steerd's port discards them (`tx_discarded`) rather than
    // letting them go out, stale, when the carrier returns.
    let port = |n: &str| {
        j["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == n)
            .unwrap_or_else(|| panic!("no port {n}: {j}"))
            .clone()
    };
    let generated = port("gen")["rx_packets"].as_u64().unwrap();
    let got = bed.rx("x") + bed.rx("y");
    let lost = generated.saturating_sub(got);
    let discarded = port("x")["backend"]["tx_discarded"].as_u64().unwrap();
    println!(
        "{}",
        serde_json::json!({
            "test": "failover",
            "link_up_hold_ms": up_hold_ms,
            "rate_pps": RATE,
            "rerouted_after_ms": seen_ms,
            "ctl_saw_it_after_ms": (took.as_secs_f64() * 1e3).round(),
            "back_ms": (back.as_secs_f64() * 1e3).round(),
            "lost_packets": lost,
            "x_tx_discarded": discarded,
            "x_received_before": x_before,
            "down_for_s": (down_s * 10.0).round() / 10.0,
        })
    );
    // A notification wakes the RAM at once, and it polls carriers every 100 ms besides;
    // allow for a loaded machine.
    assert!(
        seen_ms < 1000,
        "rerouted {seen_ms} ms after the link went down"
    );
    assert!(
        lost <= RATE,
        "{lost} of {generated} packets lost: more than 1 s of traffic"
    );
    // What was lost is what x discarded (B also counts a few frames of steerd's own).
    assert!(
        discarded + 50 >= lost,
        "lost {lost}, x discarded {discarded}"
    );
}
