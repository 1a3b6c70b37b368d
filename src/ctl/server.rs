//! The `ctl` thread's event loop (cold): one mio `Poll` over the metrics HTTP listener,
//! the ctl Unix socket, their connections and a waker. It never touches packets or
//! workers; it reads published counters and publishes tables.
//!
//! Every 100 ms (or on an event) it also: applies a reload requested by SIGHUP, frees
//! table snapshots no worker uses any more ([`crate::safe::TableHandle::reclaim`]), and
//! closes idle HTTP connections. When the run has drained, the controller hands it the
//! final stats ([`CtlThread::finish`]): it answers the `drain` requests waiting for
//! them, flushes replies (for at most a second) and exits, removing the socket file.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token, Waker};
use serde_json::{Value, json};

use super::http::{self, Parsed};
use super::metrics::{MetricsRegistry, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};
use super::ops::{CtlState, Reply};
use super::proto;
use super::signals;
use crate::app::SetupError;

const METRICS: Token = Token(0);
const CTL: Token = Token(1);
const WAKE: Token = Token(2);
const FIRST_CONN: usize = 16;
const MAX_CONNS: usize = 128;
const MAX_LINE: usize = 1 << 20;
const HTTP_IDLE: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_millis(100);

/// Removes the socket file when dropped.
#[derive(Debug)]
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The control plane's bound listeners (bound at build time, so their addresses are
/// known before the run starts).
#[derive(Debug, Default)]
pub struct Listeners {
    metrics: Option<(TcpListener, SocketAddr)>,
    socket: Option<(UnixListener, SocketFile)>,
}

/// `None`, an empty string or `"off"`: disabled.
fn enabled(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !s.is_empty() && *s != "off")
}

impl Listeners {
    /// Binds the metrics listener (`ADDRESS:PORT`; port 0 picks a free one) and the ctl
    /// socket; `None` or `"off"` leaves one out.
    pub fn bind(metrics: Option<&str>, socket: Option<&str>) -> Result<Listeners, SetupError> {
        let mut l = Listeners::default();
        if let Some(m) = enabled(metrics) {
            let addr: SocketAddr = m.parse().map_err(|_| {
                SetupError::Other(format!(
                    "metrics listen address \"{m}\" is not ADDRESS:PORT (or \"off\")"
                ))
            })?;
            let std_l = std::net::TcpListener::bind(addr).map_err(|e| {
                SetupError::Other(format!(
                    "cannot listen for metrics on {addr}: {e} (choose another with \
                     --metrics-listen ADDR:PORT or [ctl] metrics_listen, or \"off\")"
                ))
            })?;
            std_l
                .set_nonblocking(true)
                .map_err(|e| SetupError::Other(format!("metrics listener: {e}")))?;
            let bound = std_l
                .local_addr()
                .map_err(|e| SetupError::Other(format!("metrics listener: {e}")))?;
            l.metrics = Some((TcpListener::from_std(std_l), bound));
        }
        if let Some(s) = enabled(socket) {
            l.socket = Some(bind_socket(Path::new(s))?);
        }
        Ok(l)
    }

    /// The metrics address actually bound.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.1)
    }

    /// The ctl socket path.
    pub fn socket_path(&self) -> Option<&Path> {
        self.socket.as_ref().map(|s| s.1.0.as_path())
    }

    /// Where they are, as JSON (for status).
    pub fn describe(&self) -> Value {
        json!({
            "metrics": self.metrics_addr().map(|a| format!("http://{a}/metrics")),
            "ctl_socket": self.socket_path().map(|p| p.display().to_string()),
        })
    }
}

fn bind_socket(path: &Path) -> Result<(UnixListener, SocketFile), SetupError> {
    let err = |what: &str, e: io::Error| {
        SetupError::Other(format!(
            "ctl socket {}: {what}: {e} (choose another with --ctl-socket PATH or [ctl] socket, or \"off\")",
            path.display()
        ))
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(|e| err("cannot create its directory", e))?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(SetupError::Other(format!(
                "ctl socket {}: another steerd is listening there (stop it, or choose another \
                 path with --ctl-socket)",
                path.display()
            )));
        }
        // A stale socket from a run that did not exit cleanly.
        std::fs::remove_file(path).map_err(|e| err("cannot remove the stale socket", e))?;
    }
    // Bound and restricted under a temporary name, then linked into place: whoever
    // waits for the path to appear finds a socket that is listening and already
    // owner-only (`bind` creates the file before it listens, so a client connecting
    // in between was refused).
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let l = UnixListener::bind(&tmp).map_err(|e| err("cannot listen", e))?;
    let guard = SocketFile(tmp.clone());
    // Only the owner (root for a system service) may change forwarding.
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| err("cannot restrict its permissions", e))?;
    link_into_place(&tmp, path)?;
    drop(guard); // the temporary name
    Ok((l, SocketFile(path.to_path_buf())))
}

