#!/usr/bin/env bash
# Parallel execution benchmark (not a test: not part of ctest).
#
#   bench/parallel.sh [SLUICE_BINARY_OR_BUILD_DIR]
#
# 1. Speed-up: ~1M generated rows (bench/gen_bench_csv.py), split into units of
#    8 MiB, scored with execution.workers=1 and =2; prints rows/s and the ratio
#    (target on 2 cores: >= 1.8x).
# 2. Memory: an input 10x larger than execution.memory_limit (64 MiB by default);
#    peak RSS must stay <= 1.2 x the limit + the model file's size.
#
# Environment: SLUICE_BENCH_ROWS_BYTES (input of part 1, default 70000000 ≈ 1M rows),
# SLUICE_BENCH_LIMIT_MIB (default 64), SLUICE_BENCH_DIR, SLUICE_BENCH_KEEP=1.
# Exit status: 0 when both targets hold, 1 otherwise, 2 usage.
set -euo pipefail
bench_name=parallel
# shellcheck source=bench/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"
bench_init "${1:-}"
bench_write_job
verdict=PASS

echo "== 1. speed-up, workers 1 -> 2 ($(nproc) cores)"
bench_generate "${SLUICE_BENCH_ROWS_BYTES:-70000000}"
bench_run "warm-up" --set execution.workers=1 >/dev/null
bench_run "workers=1" --set execution.workers=1 --set partition.target_bytes=8MiB
one=$rows_per_s
bench_run "workers=2" --set execution.workers=2 --set partition.target_bytes=8MiB
two=$rows_per_s
speedup=$(awk -v a="$one" -v b="$two" 'BEGIN {printf "%.2f", b / a}')
echo "rows/s: 1 worker $one, 2 workers $two; speed-up ${speedup}x (target >= 1.8x)"
awk -v s="$speedup" 'BEGIN {exit !(s >= 1.8)}' || verdict=FAIL

limit_mib="${SLUICE_BENCH_LIMIT_MIB:-64}"
echo "== 2. peak RSS with an input 10x execution.memory_limit (${limit_mib} MiB)"
bench_generate $((limit_mib * 10 * 1048576))
bench_run "memory_limit=${limit_mib}MiB" --set "execution.memory_limit=${limit_mib}MiB"
model_bytes=$(stat -c %s "$work/model.json")
bound_kb=$(awk -v l="$limit_mib" -v m="$model_bytes" 'BEGIN {printf "%d", (1.2 * l * 1048576 + m) / 1024}')
echo "peak RSS ${rss_kb} KiB vs bound ${bound_kb} KiB (1.2 x ${limit_mib} MiB + model ${model_bytes} B)"
[[ "$rss_kb" -le "$bound_kb" ]] || verdict=FAIL

echo "$verdict"
[[ $verdict == PASS ]]
