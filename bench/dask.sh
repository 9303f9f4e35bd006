#!/usr/bin/env bash
# Dask runner benchmark (not a test: not part of ctest).
#
#   bench/dask.sh [SLUICE_BINARY_OR_BUILD_DIR]
#
# About 1M generated rows (bench/gen_bench_csv.py, ~72 MB), units of 8 MiB, scored
#   1. by `sluice run` with execution.workers=2, and
#   2. by the Dask runner (sluice.dask.run) on a LocalCluster of 2 single-threaded worker
#      processes that is already up (the cluster's start is not the job's cost; it is shown
#      apart, as the end-to-end time of `python3 -m sluice.dask --local 2`).
# Each is run SLUICE_BENCH_REPEAT times (default 3) into a fresh output directory; the best
# time counts. The runner's time includes planning on the client, one task per unit, each
# worker opening the job (plan, model load), finalize. Both outputs are compared byte for byte.
# Target: the runner within 1.3x of the direct run.
#
# Environment: SLUICE_BENCH_ROWS_BYTES (input size, default 72000000 ≈ 1M rows),
# SLUICE_BENCH_REPEAT, SLUICE_BENCH_DIR, SLUICE_BENCH_KEEP=1. Needs the Python package built
# (<build>/python, next to the binary).
# Exit status: 0 when the target holds, 1 otherwise, 2 usage.
set -euo pipefail
bench_name=dask
# shellcheck source=bench/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"
bench_init "${1:-}"
export PYTHONPATH="$(dirname "$sluice")/python${PYTHONPATH:+:$PYTHONPATH}"
"$python" -c "import sluice.dask" 2>/dev/null || {
  echo "$bench_name: the Python package is not in $(dirname "$sluice")/python (build target sluice_python)" >&2
  exit 2
}
repeat="${SLUICE_BENCH_REPEAT:-3}"
bench_write_job
bench_generate "${SLUICE_BENCH_ROWS_BYTES:-72000000}"
set_args=(--set partition.target_bytes=8MiB --set execution.workers=2)  # as given to dask_runner_bench.py

echo "== 1. sluice run, 2 workers"
bench_run "warm-up" "${set_args[@]}" >/dev/null
direct=""
for ((i = 1; i <= repeat; i++)); do
  bench_run "run $i" "${set_args[@]}"
  direct=$(awk -v a="$direct" -v b="$seconds" 'BEGIN {print (a == "" || b < a) ? b : a}')
done
mv "$work/out" "$work/out_direct"

echo "== 2. sluice.dask.run, LocalCluster of 2 worker processes"
dask_best=$("$python" "$here/dask_runner_bench.py" "$work/job.yaml" "$work/out" "$repeat" "$rows" \
  partition.target_bytes=8MiB execution.workers=2)
same=identical
diff -r -q -x job.json -x 'lock*' "$work/out_direct" "$work/out" >/dev/null || same=DIFFERENT

echo "== 3. end to end: python3 -m sluice.dask --local 2 (cluster start included)"
rm -rf "$work/out"
start=$(date +%s.%N)
"$python" -m sluice.dask "$work/job.yaml" --local 2 --no-progress "${set_args[@]}" >/dev/null
end=$(date +%s.%N)
e2e=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f", b - a}')

ratio=$(awk -v d="$direct" -v k="$dask_best" 'BEGIN {printf "%.2f", k / d}')
echo
echo "rows: $rows; outputs: $same"
printf "%-44s %8s s\n" "sluice run, 2 workers (best of $repeat)" "$direct" \
  "sluice.dask.run, 2 workers (best of $repeat)" "$dask_best" \
  "python3 -m sluice.dask --local 2 (end to end)" "$e2e"
echo "runner / direct: ${ratio}x (target <= 1.3x)"
verdict=PASS
awk -v r="$ratio" 'BEGIN {exit !(r <= 1.3)}' || verdict=FAIL
[[ $same == identical ]] || verdict=FAIL
echo "$verdict"
rm -rf "$work/out_direct"
[[ $verdict == PASS ]]
