//! Packets the control plane reads and writes (cold): ARP, ICMP echo replies, ICMP
//! errors, neighbour solicitations and advertisements. Builders return whole frames as
//! `Vec<u8>` (the control plane allocates freely; it never runs on a worker).
//!
//! Replies copy the L2 header of the request (VLAN tags included) with the addresses
//! swapped, so they leave the way the request came. Frames shorter than 60 bytes are
//! padded with zeros to Ethernet's minimum.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::checksum;
use crate::wire::ethernet::ethertype;
use crate::wire::icmpv4::msg_type as icmp4;
use crate::wire::icmpv6::{self, msg_type as icmp6};
use crate::wire::ipv4::protocol;

/// Ethernet broadcast.
pub const BROADCAST: [u8; 6] = [0xff; 6];
/// Smallest Ethernet frame without FCS.
pub const MIN_FRAME: usize = 60;
/// TTL / hop limit of packets the router originates.
pub const DEFAULT_TTL: u8 = 64;
/// Most bytes of an ICMPv4 error (RFC 1812 §4.3.2.3: at most 576).
pub const ICMP4_ERROR_MAX: usize = 576;
/// Most bytes of an ICMPv6 error (RFC 4443 §2.4: at most the minimum MTU, 1280).
pub const ICMP6_ERROR_MAX: usize = 1280;

/// A frame: `l2` (Ethernet header, with any VLAN tags, the EtherType last) followed by
/// `payload`, its addresses replaced, padded to 60 bytes.
pub fn frame_like(l2: &[u8], dst: [u8; 6], src: [u8; 6], et: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity((l2.len() + payload.len()).max(MIN_FRAME));
    if l2.len() >= 14 {
        f.extend_from_slice(l2);
    } else {
        f.resize(14, 0);
    }
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    let n = f.len();
    f[n - 2..].copy_from_slice(&et.to_be_bytes());
    f.extend_from_slice(payload);
    if f.len() < MIN_FRAME {
        f.resize(MIN_FRAME, 0);
    }
    f
}

/// An untagged Ethernet frame.
pub fn frame(dst: [u8; 6], src: [u8; 6], et: u16, payload: &[u8]) -> Vec<u8> {
    frame_like(&[0; 14], dst, src, et, payload)
}

/// An IPv4 packet without options, DF clear (as Linux sends ICMP).
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, ttl: u8, id: u16, payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[8] = ttl;
    p[9] = proto;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = !checksum::data(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An IPv6 packet.
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, hop: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    p[6] = next;
    p[7] = hop;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// An ICMPv4 message with its checksum.
pub fn icmpv4(ty: u8, code: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(data);
    let c = !checksum::data(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An ICMPv6 message with its checksum (over the pseudo-header of `src` → `dst`).
pub fn icmpv6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ty: u8,
    code: u8,
    rest: [u8; 4],
    data: &[u8],
) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(data);
    let c = !checksum::combine(&[
        checksum::pseudo_header_v6(src, dst, icmpv6::PROTOCOL, m.len() as u32),
        checksum::data(&m),
    ]);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An ARP packet (Ethernet/IPv4).
pub fn arp(op: u16, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let mut a = Vec::with_capacity(28);
    a.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sha);
    a.extend_from_slice(&spa.octets());
    a.extend_from_slice(&tha);
    a.extend_from_slice(&tpa.octets());
    a
}

/// An ARP request for `target` from `our_mac`/`our_ip`: broadcast, or unicast to `to`
/// (a reachability check of a known neighbour).
pub fn arp_request(
    our_mac: [u8; 6],
    our_ip: Ipv4Addr,
    target: Ipv4Addr,
    to: Option<[u8; 6]>,
) -> Vec<u8> {
    let payload = arp(1, our_mac, our_ip, [0; 6], target);
    frame(to.unwrap_or(BROADCAST), our_mac, ethertype::ARP, &payload)
}

/// ARP fields the control plane uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub op: u16,
    /// Sender MAC.
    pub sha: [u8; 6],
    /// Sender IP.
    pub spa: Ipv4Addr,
    /// Target MAC.
    pub tha: [u8; 6],
    /// Target IP.
    pub tpa: Ipv4Addr,
}

