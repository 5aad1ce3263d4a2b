#!/usr/bin/env bash
# Runs a bounded, rotating slice of the long tests (the ones that skip under
# -short), so that coverage accumulates across CI runs without making any one
# run slow. The slice is picked by DLOG_SLICE (an integer; default: the day of
# the year times 24 plus the hour, so consecutive runs rotate) over the sorted
# list of packages that have long tests; DLOG_SLICE_SIZE packages per run
# (default 3). DLOG_SLICE=all runs every package.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t pkgs < <(grep -rl --include='*_test.go' 'testing.Short()' . \
  | xargs -n1 dirname | sort -u | sed 's#^\./#./#')
n=${#pkgs[@]}
[ "$n" -gt 0 ] || { echo "long-slice: no long tests"; exit 0; }
size=${DLOG_SLICE_SIZE:-3}
slice=${DLOG_SLICE:-$(( 10#$(date -u +%j) * 24 + 10#$(date -u +%H) ))}
if [ "$slice" = all ]; then
  chosen=("${pkgs[@]}")
else
  chosen=()
  for ((i = 0; i < size && i < n; i++)); do
    chosen+=("${pkgs[$(( (slice * size + i) % n ))]}")
  done
fi
echo "long-slice $slice: ${chosen[*]}"
go test -race -count=1 -timeout 12m "${chosen[@]}"
