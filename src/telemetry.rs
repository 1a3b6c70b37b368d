//! Per-destination and per-application traffic telemetry.
//!
//! Two halves with different temperatures:
//!
//! - **Hot** — [`DestCounters`]: one per forwarding worker, allocated at start-up and never
//!   reallocated. The worker that owns it is its only writer; it bumps a counter with a
//!   relaxed `load` + `store` (no read-modify-write, no lock, no allocation). Counters are
//!   grouped four to a 64-byte line and the lines are 64-byte aligned, so one worker's
//!   counters never share a cache line with another worker's.
//! - **Cold** — [`Aggregator`]: runs on the `tpe` thread. Every bucket it sums all workers'
//!   counters and subtracts the previous sum, giving per-destination and per-application
//!   packets and bytes for that bucket, kept in a ring of the last N [`Bucket`]s. Workers
//!   are never stopped or waited for: a bucket may be off by the few packets a worker
//!   counted while the sum was being read, and those land in the next bucket.
//!
//! Time: a bucket is one *logical* minute. Its wall duration is `60 s / time_scale`;
//! [`Bucket::start_unix_ms`] is logical time (`origin + index * 60 000 ms`), so
//! time-of-day features are the same whether time is compressed or not.
//!
//! CSV ([`write_csv`] / [`read_csv`]): columns `bucket,start_ms,dest,packets,bytes`, one
//! row per bucket and destination; this is what `steerd telemetry export` writes and what
//! `steerd tpe eval --data` and `scripts/train.py` read.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Most application classes a [`DestCounters`] can track (class ids `0..16`).
pub const MAX_APPS: usize = 16;
/// Logical length of one bucket in milliseconds (one minute).
pub const BUCKET_LOGICAL_MS: u64 = 60_000;

/// Errors of the telemetry module (all cold: CSV reading and writing).
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// Reading or writing a file failed.
    #[error("telemetry I/O on {path}: {source}")]
    Io {
        /// File involved.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A CSV line could not be parsed.
    #[error("telemetry CSV line {line}: {msg}")]
    Csv {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        msg: String,
    },
    /// A line of a CSV file could not be parsed.
    #[error("{path}:{line}: telemetry CSV: {msg}")]
    CsvFile {
        /// File read.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        msg: String,
    },
}

/// A packets/bytes counter pair written by one worker only.
#[derive(Default)]
struct Slot {
    packets: AtomicU64,
    bytes: AtomicU64,
}

/// Four slots in one cache line; aligned so that lines of different workers never mix.
#[repr(align(64))]
#[derive(Default)]
struct Line([Slot; 4]);

/// Single-writer bump: the owning worker is the only writer, so load + store loses nothing
/// and costs no locked instruction.
#[inline(always)]
fn bump(c: &AtomicU64, x: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(x), Ordering::Relaxed);
}

#[inline(always)]
fn slot(lines: &[Line], i: usize) -> &Slot {
    &lines[i / 4].0[i % 4]
}

/// The per-destination and per-application counters of one forwarding worker.
///
/// Sized at start-up for `n_dest` destinations and `n_app` application classes (at most
/// [`MAX_APPS`]), plus one "other" slot each that counts out-of-range ids. Put it in an
/// `Arc`, give one clone to the worker and one to the [`Aggregator`].
///
/// Contract: only the owning worker calls [`DestCounters::add`]; two writers would lose
/// counts (never memory safety).
pub struct DestCounters {
    n_dest: usize,
    n_app: usize,
    dest: Box<[Line]>,
    app: Box<[Line]>,
}

impl DestCounters {
    /// Allocates counters for `n_dest` destinations and `n_app` classes (clamped to
    /// [`MAX_APPS`]). Start-up only.
    pub fn new(n_dest: usize, n_app: usize) -> Self {
        let n_app = n_app.min(MAX_APPS);
        let lines =
            |n: usize| -> Box<[Line]> { (0..n.div_ceil(4)).map(|_| Line::default()).collect() };
        DestCounters {
            n_dest,
            n_app,
            dest: lines(n_dest + 1),
            app: lines(n_app + 1),
        }
    }

    /// Number of destinations (the "other" slot not included).
    pub fn n_dest(&self) -> usize {
        self.n_dest
    }

