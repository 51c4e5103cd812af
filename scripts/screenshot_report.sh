#!/usr/bin/env bash
# Screenshot of a report.html in headless Chromium, to check by eye that the page reads well.
# Usage: scripts/screenshot_report.sh RUN/report.html [OUT.png] [HEIGHT]   (default OUT: next to the page)
# The browser gets a throw-away profile and every background network feature off: the page needs no network.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 3 ]]; then
    echo "usage: $0 REPORT.html [OUT.png] [HEIGHT]" >&2
    exit 2
fi
page=$(realpath "$1")
out=$(realpath -m "${2:-${page%.html}.png}")
height=${3:-2400}
browser=$(command -v chromium || command -v chromium-browser || true)
if [[ ! -f "$page" ]]; then
    echo "error: $1 does not exist" >&2
    exit 2
fi
if [[ -z "$browser" ]]; then
    echo "error: no chromium found; install it with: apt-get install -y chromium" >&2
    exit 2
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$profile" --window-size="1280,$height" \
    --screenshot="$out" "file://$page" 2>/dev/null
echo "$out"
