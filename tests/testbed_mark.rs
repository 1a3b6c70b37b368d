//! The marker on the netns test bed (root): `scripts/testbed.sh up mark` (own prefix
//! `sdm<pid><n>-`), then in the router namespace `steerd run`
//! (conf/testbed-mark-steerd.toml, its port from the marker trusted for steering, the
//! port toward B stripping headers) and in front of it `steerd mark`
//! (conf/testbed-mark.toml, following steerd's epoch over its ctl socket):
//!
//! ```text
//! A ── veth-ra [steerd mark] veth-m0 ══ veth-m1 [steerd run] veth-rb ── B
//! ```
//!
//! Real traffic from A (ping v4 and v6, iperf3 UDP and its TCP control connection, and
//! a ping too big to mark) must arrive at B as plain IP: tcpdump in B sees no NSH
//! (EtherType 0x894f) frame, and every packet from A; the marker's summary shows what
//! it marked, steerd's shows every marked packet took the steered path (`steered`, no
//! fallbacks), and the too-big ping passed unmarked and was routed by LPM.
//!
//! Without root or a tool: `SKIPPED: <reason>`; with `CI=true` a failure.

mod common;

use common::text;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

const STEERD: &str = env!("CARGO_BIN_EXE_steerd");

struct Bed {
    prefix: String,
    dir: tempfile::TempDir,
}

impl Bed {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(common::root().join("scripts/testbed.sh"));
        c.args(args).env("STEERD_TESTBED_PREFIX", &self.prefix);
        c
    }

    fn run(&self, ns: &str, args: &[&str]) -> Output {
        let mut v = vec!["run", ns, "--"];
        v.extend_from_slice(args);
        self.command(&v).output().expect("scripts/testbed.sh")
    }

    fn spawn(&self, ns: &str, args: &[&str], log: &Path) -> Child {
        let mut v = vec!["run", ns, "--"];
        v.extend_from_slice(args);
        self.command(&v)
            .stdout(std::fs::File::create(log.with_extension("out")).expect("log"))
            .stderr(std::fs::File::create(log).expect("log"))
            .spawn()
            .expect("spawn in the test bed")
    }

    fn path(&self, n: &str) -> PathBuf {
        self.dir.path().join(n)
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = self.command(&["down"]).output();
    }
}

