#!/usr/bin/env bash
# steerd test bed: three network namespaces on one machine, steerd routing in the middle.
#
#   sd-a                         sd-r (router)                         sd-b
#   veth-a 10.1.0.2/24  <---->  veth-ra        veth-rb  <---->  veth-b 10.2.0.2/24
#          fd01::2/64           (steerd's side A / side B)              fd02::2/64
#   default via 10.1.0.1, fd01::1                       default via 10.2.0.1, fd02::1
#
# usage: scripts/testbed.sh up [MODE] [--static-arp MAC_A MAC_B | --static-arp auto] [--multi-queue]
#        scripts/testbed.sh arp MAC_A MAC_B | auto     set the hosts' static ARP/ND entries later
#        scripts/testbed.sh down                       stop what runs in the namespaces, delete them
#        scripts/testbed.sh status                     mode, addresses, links, neighbours
#        scripts/testbed.sh run [a|b|r] -- CMD...      run CMD in a namespace (default r, the router)
#        scripts/testbed.sh check                      ping A -> B over IPv4 and IPv6 (kernel mode, or steerd running)
#        scripts/testbed.sh offloads on|off            checksum/TSO/GSO/GRO offloads of all four veth ends
# MODE (default tap):
#   tap       sd-r bridges veth-ra with tap-a (br-a) and veth-rb with tap-b (br-b); steerd opens
#             tap-a and tap-b (tap port backend). steerd must use its own MACs there, not the taps'
#             (a bridge keeps frames to a port's own MAC): configure its tap ports with
#             mac = 02:00:00:00:01:fe (tap-a) and 02:00:00:00:02:fe (tap-b), which `auto` uses.
#   afpacket  steerd opens veth-ra and veth-rb directly (afpacket backend); its MACs are the
#             veths' own, 02:00:00:00:01:01 and 02:00:00:00:02:01, which `auto` uses.
#   afxdp     like afpacket, for the afxdp backend (copy mode on veth); `run` mounts bpffs.
#   mark      afpacket plus a veth pair veth-m0 (02:00:00:00:01:10) <-> veth-m1 (02:00:00:00:01:11)
#             inside sd-r: `steerd mark` runs between veth-ra and veth-m0 (conf/testbed-mark.toml),
#             `steerd run` between veth-m1 (trusted for steering) and veth-rb (strip_nsh)
#             (conf/testbed-mark-steerd.toml). Host A -> marker -> steerd -> host B.
#   kernel    no steerd: Linux forwards in sd-r (10.1.0.1, 10.2.0.1, fd01::1, fd02::1 on the
#             router veths), the baseline to compare steerd with.
# In tap/afpacket/afxdp/mark modes the router namespace has no addresses, IP forwarding off and
# IPv6 off on its interfaces, so only steerd answers and forwards. Until steerd answers ARP
# and neighbour solicitations itself, --static-arp puts permanent entries for the gateways
# 10.1.0.1/fd01::1 (MAC_A) and 10.2.0.1/fd02::1 (MAC_B) on the hosts.
# Offloads: the veth ends get tx checksum, TSO, GSO and GRO off in every mode. With them on,
# a user-space router reads TCP frames whose checksum the kernel never filled in
# (CHECKSUM_PARTIAL) and TCP never connects although ping works.
# Needs root, iproute2 and ethtool (scripts/install-testbed-deps.sh installs them).
# STEERD_TESTBED_PREFIX (default sd-) names the namespaces PREFIXa, PREFIXr, PREFIXb, so tests
# can build their own test bed beside a running one.
set -euo pipefail

P=${STEERD_TESTBED_PREFIX:-sd-}
[[ $P =~ ^[A-Za-z0-9_.-]{1,20}$ ]] || { echo "testbed.sh: bad STEERD_TESTBED_PREFIX" >&2; exit 2; }
NS_A=${P}a NS_R=${P}r NS_B=${P}b
MAC_A=02:00:00:00:01:02 MAC_RA=02:00:00:00:01:01
MAC_B=02:00:00:00:02:02 MAC_RB=02:00:00:00:02:01
MAC_M0=02:00:00:00:01:10 MAC_M1=02:00:00:00:01:11
TAP_MAC_A=02:00:00:00:01:fe TAP_MAC_B=02:00:00:00:02:fe
STATE_DIR=/run/steerd-testbed/$P
PROG=$(basename "$0")

