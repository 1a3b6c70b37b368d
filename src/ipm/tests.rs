//! Marker tests: marked frames are what a SAFE accepts (`SteeringTable::admit` and the
//! whole pipeline), every unmarked reason, the flow table, classification, keys and
//! rotation, and every forged-header case the SAFE must refuse (routed by LPM, counted
//! by reason, never steered).

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;
use crate::cp::packets as pk;
use crate::port::{PktBuf, Pool};
use crate::safe::Local;
use crate::safe::pipeline::{BURST, BurstCtx, Mode, Scratch, process_burst};
use crate::safe::punt::Punt;
use crate::safe::tables::Tables;
use crate::safe::tx::TxStage;
use crate::steering::{Fallback, Key, SteeringKeys, TagFields};
use crate::telemetry::DestCounters;
use crate::wire::nsh::SteeringRepr;

const K1: &str = "000102030405060708090a0b0c0d0e0f";
const K2: &str = "101112131415161718191a1b1c1d1e1f";
const K3: &str = "202122232425262728292a2b2c2d2e2f";
const LPM_GW: [u8; 6] = [2, 0, 0, 0, 9, 1];
const STEER_GW: [u8; 6] = [2, 0, 0, 0, 9, 2];
const EDGE: u16 = 0;
const UNTRUSTED: u16 = 2;

fn key(s: &str) -> Key {
    Key::from_hex(s).unwrap()
}

fn udp(sport: u16, dport: u16, payload: usize) -> Vec<u8> {
    let mut u = vec![0u8; 8 + payload];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
    for (i, b) in u[8..].iter_mut().enumerate() {
        *b = i as u8;
    }
    u
}

fn v4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: usize) -> Vec<u8> {
    let ip = pk::ipv4(
        Ipv4Addr::from(src),
        Ipv4Addr::from(dst),
        17,
        64,
        7,
        &udp(sport, dport, payload),
    );
    pk::frame([2, 0, 0, 0, 1, 1], [2, 0, 0, 0, 1, 2], ethertype::IPV4, &ip)
}

fn v6(src: &str, dst: &str, sport: u16, dport: u16, payload: usize) -> Vec<u8> {
    let ip = pk::ipv6(
        src.parse::<Ipv6Addr>().unwrap(),
        dst.parse::<Ipv6Addr>().unwrap(),
        17,
        64,
        &udp(sport, dport, payload),
    );
    pk::frame([2, 0, 0, 0, 1, 1], [2, 0, 0, 0, 1, 2], ethertype::IPV6, &ip)
}

fn to_b() -> Vec<u8> {
    v4([10, 1, 0, 2], [10, 2, 0, 2], 40000, 5201, 64)
}

fn marker_cfg() -> MarkerConfig {
    let mut c = MarkerConfig::new(
        vec![
            (Prefix::parse("10.2.0.0/24").unwrap(), 1),
            (Prefix::parse("10.2.0.128/25").unwrap(), 2),
            (Prefix::parse("fd02::/64").unwrap(), 1),
            (Prefix::parse("10.9.0.0/16").unwrap(), 9), // not in the SAFE's table
        ],
        key(K1),
    );
    c.epoch = 10;
    c
}

fn marker() -> Marker {
    Marker::new(marker_cfg()).unwrap()
}

fn buf(frame: &[u8], port: u16) -> PktBuf {
    let mut b = PktBuf::new();
    b.fill(frame);
    b.port = port;
    b
}

/// The SAFE the marker sits in front of: port 0 "edge" trusted, port 1 "core" toward
/// plain hosts (strip_nsh), port 2 "other" untrusted; LPM via lpm-gw, destination 1 via
/// steer-gw; epoch 10, max age 2, keys as given (current first).
fn safe(keys: &[&str]) -> Tables {
    tables_of(&safe_text(keys))
}

fn tables_of(text: &str) -> Tables {
    let cfg =
        crate::config::Config::from_toml(text, "t", std::path::Path::new("."), false).unwrap();
    crate::app::build_tables(&cfg, &[], None).unwrap()
}

