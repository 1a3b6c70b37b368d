#!/usr/bin/env python3
"""Generate a realistic steerd routes file (docs/routes-format.md) for benchmarks.

IPv4 prefix lengths follow a real BGP table (about /24 59 %, /23 10 %, /22 12 %, /21 5 %,
/20 4 %, /19 3 %, /16-/18 5 %, /8-/15 1.5 %, and 0.5 % of /25-/32 so the tbl8 path is
exercised): the same mix as steerd::route::synthetic_v4_routes (not the same prefixes).
Short lengths saturate in big tables (there are only ~215 usable /8s), so a 1M table
gets somewhat fewer /8-/12 prefixes than the mix asks for.
IPv6 prefixes (--v6) are mostly /48, /32, /44, /40, /36 and /29, clustered under /32
allocations inside the RIR ranges, as in a real table.

Deterministic for a --seed; no duplicate prefixes; never inside or covering 0/8, 127/8,
224/3 or any --exclude prefix. Next-hop names are assigned round-robin from --next-hops;
with --ecmp-every K every K-th route gets two next hops (an ECMP group).
Routes are written sorted by address (IPv4 first), like a routing-table dump.

Examples:
    scripts/gen-routes.py > routes-1m.txt
    scripts/gen-routes.py 100000 --seed 7 --next-hops a,b,c --v6 20000 -o routes.txt
    scripts/gen-routes.py --exclude 198.18.0.0/15 --exclude 192.0.2.0/24

Python 3 standard library only.
"""

import argparse
import ipaddress
import random
import re
import sys

# (length, share in 1/10000); must match V4_LENGTH_MIX in src/route/synth.rs.
V4_MIX = [
    (8, 10), (9, 10), (10, 10), (11, 10), (12, 20), (13, 20), (14, 30), (15, 40),
    (16, 150), (17, 150), (18, 200), (19, 300), (20, 400), (21, 500), (22, 1200),
    (23, 1000), (24, 5900),
    (25, 10), (26, 10), (27, 10), (28, 5), (29, 5), (30, 5), (31, 2), (32, 3),
]

V6_MIX = [
    (48, 4500), (32, 1200), (44, 1000), (40, 800), (36, 500), (29, 500), (46, 300),
    (47, 200), (42, 200), (45, 100), (38, 100), (35, 100), (34, 100), (33, 100),
    (30, 100), (28, 100),
]

# Not unicast, never generated.
ALWAYS_EXCLUDED = ["0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/3"]
# Used when no --exclude is given: test sources (10/8), benchmark ranges (RFC 2544
# 198.18/15, RFC 5180 2001:2::/48) and IPv6 documentation (2001:db8::/32).
DEFAULT_EXCLUDED = ["10.0.0.0/8", "198.18.0.0/15", "2001:2::/48", "2001:db8::/32"]

# RIR ranges of IPv6 global unicast where /32 allocations are drawn from.
V6_RIR_RANGES = ["2001::/16", "2400::/12", "2600::/12", "2800::/12", "2a00::/12", "2c00::/12"]

NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")


def parse_prefix(text):
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"bad prefix {text!r}: {e}")
    return (net.version, int(net.network_address), net.prefixlen)


def mask(bits, length):
    return ((1 << bits) - 1) ^ ((1 << (bits - length)) - 1)


def overlaps(bits, a, al, b, bl):
    m = mask(bits, min(al, bl))
    return (a & m) == (b & m)


def pick_len(rng, mix, total):
    r = rng.randrange(total)
    for length, weight in mix:
        if r < weight:
            return length
        r -= weight
    return mix[-1][0]


def gen_v4(n, rng, excluded):
    total = sum(w for _, w in V4_MIX)
    seen = set()
    out = []
    attempts = 0
    max_attempts = 100 * n + 1000
    while len(out) < n and attempts < max_attempts:
        attempts += 1
        length = pick_len(rng, V4_MIX, total)
        addr = rng.getrandbits(32) & mask(32, length)
        if any(overlaps(32, addr, length, e, el) for e, el in excluded):
            continue
        key = (addr, length)
        if key in seen:
            continue
        seen.add(key)
        out.append(key)
    if len(out) < n:
        sys.exit(f"gen-routes: could only place {len(out)} of {n} IPv4 prefixes")
    return out


