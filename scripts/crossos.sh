#!/usr/bin/env bash
# Cross-OS build check: every package, test binaries included, must vet and
# compile for Windows and macOS (the OSes the routing sends work to).
# scripts/test.sh runs it before the tests, and the ci/ pipeline runs it too.
# Usage: ./scripts/crossos.sh [goos/goarch ...]
#   default targets: windows/amd64 darwin/amd64 darwin/arm64
# The targets run in parallel; each runs `go vet ./...` and then compiles
# the test binary of every package (`go test -c`, binaries thrown away).
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(windows/amd64 darwin/amd64 darwin/arm64)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # goos/goarch
  local goos=${1%/*} goarch=${1#*/} out="$tmp/${1//\//-}"
  mkdir -p "$out"
  {
    GOOS=$goos GOARCH=$goarch CGO_ENABLED=0 go vet ./... &&
      # One go invocation compiles and links every package's test binary;
      # -o /dev/null accepts several packages and discards the binaries.
      GOOS=$goos GOARCH=$goarch CGO_ENABLED=0 go test -c -o /dev/null ./... | { grep -v '\[no test files\]$' || true; }
  } >"$out/log" 2>&1
}

start=$SECONDS
pids=()
for t in "${targets[@]}"; do
  check "$t" & pids+=($!)
done
failed=()
for i in "${!targets[@]}"; do
  if ! wait "${pids[$i]}"; then failed+=("${targets[$i]}"); fi
done
for t in "${failed[@]}"; do
  echo "cross-OS check failed for $t (GOOS=${t%/*} GOARCH=${t#*/} go vet ./... && go test -c ./...):" >&2
  cat "$tmp/${t//\//-}/log" >&2
done
[ ${#failed[@]} -eq 0 ] || exit 1
echo "cross-OS check ok for ${targets[*]} in $((SECONDS - start))s"
