#!/usr/bin/env bash
# Build the C core with AddressSanitizer + UndefinedBehaviorSanitizer into a scratch folder and run the tests
# that drive the kernel (simulator, oracle comparison, bad input) against it.
# Usage: tools/sanitize.sh [python]   (make sanitize uses the project's .venv)
set -euo pipefail
PY=${1:-python3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake -S "$root" -B "$work/build" -G Ninja -DS2SIM_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DPython_EXECUTABLE="$("$PY" -c 'import sys; print(sys.executable)')" > "$work/cmake.log"
cmake --build "$work/build" > "$work/build.log"
# A shadow package: the Python sources of this tree plus the instrumented extension.
mkdir -p "$work/pkg"
cp -r "$root/s2sim" "$work/pkg/s2sim"
rm -f "$work/pkg/s2sim"/_core*.so
cp "$work/build"/_core*.so "$work/pkg/s2sim/"
export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd "$work"
# --capture=sys leaves fd 2 alone, so a sanitizer report is printed before the abort
PYTHONPATH="$work/pkg" "$PY" -m pytest -q -p no:cacheprovider --capture=sys --rootdir "$root" \
    "$root/tests/test_simulator.py" "$root/tests/test_oracle_vs_kernel.py" "$root/tests/test_bad_input.py" \
    -k "not test_import_is_light"
