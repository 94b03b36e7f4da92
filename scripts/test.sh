#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test (CUDA tests skip, saying why, without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