/// Parses an Ethernet/IPv4 ARP packet.
pub fn parse_arp(a: &[u8]) -> Option<Arp> {
    if a.len() < 28 || a[0..6] != [0, 1, 0x08, 0x00, 6, 4] {
        return None;
    }
    let ip = |o: usize| Ipv4Addr::new(a[o], a[o + 1], a[o + 2], a[o + 3]);
    let mac = |o: usize| {
        let mut m = [0u8; 6];
        m.copy_from_slice(&a[o..o + 6]);
        m
    };
    Some(Arp {
        op: u16::from_be_bytes([a[6], a[7]]),
        sha: mac(8),
        spa: ip(14),
        tha: mac(18),
        tpa: ip(24),
    })
}

/// The ARP reply to request `req` (its frame's L2 header `l2`): `our_mac` has `req.tpa`.
pub fn arp_reply(l2: &[u8], req: &Arp, our_mac: [u8; 6]) -> Vec<u8> {
    let payload = arp(2, our_mac, req.tpa, req.sha, req.spa);
    frame_like(l2, req.sha, our_mac, ethertype::ARP, &payload)
}

/// The echo reply to an IPv4 echo request `ip` (the whole IP packet, checked by the
/// caller), sent from `our_mac` to the requester's MAC `to`, behind an L2 header like
/// `l2`. `None` when the request is malformed.
pub fn echo_reply_v4(
    l2: &[u8],
    ip: &[u8],
    our_mac: [u8; 6],
    to: [u8; 6],
    id: u16,
) -> Option<Vec<u8>> {
    let hl = usize::from(ip.first()? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let icmp = ip.get(hl..total)?;
    if icmp.len() < 8 || icmp[0] != icmp4::ECHO_REQUEST || checksum::data(icmp) != 0xffff {
        return None;
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let mut rest = [0u8; 4];
    rest.copy_from_slice(&icmp[4..8]);
    let msg = icmpv4(icmp4::ECHO_REPLY, 0, rest, &icmp[8..]);
    let pkt = ipv4(dst, src, protocol::ICMP, DEFAULT_TTL, id, &msg);
    Some(frame_like(l2, to, our_mac, ethertype::IPV4, &pkt))
}

/// The echo reply to an ICMPv6 echo request (`icmp` = the ICMPv6 message, from `src` to
/// `dst`, checksum already verified by the caller).
pub fn echo_reply_v6(
    l2: &[u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    icmp: &[u8],
    our_mac: [u8; 6],
    to: [u8; 6],
) -> Option<Vec<u8>> {
    if icmp.len() < 8 || icmp[0] != icmp6::ECHO_REQUEST {
        return None;
    }
    let mut rest = [0u8; 4];
    rest.copy_from_slice(&icmp[4..8]);
    let msg = icmpv6(dst, src, icmp6::ECHO_REPLY, 0, rest, &icmp[8..]);
    let pkt = ipv6(dst, src, icmpv6::PROTOCOL, DEFAULT_TTL, &msg);
    Some(frame_like(l2, to, our_mac, ethertype::IPV6, &pkt))
}

/// An ICMPv4 error (`ty`/`code`: 11/0 time exceeded, 3/0 net unreachable, 3/1 host
/// unreachable) about the IP packet `invoking`, from `src`: as much of the invoking
/// packet as fits in 576 bytes. Returns the IP packet.
pub fn icmp_error_v4(ty: u8, code: u8, src: Ipv4Addr, invoking: &[u8], id: u16) -> Option<Vec<u8>> {
    if invoking.len() < 20 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([invoking[2], invoking[3]])).min(invoking.len());
    let quote = &invoking[..total.min(ICMP4_ERROR_MAX - 28)];
    let dst = Ipv4Addr::new(invoking[12], invoking[13], invoking[14], invoking[15]);
    let msg = icmpv4(ty, code, [0; 4], quote);
    Some(ipv4(src, dst, protocol::ICMP, DEFAULT_TTL, id, &msg))
}

/// An ICMPv6 error (`ty`/`code`: 3/0 hop limit exceeded, 1/0 no route, 1/3 address
/// unreachable) about `invoking`, from `src`: as much as fits in 1280 bytes.
pub fn icmp_error_v6(ty: u8, code: u8, src: Ipv6Addr, invoking: &[u8]) -> Option<Vec<u8>> {
    if invoking.len() < 40 {
        return None;
    }
    let total =
        (40 + usize::from(u16::from_be_bytes([invoking[4], invoking[5]]))).min(invoking.len());
    let quote = &invoking[..total.min(ICMP6_ERROR_MAX - 48)];
    let mut d = [0u8; 16];
    d.copy_from_slice(&invoking[8..24]);
    let dst = Ipv6Addr::from(d);
    let msg = icmpv6(src, dst, ty, code, [0; 4], quote);
    Some(ipv6(src, dst, icmpv6::PROTOCOL, DEFAULT_TTL, &msg))
}

/// True when RFC 1812 §4.3.2.7 / RFC 4443 §2.4 forbid an ICMP error about the IP packet
/// `ip`: it is itself an ICMP error (or a redirect), a non-initial fragment, or its
/// source or destination is not a single host.
pub fn no_error_about(ip: &[u8]) -> bool {
    match ip.first().map(|b| b >> 4) {
        Some(4) if ip.len() >= 20 => {
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            let frag_off = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
            if frag_off != 0 || !unicast_v4(src) || !unicast_v4(dst) {
                return true;
            }
            let hl = usize::from(ip[0] & 0x0f) * 4;
            ip[9] == protocol::ICMP
                && ip.get(hl).is_some_and(|&t| {
                    !matches!(t, icmp4::ECHO_REQUEST | icmp4::ECHO_REPLY | 13..=18)
                })
        }
        Some(6) if ip.len() >= 40 => {
            let mut s = [0u8; 16];
            s.copy_from_slice(&ip[8..24]);
            let mut d = [0u8; 16];
            d.copy_from_slice(&ip[24..40]);
            let (src, dst) = (Ipv6Addr::from(s), Ipv6Addr::from(d));
            if src.is_unspecified() || src.is_multicast() || src.is_loopback() || dst.is_multicast()
            {
                return true;
            }
            // ICMPv6 errors (types below 128) directly behind the IPv6 header; other
            // chains are answered (a fragment header makes this conservative enough).
            if ip[6] == crate::wire::ipv6::next_header::FRAGMENT {
                return ip
                    .get(42..44)
                    .is_some_and(|o| u16::from_be_bytes([o[0], o[1]]) >> 3 != 0);
            }
            ip[6] == icmpv6::PROTOCOL && ip.get(40).is_some_and(|&t| t < 128)
        }
        _ => true,
    }
}

fn unicast_v4(a: Ipv4Addr) -> bool {
    !(a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback())
}

/// The solicited-node multicast address of `a` (RFC 4291 §2.7.1).
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet address of an IPv6 multicast address (RFC 2464 §7).
pub fn multicast_mac(a: Ipv6Addr) -> [u8; 6] {
    let o = a.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// A neighbour solicitation for `target` from `src`/`our_mac`: to the solicited-node
/// multicast address, or unicast to `to` (a reachability check).
pub fn neighbor_solicit(
    our_mac: [u8; 6],
    src: Ipv6Addr,
    target: Ipv6Addr,
    to: Option<[u8; 6]>,
) -> Vec<u8> {
    let (dst, l2dst) = match to {
        Some(m) => (target, m),
        None => {
            let d = solicited_node(target);
            (d, multicast_mac(d))
        }
    };
    let mut data = target.octets().to_vec();
    data.extend_from_slice(&[icmpv6::ndp_option::SOURCE_LLADDR, 1]);
    data.extend_from_slice(&our_mac);
    let msg = icmpv6(src, dst, icmp6::NEIGHBOR_SOLICIT, 0, [0; 4], &data);
    let pkt = ipv6(src, dst, icmpv6::PROTOCOL, 255, &msg);
    frame(l2dst, our_mac, ethertype::IPV6, &pkt)
}

/// A neighbour advertisement: `target` is at `our_mac`, sent from `target` to `dst`
/// (`solicited`: an answer to a solicitation from `dst`; else to all nodes). The router
/// flag is set.
pub fn neighbor_advert(
    l2: &[u8],
    our_mac: [u8; 6],
    target: Ipv6Addr,
    dst: Ipv6Addr,
    to: [u8; 6],
    solicited: bool,
) -> Vec<u8> {
    let flags = icmpv6::NA_FLAG_ROUTER
        | icmpv6::NA_FLAG_OVERRIDE
        | if solicited {
            icmpv6::NA_FLAG_SOLICITED
        } else {
            0
        };
    let mut data = target.octets().to_vec();
    data.extend_from_slice(&[icmpv6::ndp_option::TARGET_LLADDR, 1]);
    data.extend_from_slice(&our_mac);
    let msg = icmpv6(
        target,
        dst,
        icmp6::NEIGHBOR_ADVERT,
        0,
        [flags, 0, 0, 0],
        &data,
    );
    let pkt = ipv6(target, dst, icmpv6::PROTOCOL, 255, &msg);
    frame_like(l2, to, our_mac, ethertype::IPV6, &pkt)
}

/// The router's address to source a packet toward `peer` from, among `addrs` (a port's
/// addresses with prefix lengths): one in the same subnet, else the first of the family
/// that is not link-local.
pub fn source_for(addrs: &[(IpAddr, u8)], peer: IpAddr) -> Option<IpAddr> {
    let same_family = |a: &IpAddr| a.is_ipv4() == peer.is_ipv4();
    addrs
        .iter()
        .find(|(a, l)| same_family(a) && crate::route::Prefix::new_masked(*a, *l).contains(peer))
        .or_else(|| {
            addrs.iter().find(|(a, _)| {
                same_family(a) && !matches!(a, IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80)
            })
        })
        .or_else(|| addrs.iter().find(|(a, _)| same_family(a)))
        .map(|(a, _)| *a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testdata as td;

    const R_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
    const H_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];

    fn record(n: usize) -> Vec<u8> {
        let r = crate::wire::pcap::PcapReader::new(td::PCAP).unwrap();
        r.into_iter().nth(n).unwrap().unwrap().data.to_vec()
    }

    #[test]
    fn arp_request_gets_the_reply_linux_sent() {
        // Real request: who-has 10.9.0.2 tell 10.9.0.1; the real answer from 02:..:0b.
        let req = parse_arp(&td::ARP_REQUEST[14..]).unwrap();
        assert_eq!(req.op, 1);
        assert_eq!(req.tpa, Ipv4Addr::new(10, 9, 0, 2));
        let reply = arp_reply(&td::ARP_REQUEST[..14], &req, R_MAC);
        assert_eq!(reply.len(), 60, "padded to the Ethernet minimum");
        assert_eq!(
            &reply[..42],
            &td::ARP_REPLY[..],
            "byte for byte what Linux answered"
        );
        assert!(reply[42..].iter().all(|&b| b == 0));
    }

    #[test]
    fn arp_request_we_send_parses_back() {
        let f = arp_request(
            R_MAC,
            Ipv4Addr::new(10, 9, 0, 2),
            Ipv4Addr::new(10, 9, 0, 1),
            None,
        );
        assert_eq!(&f[0..6], &BROADCAST);
        assert_eq!(u16::from_be_bytes([f[12], f[13]]), ethertype::ARP);
        let a = parse_arp(&f[14..]).unwrap();
        assert_eq!((a.op, a.sha, a.tpa), (1, R_MAC, Ipv4Addr::new(10, 9, 0, 1)));
        let u = arp_request(
            R_MAC,
            Ipv4Addr::new(10, 9, 0, 2),
            Ipv4Addr::new(10, 9, 0, 1),
            Some(H_MAC),
        );
        assert_eq!(&u[0..6], &H_MAC);
        assert!(parse_arp(&f[14..40]).is_none(), "truncated");
    }

    #[test]
    fn echo_request_gets_a_reply_like_linux() {
        // Record 13 is the request, record 14 Linux's reply.
        let req = td::IPV4_ICMP_ECHO_REQUEST;
        let linux = record(14);
        let mine = echo_reply_v4(&req[..14], &req[14..], R_MAC, H_MAC, 0x1234).unwrap();
        assert_eq!(mine.len(), linux.len());
        assert_eq!(&mine[..14], &linux[..14], "Ethernet header");
        // IPv4: Linux picked its own id; everything else matches once the id is equal.
        assert_eq!(&mine[14..18], &linux[14..18]);
        assert_eq!(&mine[20..24], &linux[20..24], "flags, TTL, protocol");
        assert_eq!(&mine[26..34], &linux[26..34], "addresses swapped");
        assert_eq!(
            checksum::data(&mine[14..34]),
            0xffff,
            "IPv4 header checksum"
        );
        assert_eq!(
            &mine[34..],
            &linux[34..],
            "ICMP: type 0, same id, seq, data, checksum"
        );
        let mut bad = req;
        bad[40] ^= 1;
        assert!(
            echo_reply_v4(&bad[..14], &bad[14..], R_MAC, H_MAC, 1).is_none(),
            "bad ICMP checksum"
        );
    }

    #[test]
    fn echo_v6_gets_a_reply_like_linux() {
        let req = td::IPV6_ICMP_ECHO_REQUEST;
        let linux = record(18);
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&req[22..38]).unwrap());
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&req[38..54]).unwrap());
        let mine = echo_reply_v6(&req[..14], src, dst, &req[54..], R_MAC, H_MAC).unwrap();
        assert_eq!(mine.len(), linux.len());
        assert_eq!(&mine[..14], &linux[..14]);
        assert_eq!(
            &mine[18..],
            &linux[18..],
            "all but the flow label: addresses, ICMPv6, checksum"
        );
        let p = icmpv6::Packet::new_checked(&mine[54..]).unwrap();
        assert!(p.verify_checksum(dst, src));
    }

    #[test]
    fn time_exceeded_quotes_the_packet() {
        let inv = &td::IPV4_UDP_DNS[14..];
        let src = Ipv4Addr::new(10, 9, 0, 254);
        let ip = icmp_error_v4(icmp4::TIME_EXCEEDED, 0, src, inv, 7).unwrap();
        assert_eq!(checksum::data(&ip[..20]), 0xffff);
        assert_eq!(&ip[12..16], &src.octets());
        assert_eq!(&ip[16..20], &inv[12..16], "to the invoking packet's source");
        assert_eq!(ip[9], protocol::ICMP);
        assert_eq!((ip[20], ip[21]), (11, 0));
        assert_eq!(checksum::data(&ip[20..]), 0xffff, "ICMP checksum");
        assert_eq!(
            &ip[28..],
            inv,
            "the whole (small) invoking packet is quoted"
        );
        // Like Linux's port unreachable (record 28), apart from type/code and source.
        let linux = &td::IPV4_ICMP_PORT_UNREACH[14..];
        assert_eq!(&ip[28..], &linux[28..]);
        // A big packet is quoted up to 576 bytes in all.
        let mut big = inv.to_vec();
        big.resize(1400, 0);
        big[2..4].copy_from_slice(&1400u16.to_be_bytes());
        let ip = icmp_error_v4(3, 1, src, &big, 7).unwrap();
        assert_eq!(ip.len(), 576);
    }

    #[test]
    fn time_exceeded_v6_is_checksummed() {
        let inv = &td::IPV6_UDP_DNS[14..];
        let src: Ipv6Addr = "fd00:9::fe".parse().unwrap();
        let ip = icmp_error_v6(icmp6::TIME_EXCEEDED, 0, src, inv).unwrap();
        assert_eq!(ip[6], icmpv6::PROTOCOL);
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&inv[8..24]).unwrap());
        let p = icmpv6::Packet::new_checked(&ip[40..]).unwrap();
        assert!(p.verify_checksum(src, dst));
        assert_eq!((ip[40], ip[41]), (3, 0));
        assert_eq!(&ip[48..], inv);
        // Linux's port unreachable quotes the same bytes.
        assert_eq!(&ip[48..], &td::IPV6_ICMP_PORT_UNREACH[14 + 48..]);
    }

    #[test]
    fn errors_are_not_sent_about_errors_fragments_or_multicast() {
        assert!(!no_error_about(&td::IPV4_UDP_DNS[14..]));
        assert!(!no_error_about(&td::IPV4_ICMP_ECHO_REQUEST[14..]));
        assert!(
            no_error_about(&td::IPV4_ICMP_PORT_UNREACH[14..]),
            "an ICMP error"
        );
        assert!(!no_error_about(&td::IPV6_UDP_DNS[14..]));
        assert!(no_error_about(&td::IPV6_ICMP_PORT_UNREACH[14..]));
        assert!(
            no_error_about(&td::IPV6_MLD_HBH[14..]),
            "to multicast from ::"
        );
        let last = record(crate::wire::testdata::record::IPV4_FRAG_LAST);
        assert!(no_error_about(&last[14..]), "a non-initial fragment");
        let first = record(crate::wire::testdata::record::IPV4_FRAG_FIRST);
        assert!(!no_error_about(&first[14..]), "the first fragment");
        let mut bcast = td::IPV4_UDP_DNS[14..].to_vec();
        bcast[16..20].copy_from_slice(&[255; 4]);
        assert!(no_error_about(&bcast));
    }

    #[test]
    fn solicitation_answered_with_router_advert() {
        // Real NS: fd00:9::1 asks for fd00:9::2 (with its source link-layer address).
        let ns = td::IPV6_NEIGHBOR_SOLICIT;
        let p = icmpv6::Packet::new_checked(&ns[54..]).unwrap();
        let target = p.target_addr().unwrap();
        assert_eq!(target, "fd00:9::2".parse::<Ipv6Addr>().unwrap());
        let sll = p.lladdr_option().unwrap().unwrap();
        assert_eq!(sll.0, H_MAC);
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ns[22..38]).unwrap());
        let na = neighbor_advert(&ns[..14], R_MAC, target, src, sll.0, true);
        let linux = td::IPV6_NEIGHBOR_ADVERT;
        assert_eq!(na.len(), linux.len());
        assert_eq!(&na[..14], &linux[..14]);
        assert_eq!(
            &na[18..54],
            &linux[18..54],
            "IPv6 header but the flow label"
        );
        let q = icmpv6::Packet::new_checked(&na[54..]).unwrap();
        assert!(q.verify_checksum(target, src));
        assert_eq!(q.msg_type(), icmp6::NEIGHBOR_ADVERT);
        assert_eq!(
            q.na_flags(),
            linux[58] | icmpv6::NA_FLAG_ROUTER,
            "Linux's S|O, plus R"
        );
        assert_eq!(q.target_addr(), Some(target));
        assert_eq!(q.lladdr_option().unwrap().unwrap().0, R_MAC);
        assert_eq!(&na[62..], &linux[62..], "target and option");
    }

    #[test]
    fn solicitation_we_send_is_valid() {
        let src: Ipv6Addr = "fd00:9::1".parse().unwrap();
        let target: Ipv6Addr = "fd00:9::2".parse().unwrap();
        let f = neighbor_solicit(H_MAC, src, target, None);
        // Like the real one (record 15) apart from the flow label.
        let linux = td::IPV6_NEIGHBOR_SOLICIT;
        assert_eq!(f.len(), linux.len());
        assert_eq!(&f[..14], &linux[..14]);
        assert_eq!(&f[18..], &linux[18..]);
        let u = neighbor_solicit(H_MAC, src, target, Some(R_MAC));
        assert_eq!(&u[0..6], &R_MAC);
        assert_eq!(&u[38..54], &target.octets());
        let q = icmpv6::Packet::new_checked(&u[54..]).unwrap();
        assert!(q.verify_checksum(src, target));
    }

    #[test]
    fn source_address_prefers_the_same_subnet() {
        let a: Vec<(IpAddr, u8)> = vec![
            ("fe80::1".parse().unwrap(), 64),
            ("10.1.0.1".parse().unwrap(), 24),
            ("fd01::1".parse().unwrap(), 64),
            ("192.168.5.1".parse().unwrap(), 24),
        ];
        let s = |p: &str| source_for(&a, p.parse().unwrap()).map(|x| x.to_string());
        assert_eq!(s("192.168.5.9").as_deref(), Some("192.168.5.1"));
        assert_eq!(s("8.8.8.8").as_deref(), Some("10.1.0.1"));
        assert_eq!(s("fd01::7").as_deref(), Some("fd01::1"));
        assert_eq!(s("fe80::9").as_deref(), Some("fe80::1"));
        assert_eq!(
            s("2001:db8::1").as_deref(),
            Some("fd01::1"),
            "not link-local"
        );
        assert_eq!(source_for(&a[1..2], "::1".parse().unwrap()), None);
    }
}
