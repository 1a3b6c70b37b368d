#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 30) and exits non-zero
# if any target crashes (a panic, a failed invariant, or a sanitizer report).
# The targets are fuzz/Cargo.toml's [[bin]]s (`cargo fuzz list`): classify, nsh, pcap,
# ipv6_ext, mark (the packet marker, steerd::ipm), routes_file (the routes-file parser),
# telemetry_csv (the CSV `tpe eval --data` reads), link_messages (the rtnetlink walk) and
# config (the configuration parser and validator, seeded with conf/ itself).
#
#   scripts/fuzz.sh [SECONDS]
#
# Installs cargo-fuzz if missing. The toolchain here is stable, so RUSTC_BOOTSTRAP=1 lets
# cargo-fuzz pass its nightly-only flags (-Zsanitizer=address). Seed corpora in
# fuzz/corpus/<target> are read, never written: new inputs go to a temporary directory.
# Crash inputs land in fuzz/artifacts/<target>/ (reproduce with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <file>` in fuzz/).
set -euo pipefail

secs="${1:-30}"
case "$secs" in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== building fuzz targets (release, ASan, its own target dir fuzz/target)"
cargo fuzz build

failed=()
for t in $(cargo fuzz list); do
    mkdir -p "$work/corpus/$t"
    seeds=()
    [ -d "corpus/$t" ] && seeds=("corpus/$t")
    # The shipped configurations are the config target's seeds, read where they are.
    [ "$t" = config ] && seeds+=("$root/conf")
    echo "== $t: ${secs}s"
    if cargo fuzz run "$t" "$work/corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$secs" -print_final_stats=1 >"$work/$t.log" 2>&1; then
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$work/$t.log" |
            sed 's/^/   /'
        grep -E '^#[0-9]+.*DONE' "$work/$t.log" | tail -n 1 | sed 's/^/   /' || true
    else
        echo "!! $t FAILED; last lines of its log:"
        tail -n 40 "$work/$t.log" | sed 's/^/   /'
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "== crashed: ${failed[*]} (inputs in fuzz/artifacts/)"
    exit 1
fi
echo "== all fuzz targets ran ${secs}s without a crash"
