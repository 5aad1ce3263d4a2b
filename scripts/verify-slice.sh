#!/usr/bin/env bash
# Runs a bounded, rotating slice of the fault scenarios of `dlog verify`
# (see docs/verification.md), so that coverage accumulates across CI runs
# without making any one run slow: about 10 minutes on 2 cores.
#
# The slice is picked by DLOG_VERIFY_SLICE (an integer; default: the day of
# the year times 24 plus the hour) over the sorted scenario list:
# DLOG_VERIFY_SLICE_SIZE scenarios per run (default 5), each run for
# DLOG_VERIFY_DURATION (default 60s). Odd slices run against the proxy tier
# (dlog proxy + client package), even ones against writer agents, unless
# DLOG_VERIFY_TARGET says otherwise. DLOG_VERIFY_SLICE=all runs every
# scenario. DLOG_VERIFY_SCENARIOS=a,b overrides the choice.
#
# Self-contained: builds the binary from this checkout, runs, and exits
# non-zero on any violation. A failing run's history, drain, process logs
# and data directories are kept under DLOG_VERIFY_KEEP (default
# $TMPDIR/dlog-verify-failed) and named in the output; `dlog verify check
# DIR` re-checks one.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d "${TMPDIR:-/tmp}/dlog-verify-slice.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/dlog" ./cmd/dlog
# Scenarios that inject faults through failpoints (fsync-eio) run a build
# with the dlogbugs tag; its bug switches stay off.
go build -tags dlogbugs -o "$work/dlog-failpoints" ./cmd/dlog

mapfile -t all < <("$work/dlog" verify --list -o json | grep -o '"scenario":"[^"]*"' | cut -d'"' -f4 | sort)
n=${#all[@]}
[ "$n" -gt 0 ] || { echo "verify-slice: no scenarios" >&2; exit 1; }

slice=${DLOG_VERIFY_SLICE:-$(( 10#$(date -u +%j) * 24 + 10#$(date -u +%H) ))}
size=${DLOG_VERIFY_SLICE_SIZE:-5}
duration=${DLOG_VERIFY_DURATION:-60s}
if [ -n "${DLOG_VERIFY_SCENARIOS:-}" ]; then
  chosen=${DLOG_VERIFY_SCENARIOS}
elif [ "$slice" = all ]; then
  chosen=all
else
  picked=()
  for ((i = 0; i < size && i < n; i++)); do
    picked+=("${all[$(( (slice * size + i) % n ))]}")
  done
  chosen=$(IFS=,; echo "${picked[*]}")
fi
target=${DLOG_VERIFY_TARGET:-}
if [ -z "$target" ]; then
  if [ "$slice" != all ] && [ $(( slice % 2 )) -eq 1 ]; then target=proxy; else target=embedded; fi
fi
keep=${DLOG_VERIFY_KEEP:-${TMPDIR:-/tmp}/dlog-verify-failed}

echo "verify-slice $slice: $chosen (target $target, $duration each)"
"$work/dlog" verify --scenario "$chosen" --duration "$duration" --target "$target" \
  --bin "$work/dlog" --failpoint-bin "$work/dlog-failpoints" --dir "$work/runs" --keep "$keep"
