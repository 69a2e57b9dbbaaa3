#!/usr/bin/env bash
# Runs every test binary under BUILD/tests (argument 1, default "build") from the
# repository root, then prints the suite's closing line "N passed, N failed".
# Exit status is non-zero when any test failed or any binary crashed.
set -u
build=${1:-build}
cd "$(dirname "$0")/.." || exit 2
# Tests start several daemons at once (fleets, replicas): passive OpenMP
# threads keep them from spinning against each other on the cores.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
total_pass=0 total_fail=0 crashed=0
# C test binaries, then the Python tests of the PyTorch recipe code and the
# experiment scripts (Debian's interpreter, which has python3-torch).
# tests/ mirrors the source layout (tests/core/nn/, tests/server/, ...).
# tests/browser/ and tests/readme/ are run by their C hooks
# (tests/server/test_ui_browser, tests/clients/test_python).
for bin in $(find "$build/tests" -type f -name 'test_*' ! -name '*.o' ! -name '*.d' | sort) \
           tests/models/test_*.py tests/experiments/test_*.py tests/layout/test_*.py; do
    name=$(basename "$bin")
    case "$bin" in
    *.py) out=$(/usr/bin/python3 "$bin" 2>&1) ;;
    *) [ -x "$bin" ] || continue; out=$("$bin" 2>&1) ;;
    esac
    rc=$?
    printf '%s\n' "$out"
    line=$(printf '%s\n' "$out" | grep -E '^[a-z_0-9]+: [0-9]+ passed, [0-9]+ failed$' | tail -n 1)
    if [ -z "$line" ]; then
        echo "$name: crashed or printed no result (exit $rc)"
        crashed=$((crashed + 1))
        continue
    fi
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "$name: exit $rc with no failed test"
        crashed=$((crashed + 1))
    fi
done
total_fail=$((total_fail + crashed))
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