die() { echo "$PROG: $*" >&2; exit 1; }
say() { echo "$PROG: $*"; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-2}"; }

need_root() { [ "$(id -u)" = 0 ] || die "needs root (network namespaces and veth pairs)"; }
need() { # need CMD PACKAGE
  command -v "$1" >/dev/null 2>&1 ||
    die "$1 is missing: apt-get install $2 (or scripts/install-testbed-deps.sh)"
}
exists() { ip netns list 2>/dev/null | grep -qE "^$1( |\$)"; }
mode_now() { cat "$STATE_DIR/mode" 2>/dev/null || echo unknown; }
valid_mac() { [[ $1 =~ ^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$ ]]; }

offloads() { # on|off on the four veth ends
  local v=$1 ns dev
  need ethtool ethtool
  while read -r ns dev; do
    [ -n "$ns" ] || continue
    ip netns exec "$ns" ethtool -K "$dev" tx "$v" rx "$v" tso "$v" gso "$v" gro "$v" >/dev/null 2>&1 ||
      say "warning: ethtool -K $dev in $ns failed"
  done <<EOF
$NS_A veth-a
$NS_B veth-b
$NS_R veth-ra
$NS_R veth-rb
$( [ "$(mode_now)" = mark ] && printf '%s veth-m0\n%s veth-m1\n' "$NS_R" "$NS_R" )
EOF
}

nsysctl() { # nsysctl NS key=value...: sysctl through /proc (no procps needed)
  local ns=$1 kv; shift
  for kv in "$@"; do
    ip netns exec "$ns" sh -c "echo ${kv#*=} > /proc/sys/$(echo "${kv%%=*}" | tr . /)" ||
      die "cannot set ${kv%%=*} in $ns"
  done
}

v6off() { # v6off NS DEV: no IPv6 (no ND/MLD noise, no answers) on that interface
  ip netns exec "$1" sh -c "echo 1 > /proc/sys/net/ipv6/conf/$2/disable_ipv6" 2>/dev/null || true
}

static_arp() { # MAC_A MAC_B | auto
  local a=$1 b=${2:-}
  if [ "$a" = auto ]; then
    case $(mode_now) in
      tap) a=$TAP_MAC_A b=$TAP_MAC_B ;;
      afpacket|afxdp) a=$MAC_RA b=$MAC_RB ;;
      mark) a=$MAC_M1 b=$MAC_RB ;;
      kernel) die "kernel mode answers ARP itself: no static entries needed" ;;
      *) die "the test bed is not up" ;;
    esac
  fi
  valid_mac "$a" && valid_mac "$b" || die "--static-arp wants two MACs like 02:00:00:00:01:fe (or auto)"
  ip -n $NS_A neigh replace 10.1.0.1 lladdr "$a" dev veth-a nud permanent
  ip -n $NS_A -6 neigh replace fd01::1 lladdr "$a" dev veth-a nud permanent
  ip -n $NS_B neigh replace 10.2.0.1 lladdr "$b" dev veth-b nud permanent
  ip -n $NS_B -6 neigh replace fd02::1 lladdr "$b" dev veth-b nud permanent
  say "static neighbours: $NS_A 10.1.0.1/fd01::1 -> $a, $NS_B 10.2.0.1/fd02::1 -> $b"
}

