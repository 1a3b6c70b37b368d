//! `PcapReader` over any bytes: never panics, records tile the file exactly, and an
//! error ends the iteration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steerd::wire::pcap::PcapReader;

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = PcapReader::new(data) else {
        return;
    };
    let snaplen = reader.snaplen();
    let mut consumed = 24usize;
    let mut failed = false;
    for rec in reader {
        assert!(!failed, "a record after an error");
        match rec {
            Ok(r) => {
                assert!(r.data.len() as u64 <= u64::from(snaplen));
                consumed += 16 + r.data.len();
                assert!(consumed <= data.len());
                // the record's bytes are the file's bytes at that place
                assert_eq!(r.data, &data[consumed - r.data.len()..consumed]);
                let _ = steerd::wire::classify(r.data);
            }
            Err(e) => {
                failed = true;
                let _ = e.to_string();
            }
        }
    }
    if !failed {
        assert_eq!(
            consumed,
            data.len(),
            "clean end of iteration before the end of the file"
        );
    }
});