    /// Number of application classes (the "other" slot not included).
    pub fn n_app(&self) -> usize {
        self.n_app
    }

    /// Counts one packet of `bytes` bytes to `dest` and application class `app`.
    /// Out-of-range ids are counted in the "other" slots. Hot path: no RMW, no branch
    /// that can panic.
    #[inline]
    pub fn add(&self, dest: u16, app: u8, bytes: u32) {
        self.add_n(dest, app, 1, u64::from(bytes));
    }

    /// Counts `packets` packets totalling `bytes` bytes (for per-burst batching).
    #[inline]
    pub fn add_n(&self, dest: u16, app: u8, packets: u64, bytes: u64) {
        let d = (dest as usize).min(self.n_dest);
        let a = (app as usize).min(self.n_app);
        let s = slot(&self.dest, d);
        bump(&s.packets, packets);
        bump(&s.bytes, bytes);
        let s = slot(&self.app, a);
        bump(&s.packets, packets);
        bump(&s.bytes, bytes);
    }

    /// Packets counted so far for destination `dest` (the "other" slot for ids ≥
    /// `n_dest`). Cold: for status and tests.
    pub fn packets(&self, dest: usize) -> u64 {
        slot(&self.dest, dest.min(self.n_dest))
            .packets
            .load(Ordering::Relaxed)
    }

    /// Bytes counted so far for destination `dest` (as [`DestCounters::packets`]).
    /// Cold: for the live RAM, status and tests.
    pub fn bytes(&self, dest: usize) -> u64 {
        slot(&self.dest, dest.min(self.n_dest))
            .bytes
            .load(Ordering::Relaxed)
    }

    /// Adds this worker's running totals into `t` (cold; called by the aggregator).
    fn accumulate(&self, t: &mut Totals) {
        let n = self.n_dest.min(t.dest_p.len());
        for i in 0..n {
            let s = slot(&self.dest, i);
            t.dest_p[i] = t.dest_p[i].wrapping_add(s.packets.load(Ordering::Relaxed));
            t.dest_b[i] = t.dest_b[i].wrapping_add(s.bytes.load(Ordering::Relaxed));
        }
        // Destinations beyond the aggregator's range go to "other" too.
        let mut op = 0u64;
        let mut ob = 0u64;
        for i in n..=self.n_dest {
            let s = slot(&self.dest, i);
            op = op.wrapping_add(s.packets.load(Ordering::Relaxed));
            ob = ob.wrapping_add(s.bytes.load(Ordering::Relaxed));
        }
        t.other_p = t.other_p.wrapping_add(op);
        t.other_b = t.other_b.wrapping_add(ob);
        let n = self.n_app.min(t.app_p.len());
        for i in 0..n {
            let s = slot(&self.app, i);
            t.app_p[i] = t.app_p[i].wrapping_add(s.packets.load(Ordering::Relaxed));
            t.app_b[i] = t.app_b[i].wrapping_add(s.bytes.load(Ordering::Relaxed));
        }
        for i in n..=self.n_app {
            let s = slot(&self.app, i);
            t.app_other_p = t
                .app_other_p
                .wrapping_add(s.packets.load(Ordering::Relaxed));
            t.app_other_b = t.app_other_b.wrapping_add(s.bytes.load(Ordering::Relaxed));
        }
    }
}

/// Running totals summed over all workers.
#[derive(Clone, Default)]
struct Totals {
    dest_p: Vec<u64>,
    dest_b: Vec<u64>,
    other_p: u64,
    other_b: u64,
    app_p: Vec<u64>,
    app_b: Vec<u64>,
    app_other_p: u64,
    app_other_b: u64,
}

impl Totals {
    fn zeroed(n_dest: usize, n_app: usize) -> Self {
        Totals {
            dest_p: vec![0; n_dest],
            dest_b: vec![0; n_dest],
            app_p: vec![0; n_app],
            app_b: vec![0; n_app],
            ..Totals::default()
        }
    }
    fn clear(&mut self) {
        self.dest_p.iter_mut().for_each(|x| *x = 0);
        self.dest_b.iter_mut().for_each(|x| *x = 0);
        self.app_p.iter_mut().for_each(|x| *x = 0);
        self.app_b.iter_mut().for_each(|x| *x = 0);
        self.other_p = 0;
        self.other_b = 0;
        self.app_other_p = 0;
        self.app_other_b = 0;
    }
}

