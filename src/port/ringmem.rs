//! Memory shared with the kernel by the mmap ring backends (afpacket, afxdp): a mapping
//! with bounds-checked accessors.
//!
//! Hot (every ring access goes through it), with all of its `unsafe` in one place.
//! Invariants: every access is checked against the mapping's length (a failed check
//! panics: it would be a bug in a ring walker, never a property of the traffic); words
//! the kernel may write at the same time (status words, producer/consumer indices) are
//! only touched as atomics; everything else only while those words say user space owns it.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;

/// A region of memory shared with the kernel (or, in tests, a plain allocation).
pub(crate) struct RingMem {
    ptr: NonNull<u8>,
    len: usize,
    mapped: bool,
}

// SAFETY: the memory is owned by exactly one queue object, which is moved to its worker
// thread as a whole; the kernel side synchronises through atomic status/index words.
unsafe impl Send for RingMem {}

impl RingMem {
    /// Maps `len` bytes of `fd` at `offset` (a socket's ring), shared with the kernel.
    pub(crate) fn map(fd: &OwnedFd, len: usize, offset: i64) -> io::Result<RingMem> {
        // SAFETY: a fresh shared mapping of the socket's ring, length and offset as the
        // kernel documents for it; the result is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                offset,
            )
        };
        Self::from_mmap(p, len)
    }

    /// Anonymous, zeroed, page-aligned memory (an AF_XDP UMEM).
    #[cfg_attr(not(feature = "afxdp"), allow(dead_code))]
    pub(crate) fn anon(len: usize) -> io::Result<RingMem> {
        // SAFETY: a fresh private anonymous mapping; the result is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        Self::from_mmap(p, len)
    }

    fn from_mmap(p: *mut libc::c_void, len: usize) -> io::Result<RingMem> {
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        Ok(RingMem {
            ptr,
            len,
            mapped: true,
        })
    }

    /// Zeroed, page-aligned memory standing in for a ring (tests).
    #[cfg(test)]
    pub(crate) fn alloc(len: usize) -> RingMem {
        let layout = std::alloc::Layout::from_size_align(len, 4096).unwrap();
        // SAFETY: the layout has a non-zero size (tests never ask for 0).
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        RingMem {
            ptr: NonNull::new(p).expect("test ring allocation"),
            len,
            mapped: false,
        }
    }

    /// Length in bytes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Start address (for registering the memory with the kernel).
    #[cfg_attr(not(feature = "afxdp"), allow(dead_code))]
    pub(crate) fn addr(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    #[inline]
    fn check(&self, off: usize, n: usize) {
        assert!(
            off.checked_add(n).is_some_and(|e| e <= self.len),
            "ring access out of bounds"
        );
    }

    /// The 32-bit word at `off` (4-byte aligned) that the kernel also reads or writes.
    #[inline]
    pub(crate) fn atomic_u32(&self, off: usize) -> &AtomicU32 {
        self.check(off, 4);
        assert!(off.is_multiple_of(4));
        // SAFETY: in bounds and aligned (the base is page-aligned); the kernel accesses
        // the word with its own atomic/ordered accesses, and it lives as long as `self`.
        unsafe { &*self.ptr.as_ptr().add(off).cast::<AtomicU32>() }
    }

    /// Reads a u16 that user space owns at this point.
    #[inline]
    pub(crate) fn read_u16(&self, off: usize) -> u16 {
        self.check(off, 2);
        // SAFETY: in bounds; the word belongs to user space at this point (see module docs).
        unsafe { self.ptr.as_ptr().add(off).cast::<u16>().read_unaligned() }
    }

    /// Reads a u32 that user space owns at this point.
    #[inline]
    pub(crate) fn read_u32(&self, off: usize) -> u32 {
        self.check(off, 4);
        // SAFETY: as for read_u16.
        unsafe { self.ptr.as_ptr().add(off).cast::<u32>().read_unaligned() }
    }

    /// Reads a u64 that user space owns at this point.
    #[cfg_attr(not(feature = "afxdp"), allow(dead_code))]
    #[inline]
    pub(crate) fn read_u64(&self, off: usize) -> u64 {
        self.check(off, 8);
        // SAFETY: as for read_u16.
        unsafe { self.ptr.as_ptr().add(off).cast::<u64>().read_unaligned() }
    }

    /// Writes a u32 that user space owns at this point.
    #[inline]
    pub(crate) fn write_u32(&self, off: usize, v: u32) {
        self.check(off, 4);
        // SAFETY: in bounds; the word belongs to user space at this point.
        unsafe { self.ptr.as_ptr().add(off).cast::<u32>().write_unaligned(v) }
    }

    /// Writes a u64 that user space owns at this point.
    #[cfg_attr(not(feature = "afxdp"), allow(dead_code))]
    #[inline]
    pub(crate) fn write_u64(&self, off: usize, v: u64) {
        self.check(off, 8);
        // SAFETY: as for write_u32.
        unsafe { self.ptr.as_ptr().add(off).cast::<u64>().write_unaligned(v) }
    }

    /// Copies `dst.len()` bytes at `off` out of the region.
    #[inline]
    pub(crate) fn copy_out(&self, off: usize, dst: &mut [u8]) {
        self.check(off, dst.len());
        // SAFETY: the source range is in bounds and owned by user space at this point; the
        // destination is a distinct Rust slice.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), dst.as_mut_ptr(), dst.len())
        }
    }

    /// Copies `src` into the region at `off`.
    #[inline]
    pub(crate) fn copy_in(&self, off: usize, src: &[u8]) {
        self.check(off, src.len());
        // SAFETY: the destination range is in bounds and owned by user space at this
        // point; the source is a distinct Rust slice.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.as_ptr().add(off), src.len())
        }
    }
}

impl Drop for RingMem {
    fn drop(&mut self) {
        if self.mapped {
            // SAFETY: unmapping exactly the region mapped in `map`/`anon`; no references
            // into it outlive `self`.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        } else {
            #[cfg(test)]
            {
                let layout = std::alloc::Layout::from_size_align(self.len, 4096).unwrap();
                // SAFETY: allocated in `alloc` with this layout.
                unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn accesses_past_the_end_panic() {
        let m = RingMem::alloc(4096);
        m.read_u32(4094);
    }

    #[test]
    fn anonymous_memory_reads_back_what_was_written() {
        let m = RingMem::anon(8192).unwrap();
        m.write_u64(8, 0x0102_0304_0506_0708);
        assert_eq!(m.read_u64(8), 0x0102_0304_0506_0708);
        m.copy_in(4000, b"steerd");
        let mut b = [0u8; 6];
        m.copy_out(4000, &mut b);
        assert_eq!(&b, b"steerd");
        assert_eq!(m.len(), 8192);
    }
}
