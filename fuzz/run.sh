#!/usr/bin/env bash
# Runs libFuzzer targets one after another: fuzz/run.sh OUT SECONDS NAME...
# Each starts from its seeds (fuzz/corpus/NAME, never written) and the inputs
# earlier runs kept (OUT/corpus/NAME); crashes land in OUT/artifacts/.
# Prints one summary line per target; exits non-zero when any target crashed.
set -u
out=$1 seconds=$2
shift 2
cd "$(dirname "$0")/.." || exit 2
mkdir -p "$out/artifacts" "$out/logs"
failed=0
for name in "$@"; do
    mkdir -p "$out/corpus/$name"
    dict=()
    [ -f "fuzz/$name.dict" ] && dict=(-dict="fuzz/$name.dict")
    log="$out/logs/$name.log"
    "$out/fuzz_$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/$name-" "${dict[@]}" "$out/corpus/$name" "fuzz/corpus/$name" >"$log" 2>&1
    rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    cov=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | grep -o 'cov: [0-9]*' | grep -o '[0-9]*')
    ft=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | grep -o 'ft: [0-9]*' | grep -o '[0-9]*')
    corpus=$(find "$out/corpus/$name" -type f | wc -l)
    if [ "$rc" -eq 0 ]; then status=ok; else status="CRASH (exit $rc; see $log)"; failed=1; fi
    printf '%-17s %s: %s runs in %ss, coverage %s edges / %s features, %s new corpus inputs\n' \
        "$name" "$status" "${runs:-?}" "$seconds" "${cov:-?}" "${ft:-?}" "$corpus"
done
exit $failed
