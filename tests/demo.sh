#!/usr/bin/env bash
# make demo: run the built-in default image in both modes.
set -euo pipefail
cd "$(dirname "$0")/.."
HVRUN=${HVRUN:-build/hvrun}
img=hvrun/busybox
echo "== hvrun container $img"
"$HVRUN" container "$img" sh -c 'echo "hello from a container: kernel $(uname -r), pid $$"'
echo "== hvrun vm $img"
"$HVRUN" vm "$img" sh -c 'echo "hello from a microVM: kernel $(uname -r), pid $$"'
