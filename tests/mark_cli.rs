//! `steerd mark` without root: the example config validates; bad configs are refused
//! naming the field; and a capture of plain traffic marked by `steerd mark` (pcap in,
//! pcap out) and then forwarded by `steerd run` (pcap, trusted port) is steered, leaves
//! without headers, and unmarked traffic is routed by LPM.

mod common;

use common::text;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use steerd::config::Config;
use steerd::wire::pcap::PcapReader;

const STEERD: &str = env!("CARGO_BIN_EXE_steerd");
const KEY: &str = "4f1c2a9e7b3d5c6a8e0f1a2b3c4d5e6f";

#[test]
fn example_config_validates() {
    let cfg = Config::load(&common::root().join("conf/mark-example.toml")).expect("valid");
    let mc = steerd::ipm::config::marker_config(&cfg)
        .expect("valid [mark]")
        .expect("a [mark] section");
    assert_eq!(mc.destinations.len(), 3);
    assert_eq!(mc.rules.len(), 3);
    assert!(mc.keys.previous.is_some());
    let m = steerd::ipm::Marker::new(mc).expect("builds");
    assert_eq!(m.dest_of("198.18.200.1".parse().unwrap()), Some(2));
    assert!(m.is_active(3) && !m.is_active(4));
    for f in ["conf/testbed-mark.toml", "conf/testbed-mark-steerd.toml"] {
        Config::load(&common::root().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
}

#[test]
fn bad_mark_configs_name_the_field() {
    let base = std::fs::read_to_string(common::root().join("conf/mark-example.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "from = \"edge\", to = \"core\"",
            "from = \"nope\", to = \"core\"",
            "mark.pairs[0].from: no port named \"nope\"",
        ),
        (
            "prefix = \"198.18.0.0/16\"",
            "prefix = \"198.18.0.0/33\"",
            "mark.destinations[0].prefix: prefix length 33",
        ),
        (
            "dst_port = \"16384-32767\"",
            "dst_port = \"9-1\"",
            "mark.rules[0].dst_port",
        ),
        (
            "app = \"realtime\"",
            "app = \"telepathy\"",
            "mark.rules[0].app: \"telepathy\" is not an application class",
        ),
        (
            "priority = 3\n",
            "priority = 9\n",
            "mark.rules[0].priority: 9 is above 3",
        ),
        ("flows = 65536", "flows = 3", "mark.flows"),
        (
            "id = 2\n",
            "id = 70000\n",
            "mark.destinations[1].id: 70000 is above 65535",
        ),
        ("idle_us = 0", "idle_usec = 0", "unknown field `idle_usec`"),
        (
            "threads = 1",
            "threads = 0",
            "mark.threads: 0 is outside 1..=64",
        ),
        (
            "# cores = [2, 3]",
            "cores = []",
            "mark.cores: 0 core(s) for 1 thread(s)",
        ),
        (
            "# cores = [2, 3]",
            "cores = [4096]",
            "mark.cores: core 4096 does not exist",
        ),
        (
            "# epoch_poll_ms = 500",
            "follow_steering = true",
            "mark.follow_steering: needs mark.epoch_from",
        ),
        (
            "# epoch_from = \"/run/steerd/ctl.sock\"",
            "epoch_from = \"/run/steerd/ctl.sock\"\nfollow_steering = true",
            "mark.active: not used with mark.follow_steering",
        ),
    ];
    for (i, (from, to, want)) in cases.iter().enumerate() {
        assert!(base.contains(from), "case {i}: {from}");
        let p = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&p, base.replacen(from, to, 1)).unwrap();
        let o = Command::new(STEERD)
            .args(["mark", "--config", p.to_str().unwrap(), "--duration", "0.1"])
            .output()
            .unwrap();
        let out = text(&o);
        assert_eq!(o.status.code(), Some(2), "case {i}: {out}");
        assert!(out.contains(want), "case {i}: want {want:?} in: {out}");
        assert!(
            out.contains(&format!("bad{i}.toml:")),
            "case {i}: names the file and line: {out}"
        );
    }
    // No key: the marker cannot tag.
    let p = dir.path().join("nokey.toml");
    let t = base.replace(
        "keys = [\"00112233445566778899aabbccddeeff\", \"ffeeddccbbaa99887766554433221100\"]",
        "",
    );
    std::fs::write(&p, t).unwrap();
    let o = Command::new(STEERD)
        .args(["mark", "--config", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        text(&o).contains("steering.keys: the marker needs a steering key"),
        "{}",
        text(&o)
    );
    // A run config without [mark].
    let o = Command::new(STEERD)
        .args([
            "mark",
            "--config",
            common::root()
                .join("conf/testbed-afpacket.toml")
                .to_str()
                .unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("needs a [mark] section"), "{}", text(&o));
}

fn udp_frame(src: [u8; 4], dst: [u8; 4], dport: u16, len: usize) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 1, 2], [2, 0, 0, 0, 1, 1])
        .ipv4(src, dst, 64)
        .udp(40000, dport);
    let payload = vec![7u8; len];
    let mut v = Vec::new();
    b.write(&mut v, &payload).unwrap();
    v
}