/// Gives the socket at `tmp` its name `path` too. A hard link, not a rename: it fails
/// if another steerd put its socket there in the meantime, where a rename would
/// silently take that one's place.
fn link_into_place(tmp: &Path, path: &Path) -> Result<(), SetupError> {
    match std::fs::hard_link(tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(SetupError::Other(format!(
            "ctl socket {}: another steerd started listening there a moment ago (stop it, \
             or choose another path with --ctl-socket)",
            path.display()
        ))),
        Err(e) => Err(SetupError::Other(format!(
            "ctl socket {}: cannot move it into place: {e} (choose another with \
             --ctl-socket PATH or [ctl] socket, or \"off\")",
            path.display()
        ))),
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        }
    }
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(b),
            Stream::Unix(s) => s.read(b),
        }
    }
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(b),
            Stream::Unix(s) => s.write(b),
        }
    }
}

struct Conn {
    stream: Stream,
    http: bool,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    sent: usize,
    close_after: bool,
    peer_closed: bool,
    waiting_drain: Option<Option<Value>>,
    since: Instant,
}

/// The running ctl thread. Dropping it without [`CtlThread::finish`] (a run that
/// failed) stops the thread too, answering waiting `drain` requests with an error note.
pub struct CtlThread {
    join: Option<JoinHandle<()>>,
    waker: Arc<Waker>,
    finish: Arc<Mutex<Option<Value>>>,
}

impl CtlThread {
    /// Starts the thread.
    pub fn spawn(
        listeners: Listeners,
        state: CtlState,
        registry: MetricsRegistry,
    ) -> Result<CtlThread, SetupError> {
        let e = |e: io::Error| SetupError::Other(format!("cannot start the ctl thread: {e}"));
        let poll = Poll::new().map_err(e)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE).map_err(e)?);
        let finish = Arc::new(Mutex::new(None));
        let mut srv = Server {
            poll,
            listeners,
            conns: HashMap::new(),
            next: FIRST_CONN,
            state,
            registry,
            finish: finish.clone(),
        };
        if let Some((l, _)) = srv.listeners.metrics.as_mut() {
            srv.poll
                .registry()
                .register(l, METRICS, Interest::READABLE)
                .map_err(e)?;
        }
        if let Some((l, _)) = srv.listeners.socket.as_mut() {
            srv.poll
                .registry()
                .register(l, CTL, Interest::READABLE)
                .map_err(e)?;
        }
        let join = std::thread::Builder::new()
            .name("ctl".into())
            .spawn(move || srv.run())
            .map_err(e)?;
        Ok(CtlThread {
            join: Some(join),
            waker,
            finish,
        })
    }

    /// Hands the final stats over (answering waiting `drain` requests) and waits for the
    /// thread to exit.
    pub fn finish(mut self, summary: Value) {
        self.stop(summary);
    }

    fn stop(&mut self, summary: Value) {
        let Some(join) = self.join.take() else {
            return;
        };
        *self.finish.lock().unwrap_or_else(|e| e.into_inner()) = Some(summary);
        let _ = self.waker.wake();
        if join.join().is_err() {
            tracing::error!("the ctl thread panicked");
        }
    }
}

impl Drop for CtlThread {
    fn drop(&mut self) {
        self.stop(json!({"error": "the run ended with an error; see steerd's log"}));
    }
}

struct Server {
    poll: Poll,
    listeners: Listeners,
    conns: HashMap<usize, Conn>,
    next: usize,
    state: CtlState,
    registry: MetricsRegistry,
    finish: Arc<Mutex<Option<Value>>>,
}

