//! Routing: IPv4 and IPv6 longest-prefix match, next hops and ECMP groups, routes files.
//!
//! Hot: [`RouteTable::lookup_v4`] / [`RouteTable::lookup_v6`] and the lookups under them
//! ([`Lpm4::lookup`], [`Lpm6::lookup`], their `lookup_burst`, [`NextHopTable::resolve`]):
//! no allocation, no locks, no panics; a miss is `None`, not an error.
//! Cold: everything that builds or changes a table ([`RouteTable::build`], `insert`,
//! `remove`, [`parse_routes`]), done off the fast path; the result is published to workers
//! as an immutable snapshot.
//!
//! | file | owns |
//! | --- | --- |
//! | `lpm4.rs` | [`Lpm4`]: DIR-24-8 IPv4 LPM (`rte_lpm` style), [`LpmError`] |
//! | `lpm6.rs` | [`Lpm6`]: 16-8-8-… multibit trie IPv6 LPM |
//! | `nexthop.rs` | [`NextHop`], [`EcmpGroup`], [`NextHopTable`]: what an LPM value means |
//! | `prefix.rs` | [`Prefix`]: canonical CIDR prefix, parsing with helpful errors |
//! | `file.rs` | routes files: [`parse_routes`], [`read_routes`], [`write_routes`] |
//! | `synth.rs` | [`synthetic_v4_routes`]: BGP-like tables for tests and benchmarks |
//!
//! Invariant of a [`RouteTable`] made by [`RouteTable::build`]: every value stored in `v4`
//! and `v6` names a next hop or an ECMP group of `next_hops` (see `nexthop.rs` for the
//! encoding), so a hit always resolves to a valid next-hop index.

pub mod file;
pub mod lpm4;
pub mod lpm6;
pub mod nexthop;
pub mod prefix;
pub mod synth;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use file::{RouteSpec, RoutesError, parse_routes, read_routes, write_routes};
pub use lpm4::{Lpm4, LpmError, MemoryUsage};
pub use lpm6::Lpm6;
pub use nexthop::{ECMP_FLAG, EcmpGroup, NO_NEXT_HOP, NextHop, NextHopError, NextHopTable};
pub use prefix::{Prefix, PrefixError};
pub use synth::{XorShift64, synthetic_v4_routes};

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

/// Sizes of the LPM tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LpmOptions {
    /// Most IPv4 tbl8 groups: one per /24 holding routes longer than /24, 1 KiB each.
    pub v4_tbl8_groups: u32,
    /// Most IPv6 groups: one per block (/16, /24, /32, /40, …) holding longer routes,
    /// 1.25 KiB each, allocated as needed; a /48 needs up to 4 (shared with its
    /// neighbors). A realistic table needs about one per route longer than /40.
    pub v6_groups: u32,
}

impl Default for LpmOptions {
    fn default() -> Self {
        LpmOptions {
            v4_tbl8_groups: Lpm4::DEFAULT_TBL8_GROUPS,
            v6_groups: Lpm6::DEFAULT_GROUPS,
        }
    }
}

/// Errors building a [`RouteTable`].
#[derive(Debug, Error)]
pub enum RouteError {
    /// The next-hop list itself is invalid (e.g. a name defined twice).
    #[error("next hops: {0}")]
    NextHops(#[source] NextHopError),
    /// A route's next hops are invalid (e.g. an unknown name).
    #[error("route on line {line} ({prefix}): {source}")]
    NextHop {
        /// Index of the route in the list built.
        index: usize,
        /// Line of the route.
        line: usize,
        /// Its prefix.
        prefix: Prefix,
        /// What is wrong.
        source: NextHopError,
    },
    /// A route does not fit the LPM table (e.g. groups exhausted).
    #[error("route on line {line} ({prefix}): {source}")]
    Lpm {
        /// Index of the route in the list built.
        index: usize,
        /// Line of the route.
        line: usize,
        /// Its prefix.
        prefix: Prefix,
        /// What is wrong.
        source: LpmError,
    },
    /// Two routes for one prefix.
    #[error(
        "route on line {line}: prefix {prefix} already has a route on line {first_line}; \
         keep one of the two"
    )]
    Duplicate {
        /// Index of the later route in the list built.
        index: usize,
        /// Index of the earlier one.
        first_index: usize,
        /// The later route.
        line: usize,
        /// The earlier route.
        first_line: usize,
        /// The prefix.
        prefix: Prefix,
    },
}

