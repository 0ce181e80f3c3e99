#!/usr/bin/env bash
# The whole test suite: formatting, vet, and every test with the race detector.
# Usage: ./scripts/test.sh            (what CI runs)
set -euo pipefail
cd "$(dirname "$0")/.."

# Tests of the Redis coordinator start their own redis-server; install it
# when it is missing (Debian/Ubuntu; needs root or sudo).
if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server not found; installing it from Debian packages" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:" >&2; echo "$unformatted" >&2; exit 1
fi
go vet ./...
go test -race -count=1 -timeout 20m ./...
