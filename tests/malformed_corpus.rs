//! Robustness: a corpus of malformed frames and forged headers, generated here from the
//! real frames in tests/data/steerd-testbed.pcap (truncations at every length, bad
//! versions/IHL/lengths/checksums, TTL 0/1, broken IPv6 extension chains, NSH headers with
//! bad lengths, forged tags, stale epochs, unknown destinations, VLAN stacks), written to
//! a pcap and run through `Appliance` from a pcap input port to a pcap output port.
//!
//! Every run checks that every packet is accounted for (received = sent + counted
//! drops, and sent = frames in the output file); each category checks that its drops
//! fall under the reasons it provokes, and that no forged steering header is steered.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use steerd::app::{Appliance, RunOptions};
use steerd::config::Config;
use steerd::steering::{Key, TagFields, compute_tag};
use steerd::wire::pcap::{PcapReader, PcapWriter};

const KEY: &str = "00112233445566778899aabbccddeeff";
const EPOCH: u32 = 50;
const DEST: u32 = 7;

fn config(rx: &Path, tx: &Path, workers: usize) -> String {
    format!(
        r#"
[general]
workers = {workers}
pin_cores = false
exit_on_eof = true

[[ports]]
name = "in"
backend = "pcap"
rx_file = "{}"
trusted = true

[[ports]]
name = "out"
backend = "pcap"
mac = "02:00:00:00:00:21"
tx_file = "{}"

[[next_hops]]
name = "gw"
port = "out"
mac = "02:00:00:00:09:01"

[[next_hops]]
name = "steer-gw"
port = "out"
mac = "02:00:00:00:09:02"

[[routes]]
prefix = "10.9.0.0/24"
via = "gw"

[[routes]]
prefix = "fd00:9::/64"
via = "gw"

[steering]
keys = ["{KEY}"]
epoch = {EPOCH}
max_epoch_age = 4

[[steering.destinations]]
id = {DEST}
next_hop = "steer-gw"
"#,
        rx.display(),
        tx.display()
    )
}

/// The real frames of the test capture.
fn real() -> Vec<Vec<u8>> {
    let bytes =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/steerd-testbed.pcap"))
            .unwrap();
    PcapReader::new(&bytes)
        .unwrap()
        .map(|r| r.unwrap().data.to_vec())
        .collect()
}

fn ethertype(f: &[u8]) -> u16 {
    u16::from_be_bytes([f[12], f[13]])
}

/// The first real frame matching `pick`.
fn find(pick: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    real()
        .into_iter()
        .find(|f| pick(f))
        .expect("frame in the capture")
}

fn ipv4_udp() -> Vec<u8> {
    // UDP DNS query to 10.9.0.2, not a fragment.
    find(|f| ethertype(f) == 0x0800 && f[23] == 17 && f[20] & 0x3f == 0 && f[33] == 2)
}

fn ipv4_tcp() -> Vec<u8> {
    find(|f| ethertype(f) == 0x0800 && f[23] == 6)
}

fn ipv6_udp() -> Vec<u8> {
    find(|f| ethertype(f) == 0x86dd && f[20] == 17)
}

fn ipv6_ext() -> Vec<u8> {
    // UDP behind Hop-by-Hop and Destination Options.
    find(|f| ethertype(f) == 0x86dd && f[20] == 0 && f[54] == 60)
}

fn arp() -> Vec<u8> {
    find(|f| ethertype(f) == 0x0806)
}

fn fix_ipv4_checksum(f: &mut [u8], l3: usize) {
    let hl = usize::from(f[l3] & 0x0f) * 4;
    let hl = hl.clamp(20, f.len() - l3);
    f[l3 + 10] = 0;
    f[l3 + 11] = 0;
    let mut s: u32 = 0;
    for c in f[l3..l3 + hl].chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    let c = !(s as u16);
    f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
}

