//! The golden check of a capture forwarded by steerd (shared by the pcap and DPDK
//! golden tests): the route table the tests configure, an independent model of what
//! must happen to each input frame, and the check of steerd's output against it.
//!
//! Routes: 10.0.0.0/8, 172.16.0.0/12 and fd00:9::/64 via next hop `gw` (MAC
//! [`NH_MAC`]) on the output port (MAC [`PORT_OUT_MAC`]); the router has no addresses.

use std::path::Path;

use etherparse::{NetSlice, SlicedPacket};
use serde_json::Value;

/// The output port's MAC in the golden configs.
pub const PORT_OUT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x21];
/// The next hop's MAC in the golden configs.
pub const NH_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x09, 0x01];

/// The `[[next_hops]]` and `[[routes]]` of the golden configs (output port "out").
pub const ROUTES_TOML: &str = r#"
[[next_hops]]
name = "gw"
port = "out"
mac = "02:00:00:00:09:01"

[[routes]]
prefix = "10.0.0.0/8"
via = "gw"

[[routes]]
prefix = "172.16.0.0/12"
via = "gw"

[[routes]]
prefix = "fd00:9::/64"
via = "gw"
"#;

/// What the rules say should happen to one input frame (independent of steerd's parser).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Expect {
    Forward,
    Drop(&'static str),
}

pub fn expect(frame: &[u8]) -> Expect {
    match SlicedPacket::from_ethernet(frame) {
        Ok(p) => match p.net {
            Some(NetSlice::Ipv4(ip)) => {
                let h = ip.header();
                let d = h.destination();
                // Multicast and limited broadcast are for the router's link, not routed.
                if d[0] >> 4 == 0xe || d == [255; 4] {
                    return Expect::Drop("local_not_handled");
                }
                if h.ttl() <= 1 {
                    return Expect::Drop("ttl_expired");
                }
                if d[0] == 10 || (d[0] == 172 && (16..32).contains(&d[1])) {
                    Expect::Forward
                } else {
                    Expect::Drop("no_route_v4")
                }
            }
            Some(NetSlice::Ipv6(ip)) => {
                let h = ip.header();
                let d = h.destination();
                // Multicast and link-local unicast (fe80::/10) are not routed.
                if d[0] == 0xff || (d[0] == 0xfe && d[1] & 0xc0 == 0x80) {
                    return Expect::Drop("local_not_handled");
                }
                if h.hop_limit() <= 1 {
                    return Expect::Drop("ttl_expired");
                }
                if d[..8] == [0xfd, 0, 0, 9, 0, 0, 0, 0] {
                    Expect::Forward
                } else {
                    Expect::Drop("no_route_v6")
                }
            }
            _ if frame.len() >= 14 && frame[12..14] == [0x08, 0x06] => {
                Expect::Drop("arp_not_handled")
            }
            _ => Expect::Drop("other"),
        },
        Err(_) if frame.len() >= 14 && frame[12..14] == [0x08, 0x06] => {
            Expect::Drop("arp_not_handled")
        }
        Err(_) => Expect::Drop("malformed"),
    }
}

