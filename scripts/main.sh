#!/usr/bin/env bash
# Installs what is needed, builds, and runs the main job: `ffr-bench` with no arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
./build/ffr-bench "$@"
