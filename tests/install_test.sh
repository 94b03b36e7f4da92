#!/usr/bin/env bash
# The embedding path, end to end, as an outside user takes it (ctest: install_and_embed):
#   1. cmake --install of this build tree into a temporary prefix;
#   2. the installed headers compile with only that prefix on the include path
#      (#include <ffr_engine/inference.h>, -I$PREFIX/include), and pull in no CUDA, nlohmann-json,
#      stb or CLI11 header;
#   3. examples/classify configures (find_package(ffr_engine)) and builds against the prefix,
#      once with the shared library and once with the static one;
#   4. ffr_classify's predictions on a generated checkpoint and PNGs equal the library's own
#      (written by ffr_embed_fixture from this build tree), and a bad image path is a clear error
#      (exit 1), not a crash;
#   5. the same example builds with pkg-config alone (ffr_engine.pc) and predicts the same.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR FIXTURE_PROGRAM
# Environment (set by ctest): CMAKE_COMMAND, FFR_CMAKE_GENERATOR, FFR_CXX_COMPILER,
# FFR_CXX_COMPILER_LAUNCHER (each optional). FFR_KEEP_INSTALL_TEST=1 keeps the temporary folder.
set -euo pipefail

build_dir=$(cd "$1" && pwd)
source_dir=$(cd "$2" && pwd)
fixture=$3
cmake=${CMAKE_COMMAND:-cmake}
cxx=${FFR_CXX_COMPILER:-c++}

work=$(mktemp -d "${TMPDIR:-/tmp}/ffr-install-test.XXXXXX")
if [[ "${FFR_KEEP_INSTALL_TEST:-0}" == 1 ]]; then
  echo "keeping $work"
else
  trap 'rm -rf "$work"' EXIT
fi
prefix=$work/prefix

fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== install into $prefix"
"$cmake" --install "$build_dir" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; fail "cmake --install"; }
for f in include/ffr_engine/inference.h include/ffr_engine/engine/error.h lib/cmake/ffr_engine/ffr_engineConfig.cmake; do
  [[ -f $prefix/$f ]] || fail "not installed: $f"
done
libdir=$(dirname "$(find "$prefix" -name 'libffr_engine.so' -print -quit)")
[[ -f $libdir/libffr_engine.so && -f $libdir/libffr_engine.a ]] || fail "libffr_engine.so and .a not both installed"

echo "== the public headers need only the prefix and the standard library"
"$cxx" -std=c++17 -M -I "$prefix/include" "$source_dir/examples/classify/main.cpp" >"$work/deps.txt"
headers=$(tr ' \\' '\n\n' <"$work/deps.txt" | grep '\.h' || true)
outside=$(grep -v "^$prefix/" <<<"$headers" | grep -v -E '^/usr/(include|lib/gcc)/' || true)
[[ -z $outside ]] || fail "the example includes headers outside the prefix and the system:"$'\n'"$outside"
forbidden=$(grep -i -E 'cuda|cudnn|cublas|nlohmann|stb_|CLI/' <<<"$headers" || true)
[[ -z $forbidden ]] || fail "the public headers pull in internal dependencies:"$'\n'"$forbidden"

echo "== fixture: checkpoint, images and the library's predictions"
"$fixture" "$work/fixture"
mapfile -t images <"$work/fixture/images.txt"

generator=()
[[ -n ${FFR_CMAKE_GENERATOR:-} ]] && generator=(-G "$FFR_CMAKE_GENERATOR")
launcher=()
[[ -n ${FFR_CXX_COMPILER_LAUNCHER:-} ]] && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER="$FFR_CXX_COMPILER_LAUNCHER")