impl Server {
    fn run(mut self) {
        let mut events = Events::with_capacity(64);
        loop {
            if let Err(e) = self.poll.poll(&mut events, Some(TICK))
                && e.kind() != io::ErrorKind::Interrupted
            {
                tracing::error!("ctl: poll failed: {e}; the control plane stops");
                return;
            }
            for ev in events.iter() {
                match ev.token() {
                    METRICS => self.accept_http(),
                    CTL => self.accept_ctl(),
                    WAKE => {}
                    Token(t) => self.service(t),
                }
            }
            if signals::take_reload() {
                self.state.reload_by_signal();
            }
            self.state.tables.reclaim();
            let now = Instant::now();
            let idle: Vec<usize> = self
                .conns
                .iter()
                .filter(|(_, c)| c.http && now.duration_since(c.since) > HTTP_IDLE)
                .map(|(t, _)| *t)
                .collect();
            for t in idle {
                self.close(t);
            }
            let done = self.finish.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(summary) = done {
                self.answer_drains(summary);
                return;
            }
        }
    }

    fn add(&mut self, mut stream: Stream, http: bool) {
        if self.conns.len() >= MAX_CONNS {
            return; // dropped: closes the connection
        }
        let t = self.next;
        self.next += 1;
        if self
            .poll
            .registry()
            .register(
                stream.source(),
                Token(t),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            return;
        }
        self.conns.insert(
            t,
            Conn {
                stream,
                http,
                inbuf: Vec::new(),
                out: Vec::new(),
                sent: 0,
                close_after: false,
                peer_closed: false,
                waiting_drain: None,
                since: Instant::now(),
            },
        );
        self.service(t);
    }

