//! Synthetic route tables for tests and benchmarks (cold).
//!
//! The prefix-length mix approximates a real IPv4 BGP table; `scripts/gen-routes.py` uses
//! the same mix to write routes files.

use std::collections::HashSet;
use std::net::Ipv4Addr;

/// Share of each prefix length, in 1/10000 (sums to 10000): /24 ≈ 59 %, /23 10 %,
/// /22 12 %, /21 5 %, /20 4 %, /19 3 %, /16–/18 5 %, /8–/15 1.5 %, /25–/32 0.5 %.
pub const V4_LENGTH_MIX: [(u8, u32); 25] = [
    (8, 10),
    (9, 10),
    (10, 10),
    (11, 10),
    (12, 20),
    (13, 20),
    (14, 30),
    (15, 40),
    (16, 150),
    (17, 150),
    (18, 200),
    (19, 300),
    (20, 400),
    (21, 500),
    (22, 1200),
    (23, 1000),
    (24, 5900),
    (25, 10),
    (26, 10),
    (27, 10),
    (28, 5),
    (29, 5),
    (30, 5),
    (31, 2),
    (32, 3),
];

/// Ranges synthetic tables never touch (neither inside nor covering them): 0/8, 10/8
/// (test traffic sources), 127/8, 198.18/15 (benchmark addresses, RFC 2544) and 224/3
/// (multicast and reserved).
pub const V4_EXCLUDED: [(u32, u8); 5] = [
    (0x0000_0000, 8),
    (0x0a00_0000, 8),
    (0x7f00_0000, 8),
    (0xc612_0000, 15),
    (0xe000_0000, 3),
];

/// A tiny xorshift64* generator: deterministic, no dependencies.
#[derive(Debug, Clone)]
pub struct XorShift64(u64);

impl XorShift64 {
    /// A generator for `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Self {
        // splitmix64 of the seed: distinct seeds give unrelated, non-zero states.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        XorShift64(if z == 0 { 0x2545_f491_4f6c_dd1d } else { z })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A value in `0..n` (`n > 0`), by multiply-shift.
    pub fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.next_u32()) * u64::from(n)) >> 32) as u32
    }
}

const fn mask(len: u8) -> u32 {
    if len == 0 { 0 } else { u32::MAX << (32 - len) }
}

/// True when `a/al` and `b/bl` share an address (one contains the other).
fn overlaps(a: u32, al: u8, b: u32, bl: u8) -> bool {
    let m = mask(al.min(bl));
    a & m == b & m
}

/// `n` distinct IPv4 prefixes with the length mix of [`V4_LENGTH_MIX`], deterministic for a
/// `seed`, none overlapping [`V4_EXCLUDED`], in random order. Covers the address space
/// evenly (real tables cluster more). If the space for the mix runs out (far beyond
/// 10 million prefixes) it returns fewer than `n`.
pub fn synthetic_v4_routes(n: usize, seed: u64) -> Vec<(Ipv4Addr, u8)> {
    let mut rng = XorShift64::new(seed);
    let mut seen: HashSet<(u32, u8)> = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    let total: u32 = V4_LENGTH_MIX.iter().map(|&(_, w)| w).sum();
    let max_attempts = n.saturating_mul(100).saturating_add(1000);
    let mut attempts = 0usize;
    while out.len() < n && attempts < max_attempts {
        attempts += 1;
        let mut r = rng.below(total);
        let mut len = 24;
        for &(l, w) in &V4_LENGTH_MIX {
            if r < w {
                len = l;
                break;
            }
            r -= w;
        }
        let addr = rng.next_u32() & mask(len);
        if V4_EXCLUDED
            .iter()
            .any(|&(e, el)| overlaps(addr, len, e, el))
        {
            continue;
        }
        if seen.insert((addr, len)) {
            out.push((Ipv4Addr::from(addr), len));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_sums_to_10000() {
        assert_eq!(V4_LENGTH_MIX.iter().map(|&(_, w)| w).sum::<u32>(), 10_000);
    }

    #[test]
    fn deterministic_distinct_and_clear_of_excluded_ranges() {
        let n = 20_000;
        let a = synthetic_v4_routes(n, 7);
        assert_eq!(a.len(), n);
        assert_eq!(a, synthetic_v4_routes(n, 7));
        assert_ne!(a, synthetic_v4_routes(n, 8));
        let set: HashSet<_> = a.iter().collect();
        assert_eq!(set.len(), n);
        let mut by_len = [0usize; 33];
        for &(p, l) in &a {
            let p = u32::from(p);
            assert_eq!(p & !mask(l), 0, "host bits in {p:#x}/{l}");
            for &(e, el) in &V4_EXCLUDED {
                assert!(!overlaps(p, l, e, el), "{p:#x}/{l} overlaps {e:#x}/{el}");
            }
            by_len[usize::from(l)] += 1;
        }
        let share = |l: usize| by_len[l] as f64 / n as f64;
        assert!((share(24) - 0.59).abs() < 0.02, "/24 share {}", share(24));
        assert!((share(22) - 0.12).abs() < 0.01, "/22 share {}", share(22));
        let long: usize = by_len[25..].iter().sum();
        assert!(
            long > 0 && long < n / 100,
            "{long} prefixes longer than /24"
        );
    }
}
