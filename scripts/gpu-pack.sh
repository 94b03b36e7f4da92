#!/usr/bin/env bash
# Packs what a GPU machine without Debian packages or network needs for scripts/gpu-check.sh into
# one ignored folder, .gpu-pack/ (carried by the device tool: README "GPU"):
#   bin.tar.xz   ffr-bench and ffr_tests from a CUDA build here (sm_80 + sm_90 + PTX)
#   libs.tar.xz  their non-CUDA shared libraries (OpenBLAS, libgfortran, libquadmath, zlib) in lib/,
#                and libstdc++/libgcc_s in lib-cxx/ (used there only if the system's are too old).
#                The CUDA libraries (cudart, cuBLAS, cuDNN) come from PyTorch's wheels there.
#   deps.tar.xz  the fallback, if those binaries do not start there: a prefix/ with the header-only
#                dependencies (CLI11, nlohmann-json, stb), GoogleTest, zlib and OpenBLAS headers and
#                their CMake files, to build there (gpu-check.sh does)
#   data.tar.xz  a small Spurious Fashion-MNIST for the one-epoch demo (Fashion-MNIST is a Debian
#                package here, absent there)
#   MANIFEST.txt what was packed, from which commit and build
# Usage: bash scripts/gpu-pack.sh [BUILD_DIR]   (default build/, a CUDA build; builds ffr-bench and
#        ffr_tests there first if they are out of date)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
build=${1:-build}
pack=$repo/.gpu-pack
max_mib=40

fail() { echo "gpu-pack: error: $*" >&2; exit 1; }
[[ -f $build/CMakeCache.txt ]] || fail "$build is not a CMake build folder (cmake -S . -B build -G Ninja first)"
grep -q '^FFR_ENABLE_CUDA:BOOL=OFF' "$build/CMakeCache.txt" && fail "$build is a CPU-only build (FFR_ENABLE_CUDA=OFF)"
echo "== building ffr-bench and ffr_tests in $build"
cmake --build "$build" --target ffr-bench ffr_tests >/dev/null
for b in ffr-bench ffr_tests; do
  ldd "$build/$b" | grep -q libcudart || fail "$build/$b is not linked with CUDA: no CUDA backend in this build"
done
# The architectures nvcc compiles for, from the build's own flags (cmake/cuda.cmake sets them).
archs=$(grep -o 'code=\[[a-z_0-9,]*\]' "$build/build.ninja" | sort -u | tr '\n' ' ')
[[ $archs == *sm_90* ]] || fail "$build compiles no sm_90 code (nvcc flags: ${archs:-none})"

stage=$(mktemp -d "${TMPDIR:-/tmp}/ffr-gpu-pack.XXXXXX")
trap 'rm -rf "$stage"' EXIT
rm -rf "$pack"
mkdir -p "$pack" "$stage/bin" "$stage/lib" "$stage/lib-cxx"
xz_pack() { tar -C "$stage" -cf - "${@:2}" | xz -T0 -9 >"$pack/$1"; }

# ---- binaries and their non-CUDA libraries ----
cp "$build/ffr-bench" "$build/ffr_tests" "$stage/bin/"
declare -A seen=()
while read -r name path; do
  [[ -n ${seen[$name]:-} ]] && continue
  seen[$name]=1
  case $name in
    libcuda.so* | libcudart.so* | libcublas*.so* | libcudnn*.so* | libnvJitLink*.so*) ;;  # from the wheels there
    linux-vdso* | ld-linux* | libc.so* | libm.so* | libdl.so* | libpthread.so* | librt.so*) ;;  # glibc: the system's
    libz.so*) ;;  # every system has it (Python too): not shadowed here; the fallback build's copy is in prefix/
    libstdc++.so* | libgcc_s.so*) cp -L "$path" "$stage/lib-cxx/$name" ;;
    *) cp -L "$path" "$stage/lib/$name" ;;
  esac
done < <(ldd "$build/ffr-bench" "$build/ffr_tests" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}')
[[ -f $stage/lib/libopenblas.so.0 ]] || fail "ldd found no libopenblas.so.0 for the binaries"
xz_pack bin.tar.xz bin
# For a build there: the unversioned names the linker looks for.
ln -s libopenblas.so.0 "$stage/lib/libopenblas.so"
xz_pack libs.tar.xz lib lib-cxx

# ---- the fallback build's dependencies: a prefix laid out like /usr ----
p=$stage/prefix
arch_dir=lib/x86_64-linux-gnu
mkdir -p "$p/include" "$p/share/cmake" "$p/$arch_dir/cmake" "$p/include/x86_64-linux-gnu"
cp -r /usr/include/CLI /usr/include/nlohmann /usr/include/stb /usr/include/gtest /usr/include/gmock "$p/include/"
cp /usr/include/zlib.h /usr/include/zconf.h "$p/include/"
cp -r /usr/include/x86_64-linux-gnu/openblas-pthread "$p/include/x86_64-linux-gnu/"
cp -r /usr/share/cmake/CLI11 /usr/share/cmake/nlohmann_json "$p/share/cmake/"
cp -r /usr/$arch_dir/cmake/GTest "$p/$arch_dir/cmake/"
cp /usr/$arch_dir/libgtest.a /usr/$arch_dir/libgtest_main.a /usr/$arch_dir/libgmock.a /usr/$arch_dir/libgmock_main.a \
  "$p/$arch_dir/"
ln -s ../../../lib/libopenblas.so.0 "$p/$arch_dir/libopenblas.so"
cp -L /usr/$arch_dir/libz.so.1 "$p/$arch_dir/libz.so.1"
ln -s libz.so.1 "$p/$arch_dir/libz.so"
xz_pack deps.tar.xz prefix

# ---- a small data set for the demo ----
fashion=/usr/share/datasets/fashion-mnist
if [[ -e $fashion/train-images-idx3-ubyte.gz ]]; then
  "$build/ffr-bench" prepare --out "$stage/data/sfmnist" --image-size 32 --real-per-class 200 \
    --synthetic-source-per-class 40 --heldout-source-per-class 8 --synthetic-eval-per-group 5 --eval-per-class 60 \
    --threads "$(nproc)" >/dev/null
  xz_pack data.tar.xz data
else
  echo "note: no Fashion-MNIST ($fashion): no demo data packed; gpu-check.sh will skip its demo"
fi

# ---- manifest ----
{
  echo "ffr-engine GPU pack (scripts/gpu-pack.sh)"
  echo "made: $(date -u +%FT%TZ) on $(hostname) ($(. /etc/os-release && echo "$PRETTY_NAME"), glibc $(ldd --version | head -1 | awk '{print $NF}'))"
  echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!.gpu-pack' 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "build: $repo/$build, CUDA architectures $archs, $(nvcc --version 2>/dev/null | tail -1 || echo 'nvcc ?')"
  echo "libraries packed: $(ls "$stage/lib" | tr '\n' ' ')"
  echo "libraries expected there (PyTorch's NVIDIA wheels): $(ldd "$build/ffr-bench" | awk '$1 ~ /cud|cublas/ {print $1}' | tr '\n' ' ')"
  echo "files:"
  (cd "$pack" && ls -l --block-size=K ./*.tar.xz | awk '{print "  " $NF, $5}')
} >"$pack/MANIFEST.txt"

size_kib=$(du -sk "$pack" | cut -f1)
cat "$pack/MANIFEST.txt"
echo "total: $((size_kib / 1024)) MiB in $pack"
((size_kib <= max_mib * 1024)) || fail "the pack is $((size_kib / 1024)) MiB, over its ${max_mib} MiB budget (the device tool carries 64 MiB in all)"