/// Traffic of one bucket (one logical minute), summed over all workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Bucket number since the aggregator (or scenario) started.
    pub index: u64,
    /// Logical start time, Unix milliseconds.
    pub start_unix_ms: u64,
    /// Packets per destination (`len == n_dest`).
    pub packets: Vec<u64>,
    /// Bytes per destination.
    pub bytes: Vec<u64>,
    /// Packets per application class (`len == n_app`; empty when read from CSV).
    pub app_packets: Vec<u64>,
    /// Bytes per application class.
    pub app_bytes: Vec<u64>,
    /// Packets to destinations outside `0..n_dest`.
    pub other_dest_packets: u64,
    /// Bytes to destinations outside `0..n_dest`.
    pub other_dest_bytes: u64,
    /// Packets of application classes outside `0..n_app`.
    pub other_app_packets: u64,
    /// Bytes of application classes outside `0..n_app`.
    pub other_app_bytes: u64,
}

impl Bucket {
    /// A bucket with per-destination counts only: no application split, nothing in the
    /// "other" slots (scenarios, CSV gaps, tests).
    pub fn per_dest(index: u64, start_unix_ms: u64, packets: Vec<u64>, bytes: Vec<u64>) -> Bucket {
        Bucket {
            index,
            start_unix_ms,
            packets,
            bytes,
            app_packets: Vec::new(),
            app_bytes: Vec::new(),
            other_dest_packets: 0,
            other_dest_bytes: 0,
            other_app_packets: 0,
            other_app_bytes: 0,
        }
    }
}

/// Sums the workers' [`DestCounters`] into [`Bucket`]s (cold, on the `tpe` thread).
pub struct Aggregator {
    workers: Vec<Arc<DestCounters>>,
    bucket: Duration,
    n_dest: usize,
    n_app: usize,
    prev: Totals,
    cur: Totals,
    ring: VecDeque<Bucket>,
    capacity: usize,
    next_index: u64,
    origin_unix_ms: u64,
    next_deadline: Instant,
}

/// Default number of buckets kept in the ring (one day of logical minutes).
pub const DEFAULT_RING: usize = 1440;

impl Aggregator {
    /// Aggregates `workers` (the same counters the workers write) in buckets of wall
    /// duration `bucket` (`60 s / time_scale`). `n_dest`/`n_app` are the largest of the
    /// workers'. The first bucket starts now; logical time starts at the current Unix time.
    pub fn new(workers: Vec<Arc<DestCounters>>, bucket: Duration) -> Self {
        let n_dest = workers.iter().map(|w| w.n_dest()).max().unwrap_or(0);
        let n_app = workers.iter().map(|w| w.n_app()).max().unwrap_or(0);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let bucket = bucket.max(Duration::from_millis(1));
        let mut a = Aggregator {
            workers,
            bucket,
            n_dest,
            n_app,
            prev: Totals::zeroed(n_dest, n_app),
            cur: Totals::zeroed(n_dest, n_app),
            ring: VecDeque::with_capacity(DEFAULT_RING),
            capacity: DEFAULT_RING,
            next_index: 0,
            origin_unix_ms: now_ms,
            next_deadline: Instant::now() + bucket,
        };
        // Counts from before the aggregator started belong to no bucket.
        a.sum_into_cur();
        std::mem::swap(&mut a.prev, &mut a.cur);
        a
    }

    /// Keeps the last `n` buckets (at least 1) instead of [`DEFAULT_RING`].
    pub fn with_capacity(mut self, n: usize) -> Self {
        self.capacity = n.max(1);
        while self.ring.len() > self.capacity {
            self.ring.pop_front();
        }
        self
    }

    /// Sets the logical time of bucket 0 (Unix ms); default: the time of `new`.
    pub fn with_origin_unix_ms(mut self, ms: u64) -> Self {
        self.origin_unix_ms = ms;
        self
    }

    /// Number of destinations.
    pub fn n_dest(&self) -> usize {
        self.n_dest
    }