def gen_v6(n, rng, excluded):
    total = sum(w for _, w in V6_MIX)
    rir = [parse_prefix(p)[1:] for p in V6_RIR_RANGES]
    # /32 allocations that longer prefixes cluster under (about 10 routes each).
    allocations = []
    for _ in range(max(1, n // 10)):
        base, blen = rng.choice(rir)
        allocations.append(base | (rng.getrandbits(32 - blen) << 96))
    seen = set()
    out = []
    attempts = 0
    max_attempts = 100 * n + 1000
    while len(out) < n and attempts < max_attempts:
        attempts += 1
        length = pick_len(rng, V6_MIX, total)
        if length <= 32 or rng.random() < 0.05:
            # Allocations themselves, and a few longer prefixes outside the pool.
            base, blen = rng.choice(rir)
            addr = base | (rng.getrandbits(128 - blen))
        else:
            addr = rng.choice(allocations) | rng.getrandbits(96)
        addr &= mask(128, length)
        if any(overlaps(128, addr, length, e, el) for e, el in excluded):
            continue
        key = (addr, length)
        if key in seen:
            continue
        seen.add(key)
        out.append(key)
    if len(out) < n:
        sys.exit(f"gen-routes: could only place {len(out)} of {n} IPv6 prefixes")
    return out


def fmt_v4(a, length):
    return f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}/{length}"


def fmt_v6(a, length):
    return f"{ipaddress.IPv6Address(a).compressed}/{length}"


def main():
    ap = argparse.ArgumentParser(
        description="Generate a realistic steerd routes file.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Examples:")[1].split("Python 3")[0].rstrip(),
    )
    ap.add_argument("count", nargs="?", type=int, default=1_000_000,
                    help="number of IPv4 prefixes (default 1000000)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--next-hops", default="nh0,nh1,nh2,nh3",
                    help="comma-separated next-hop names, assigned round-robin "
                         "(default nh0,nh1,nh2,nh3)")
    ap.add_argument("--v6", type=int, default=0, metavar="N",
                    help="also generate N IPv6 prefixes (default 0)")
    ap.add_argument("--ecmp-every", type=int, default=0, metavar="K",
                    help="give every K-th route two next hops (default 0: never)")
    ap.add_argument("--exclude", action="append", type=parse_prefix, metavar="PREFIX",
                    help="keep PREFIX free (repeatable); default: "
                         + " ".join(DEFAULT_EXCLUDED))
    ap.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    args = ap.parse_args()

    if args.count < 0 or args.v6 < 0 or args.ecmp_every < 0:
        ap.error("counts must not be negative")
    names = [n.strip() for n in args.next_hops.split(",")]
    bad = [n for n in names if not NAME_RE.match(n) or n == "via"]
    if bad:
        ap.error(f"bad next-hop name(s) {bad}: use letters, digits, '_', '-', '.', ':'")
    if args.ecmp_every and len(names) < 2:
        ap.error("--ecmp-every needs at least two --next-hops")

    excluded = [parse_prefix(p) for p in ALWAYS_EXCLUDED]
    excluded += args.exclude if args.exclude is not None else [
        parse_prefix(p) for p in DEFAULT_EXCLUDED]
    ex4 = [(a, l) for v, a, l in excluded if v == 4]
    ex6 = [(a, l) for v, a, l in excluded if v == 6]

    rng = random.Random(args.seed)
    v4 = sorted(gen_v4(args.count, rng, ex4))
    v6 = sorted(gen_v6(args.v6, rng, ex6))

    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    with out:
        out.write("# steerd routes file generated by scripts/gen-routes.py\n")
        out.write(f"# {len(v4)} IPv4 + {len(v6)} IPv6 prefixes, seed {args.seed}, "
                  f"next hops {','.join(names)}, ecmp every {args.ecmp_every or 'never'}\n")
        out.write("# excluded: " + " ".join(
            (fmt_v4 if v == 4 else fmt_v6)(a, l) for v, a, l in excluded) + "\n")
        i = 0
        lines = []
        for family, routes in ((fmt_v4, v4), (fmt_v6, v6)):
            for a, length in routes:
                nh = names[i % len(names)]
                if args.ecmp_every and i % args.ecmp_every == 0:
                    nh += "," + names[(i + 1) % len(names)]
                lines.append(f"{family(a, length)} {nh}\n")
                i += 1
                if len(lines) >= 65536:
                    out.write("".join(lines))
                    lines.clear()
        out.write("".join(lines))


if __name__ == "__main__":
    main()