/// IPv4 and IPv6 routes with their next hops: what a worker looks destinations up in.
#[derive(Debug, Clone)]
pub struct RouteTable {
    /// IPv4 routes; values are next-hop values of `next_hops`.
    pub v4: Lpm4,
    /// IPv6 routes; values are next-hop values of `next_hops`.
    pub v6: Lpm6,
    /// Next hops and ECMP groups.
    pub next_hops: NextHopTable,
}

impl RouteTable {
    /// Builds the tables for `routes` over `next_hops` (cold). ECMP groups with the same
    /// members (in any order) are shared. The tables are shrunk to fit at the end.
    pub fn build(
        routes: &[RouteSpec],
        next_hops: Vec<NextHop>,
        opts: LpmOptions,
    ) -> Result<RouteTable, RouteError> {
        let mut nh = NextHopTable::new(next_hops).map_err(RouteError::NextHops)?;
        let mut v4 = Lpm4::new(opts.v4_tbl8_groups);
        let mut v6 = Lpm6::new(opts.v6_groups);
        for (n, r) in routes.iter().enumerate() {
            let (line, prefix) = (r.line, r.prefix);
            let len = prefix.prefix_len();
            let exists = match prefix.addr() {
                IpAddr::V4(a) => v4.get(a, len).is_some(),
                IpAddr::V6(a) => v6.get(a, len).is_some(),
            };
            if exists {
                // Cold: find the earlier route for the message.
                let first_index = routes[..n]
                    .iter()
                    .position(|e| e.prefix == prefix)
                    .unwrap_or(n);
                return Err(RouteError::Duplicate {
                    index: n,
                    first_index,
                    first_line: routes[first_index].line,
                    line,
                    prefix,
                });
            }
            let value = nh
                .value_for_names(&r.next_hops)
                .map_err(|source| RouteError::NextHop {
                    index: n,
                    line,
                    prefix,
                    source,
                })?;
            match prefix.addr() {
                IpAddr::V4(a) => v4.insert(a, len, value),
                IpAddr::V6(a) => v6.insert(a, len, value),
            }
            .map_err(|source| RouteError::Lpm {
                index: n,
                line,
                prefix,
                source,
            })?;
        }
        v4.shrink_to_fit();
        v6.shrink_to_fit();
        Ok(RouteTable {
            v4,
            v6,
            next_hops: nh,
        })
    }

    /// Next-hop index for IPv4 destination `addr` (host order) and the packet's flow hash.
    #[inline]
    pub fn lookup_v4(&self, addr: u32, flow_hash: u32) -> Option<u16> {
        let v = self.v4.lookup(addr)?;
        let i = self.next_hops.resolve(v, flow_hash);
        (i != NO_NEXT_HOP).then_some(i)
    }

    /// Next-hop index for IPv6 destination `addr` (host order: `u128::from(ipv6addr)`) and
    /// the packet's flow hash.
    #[inline]
    pub fn lookup_v6(&self, addr: u128, flow_hash: u32) -> Option<u16> {
        let v = self.v6.lookup(addr)?;
        let i = self.next_hops.resolve(v, flow_hash);
        (i != NO_NEXT_HOP).then_some(i)
    }

