#!/usr/bin/env bash
# render.sh SUMMARY.md OUT.png
#
# Screenshots a modpipe GitHub job summary (the Markdown modpipe writes to
# $GITHUB_STEP_SUMMARY) roughly as GitHub renders it: marked (GFM) for the
# Markdown, mermaid for the ```mermaid gantt chart, Debian's headless
# chromium for the picture. <details> sections are shown expanded.
#
# Needs node/npm; installs Debian's chromium (and an emoji font) with apt-get
# when missing, so run it as root. Not part of CI; see README.md.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 SUMMARY.md OUT.png" >&2
  exit 2
fi

abspath() { (cd "$(dirname "$1")" && printf '%s/%s\n' "$(pwd -P)" "$(basename "$1")"); }
summary=$(abspath "$1")
out=$(abspath "$2")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
width=${RENDER_WIDTH:-1100}

[ -f "$summary" ] || { echo "render.sh: no such file: $1" >&2; exit 2; }

# Browser and fonts (Debian packages).
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
if command -v fc-list >/dev/null && ! fc-list | grep -qi 'color emoji'; then
  need+=(fonts-noto-color-emoji) # the summary heading starts with an emoji
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "render.sh: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# marked and mermaid, exactly as pinned in package-lock.json.
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
node "$here/render.mjs" --open-details "$summary" "$work/summary.html"

chromium_run() {
  local profile
  profile=$(mktemp -d "$work/profile.XXXXXX")
  /usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --force-device-scale-factor=1 \
    --user-data-dir="$profile" --virtual-time-budget=5000 "$@" 2>"$work/chromium.log"
}

# Pass 1: let mermaid render, then read back what the page reports about itself
# (<body data-mermaid="rendered|error: ..." data-height="...">).
chromium_run --window-size="$width,1400" --dump-dom "file://$work/summary.html" >"$work/dom.html"
body=$(tr "\n" " " <"$work/dom.html" | grep -o "<body[^>]*>" | head -n1 || true)
state=$(printf '%s' "$body" | sed -n 's/.*data-mermaid="\([^"]*\)".*/\1/p' |
  sed -e 's/&quot;/"/g' -e 's/&lt;/</g' -e 's/&gt;/>/g' -e "s/&#39;/'/g" -e 's/&amp;/\&/g')
height=$(printf '%s' "$body" | sed -n 's/.*data-height="\([0-9]*\)".*/\1/p')
if [ -z "$height" ]; then
  height=1400
fi

# Pass 2: the screenshot, with the window just as tall as the page.
chromium_run --window-size="$width,$height" --screenshot="$out" "file://$work/summary.html"
[ -s "$out" ] || { echo "render.sh: chromium wrote no screenshot" >&2; cat "$work/chromium.log" >&2; exit 1; }
echo "render.sh: wrote $out (${width}x${height}, mermaid: ${state:-unknown})" >&2

case "$state" in
  rendered) ;;
  *)
    echo "render.sh: mermaid did not render cleanly: ${state:-no report from the page}" >&2
    exit 1
    ;;
esac