up() {
  local mode=tap arp_a= arp_b= mq=
  while [ $# -gt 0 ]; do
    case $1 in
      tap|afpacket|afxdp|kernel|mark) mode=$1 ;;
      --static-arp)
        [ $# -ge 2 ] || die "--static-arp wants MAC_A MAC_B or auto"
        arp_a=$2; shift
        if [ "$arp_a" != auto ]; then [ $# -ge 2 ] || die "--static-arp wants MAC_A MAC_B"; arp_b=$2; shift; fi ;;
      --multi-queue) mq=multi_queue ;;
      *) die "up: unknown argument $1 (see $PROG help)" ;;
    esac
    shift
  done
  need_root; need ip iproute2; need ethtool ethtool
  for n in $NS_A $NS_R $NS_B; do
    exists "$n" && die "namespace $n exists: the test bed is up already ($PROG down first)"
  done
  # From here on a failing step removes what was built, so `up` can simply be retried.
  set -E
  trap 'trap - ERR; echo "$PROG: up failed, removing the half-built test bed" >&2; down >/dev/null 2>&1' ERR
  for n in $NS_A $NS_R $NS_B; do ip netns add "$n"; ip -n "$n" link set lo up; done
  ip link add veth-a netns $NS_A address $MAC_A type veth peer name veth-ra netns $NS_R address $MAC_RA
  ip link add veth-b netns $NS_B address $MAC_B type veth peer name veth-rb netns $NS_R address $MAC_RB
  ip -n $NS_A addr add 10.1.0.2/24 dev veth-a
  ip -n $NS_A addr add fd01::2/64 dev veth-a nodad
  ip -n $NS_B addr add 10.2.0.2/24 dev veth-b
  ip -n $NS_B addr add fd02::2/64 dev veth-b nodad
  for x in "$NS_A veth-a" "$NS_R veth-ra" "$NS_R veth-rb" "$NS_B veth-b"; do
    set -- $x; ip -n "$1" link set "$2" up
  done
  ip -n $NS_A route add default via 10.1.0.1
  ip -n $NS_A -6 route add default via fd01::1
  ip -n $NS_B route add default via 10.2.0.1
  ip -n $NS_B -6 route add default via fd02::1
  # Hosts stay quiet about redirects from a router that is not the kernel.
  nsysctl $NS_R net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0
  case $mode in
    kernel)
      ip -n $NS_R addr add 10.1.0.1/24 dev veth-ra
      ip -n $NS_R addr add fd01::1/64 dev veth-ra nodad
      ip -n $NS_R addr add 10.2.0.1/24 dev veth-rb
      ip -n $NS_R addr add fd02::1/64 dev veth-rb nodad
      nsysctl $NS_R net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 ;;
    afpacket|afxdp)
      nsysctl $NS_R net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
      v6off $NS_R veth-ra; v6off $NS_R veth-rb ;;
    mark)
      nsysctl $NS_R net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
      v6off $NS_R veth-ra; v6off $NS_R veth-rb
      ip -n $NS_R link add veth-m0 address $MAC_M0 type veth peer name veth-m1 address $MAC_M1
      v6off $NS_R veth-m0; v6off $NS_R veth-m1
      ip -n $NS_R link set veth-m0 up
      ip -n $NS_R link set veth-m1 up ;;
    tap)
      nsysctl $NS_R net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
      v6off $NS_R veth-ra; v6off $NS_R veth-rb
      for s in a b; do
        ip -n $NS_R tuntap add dev tap-$s mode tap $mq
        ip -n $NS_R link add br-$s type bridge stp_state 0 forward_delay 0
        v6off $NS_R tap-$s; v6off $NS_R br-$s
        ip -n $NS_R link set veth-r$s master br-$s
        ip -n $NS_R link set tap-$s master br-$s
        ip -n $NS_R link set br-$s up
        # The tap's queue towards steerd (txqueuelen, 500 frames by default) absorbs the
        # times steerd's worker is not scheduled; 4096 rides out ~0.4 s at 10k pps.
        ip -n $NS_R link set tap-$s txqueuelen 4096
        ip -n $NS_R link set tap-$s up
      done ;;
  esac
  mkdir -p "$STATE_DIR"; echo "$mode" > "$STATE_DIR/mode"
  offloads off
  if [ -n "$arp_a" ]; then static_arp "$arp_a" "$arp_b"; fi
  trap - ERR
  say "up in $mode mode"
  case $mode in
    tap) say "steerd ports: tap-a (mac $TAP_MAC_A, hosts 10.1.0.0/24 fd01::/64), tap-b (mac $TAP_MAC_B, 10.2.0.0/24 fd02::/64); run it with: $PROG run -- steerd ..." ;;
    mark) say "steerd mark: veth-ra (hosts side) -> veth-m0; steerd run: veth-m1 (mac $MAC_M1, trusted) and veth-rb (mac $MAC_RB); see conf/testbed-mark.toml and conf/testbed-mark-steerd.toml" ;;
    afpacket|afxdp) say "steerd ports: veth-ra (mac $MAC_RA, 10.1.0.0/24 fd01::/64), veth-rb (mac $MAC_RB, 10.2.0.0/24 fd02::/64); run it with: $PROG run -- steerd ..." ;;
    kernel) say "Linux forwards between 10.1.0.0/24 and 10.2.0.0/24: $PROG check" ;;
  esac
}

