//! IPv6 extension-header walk on any bytes: never panics, and an accepted chain ends
//! inside the packet after the fixed header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steerd::wire::ipv6::{HEADER_LEN, Packet};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Packet::new_checked(data) else {
        return;
    };
    let end = HEADER_LEN + usize::from(p.payload_len());
    if let Ok((proto, off, frag)) = p.upper_layer() {
        assert!(
            off >= HEADER_LEN && off <= end,
            "upper layer at {off}, packet ends at {end}"
        );
        // the walk is a pure function of the bytes
        assert_eq!(p.upper_layer(), Ok((proto, off, frag)));
        // extension headers are at least 8 bytes each, at most 8 of them
        assert!(off == HEADER_LEN || off >= HEADER_LEN + 8);
    }
});
