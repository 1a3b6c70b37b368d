#!/usr/bin/env bash
# Delivered packet rate through the netns test bed: Linux's own forwarding, then steerd on
# each port backend, in the same run, alternating (linux tap afpacket afxdp dpdk, linux ...).
# dpdk is steerd on DPDK ports: net_af_packet vdevs on the same veths (conf/testbed-dpdk.toml).
#
#   sd-a: trafgen ── 64-byte UDP 10.1.0.2 -> 10.2.0.2, many source ports ──► router ──► sd-b
#
# For each router and round: the test bed comes up in that mode (scripts/testbed.sh), steerd
# starts with conf/testbed-MODE.toml (not for linux), a ping resolves the neighbours, then
# trafgen sends from host A as fast as one core can for DURATION seconds. Delivered = frames
# host B's veth received during that window (its rx_packets counter), sent = frames host A's
# veth transmitted. One JSON object per line per router at the end (medians over the rounds):
#   {"router":"linux","delivered_pps":..,"sent_pps":..,"ratio_to_linux":1.0,"runs_pps":[..],..}
#
# usage: scripts/bench-testbed.sh [--duration SECS] [--rounds N]
#                                 [--routers linux,tap,afpacket,afxdp,dpdk] [--steerd PATH] [--no-build]
#   --steerd PATH  the binary to use (default target/release/steerd, built with --features
#                  afxdp, and dpdk when libdpdk-dev is installed, unless --no-build); the
#                  default routers leave out afxdp and dpdk if the binary lacks them
# Needs root and the test bed packages (scripts/install-testbed-deps.sh: trafgen is netsniff-ng).
# Cores: steerd's one worker is pinned to core 1 (STEERD_GENERAL__FIRST_CORE=1), trafgen to
# core 0. Linux forwards in softirq on the core that sends (trafgen's), steerd's backends take
# the kernel half of their I/O there too and do the forwarding on core 1.
# The namespaces use the prefix sdbench- (STEERD_TESTBED_PREFIX), so a test bed that is up
# under the default prefix is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PROG=$(basename "$0")
die() { echo "$PROG: $*" >&2; exit 1; }
say() { echo "$PROG: $*" >&2; }

DURATION=5 ROUNDS=3 ROUTERS= STEERD= BUILD=1
while [ $# -gt 0 ]; do
  case $1 in
    --duration) DURATION=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --routers) ROUTERS=$2; shift 2 ;;
    --steerd) STEERD=$2; BUILD=0; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 1 ]] || die "--duration wants whole seconds >= 1"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] || die "--rounds wants a count >= 1"
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, veth, tap, AF_PACKET, AF_XDP)"
for c in ip trafgen ping ethtool python3; do
  command -v $c >/dev/null || die "$c is missing: scripts/install-testbed-deps.sh installs the test bed packages"
done

if [ -z "$STEERD" ]; then
  STEERD=$ROOT/target/release/steerd
  if [ $BUILD = 1 ]; then
    features=afxdp
    pkg-config --exists libdpdk 2>/dev/null && features=afxdp,dpdk
    say "building steerd (release, --features $features)"
    cargo build --release --features $features -q >&2
  fi
fi
[ -x "$STEERD" ] || die "no steerd binary at $STEERD (cargo build --release --features afxdp, or --steerd PATH)"
has_afxdp=1 has_dpdk=1
"$STEERD" check --config conf/testbed-afxdp.toml >/dev/null 2>&1 || has_afxdp=0
"$STEERD" check --config conf/testbed-dpdk.toml >/dev/null 2>&1 || has_dpdk=0
if [ -z "$ROUTERS" ]; then
  ROUTERS=linux,tap,afpacket
  [ $has_afxdp = 1 ] && ROUTERS=$ROUTERS,afxdp
  [ $has_dpdk = 1 ] && ROUTERS=$ROUTERS,dpdk
fi

export STEERD_TESTBED_PREFIX=sdbench-
TB=$ROOT/scripts/testbed.sh
NS_A=${STEERD_TESTBED_PREFIX}a NS_B=${STEERD_TESTBED_PREFIX}b
WORK=$(mktemp -d /tmp/steerd-bench-testbed.XXXXXX)
SD_PID=
cleanup() {
  [ -n "$SD_PID" ] && kill -TERM "$SD_PID" 2>/dev/null && wait "$SD_PID" 2>/dev/null
  "$TB" down >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

IFS=, read -r -a routers <<<"$ROUTERS"
for r in "${routers[@]}"; do
  case $r in
    linux|tap|afpacket) ;;
    afxdp) [ $has_afxdp = 1 ] || die "afxdp asked for, but $STEERD was built without --features afxdp" ;;
    dpdk) [ $has_dpdk = 1 ] || die "dpdk asked for, but $STEERD was built without --features dpdk" ;;
    *) die "unknown router $r (linux, tap, afpacket, afxdp, dpdk)" ;;
  esac
