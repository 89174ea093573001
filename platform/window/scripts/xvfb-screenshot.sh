#!/usr/bin/env bash
# Opens the triangle example in a real window on an in-memory X server (Xvfb) and takes a
# screenshot of the display. Needs: apt-get install -y xvfb x11-apps imagemagick
# (and Mesa: GL/llvmpipe works as is, `mesa-vulkan-drivers libvulkan1` adds Vulkan/lavapipe).
#
#   platform/window/scripts/xvfb-screenshot.sh [out.png]      (WGPU_BACKEND=gl|vulkan honoured)
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=${1:-triangle-window.png}
display=:${XVFB_DISPLAY:-97}

cargo build -q -p interstice-window --example triangle
Xvfb "$display" -screen 0 800x600x24 -nolisten tcp &
xvfb=$!
trap 'kill "$app" "$xvfb" 2>/dev/null || true' EXIT
for _ in $(seq 50); do xdpyinfo -display "$display" >/dev/null 2>&1 && break; sleep 0.1; done

DISPLAY=$display target/debug/examples/triangle &
app=$!
# Let the window map and show some frames (llvmpipe is slow to start).
sleep "${SETTLE_SECONDS:-4}"
kill -0 "$app" || { echo "the example exited early" >&2; exit 1; }
# /usr/local/bin/convert may be a stand-in on some machines; prefer the packaged one.
convert=$(command -v /usr/bin/convert || command -v convert)
xwd -root -display "$display" | "$convert" xwd:- "$out"
echo "screenshot: $out"