fn udp6_frame(dst: [u8; 16], dport: u16) -> Vec<u8> {
    let mut src = [0u8; 16];
    src[0] = 0xfd;
    src[1] = 0x01;
    src[15] = 2;
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 1, 2], [2, 0, 0, 0, 1, 1])
        .ipv6(src, dst, 64)
        .udp(40000, dport);
    let mut v = Vec::new();
    b.write(&mut v, &[1u8; 40]).unwrap();
    v
}

fn read_pcap(p: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(p).unwrap();
    PcapReader::new(&b)
        .unwrap()
        .map(|r| r.unwrap().data.to_vec())
        .collect()
}

/// 100 IPv4 frames to destination 1 (100 flows), 20 IPv6 to destination 2, 10 to no
/// destination, 5 too big for the header.
fn plain_frames() -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for i in 0..100u8 {
        frames.push(udp_frame([10, 1, 0, 2], [10, 2, 0, i], 5201, 100));
    }
    let mut v6 = [0u8; 16];
    v6[0] = 0xfd;
    v6[1] = 0x02;
    v6[15] = 2;
    for _ in 0..20 {
        frames.push(udp6_frame(v6, 53));
    }
    for _ in 0..10 {
        frames.push(udp_frame([10, 1, 0, 2], [10, 3, 0, 1], 80, 10)); // no destination
    }
    for _ in 0..5 {
        frames.push(udp_frame([10, 1, 0, 2], [10, 2, 0, 1], 80, 1472)); // 1500-byte IP
    }
    frames
}

/// The marker's config for [`plain_frames`] on `ports`.
fn mark_toml(ports: &str) -> String {
    format!(
        r#"{ports}
[steering]
keys = ["{KEY}"]
epoch = 3
[mark]
pairs = [{{ from = "in", to = "out" }}]
[[mark.destinations]]
prefix = "10.2.0.0/24"
id = 1
[[mark.destinations]]
prefix = "fd02::/64"
id = 2
"#
    )
}

/// The marker's counters for [`plain_frames`].
fn assert_plain_frames_marked(m: &Value) {
    assert_eq!(m["rx_packets"], 135, "{m}");
    assert_eq!(m["tx_packets"], 135, "{m}");
    assert_eq!(m["marked"], 120, "{m}");
    assert_eq!(m["marked_by_dest"]["1"], 100, "{m}");
    assert_eq!(m["marked_by_dest"]["2"], 20, "{m}");
    assert_eq!(m["unmarked"]["no_dest"], 10, "{m}");
    assert_eq!(m["unmarked"]["too_big"], 5, "{m}");
    assert_eq!(m["flow_table"]["misses"], 100 + 1 + 1 + 1, "{m}");
}