    fn accept_http(&mut self) {
        loop {
            let Some((l, _)) = self.listeners.metrics.as_ref() else {
                return;
            };
            match l.accept() {
                Ok((s, _)) => self.add(Stream::Tcp(s), true),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!("metrics accept: {e}");
                    return;
                }
            }
        }
    }

    fn accept_ctl(&mut self) {
        loop {
            let Some((l, _)) = self.listeners.socket.as_ref() else {
                return;
            };
            match l.accept() {
                Ok((s, _)) => self.add(Stream::Unix(s), false),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!("ctl accept: {e}");
                    return;
                }
            }
        }
    }

    fn close(&mut self, t: usize) {
        if let Some(mut c) = self.conns.remove(&t) {
            let _ = self.poll.registry().deregister(c.stream.source());
        }
    }

    /// Reads what arrived, handles complete requests, writes what is pending.
    fn service(&mut self, t: usize) {
        let Some(mut c) = self.conns.remove(&t) else {
            return;
        };
        let mut buf = [0u8; 8192];
        while !c.peer_closed {
            match c.stream.read(&mut buf) {
                Ok(0) => c.peer_closed = true,
                Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    c.peer_closed = true;
                    c.out.clear();
                }
            }
            if c.inbuf.len() > MAX_LINE {
                break;
            }
        }
        if c.http {
            self.handle_http(&mut c);
        } else {
            self.handle_ctl(&mut c);
        }
        while c.sent < c.out.len() {
            match c.stream.write(&c.out[c.sent..]) {
                Ok(0) => {
                    c.peer_closed = true;
                    break;
                }
                Ok(n) => c.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    c.out.clear();
                    c.sent = 0;
                    c.peer_closed = true;
                    c.close_after = true;
                    break;
                }
            }
        }
        if c.sent >= c.out.len() {
            c.out.clear();
            c.sent = 0;
        }
        let flushed = c.out.is_empty();
        let done = flushed && (c.close_after || (c.peer_closed && c.waiting_drain.is_none()));
        self.conns.insert(t, c);
        if done {
            self.close(t);
        }
    }

    fn handle_http(&mut self, c: &mut Conn) {
        if c.close_after || !c.out.is_empty() {
            return;
        }
        let resp = match http::parse(&c.inbuf) {
            Parsed::Partial => {
                if c.peer_closed {
                    c.close_after = true;
                }
                return;
            }
            Parsed::Bad(code) => http::error(code),
            Parsed::Request(r) => {
                let head = r.method == "HEAD";
                if r.method != "GET" && !head {
                    http::error(405)
                } else {
                    match r.path.as_str() {
                        "/metrics" => {
                            if r.accept.contains("application/openmetrics-text") {
                                let body = self.registry.encode_openmetrics();
                                http::response(200, OPENMETRICS_CONTENT_TYPE, body.as_bytes(), head)
                            } else {
                                let body = self.registry.encode_prometheus();
                                http::response(200, PROMETHEUS_CONTENT_TYPE, body.as_bytes(), head)
                            }
                        }
                        "/status" => {
                            let body = serde_json::to_string_pretty(&self.state.status())
                                .expect("JSON of plain values")
                                + "\n";
                            http::response(200, "application/json", body.as_bytes(), head)
                        }
                        "/" => http::response(
                            200,
                            "text/plain; charset=utf-8",
                            b"steerd: GET /metrics (Prometheus), GET /status (JSON)\n",
                            head,
                        ),
                        _ => http::error(404),
                    }
                }
            }
        };
        c.out = resp;
        c.sent = 0;
        c.close_after = true;
    }

    fn handle_ctl(&mut self, c: &mut Conn) {
        while let Some(pos) = c.inbuf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = c.inbuf.drain(..=pos).collect();
            if c.waiting_drain.is_some() {
                continue; // the connection's answer is the final stats
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let (req, id) = proto::parse_line(text);
            let reply = match req {
                Ok(r) => self.state.handle(r),
                Err(e) => Reply::Now(Err(e)),
            };
            match reply {
                Reply::Now(r) => {
                    c.out.extend_from_slice(proto::response(r, id).as_bytes());
                    c.out.push(b'\n');
                }
                Reply::AfterDrain => c.waiting_drain = Some(id),
            }
        }
        if c.inbuf.len() > MAX_LINE {
            let e = proto::OpError::new("bad_request", "request line longer than 1 MiB");
            c.out
                .extend_from_slice(proto::response(Err(e), None).as_bytes());
            c.out.push(b'\n');
            c.inbuf.clear();
            c.close_after = true;
        }
    }

    /// Answers every waiting `drain` with the final stats, then flushes for at most 1 s.
    fn answer_drains(&mut self, summary: Value) {
        let tokens: Vec<usize> = self.conns.keys().copied().collect();
        for t in &tokens {
            if let Some(c) = self.conns.get_mut(t)
                && let Some(id) = c.waiting_drain.take()
            {
                let r = Ok(json!({"drained": true, "summary": summary}));
                c.out.extend_from_slice(proto::response(r, id).as_bytes());
                c.out.push(b'\n');
                c.close_after = true;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut events = Events::with_capacity(64);
        while Instant::now() < deadline {
            let pending: Vec<usize> = self
                .conns
                .iter()
                .filter(|(_, c)| !c.out.is_empty())
                .map(|(t, _)| *t)
                .collect();
            if pending.is_empty() {
                break;
            }
            for t in pending {
                self.service(t);
            }
            let _ = self.poll.poll(&mut events, Some(Duration::from_millis(20)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;
    use std::os::unix::net::UnixStream as StdStream;

    #[test]
    fn the_socket_appears_listening_owner_only_and_goes_at_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run").join("ctl.sock");
        let (l, guard) = bind_socket(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // Listening as soon as the path exists: a connect is accepted, not refused.
        let _c = StdStream::connect(&path).unwrap();
        l.accept().expect("the connection is queued");
        // No temporary name left beside it.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("ctl.sock")]);
        // A second steerd on the same path is refused while this one listens.
        let Err(e) = bind_socket(&path) else {
            panic!("a second bind on a listening socket was not refused");
        };
        assert!(e.to_string().contains("another steerd"), "{e}");
        drop(guard);
        assert!(!path.exists());
    }

    #[test]
    fn a_socket_that_appears_meanwhile_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, path) = (dir.path().join("mine.tmp"), dir.path().join("ctl.sock"));
        let _mine = std::os::unix::net::UnixListener::bind(&tmp).unwrap();
        let theirs = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let Err(e) = link_into_place(&tmp, &path) else {
            panic!("the other socket was replaced");
        };
        assert!(e.to_string().contains("another steerd started"), "{e}");
        // Theirs still answers at the path.
        let _c = StdStream::connect(&path).unwrap();
        theirs.set_nonblocking(true).unwrap();
        assert!(theirs.accept().is_ok(), "the connection went elsewhere");
    }

    #[test]
    fn a_stale_socket_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap()); // left behind
        assert!(path.exists());
        // Nobody listening once the last copy of its fd is closed: a child that another
        // test spawns holds one from its fork until its exec.
        let end = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while StdStream::connect(&path).is_ok() && std::time::Instant::now() < end {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let (_l, _g) = bind_socket(&path).unwrap();
        let _c = StdStream::connect(&path).unwrap();
    }
}
