#!/usr/bin/env bash
# Installs the Debian packages ffr-engine builds and runs with (DESIGN.md: no downloads beyond
# these). The CUDA toolkit + cuDNN are expected under /usr/local/cuda when present; without them
# the build is CPU-only.
set -euo pipefail
# clang + libclang-rt-14-dev (libFuzzer and the sanitizer runtimes): the fuzz targets and the
# fuzz_smoke test (fuzz/README.md); the build itself uses g++.
# slurm-wlm + munge: `grid --slurm --submit` and the slurm_grid test, which starts its own
# single-node Slurm (no service is enabled or started by this script). openmpi-bin + libopenmpi-dev:
# engine/comm's MPI backend (run --distributed) and the mpi_communicator and distributed_run tests.
packages=(cmake ninja-build g++ pkg-config ccache libgtest-dev libstb-dev libcli11-dev
          nlohmann-json3-dev libopenblas-dev libopenblas0-openmp libdnnl-dev zlib1g-dev dataset-fashion-mnist clang libclang-rt-14-dev
          slurm-wlm munge openmpi-bin libopenmpi-dev)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
