#!/usr/bin/env bash
# Parallel execution benchmark (not a test: not part of ctest).
#
#   bench/parallel.sh [SLUICE_BINARY_OR_BUILD_DIR]
#
# 1. Speed-up: ~5M generated rows (bench/gen_bench_csv.py), split into units of
#    16 MiB, scored with execution.workers=1 and =2 in sync and async mode; prints
#    rows/s and the ratios. Target on 2 cores: >= 1.8x from 1 to 2 sync workers
#    (one sync worker is one thread; one async worker already uses both cores).
# 2. Memory: an input 10x larger than execution.memory_limit (64 MiB by default);
#    peak RSS must stay <= 1.2 x the limit + the model file's size, with batch.size
#    asking for 1M-row batches.
#
# Environment: SLUICE_BENCH_ROWS_BYTES (input of part 1, default 350000000 ≈ 5M rows),
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
bench_generate "${SLUICE_BENCH_ROWS_BYTES:-350000000}"
bench_run "warm-up" --set execution.workers=1 >/dev/null
declare -A rate
for mode in sync async; do
  for workers in 1 2; do
    bench_run "$mode, workers=$workers" --set execution.mode=$mode --set execution.workers=$workers \
      --set partition.target_bytes=16MiB
    rate[$mode$workers]=$rows_per_s
  done
done
echo
printf "%-7s %14s %14s %9s\n" mode "1 worker" "2 workers" speed-up
for mode in sync async; do
  printf "%-7s %14s %14s %8sx\n" $mode "${rate[${mode}1]}" "${rate[${mode}2]}" \
    "$(awk -v a="${rate[${mode}1]}" -v b="${rate[${mode}2]}" 'BEGIN {printf "%.2f", b / a}')"
done
# One sync worker is one thread; one async worker already overlaps its read, predict and write
# stages on both cores, so the workers' own speed-up is the sync one.
speedup=$(awk -v a="${rate[sync1]}" -v b="${rate[sync2]}" 'BEGIN {printf "%.2f", b / a}')
echo "workers 1 -> 2 (sync): ${speedup}x (target >= 1.8x)"
awk -v s="$speedup" 'BEGIN {exit !(s >= 1.8)}' || verdict=FAIL

limit_mib="${SLUICE_BENCH_LIMIT_MIB:-64}"
echo "== 2. peak RSS with an input 10x execution.memory_limit (${limit_mib} MiB)"
bench_generate $((limit_mib * 10 * 1048576))
# batch.size asks for batches far beyond the limit: the readers' byte cap must hold them down.
bench_run "memory_limit=${limit_mib}MiB" --set "execution.memory_limit=${limit_mib}MiB" --set batch.size=1000000
model_bytes=$(stat -c %s "$work/model.json")
bound_kb=$(awk -v l="$limit_mib" -v m="$model_bytes" 'BEGIN {printf "%d", (1.2 * l * 1048576 + m) / 1024}')
echo "peak RSS ${rss_kb} KiB vs bound ${bound_kb} KiB (1.2 x ${limit_mib} MiB + model ${model_bytes} B)"
[[ "$rss_kb" -le "$bound_kb" ]] || verdict=FAIL

echo "$verdict"
[[ $verdict == PASS ]]
