//! The marker on any bytes: never panics; the in-place (`PktBuf`) and `Vec` paths agree;
//! an unmarked frame is unchanged; a marked frame parses with the steering header the
//! marker chose, its tag verifies at a SAFE, and removing the header gives back the
//! input. The first byte picks the MTU and whether the destination is predicted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steerd::ipm::{Marker, MarkerConfig, Outcome, Prefix, strip_vec};
use steerd::port::{Buf, PktBuf};
use steerd::steering::{Key, SteerEntry, SteeringTable, TagFields};
use steerd::wire::classify;

fuzz_target!(|data: &[u8]| {
    let Some((&opts, frame)) = data.split_first() else {
        return;
    };
    let key = Key::from_bytes([7; 16]);
    let mut cfg = MarkerConfig::new(
        vec![
            (Prefix::parse("0.0.0.0/0").unwrap(), 1),
            (Prefix::parse("10.2.0.0/16").unwrap(), 2),
            (Prefix::parse("::/0").unwrap(), 3),
        ],
        key,
    );
    cfg.mtu = [0u16, 100, 1500, 9000][usize::from(opts & 3)];
    cfg.flow_capacity = 16;
    let mut m = Marker::new(cfg).unwrap();
    if opts & 4 != 0 {
        m.set_active(&[2]);
    }
    let mut b = PktBuf::new();
    if b.fill(frame) != frame.len() {
        return;
    }
    let mut v = frame.to_vec();
    let a = m.mark(&mut b);
    let c = m.mark_vec(&mut v);
    assert_eq!(a, c);
    assert_eq!(b.data(), &v[..]);
    let Outcome::Marked(dest) = a else {
        assert_eq!(&v[..], frame, "unmarked frames are unchanged");
        return;
    };
    let k = classify(&v).expect("a marked frame parses");
    let h = k.nsh.expect("with a steering header");
    assert_eq!(h.dest_id, dest);
    let mut t = SteeringTable::new(*m.keys(), h.epoch, 0);
    t.insert(dest, SteerEntry::new(0, 3)).unwrap();
    let o = usize::from(k.l3_off);
    let (s, l) = if matches!(k.l3, steerd::wire::L3::Ipv4) { (o + 12, 4) } else { (o + 8, 16) };
    let f = TagFields {
        dest_id: h.dest_id,
        app_class: h.app_class,
        priority: h.priority,
        flags: h.flags,
        epoch: h.epoch,
        spi: h.spi,
        si: h.si,
    };
    assert!(t.admit(&f, h.tag, &v[s..s + l], &v[s + l..s + 2 * l]).is_ok());
    assert!(strip_vec(&mut v));
    assert_eq!(&v[..], frame, "strip gives back the input");
});