/// Inserts VLAN tags (TPIDs given) after the MAC addresses.
fn tagged(f: &[u8], tpids: &[u16]) -> Vec<u8> {
    let mut v = f[..12].to_vec();
    for (i, t) in tpids.iter().enumerate() {
        v.extend_from_slice(&t.to_be_bytes());
        v.extend_from_slice(&(100 + i as u16).to_be_bytes());
    }
    v.extend_from_slice(&f[12..]);
    v
}

/// The steering TLV's fields.
#[derive(Clone, Copy)]
struct Steer {
    dest: u32,
    epoch: u32,
    spi: u32,
    si: u8,
}

const GOOD: Steer = Steer {
    dest: DEST,
    epoch: EPOCH,
    spi: 0x42,
    si: 255,
};

/// Wraps an IPv4 or IPv6 Ethernet frame in steerd's 32-byte NSH header, tagged under
/// `KEY` over the inner addresses (as a marker would).
fn nsh(f: &[u8], s: Steer) -> Vec<u8> {
    let (next, src, dst): (u8, &[u8], &[u8]) = match ethertype(f) {
        0x0800 => (1, &f[26..30], &f[30..34]),
        0x86dd => (2, &f[22..38], &f[38..54]),
        e => panic!("not IP: {e:#x}"),
    };
    let fields = TagFields {
        dest_id: s.dest,
        app_class: 1,
        priority: 2,
        flags: 0,
        epoch: s.epoch,
        spi: s.spi,
        si: s.si,
    };
    let tag = compute_tag(&Key::from_hex(KEY).unwrap(), &fields, src, dst);
    let mut v = f[..12].to_vec();
    v.extend_from_slice(&0x894fu16.to_be_bytes());
    // Ver 0, O 0, TTL 63, Length 8 words; MD type 2; next protocol.
    v.extend_from_slice(&((63u16 << 6) | 8).to_be_bytes());
    v.push(0x02);
    v.push(next);
    v.extend_from_slice(&((s.spi << 8) | u32::from(s.si)).to_be_bytes());
    v.extend_from_slice(&0xfff6u16.to_be_bytes());
    v.push(0x01);
    v.push(20);
    v.extend_from_slice(&s.dest.to_be_bytes());
    v.push(1);
    v.push(2);
    v.extend_from_slice(&0u16.to_be_bytes());
    v.extend_from_slice(&s.epoch.to_be_bytes());
    v.extend_from_slice(&tag.to_be_bytes());
    v.extend_from_slice(&f[14..]);
    v
}

/// What a run reports.
struct Out {
    v: Value,
    frames: Vec<Vec<u8>>,
}

impl Out {
    fn n(&self, p: &str) -> u64 {
        self.v.pointer(p).and_then(Value::as_u64).unwrap_or(0)
    }

