#!/usr/bin/env bash
# The flake gate: runs the distributed tests N times with two CPU hogs
# running (busy loops, one per core of a 2-core CI runner), and prints the
# failures per test name and a total. The target is 0.
# Usage: ./scripts/flake.sh N     (N defaults to 20)
set -uo pipefail
cd "$(dirname "$0")/.."

n=${1:-20}
case $n in
  '' | *[!0-9]*) echo "usage: $0 N (a number of runs)" >&2; exit 2 ;;
esac

hogs=()
logdir=$(mktemp -d)
keep=""   # logs of failed runs, kept after the script
cleanup() {
  for pid in "${hogs[@]}"; do
    kill "$pid" 2>/dev/null
  done
  wait 2>/dev/null
  rm -rf "$logdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for _ in 1 2; do
  (while :; do :; done) &
  hogs+=($!)
done

pkgs=(. ./distributed/... ./internal/cluster/)
failed_runs=0
for run in $(seq 1 "$n"); do
  log="$logdir/run$run.txt"
  if go test -race -count=1 -timeout 20m "${pkgs[@]}" >"$log" 2>&1; then
    echo "run $run/$n: ok"
  else
    failed_runs=$((failed_runs + 1))
    echo "run $run/$n: FAILED"
    # Build failures and panics have no "--- FAIL" line: show their head.
    grep -q -- '--- FAIL: ' "$log" || sed -n 1,40p "$log"
    [ -n "$keep" ] || keep=$(mktemp -d "${TMPDIR:-/tmp}/modpipe-flake.XXXXXX")
    cp "$log" "$keep/run$run.log" && echo "  log kept in $keep/run$run.log"
  fi
done

echo
echo "failures per test ($n runs with two CPU hogs):"
# Subtests fail their parents too; count every name as reported.
cat "$logdir"/run*.txt | sed -n 's/^ *--- FAIL: \([^ ]*\).*/\1/p' | sort | uniq -c | sort -rn
total=$(cat "$logdir"/run*.txt | grep -c -- '--- FAIL: ')
echo "total: $total failed tests in $failed_runs of $n runs"
[ "$failed_runs" -eq 0 ]
