//! Ports: where packets come from and go to.
//!
//! A port is opened once at start-up (cold) and split into per-worker queues (hot):
//! each worker owns one [`RxQueue`] (if the port has a queue for it) and one [`TxQueue`]
//! per port, so no queue is ever shared between cores. Queues are burst-only, in the
//! style of ixy and DPDK: `rx_burst` appends up to a burst of buffers, `tx_burst` sends
//! from the front of a vector and leaves what it could not send.
//!
//! Backends are chosen at start-up and wrapped in the [`AnyRx`]/[`AnyTx`] enums, so the
//! worker loop is monomorphic (one `match` per burst, no `Box<dyn>`).

pub mod afpacket;
#[cfg(feature = "afxdp")]
pub mod afxdp;
pub mod buf;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod netdev;
mod ringmem;
pub mod stats;
pub mod tap;
#[cfg(test)]
pub(crate) mod testnet;

pub use buf::{BUF_SIZE, Buf, HEADROOM, MAX_FRAME, PktBuf, Pool, PutBuf};
pub use netdev::{Mac, PortOpenError};
pub use stats::{PortCounters, PortTotals};

/// Receive side of one queue of a port, owned by one worker.
pub trait RxQueue: Send {
    /// Buffer type the queue fills.
    type Buf: Buf;
    /// Where buffers come from.
    type Pool;
    /// Receives up to `max` packets, appending them to `out`; returns how many.
    /// Never blocks; returns 0 when nothing is waiting.
    fn rx_burst(&mut self, pool: &mut Self::Pool, out: &mut Vec<Self::Buf>, max: usize) -> usize;
    /// True when the queue will never receive again (a replayed file reached its end,
    /// a generator sent its packet budget). Live ports never are.
    fn exhausted(&self) -> bool {
        false
    }
}

/// Transmit side of one queue of a port, owned by one worker.
pub trait TxQueue: Send {
    /// Buffer type the queue sends.
    type Buf: Buf;
    /// Where sent buffers go back to.
    type Pool;
    /// Sends packets from the front of `bufs`, removes the ones sent (returning their
    /// buffers to `pool`) and returns how many were sent. Unsent packets stay in `bufs`.
    fn tx_burst(&mut self, pool: &mut Self::Pool, bufs: &mut Vec<Self::Buf>) -> usize;
    /// Pushes out anything the backend holds back for batching.
    fn flush(&mut self) {}
    /// True when a full queue should be waited for rather than dropped from (file
    /// output, where the writer thread always catches up).
    fn lossless(&self) -> bool {
        false
    }
}

pub mod mem;
pub mod pcap;

/// A receive queue of any backend this build has (enum dispatch, one `match` a burst).
pub enum AnyRx {
    /// In-memory generator.
    Mem(mem::MemRx),
    /// Capture replay.
    Pcap(pcap::PcapRx),
    /// TAP device.
    Tap(tap::TapRx),
    /// AF_PACKET TPACKET_V3 ring.
    AfPacket(afpacket::AfPacketRx),
    /// AF_XDP socket.
    #[cfg(feature = "afxdp")]
    AfXdp(afxdp::AfXdpRx),
}

/// A transmit queue of any backend this build has.
pub enum AnyTx {
    /// In-memory sink.
    Mem(mem::MemTx),
    /// Capture writer.
    Pcap(pcap::PcapTx),
    /// TAP device.
    Tap(tap::TapTx),
    /// AF_PACKET TPACKET_V2 ring.
    AfPacket(afpacket::AfPacketTx),
    /// AF_XDP socket.
    #[cfg(feature = "afxdp")]
    AfXdp(afxdp::AfXdpTx),
    /// A port that only receives: everything sent to it is refused (counted by the worker).
    None,
}

impl RxQueue for AnyRx {
    type Buf = PktBuf;
    type Pool = Pool;
    #[inline]
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut Vec<PktBuf>, max: usize) -> usize {
        match self {
            AnyRx::Mem(q) => q.rx_burst(pool, out, max),
            AnyRx::Pcap(q) => q.rx_burst(pool, out, max),
            AnyRx::Tap(q) => q.rx_burst(pool, out, max),
            AnyRx::AfPacket(q) => q.rx_burst(pool, out, max),
            #[cfg(feature = "afxdp")]
            AnyRx::AfXdp(q) => q.rx_burst(pool, out, max),
        }
    }
    fn exhausted(&self) -> bool {
        match self {
            AnyRx::Mem(q) => q.exhausted(),
            AnyRx::Pcap(q) => q.exhausted(),
            AnyRx::Tap(q) => q.exhausted(),
            AnyRx::AfPacket(q) => q.exhausted(),
            #[cfg(feature = "afxdp")]
            AnyRx::AfXdp(q) => q.exhausted(),
        }
    }
}

impl TxQueue for AnyTx {
    type Buf = PktBuf;
    type Pool = Pool;
    #[inline]
    fn tx_burst(&mut self, pool: &mut Pool, bufs: &mut Vec<PktBuf>) -> usize {
        match self {
            AnyTx::Mem(q) => q.tx_burst(pool, bufs),
            AnyTx::Pcap(q) => q.tx_burst(pool, bufs),
            AnyTx::Tap(q) => q.tx_burst(pool, bufs),
            AnyTx::AfPacket(q) => q.tx_burst(pool, bufs),
            #[cfg(feature = "afxdp")]
            AnyTx::AfXdp(q) => q.tx_burst(pool, bufs),
            AnyTx::None => 0,
        }
    }
    fn flush(&mut self) {
        match self {
            AnyTx::Mem(q) => q.flush(),
            AnyTx::Pcap(q) => q.flush(),
            AnyTx::Tap(q) => q.flush(),
            AnyTx::AfPacket(q) => q.flush(),
            #[cfg(feature = "afxdp")]
            AnyTx::AfXdp(q) => q.flush(),
            AnyTx::None => {}
        }
    }
    fn lossless(&self) -> bool {
        match self {
            AnyTx::Mem(q) => q.lossless(),
            AnyTx::Pcap(q) => q.lossless(),
            AnyTx::Tap(q) => q.lossless(),
            AnyTx::AfPacket(q) => q.lossless(),
            #[cfg(feature = "afxdp")]
            AnyTx::AfXdp(q) => q.lossless(),
            AnyTx::None => false,
        }
    }
}