fn safe_text(keys: &[&str]) -> String {
    let keys = keys
        .iter()
        .map(|k| format!("\"{k}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"
[[ports]]
name = "edge"
backend = "mem"
trusted = true
[[ports]]
name = "core"
backend = "mem"
[[ports]]
name = "other"
backend = "mem"
[[next_hops]]
name = "lpm-gw"
port = "core"
mac = "02:00:00:00:09:01"
[[next_hops]]
name = "steer-gw"
port = "core"
mac = "02:00:00:00:09:02"
[[routes]]
prefix = "10.0.0.0/8"
via = "lpm-gw"
[[routes]]
prefix = "fd00::/8"
via = "lpm-gw"
[steering]
keys = [{keys}]
epoch = 10
max_epoch_age = 2
[[steering.destinations]]
id = 1
next_hop = "steer-gw"
[[steering.destinations]]
id = 2
next_hop = "steer-gw"
"#
    )
}

struct Out {
    c: Local,
    sent: Vec<(usize, Vec<u8>)>,
}

impl Out {
    fn fb(&self, f: Fallback) -> u64 {
        self.c.fallback[f as usize]
    }
}

fn forward(t: &Tables, bufs: Vec<PktBuf>) -> Out {
    let mut pool = Pool::new(8);
    let mut c = Local::default();
    let mut stages: Vec<TxStage<PktBuf>> = (0..3).map(|_| TxStage::new(64)).collect();
    let mut s = Scratch::default();
    let tel = DestCounters::new(8, 16);
    let ctx = BurstCtx {
        tables: t,
        now_ns: 0,
        io_peer: &[],
        telemetry: &tel,
        generation: 1,
    };
    for chunk in bufs.chunks(BURST) {
        let mut pkts: Vec<PktBuf> = Vec::with_capacity(BURST);
        for b in chunk {
            let mut x = PktBuf::new();
            x.fill(b.data());
            x.port = b.port;
            pkts.push(x);
        }
        process_burst(
            Mode::Forward,
            &ctx,
            &mut pkts,
            &mut s,
            &mut stages,
            &mut c,
            |b| pool.put(b),
            |p: Punt<PktBuf>| Err(p),
        );
    }
    let mut sent = Vec::new();
    for (i, st) in stages.iter().enumerate() {
        for b in st.classes.iter().flatten() {
            sent.push((i, b.data().to_vec()));
        }
    }
    Out { c, sent }
}

fn header_of(frame: &[u8]) -> SteeringRepr {
    wire::classify(frame)
        .unwrap()
        .nsh
        .expect("a steering header")
}

/// A marked frame with its header rewritten by `f` (the tag left as it was).
fn tamper(frame: &[u8], f: impl FnOnce(&mut SteeringRepr)) -> Vec<u8> {
    let mut h = header_of(frame);
    f(&mut h);
    let mut v = frame.to_vec();
    v[14..46].copy_from_slice(&h.to_bytes());
    v
}

/// A header for `frame` (plain) with the tag computed under `k`.
fn marked_under(frame: &[u8], k: &str, p: MarkParams) -> Vec<u8> {
    let mut c = marker_cfg();
    c.keys = SteeringKeys {
        current: key(k),
        previous: None,
    };
    let mut m = Marker::new(c).unwrap();
    let mut b = buf(frame, EDGE);
    m.mark_with(&mut b, &p).unwrap();
    b.data().to_vec()
}

#[test]
fn marks_ipv4_in_place_and_the_safe_admits_it() {
    let mut m = marker();
    let plain = to_b();
    let mut b = buf(&plain, EDGE);
    assert_eq!(m.mark(&mut b), Outcome::Marked(1));
    let d = b.data();
    assert_eq!(d.len(), plain.len() + 32);
    assert_eq!(&d[..12], &plain[..12], "MACs kept");
    assert_eq!(&d[12..14], &[0x89, 0x4f]);
    assert_eq!(&d[46..], &plain[14..], "inner packet untouched");
    let k = wire::classify(d).unwrap();
    let h = k.nsh.unwrap();
    assert_eq!(
        (h.dest_id, h.app_class, h.priority, h.epoch, h.next_protocol),
        (1, app::BULK, 0, 10, nsh::next_protocol::IPV4)
    );
    assert_eq!(k.src_v4, u32::from(Ipv4Addr::new(10, 1, 0, 2)));
    // parse(emit) of what was written.
    assert_eq!(
        SteeringRepr::parse(&nsh::Packet::new_checked(&d[14..]).unwrap()).unwrap(),
        h
    );
    assert_eq!(&h.to_bytes()[..], &d[14..46]);
    let t = safe(&[K1]);
    let f = TagFields {
        dest_id: h.dest_id,
        app_class: h.app_class,
        priority: h.priority,
        flags: h.flags,
        epoch: h.epoch,
        spi: h.spi,
        si: h.si,
    };
    assert!(
        t.steering
            .admit(&f, h.tag, &d[46 + 12..46 + 16], &d[46 + 16..46 + 20])
            .is_ok()
    );
    assert_eq!(m.stats().marked, 1);
    assert_eq!(m.stats().marked_by_dest[1], 1);
}

#[test]
fn marked_frames_are_steered_and_leave_plain() {
    let mut m = marker();
    let frames = [
        to_b(),
        v6("fd01::2", "fd02::2", 5353, 53, 20),
        v4([10, 1, 0, 2], [10, 2, 0, 200], 1, 443, 0), // dest 2 (longest prefix)
    ];
    let mut bufs = Vec::new();
    for f in &frames {
        let mut b = buf(f, EDGE);
        assert!(matches!(m.mark(&mut b), Outcome::Marked(_)));
        bufs.push(b);
    }
    assert_eq!(m.stats().marked_by_dest[1], 2);
    assert_eq!(m.stats().marked_by_dest[2], 1);
    let o = forward(&safe(&[K1]), bufs);
    assert_eq!(o.c.steered, 3, "{:?}", o.c.fallback);
    assert_eq!(o.c.routed, 0);
    assert_eq!(o.sent.len(), 3);
    // Sent in priority order (DNS 3, web 1, bulk 0): match by length.
    let mut sent = o.sent.clone();
    sent.sort_by_key(|s| s.1.len());
    let mut frames = frames.to_vec();
    frames.sort_by_key(|f| f.len());
    for ((port, out), plain) in sent.iter().zip(&frames) {
        assert_eq!(*port, 1);
        assert_eq!(&out[0..6], &STEER_GW);
        assert_eq!(out.len(), plain.len(), "header removed toward the hosts");
        assert_eq!(&out[12..14], &plain[12..14], "plain IP EtherType again");
        let k = wire::classify(out).unwrap();
        assert!(!k.nsh_present);
        assert_eq!(k.ttl, 63);
    }
}

#[test]
fn mark_vec_matches_mark_and_strip_undoes_it() {
    for f in [to_b(), v6("fd01::2", "fd02::9", 1000, 80, 100)] {
        let mut m1 = marker();
        let mut m2 = marker();
        let mut b = buf(&f, EDGE);
        let mut v = f.clone();
        assert_eq!(m1.mark(&mut b), m2.mark_vec(&mut v));
        assert_eq!(b.data(), &v[..]);
        assert!(strip_vec(&mut v));
        assert_eq!(v, f);
        assert!(!strip_vec(&mut v), "nothing to strip");
    }
}

#[test]
fn vlan_tagged_frames_get_the_header_after_the_tag() {
    let plain = to_b();
    let mut tagged = plain[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
    tagged.extend_from_slice(&plain[12..]);
    let mut m = marker();
    let mut b = buf(&tagged, EDGE);
    assert_eq!(m.mark(&mut b), Outcome::Marked(1));
    let d = b.data();
    assert_eq!(&d[12..18], &[0x81, 0x00, 0x00, 0x07, 0x89, 0x4f]);
    let k = wire::classify(d).unwrap();
    assert_eq!((k.l2_len, k.nsh_len, k.vlan), (18, 32, Some(7)));
    let o = forward(&safe(&[K1]), vec![b]);
    assert_eq!(o.c.steered, 1);
}

/// A buffer without headroom.
struct Tight(Vec<u8>);
impl Buf for Tight {
    fn data(&self) -> &[u8] {
        &self.0
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
    fn prepend(&mut self, _: usize) -> bool {
        false
    }
    fn adj(&mut self, _: usize) -> bool {
        false
    }
    fn trim_to(&mut self, _: usize) {}
    fn rx_port(&self) -> u16 {
        0
    }
}

#[test]
fn every_unmarked_reason_passes_the_frame_unchanged() {
    let mut c = marker_cfg();
    c.rules.push(Rule {
        dst_ports: Some(PortRange::one(9)),
        mark: false,
        ..Rule::any(0)
    });
    let mut m = Marker::new(c).unwrap();
    let arp = pk::arp_request(
        [2, 0, 0, 0, 1, 2],
        Ipv4Addr::new(10, 1, 0, 2),
        Ipv4Addr::new(10, 1, 0, 1),
        None,
    );
    let mut marked = buf(&to_b(), EDGE);
    m.mark(&mut marked);
    let mut bad_csum = to_b();
    bad_csum[24] ^= 0xff;
    let cases: Vec<(Vec<u8>, Unmarked)> = vec![
        (arp, Unmarked::NotIp),
        (marked.data().to_vec(), Unmarked::AlreadyNsh),
        (bad_csum, Unmarked::Malformed),
        (to_b()[..20].to_vec(), Unmarked::Malformed),
        (vec![], Unmarked::Malformed),
        (v4([10, 1, 0, 2], [192, 0, 2, 1], 1, 2, 0), Unmarked::NoDest),
        (
            v4([10, 1, 0, 2], [10, 2, 0, 2], 1, 9, 0),
            Unmarked::Excluded,
        ),
        // 1500-byte IP packet: 1532 with the header, over the MTU.
        (
            v4([10, 1, 0, 2], [10, 2, 0, 2], 1, 2, 1500 - 28),
            Unmarked::TooBig,
        ),
    ];
    for (f, why) in &cases {
        let mut b = buf(f, EDGE);
        assert_eq!(m.mark(&mut b), Outcome::Unmarked(*why), "{why:?}");
        assert_eq!(b.data(), &f[..], "{why:?}: unchanged");
        let mut v = f.clone();
        assert_eq!(m.mark_vec(&mut v), Outcome::Unmarked(*why));
        assert_eq!(&v, f);
    }
    // The largest packet that still fits: 1468 bytes of IP.
    let mut b = buf(&v4([10, 1, 0, 2], [10, 2, 0, 2], 1, 2, 1468 - 28), EDGE);
    assert_eq!(m.mark(&mut b), Outcome::Marked(1));
    // Not predicted.
    m.set_active(&[2]);
    let mut b = buf(&to_b(), EDGE);
    assert_eq!(m.mark(&mut b), Outcome::Unmarked(Unmarked::NotPredicted));
    assert_eq!(b.data(), &to_b()[..]);
    m.activate(1);
    let mut b = buf(&to_b(), EDGE);
    assert_eq!(m.mark(&mut b), Outcome::Marked(1));
    m.deactivate(1);
    assert!(!m.is_active(1) && m.is_active(2));
    // No headroom.
    m.set_active(&[1]);
    let mut t = Tight(to_b());
    assert_eq!(m.mark(&mut t), Outcome::Unmarked(Unmarked::NoHeadroom));
    assert_eq!(t.0, to_b());
    let s = m.stats();
    assert_eq!(s.unmarked(Unmarked::NotIp), 2);
    assert_eq!(s.unmarked(Unmarked::Malformed), 6);
    assert_eq!(s.unmarked(Unmarked::NotPredicted), 1);
    assert_eq!(s.unmarked(Unmarked::NoHeadroom), 1);
    assert_eq!(s.unmarked(Unmarked::TooBig), 2);
    assert_eq!(s.packets, s.marked + s.unmarked_total());
}

#[test]
fn mtu_zero_disables_the_check() {
    let mut c = marker_cfg();
    c.mtu = 0;
    let mut m = Marker::new(c).unwrap();
    let mut b = buf(&v4([10, 1, 0, 2], [10, 2, 0, 2], 1, 2, 1500 - 28), EDGE);
    assert_eq!(m.mark(&mut b), Outcome::Marked(1));
}

#[test]
fn classification_rules_then_signatures_then_defaults() {
    let mut c = marker_cfg();
    c.rules = vec![
        Rule {
            src: Some(Prefix::parse("10.1.0.99/32").unwrap()),
            app_class: app::REALTIME,
            priority: 3,
            dest: Some(2),
            ..Rule::any(0)
        },
        Rule {
            proto: Some(17),
            dst_ports: Some(PortRange::parse("6000-6999").unwrap()),
            app_class: 12,
            priority: 2,
            ..Rule::any(0)
        },
    ];
    c.signatures.push(Signature {
        port: 53,
        proto: Some(17),
        app_class: 13,
        priority: 1,
    });
    let m = Marker::new(c).unwrap();
    let d = |f: Vec<u8>| m.classify(&f).unwrap();
    let dec = d(v4([10, 1, 0, 99], [10, 2, 0, 2], 1, 53, 0));
    assert_eq!(
        (dec.dest, dec.app_class, dec.priority),
        (Some(2), app::REALTIME, 3)
    );
    let dec = d(v4([10, 1, 0, 2], [10, 2, 0, 2], 1, 6500, 0));
    assert_eq!((dec.dest, dec.app_class, dec.priority), (Some(1), 12, 2));
    // The protocol-specific signature beats the built-in one for UDP 53.
    assert_eq!(d(v4([10, 1, 0, 2], [10, 2, 0, 2], 1, 53, 0)).app_class, 13);
    // Replies: the server port is the source port.
    assert_eq!(
        d(v4([10, 1, 0, 2], [10, 2, 0, 2], 443, 50000, 0)).app_class,
        app::WEB
    );
    assert_eq!(
        d(v4([10, 1, 0, 2], [10, 2, 0, 2], 1, 5201, 0)).app_class,
        app::BULK
    );
    assert_eq!(
        d(v6("fd01::2", "fd02::2", 1, 22, 0)).app_class,
        app::INTERACTIVE
    );
    let echo = pk::frame(
        [2; 6],
        [4; 6],
        ethertype::IPV4,
        &pk::ipv4(
            Ipv4Addr::new(10, 1, 0, 2),
            Ipv4Addr::new(10, 2, 0, 2),
            1,
            64,
            1,
            &pk::icmpv4(8, 0, [0, 1, 0, 1], b"x"),
        ),
    );
    assert_eq!(d(echo).app_class, app::ICMP);
    assert_eq!(
        d(v4([10, 1, 0, 2], [10, 2, 0, 2], 1, 2, 0)).app_class,
        app::UNKNOWN
    );
    assert_eq!(m.dest_of("10.2.0.130".parse().unwrap()), Some(2));
    assert_eq!(m.dest_of("fd02::1".parse().unwrap()), Some(1));
    assert_eq!(m.dest_of("192.0.2.1".parse().unwrap()), None);
}

#[test]
fn flow_table_hits_misses_and_evicts_without_growing() {
    let mut c = marker_cfg();
    c.flow_capacity = 8;
    let mut m = Marker::new(c).unwrap();
    assert_eq!(m.flow_capacity(), 8);
    for _ in 0..3 {
        let mut b = buf(&to_b(), EDGE);
        m.mark(&mut b);
    }
    assert_eq!((m.stats().flow_misses, m.stats().flow_hits), (1, 2));
    for p in 0..100u16 {
        let mut b = buf(&v4([10, 1, 0, 2], [10, 2, 0, 2], 1000 + p, 80, 0), EDGE);
        assert_eq!(m.mark(&mut b), Outcome::Marked(1));
    }
    let s = m.stats();
    assert_eq!(s.flow_misses, 101);
    assert!(s.flow_evictions >= 100 - 8, "{s:?}");
    assert!(m.flow_count() <= 8);
    m.clear_flows();
    assert_eq!(m.flow_count(), 0);
}

#[test]
fn bad_configs_are_refused() {
    let mut c = marker_cfg();
    c.destinations
        .push((Prefix::parse("10.3.0.0/16").unwrap(), MAX_DEST_ID + 1));
    assert!(Marker::new(c).unwrap_err().contains("above"));
    let mut c = marker_cfg();
    c.rules.push(Rule {
        priority: 4,
        ..Rule::any(0)
    });
    assert!(Marker::new(c).unwrap_err().contains("priority 4"));
    let mut c = marker_cfg();
    c.default_app = 16;
    assert!(Marker::new(c).unwrap_err().contains("class 16"));
    assert!(Prefix::parse("10.0.0.0/33").is_err());
    assert!(Prefix::parse("nope").is_err());
    assert!(PortRange::parse("9-1").is_err());
    assert_eq!(
        Prefix::parse("10.2.3.4/16").unwrap().addr,
        u128::from(0x0a02_0000u32)
    );
    assert_eq!(app::parse("web"), Ok(app::WEB));
    assert!(app::parse("16").is_err());
}

// ---- Forged headers: none is forwarded by the steering table. -----------------------

/// `frames` through the SAFE with `keys`: never steered, each counted under `why`,
/// routed by LPM to lpm-gw and stripped toward the host.
fn refused(keys: &[&str], frames: Vec<PktBuf>, why: Fallback) -> Out {
    let n = frames.len() as u64;
    let o = forward(&safe(keys), frames);
    assert_eq!(o.c.steered, 0, "{why:?}: steered {:?}", o.c.fallback);
    assert_eq!(o.fb(why), n, "{why:?}: fallbacks {:?}", o.c.fallback);
    assert_eq!(o.c.routed, n, "{why:?}: routed by LPM");
    for (port, f) in &o.sent {
        assert_eq!(
            (*port, &f[0..6]),
            (1, &LPM_GW[..]),
            "{why:?}: the LPM next hop"
        );
        assert!(!wire::classify(f).unwrap().nsh_present);
    }
    o
}

#[test]
fn forged_tag_is_refused() {
    let mut m = marker();
    let mut b = buf(&to_b(), EDGE);
    m.mark(&mut b);
    let forged: Vec<PktBuf> = [
        tamper(b.data(), |h| h.tag ^= 1),
        tamper(b.data(), |h| h.tag = 0),
        // Fields changed under a valid tag: another destination, priority, SI.
        tamper(b.data(), |h| h.dest_id = 2),
        tamper(b.data(), |h| h.priority = 3),
        tamper(b.data(), |h| h.si = 7),
    ]
    .iter()
    .map(|f| buf(f, EDGE))
    .collect();
    refused(&[K1], forged, Fallback::BadTag);
    // A header tagged under a key the SAFE does not have.
    let other = marked_under(&to_b(), K3, MarkParams::new(1, 0, 0, 10));
    refused(&[K1], vec![buf(&other, EDGE)], Fallback::BadTag);
}

#[test]
fn replayed_header_on_another_flow_is_refused() {
    let mut m = marker();
    let mut b = buf(&to_b(), EDGE);
    m.mark(&mut b);
    let header = b.data()[14..46].to_vec();
    // Copied onto other flows (other source, other destination, IPv6).
    let mut out = Vec::new();
    for other in [
        v4([10, 1, 0, 3], [10, 2, 0, 2], 40000, 5201, 64),
        v4([10, 1, 0, 2], [10, 2, 0, 3], 40000, 5201, 64),
    ] {
        let mut f = other[..12].to_vec();
        f.extend_from_slice(&[0x89, 0x4f]);
        f.extend_from_slice(&header);
        f.extend_from_slice(&other[14..]);
        out.push(buf(&f, EDGE));
    }
    let o = refused(&[K1], out, Fallback::BadTag);
    assert_eq!(o.sent.len(), 2);
}

#[test]
fn old_header_replayed_after_the_epoch_moved_on_is_refused() {
    // Captured at epoch 7; the SAFE is at 10 with max age 2: too old. A header from
    // the future (epoch 11) is refused too.
    let old = marked_under(&to_b(), K1, MarkParams::new(1, 0, 0, 7));
    let fut = marked_under(&to_b(), K1, MarkParams::new(1, 0, 0, 11));
    refused(
        &[K1],
        vec![buf(&old, EDGE), buf(&fut, EDGE)],
        Fallback::StaleEpoch,
    );
    // Within the age (8, 9, 10): steered.
    let ok: Vec<PktBuf> = [8, 9, 10]
        .iter()
        .map(|e| {
            buf(
                &marked_under(&to_b(), K1, MarkParams::new(1, 0, 0, *e)),
                EDGE,
            )
        })
        .collect();
    assert_eq!(forward(&safe(&[K1]), ok).c.steered, 3);
    // The marker's own epoch follows set_epoch.
    let mut m = marker();
    m.set_epoch(3);
    let mut b = buf(&to_b(), EDGE);
    m.mark(&mut b);
    refused(&[K1], vec![b], Fallback::StaleEpoch);
}

#[test]
fn unknown_destination_is_refused() {
    let mut m = marker();
    // 10.9/16 maps to destination 9, which the SAFE's table does not have.
    let mut b = buf(&v4([10, 1, 0, 2], [10, 9, 0, 1], 1, 2, 0), EDGE);
    assert_eq!(m.mark(&mut b), Outcome::Marked(9));
    let x = marked_under(&to_b(), K1, MarkParams::new(40_000, 0, 0, 10));
    refused(&[K1], vec![b, buf(&x, EDGE)], Fallback::UnknownDest);
}

#[test]
fn valid_header_on_an_untrusted_port_is_refused() {
    let mut m = marker();
    let mut b = buf(&to_b(), UNTRUSTED);
    assert_eq!(m.mark(&mut b), Outcome::Marked(1));
    refused(&[K1], vec![b], Fallback::Untrusted);
}

#[test]
fn nsh_without_steering_tlv_is_routed() {
    let mut m = marker();
    let mut b = buf(&to_b(), EDGE);
    m.mark(&mut b);
    let mut f = b.data().to_vec();
    f[14 + 9] = 0xf7; // another metadata class
    refused(&[K1], vec![buf(&f, EDGE)], Fallback::NoSteeringTlv);
}

#[test]
fn previous_key_is_accepted_after_one_rotation_not_after_two() {
    // Marked under K1 before the rotation.
    let mut m = marker();
    let mut old = buf(&to_b(), EDGE);
    m.mark(&mut old);
    // Marker and SAFE rotate to K2: the SAFE keeps K1 as previous.
    m.rotate(key(K2));
    assert_eq!(m.keys().previous, Some(key(K1)));
    let mut new = buf(&to_b(), EDGE);
    m.mark(&mut new);
    assert_ne!(old.data(), new.data(), "tagged under the new key");
    let o = forward(
        &safe(&[K2, K1]),
        vec![buf(old.data(), EDGE), buf(new.data(), EDGE)],
    );
    assert_eq!(o.c.steered, 2, "{:?}", o.c.fallback);
    // Second rotation to K3: K1 is gone, K2 is previous.
    m.rotate(key(K3));
    let mut newest = buf(&to_b(), EDGE);
    m.mark(&mut newest);
    refused(&[K3, K2], vec![buf(old.data(), EDGE)], Fallback::BadTag);
    let o = forward(&safe(&[K3, K2]), vec![new, newest]);
    assert_eq!(o.c.steered, 2, "{:?}", o.c.fallback);
}

/// An ECMP steering entry (`ecmp = [...]` in the config): destination 1's flows are
/// spread over both steering next hops, each flow always on the same one; destination
/// 2 keeps its single next hop.
#[test]
fn ecmp_steering_entry_spreads_flows() {
    let text = safe_text(&[K1])
        .replacen(
            "[[routes]]",
            "[[next_hops]]\nname = \"steer-gw2\"\nport = \"core\"\nmac = \"02:00:00:00:09:03\"\n[[routes]]",
            1,
        )
        .replacen(
            "id = 1\nnext_hop = \"steer-gw\"\n",
            "id = 1\nnext_hop = \"steer-gw\"\necmp = [\"steer-gw2\"]\n",
            1,
        );
    let t = tables_of(&text);
    assert_eq!(t.steering.get(1).unwrap().hops().len(), 2);
    let mut m = marker();
    let bufs = |m: &mut Marker, dest_net: u8| -> Vec<PktBuf> {
        (0..48u16)
            .map(|i| {
                // 10.2.0.0/24 is destination 1, 10.2.0.128/25 destination 2.
                let host = if dest_net == 1 { 7 } else { 200 };
                let f = v4([10, 1, 0, 2], [10, 2, 0, host], 1000 + i, 5201, 64);
                let mut b = buf(&f, EDGE);
                assert_eq!(m.mark(&mut b), Outcome::Marked(u32::from(dest_net)));
                b
            })
            .collect()
    };
    let o = forward(&t, bufs(&mut m, 1));
    assert_eq!(o.c.steered, 48, "{:?}", o.c.fallback);
    let via = |o: &Out, last: u8| o.sent.iter().filter(|(_, f)| f[5] == last).count();
    let (a, b) = (via(&o, 2), via(&o, 3));
    assert_eq!(a + b, 48);
    assert!(a > 8 && b > 8, "both next hops carry flows: {a} / {b}");
    let again = forward(&t, bufs(&mut m, 1));
    assert_eq!(o.sent, again.sent, "each flow keeps its next hop");
    let o = forward(&t, bufs(&mut m, 2));
    assert_eq!(
        (o.c.steered, via(&o, 2)),
        (48, 48),
        "destination 2: one next hop"
    );
}

// ---- Properties ------------------------------------------------------------------

fn any_frame() -> impl Strategy<Value = (Vec<u8>, bool)> {
    (
        any::<bool>(),
        any::<[u8; 4]>(),
        0u8..=255,
        any::<u16>(),
        any::<u16>(),
        0usize..1400,
    )
        .prop_map(|(is6, src, host, sp, dp, len)| {
            if is6 {
                let s = format!("fd01::{:x}", u16::from_be_bytes([src[0], src[1]]));
                let d = format!("fd02::{host:x}");
                (v6(&s, &d, sp, dp, len), true)
            } else {
                (v4(src, [10, 2, 0, host], sp, dp, len), false)
            }
        })
}

proptest! {
    #[test]
    fn marked_frames_verify_and_strip_back(
        (f, is6) in any_frame(),
        dest in 0u32..4,
        app_class in 0u8..16,
        prio in 0u8..4,
        epoch in any::<u32>(),
    ) {
        let mut m = marker();
        let p = MarkParams::new(dest, app_class, prio, epoch);
        let mut b = buf(&f, EDGE);
        prop_assert!(m.mark_with(&mut b, &p).is_ok());
        let d = b.data().to_vec();
        let k = wire::classify(&d).unwrap();
        let h = k.nsh.unwrap();
        prop_assert_eq!((h.dest_id, h.app_class, h.priority, h.epoch), (dest, app_class, prio, epoch));
        prop_assert_eq!(h.next_protocol, if is6 { 2 } else { 1 });
        let mut t = safe(&[K1]).steering.clone();
        t.epoch = epoch;
        t.insert(dest, crate::steering::SteerEntry::new(0, 3)).unwrap();
        let (o, l) = (46 + if is6 { 8 } else { 12 }, if is6 { 16 } else { 4 });
        let f2 = TagFields { dest_id: h.dest_id, app_class: h.app_class, priority: h.priority,
            flags: h.flags, epoch: h.epoch, spi: h.spi, si: h.si };
        prop_assert!(t.admit(&f2, h.tag, &d[o..o + l], &d[o + l..o + 2 * l]).is_ok());
        let mut v = d.clone();
        prop_assert!(strip_vec(&mut v));
        prop_assert_eq!(v, f);
    }

    #[test]
    fn classified_marking_is_steered_by_the_pipeline((f, _) in any_frame()) {
        let mut m = marker();
        let mut b = buf(&f, EDGE);
        let out = m.mark(&mut b);
        // 10.2.0.0/24 and fd02::/64 map to destinations the SAFE has (1, 2).
        prop_assert!(matches!(out, Outcome::Marked(1) | Outcome::Marked(2)), "{:?}", out);
        let o = forward(&safe(&[K1]), vec![b]);
        prop_assert_eq!(o.c.steered, 1);
        prop_assert_eq!(o.sent[0].1.len(), f.len());
    }

    #[test]
    fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), et in prop::sample::select(vec![0x0800u16, 0x86dd, 0x894f, 0x8100, 0x0806])) {
        let mut f = bytes;
        if f.len() >= 14 {
            f[12..14].copy_from_slice(&et.to_be_bytes());
        }
        let mut m = marker();
        let mut b = buf(&f, EDGE);
        let mut v = f.clone();
        let a = m.mark(&mut b);
        let c = m.mark_vec(&mut v);
        prop_assert_eq!(a, c);
        prop_assert_eq!(b.data(), &v[..]);
        match a {
            Outcome::Marked(_) => prop_assert!(wire::classify(&v).unwrap().nsh.is_some()),
            Outcome::Unmarked(_) => prop_assert_eq!(&v, &f),
        }
    }
}
