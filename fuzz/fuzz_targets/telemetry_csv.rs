//! The telemetry CSV reader (`steerd tpe eval --data`, `train.py`'s input) on any bytes:
//! never panics, errors name a line of the input, and what it reads writes back to a
//! CSV that reads to the same buckets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steerd::telemetry::{TelemetryError, read_csv, write_csv};

fuzz_target!(|data: &[u8]| {
    // Keep the input small: a row may name a destination up to 65535, and each
    // distinct bucket then holds that many counters.
    if data.len() > 1024 {
        return;
    }
    let buckets = match read_csv(data) {
        Ok(b) => b,
        Err(TelemetryError::Csv { line, msg }) => {
            assert!(line >= 1 && line <= data.split(|&b| b == b'\n').count(), "{line}: {msg}");
            return;
        }
        Err(e) => panic!("not a CSV error: {e}"),
    };
    for (i, b) in buckets.iter().enumerate() {
        assert_eq!(b.index, i as u64, "renumbered from 0");
        assert_eq!(b.packets.len(), b.bytes.len());
    }
    let mut out = Vec::new();
    write_csv(&mut out, &buckets).expect("writes to a Vec");
    let again = read_csv(&out[..]).expect("what was written reads");
    assert_eq!(again.len(), buckets.len());
    for (a, b) in again.iter().zip(&buckets) {
        assert_eq!(
            (a.start_unix_ms, &a.packets, &a.bytes),
            (b.start_unix_ms, &b.packets, &b.bytes)
        );
    }
});
