//! `classify` on any bytes: never panics, and when it accepts a frame the result keeps
//! the invariants documented on `Classified`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steerd::wire::{L3, classify};

fuzz_target!(|frame: &[u8]| {
    let Ok(c) = classify(frame) else { return };
    let len = frame.len();
    let (l2, l3, l4) = (
        usize::from(c.l2_len),
        usize::from(c.l3_off),
        usize::from(c.l4_off),
    );
    assert!(
        l2 >= 14 && l2 <= len,
        "l2_len {l2} outside a {len}-byte frame"
    );
    assert!(l2 <= l3 && l3 <= len, "l3_off {l3} outside [{l2}, {len}]");
    assert_eq!(
        l3,
        l2 + usize::from(c.nsh_len),
        "l3_off != l2_len + nsh_len"
    );
    assert!(
        l4 == 0 || (l4 > l3 && l4 <= len),
        "l4_off {l4} not after l3_off {l3} within {len}"
    );
    assert!(c.nsh.is_none() || c.nsh_present);
    if c.nsh_present {
        assert_eq!(c.nsh_len % 4, 0);
        assert!(c.nsh_len >= 8);
        assert_eq!(c.ethertype, 0x894f);
        assert!(matches!(c.l3, L3::Ipv4 | L3::Ipv6));
    } else {
        assert_eq!(c.nsh_len, 0);
    }
    let is_ip = matches!(c.l3, L3::Ipv4 | L3::Ipv6);
    if c.is_fragment || !is_ip {
        assert_eq!((c.l4_off, c.src_port, c.dst_port), (0, 0, 0));
    }
    if !is_ip {
        assert_eq!((c.proto, c.ttl, c.flow_hash), (0, 0, 0));
    }
    if c.l3 != L3::Ipv4 {
        assert_eq!((c.src_v4, c.dst_v4), (0, 0));
    }
    if c.l3 != L3::Ipv6 {
        assert_eq!((c.src_v6, c.dst_v6), (0, 0));
    }
    match c.l3 {
        L3::Ipv4 => {
            // the addresses really are where l3_off says
            assert_eq!(frame[l3] >> 4, 4);
            assert_eq!(c.src_v4.to_be_bytes(), frame[l3 + 12..l3 + 16]);
            assert_eq!(c.ttl, frame[l3 + 8]);
        }
        L3::Ipv6 => {
            assert_eq!(frame[l3] >> 4, 6);
            assert_eq!(c.dst_v6.to_be_bytes(), frame[l3 + 24..l3 + 40]);
            assert_eq!(c.ttl, frame[l3 + 7]);
        }
        L3::Arp => assert!(len >= l3 + 28),
        L3::Other(et) => assert_eq!(et, c.ethertype),
    }
    if l4 != 0 && matches!(c.proto, 6 | 17 | 132) {
        assert_eq!(c.src_port.to_be_bytes(), frame[l4..l4 + 2]);
        assert_eq!(c.dst_port.to_be_bytes(), frame[l4 + 2..l4 + 4]);
    }
    // deterministic
    assert_eq!(classify(frame), Ok(c));
});
