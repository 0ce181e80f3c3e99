#!/usr/bin/env bash
# The whole test suite: formatting, vet, the cross-OS builds (scripts/crossos.sh),
# and every test with the race detector.
# Usage: ./scripts/test.sh            (what CI runs)
set -euo pipefail
cd "$(dirname "$0")/.."

# Tests start their own redis-server, and drive a terminal with tmux;
# install what is missing (Debian/Ubuntu; needs root or sudo).
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} from Debian packages" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The S3 artifact store is tested against versitygw (Apache-2.0), a real
# S3-compatible server; install it into $(go env GOPATH)/bin when missing.
export PATH="$PATH:$(go env GOPATH)/bin"
if ! command -v versitygw >/dev/null 2>&1; then
  echo "installing versitygw v1.8.0 with go install" >&2
  GOBIN="$(go env GOPATH)/bin" go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:" >&2; echo "$unformatted" >&2; exit 1
fi
go vet ./...
# Every package and test binary must build for Windows and macOS too.
./scripts/crossos.sh
go test -race -count=1 -timeout 20m ./...

# Fuzz every decoder of data read back from Redis, artifact manifests, URL
# redaction and the go test -json parser, briefly (5s each; `go test -fuzz`
# takes one target at a time).
for target in FuzzDecodeLease FuzzDecodeRegistration FuzzDecodeAssignment FuzzDecodeResult \
  FuzzParseState FuzzAnnouncement FuzzBatchAnnouncement FuzzBeatAndClaimRecord FuzzClaimReply \
  FuzzFastEncodeMatchesJSON; do
  go test -run '^$' -fuzz "^${target}\$" -fuzztime 5s ./distributed/redis/
done
go test -run '^$' -fuzz '^FuzzURL$' -fuzztime 5s ./internal/redact/
go test -run '^$' -fuzz '^FuzzParser$' -fuzztime 5s ./internal/gotest/
go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 5s ./internal/transfer/
