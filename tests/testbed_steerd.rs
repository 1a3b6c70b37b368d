//! steerd itself routing real traffic between real hosts (root): for each port backend
//! (tap, afpacket, afxdp with `--features afxdp`, and dpdk with `--features dpdk`: DPDK's
//! net_af_packet vdevs on the afpacket bed's veths) the test builds the three-namespace
//! test bed (scripts/testbed.sh, its own prefix, no static ARP), runs the steerd binary
//! in the router namespace with conf/testbed-MODE.toml, and checks
//! - ping A→B and B→A, IPv4 and IPv6, and pings of the router's own addresses: 0% loss
//!   (steerd answers ARP and neighbour solicitations, resolves the hosts, answers echo);
//! - traceroute A→B (v4 and v6) shows steerd's address as hop 1 (ICMP time exceeded);
//! - iperf3 TCP for 10 s and UDP at 100 Mbit/s cross it;
//! - the real capture `captures/real-ab.pcap` (scripts/get-captures.sh) replayed by
//!   tcpreplay from A and captured by tcpdump at B: every packet is delivered or counted
//!   as dropped in steerd's `--json` stats;
//! - steerd's accounting holds: rx = tx + drops + local.
//!
//! Plus the start-up errors (afpacket): a missing interface, a link that is down and a
//! missing privilege each stop `steerd run` with a message naming the port.
//!
//! `cargo test --test testbed_steerd` runs the debug binary; `cargo test --release --test
//! testbed_steerd` the release one (the figures printed are then worth reading). Tests
//! run one at a time (each steerd spins a core). Without root or a needed tool they print
//! `SKIPPED: <reason>`; with `CI=true` they fail instead.

mod common;

use common::text;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One test bed at a time: each runs a poll-mode steerd on a shared 2-core machine.
static SERIAL: Mutex<()> = Mutex::new(());

const STEERD: &str = env!("CARGO_BIN_EXE_steerd");

/// A test bed of our own (prefix `sds<pid><n>-`), torn down on drop.
struct Bed {
    prefix: String,
    dir: tempfile::TempDir,
}

impl Bed {
    fn script() -> PathBuf {
        common::root().join("scripts/testbed.sh")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(Self::script());
        c.args(args).env("STEERD_TESTBED_PREFIX", &self.prefix);
        c
    }

    fn cmd(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run scripts/testbed.sh")
    }

    /// Runs `args` in namespace `ns` (a, b or r).
    fn run(&self, ns: &str, args: &[&str]) -> Output {
        let mut v = vec!["run", ns, "--"];
        v.extend_from_slice(args);
        self.cmd(&v)
    }

    fn up_or_skip(mode: &str, also: &[(&str, &str)]) -> Option<Bed> {
        // SAFETY: geteuid() has no arguments and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            common::skip("needs root (network namespaces)");
            return None;
        }
        let tools = [
            ("ip", "iproute2"),
            ("ethtool", "ethtool"),
            ("ping", "iputils-ping"),
            ("iperf3", "iperf3"),
            ("traceroute", "traceroute"),
        ];
        for (cmd, pkg) in tools.iter().chain(also) {
            if !common::have(cmd) {
                common::skip(&format!(
                    "{cmd} is missing (scripts/install-testbed-deps.sh installs {pkg})"
                ));
                return None;
            }
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let bed = Bed {
            prefix: format!(
                "sds{}{}-",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ),
            dir: tempfile::tempdir().expect("temp dir"),
        };
        let o = bed.cmd(&["up", mode]);
        assert!(o.status.success(), "testbed.sh up {mode}: {}", text(&o));
        Some(bed)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = self.cmd(&["down"]);
    }
}

/// A running steerd in the router namespace.
struct Steerd {
    child: Child,
    json: PathBuf,
    log: PathBuf,
}