down() {
  need_root; need ip iproute2
  local n pids
  for n in $NS_A $NS_R $NS_B; do
    exists "$n" || continue
    pids=$(ip netns pids "$n" 2>/dev/null || true)
    if [ -n "$pids" ]; then
      say "stopping in $n: $(echo $pids)"
      kill $pids 2>/dev/null || true
      sleep 0.5
      pids=$(ip netns pids "$n" 2>/dev/null || true)
      [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
    fi
    ip netns del "$n" && say "deleted $n"
  done
  rm -rf "$STATE_DIR"
}

status() {
  need ip iproute2
  local n
  exists $NS_R || { say "down"; return 0; }
  say "mode $(mode_now)"
  for n in $NS_A $NS_R $NS_B; do
    echo "== $n"
    ip -n "$n" -br link 2>/dev/null | grep -v '^lo ' || true
    ip -n "$n" -br addr 2>/dev/null | grep -v '^lo ' || true
  done
  echo "== neighbours"
  ip -n $NS_A neigh show dev veth-a 2>/dev/null | sed "s/^/$NS_A: /" || true
  ip -n $NS_B neigh show dev veth-b 2>/dev/null | sed "s/^/$NS_B: /" || true
  echo "== router"
  echo "ip_forward=$(ip netns exec $NS_R cat /proc/sys/net/ipv4/ip_forward)"
  if command -v ethtool >/dev/null; then
    echo "veth-a $(ip netns exec $NS_A ethtool -k veth-a 2>/dev/null | grep -E '^tx-checksumming' || true)"
  fi
}

run() {
  local ns=$NS_R
  case ${1:-} in
    a) ns=$NS_A; shift ;; b) ns=$NS_B; shift ;; r) shift ;;
  esac
  [ "${1:-}" = -- ] && shift
  [ $# -gt 0 ] || die "run: give a command after --"
  need_root; exists "$ns" || die "the test bed is not up ($PROG up)"
  if [ "$ns" = $NS_R ] && [ "$(mode_now)" = afxdp ]; then
    # ip netns exec remounts /sys, hiding bpffs: mount it again for programs that pin maps.
    exec ip netns exec "$ns" sh -c 'mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf; exec "$@"' sh "$@"
  fi
  exec ip netns exec "$ns" "$@"
}

check() {
  need_root; need ping iputils-ping
  exists $NS_A || die "the test bed is not up ($PROG up)"
  local ok=0 dst
  for dst in 10.2.0.2 fd02::2; do
    if ip netns exec $NS_A ping -c 3 -i 0.2 -W 1 "$dst" >/dev/null 2>&1; then
      say "ping $NS_A -> $dst: ok"
    else
      say "ping $NS_A -> $dst: FAILED"; ok=1
    fi
  done
  return $ok
}

cmd=${1:-help}; shift || true
case $cmd in
  up) up "$@" ;;
  down) down ;;
  status) status ;;
  run) run "$@" ;;
  check) check ;;
  arp) need_root; [ $# -ge 1 ] || die "arp wants MAC_A MAC_B or auto"; static_arp "$@" ;;
  offloads) need_root; [ "${1:-}" = on ] || [ "${1:-}" = off ] || die "offloads on|off"; offloads "$1"; say "offloads $1" ;;
  help|-h|--help) usage 0 ;;
  *) usage 2 ;;
esac
