#!/usr/bin/env bash
# End-to-end check of Sluice against scikit-learn (CTest: sklearn_reference).
#
#   run_reference_test.sh SLUICE_BINARY_OR_BUILD_DIR [--rows N] [--seed S] [--tol T]
#
# Generates the reference case (gen_sklearn_reference.py) into a temporary
# directory, runs `sluice validate` and `sluice run` on its jobs (binary logistic
# from CSV and from JSON Lines, the CSV job again with other batch sizes through
# --set, and the 3-class softmax job with argmax labels) and compares every
# output with scikit-learn's predict_proba (check_predictions.py); then runs
# `sluice fit-stats` on the training rows and compares the statistics with the
# ones read from the fitted sklearn objects (compare_stats.py).
# Golden files are produced here at test time; none are committed.
# The temporary directory is removed on success and kept on failure
# (SLUICE_KEEP_TMP=1 keeps it always).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/../e2e_lib.sh
source "$here/../e2e_lib.sh"

[[ $# -ge 1 ]] || usage_error "SLUICE_BINARY_OR_BUILD_DIR [--rows N] [--seed S] [--tol T]"
resolve_sluice "$1"
shift

rows=12000
seed=20240105
tol=1e-5
parse_options "$@"

make_work_dir sluice-reference

step "generating reference case ($rows rows, seed $seed) in $work"
"$python" "$here/gen_sklearn_reference.py" "$work" --rows "$rows" --seed "$seed"

step "binary logistic, CSV in, CSV out"
run_sluice validate "$work/job_csv.yaml"
run_sluice run "$work/job_csv.yaml"
check expected.csv out_csv

step "binary logistic, JSON Lines in (absent keys and nulls), JSON Lines out"
run_sluice validate "$work/job_jsonl.yaml"
run_sluice run "$work/job_jsonl.yaml"
check expected.csv out_jsonl

for size in 1 777; do
  step "binary logistic, CSV, --set batch.size=$size"
  run_sluice run "$work/job_csv.yaml" --set "batch.size=$size" --set "output.path=$work/out_batch_$size"
  check expected.csv "out_batch_$size"
done

step "3-class softmax with clip, minmax, constants, day of week and argmax labels"
run_sluice validate "$work/job_multiclass.yaml"
run_sluice run "$work/job_multiclass.yaml"
check expected_multiclass.csv out_multiclass

step "fit-stats on the training rows against the statistics sklearn fitted"
for job in job_csv job_multiclass; do
  expected_stats=stats.json
  [[ $job == job_multiclass ]] && expected_stats=stats_multiclass.json
  run_sluice fit-stats "$work/$job.yaml" --set "input.path=$work/train.csv" \
    --out "$work/fit_$expected_stats"
  "$python" "$here/compare_stats.py" "$work/$expected_stats" "$work/fit_$expected_stats"
done

status=0
echo "sklearn_reference: PASS"
