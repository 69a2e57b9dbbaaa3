#!/usr/bin/env bash
# Runs libFuzzer targets: fuzz/run.sh OUT SECONDS JOBS NAME...
# JOBS targets run at once (each one process, one core), the rest wait.
# Each starts from its seeds (fuzz/corpus/NAME, never written) and the inputs
# earlier runs kept (OUT/corpus/NAME); crashes land in OUT/artifacts/.
# Prints one summary line per target as it finishes (executions, CPU seconds,
# coverage); exits non-zero when any target crashed.
set -u
out=$1 seconds=$2 jobs=$3
shift 3
cd "$(dirname "$0")/.." || exit 2
mkdir -p "$out/artifacts" "$out/logs"
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1

# One target, then its summary line; exit status 1 when it crashed.
run_one() {
    local name=$1 dict=() log="$out/logs/$1.log"
    mkdir -p "$out/corpus/$name"
    [ -f "fuzz/$name.dict" ] && dict=(-dict="fuzz/$name.dict")
    local t0 rc
    t0=$(date +%s)
    # /usr/bin/time is not on every machine: CPU seconds come from bash's times
    # (this function runs in its own background subshell, so they are the target's)
    "$out/fuzz_$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/$name-" "${dict[@]}" "$out/corpus/$name" "fuzz/corpus/$name" >"$log" 2>&1
    rc=$?
    local cpu
    times >"$log.times" # in this shell, not a $(...) subshell, which has no children
    cpu=$(tail -n 1 "$log.times" | awk '{ split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.0f", u[1]*60+u[2]+s[1]*60+s[2] }')
    local runs cov ft corpus status
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    cov=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | grep -o 'cov: [0-9]*' | grep -o '[0-9]*')
    ft=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | grep -o 'ft: [0-9]*' | grep -o '[0-9]*')
    corpus=$(find "$out/corpus/$name" -type f | wc -l)
    if [ "$rc" -eq 0 ]; then status=ok; else status="CRASH (exit $rc; see $log)"; fi
    printf '%-17s %s: %s runs in %ss (%s CPU s), coverage %s edges / %s features, %s new corpus inputs\n' \
        "$name" "$status" "${runs:-?}" "$(($(date +%s) - t0))" "${cpu:-?}" "${cov:-?}" "${ft:-?}" "$corpus"
    [ "$rc" -eq 0 ]
}

failed=0
running=0
for name in "$@"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
    run_one "$name" &
    running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done
exit $failed
