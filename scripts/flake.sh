#!/usr/bin/env bash
# The flake gate: runs the distributed tests N times with two CPU hogs
# running (busy loops, one per core of a 2-core CI runner), and prints the
# failures per test name and a total. The target is 0.
# Usage: ./scripts/flake.sh [N [LANES]]    (./scripts/flake.sh help: this text)
#   N      runs in all (default 20)
#   LANES  runs going at once (default 1); the hogs stay two either way, so
#          more lanes load the machine more, never less
set -uo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set /{/^set /d;s/^# \{0,1\}//;p}' "$0"; }
case "${1:-}" in
  help | -h | -help | --help) usage; exit 0 ;;
esac
n=${1:-20}
lanes=${2:-1}
# Whole numbers of at least 1: with none, no run would report anything.
for v in "$n" "$lanes"; do
  case "$v" in
    '' | *[!0-9]*) v=0 ;;
  esac
  if [ "$((10#$v))" -lt 1 ]; then
    echo "$0: N and LANES must be whole numbers of at least 1" >&2; usage >&2; exit 2
  fi
done

hogs=()
logdir=$(mktemp -d)
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
one_run() { # run number
  local run=$1 log="$logdir/run$1.txt"
  if go test -race -count=1 -timeout 20m "${pkgs[@]}" >"$log" 2>&1; then
    echo "run $run/$n: ok"
  else
    echo "run $run/$n: FAILED"
    touch "$logdir/failed$run"
    # Build failures and panics have no "--- FAIL" line: show their head.
    grep -q -- '--- FAIL: ' "$log" || sed -n 1,40p "$log"
  fi
}
lane_pids=()
for lane in $(seq 1 "$lanes"); do
  (
    for run in $(seq "$lane" "$lanes" "$n"); do one_run "$run"; done
  ) &
  lane_pids+=($!)
done
wait "${lane_pids[@]}"
failed_runs=$(find "$logdir" -name 'failed*' | wc -l)
if [ "$failed_runs" -gt 0 ]; then
  keep=$(mktemp -d "${TMPDIR:-/tmp}/modpipe-flake.XXXXXX")
  for f in "$logdir"/failed*; do
    r=${f##*failed}
    cp "$logdir/run$r.txt" "$keep/run$r.log"
  done
  echo "logs of failed runs kept in $keep"
fi

echo
echo "failures per test ($n runs with two CPU hogs):"
# Subtests fail their parents too; count every name as reported.
cat "$logdir"/run*.txt | sed -n 's/^ *--- FAIL: \([^ ]*\).*/\1/p' | sort | uniq -c | sort -rn
total=$(cat "$logdir"/run*.txt | grep -c -- '--- FAIL: ')
echo "total: $total failed tests in $failed_runs of $n runs"
[ "$failed_runs" -eq 0 ]