#[test]
fn marked_capture_is_steered_by_steerd_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::write_pcap(&d.join("plain.pcap"), &plain_frames());
    std::fs::write(d.join("mark.toml"), mark_toml(common::MARK_PCAP_PORTS)).unwrap();
    let o = Command::new(STEERD)
        .args([
            "mark",
            "--config",
            d.join("mark.toml").to_str().unwrap(),
            "--json",
        ])
        .arg(d.join("mark.json"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let m: Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert_eq!(
        m,
        serde_json::from_str::<Value>(&std::fs::read_to_string(d.join("mark.json")).unwrap())
            .unwrap()
    );
    assert_plain_frames_marked(&m);
    let marked = read_pcap(&d.join("marked.pcap"));
    assert_eq!(marked.len(), 135);
    assert_eq!(
        marked.iter().filter(|f| f[12..14] == [0x89, 0x4f]).count(),
        120
    );

    std::fs::write(
        d.join("run.toml"),
        format!(
            r#"
[general]
workers = 1
[[ports]]
name = "in"
backend = "pcap"
rx_file = "marked.pcap"
trusted = true
[[ports]]
name = "out"
backend = "pcap"
tx_file = "out.pcap"
mtu = 1500
[[next_hops]]
name = "lpm"
port = "out"
mac = "02:00:00:00:09:01"
[[next_hops]]
name = "steer"
port = "out"
mac = "02:00:00:00:09:02"
[[routes]]
prefix = "10.0.0.0/8"
via = "lpm"
[[routes]]
prefix = "fd00::/8"
via = "lpm"
[steering]
keys = ["{KEY}"]
epoch = 4
max_epoch_age = 2
[[steering.destinations]]
id = 1
next_hop = "steer"
[[steering.destinations]]
id = 2
next_hop = "steer"
"#
        ),
    )
    .unwrap();
    let o = Command::new(STEERD)
        .args([
            "run",
            "--quiet",
            "--metrics-listen",
            "off",
            "--ctl-socket",
            "off",
            "--config",
        ])
        .arg(d.join("run.toml"))
        .arg("--json")
        .arg(d.join("run.json"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("run.json")).unwrap()).unwrap();
    assert_eq!(r["steered_packets"], 120, "{r}");
    assert_eq!(r["routed_packets"], 15, "{r}");
    let out = read_pcap(&d.join("out.pcap"));
    assert_eq!(out.len(), 135);
    assert!(
        out.iter().all(|f| f[12..14] != [0x89, 0x4f]),
        "headers removed"
    );
    assert_eq!(
        out.iter().filter(|f| f[5] == 2).count(),
        120,
        "steered to the steering next hop"
    );
    assert_eq!(
        out.iter().filter(|f| f[5] == 1).count(),
        15,
        "the rest by LPM"
    );
}

/// SIGHUP with new keys: frames before it are tagged under the old key, after it under
/// the new one; a reload that changes something else is refused and changes nothing.
#[test]
fn sighup_rotates_the_marking_key() {
    sighup_rotation(1);
}

/// The same with two marker threads: each applies the reload.
#[test]
fn sighup_rotates_the_key_of_every_marker_thread() {
    sighup_rotation(2);
}

fn sighup_rotation(threads: usize) {
    use steerd::steering::{Key, SteeringKeys, TagFields};
    const K2: &str = "00112233445566778899aabbccddeeff";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = |keys: &str, mtu: u16| {
        format!(
            r#"
[[ports]]
name = "gen"
backend = "mem"
[ports.generator]
dst = ["10.2.0.0/24"]
flows = 16
rate_pps = 2000
[[ports]]
name = "out"
backend = "pcap"
tx_file = "out.pcap"
[steering]
keys = [{keys}]
[mark]
pairs = [{{ from = "gen", to = "out" }}]
mtu = {mtu}
threads = {threads}
[[mark.destinations]]
prefix = "10.2.0.0/24"
id = 1
"#
        )
    };
    let p = d.join("mark.toml");
    std::fs::write(&p, cfg(&format!("\"{KEY}\""), 1500)).unwrap();
    let mut child = Command::new(STEERD)
        .args(["mark", "--duration", "5", "--config", p.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The log, read as it comes: each step waits for the line that says the previous one
    // happened (a loaded machine starts the child late), not for a fixed time.
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let log = log.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        })
    };
    let wait_for = |needle: &str| {
        let t0 = std::time::Instant::now();
        while !log.lock().unwrap().contains(needle) {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(20),
                "no {needle:?} in the log: {}",
                log.lock().unwrap()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };
    let hup = || {
        // SAFETY: kill() on our own child's pid with a valid signal number.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGHUP) };
    };
    // Logged once the signal handlers are in place and the threads start.
    wait_for("thread(s), epoch");
    std::thread::sleep(std::time::Duration::from_millis(1000));
    // Refused: mtu is not a live setting.
    std::fs::write(&p, cfg(&format!("\"{K2}\""), 1400)).unwrap();
    hup();
    wait_for("reload refused");
    std::fs::write(&p, cfg(&format!("\"{K2}\", \"{KEY}\""), 1500)).unwrap();
    hup();
    wait_for("mark: reloaded");
    let mut o = child.wait_with_output().unwrap();
    reader.join().unwrap();
    o.stderr = log.lock().unwrap().clone().into_bytes();
    assert!(o.status.success(), "{}", text(&o));
    let m: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(m["reloads"], 1, "{m}");
    assert!(text(&o).contains("reload refused"), "{}", text(&o));
    let only = |k: &str| SteeringKeys {
        current: Key::from_hex(k).unwrap(),
        previous: None,
    };
    let (old, new) = (only(KEY), only(K2));
    let mut seq = Vec::new();
    for f in read_pcap(&d.join("out.pcap")) {
        let k = steerd::wire::classify(&f).unwrap();
        let h = k.nsh.expect("every generated frame is marked");
        let o = usize::from(k.l3_off);
        let (s, dst) = (&f[o + 12..o + 16], &f[o + 16..o + 20]);
        let tf = TagFields {
            dest_id: h.dest_id,
            app_class: h.app_class,
            priority: h.priority,
            flags: h.flags,
            epoch: h.epoch,
            spi: h.spi,
            si: h.si,
        };
        match (
            old.verify(&tf, s, dst, h.tag),
            new.verify(&tf, s, dst, h.tag),
        ) {
            (true, false) => seq.push(1),
            (false, true) => seq.push(2),
            other => panic!("tag verifies under {other:?}"),
        }
    }
    let first_new = seq
        .iter()
        .position(|&k| k == 2)
        .expect("frames under the new key");
    assert!(
        first_new > 1000,
        "the refused reload changed nothing: {first_new}"
    );
    if threads == 1 {
        assert!(
            seq[first_new..].iter().all(|&k| k == 2),
            "the new key from the reload on"
        );
    } else {
        // The threads' queues interleave in the file: each thread takes the reload on its
        // next loop, so only the tail is certain.
        assert!(seq[seq.len() - 100..].iter().all(|&k| k == 2), "{seq:?}");
    }
    let t = m["threads"].as_array().expect("threads");
    assert_eq!(t.len(), threads, "{m}");
    for th in t {
        assert_eq!(th["reloads_applied"], 1, "{m}");
        assert!(th["marked"].as_u64().unwrap() > 1000, "{m}");
    }
    assert_eq!(m["marked"], seq.len() as u64, "{m}");
}

/// Two marker threads: each has its own generator queue and sink queue, its own flow
/// table; together they account for every packet, and each does half the work.
#[test]
fn two_marker_threads_share_the_work() {
    share_the_work("threads = 2", &[]);
}

/// The same with `--threads 2` on the command line over the file's `threads = 1`; and
/// `--threads 0` is refused naming the option.
#[test]
fn an_unwritable_json_path_is_refused_before_marking() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("no-such-dir/mark.json");
    let o = Command::new(STEERD)
        .args([
            "mark",
            "--duration",
            "30",
            "--json",
            bad.to_str().unwrap(),
            "--config",
        ])
        .arg(common::root().join("conf/mark-example.toml"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("--json") && t.contains("cannot create"), "{t}");
}

#[test]
fn threads_option_overrides_the_file() {
    share_the_work("threads = 1", &["--threads", "2"]);
    let o = Command::new(STEERD)
        .args(["mark", "--threads", "0", "--config"])
        .arg(common::root().join("conf/mark-example.toml"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).contains("--threads: 0 is outside 1..=64"),
        "{}",
        text(&o)
    );
    // More threads than the file's cores name: refused naming mark.cores.
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(common::root().join("conf/mark-example.toml")).unwrap();
    let p = dir.path().join("cores.toml");
    std::fs::write(&p, base.replace("# cores = [2, 3]", "cores = [0]")).unwrap();
    let o = Command::new(STEERD)
        .args(["mark", "--threads", "2", "--config", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).contains("mark.cores: 1 core(s) for --threads 2: name one core per thread"),
        "{}",
        text(&o)
    );
}

fn share_the_work(threads_line: &str, args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("mark2.toml"),
        format!(
            r#"
[general]
pool_buffers = 1024
[[ports]]
name = "in"
backend = "mem"
[ports.generator]
flows = 256
dst = ["10.2.0.0/24", "10.3.0.0/24"]
sizes = [128]
steered_fraction = 0.0
fault_fraction = 0.0
packets = 200000
[[ports]]
name = "out"
backend = "mem"
[steering]
keys = ["{KEY}"]
[mark]
pairs = [{{ from = "in", to = "out" }}]
{threads_line}
[[mark.destinations]]
prefix = "10.2.0.0/24"
id = 1
"#
        ),
    )
    .unwrap();
    let o = Command::new(STEERD)
        .args(["mark", "--config", d.join("mark2.toml").to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let m: Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert_eq!(m["rx_packets"], 200_000, "{m}");
    assert_eq!(m["tx_packets"], 200_000, "{m}");
    assert_eq!(m["accounted"], true, "{m}");
    let t = m["threads"].as_array().expect("threads");
    assert_eq!(t.len(), 2, "{m}");
    for th in t {
        assert_eq!(
            th["rx_packets"], 100_000,
            "each thread's generator queue: {m}"
        );
    }
    let marked = m["marked"].as_u64().unwrap();
    assert_eq!(
        marked,
        t.iter().map(|x| x["marked"].as_u64().unwrap()).sum::<u64>(),
        "{m}"
    );
    // Half the destinations are in the map: about half the packets are marked, the rest
    // pass as no_dest; nothing else.
    assert!((90_000..=110_000).contains(&marked), "{m}");
    assert_eq!(m["marked_by_dest"]["1"], marked, "{m}");
    assert_eq!(
        marked + m["unmarked"]["no_dest"].as_u64().unwrap(),
        200_000,
        "{m}"
    );
    // Each thread's generator queue cycles through all 256 flows and each thread has its
    // own table: each classifies every flow once.
    assert_eq!(m["flow_table"]["misses"], 2 * 256, "{m}");
}

/// A marker on DPDK ports cannot pass its mbufs to another backend's port: the config is
/// refused before any port opens, naming the field. (Without the dpdk feature it is
/// refused too: no dpdk backend in that build.)
#[cfg(feature = "dpdk")]
#[test]
fn dpdk_beside_another_backend_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ports = common::MARK_PCAP_PORTS.replace(
        "backend = \"pcap\"\nrx_file = \"plain.pcap\"",
        "backend = \"dpdk\"\ndevice = \"net_pcap0\"",
    );
    let ports = format!("[dpdk]\nvdevs = [\"net_pcap0,rx_pcap=plain.pcap\"]\n{ports}");
    std::fs::write(d.join("mixed.toml"), mark_toml(&ports)).unwrap();
    let o = Command::new(STEERD)
        .args(["mark", "--config", d.join("mixed.toml").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("ports[1].backend: a run with dpdk ports needs every port on DPDK"),
        "{}",
        text(&o)
    );
}

/// `steerd mark` on DPDK ports (net_pcap vdevs, `--no-huge`): the same frames as
/// [`marked_capture_is_steered_by_steerd_run`] come out of DPDK marked byte for byte as
/// on pcap ports, with the same counters, and DPDK's own statistics agree. Runs with
/// `--features dpdk`; needs root (the EAL's runtime directory, vdevs).
#[cfg(feature = "dpdk")]
#[test]
fn marker_on_dpdk_ports_marks_as_on_pcap_ports() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        common::skip("the DPDK EAL needs root here (runtime directory under /var/run/dpdk)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::write_pcap(&d.join("plain.pcap"), &plain_frames());
    std::fs::write(d.join("pcap.toml"), mark_toml(common::MARK_PCAP_PORTS)).unwrap();
    let ports = format!(
        r#"
[dpdk]
cores = "0"
no_huge = true
mem_mb = 256
file_prefix = "steerd-mark-test-{pid}"
log_level = "error"
vdevs = ["net_pcap0,rx_pcap=plain.pcap", "net_pcap1,tx_pcap=dpdk-marked.pcap"]
[[ports]]
name = "in"
backend = "dpdk"
device = "net_pcap0"
[[ports]]
name = "out"
backend = "dpdk"
device = "net_pcap1"
queues = 0
"#,
        pid = std::process::id()
    );
    std::fs::write(d.join("dpdk.toml"), mark_toml(&ports)).unwrap();
    let run = |cfg: &str, extra: &[&str]| -> Value {
        let o = Command::new(STEERD)
            .args(["mark", "--config", d.join(cfg).to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{cfg}: {}", text(&o));
        serde_json::from_slice(&o.stdout).expect("JSON on stdout")
    };
    let via_pcap = run("pcap.toml", &[]);
    // A net_pcap port stays open after its file ends: a fixed duration stops the run.
    let via_dpdk = run("dpdk.toml", &["--duration", "3"]);
    assert_plain_frames_marked(&via_pcap);
    assert_plain_frames_marked(&via_dpdk);
    assert_eq!(via_dpdk["tx_drops"], 0, "{via_dpdk}");
    let dp = &via_dpdk["dpdk"]["ports"];
    assert_eq!(dp[0]["stats"]["ipackets"], 135, "{via_dpdk}");
    assert_eq!(dp[1]["stats"]["opackets"], 135, "{via_dpdk}");
    let a = read_pcap(&d.join("marked.pcap"));
    let b = read_pcap(&d.join("dpdk-marked.pcap"));
    assert_eq!(a.len(), 135);
    assert_eq!(a, b, "the same bytes out of DPDK as out of the pcap port");
}

/// While running, a stats line each `general.stats_interval_ms` gives the rates the
/// threads publish; `--quiet` leaves only the summary.
#[test]
fn stats_lines_while_running_and_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rate.toml");
    std::fs::write(
        &p,
        format!(
            r#"
[general]
stats_interval_ms = 500
[[ports]]
name = "in"
backend = "mem"
[ports.generator]
dst = ["10.2.0.0/24", "10.3.0.0/24"]
flows = 64
rate_pps = 4000
[[ports]]
name = "out"
backend = "mem"
[steering]
keys = ["{KEY}"]
[mark]
pairs = [{{ from = "in", to = "out" }}]
[[mark.destinations]]
prefix = "10.2.0.0/24"
id = 1
"#
        ),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let o = Command::new(STEERD)
            .args(["mark", "--duration", "2.6", "--config", p.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let log = String::from_utf8_lossy(&o.stderr).into_owned();
        let rates: Vec<(f64, f64, f64)> = log
            .lines()
            .filter_map(|l| l.split_once("mark: rx ").map(|x| x.1))
            .map(|l| {
                let num = |key: &str| -> f64 {
                    let (_, rest) = l.split_once(key).unwrap_or_else(|| panic!("{key}: {l}"));
                    rest.split_whitespace().next().unwrap().parse().unwrap()
                };
                (num(""), num("marked "), num("unmarked "))
            })
            .collect();
        (rates, log)
    };
    let (rates, log) = run(&[]);
    assert!(rates.len() >= 3, "a line each 500 ms: {log}");
    // The first interval may start before the generator does; the rest see its rate,
    // half of it to the mapped destination (marked), half to none (unmarked no_dest).
    for &(rx, marked, unmarked) in &rates[1..] {
        assert!((2000.0..=6000.0).contains(&rx), "{log}");
        assert!((rx * 0.3..=rx * 0.7).contains(&marked), "{log}");
        assert!((marked + unmarked - rx).abs() <= rx * 0.05 + 10.0, "{log}");
    }
    assert!(log.contains("(no_dest "), "the reason is named: {log}");
    let (rates, log) = run(&["--quiet"]);
    assert!(rates.is_empty(), "{log}");
}