/// The frames of a classic pcap file (microsecond or nanosecond, either byte order).
pub fn read_pcap(p: &Path) -> Vec<Vec<u8>> {
    let d = std::fs::read(p).expect("read pcap");
    assert!(d.len() >= 24, "{} is not a pcap file", p.display());
    // a1b2c3d4: microseconds, a1b23c4d: nanoseconds (DPDK's net_pcap writes these).
    let le = d[0..4] == [0xd4, 0xc3, 0xb2, 0xa1] || d[0..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    let u32at = |o: usize| {
        let b = [d[o], d[o + 1], d[o + 2], d[o + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= d.len() {
        let incl = u32at(off + 8) as usize;
        out.push(d[off + 16..off + 16 + incl].to_vec());
        off += 16 + incl;
    }
    out
}

pub fn ipv4_checksum_ok(ip: &[u8]) -> bool {
    let ihl = (ip[0] & 0xf) as usize * 4;
    let mut s: u32 = 0;
    for c in ip[..ihl].chunks(2) {
        s += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s == 0xffff
}

/// Checks a run's stats JSON `v` and its output frames `outp` (written to `out_file`)
/// against the input frames `inp`: every input received, in = out + counted drops,
/// drops under the predicted reasons, every output packet with TTL−1, a valid
/// checksum, rewritten MACs and all else unchanged (in input order when `ordered`),
/// and tshark's checksum verdict when tshark is installed.
pub fn verify(inp: &[Vec<u8>], v: &Value, outp: &[Vec<u8>], out_file: &Path, ordered: bool) {
    // Independent expectations.
    let mut want_fwd = Vec::new();
    let mut want_drops = std::collections::BTreeMap::<&str, u64>::new();
    for f in inp {
        match expect(f) {
            Expect::Forward => want_fwd.push(f.clone()),
            Expect::Drop(r) => *want_drops.entry(r).or_default() += 1,
        }
    }
    let rx = v["rx_packets"].as_u64().unwrap();
    let tx = v["tx_packets"].as_u64().unwrap();
    let drops: u64 = v["drops"]
        .as_object()
        .unwrap()
        .values()
        .map(|x| x.as_u64().unwrap())
        .sum();
    assert_eq!(rx, inp.len() as u64, "every input packet is received");
    assert_eq!(rx, tx + drops, "in = out + counted drops: {v}");
    assert_eq!(tx, want_fwd.len() as u64, "forwarded count: {v}");
    assert_eq!(
        outp.len() as u64,
        tx,
        "the output file holds every packet sent"
    );
    for (r, n) in &want_drops {
        assert_eq!(
            v["drops"][*r].as_u64().unwrap_or(0),
            *n,
            "drops for {r}: {v}"
        );
    }
    // Every output packet: TTL-1, valid checksum, rewritten MACs, all else unchanged.
    let is_v6 = |f: &[u8]| f[12..14] == [0x86, 0xdd];
    let key = |f: &[u8]| -> Vec<u8> {
        // identity of a packet independent of the rewrite: bytes after L2 with the IPv4
        // TTL and checksum, or the IPv6 hop limit, masked
        let mut k = f[14..].to_vec();
        if is_v6(f) {
            k[7] = 0;
        } else {
            k[8] = 0;
            k[10] = 0;
            k[11] = 0;
        }
        k
    };
    let mut by_key = std::collections::HashMap::<Vec<u8>, Vec<&Vec<u8>>>::new();
    for f in &want_fwd {
        by_key.entry(key(f)).or_default().push(f);
    }
    for (i, o) in outp.iter().enumerate() {
        assert_eq!(
            &o[0..6],
            &NH_MAC,
            "packet {i}: destination MAC is the next hop's"
        );
        assert_eq!(
            &o[6..12],
            &PORT_OUT_MAC,
            "packet {i}: source MAC is the port's"
        );
        let parsed = SlicedPacket::from_ethernet(o).expect("etherparse parses the output");
        let cands = by_key
            .get_mut(&key(o))
            .unwrap_or_else(|| panic!("packet {i} matches no input"));
        let src = cands
            .pop()
            .unwrap_or_else(|| panic!("packet {i} was sent twice"));
        if is_v6(o) {
            assert!(matches!(parsed.net, Some(NetSlice::Ipv6(_))));
            assert_eq!(
                o[14 + 7],
                src[14 + 7] - 1,
                "packet {i}: hop limit decremented"
            );
        } else {
            assert!(matches!(parsed.net, Some(NetSlice::Ipv4(_))));
            assert!(
                ipv4_checksum_ok(&o[14..]),
                "packet {i}: IPv4 header checksum"
            );
            assert_eq!(o[14 + 8], src[14 + 8] - 1, "packet {i}: TTL decremented");
        }
        assert_eq!(&o[12..14], &src[12..14]);
        assert_eq!(o.len(), src.len());
    }
    if ordered {
        // One worker keeps the order of the capture.
        for (i, (o, s)) in outp.iter().zip(want_fwd.iter()).enumerate() {
            assert_eq!(key(o), key(s), "packet {i} out of order");
        }
    }
    if super::have("tshark") {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tshark -o ip.check_checksum:TRUE -r {} -T fields -e ip.checksum.status",
                out_file.display()
            ))
            .output()
            .expect("tshark runs");
        let text = String::from_utf8_lossy(&out.stdout);
        // One line per packet; ICMP errors quote an inner IP header, so a line may hold
        // several comma-separated statuses. 1 = Good.
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() as u64, tx, "tshark read every packet");
        // (IPv6 packets have no IP checksum: an empty field.)
        let bad: Vec<&&str> = lines
            .iter()
            .filter(|l| !l.is_empty() && l.split(',').any(|st| st.trim() != "1"))
            .collect();
        assert!(
            bad.is_empty(),
            "tshark finds checksums not good: {:?}",
            &bad[..bad.len().min(5)]
        );
        eprintln!(
            "tshark: {} packets, every IPv4 header checksum good",
            lines.len()
        );
    } else {
        super::skip("tshark is not installed: the second, independent checksum check did not run");
    }
}
