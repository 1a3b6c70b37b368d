//! The rtnetlink link-message walk (`netdev::link_messages`, fed by the kernel's
//! `RTMGRP_LINK` notifications) on any bytes: never panics, and finds no more messages
//! than the bytes can hold (a header and an ifinfomsg, 32 bytes, each).
#![no_main]

use libfuzzer_sys::fuzz_target;
use steerd::port::netdev::link_messages;

fuzz_target!(|data: &[u8]| {
    let mut seen = 0usize;
    let found = link_messages(data, |_| seen += 1);
    assert_eq!(found, seen);
    assert!(found <= data.len() / 32);
});