/// SIGINT, then wait (the script execs into the program: the child is it).
fn stop(mut c: Child, what: &str, log: &Path) {
    // SAFETY: kill() on our own child's pid with a valid signal number.
    unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGINT) };
    let t0 = Instant::now();
    loop {
        if let Some(st) = c.try_wait().expect("wait") {
            assert!(
                st.success() || what == "tcpdump",
                "{what} exited with {st}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            return;
        }
        if t0.elapsed() > Duration::from_secs(15) {
            let _ = c.kill();
            panic!("{what} did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn json(p: &Path) -> Value {
    let t = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&t).expect("JSON summary")
}

fn n(v: &Value, p: &str) -> u64 {
    v.pointer(p).and_then(Value::as_u64).unwrap_or(0)
}

fn ping(bed: &Bed, args: &[&str]) -> u64 {
    let mut a = vec!["ping", "-q", "-W", "2"];
    a.extend_from_slice(args);
    let o = bed.run("a", &a);
    let out = text(&o);
    assert!(
        o.status.success() && out.contains(" 0% packet loss"),
        "ping {args:?}: {out}"
    );
    out.lines()
        .find_map(|l| l.split(" packets transmitted").next()?.trim().parse().ok())
        .unwrap_or_else(|| panic!("ping output: {out}"))
}

/// One test bed at a time: each runs two poll-mode processes on a shared 2-core machine.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn marked_traffic_is_steered_and_arrives_plain() {
    marked_traffic(1, false);
}

/// The same with two marker threads, each on its own AF_PACKET fanout queue of every
/// port: the counters of both add up and every packet is still marked and steered.
#[test]
fn two_marker_threads_mark_real_traffic() {
    marked_traffic(2, false);
}

/// The marker on DPDK ports (net_af_packet vdevs on the same interfaces, `--no-huge`):
/// the same traffic, the same checks. Runs with `--features dpdk`.
#[cfg(feature = "dpdk")]
#[test]
fn marker_on_dpdk_ports_marks_real_traffic() {
    marked_traffic(1, true);
}

fn marked_traffic(threads: usize, dpdk: bool) {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: geteuid() has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        common::skip("needs root (network namespaces)");
        return;
    }
    for (cmd, pkg) in [
        ("ip", "iproute2"),
        ("ethtool", "ethtool"),
        ("ping", "iputils-ping"),
        ("iperf3", "iperf3"),
        ("tcpdump", "tcpdump"),
    ] {
        if !common::have(cmd) {
            common::skip(&format!(
                "{cmd} is missing (scripts/install-testbed-deps.sh installs {pkg})"
            ));
            return;
        }
    }
    static N: AtomicU32 = AtomicU32::new(0);
    let bed = Bed {
        prefix: format!(
            "sdm{}{}-",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ),
        dir: tempfile::tempdir().expect("temp dir"),
    };
    let o = bed.command(&["up", "mark"]).output().expect("testbed.sh");
    assert!(o.status.success(), "testbed.sh up mark: {}", text(&o));

    // steerd at epoch 9; the marker's file says 1 (which steerd would refuse as stale):
    // it must take 9 from steerd's ctl socket.
    let root = common::root();
    let sock = bed.path("ctl.sock");
    let run_cfg = bed.path("steerd.toml");
    let s = std::fs::read_to_string(root.join("conf/testbed-mark-steerd.toml")).unwrap();
    std::fs::write(&run_cfg, s.replace("epoch = 1\n", "epoch = 9\n")).unwrap();
    let mark_cfg = bed.path("mark.toml");
    let s = std::fs::read_to_string(root.join("conf/testbed-mark.toml")).unwrap();
    let s = s.replace(
        "# epoch_from = \"/run/steerd/ctl.sock\"",
        &format!(
            "epoch_from = \"{}\"\nepoch_poll_ms = 100\nthreads = {threads}",
            sock.display()
        ),
    );
    assert!(
        s.contains("epoch_from = \"/"),
        "the marker config has the epoch_from line"
    );
    let s = if dpdk {
        let s = s
            .replace(
                "backend = \"afpacket\"\nifname = \"veth-ra\"",
                "backend = \"dpdk\"\ndevice = \"net_af_packet0\"",
            )
            .replace(
                "backend = \"afpacket\"\nifname = \"veth-m0\"",
                "backend = \"dpdk\"\ndevice = \"net_af_packet1\"",
            );
        assert!(!s.contains("\"afpacket\""), "every port on DPDK: {s}");
        format!(
            "[dpdk]\ncores = \"0\"\nno_huge = true\nmem_mb = 256\nfile_prefix = \"{}dpdk\"\n\
             log_level = \"error\"\nvdevs = [\"net_af_packet0,iface=veth-ra,framecnt=4096\", \
             \"net_af_packet1,iface=veth-m0,framecnt=4096\"]\n{s}",
            bed.prefix
        )
    } else {
        s
    };
    std::fs::write(&mark_cfg, s).unwrap();

    let run_json = bed.path("run.json");
    let run_log = bed.path("run.log");
    let steerd = bed.spawn(
        "r",
        &[
            STEERD,
            "run",
            "--config",
            run_cfg.to_str().unwrap(),
            "--json",
            run_json.to_str().unwrap(),
            "--quiet",
            "--metrics-listen",
            "off",
            "--ctl-socket",
            sock.to_str().unwrap(),
        ],
        &run_log,
    );
    let t0 = Instant::now();
    while !sock.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "steerd did not start: {}",
            std::fs::read_to_string(&run_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pcap_b = bed.path("at-b.pcap");
    let dump_log = bed.path("tcpdump.log");
    let dump = bed.spawn(
        "b",
        &[
            "tcpdump",
            "-i",
            "veth-b",
            "-n",
            "-B",
            "8192",
            "-w",
            pcap_b.to_str().unwrap(),
        ],
        &dump_log,
    );
    let mark_json = bed.path("mark.json");
    let mark_log = bed.path("mark.log");
    let marker = bed.spawn(
        "r",
        &[
            STEERD,
            "mark",
            "--config",
            mark_cfg.to_str().unwrap(),
            "--json",
            mark_json.to_str().unwrap(),
        ],
        &mark_log,
    );
    // Ready when steerd answers a ping through the marker (and the marker has had time
    // to ask steerd for its epoch).
    let t0 = Instant::now();
    while !bed
        .run("a", &["ping", "-c", "1", "-W", "1", "10.1.0.1"])
        .status
        .success()
    {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no answer through the marker: {} {}",
            std::fs::read_to_string(&mark_log).unwrap_or_default(),
            std::fs::read_to_string(&run_log).unwrap_or_default()
        );
    }
    std::thread::sleep(Duration::from_millis(500));

    let pings4 = ping(&bed, &["-c", "20", "-i", "0.05", "10.2.0.2"]);
    let pings6 = ping(&bed, &["-c", "10", "-i", "0.05", "fd02::2"]);
    // 1472 bytes of ICMP payload: a 1500-byte IP packet, 1532 with the header: passes
    // unmarked (too_big) and is routed by LPM.
    let big = ping(
        &bed,
        &["-c", "2", "-i", "0.2", "-s", "1472", "-M", "do", "10.2.0.2"],
    );
    let mut server = bed
        .command(&["run", "b", "--", "iperf3", "-s", "-1", "-B", "10.2.0.2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 server");
    let t0 = Instant::now();
    let udp = loop {
        std::thread::sleep(Duration::from_millis(300));
        let o = bed.run(
            "a",
            &[
                "iperf3", "-c", "10.2.0.2", "-u", "-b", "20M", "-l", "1200", "-t", "3", "-J",
            ],
        );
        if o.status.success() || t0.elapsed() > Duration::from_secs(6) {
            break o;
        }
    };
    let _ = server.kill();
    let _ = server.wait();
    let udp: Value = serde_json::from_slice(&udp.stdout)
        .unwrap_or_else(|e| panic!("iperf3 JSON: {e}: {}", text(&udp)));
    let datagrams = n(&udp, "/end/sum/packets");
    let lost = udp["end"]["sum"]["lost_percent"].as_f64().unwrap_or(100.0);
    std::thread::sleep(Duration::from_millis(500));

    stop(marker, "steerd mark", &mark_log);
    stop(steerd, "steerd run", &run_log);
    stop(dump, "tcpdump", &dump_log);
    let m = json(&mark_json);
    let r = json(&run_json);

    // What B received: plain IP only, and everything A sent it.
    let bytes = std::fs::read(&pcap_b).expect("tcpdump's capture");
    let mut nsh_frames = 0u64;
    let mut from_a = 0u64;
    for p in steerd::wire::pcap::PcapReader::new(&bytes)
        .expect("pcap")
        .flatten()
    {
        let f = p.data;
        if f.len() < 14 {
            continue;
        }
        if f[12..14] == [0x89, 0x4f] {
            nsh_frames += 1;
        }
        if let Ok(k) = steerd::wire::classify(f)
            && matches!(k.src_addr(), Some(a) if a.to_string() == "10.1.0.2" || a.to_string() == "fd01::2")
        {
            from_a += 1;
        }
    }
    let marked = n(&m, "/marked");
    let too_big = n(&m, "/unmarked/too_big");
    let steered = n(&r, "/steered_packets");
    let fallbacks: u64 = r["steering_fallbacks"]
        .as_object()
        .map(|o| o.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    println!(
        "marker: {} received, {marked} marked (by destination {}), unmarked {}, flow table {}, epoch {} ({} updates)",
        n(&m, "/rx_packets"),
        m["marked_by_dest"],
        m["unmarked"],
        m["flow_table"],
        m["epoch"],
        m["epoch_updates"]
    );
    println!(
        "steerd: rx {} tx {} steered {steered} routed {} fallbacks {} drops {}",
        r["rx_packets"], r["tx_packets"], r["routed_packets"], r["steering_fallbacks"], r["drops"]
    );
    println!(
        "sent from A: {pings4} pings v4, {pings6} v6, {big} too-big pings, {datagrams} UDP datagrams ({lost:.2}% lost); \
         B received {from_a} packets from A, {nsh_frames} NSH frames"
    );
    println!("marker threads: {}", m["threads"]);
    if dpdk {
        println!("marker's DPDK ports: {}", m["dpdk"]["ports"]);
        let d = &m["dpdk"]["ports"];
        assert_eq!(
            n(&d[0], "/stats/ipackets") + n(&d[1], "/stats/ipackets"),
            n(&m, "/rx_packets"),
            "DPDK's counters agree with the marker's: {m}"
        );
    }
    assert_eq!(nsh_frames, 0, "no steering header reaches host B");
    assert_eq!(m["epoch"], 9, "the marker took steerd's epoch: {m}");
    assert_eq!(m["accounted"], true, "{m}");
    assert_eq!(n(&m, "/tx_drops"), 0, "{m}");
    assert_eq!(n(&m, "/marked_by_dest/1"), marked, "{m}");
    assert_eq!(too_big, big, "the big pings passed unmarked: {m}");
    let sent = pings4 + pings6 + datagrams;
    assert!(datagrams > 0, "UDP moved nothing: {udp}");
    assert!(marked >= sent, "marked {marked} < sent {sent}: {m}");
    assert_eq!(fallbacks, 0, "no marked packet fell back to LPM: {r}");
    assert_eq!(
        steered, marked,
        "every marked packet took the steered path: {r}"
    );
    assert_eq!(r["accounted"], true, "{r}");
    let t = m["threads"].as_array().expect("threads");
    assert_eq!(t.len(), threads, "{m}");
    assert_eq!(
        t.iter().map(|x| n(x, "/marked")).sum::<u64>(),
        marked,
        "the threads' marked add up: {m}"
    );
    assert_eq!(
        t.iter().map(|x| n(x, "/rx_packets")).sum::<u64>(),
        n(&m, "/rx_packets"),
        "{m}"
    );
    // Everything A sent B arrived: the steered packets plus the too-big pings (LPM).
    assert!(
        from_a <= steered + too_big && from_a * 100 >= (steered + too_big) * 99,
        "B received {from_a} of {} packets from A",
        steered + too_big
    );
}
