#!/usr/bin/env bash
# End-to-end check of the XGBoost backend through the CLI (CTest: xgboost_e2e).
#
#   run_xgboost_e2e_test.sh SLUICE_BINARY_OR_BUILD_DIR MODELS_DIR [--tol T]
#
# MODELS_DIR is what tests/models/gen_xgboost_models.py generated (CTest fixture
# xgboost_models; run that script by hand otherwise): binary, multiclass and regression
# models (100 rounds of depth-6 trees on 20 features) as .json, .ubj and legacy binary,
# smaller softmax, dart and gblinear models, the rows to score as CSV and JSON Lines
# (with NaN / empty / null / absent features) and Booster.predict's outputs. Then:
#   - `sluice validate` and `sluice run` every model file on CSV, and one format per
#     model on JSON Lines, compared with Booster.predict (check_predictions.py --tol 1e-6);
#     one run with model.threads=2;
#   - bad models (missing, truncated .json/.ubj/.bin, a CSV renamed .json/.ubj/.bin) and
#     feature lists that do not match the model (19 of 20 features, two swapped, one
#     renamed): `validate` and `run` exit 2 with a one-line error, and `run` creates no
#     output directory.
# Jobs and trimmed references are written to a temporary directory, removed on success
# and kept on failure (SLUICE_KEEP_TMP=1 keeps it always). Nothing is committed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/../e2e_lib.sh
source "$here/../e2e_lib.sh"

[[ $# -ge 2 ]] || usage_error "SLUICE_BINARY_OR_BUILD_DIR MODELS_DIR [--tol T]"
resolve_sluice "$1"
models="$2"
shift 2
if [[ ! -f "$models/manifest.json" ]]; then
  echo "$e2e_name: no $models/manifest.json; run tests/models/gen_xgboost_models.py $models" >&2
  exit 2
fi
models="$(cd "$models" && pwd)"

tol=1e-6
parse_options "$@"

make_work_dir sluice-xgboost-e2e

step "jobs for the models in $models (work dir $work)"
"$python" "$here/make_jobs.py" "$models" "$work"

while read -r job expected; do
  step "${job%.yaml}"
  run_sluice validate "$work/$job"
  run_sluice run "$work/$job"
  out="out_${job#job_}"
  out="${out%.yaml}"
  check "$expected" "$out"
done <"$work/jobs.txt"

step "multiclass UBJSON, CSV, model.threads=2"
run_sluice run "$work/job_multiclass_ubj_csv.yaml" --set model.threads=2 --set "output.path=$work/out_threads"
"$python" "$tests/reference/check_predictions.py" "$work/expected_multiclass.csv" "$work/out_threads" --tol "$tol"

step "bad models fail at preflight"
bad() { expect_preflight_error job_binary_json_csv.yaml out_bad "$@" --set "output.path=$work/out_bad"; }
head -c 100000 "$models/binary.json" >"$work/truncated.json"
head -c 100000 "$models/binary.ubj" >"$work/truncated.ubj"
head -c 100000 "$models/binary.bin" >"$work/truncated.bin"
for ext in json ubj bin; do cp "$models/features.csv" "$work/renamed_csv.$ext"; done
bad "no such file" --set "model.path=$work/missing.json"
bad "truncated.json: not a valid XGBoost model (json)" --set "model.path=$work/truncated.json"
bad "truncated.ubj: not an XGBoost model: invalid UBJSON" --set "model.path=$work/truncated.ubj"
bad "truncated.bin: not an XGBoost model or truncated" --set "model.path=$work/truncated.bin"
# A CSV named .json is claimed by no backend, unless model.kind says xgboost.
bad "cannot tell the model kind" --set "model.path=$work/renamed_csv.json"
bad "renamed_csv.json: not an XGBoost model: a .json or .ubj model is a JSON object" \
  --set "model.path=$work/renamed_csv.json" --set model.kind=xgboost
bad "renamed_csv.ubj: not an XGBoost model: a .json or .ubj model is a JSON object" \
  --set "model.path=$work/renamed_csv.ubj"
bad "renamed_csv.bin: not an XGBoost model: read as the legacy binary format" \
  --set "model.path=$work/renamed_csv.bin"

step "feature lists that do not match the model fail at preflight"
expect_preflight_error job_width.yaml out_width "takes 20 inputs but the features list produces 19"
expect_preflight_error job_order.yaml out_order "input 0 is 'f1' but the model expects 'f0' there"
expect_preflight_error job_names.yaml out_names "the model does not know feature 'x0'"

status=0
echo "xgboost_e2e: PASS"
