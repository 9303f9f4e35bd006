#!/usr/bin/env bash
# End-to-end check of the ONNX backend through the CLI (CTest: onnx_e2e).
#
#   run_onnx_e2e_test.sh SLUICE_BINARY_OR_BUILD_DIR [--rows N] [--seed S] [--tol T]
#
# Generates models, data, jobs and expected predictions with
# tests/models/gen_onnx_models.py into a temporary directory, then:
#   - `sluice validate` and `sluice run` the torch MLP (20 float features, one [N, 20]
#     input) on CSV and on JSON Lines, compared with torch's own forward;
#   - a run with CI unset and a fresh HOME leaves HOME empty: ONNX Runtime's telemetry
#     (device id, event cache) stays off;
#   - the same for the ONNX-ML LinearClassifier + ZipMap with three named inputs (float,
#     double, int64), labels and per-class probabilities compared with numpy;
#   - a model with a string input (LabelEncoder) beside float inputs, fed the raw text of
#     a string column, with unseen strings and nulls imputed by {constant: ...}, CSV and JSONL;
#   - bad models (missing, truncated, a CSV renamed .onnx, an unknown operator), a text
#     feature with a transform, and a feature list one short of the MLP's width: `validate` and `run` exit 2
#     with a one-line error naming the model, and `run` creates no output directory.
# Golden files are produced here at test time; none are committed. The temporary
# directory is removed on success and kept on failure (SLUICE_KEEP_TMP=1 keeps it always).
set -euo pipefail

# Sanitizer builds: LeakSanitizer's summary of the suppressions it used (ONNX Runtime's
# own leak, see src/model/onnx/onnx_model.cc) would add lines to stderr.
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}print_suppressions=0"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/../e2e_lib.sh
source "$here/../e2e_lib.sh"

[[ $# -ge 1 ]] || usage_error "SLUICE_BINARY_OR_BUILD_DIR [--rows N] [--seed S] [--tol T]"
resolve_sluice "$1"
shift

rows=3000
seed=20240301
tol=1e-5
parse_options "$@"

make_work_dir sluice-onnx-e2e

step "generating models, data and references ($rows rows, seed $seed) in $work"
"$python" "$tests/models/gen_onnx_models.py" "$work" --rows "$rows" --seed "$seed"

step "torch MLP 20 -> 64 -> 64 -> 1, CSV in, CSV out"
run_sluice validate "$work/job_mlp_csv.yaml"
run_sluice run "$work/job_mlp_csv.yaml"
check expected_mlp.csv out_mlp_csv

step "ONNX Runtime's telemetry stays off (no device id or event cache under \$HOME)"
# ONNX Runtime skips its telemetry under CI=true, so the run unsets CI; HOME is a fresh
# directory, where the runtime would create .cache/Microsoft/DeveloperTools/.onnxruntime.
mkdir "$work/home"
(unset CI ORT_DISABLE_TELEMETRY; HOME="$work/home" run_sluice run "$work/job_mlp_csv.yaml" \
  --set "output.path=$work/out_mlp_home")
check expected_mlp.csv out_mlp_home
if [[ -n "$(ls -A "$work/home")" ]]; then
  fail "the run wrote under \$HOME: $(find "$work/home" -mindepth 1 | head -n 3 | tr '\n' ' ')"
fi

step "torch MLP, JSON Lines in and out, model.threads=2"
run_sluice validate "$work/job_mlp_jsonl.yaml"
run_sluice run "$work/job_mlp_jsonl.yaml" --set model.threads=2
check expected_mlp.csv out_mlp_jsonl

step "ONNX-ML LinearClassifier + ZipMap over named float/double/int64 inputs, CSV"
run_sluice validate "$work/job_clf_csv.yaml"
run_sluice run "$work/job_clf_csv.yaml"
check expected_clf.csv out_clf_csv

step "ONNX-ML classifier, JSON Lines"
run_sluice run "$work/job_clf_jsonl.yaml"
check expected_clf.csv out_clf_jsonl

step "string input (LabelEncoder) with float inputs, unseen and imputed strings, CSV"
run_sluice validate "$work/job_str_csv.yaml"
run_sluice run "$work/job_str_csv.yaml"
check expected_str.csv out_str_csv

step "string input, JSON Lines"
run_sluice run "$work/job_str_jsonl.yaml"
check expected_str.csv out_str_jsonl

step "bad models fail at preflight"
head -c 5000 "$work/mlp.onnx" >"$work/truncated.onnx"
cp "$work/data.csv" "$work/renamed_csv.onnx"
expect_preflight_error job_mlp_csv.yaml out_bad "no such file" \
  --set "model.path=$work/missing.onnx" --set "output.path=$work/out_bad"
expect_preflight_error job_mlp_csv.yaml out_bad "not a valid ONNX model" \
  --set "model.path=$work/truncated.onnx" --set "output.path=$work/out_bad"
expect_preflight_error job_mlp_csv.yaml out_bad "not a valid ONNX model" \
  --set "model.path=$work/renamed_csv.onnx" --set "output.path=$work/out_bad"
expect_preflight_error job_mlp_csv.yaml out_bad "NoSuchOp" \
  --set "model.path=$work/unknown_op.onnx" --set "output.path=$work/out_bad"
expect_preflight_error job_str_bad.yaml out_str_bad "the model takes this feature as text"
expect_preflight_error job_mlp_width.yaml out_mlp_width "takes 20 inputs but the features list produces 19"

status=0
echo "onnx_e2e: PASS"
