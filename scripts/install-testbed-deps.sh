#!/usr/bin/env bash
# Installs the Debian packages the netns test bed (scripts/testbed.sh) and its tests use:
# iproute2 (ip), ethtool (offloads), iputils-ping, iperf3, tcpreplay, tcpdump, tshark,
# netsniff-ng (trafgen), traceroute. Idempotent: packages already installed are left alone
# and nothing is fetched when all are there. Needs root (or sudo) and Debian/Ubuntu apt.
set -euo pipefail
PKGS=(iproute2 iputils-ping ethtool iperf3 tcpreplay tcpdump tshark netsniff-ng traceroute)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-testbed-deps: all installed (${PKGS[*]})"
  exit 0
fi
SUDO=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install-testbed-deps: run as root (missing: ${missing[*]})" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no instead of prompting.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
echo "install-testbed-deps: installing ${missing[*]}"
$SUDO apt-get update -q
$SUDO apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}"