    /// The routes of the table (cold), IPv4 first, each ordered by length then prefix,
    /// with `line` 0; [`write_routes`] turns them back into a routes file.
    pub fn routes(&self) -> Vec<RouteSpec> {
        let names = |value: u32| -> Vec<String> {
            self.next_hops
                .members_of(value)
                .into_iter()
                .filter_map(|i| self.next_hops.get(i).map(|h| h.name.clone()))
                .collect()
        };
        let v4 = self.v4.iter().map(|(a, l, v)| (IpAddr::V4(a), l, v));
        let v6 = self.v6.iter().map(|(a, l, v)| (IpAddr::V6(a), l, v));
        v4.chain(v6)
            .map(|(a, l, v)| RouteSpec {
                prefix: Prefix::new_masked(a, l),
                next_hops: names(v),
                line: 0,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::path::Path;
    use std::time::Instant;

    fn hops(n: u16) -> Vec<NextHop> {
        (0..n)
            .map(|i| NextHop {
                name: format!("nh{i}"),
                port: i,
                src_mac: [2, 0, 0, 0, 0, 1],
                dst_mac: [2, 0, 0, 0, 1, i as u8],
            })
            .collect()
    }

    fn v4(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    fn v6(s: &str) -> u128 {
        u128::from(s.parse::<Ipv6Addr>().unwrap())
    }

    const ROUTES: &str = "\
        0.0.0.0/0 nh0\n\
        10.0.0.0/8 via nh1,nh2\n\
        10.1.0.0/16 nh2,nh1\n\
        10.1.2.128/25 nh3\n\
        2001:db8::/32 nh1\n\
        2001:db8:1::/48 nh1,nh2,nh3\n";

    fn table() -> RouteTable {
        let routes = parse_routes(ROUTES, Path::new("routes.txt")).unwrap();
        RouteTable::build(&routes, hops(4), LpmOptions::default()).unwrap()
    }

    #[test]
    fn build_and_look_up() {
        let t = table();
        assert_eq!(t.v4.len(), 4);
        assert_eq!(t.v6.len(), 2);
        // nh1,nh2 and nh2,nh1 share one group.
        assert_eq!(t.next_hops.groups().len(), 2);
        assert_eq!(t.lookup_v4(v4("192.0.2.1"), 0), Some(0));
        assert_eq!(t.lookup_v4(v4("10.1.2.200"), 0), Some(3));
        assert_eq!(t.lookup_v4(v4("10.9.0.1"), 0), Some(1));
        assert_eq!(t.lookup_v4(v4("10.9.0.1"), u32::MAX), Some(2));
        assert_eq!(t.lookup_v4(v4("10.1.0.1"), u32::MAX), Some(2));
        assert_eq!(t.lookup_v6(v6("2001:db8::1"), 7), Some(1));
        assert_eq!(t.lookup_v6(v6("2001:db8:1::1"), u32::MAX), Some(3));
        assert_eq!(t.lookup_v6(v6("2001:db9::1"), 0), None);
        let i = t.lookup_v4(v4("10.1.2.200"), 0).unwrap();
        assert_eq!(t.next_hops.get(i).unwrap().name, "nh3");
    }

    #[test]
    fn routes_round_trip_through_the_file_format() {
        let t = table();
        let mut buf = Vec::new();
        write_routes(&mut buf, &t.routes()).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let again = parse_routes(&text, Path::new("dump")).unwrap();
        let t2 = RouteTable::build(&again, hops(4), LpmOptions::default()).unwrap();
        assert_eq!(t2.routes(), t.routes());
        assert!(text.contains("10.0.0.0/8 nh1,nh2\n"), "{text}");
    }

    #[test]
    fn build_errors_name_the_line() {
        let routes =
            parse_routes("10.0.0.0/8 nh0\n\n11.0.0.0/8 nh0,nh9\n", Path::new("r")).unwrap();
        let e = RouteTable::build(&routes, hops(2), LpmOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "route on line 3 (11.0.0.0/8): unknown next hop \"nh9\"; defined next hops: \
             nh0, nh1"
        );
        let mut dup = routes[..1].to_vec();
        dup.push(RouteSpec {
            line: 5,
            ..routes[0].clone()
        });
        let e = RouteTable::build(&dup, hops(2), LpmOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "route on line 5: prefix 10.0.0.0/8 already has a route on line 1; keep one of \
             the two"
        );
        let mut two = hops(2);
        two[1].name = "nh0".into();
        let e = RouteTable::build(&[], two, LpmOptions::default()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("next hops: next hop \"nh0\" is defined twice")
        );
        let long = parse_routes("10.0.0.0/25 nh0\n10.0.1.0/25 nh1\n", Path::new("r")).unwrap();
        let opts = LpmOptions {
            v4_tbl8_groups: 1,
            ..LpmOptions::default()
        };
        let e = RouteTable::build(&long, hops(2), opts).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("route on line 2 (10.0.1.0/25): IPv4 LPM: all 1 tbl8 groups"),
            "{e}"
        );
    }

    #[test]
    fn options_deserialize_with_defaults() {
        let o: LpmOptions = serde_json::from_str(r#"{"v6_groups": 10}"#).unwrap();
        assert_eq!(o.v4_tbl8_groups, Lpm4::DEFAULT_TBL8_GROUPS);
        assert_eq!(o.v6_groups, 10);
        assert!(serde_json::from_str::<LpmOptions>(r#"{"v6_grups": 10}"#).is_err());
    }

    /// Resident set size of this process in KiB (Linux), for the build report.
    fn rss_kib() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    #[test]
    #[ignore = "reads $STEERD_ROUTES_FILE (e.g. from scripts/gen-routes.py); run with --release"]
    fn build_routes_file_from_env() {
        let Some(path) = std::env::var_os("STEERD_ROUTES_FILE") else {
            println!("STEERD_ROUTES_FILE is not set; skipping");
            return;
        };
        let path = Path::new(&path);
        let t = Instant::now();
        let routes = read_routes(path).unwrap();
        let parse = t.elapsed();
        let mut names: Vec<&String> = routes.iter().flat_map(|r| &r.next_hops).collect();
        names.sort_unstable();
        names.dedup();
        let next_hops: Vec<NextHop> = (0u16..)
            .zip(names)
            .map(|(i, name)| NextHop {
                name: name.clone(),
                port: i,
                src_mac: [2, 0, 0, 0, 0, 1],
                dst_mac: [2, 0, 0, 0, 1, i as u8],
            })
            .collect();
        let opts = LpmOptions {
            v4_tbl8_groups: Lpm4::DEFAULT_TBL8_GROUPS,
            v6_groups: Lpm6::DEFAULT_GROUPS,
        };
        let t = Instant::now();
        let table = RouteTable::build(&routes, next_hops, opts).unwrap();
        let build = t.elapsed();
        let (m4, m6) = (table.v4.memory(), table.v6.memory());
        let mib = |b: usize| b as f64 / (1 << 20) as f64;
        println!(
            "{}: {} routes parsed in {parse:?}, built in {build:?}",
            path.display(),
            routes.len()
        );
        println!(
            "v4: {} routes, {} tbl8 groups, {:.1} MiB lookup + {:.1} MiB rules",
            table.v4.len(),
            table.v4.tbl8_groups_used(),
            mib(m4.lookup_bytes),
            mib(m4.build_bytes)
        );
        println!(
            "v6: {} routes, {} groups, {:.1} MiB lookup + {:.1} MiB build state",
            table.v6.len(),
            table.v6.groups_used(),
            mib(m6.lookup_bytes),
            mib(m6.build_bytes)
        );
        println!("ECMP groups: {}", table.next_hops.groups().len());
        for r in routes.iter().step_by(101) {
            let hit = match r.prefix.addr() {
                IpAddr::V4(a) => table.lookup_v4(u32::from(a), 0),
                IpAddr::V6(a) => table.lookup_v6(u128::from(a), 0),
            };
            assert!(hit.is_some(), "{r}");
        }
    }

    #[test]
    #[ignore = "builds a 1M-prefix table; run: cargo test --release --lib route -- --ignored --nocapture"]
    fn full_table_build_time_and_memory() {
        const N: usize = 1_000_000;
        let t = Instant::now();
        let prefixes = synthetic_v4_routes(N, 1);
        let gen_time = t.elapsed();
        assert_eq!(prefixes.len(), N);

        // Raw Lpm4.
        let rss0 = rss_kib();
        let t = Instant::now();
        let mut lpm = Lpm4::new(Lpm4::DEFAULT_TBL8_GROUPS);
        for (i, &(p, l)) in prefixes.iter().enumerate() {
            lpm.insert(p, l, (i % 1024) as u32).unwrap();
        }
        let build = t.elapsed();
        let rss1 = rss_kib();
        assert_eq!(lpm.len(), N);
        for &(p, _) in prefixes.iter().step_by(97) {
            assert!(lpm.lookup(u32::from(p)).is_some());
        }

        // Lookups: random addresses, one at a time and in bursts of 32.
        let mut rng = XorShift64::new(2);
        let addrs: Vec<u32> = (0..1 << 22).map(|_| rng.next_u32()).collect();
        let t = Instant::now();
        let mut hits = 0usize;
        for &a in &addrs {
            hits += usize::from(lpm.lookup(std::hint::black_box(a)).is_some());
        }
        let single = t.elapsed();
        let mut out = [None; 32];
        let t = Instant::now();
        let mut burst_hits = 0usize;
        for chunk in addrs.chunks_exact(32) {
            lpm.lookup_burst(std::hint::black_box(chunk), &mut out);
            burst_hits += out.iter().filter(|o| o.is_some()).count();
        }
        let burst = t.elapsed();
        assert_eq!(hits, burst_hits);
        let mem = lpm.memory();
        let groups = lpm.tbl8_groups_used();
        drop(lpm);

        // Whole RouteTable from route specs, with some ECMP.
        let specs: Vec<RouteSpec> = prefixes
            .iter()
            .enumerate()
            .map(|(i, &(p, l))| RouteSpec {
                prefix: Prefix::new_masked(IpAddr::V4(p), l),
                next_hops: if i % 10 == 0 {
                    vec![format!("nh{}", i % 16), format!("nh{}", (i + 1) % 16)]
                } else {
                    vec![format!("nh{}", i % 16)]
                },
                line: i + 1,
            })
            .collect();
        let t = Instant::now();
        let table = RouteTable::build(&specs, hops(16), LpmOptions::default()).unwrap();
        let table_build = t.elapsed();
        assert_eq!(table.v4.len(), N);

        let mib = |b: usize| b as f64 / (1 << 20) as f64;
        let ns = |d: std::time::Duration| d.as_nanos() as f64 / addrs.len() as f64;
        println!("synthetic_v4_routes({N}): {gen_time:?}");
        println!(
            "Lpm4 build: {build:?} ({:.0} ns/prefix), tbl8 groups used: {}",
            build.as_nanos() as f64 / N as f64,
            groups
        );
        println!(
            "Lpm4 memory: lookup structures {:.1} MiB, rules (est.) {:.1} MiB",
            mib(mem.lookup_bytes),
            mib(mem.build_bytes)
        );
        if let (Some(a), Some(b)) = (rss0, rss1) {
            println!(
                "RSS growth during Lpm4 build: {:.1} MiB (undercounts: the allocator reuses \
                 the generator's freed memory)",
                b.saturating_sub(a) as f64 / 1024.0
            );
        }
        println!(
            "Lpm4 random lookups ({} addrs, {:.0}% hit): single {:.1} ns/lookup, burst32 {:.1} ns/lookup",
            addrs.len(),
            100.0 * hits as f64 / addrs.len() as f64,
            ns(single),
            ns(burst)
        );
        let tm = table.v4.memory();
        println!(
            "RouteTable::build (1M v4 specs, 10% ECMP): {table_build:?}, {} ECMP groups, \
             v4 {:.1} MiB lookup + {:.1} MiB rules after shrink_to_fit",
            table.next_hops.groups().len(),
            mib(tm.lookup_bytes),
            mib(tm.build_bytes)
        );
    }
}