    /// Wall duration of a bucket.
    pub fn bucket_duration(&self) -> Duration {
        self.bucket
    }

    /// When the current bucket ends.
    pub fn next_deadline(&self) -> Instant {
        self.next_deadline
    }

    /// Closes the bucket if `now` is past its deadline and returns it.
    pub fn poll(&mut self, now: Instant) -> Option<&Bucket> {
        if now < self.next_deadline {
            return None;
        }
        self.next_deadline += self.bucket;
        // If the thread fell far behind, don't emit a burst of empty buckets.
        if self.next_deadline < now {
            self.next_deadline = now + self.bucket;
        }
        Some(self.close_bucket())
    }

    fn sum_into_cur(&mut self) {
        self.cur.clear();
        for w in &self.workers {
            w.accumulate(&mut self.cur);
        }
    }

    /// Closes the current bucket now, whatever the clock says (tests and replay use this).
    pub fn close_bucket(&mut self) -> &Bucket {
        self.sum_into_cur();
        let d = |a: &[u64], b: &[u64]| -> Vec<u64> {
            a.iter().zip(b).map(|(x, y)| x.wrapping_sub(*y)).collect()
        };
        let (c, p) = (&self.cur, &self.prev);
        let b = Bucket {
            index: self.next_index,
            start_unix_ms: self.origin_unix_ms + self.next_index * BUCKET_LOGICAL_MS,
            packets: d(&c.dest_p, &p.dest_p),
            bytes: d(&c.dest_b, &p.dest_b),
            app_packets: d(&c.app_p, &p.app_p),
            app_bytes: d(&c.app_b, &p.app_b),
            other_dest_packets: c.other_p.wrapping_sub(p.other_p),
            other_dest_bytes: c.other_b.wrapping_sub(p.other_b),
            other_app_packets: c.app_other_p.wrapping_sub(p.app_other_p),
            other_app_bytes: c.app_other_b.wrapping_sub(p.app_other_b),
        };
        std::mem::swap(&mut self.prev, &mut self.cur);
        self.next_index += 1;
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(b);
        self.ring.back().expect("just pushed")
    }

    /// The kept buckets, oldest first.
    pub fn ring(&self) -> impl Iterator<Item = &Bucket> {
        self.ring.iter()
    }

    /// Number of n_app classes tracked.
    pub fn n_app(&self) -> usize {
        self.n_app
    }
}

/// Writes buckets as CSV with the header `bucket,start_ms,dest,packets,bytes`.
pub fn write_csv<'a, W: Write>(
    mut w: W,
    buckets: impl IntoIterator<Item = &'a Bucket>,
) -> std::io::Result<()> {
    writeln!(w, "bucket,start_ms,dest,packets,bytes")?;
    for b in buckets {
        for (d, (p, by)) in b.packets.iter().zip(&b.bytes).enumerate() {
            writeln!(w, "{},{},{},{},{}", b.index, b.start_unix_ms, d, p, by)?;
        }
    }
    w.flush()
}

/// The most (bucket, destination) counters [`read_csv`] allocates: 1 GiB of packets
/// and bytes.
pub const MAX_CSV_CELLS: usize = 1 << 26;