    fn drops(&self) -> BTreeMap<String, u64> {
        self.v["drops"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect()
    }

    /// Every drop is under one of `allowed`.
    fn drops_within(&self, allowed: &[&str]) {
        for (k, n) in self.drops() {
            assert!(
                allowed.contains(&k.as_str()),
                "{n} drops under {k}, not one of {allowed:?}: {}",
                self.v
            );
        }
    }
}

fn run(frames: &[Vec<u8>], workers: usize) -> Out {
    let dir = tempfile::tempdir().unwrap();
    let rx = dir.path().join("corpus.pcap");
    let tx = dir.path().join("out.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&rx).unwrap(), 65535).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write_packet(1, i as u32 % 1_000_000, f).unwrap();
    }
    drop(w);
    let text = config(&rx, &tx, workers);
    let cfg = Config::from_toml(&text, "corpus.toml", Path::new("."), false).unwrap();
    let json = dir.path().join("s.json");
    let opts = RunOptions {
        duration: Some(std::time::Duration::from_secs(60)),
        json: Some(json.clone()),
        quiet: true,
        ..RunOptions::default()
    };
    Appliance::build(cfg, &opts).unwrap().run(&opts).unwrap();
    let v: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let out = std::fs::read(&tx).unwrap();
    let frames_out: Vec<Vec<u8>> = PcapReader::new(&out)
        .unwrap()
        .map(|r| r.unwrap().data.to_vec())
        .collect();
    let o = Out {
        v,
        frames: frames_out,
    };
    // Every packet accounted for.
    assert_eq!(o.n("/rx_packets"), frames.len() as u64, "{}", o.v);
    assert_eq!(o.v["accounted"], true, "{}", o.v);
    assert_eq!(
        o.n("/tx_packets"),
        o.frames.len() as u64,
        "every sent packet is in the output file"
    );
    // Nothing a malformed input provokes is a transmit-side problem.
    for k in ["tx_full", "bad_egress_port"] {
        assert_eq!(o.n(&format!("/drops/{k}")), 0, "{}", o.v);
    }
    o
}

const PARSE: &[&str] = &[
    "truncated_ethernet",
    "truncated_vlan",
    "too_many_vlans",
    "truncated_ipv4",
    "bad_ipv4_version",
    "bad_ipv4_ihl",
    "bad_ipv4_total_len",
    "bad_ipv4_checksum",
    "truncated_ipv6",
    "bad_ipv6_version",
    "bad_ipv6_payload_len",
    "bad_ipv6_ext_header",
    "truncated_l4",
    "truncated_arp",
    "bad_nsh",
    "nsh_unsupported_next",
];

fn truncations() -> Vec<Vec<u8>> {
    let bases = [
        ipv4_udp(),
        ipv4_tcp(),
        ipv6_udp(),
        ipv6_ext(),
        arp(),
        nsh(&ipv4_udp(), GOOD),
        nsh(&ipv6_udp(), GOOD),
        tagged(&ipv4_udp(), &[0x8100]),
        tagged(&ipv6_udp(), &[0x88a8, 0x8100]),
    ];
    let mut v = Vec::new();
    for b in &bases {
        for len in 0..b.len() {
            v.push(b[..len].to_vec());
        }
    }
    v
}

#[test]
fn truncations_at_every_length_are_dropped_as_parse_errors() {
    let frames = truncations();
    let o = run(&frames, 1);
    assert_eq!(o.n("/tx_packets"), 0, "{}", o.v);
    assert_eq!(o.n("/drops_total"), frames.len() as u64);
    o.drops_within(PARSE);
    assert!(o.n("/drops/truncated_ethernet") >= 14 * 9, "{}", o.v);
    assert!(o.n("/drops/truncated_arp") >= 28, "{}", o.v);
    assert!(o.n("/drops/bad_nsh") > 0, "{}", o.v);
    assert!(o.n("/drops/truncated_vlan") > 0, "{}", o.v);
}

#[test]
fn forged_ipv4_headers_are_dropped_under_their_reason() {
    let base = ipv4_udp();
    let l3 = 14;
    let mut v: Vec<Vec<u8>> = Vec::new();
    let mut with = |f: &dyn Fn(&mut Vec<u8>), fix: bool| {
        let mut b = base.clone();
        f(&mut b);
        if fix {
            fix_ipv4_checksum(&mut b, l3);
        }
        v.push(b);
    };
    for ver in (0..16u8).filter(|&x| x != 4) {
        with(&|b| b[l3] = (ver << 4) | (b[l3] & 0x0f), true);
    }
    for ihl in 0..5u8 {
        with(&|b| b[l3] = 0x40 | ihl, true);
    }
    let total = (base.len() - l3) as u16;
    for t in [0u16, 1, 19, total + 1, total + 100, u16::MAX] {
        with(
            &|b| b[l3 + 2..l3 + 4].copy_from_slice(&t.to_be_bytes()),
            true,
        );
    }
    for bit in 0..8 {
        with(&|b| b[l3 + 10] ^= 1 << bit, false);
    }
    for ttl in [0u8, 1] {
        with(&|b| b[l3 + 8] = ttl, true);
    }
    // An IHL claiming more header than the packet has.
    with(&|b| b[l3] = 0x4f, true);
    let o = run(&v, 1);
    assert_eq!(o.n("/drops/bad_ipv4_version"), 15, "{}", o.v);
    assert_eq!(o.n("/drops/bad_ipv4_ihl"), 5, "{}", o.v);
    assert_eq!(o.n("/drops/bad_ipv4_total_len"), 6, "{}", o.v);
    assert_eq!(o.n("/drops/bad_ipv4_checksum"), 8, "{}", o.v);
    assert_eq!(o.n("/drops/ttl_expired"), 2, "{}", o.v);
    assert_eq!(o.n("/drops/truncated_ipv4"), 1, "{}", o.v);
    assert_eq!(o.n("/tx_packets"), 0);
    // The base frame itself goes through (the setup routes it), TTL − 1.
    let o = run(std::slice::from_ref(&base), 1);
    assert_eq!(o.n("/routed_packets"), 1, "{}", o.v);
    assert_eq!(o.frames[0][l3 + 8], base[l3 + 8] - 1);
}

#[test]
fn forged_ipv6_headers_and_extension_chains_are_dropped() {
    let base = ipv6_udp();
    let ext = ipv6_ext();
    let mut v: Vec<Vec<u8>> = Vec::new();
    for ver in (0..16u8).filter(|&x| x != 6) {
        let mut b = base.clone();
        b[14] = (ver << 4) | (b[14] & 0x0f);
        v.push(b);
    }
    let plen = (base.len() - 54) as u16;
    for p in [plen + 1, plen + 8, u16::MAX] {
        let mut b = base.clone();
        b[18..20].copy_from_slice(&p.to_be_bytes());
        v.push(b);
    }
    for hl in [0u8, 1] {
        let mut b = base.clone();
        b[21] = hl;
        v.push(b);
    }
    let bad_ext_start = v.len();
    // Hop-by-Hop whose length runs past the packet.
    for l in [8u8, 100, 255] {
        let mut b = ext.clone();
        b[55] = l;
        v.push(b);
    }
    // Hop-by-Hop again after Destination Options (HBH must be first).
    {
        let mut b = ext.clone();
        let dst_opts = 54 + (usize::from(ext[55]) + 1) * 8;
        b[dst_opts] = 0;
        v.push(b);
    }
    // A chain of 9 Destination Options headers (more than steerd walks).
    {
        let mut b = base[..54].to_vec();
        b[20] = 60;
        for i in 0..9 {
            b.extend_from_slice(&[if i == 8 { 17 } else { 60 }, 0, 1, 4, 0, 0, 0, 0]);
        }
        b.extend_from_slice(&base[54..]);
        let p = (b.len() - 54) as u16;
        b[18..20].copy_from_slice(&p.to_be_bytes());
        v.push(b);
    }
    // Payload length cutting the extension header.
    {
        let mut b = ext.clone();
        b[18..20].copy_from_slice(&4u16.to_be_bytes());
        v.push(b);
    }
    let bad_ext = (v.len() - bad_ext_start) as u64;
    let o = run(&v, 1);
    assert_eq!(o.n("/drops/bad_ipv6_version"), 15, "{}", o.v);
    assert_eq!(o.n("/drops/bad_ipv6_payload_len"), 3, "{}", o.v);
    assert_eq!(o.n("/drops/ttl_expired"), 2, "{}", o.v);
    assert_eq!(o.n("/drops/bad_ipv6_ext_header"), bad_ext, "{}", o.v);
    assert_eq!(o.n("/tx_packets"), 0, "{}", o.v);
    // The originals go through.
    let o = run(&[base, ext], 1);
    assert_eq!(o.n("/routed_packets"), 2, "{}", o.v);
}

/// Forged, stale, unknown-destination and replayed steering headers on a trusted port.
fn forged_steering() -> (Vec<Vec<u8>>, [u64; 3]) {
    let mut v = Vec::new();
    let (mut bad_tag, mut stale, mut unknown) = (0, 0, 0);
    for base in [ipv4_udp(), ipv6_udp(), ipv4_tcp()] {
        let good = nsh(&base, GOOD);
        let tag_at = 14 + 24;
        for byte in 0..8 {
            let mut b = good.clone();
            b[tag_at + byte] ^= 0x5a;
            v.push(b);
            bad_tag += 1;
        }
        // Fields changed after tagging: the tag no longer verifies.
        for off in [14 + 4, 14 + 7, 14 + 16, 14 + 17] {
            let mut b = good.clone();
            b[off] ^= 1;
            v.push(b);
            bad_tag += 1;
        }
        // Tagged under the right key, but stale or from the future.
        for e in [
            0,
            1,
            EPOCH - 5,
            EPOCH.wrapping_sub(100),
            EPOCH + 1,
            u32::MAX,
        ] {
            v.push(nsh(&base, Steer { epoch: e, ..GOOD }));
            stale += 1;
        }
        // Tagged, but for destinations the table does not have.
        for d in [0, 8, 1000, 65_535, 70_000, u32::MAX] {
            v.push(nsh(&base, Steer { dest: d, ..GOOD }));
            unknown += 1;
        }
    }
    // A valid header moved onto another flow (inner destination changed, checksum fixed).
    {
        let mut b = nsh(&ipv4_udp(), GOOD);
        let l3 = 14 + 32;
        b[l3 + 19] ^= 1;
        fix_ipv4_checksum(&mut b, l3);
        v.push(b);
        bad_tag += 1;
    }
    (v, [bad_tag, stale, unknown])
}

/// NSH headers that are not well formed.
fn broken_nsh() -> Vec<Vec<u8>> {
    let good = nsh(&ipv4_udp(), GOOD);
    let mut v = Vec::new();
    let base = 14;
    let set_len = |b: &mut Vec<u8>, words: u16| {
        let x = u16::from_be_bytes([b[base], b[base + 1]]) & !0x3f | (words & 0x3f);
        b[base..base + 2].copy_from_slice(&x.to_be_bytes());
    };
    for words in [0u16, 1, 9, 40, 63] {
        let mut b = good.clone();
        set_len(&mut b, words);
        v.push(b);
    }
    for ver in 1..4u8 {
        let mut b = good.clone();
        b[base] = (b[base] & 0x3f) | (ver << 6);
        v.push(b);
    }
    for md in [0u8, 1, 0xf] {
        let mut b = good.clone();
        b[base + 2] = md;
        v.push(b);
    }
    for next in [0u8, 3, 4, 5, 0xff] {
        let mut b = good.clone();
        b[base + 3] = next;
        v.push(b);
    }
    // The steering TLV's length past the header.
    for l in [24u8, 60, 127] {
        let mut b = good.clone();
        b[base + 11] = l;
        v.push(b);
    }
    // Another metadata class instead of steerd's: no steering TLV (routed, not a drop).
    let mut b = good.clone();
    b[base + 8] = 0x00;
    b[base + 9] = 0x01;
    v.push(b);
    v
}

#[test]
fn forged_steering_headers_are_never_steered() {
    // The setup steers a well-formed header (so "not steered" below means something).
    let valid = [nsh(&ipv4_udp(), GOOD), nsh(&ipv6_udp(), GOOD)];
    let o = run(&valid, 1);
    assert_eq!(o.n("/steered_packets"), 2, "{}", o.v);
    for f in &o.frames {
        assert_eq!(&f[0..6], &[2, 0, 0, 0, 9, 2], "steered to steer-gw");
        assert_ne!(ethertype(f), 0x894f, "NSH removed toward the plain host");
    }
    let (forged, [bad_tag, stale, unknown]) = forged_steering();
    let o = run(&forged, 1);
    assert_eq!(o.n("/steered_packets"), 0, "{}", o.v);
    assert_eq!(o.n("/steering_fallbacks/bad_tag"), bad_tag, "{}", o.v);
    assert_eq!(o.n("/steering_fallbacks/stale_epoch"), stale, "{}", o.v);
    assert_eq!(o.n("/steering_fallbacks/unknown_dest"), unknown, "{}", o.v);
    assert_eq!(o.n("/routed_packets"), forged.len() as u64, "{}", o.v);
    for f in &o.frames {
        assert_eq!(&f[0..6], &[2, 0, 0, 0, 9, 1], "routed by LPM to gw");
        assert_ne!(ethertype(f), 0x894f);
    }
    let broken = broken_nsh();
    let o = run(&broken, 1);
    assert_eq!(o.n("/steered_packets"), 0, "{}", o.v);
    o.drops_within(&[
        "bad_nsh",
        "nsh_unsupported_next",
        "truncated_ipv4",
        "bad_ipv4_version",
        "bad_ipv4_total_len",
        "bad_ipv4_checksum",
        "truncated_l4",
    ]);
    assert_eq!(o.n("/drops/nsh_unsupported_next"), 5, "{}", o.v);
    assert!(o.n("/drops/bad_nsh") >= 10, "{}", o.v);
    // Another TLV class, or an unknown MD type whose TLVs parse: routed by LPM.
    assert!(o.n("/steering_fallbacks/no_steering_tlv") >= 1, "{}", o.v);
    assert_eq!(
        o.n("/routed_packets") + o.n("/drops_total"),
        broken.len() as u64
    );
}

#[test]
fn vlan_stacks() {
    let b = ipv4_udp();
    let v = vec![
        tagged(&b, &[0x8100]),
        tagged(&b, &[0x88a8, 0x8100]),
        tagged(&b, &[0x8100, 0x8100, 0x8100]),
        tagged(&b, &[0x88a8, 0x8100, 0x8100, 0x8100]),
        tagged(&b, &[0x8100; 10]),
        // A TPID with nothing after it.
        tagged(&b, &[0x8100])[..16].to_vec(),
    ];
    let o = run(&v, 1);
    assert_eq!(o.n("/drops/too_many_vlans"), 3, "{}", o.v);
    assert_eq!(o.n("/drops/truncated_vlan"), 1, "{}", o.v);
    assert_eq!(
        o.n("/routed_packets"),
        2,
        "one and two tags are routed: {}",
        o.v
    );
}

#[test]
fn whole_corpus_through_two_workers_every_packet_accounted() {
    let mut all = real();
    let n_real = all.len();
    all.extend(truncations());
    all.extend(forged_steering().0);
    all.extend(broken_nsh());
    let b = ipv4_udp();
    for ttl in [0u8, 1] {
        let mut x = b.clone();
        x[22] = ttl;
        fix_ipv4_checksum(&mut x, 14);
        all.push(x);
    }
    all.push(tagged(&b, &[0x8100; 5]));
    // Random garbage with Ethernet-looking heads, seeded.
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..2000 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let len = (s % 200) as usize;
        let mut f: Vec<u8> = (0..len)
            .map(|k| (s.rotate_left(k as u32 % 64) >> 3) as u8)
            .collect();
        if f.len() >= 14 {
            let et = [0x0800u16, 0x86dd, 0x894f, 0x8100, 0x0806, 0x88cc][i % 6];
            f[12..14].copy_from_slice(&et.to_be_bytes());
        }
        all.push(f);
    }
    assert!(all.len() > 2500 + n_real, "{}", all.len());
    let o = run(&all, 2);
    assert_eq!(
        o.n("/steered_packets"),
        0,
        "no forged header is steered: {}",
        o.v
    );
    let mut allowed = PARSE.to_vec();
    allowed.extend([
        "ttl_expired",
        "no_route_v4",
        "no_route_v6",
        "unsupported_ethertype",
        "arp_not_handled",
        // multicast and link-local destinations (MLD, NS in the capture) are never routed
        "local_not_handled",
    ]);
    o.drops_within(&allowed);
    let routed_to = |f: &Vec<u8>| f[0..6] == [2, 0, 0, 0, 9, 1];
    assert!(
        o.frames.iter().all(routed_to),
        "everything sent went by LPM to gw"
    );
    eprintln!(
        "{} frames: {} sent, {} dropped {}",
        all.len(),
        o.n("/tx_packets"),
        o.n("/drops_total"),
        o.v["drops"]
    );
}