done

# 64-byte frames (60 + FCS): Ethernet, IPv4, UDP, 18 bytes of payload; the source port walks
# 1024..65535 so flows spread like real traffic (and over AF_PACKET fanout / tap queues).
router_mac() { case $1 in tap) echo 02:00:00:00:01:fe ;; *) echo 02:00:00:00:01:01 ;; esac; }
trafgen_conf() {
  cat >"$WORK/udp64.cfg" <<EOF
{
  eth(da=$(router_mac "$1"), sa=02:00:00:00:01:02, type=0x0800),
  ipv4(saddr=10.1.0.2, daddr=10.2.0.2, ttl=64, df),
  udp(sport=dinc(1024, 65535), dport=9),
  fill(0x00, 18)
}
EOF
}

counter() { # NS DEV rx|tx
  ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3_packets"
}

one_run() { # ROUTER ROUND: appends "ROUTER delivered_pps sent_pps" to $WORK/runs
  local r=$1 round=$2 mode=$1
  [ "$r" = linux ] && mode=kernel
  [ "$r" = dpdk ] && mode=afpacket # net_af_packet vdevs on the afpacket bed's veths
  "$TB" up "$mode" >/dev/null
  if [ "$r" != linux ]; then
    STEERD_GENERAL__FIRST_CORE=1 "$TB" run -- "$STEERD" run --config "conf/testbed-$r.toml" \
      --quiet --metrics-listen off --ctl-socket off --json "$WORK/steerd-$r.json" \
      >"$WORK/steerd-$r.log" 2>&1 &
    SD_PID=$!
  fi
  local ok=0
  for _ in $(seq 1 50); do
    if ip netns exec "$NS_A" ping -c 1 -W 0.2 10.2.0.2 >/dev/null 2>&1; then ok=1; break; fi
    if [ -n "$SD_PID" ] && ! kill -0 "$SD_PID" 2>/dev/null; then break; fi
    sleep 0.1
  done
  [ $ok = 1 ] || { cat "$WORK/steerd-$r.log" >&2 2>/dev/null || true; die "$r: host A cannot reach host B"; }
  trafgen_conf "$r"
  local rx0 tx0 rx1 tx1 t0 t1
  rx0=$(counter "$NS_B" veth-b rx); tx0=$(counter "$NS_A" veth-a tx); t0=$(date +%s.%N)
  ip netns exec "$NS_A" timeout -s INT "$DURATION" \
    trafgen --dev veth-a --conf "$WORK/udp64.cfg" --cpus 1 -q >/dev/null 2>&1 || true
  t1=$(date +%s.%N)
  sleep 0.2 # what is in flight arrives
  rx1=$(counter "$NS_B" veth-b rx); tx1=$(counter "$NS_A" veth-a tx)
  if [ -n "$SD_PID" ]; then
    kill -TERM "$SD_PID" 2>/dev/null || true
    wait "$SD_PID" 2>/dev/null || true
    SD_PID=
  fi
  "$TB" down >/dev/null
  local delivered sent
  read -r delivered sent < <(python3 -c "import sys; a=[float(x) for x in sys.argv[1:]]; d=a[5]-a[4]; print((a[1]-a[0])/d, (a[3]-a[2])/d)" \
    "$rx0" "$rx1" "$tx0" "$tx1" "$t0" "$t1")
  say "round $round $r: delivered $(printf '%.0f' "$delivered") pps of $(printf '%.0f' "$sent") sent"
  echo "$r $delivered $sent" >>"$WORK/runs"
}

: >"$WORK/runs"
for round in $(seq 1 "$ROUNDS"); do
  for r in "${routers[@]}"; do
    one_run "$r" "$round"
  done
done

python3 - "$WORK/runs" "$DURATION" "$ROUNDS" "$(nproc)" "$(uname -r)" <<'EOF'
import json, statistics, sys
runs, duration, rounds, cores, kernel = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
by = {}
for line in open(runs):
    r, d, s = line.split()
    by.setdefault(r, []).append((float(d), float(s)))
linux = statistics.median(d for d, _ in by["linux"]) if "linux" in by else None
for r, v in by.items():
    d = statistics.median(x for x, _ in v)
    s = statistics.median(x for _, x in v)
    print(json.dumps({
        "router": r,
        "delivered_pps": round(d),
        "sent_pps": round(s),
        "delivered_fraction": round(d / s, 4) if s else None,
        "ratio_to_linux": round(d / linux, 3) if linux else None,
        "runs_pps": [round(x) for x, _ in v],
        "frame_bytes": 64, "duration_s": duration, "rounds": rounds,
        "cores": cores, "kernel": kernel,
    }))
EOF
