#!/usr/bin/env bash
# Fetches real packet captures shipped inside Debian packages, without installing them
# (apt-get download + dpkg-deb -x), into captures/ (git-ignored):
#   captures/real.pcap      pathspider's one hour of real Ethernet/IPv4/TCP traffic (62,781 packets)
#   captures/tcp_ecn.pcap   pathspider, TCP with ECN
#   captures/http.pcap, captures/dns_icmp.pcap, captures/nb6-http.pcap   python3-dpkt examples
# With tcprewrite installed it also writes captures/real-ab.pcap: real.pcap readdressed to
# flow host A (10.1.0.2) -> steerd -> host B (10.2.0.2) on the netns test bed.
# Usage: scripts/get-captures.sh [DIR]     (needs apt-get; no root needed for download)
set -euo pipefail
D=$(realpath -m "${1:-$(dirname "$0")/../captures}")
mkdir -p "$D/debs" "$D/root"
if [ ! -s "$D/real.pcap" ]; then
  (cd "$D/debs" && apt-get download pathspider python3-dpkt >/dev/null 2>&1 \
     || { apt-get update -qq >/dev/null 2>&1 && apt-get download pathspider python3-dpkt; })
  for f in "$D"/debs/*.deb; do dpkg-deb -x "$f" "$D/root"; done
  cp "$D/root/usr/lib/python3/dist-packages/pathspider/tests/data/real.pcap" "$D/real.pcap"
  cp "$D/root/usr/lib/python3/dist-packages/pathspider/tests/data/tcp_ecn.pcap" "$D/tcp_ecn.pcap" 2>/dev/null || true
  for p in http dns_icmp nb6-http; do
    cp "$D/root/usr/share/doc/python3-dpkt/examples/data/$p.pcap" "$D/$p.pcap" 2>/dev/null || true
  done
fi
if command -v tcprewrite >/dev/null && [ ! -s "$D/real-ab.pcap" ]; then
  tcprewrite --infile="$D/real.pcap" --outfile="$D/real-ab.pcap" \
    --enet-smac=02:00:00:00:01:02 --enet-dmac=02:00:00:00:01:01 \
    --srcipmap=0.0.0.0/0:10.1.0.2/32 --dstipmap=0.0.0.0/0:10.2.0.2/32 --fixcsum
fi
ls -l "$D"/*.pcap
