//! Routing tables (in progress): IPv4 and IPv6 longest-prefix match, next hops and ECMP
//! groups, routes files.
//!
//! Hot: [`Lpm4::lookup`], [`Lpm6::lookup`], their `lookup_burst` and
//! [`NextHopTable::resolve`]: no allocation, no panics; a miss is `None`. Cold: building
//! and changing tables, parsing routes files.

pub mod file;
pub mod lpm4;
pub mod lpm6;
pub mod nexthop;
pub mod prefix;

pub use file::{RouteSpec, RoutesError, parse_routes, read_routes, write_routes};
pub use lpm4::{Lpm4, LpmError, MemoryUsage};
pub use lpm6::Lpm6;
pub use nexthop::{ECMP_FLAG, EcmpGroup, NO_NEXT_HOP, NextHop, NextHopError, NextHopTable};
pub use prefix::{Prefix, PrefixError};

/// Hints the CPU to fetch the cache line holding `*p` (no-op off x86_64).
#[inline(always)]
pub(crate) fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch is only a hint: it never faults and has no architectural
        // effect, and the pointer comes from a live reference.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(p).cast::<i8>()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
