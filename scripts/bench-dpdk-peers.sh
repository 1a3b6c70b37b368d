#!/usr/bin/env bash
# steerd on DPDK side by side with DPDK's own l3fwd (LPM) and testpmd (io forwarding, the
# ceiling), on the same vdevs and the same forwarding core. Needs root. Prints one JSON
# object on stdout (progress on stderr):
#
#   {"lpm":   {"steerd_mpps", "l3fwd_mpps", "ratio"},
#    "steer": {"steerd_mpps", "l3fwd_mpps", "ratio"},
#    "testpmd_io_mpps", ...}
#
# In:  net_pcap0,rx_pcap=CAPTURE,infinite_rx=1 (a generated capture of 64-byte IPv4/UDP
#      frames to 198.18.1.0/24, which l3fwd's built-in LPM table sends to port 1)
# Out: net_null0,no-rx=1
# lpm:   steerd and l3fwd forward the same capture by LPM.
# steer: steerd forwards the same flows behind valid NSH steering headers (steering fast
#        path, header removed on egress); l3fwd the same packets without them (its
#        figure is the lpm one: same runs).
# Runs alternate (steerd-lpm, l3fwd, steerd-steer, testpmd) ROUNDS times; each figure
# is the median. Rates are the out port's opackets over DURATION seconds after WARMUP
# seconds, read from each process's DPDK telemetry socket (l3fwd prints no rates).
#
# Environment: ROUNDS (3), DURATION (5), WARMUP (2), CORE (the forwarding core: the
# last one), FLOWS (1024), NO_HUGE=1 (--no-huge -m 1024 for all three instead of
# hugepages), WORK (/tmp/steerd-dpdk-peers), SKIP_INSTALL=1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-2}
FLOWS=${FLOWS:-1024}
WORK=${WORK:-/tmp/steerd-dpdk-peers}
NCPU=$(nproc)
CORE=${CORE:-$((NCPU - 1))}
MAIN=0   # EAL main lcore of steerd and testpmd (their control threads); l3fwd: -l CORE only
log() { echo "bench-dpdk-peers: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
  log "needs root (hugepages, DPDK runtime directories)"; exit 1
fi

# --- what it needs ---------------------------------------------------------------------
if [ "${SKIP_INSTALL:-}" != 1 ]; then
  if ! pkg-config --exists libdpdk 2>/dev/null || ! command -v dpdk-testpmd >/dev/null \
     || [ ! -d /usr/share/dpdk/examples/l3fwd ] || ! command -v clang >/dev/null \
     || ! command -v python3 >/dev/null; then
    log "installing DPDK, its examples, clang, python3"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends dpdk dpdk-dev libdpdk-dev dpdk-doc \
      libclang-dev clang pkg-config make gcc python3 >&2
  fi
fi
mkdir -p "$WORK"

if [ "${NO_HUGE:-}" = 1 ]; then
  MEM_EAL="--no-huge -m 1024"
  MEM_TOML='no_huge = true
mem_mb = 1024'
else
  scripts/hugepages.sh 1024 /dev/hugepages-steerd >&2
  MEM_EAL="--huge-dir /dev/hugepages-steerd"
  MEM_TOML='huge_dir = "/dev/hugepages-steerd"
mem_mb = 512'
fi

# --- DPDK's l3fwd, from Debian's dpdk-doc examples --------------------------------------
L3FWD=$WORK/l3fwd/build/l3fwd
if [ ! -x "$L3FWD" ]; then
  log "building l3fwd"
  rm -rf "$WORK/l3fwd" "$WORK/common"
  cp -r /usr/share/dpdk/examples/l3fwd /usr/share/dpdk/examples/common "$WORK/"
  # As shipped it asks for rx checksum offload, which vdevs refuse
  # ("requested Rx offloads 0xe doesn't match").
  sed -i 's/\.offloads = RTE_ETH_RX_OFFLOAD_CHECKSUM,/.offloads = 0,/' "$WORK/l3fwd/main.c"
  make -s -C "$WORK/l3fwd" >&2
fi

# --- steerd ----------------------------------------------------------------------------
log "building steerd (release, --features dpdk)"
cargo build -q --release --no-default-features --features dpdk >&2
STEERD=$ROOT/target/release/steerd

# --- captures --------------------------------------------------------------------------
KEY=62656e63686d61726b206b6579203031
ROUTES=""
for i in $(seq 0 15); do
  ROUTES+="
[[routes]]
prefix = \"198.18.$i.0/24\"
via = \"gw\"
"
done
STEERING="
[steering]
keys = [\"$KEY\"]
[[steering.destinations]]
id = 100
next_hop = \"gw\"
"
cat > "$WORK/gen.toml" <<EOF
[[ports]]
name = "out"
backend = "mem"

[[next_hops]]
name = "gw"
port = "out"
mac = "02:00:00:00:09:01"
$STEERING
EOF
"$STEERD" gen-pcap --config "$WORK/gen.toml" --out "$WORK/lpm.pcap" --flows "$FLOWS" \
  --size 64 --dst 198.18.1.0/24 --seed 7 2>&1 | sed 's/^/bench-dpdk-peers: /' >&2
"$STEERD" gen-pcap --config "$WORK/gen.toml" --out "$WORK/steer.pcap" --flows "$FLOWS" \
  --size 64 --dst 198.18.1.0/24 --seed 7 --steered 1 2>&1 | sed 's/^/bench-dpdk-peers: /' >&2

steerd_config() { # $1 = capture, $2 = file prefix
  cat <<EOF
[general]
workers = 1
pin_cores = true
first_core = $CORE
stats_interval_ms = 1000

[dpdk]
cores = "$MAIN"
$MEM_TOML
file_prefix = "$2"
log_level = "error"
vdevs = ["net_pcap0,rx_pcap=$1,infinite_rx=1", "net_null0,no-rx=1"]

[[ports]]
name = "in"
backend = "dpdk"
device = "net_pcap0"
trusted = true

[[ports]]
name = "out"
backend = "dpdk"
device = "net_null0"
queues = 0

[[next_hops]]
name = "gw"
port = "out"
mac = "02:00:00:00:09:01"
$ROUTES
$STEERING
EOF
}
steerd_config "$WORK/lpm.pcap" sdpeer-lpm > "$WORK/steerd-lpm.toml"
steerd_config "$WORK/steer.pcap" sdpeer-steer > "$WORK/steerd-steer.toml"

# --- measuring -------------------------------------------------------------------------
# rate PREFIX PORT: Mpps of PORT's opackets over DURATION s after WARMUP s, from the
# DPDK telemetry socket of the process with that file prefix.
rate() {
  python3 - "/var/run/dpdk/$1/dpdk_telemetry.v2" "$2" "$WARMUP" "$DURATION" <<'EOF'
import json, socket, sys, time
path, port, warm, dur = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
deadline = time.time() + 30
while True:
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(path)
        break
    except OSError:
        if time.time() > deadline:
            print("null"); sys.exit(0)
        time.sleep(0.1)
s.recv(4096)
def opackets():
    s.send(("/ethdev/stats,%s" % port).encode())
    return json.loads(s.recv(65536).decode())["/ethdev/stats"]["opackets"]
opackets()  # the port is up
time.sleep(warm)
a, t0 = opackets(), time.time()
time.sleep(dur)
b, t1 = opackets(), time.time()
print("%.4f" % ((b - a) / (t1 - t0) / 1e6))
EOF
}

stop() { # pid
  kill -INT "$1" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}

run_steerd() { # path
  local prefix=sdpeer-$1
  rm -rf "/var/run/dpdk/$prefix"
  "$STEERD" run --config "$WORK/steerd-$1.toml" --quiet --metrics-listen off \
    --ctl-socket off --duration $((WARMUP + DURATION + 20)) --json "$WORK/steerd-$1.json" \
    > "$WORK/steerd-$1.log" 2>&1 &
  local pid=$!
  local r; r=$(rate "$prefix" 1)
  stop "$pid"; wait "$pid" 2>/dev/null || true
  echo "$r"
}

run_l3fwd() {
  local prefix=sdpeer-l3fwd
  rm -rf "/var/run/dpdk/$prefix"
  # shellcheck disable=SC2086
  "$L3FWD" -l "$CORE" -n 1 $MEM_EAL --file-prefix "$prefix" --no-pci --log-level error \
    --vdev "net_pcap0,rx_pcap=$WORK/lpm.pcap,infinite_rx=1" --vdev "net_null0,no-rx=1" \
    -- -p 0x3 -P --lookup=lpm --config="(0,0,$CORE)" --parse-ptype \
    > "$WORK/l3fwd.log" 2>&1 &
  local pid=$!
  local r; r=$(rate "$prefix" 1)
  stop "$pid"; wait "$pid" 2>/dev/null || true
  echo "$r"
}

run_testpmd() {
  local prefix=sdpeer-testpmd
  rm -rf "/var/run/dpdk/$prefix"
  # Without -i testpmd forwards until a line arrives on stdin (or SIGINT).
  # shellcheck disable=SC2086
  dpdk-testpmd -l "$MAIN,$CORE" -n 1 $MEM_EAL \
    --file-prefix "$prefix" --no-pci --log-level error \
    --vdev "net_pcap0,rx_pcap=$WORK/lpm.pcap,infinite_rx=1" --vdev "net_null0,no-rx=1" \
    -- --nb-cores=1 --forward-mode=io --auto-start \
    < <(sleep $((WARMUP + DURATION + 25)); echo) > "$WORK/testpmd.log" 2>&1 &
  local pid=$!
  local r; r=$(rate "$prefix" 1)
  stop "$pid"; wait "$pid" 2>/dev/null || true
  echo "$r"
}

S_LPM=(); L3=(); S_STEER=(); TP=()
for r in $(seq "$ROUNDS"); do
  a=$(run_steerd lpm);   log "round $r: steerd lpm   $a Mpps"; S_LPM+=("$a")
  b=$(run_l3fwd);        log "round $r: l3fwd lpm    $b Mpps"; L3+=("$b")
  c=$(run_steerd steer); log "round $r: steerd steer $c Mpps"; S_STEER+=("$c")
  d=$(run_testpmd);      log "round $r: testpmd io   $d Mpps"; TP+=("$d")
done

frame() { echo $(( ($(stat -c %s "$1") - 24) / FLOWS - 16 )); }
python3 - "${S_LPM[*]}" "${L3[*]}" "${S_STEER[*]}" "${TP[*]}" "$CORE" "${NO_HUGE:-0}" \
  "$DURATION" "$ROUNDS" "$FLOWS" "$(frame "$WORK/lpm.pcap")" "$(frame "$WORK/steer.pcap")" <<'EOF'
import json, statistics, sys
def nums(s):
    return [float(x) for x in s.split() if x != "null"]
sl, l3, ss, tp = (nums(a) for a in sys.argv[1:5])
med = lambda v: round(statistics.median(v), 3) if v else None
ratio = lambda a, b: round(a / b, 3) if a and b else None
out = {
    "lpm": {"steerd_mpps": med(sl), "l3fwd_mpps": med(l3), "ratio": ratio(med(sl), med(l3))},
    "steer": {"steerd_mpps": med(ss), "l3fwd_mpps": med(l3), "ratio": ratio(med(ss), med(l3))},
    "testpmd_io_mpps": med(tp),
    "runs": {"steerd_lpm": sl, "l3fwd_lpm": l3, "steerd_steer": ss, "testpmd_io": tp},
    "core": int(sys.argv[5]), "no_huge": sys.argv[6] == "1",
    "duration_s": float(sys.argv[7]), "rounds": int(sys.argv[8]), "flows": int(sys.argv[9]),
    "frame_bytes": {"lpm": int(sys.argv[10]), "steer": int(sys.argv[11])},
}
print(json.dumps(out))
EOF
