#!/usr/bin/env bash
# Reserves 2 MB hugepages and mounts a hugetlbfs for DPDK (steerd's dpdk backend,
# dpdk-testpmd, l3fwd). Needs root. Idempotent.
#
#   scripts/hugepages.sh [PAGES] [DIR]     reserve PAGES (default 1024 = 2 GB), mount DIR
#                                          (default /dev/hugepages-steerd)
#   scripts/hugepages.sh status            what is reserved, free and mounted
#   scripts/hugepages.sh release [DIR]     unmount DIR and give the pages back
#
# Then run steerd with [dpdk] huge_dir = "DIR" (or leave huge_dir unset: the EAL finds a
# hugetlbfs mount by itself) and no_huge = false. On NUMA machines the pages are spread
# over the nodes by the kernel; per node: /sys/devices/system/node/nodeN/hugepages/.
set -euo pipefail

status() {
  grep -E '^(HugePages_Total|HugePages_Free|Hugepagesize)' /proc/meminfo
  grep hugetlbfs /proc/mounts || echo "no hugetlbfs mounted"
}

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "hugepages.sh: needs root (writes /proc/sys/vm/nr_hugepages, mounts hugetlbfs)" >&2
    exit 1
  fi
}

case "${1:-}" in
  status)
    status
    exit 0
    ;;
  release)
    need_root
    dir=${2:-/dev/hugepages-steerd}
    if grep -q " $dir hugetlbfs " /proc/mounts; then umount "$dir"; fi
    echo 0 > /proc/sys/vm/nr_hugepages
    status
    exit 0
    ;;
esac

need_root
pages=${1:-1024}
dir=${2:-/dev/hugepages-steerd}
case "$pages" in
  ''|*[!0-9]*) echo "hugepages.sh: PAGES must be a number, got '$pages'" >&2; exit 2 ;;
esac
cur=$(awk '/^HugePages_Total/ {print $2}' /proc/meminfo)
if [ "$cur" -lt "$pages" ]; then
  echo "$pages" > /proc/sys/vm/nr_hugepages
fi
got=$(awk '/^HugePages_Total/ {print $2}' /proc/meminfo)
if [ "$got" -lt "$pages" ]; then
  echo "hugepages.sh: asked for $pages pages, the kernel gave $got (memory fragmented or too little free; try fewer, or reserve at boot with hugepages=$pages on the kernel command line)" >&2
fi
mkdir -p "$dir"
if ! grep -q " $dir hugetlbfs " /proc/mounts; then
  mount -t hugetlbfs -o pagesize=2M nodev "$dir"
fi
status
echo "hugepages.sh: ok: use [dpdk] huge_dir = \"$dir\""
