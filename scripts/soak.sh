#!/usr/bin/env bash
# Soak test: runs `steerd run` (release) at full rate for DURATION, samples its resident
# memory and its /metrics every few seconds, stops it with SIGTERM (graceful drain) and
# prints one JSON line:
#   {duration_s, rss_start_kb, rss_end_kb, rss_max_kb, rss_slope_kb_per_min, packets,
#    tx_packets, mpps, drops_total, expected_drops, unexplained_drops, ..., accounted}
#
# Usage: scripts/soak.sh DURATION [CONFIG]
#   DURATION  seconds, or with a unit: 90s, 10m, 2h
#   CONFIG    a steerd config (default: the embedded one, two mem ports at full rate)
# Environment:
#   STEERD          the binary (default: target/release/steerd, built when missing)
#   SOAK_INTERVAL   seconds between samples (default 5)
#   SOAK_PORT       metrics port on 127.0.0.1 (default 19477)
#   SOAK_EXPECTED   comma-separated drop reasons the config provokes on purpose (default:
#                   the embedded config's fault kinds: ttl_expired, truncated_ipv4,
#                   bad_ipv4_checksum, bad_ipv4_version); any other drop, e.g. tx_full,
#                   counts as unexplained
#   SOAK_WORKERS    --workers for steerd (default: the config's)
# The RSS slope is a least-squares fit over the samples after a warm-up of
# min(60 s, DURATION/5), in KiB per minute: a leak shows as a steady positive slope.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 1 ] || usage
case "$1" in
  *h) DUR=$(( ${1%h} * 3600 )) ;;
  *m) DUR=$(( ${1%m} * 60 )) ;;
  *s) DUR=${1%s} ;;
  *[!0-9]*|'') usage ;;
  *) DUR=$1 ;;
esac
CONFIG=${2:-}
INTERVAL=${SOAK_INTERVAL:-5}
PORT=${SOAK_PORT:-19477}
EXPECTED=${SOAK_EXPECTED:-ttl_expired,truncated_ipv4,bad_ipv4_checksum,bad_ipv4_version}
BIN=${STEERD:-target/release/steerd}
command -v python3 >/dev/null || { echo "soak.sh: needs python3" >&2; exit 2; }
command -v curl >/dev/null || { echo "soak.sh: needs curl" >&2; exit 2; }
if [ ! -x "$BIN" ]; then
  echo "soak.sh: building $BIN" >&2
  cargo build --release --bin steerd >&2
fi

WORK=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
ARGS=(run --quiet --plain --metrics-listen "127.0.0.1:$PORT" --ctl-socket off --json "$WORK/summary.json")
[ -n "$CONFIG" ] && ARGS+=(--config "$CONFIG")
[ -n "${SOAK_WORKERS:-}" ] && ARGS+=(--workers "$SOAK_WORKERS")
"$BIN" "${ARGS[@]}" 2>"$WORK/stderr" &
PID=$!

# Wait for the metrics endpoint.
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/metrics" >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || { cat "$WORK/stderr" >&2; echo "soak.sh: steerd exited early" >&2; exit 1; }
  sleep 0.1
done

T0=$(date +%s.%N)
END=$(( $(date +%s) + DUR ))
: > "$WORK/samples"
while :; do
  NOW=$(date +%s.%N)
  RSS=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status" 2>/dev/null || echo 0)
  if curl -sf "http://127.0.0.1:$PORT/metrics" -o "$WORK/metrics" 2>/dev/null; then
    RX=$(awk '$1 == "steerd_rx_packets_total" {print $2}' "$WORK/metrics")
    DROPS=$(awk '$1 ~ /^steerd_drops_total\{/ {s += $2} END {print s + 0}' "$WORK/metrics")
  else
    RX=nan; DROPS=nan
  fi
  echo "$(python3 -c "print(round($NOW - $T0, 3))") $RSS $RX $DROPS" >> "$WORK/samples"
  [ "$(date +%s)" -ge "$END" ] && break
  sleep "$INTERVAL"
done
cp "$WORK/metrics" "$WORK/metrics.last" 2>/dev/null || true
kill -TERM "$PID"
STATUS=0
wait "$PID" || STATUS=$?
PID=

python3 - "$WORK" "$DUR" "$EXPECTED" "$STATUS" "${CONFIG:-<embedded>}" <<'EOF'
import json, sys
work, dur, expected, status, config = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
rows = []
for line in open(f"{work}/samples"):
    t, rss, rx, drops = line.split()
    rows.append((float(t), int(rss), float(rx), float(drops)))
s = json.load(open(f"{work}/summary.json"))
warm = min(60.0, dur / 5)
pts = [(t, r) for t, r, _, _ in rows if t >= warm] or [(t, r) for t, r, _, _ in rows]
n = len(pts)
if n >= 2:
    mt = sum(t for t, _ in pts) / n
    mr = sum(r for _, r in pts) / n
    var = sum((t - mt) ** 2 for t, _ in pts)
    slope = sum((t - mt) * (r - mr) for t, r in pts) / var * 60 if var else 0.0
else:
    slope = 0.0
exp = [e for e in expected.split(",") if e]
drops = s.get("drops", {})
unexplained = {k: v for k, v in drops.items() if k not in exp}
out = {
    "duration_s": round(s["duration_s"], 1),
    "config": config,
    "workers": s["workers"],
    "samples": len(rows),
    "rss_start_kb": rows[0][1],
    "rss_end_kb": rows[-1][1],
    "rss_max_kb": max(r for _, r, _, _ in rows),
    "rss_slope_kb_per_min": round(slope, 2),
    "rss_slope_from_s": warm,
    "packets": s["rx_packets"],
    "tx_packets": s["tx_packets"],
    "mpps": round(s["mpps_in"], 3),
    "drops_total": s["drops_total"],
    "expected_drops": sum(v for k, v in drops.items() if k in exp),
    "unexplained_drops": sum(unexplained.values()),
    "unexplained_by_reason": unexplained,
    "metrics_rx_last": rows[-1][2],
    "p99_ns": s["p99_ns"],
    "accounted": s["accounted"],
    "exit_status": status,
}
print(json.dumps(out))
EOF