/// Reads buckets written by [`write_csv`]. Rows may come in any order; missing
/// (bucket, dest) pairs count as zero; `n_dest` is the largest dest + 1. Bucket indices
/// are renumbered from 0 in ascending order of the file's `bucket` column.
pub fn read_csv<R: BufRead>(r: R) -> Result<Vec<Bucket>, TelemetryError> {
    let mut rows: Vec<(u64, u64, usize, u64, u64)> = Vec::new();
    let mut n_dest = 0usize;
    let mut widest_line = 0usize;
    for (i, line) in r.lines().enumerate() {
        let lineno = i + 1;
        let line = line.map_err(|e| TelemetryError::Csv {
            line: lineno,
            msg: e.to_string(),
        })?;
        let line = line.trim();
        if line.is_empty() || (i == 0 && line.starts_with("bucket")) {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 5 {
            return Err(TelemetryError::Csv {
                line: lineno,
                msg: format!("expected 5 columns, found {}", f.len()),
            });
        }
        let num = |s: &str, what: &str| -> Result<u64, TelemetryError> {
            s.trim().parse::<u64>().map_err(|_| TelemetryError::Csv {
                line: lineno,
                msg: format!("{what} {s:?} is not an unsigned integer"),
            })
        };
        let dest = num(f[2], "dest")? as usize;
        if dest > u16::MAX as usize {
            return Err(TelemetryError::Csv {
                line: lineno,
                msg: format!("dest {dest} out of range"),
            });
        }
        if dest + 1 > n_dest {
            (n_dest, widest_line) = (dest + 1, lineno);
        }
        rows.push((
            num(f[0], "bucket")?,
            num(f[1], "start_ms")?,
            dest,
            num(f[3], "packets")?,
            num(f[4], "bytes")?,
        ));
    }
    rows.sort_by_key(|r| (r.0, r.2));
    // Every bucket holds a counter for every destination up to the largest one named:
    // refuse a file that would take more memory than any real export (a week of 256
    // destinations is 2.6 M) before allocating it.
    let n_buckets = rows.windows(2).filter(|w| w[0].0 != w[1].0).count() + 1;
    if !rows.is_empty() && n_buckets.saturating_mul(n_dest) > MAX_CSV_CELLS {
        return Err(TelemetryError::Csv {
            line: widest_line,
            msg: format!(
                "dest {} gives each of the {n_buckets} buckets {n_dest} destinations: more \
                 than {MAX_CSV_CELLS} counters in all (is the dest column wrong?)",
                n_dest - 1
            ),
        });
    }
    let mut out: Vec<Bucket> = Vec::new();
    let mut last: Option<u64> = None;
    for (bi, start, dest, p, by) in rows {
        if last != Some(bi) {
            last = Some(bi);
            out.push(Bucket::per_dest(
                out.len() as u64,
                start,
                vec![0; n_dest],
                vec![0; n_dest],
            ));
        }
        let b = out.last_mut().expect("pushed above");
        b.packets[dest] = b.packets[dest].saturating_add(p);
        b.bytes[dest] = b.bytes[dest].saturating_add(by);
    }
    Ok(out)
}

/// Reads a CSV file (see [`read_csv`]).
pub fn read_csv_file(path: &std::path::Path) -> Result<Vec<Bucket>, TelemetryError> {
    let f = std::fs::File::open(path).map_err(|source| TelemetryError::Io {
        path: path.display().to_string(),
        source,
    })?;
    read_csv(std::io::BufReader::new(f)).map_err(|e| match e {
        TelemetryError::Csv { line, msg } => TelemetryError::CsvFile {
            path: path.display().to_string(),
            line,
            msg,
        },
        e => e,
    })
}

/// Per-destination packet series `[dest][bucket]` of a run of buckets.
pub fn packets_series(buckets: &[Bucket]) -> Vec<Vec<f32>> {
    let n = buckets.iter().map(|b| b.packets.len()).max().unwrap_or(0);
    (0..n)
        .map(|d| {
            buckets
                .iter()
                .map(|b| b.packets.get(d).copied().unwrap_or(0) as f32)
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cache_aligned() {
        assert_eq!(std::mem::align_of::<Line>(), 64);
        assert_eq!(std::mem::size_of::<Line>(), 64);
    }

    #[test]
    fn add_counts_and_out_of_range_goes_to_other() {
        let c = DestCounters::new(3, 2);
        c.add(0, 0, 100);
        c.add(0, 1, 50);
        c.add(2, 1, 10);
        c.add(7, 9, 1); // both out of range
        let mut t = Totals::zeroed(3, 2);
        c.accumulate(&mut t);
        assert_eq!(t.dest_p, vec![2, 0, 1]);
        assert_eq!(t.dest_b, vec![150, 0, 10]);
        assert_eq!((t.other_p, t.other_b), (1, 1));
        assert_eq!(t.app_p, vec![1, 2]);
        assert_eq!((t.app_other_p, t.app_other_b), (1, 1));
    }

    #[test]
    fn aggregator_diffs_buckets_over_workers() {
        let w0 = Arc::new(DestCounters::new(2, 1));
        let w1 = Arc::new(DestCounters::new(2, 1));
        w0.add(0, 0, 10); // before start: belongs to no bucket
        let mut a = Aggregator::new(vec![w0.clone(), w1.clone()], Duration::from_secs(60))
            .with_capacity(2)
            .with_origin_unix_ms(1000);
        w0.add(0, 0, 10);
        w1.add(1, 0, 20);
        w1.add(1, 0, 20);
        let b = a.close_bucket().clone();
        assert_eq!(b.index, 0);
        assert_eq!(b.start_unix_ms, 1000);
        assert_eq!(b.packets, vec![1, 2]);
        assert_eq!(b.bytes, vec![10, 40]);
        assert_eq!(b.app_packets, vec![3]);
        let b = a.close_bucket().clone();
        assert_eq!(b.packets, vec![0, 0]);
        assert_eq!(b.start_unix_ms, 1000 + BUCKET_LOGICAL_MS);
        w0.add(1, 0, 5);
        a.close_bucket();
        assert_eq!(a.ring().map(|b| b.index).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn concurrent_writers_are_all_counted() {
        let ws: Vec<Arc<DestCounters>> =
            (0..2).map(|_| Arc::new(DestCounters::new(4, 2))).collect();
        let mut a = Aggregator::new(ws.clone(), Duration::from_secs(1));
        let hs: Vec<_> = ws
            .iter()
            .cloned()
            .map(|w| {
                std::thread::spawn(move || {
                    for i in 0..100_000u32 {
                        w.add((i % 4) as u16, (i % 2) as u8, 1);
                    }
                })
            })
            .collect();
        let mut total = 0u64;
        for _ in 0..5 {
            total += a.close_bucket().packets.iter().sum::<u64>();
        }
        hs.into_iter().for_each(|h| h.join().unwrap());
        total += a.close_bucket().packets.iter().sum::<u64>();
        assert_eq!(total, 200_000);
    }

    #[test]
    fn csv_round_trip() {
        let mut a = Aggregator::new(
            vec![Arc::new(DestCounters::new(3, 1))],
            Duration::from_secs(60),
        )
        .with_origin_unix_ms(0);
        let w = a.workers[0].clone();
        w.add(0, 0, 64);
        a.close_bucket();
        w.add(2, 0, 1500);
        w.add(2, 0, 1500);
        a.close_bucket();
        let mut out = Vec::new();
        write_csv(&mut out, a.ring()).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("bucket,start_ms,dest,packets,bytes\n0,0,0,1,64\n"));
        let back = read_csv(&out[..]).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].packets, vec![0, 0, 2]);
        assert_eq!(back[1].bytes, vec![0, 0, 3000]);
        assert_eq!(back[1].start_unix_ms, 60_000);
        assert_eq!(
            packets_series(&back),
            vec![vec![1.0, 0.0], vec![0.0, 0.0], vec![0.0, 2.0]]
        );
    }

    #[test]
    fn csv_errors_name_the_line() {
        let e = read_csv(&b"bucket,start_ms,dest,packets,bytes\n0,0,0,1\n"[..]).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = read_csv(&b"0,0,x,1,2\n"[..]).unwrap_err();
        assert!(e.to_string().contains("dest"), "{e}");
        // A destination number that would make every bucket huge is refused before
        // anything that size is allocated; the error names its line.
        let mut big = String::new();
        for b in 0..1100 {
            big.push_str(&format!("{b},0,0,1,1\n"));
        }
        big.push_str("5,0,65535,1,1\n");
        let e = read_csv(big.as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "telemetry CSV line 1101: dest 65535 gives each of the 1100 buckets 65536 \
             destinations: more than 67108864 counters in all (is the dest column wrong?)"
        );
        // The same destination over fewer buckets is read.
        let ok: String = (0..10).map(|b| format!("{b},0,65535,1,1\n")).collect();
        assert_eq!(read_csv(ok.as_bytes()).unwrap().len(), 10);
    }

    #[test]
    fn a_bad_csv_file_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(
            &p,
            "bucket,start_ms,dest,packets,bytes\n0,0,0,1,2\nroot:x:0:0\n",
        )
        .unwrap();
        let e = read_csv_file(&p).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}:3: telemetry CSV: expected 5 columns, found 1",
                p.display()
            )
        );
    }
}
