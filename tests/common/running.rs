//! A running appliance for integration tests: built from a config file in a temporary
//! directory, run on a thread, watched over /metrics, /status and the ctl socket.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use steerd::app::{Appliance, RunOptions, SetupError, Summary};
use steerd::config::Config;
use steerd::ctl::client;
use steerd::ctl::proto::Request;
use steerd::safe::worker::RunControl;
use steerd::telemetry::DestCounters;

pub struct Running {
    pub dir: tempfile::TempDir,
    pub metrics: Option<SocketAddr>,
    pub socket: PathBuf,
    pub stop: Arc<RunControl>,
    pub telemetry: Vec<Arc<DestCounters>>,
    pub join: Option<JoinHandle<Result<Summary, SetupError>>>,
}

impl Running {
    /// Writes `text` to a config file and starts the appliance from it.
    pub fn start(text: &str, metrics: bool) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steerd.toml");
        std::fs::write(&path, text).unwrap();
        let cfg = Config::load(&path).unwrap();
        let socket = dir.path().join("ctl.sock");
        let opts = RunOptions {
            duration: Some(Duration::from_secs(120)),
            quiet: true,
            metrics_listen: Some(if metrics { "127.0.0.1:0" } else { "off" }.into()),
            ctl_socket: Some(socket.display().to_string()),
            ..RunOptions::default()
        };
        let app = Appliance::build(cfg, &opts).unwrap();
        let metrics = app.metrics_addr();
        assert_eq!(app.ctl_socket(), Some(socket.as_path()));
        let stop = app.ctl.clone();
        let telemetry = app.telemetry.clone();
        let join = std::thread::spawn(move || app.run(&opts));
        Running {
            dir,
            metrics,
            socket,
            stop,
            telemetry,
            join: Some(join),
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("steerd.toml")
    }

    pub fn call(&self, req: Request) -> Value {
        client::call(&self.socket, &req, Duration::from_secs(30)).unwrap()
    }

    pub fn ok(&self, req: Request) -> Value {
        let r = self.call(req.clone());
        assert_eq!(r["ok"], true, "{req:?}: {r}");
        r["result"].clone()
    }

    pub fn err(&self, req: Request) -> Value {
        let r = self.call(req.clone());
        assert_eq!(r["ok"], false, "{req:?}: {r}");
        r["error"].clone()
    }

    pub fn status(&self) -> Value {
        self.ok(Request::Status)
    }

    /// Packets counted for telemetry destination `d`, all workers.
    pub fn dest(&self, d: usize) -> u64 {
        self.telemetry.iter().map(|t| t.packets(d)).sum()
    }

    /// Waits until `f` holds (checked every 20 ms, for at most 30 s: on a loaded 2-core
    /// machine a debug build's engine can take seconds for what takes milliseconds
    /// alone; the wait ends as soon as `f` holds).
    pub fn wait_for(&self, what: &str, mut f: impl FnMut(&Running) -> bool) {
        let t0 = Instant::now();
        while !f(self) {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "timed out after 30 s: {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn finish(mut self) -> Summary {
        self.stop.stop.store(true, Ordering::SeqCst);
        self.join_summary()
    }

    pub fn join_summary(&mut self) -> Summary {
        let s = self.join.take().unwrap().join().unwrap().unwrap();
        assert!(!self.socket.exists(), "the socket file is removed at exit");
        s
    }
}

pub fn http_get(addr: SocketAddr, path: &str, accept: Option<&str>) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\n{accept}\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, head.to_string(), body.to_string())
}

/// The value of the sample `name` (with its labels written exactly, e.g.
/// `steerd_drops_total{reason="ttl_expired"}`).
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The steerd binary run as a user would (`steerd run` as a child process, driven with
/// `steerd ctl`), for the CLI's own paths: argument parsing, signals, the ctl client.
pub struct CliRun {
    pub child: std::process::Child,
    pub sock: PathBuf,
    bin: &'static str,
}

impl CliRun {
    /// Starts `steerd run --plain --metrics-listen off --ctl-socket DIR/ctl.sock --config
    /// CFG EXTRA..` with stderr captured, and waits (30 s at most) for its ctl socket.
    pub fn start(
        bin: &'static str,
        dir: &std::path::Path,
        cfg: &std::path::Path,
        extra: &[&str],
    ) -> CliRun {
        let sock = dir.join("ctl.sock");
        let child = std::process::Command::new(bin)
            .args(["run", "--plain", "--metrics-listen", "off", "--ctl-socket"])
            .arg(&sock)
            .arg("--config")
            .arg(cfg)
            .args(extra)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("steerd run starts");
        let t0 = Instant::now();
        while !sock.exists() {
            assert!(t0.elapsed() < Duration::from_secs(30), "no ctl socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        CliRun { child, sock, bin }
    }

    /// `steerd ctl --socket SOCK ARGS..`: exit code, stdout, stderr.
    pub fn ctl(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let o = std::process::Command::new(self.bin)
            .arg("ctl")
            .arg("--socket")
            .arg(&self.sock)
            .args(args)
            .output()
            .expect("steerd ctl runs");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// Waits for `steerd run` to exit: its status and everything it wrote to stderr.
    pub fn wait(&mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().expect("steerd run exits");
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut err).expect("stderr is text");
        }
        (status, err)
    }
}