impl Steerd {
    fn start(bed: &Bed, config: &Path, tag: &str) -> Steerd {
        let json = bed.path(&format!("{tag}.json"));
        let log = bed.path(&format!("{tag}.log"));
        let cfg = config.to_str().expect("utf-8 path");
        let child = bed
            .command(&[
                "run",
                "r",
                "--",
                STEERD,
                "run",
                "--config",
                cfg,
                "--json",
                json.to_str().expect("utf-8 path"),
                "--quiet",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start steerd");
        let mut s = Steerd { child, json, log };
        // Ready when it answers a ping to its own address.
        let t0 = Instant::now();
        loop {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("steerd exited at start ({st}): {}", s.log_text());
            }
            if bed
                .run("a", &["ping", "-c", "1", "-W", "1", "10.1.0.1"])
                .status
                .success()
            {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "steerd did not answer within 20 s: {}",
                s.log_text()
            );
        }
        s
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Reloads its config by SIGHUP and waits until the reload is applied.
    fn reload(&self) {
        // SAFETY: kill() on our own child's pid (steerd, see `stop`) with SIGHUP.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGHUP) };
        let t0 = Instant::now();
        while !self.log_text().contains("SIGHUP: reload applied") {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "no reload within 10 s: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it with SIGINT (graceful: drain, summary, JSON) and returns its JSON stats.
    fn stop(mut self) -> Value {
        // testbed.sh and `ip netns exec` exec into steerd: the child is steerd.
        // SAFETY: kill() on our own child's pid with a valid signal number.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let t0 = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("wait for steerd") {
                break st;
            }
            if t0.elapsed() > Duration::from_secs(15) {
                let _ = self.child.kill();
                panic!("steerd did not stop on SIGINT: {}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = self.log_text();
        assert!(status.success(), "steerd exited with {status}: {log}");
        let j = std::fs::read_to_string(&self.json).unwrap_or_else(|e| panic!("{e}: {log}"));
        serde_json::from_str(&j).expect("steerd's JSON")
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

fn ping_no_loss(bed: &Bed, ns: &str, dst: &str, label: &str) {
    let o = bed.run(ns, &["ping", "-c", "5", "-i", "0.2", "-W", "2", dst]);
    let out = text(&o);
    assert!(
        o.status.success() && out.contains(" 0% packet loss"),
        "{label}: ping from {ns} to {dst}: {out}"
    );
}

fn traceroute_shows_steerd(bed: &Bed, dst: &str, hop1: &str, label: &str) {
    let v6 = dst.contains(':');
    let mut args = vec!["traceroute", "-n", "-q", "1", "-w", "2", "-m", "4"];
    if v6 {
        args.push("-6");
    }
    args.push(dst);
    let o = bed.run("a", &args);
    let out = text(&o);
    let hops: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert!(
        hops.first()
            .is_some_and(|l| l.split_whitespace().nth(1) == Some(hop1)),
        "{label}: traceroute {dst}: hop 1 is not steerd ({hop1}): {out}"
    );
    assert!(
        hops.get(1)
            .is_some_and(|l| l.split_whitespace().nth(1) == Some(dst)),
        "{label}: traceroute {dst}: hop 2 is not {dst}: {out}"
    );
    println!("{label}: traceroute {dst}: {}", hops.join(" | "));
}

/// Runs an iperf3 client in A against a one-shot server in B; returns its JSON.
fn iperf3(bed: &Bed, extra: &[&str]) -> Value {
    let mut server = bed
        .command(&["run", "b", "--", "iperf3", "-s", "-1", "-B", "10.2.0.2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 server");
    let t0 = Instant::now();
    let mut args = vec!["iperf3", "-c", "10.2.0.2", "-J"];
    args.extend_from_slice(extra);
    let out = loop {
        std::thread::sleep(Duration::from_millis(300));
        let o = bed.run("a", &args);
        if o.status.success() || t0.elapsed() > Duration::from_secs(5) {
            break o;
        }
    };
    let _ = server.kill();
    let _ = server.wait();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("iperf3 JSON: {e}: {}", text(&out)))
}

fn steerd_mac(mode: &str) -> &'static str {
    if mode == "tap" {
        "02:00:00:00:01:fe"
    } else {
        "02:00:00:00:01:01"
    }
}

/// The whole run for one backend.
fn route_between_hosts(mode: &str) {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // DPDK's net_af_packet vdevs open the router's veth ends as the afpacket backend does.
    let bed_mode = if mode == "dpdk" { "afpacket" } else { mode };
    let Some(bed) = Bed::up_or_skip(
        bed_mode,
        &[
            ("tcpreplay", "tcpreplay"),
            ("tcprewrite", "tcpreplay"),
            ("tcpdump", "tcpdump"),
        ],
    ) else {
        return;
    };
    let Some(capture) = common::capture("real-ab.pcap") else {
        common::skip("captures/real-ab.pcap is missing (scripts/get-captures.sh writes it)");
        return;
    };
    let config = common::root().join(format!("conf/testbed-{mode}.toml"));
    let label = mode;

    // 1. Ping, traceroute, iperf3.
    let sd = Steerd::start(&bed, &config, "traffic");
    for dst in ["10.2.0.2", "fd02::2", "10.1.0.1", "fd01::1", "10.2.0.1"] {
        ping_no_loss(&bed, "a", dst, label);
    }
    for dst in ["10.1.0.2", "fd01::2", "10.2.0.1", "fd02::1"] {
        ping_no_loss(&bed, "b", dst, label);
    }
    // A reload rebuilds the tables from the config, without the hosts' MACs: the control
    // plane puts them back, so what follows stays on the fast path (checked at the end:
    // the control plane sends few packets itself).
    sd.reload();
    traceroute_shows_steerd(&bed, "10.2.0.2", "10.1.0.1", label);
    traceroute_shows_steerd(&bed, "fd02::2", "fd01::1", label);
    let tcp = iperf3(&bed, &["-t", "10"]);
    let tcp_bps = tcp["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(tcp_bps > 0.0, "{label}: TCP moved nothing: {tcp}");
    let before = KernelDrops::read(&bed);
    let udp = iperf3(&bed, &["-u", "-b", "100M", "-t", "5"]);
    let kernel = KernelDrops::read(&bed).since(&before);
    let udp_sum = &udp["end"]["sum"];
    let lost = udp_sum["lost_percent"].as_f64().unwrap_or(100.0);
    let lost_pkts = udp_sum["lost_packets"].as_u64().unwrap_or(u64::MAX);
    let udp_pkts = udp_sum["packets"].as_u64().unwrap_or(0);
    println!(
        "{label}: iperf3 TCP 10 s {:.2} Gbit/s ({} retransmits); UDP 100 Mbit/s: {udp_pkts} datagrams, {lost:.2}% lost ({} build)",
        tcp_bps / 1e9,
        tcp["end"]["sum_sent"]["retransmits"],
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let j = sd.stop();
    println!("{label}: steerd {}", summary(&j));
    println!("{label}: during the UDP run the kernel dropped {kernel:?}");
    assert!(udp_pkts > 0, "{label}: UDP moved nothing: {udp}");
    // What steerd lost or dropped over the whole run, counted by its ports and workers.
    let steerd_lost = j["drops_total"].as_u64().unwrap_or(0)
        + j["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                ["rx_drops", "tx_discarded", "tx_full", "tx_errors"]
                    .iter()
                    .filter_map(|k| p["backend"][*k].as_u64())
                    .sum::<u64>()
            })
            .sum::<u64>();
    // On a loaded 2-core machine the hosts' side of the veths (the per-CPU backlog, the
    // receiver's socket buffer) can drop datagrams without steerd seeing them: those are
    // counted by the kernel. Every lost datagram must be counted by one or the other, and
    // steerd's own share must stay small.
    assert!(
        lost_pkts <= kernel.total() + steerd_lost + udp_pkts / 200,
        "{label}: UDP lost {lost_pkts} datagrams ({lost:.2}%), counted by nobody: the kernel \
         dropped {kernel:?}, steerd {steerd_lost}; steerd's ports: {}",
        j["ports"]
    );
    assert!(
        steerd_lost * 20 < udp_pkts,
        "{label}: steerd lost {steerd_lost} packets while {udp_pkts} UDP datagrams were sent; \
         steerd's ports: {}",
        j["ports"]
    );
    assert_eq!(
        j["accounted"], true,
        "{label}: rx = tx + drops + local: {j}"
    );
    assert!(j["local_packets"].as_u64().unwrap_or(0) > 0, "{j}");
    let cp = &j["control_plane"];
    assert!(cp["echo_replies_sent"].as_u64().unwrap_or(0) >= 25, "{cp}");
    assert!(cp["time_exceeded_sent"].as_u64().unwrap_or(0) >= 2, "{cp}");
    assert!(cp["na_sent"].as_u64().unwrap_or(0) >= 1, "{cp}");
    // Held until resolved, or sent by the control plane while a table lacked the MAC: a
    // few packets per neighbour, not the iperf3 traffic.
    assert!(cp["released"].as_u64().unwrap_or(u64::MAX) <= 64, "{cp}");
    assert!(j["cp_tx_packets"].as_u64().unwrap_or(0) >= 25, "{j}");

    // 2. A real capture replayed through it, every packet accounted for.
    let replay = if mode == "tap" {
        // The frames must be addressed to steerd's own MAC (the taps' bridge keeps the
        // veth's).
        let p = bed.path("real-ab-tap.pcap");
        let o = Command::new("tcprewrite")
            .arg(format!("--infile={}", capture.display()))
            .arg(format!("--outfile={}", p.display()))
            .arg(format!("--enet-dmac={}", steerd_mac(mode)))
            .output()
            .expect("tcprewrite");
        assert!(o.status.success(), "tcprewrite: {}", text(&o));
        p
    } else {
        capture
    };
    let sd = Steerd::start(&bed, &config, "replay");
    let pcap_b = bed.path("at-b.pcap");
    let dump = bed
        .command(&[
            "run",
            "b",
            "--",
            "tcpdump",
            "-i",
            "veth-b",
            "-n",
            "-B",
            "32768",
            "-w",
            pcap_b.to_str().expect("utf-8"),
            "ip and src host 10.1.0.2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_millis(1500));
    let o = bed.run(
        "a",
        &[
            "tcpreplay",
            "-i",
            "veth-a",
            "--pps",
            "10000",
            replay.to_str().expect("utf-8"),
        ],
    );
    let out = text(&o);
    assert!(o.status.success(), "{label}: tcpreplay: {out}");
    let sent = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Successful packets:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("tcpreplay output: {out}"));
    std::thread::sleep(Duration::from_secs(1));
    // SAFETY: kill() on our own child's pid (tcpdump, exec'd by the script).
    unsafe { libc::kill(dump.id() as libc::pid_t, libc::SIGINT) };
    let d = dump.wait_with_output().expect("tcpdump");
    let dump_err = String::from_utf8_lossy(&d.stderr).to_string();
    let kernel_dropped = dump_err
        .lines()
        .find_map(|l| l.strip_suffix(" packets dropped by kernel"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    assert_eq!(
        kernel_dropped, 0,
        "{label}: tcpdump lost packets: {dump_err}"
    );
    let delivered = count_pcap(&pcap_b);
    let j = sd.stop();
    assert_eq!(j["accounted"], true, "{label}: {j}");
    // Drops steerd counted that replayed packets can have had (not the hosts' own
    // multicast, counted as local_not_handled), and what the port lost before steerd.
    let steerd_drops: u64 = j["drops"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| *k != "local_not_handled")
                .filter_map(|(_, v)| v.as_u64())
                .sum()
        })
        .unwrap_or(0);
    let cp_drops: u64 = j["control_plane"]["drops"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    let port_a = &j["ports"][0]["backend"];
    let port_lost: u64 = ["rx_drops", "rx_truncated", "rx_oversize", "rx_errors"]
        .iter()
        .filter_map(|k| port_a[*k].as_u64())
        .sum();
    // The capture's ARP frames (about 1 %) go to the control plane: counted as local.
    let local = j["local_packets"].as_u64().unwrap_or(0);
    let counted = steerd_drops + cp_drops + port_lost + local;
    println!(
        "{label}: replayed {sent} frames of real.pcap: {delivered} IPv4 packets delivered to B; \
         steerd drops {steerd_drops} {}, control-plane drops {cp_drops}, lost by port a before \
         steerd {port_lost}, taken by the control plane {local} (ARP)",
        j["drops"]
    );
    assert!(delivered <= sent, "{label}: more delivered than sent");
    assert!(
        sent - delivered <= counted,
        "{label}: {} packets neither delivered nor counted: {j}",
        sent - delivered - counted.min(sent - delivered)
    );
    assert!(
        delivered * 10 >= sent * 9,
        "{label}: only {delivered} of {sent} delivered: {j}"
    );
}

/// Drops the kernel counted in the test bed, outside steerd.
#[derive(Debug, Default)]
struct KernelDrops {
    /// rx and tx drops of every interface in the three namespaces (veths, taps, bridges;
    /// a full per-CPU backlog counts as the receiving device's rx drop).
    links: u64,
    /// UDP `InErrors` in host B (its receive buffer was full), and in A.
    udp_in_errors: u64,
}

impl KernelDrops {
    fn read(bed: &Bed) -> KernelDrops {
        let mut k = KernelDrops::default();
        for ns in ["a", "r", "b"] {
            let o = bed.run(ns, &["ip", "-s", "-j", "link", "show"]);
            assert!(o.status.success(), "ip -s link in {ns}: {}", text(&o));
            let links: Value = serde_json::from_slice(&o.stdout).expect("ip -j link");
            for l in links.as_array().into_iter().flatten() {
                for dir in ["rx", "tx"] {
                    k.links += l["stats64"][dir]["dropped"].as_u64().unwrap_or(0);
                }
            }
            if ns == "r" {
                continue;
            }
            let o = bed.run(ns, &["cat", "/proc/net/snmp"]);
            let snmp = String::from_utf8_lossy(&o.stdout).to_string();
            let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
            if let (Some(names), Some(values)) = (udp.next(), udp.next()) {
                let at = names.split_whitespace().position(|n| n == "InErrors");
                if let Some(v) = at.and_then(|i| values.split_whitespace().nth(i)) {
                    k.udp_in_errors += v.parse::<u64>().unwrap_or(0);
                }
            }
        }
        k
    }

    fn since(&self, before: &KernelDrops) -> KernelDrops {
        KernelDrops {
            links: self.links.saturating_sub(before.links),
            udp_in_errors: self.udp_in_errors.saturating_sub(before.udp_in_errors),
        }
    }

    fn total(&self) -> u64 {
        self.links + self.udp_in_errors
    }
}

/// Packets in a classic pcap file.
fn count_pcap(p: &Path) -> u64 {
    let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    steerd::wire::pcap::PcapReader::new(&bytes)
        .expect("tcpdump's pcap")
        .filter(Result::is_ok)
        .count() as u64
}

fn summary(j: &Value) -> String {
    format!(
        "rx {} tx {} drops {} local {} cp_tx {} (released by the control plane {}) drops by reason {}",
        j["rx_packets"],
        j["tx_packets"],
        j["drops_total"],
        j["local_packets"],
        j["cp_tx_packets"],
        j["control_plane"]["released"],
        j["drops"]
    )
}

#[test]
fn steerd_routes_between_hosts_tap() {
    route_between_hosts("tap");
}

#[test]
fn steerd_routes_between_hosts_afpacket() {
    route_between_hosts("afpacket");
}

#[cfg(feature = "afxdp")]
#[test]
fn steerd_routes_between_hosts_afxdp() {
    route_between_hosts("afxdp");
}

/// DPDK ports (net_af_packet vdevs) with the control plane: ARP, ND, echo, traceroute's
/// time exceeded, neighbour resolution, iperf3 and a replayed capture.
#[cfg(feature = "dpdk")]
#[test]
fn steerd_routes_between_hosts_dpdk() {
    route_between_hosts("dpdk");
}

/// `steerd run` fails at start with a message naming the port and what is missing.
#[test]
fn startup_errors_name_the_port() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(bed) = Bed::up_or_skip("afpacket", &[("setpriv", "util-linux")]) else {
        return;
    };
    let base = std::fs::read_to_string(common::root().join("conf/testbed-afpacket.toml"))
        .expect("conf/testbed-afpacket.toml");
    // The unprivileged run must be able to read its config.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bed.dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod temp dir");
    let try_run = |cfg: &str, name: &str, prefix: &[&str]| {
        let p = bed.path(name);
        std::fs::write(&p, cfg).expect("write config");
        let mut args = vec!["run", "r", "--"];
        args.extend_from_slice(prefix);
        args.extend_from_slice(&[
            STEERD,
            "run",
            "--config",
            p.to_str().expect("utf-8"),
            "--duration",
            "1",
        ]);
        let o = bed.cmd(&args);
        (o.status.code(), text(&o))
    };
    let (code, out) = try_run(
        &base.replace("\"veth-ra\"", "\"nope0\""),
        "missing.toml",
        &[],
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("port a: interface nope0 does not exist"),
        "{out}"
    );
    let o = bed.run("r", &["ip", "link", "set", "veth-rb", "down"]);
    assert!(o.status.success(), "{}", text(&o));
    let (code, out) = try_run(&base, "down.toml", &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("port b: interface veth-rb is down (ip link set veth-rb up)"),
        "{out}"
    );
    let (code, out) = try_run(
        &base,
        "nopriv.toml",
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ],
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("port a:") && out.contains("needs root or CAP_NET_RAW"),
        "{out}"
    );
    println!("start-up errors: missing interface, link down, no privilege: each names the port");
}
