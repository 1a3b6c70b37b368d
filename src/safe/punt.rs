//! Hand-off between the workers (hot) and the control plane (cold): what travels on the
//! per-worker SPSC rings.
//!
//! ```text
//! worker k ──punt ring (Punt)────────► control plane      ARP, ND, echo to the router,
//!          ◄─inject ring (Inject)─────                    TTL expired / no route (for the
//!          ──repay ring (PktBuf)──────►                   ICMP error), packets waiting
//!                                                         for a neighbour's MAC
//! ```
//! Buffers move, they are never copied on the worker: a punted buffer always comes back
//! on the inject ring (as a reply, a released held packet, or just to be put back in the
//! pool), so a worker's pool is only short of the packets the control plane holds (a
//! bounded number). Packets the control plane makes from nothing (ARP requests on a
//! timer) use its own pool; the worker transmits them and repays one of its own buffers
//! for each on the repay ring.

use crate::port::PktBuf;

/// Why a packet goes to the control plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PuntKind {
    /// ARP, neighbour discovery, or an echo request to the router: the control plane
    /// consumes it (counted as `local`).
    Local,
    /// TTL or hop limit expired: already counted as a `ttl_expired` drop; the control
    /// plane answers with ICMP time exceeded (rate-limited).
    TtlExpired,
    /// No route: already counted as a `no_route_*` drop; the control plane answers with
    /// ICMP destination unreachable (rate-limited).
    NoRoute,
    /// Routed and rewritten (TTL, source MAC) but the next hop's MAC is unknown: the
    /// control plane holds it, resolves the neighbour and sends it (counted as `local`).
    Hold,
}

/// A packet on its way to the control plane, with what the fast path found out.
pub struct Punt<B> {
    /// The packet.
    pub buf: B,
    /// Why.
    pub kind: PuntKind,
    /// [`PuntKind::Hold`]: the egress port.
    pub port: u16,
    /// [`PuntKind::Hold`]: the next hop.
    pub nh: u16,
    /// [`PuntKind::Hold`]: the packet's destination (IPv4 in the low 32 bits).
    pub dst: u128,
    /// The destination is IPv6.
    pub v6: bool,
}

impl<B> Punt<B> {
    /// The same punt carrying `buf` instead, and the buffer it carried.
    pub fn with_buf<C>(self, buf: C) -> (Punt<C>, B) {
        let Punt {
            buf: old,
            kind,
            port,
            nh,
            dst,
            v6,
        } = self;
        (
            Punt {
                buf,
                kind,
                port,
                nh,
                dst,
                v6,
            },
            old,
        )
    }
}

/// "No port": an [`Inject`] that only gives a buffer back to the worker's pool.
pub const NO_PORT: u16 = u16::MAX;

/// A packet (or a bare buffer) from the control plane to a worker.
pub struct Inject {
    /// The packet to send, or a buffer to put back in the pool.
    pub buf: PktBuf,
    /// Egress port, or [`NO_PORT`].
    pub port: u16,
    /// The buffer came from the control plane's own pool: the worker repays one.
    pub owed: bool,
}

/// The worker's ends of its rings with the control plane.
pub struct CpLink {
    /// Packets to the control plane.
    pub punt: rtrb::Producer<Punt<PktBuf>>,
    /// Packets and buffers from the control plane.
    pub inject: rtrb::Consumer<Inject>,
    /// Buffers repaid to the control plane's pool.
    pub repay: rtrb::Producer<PktBuf>,
}

/// The control plane's ends of one worker's rings.
pub struct CpEnd {
    /// Packets from the worker.
    pub punt: rtrb::Consumer<Punt<PktBuf>>,
    /// Packets and buffers to the worker.
    pub inject: rtrb::Producer<Inject>,
    /// Buffers repaid by the worker.
    pub repay: rtrb::Consumer<PktBuf>,
}

/// A linked pair of ring ends with `slots` slots each.
pub fn link(slots: usize) -> (CpLink, CpEnd) {
    let (pp, pc) = rtrb::RingBuffer::new(slots);
    let (ip, ic) = rtrb::RingBuffer::new(slots);
    let (rp, rc) = rtrb::RingBuffer::new(slots);
    (
        CpLink {
            punt: pp,
            inject: ic,
            repay: rp,
        },
        CpEnd {
            punt: pc,
            inject: ip,
            repay: rc,
        },
    )
}
