#!/usr/bin/env bash
# Memory benchmark: scoring a generated ~2 GB CSV keeps peak RSS under 300 MB.
#
#   bench/rss_2gb.sh [SLUICE_BINARY_OR_BUILD_DIR]
#
# Generates the CSV deterministically (bench/gen_bench_csv.py) in a temporary
# directory, writes a matching job with a stats file and a linear model, runs
# `sluice run` under /usr/bin/time -v and prints rows, rows/s, MB/s, peak RSS and
# PASS/FAIL against the limit. A benchmark, not a timed test: not part of ctest.
#
# Environment:
#   SLUICE_BENCH_BYTES    input size in bytes (default 2147483648 = 2 GiB; e.g.
#                         200000000 for a quick run)
#   SLUICE_BENCH_RSS_MB   RSS limit in MB of 10^6 bytes (default 300)
#   SLUICE_BENCH_DIR      where to generate (default: a new temp dir, removed after)
#   SLUICE_BENCH_KEEP=1   keep the generated files
#   SLUICE_BENCH_SET      extra `--set` overrides, space-separated (e.g. "batch.size=8192")
# Exit status: 0 PASS, 1 FAIL (RSS over the limit, sluice failed, or rows lost),
# 2 usage.
set -euo pipefail

bench_name=rss_2gb
# shellcheck source=bench/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"
bench_init "${1:-}"
bytes="${SLUICE_BENCH_BYTES:-2147483648}"
limit_mb="${SLUICE_BENCH_RSS_MB:-300}"
bench_generate "$bytes"
bench_write_job

set_args=(--set execution.workers=1)
for kv in ${SLUICE_BENCH_SET:-}; do
  set_args+=(--set "$kv")
done

bench_run "${SLUICE_BENCH_SET:-defaults}" "${set_args[@]}"
mb_per_s=$(awk -v b="$actual_bytes" -v s="$seconds" 'BEGIN {printf "%.1f", (s > 0 ? b / 1e6 / s : 0)}')

limit_kb=$((limit_mb * 1000000 / 1024))
echo
echo "input            : $actual_bytes bytes, $rows rows (all written)"
echo "wall time        : ${seconds} s"
echo "throughput       : ${rows_per_s} rows/s, ${mb_per_s} MB/s"
echo "peak RSS         : ${rss_mb} MB (${rss_kb} KiB), limit ${limit_mb} MB"
verdict=PASS
[[ "$rss_kb" -ge "$limit_kb" ]] && verdict=FAIL
echo "$verdict: peak RSS ${rss_mb} MB vs limit ${limit_mb} MB"
[[ $verdict == PASS ]]
