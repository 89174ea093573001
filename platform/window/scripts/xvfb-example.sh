#!/usr/bin/env bash
# Runs `interstice example graphics` in a real window on an in-memory X server (Xvfb), takes a
# screenshot of the display, then changes the triangle from outside (a reducer call, an arrow
# key and a click through xdotool) and takes a second one.
# Needs: apt-get install -y xvfb x11-apps imagemagick xdotool (and Mesa: GL/llvmpipe works as
# is, `mesa-vulkan-drivers libvulkan1` adds Vulkan/lavapipe; WGPU_BACKEND=gl|vulkan honoured).
#
#   platform/window/scripts/xvfb-example.sh [first.png] [second.png]
set -euo pipefail
cd "$(dirname "$0")/../../.."
first=$(realpath -m "${1:-graphics-window.png}")
second=$(realpath -m "${2:-graphics-window-changed.png}")
display=:${XVFB_DISPLAY:-96}
port=${PORT:-18082}

cargo build -q -p interstice-cli
bin=$PWD/target/debug/interstice
home=$(mktemp -d)
export INTERSTICE_HOME=$home

Xvfb "$display" -screen 0 1024x768x24 -nolisten tcp &
xvfb=$!
trap 'kill "$app" "$xvfb" 2>/dev/null || true; rm -rf "$home"' EXIT
for _ in $(seq 50); do xdpyinfo -display "$display" >/dev/null 2>&1 && break; sleep 0.1; done

DISPLAY=$display "$bin" example graphics --port "$port" &
app=$!
for _ in $(seq 300); do
    "$bin" node ping example-graphics >/dev/null 2>&1 && break
    kill -0 "$app" || { echo "the example exited early" >&2; exit 1; }
    sleep 0.1
done
# Let the window map and show some frames (llvmpipe is slow to start).
sleep "${SETTLE_SECONDS:-3}"
# /usr/local/bin/convert may be a stand-in on some machines; prefer the packaged one.
convert=$(command -v /usr/bin/convert || command -v convert)
xwd -root -display "$display" | "$convert" xwd:- "$first"
echo "screenshot: $first"

# From the window: ArrowLeft (+15°) and a left click (the palette's next colour, red); then
# from outside, a reducer call (blue).
window=$(DISPLAY=$display xdotool search --name "Interstice graphics" | head -1)
DISPLAY=$display xdotool windowfocus --sync "$window"
DISPLAY=$display xdotool key Left
DISPLAY=$display xdotool mousemove --window "$window" 480 360 click 1
sleep 0.5
"$bin" call_reducer example-graphics graphics set_color 0 0.4 1
sleep 1
xwd -root -display "$display" | "$convert" xwd:- "$second"
echo "screenshot: $second"
"$bin" call_query example-graphics graphics get_triangle
kill -INT "$app"
wait "$app" || true
