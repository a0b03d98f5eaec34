#!/usr/bin/env bash
# Build the C core with AddressSanitizer + UndefinedBehaviorSanitizer into a scratch folder and run the tests
# that drive the kernel (simulator, oracle comparison, bad input) against it.
# Usage: tools/sanitize.sh [python]   (make sanitize uses the project's .venv)
set -euo pipefail
# absolute interpreter path: the tests below run from a scratch folder
PY=$("${1:-python3}" -c 'import sys; print(sys.executable)')
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake -S "$root" -B "$work/build" -G Ninja -DS2SIM_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DPython_EXECUTABLE="$PY" > "$work/cmake.log"
cmake --build "$work/build" > "$work/build.log"
# A shadow package: the Python sources of this tree plus the instrumented extension.
mkdir -p "$work/pkg"
cp -r "$root/s2sim" "$work/pkg/s2sim"
rm -f "$work/pkg/s2sim"/_core*.so
cp "$work/build"/_core*.so "$work/pkg/s2sim/"
# Python runs with -S so site-packages' .pth hooks (an editable install's import redirect) cannot swap the
# instrumented extension for the installed one; site-packages itself stays importable through PYTHONPATH.
site=$("$PY" -c 'import sysconfig; p = sysconfig.get_paths(); print(p["purelib"] + ":" + p["platlib"])')
export PYTHONPATH="$work/pkg:$site"
cd "$work"
export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
core=$("$PY" -S -c 'import s2sim._core as c; print(c.__file__)')
case "$core" in
  "$work/pkg/"*) ;;
  *) echo "sanitize: imported $core instead of the instrumented build" >&2; exit 1 ;;
esac
# --capture=sys leaves fd 2 alone, so a sanitizer report is printed before the abort
"$PY" -S -m pytest -q -p no:cacheprovider --capture=sys --rootdir "$root" \
    "$root/tests/test_simulator.py" "$root/tests/test_oracle_vs_kernel.py" "$root/tests/test_bad_input.py" "$root/tests/test_mutation.py" \
    "$root/tests/test_run_control.py" "$root/tests/test_fuzz.py::test_fuzz_category[api]" \
    "$root/tests/test_kernel_paths.py" \
    -k "not test_import_is_light"
# the QAT neuron loop (csrc/chip_neuron.c), driven from torch tensors
"$PY" -S -m pytest -q -p no:cacheprovider --capture=sys --rootdir "$root" "$root/tests/test_chip_neuron.py"