for variant in shared static; do
  echo "== examples/classify against the $variant library"
  static=OFF
  [[ $variant == static ]] && static=ON
  example=$work/classify-$variant
  "$cmake" -S "$source_dir/examples/classify" -B "$example" "${generator[@]}" "${launcher[@]}" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix" \
    -DFFR_CLASSIFY_STATIC=$static >"$work/configure-$variant.log" 2>&1 \
    || { cat "$work/configure-$variant.log"; fail "configure examples/classify ($variant)"; }
  "$cmake" --build "$example" >"$work/build-$variant.log" 2>&1 \
    || { cat "$work/build-$variant.log"; fail "build examples/classify ($variant)"; }

  program=$example/ffr_classify
  libraries=$(ldd "$program")  # captured first: `ldd | grep -q` can fail on SIGPIPE under pipefail
  [[ $libraries != *"not found"* ]] || fail "unresolved libraries ($variant):"$'\n'"$libraries"
  if [[ $variant == shared ]]; then
    [[ $libraries == *"$libdir/libffr_engine.so"* ]] || fail "ffr_classify does not load the installed libffr_engine.so:"$'\n'"$libraries"
  else
    [[ $libraries != *libffr_engine* ]] || fail "the static build still loads libffr_engine.so"
  fi

  # The fixture's predictions were computed on the CPU; compare digit for digit there.
  "$program" --device cpu "$work/fixture/model.safetensors" "${images[@]}" >"$work/predicted-$variant.txt"
  diff -u "$work/fixture/expected.txt" "$work/predicted-$variant.txt" || fail "predictions differ ($variant)"
  echo "   $(wc -l <"$work/predicted-$variant.txt") predictions match the library's"

  # A bad checkpoint is a clear error naming the file, not a crash.
  if "$program" --device cpu "${images[0]}" "${images[0]}" 2>"$work/error.txt"; then fail "a PNG accepted as a checkpoint"; fi
  grep -q "${images[0]}" "$work/error.txt" || { cat "$work/error.txt"; fail "the error does not name the file"; }

  # A missing image: caught and reported (exit 1), not "terminate called" (exit 134).
  status=0
  "$program" --device cpu "$work/fixture/model.safetensors" "$work/no-such-image.png" 2>"$work/error.txt" || status=$?
  [[ $status == 1 ]] || { cat "$work/error.txt"; fail "a missing image: exit $status, expected 1"; }
  grep -q "no-such-image.png" "$work/error.txt" || { cat "$work/error.txt"; fail "the error does not name the image"; }
done

echo "== examples/classify with pkg-config only"
pc_file=$(find "$prefix" -name ffr_engine.pc -print -quit)
[[ -n $pc_file ]] || fail "not installed: ffr_engine.pc"
flags=$(PKG_CONFIG_PATH=$(dirname "$pc_file") pkg-config --cflags --libs ffr_engine) || fail "pkg-config ffr_engine"
# shellcheck disable=SC2086 # the flags are words
"$cxx" -std=c++17 -O1 "$source_dir/examples/classify/main.cpp" -o "$work/classify-pc" $flags -Wl,-rpath,"$libdir" \
  2>"$work/build-pc.log" || { cat "$work/build-pc.log"; fail "build with pkg-config flags: $flags"; }
"$work/classify-pc" --device cpu "$work/fixture/model.safetensors" "${images[@]}" >"$work/predicted-pc.txt"
diff -u "$work/fixture/expected.txt" "$work/predicted-pc.txt" || fail "predictions differ (pkg-config build)"
echo "   built with: $flags"

# With a GPU (and a CUDA build), the default device must agree with the CPU on the classes.
if "$work/classify-shared/ffr_classify" --device cuda "$work/fixture/model.safetensors" "${images[@]}" \
    >"$work/predicted-cuda.txt" 2>"$work/cuda-error.txt"; then
  cut -f1,2 "$work/fixture/expected.txt" >"$work/expected-classes.txt"
  cut -f1,2 "$work/predicted-cuda.txt" >"$work/cuda-classes.txt"
  diff -u "$work/expected-classes.txt" "$work/cuda-classes.txt" || fail "CUDA predictions differ from the CPU's"
  echo "== CUDA predictions match the CPU's"
else
  echo "== CUDA comparison skipped: $(head -c 300 "$work/cuda-error.txt")"
fi
echo "PASS"
