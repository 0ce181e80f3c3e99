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
# redaction and the go test -json parser, briefly (`go test -fuzz` takes one
# target at a time). A count of inputs, not a duration: -fuzztime 5s can hang
# or overrun under load (golang/go#75804, fixed in Go 1.27). With 10000
# inputs each the whole step takes 76s of CPU on a 2-CPU machine, so less
# than that (about 90s at most) when the machine is quiet; most of it is the
# fixed cost per target (300 inputs: 44s CPU). -timeout bounds a target that
# still hangs.
fuzz() { # package target
  go test -run '^$' -fuzz "^$2\$" -fuzztime "${FUZZ_INPUTS:-10000}x" -timeout 10m "$1"
}
for target in FuzzDecodeLease FuzzDecodeRegistration FuzzDecodeAssignment FuzzDecodeResult \
  FuzzParseState FuzzAnnouncement FuzzBatchAnnouncement FuzzBeatAndClaimRecord FuzzClaimReply \
  FuzzFastEncodeMatchesJSON; do
  fuzz ./distributed/redis/ "$target"
done
fuzz ./internal/redact/ FuzzURL
fuzz ./internal/gotest/ FuzzParser
fuzz ./internal/transfer/ FuzzDecode
