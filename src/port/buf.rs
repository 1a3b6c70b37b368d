//! Packet buffers and the per-core buffer pool.
//!
//! Cold to create (all buffers are allocated once at start-up), hot to use: taking a
//! buffer from the pool and giving it back is a `Vec::pop`/`Vec::push` within the
//! capacity reserved at start-up, so the fast path never allocates.
//!
//! Invariants:
//! - `off + len <= BUF_SIZE` and `off >= 0`; `data()` is `storage[off..off + len]`.
//! - A fresh buffer starts with `off == HEADROOM`, so a header (the NSH steering header,
//!   32 bytes) can be prepended without moving the payload.

/// Bytes of storage per buffer (fits a 1518-byte frame plus headroom).
pub const BUF_SIZE: usize = 2048;
/// Headroom kept in front of received data for prepending headers.
pub const HEADROOM: usize = 128;
/// Largest frame a buffer can hold when it starts at `HEADROOM`.
pub const MAX_FRAME: usize = BUF_SIZE - HEADROOM;

/// Operations the pipeline needs on a packet buffer. Implemented by [`PktBuf`] and, with
/// the `dpdk` feature, by the rte_mbuf wrapper, so the pipeline runs on either without copies.
pub trait Buf {
    /// The packet bytes.
    fn data(&self) -> &[u8];
    /// The packet bytes, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Length of the packet in bytes.
    fn len(&self) -> usize {
        self.data().len()
    }
    /// True when the buffer holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Grows the packet at the front by `n` bytes (uninitialised contents are whatever
    /// was there). Returns false, changing nothing, when the headroom is too small.
    fn prepend(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the front. Returns false, changing nothing, if `n > len`.
    fn adj(&mut self, n: usize) -> bool;
    /// Truncates the packet to `n` bytes (no-op when `n >= len`).
    fn trim_to(&mut self, n: usize);
    /// Index of the port the packet was received on.
    fn rx_port(&self) -> u16;
}

/// Where a worker gives back buffers it drops (steerd's [`Pool`], or DPDK's mempools
/// through the mbuf's own free).
pub trait PutBuf<B> {
    /// Takes back a buffer the worker no longer needs.
    fn put(&mut self, b: B);
}

impl PutBuf<PktBuf> for Pool {
    #[inline]
    fn put(&mut self, b: PktBuf) {
        Pool::put(self, b)
    }
}

/// A packet buffer owned by exactly one core at a time.
pub struct PktBuf {
    storage: Box<[u8; BUF_SIZE]>,
    off: u16,
    len: u16,
    /// Port the packet arrived on.
    pub port: u16,
}

impl PktBuf {
    /// Allocates a buffer (start-up only).
    pub fn new() -> Self {
        PktBuf {
            storage: Box::new([0u8; BUF_SIZE]),
            off: HEADROOM as u16,
            len: 0,
            port: 0,
        }
    }

    /// Resets the buffer to empty with default headroom.
    #[inline]
    pub fn reset(&mut self) {
        self.off = HEADROOM as u16;
        self.len = 0;
    }

    /// Sets the packet to a copy of `bytes` at the default headroom. Bytes beyond
    /// [`MAX_FRAME`] are cut off; returns the number of bytes stored.
    #[inline]
    pub fn fill(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(MAX_FRAME);
        self.off = HEADROOM as u16;
        self.storage[HEADROOM..HEADROOM + n].copy_from_slice(&bytes[..n]);
        self.len = n as u16;
        n
    }

    /// The writable area from the data start to the end of storage, for backends that
    /// receive straight into the buffer; follow with [`PktBuf::set_len`].
    #[inline]
    pub fn room_mut(&mut self) -> &mut [u8] {
        self.off = HEADROOM as u16;
        &mut self.storage[HEADROOM..]
    }

    /// Sets the length after writing through [`PktBuf::room_mut`]; clamps to the room.
    #[inline]
    pub fn set_len(&mut self, n: usize) {
        let room = BUF_SIZE - self.off as usize;
        self.len = n.min(room) as u16;
    }
}

impl Default for PktBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl Buf for PktBuf {
    #[inline]
    fn data(&self) -> &[u8] {
        let o = self.off as usize;
        &self.storage[o..o + self.len as usize]
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        let o = self.off as usize;
        &mut self.storage[o..o + self.len as usize]
    }
    #[inline]
    fn len(&self) -> usize {
        self.len as usize
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.off as usize {
            return false;
        }
        self.off -= n as u16;
        self.len += n as u16;
        true
    }
    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        if n > self.len as usize {
            return false;
        }
        self.off += n as u16;
        self.len -= n as u16;
        true
    }
    #[inline]
    fn trim_to(&mut self, n: usize) {
        if n < self.len as usize {
            self.len = n as u16;
        }
    }
    #[inline]
    fn rx_port(&self) -> u16 {
        self.port
    }
}

/// A per-core pool of buffers. Not shared between cores: each worker owns one, and
/// buffers handed to another core come back through that core's return ring.
pub struct Pool {
    free: Vec<PktBuf>,
    capacity: usize,
}

impl Pool {
    /// Allocates `n` buffers (start-up only).
    pub fn new(n: usize) -> Self {
        Self::with_reserve(n, n)
    }

    /// Allocates `n` buffers and reserves room to hold `reserve` (≥ n) without
    /// reallocating, for a worker that receives buffers from other cores.
    pub fn with_reserve(n: usize, reserve: usize) -> Self {
        let mut free = Vec::with_capacity(reserve.max(n));
        for _ in 0..n {
            free.push(PktBuf::new());
        }
        Pool { free, capacity: n }
    }

    /// Takes a buffer, reset to empty; `None` when the pool is exhausted.
    #[inline]
    pub fn get(&mut self) -> Option<PktBuf> {
        let mut b = self.free.pop()?;
        b.reset();
        Some(b)
    }

    /// Returns a buffer. A buffer beyond the pool's capacity is kept anyway only if it
    /// fits the reserved capacity, so this never reallocates; otherwise it is dropped
    /// (which cannot happen while every buffer comes from a pool of the same size).
    #[inline]
    pub fn put(&mut self, b: PktBuf) {
        if self.free.len() < self.free.capacity() {
            self.free.push(b);
        }
    }

    /// Buffers currently free.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Buffers the pool was created with.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepend_and_adj_round_trip() {
        let mut b = PktBuf::new();
        b.fill(&[1, 2, 3, 4]);
        assert!(b.prepend(32));
        assert_eq!(b.len(), 36);
        b.data_mut()[..32].fill(9);
        assert!(b.adj(32));
        assert_eq!(b.data(), &[1, 2, 3, 4]);
        assert!(!b.prepend(HEADROOM + 1));
        assert!(!b.adj(5));
        b.trim_to(2);
        assert_eq!(b.data(), &[1, 2]);
    }

    #[test]
    fn fill_clamps_to_max_frame() {
        let mut b = PktBuf::new();
        let big = vec![7u8; BUF_SIZE];
        assert_eq!(b.fill(&big), MAX_FRAME);
        assert_eq!(b.len(), MAX_FRAME);
    }

    #[test]
    fn pool_conserves_buffers() {
        let mut p = Pool::new(4);
        let a = p.get().unwrap();
        let b = p.get().unwrap();
        assert_eq!(p.available(), 2);
        p.put(a);
        p.put(b);
        assert_eq!(p.available(), 4);
        let mut taken = Vec::new();
        while let Some(x) = p.get() {
            taken.push(x);
        }
        assert_eq!(taken.len(), 4);
        assert!(p.get().is_none());
    }
}
