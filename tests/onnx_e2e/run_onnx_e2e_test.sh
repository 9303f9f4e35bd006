#!/usr/bin/env bash
# End-to-end check of the ONNX backend through the CLI (CTest: onnx_e2e).
#
#   run_onnx_e2e_test.sh SLUICE_BINARY_OR_BUILD_DIR [--rows N] [--seed S] [--tol T]
#
# Generates models, data, jobs and expected predictions with
# tests/models/gen_onnx_models.py into a temporary directory, then:
#   - `sluice validate` and `sluice run` the torch MLP (20 float features, one [N, 20]
#     input) on CSV and on JSON Lines, compared with torch's own forward;
#   - the same for the ONNX-ML LinearClassifier + ZipMap with three named inputs (float,
#     double, int64), labels and per-class probabilities compared with numpy;
#   - bad models (missing, truncated, a CSV renamed .onnx, an unknown operator, a string
#     input) and a feature list one short of the MLP's width: `validate` and `run` exit 2
#     with a one-line error naming the model, and `run` creates no output directory.
# Golden files are produced here at test time; none are committed. The temporary
# directory is removed on success and kept on failure (SLUICE_KEEP_TMP=1 keeps it always).
set -euo pipefail

# Sanitizer builds: LeakSanitizer's summary of the suppressions it used (ONNX Runtime's
# own leak, see src/model/onnx/onnx_model.cc) would add lines to stderr.
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}print_suppressions=0"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tests="$(dirname "$here")"
python=/usr/bin/python3

if [[ $# -lt 1 ]]; then
  echo "usage: $0 SLUICE_BINARY_OR_BUILD_DIR [--rows N] [--seed S] [--tol T]" >&2
  exit 2
fi
sluice="$1"
shift
[[ -d "$sluice" ]] && sluice="$sluice/sluice"
if [[ ! -x "$sluice" ]]; then
  echo "run_onnx_e2e_test: no sluice binary at '$sluice'" >&2
  exit 2
fi
sluice="$(cd "$(dirname "$sluice")" && pwd)/$(basename "$sluice")"

rows=3000
seed=20240301
tol=1e-5
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rows) rows="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --tol) tol="$2"; shift 2 ;;
    *) echo "run_onnx_e2e_test: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-onnx-e2e.XXXXXX")"
status=1
cleanup() {
  if [[ $status -eq 0 && "${SLUICE_KEEP_TMP:-0}" != 1 ]]; then
    rm -rf "$work"
  else
    echo "run_onnx_e2e_test: files kept in $work" >&2
  fi
}
trap cleanup EXIT

step() { echo "== $*"; }
fail() {
  echo "run_onnx_e2e_test: $*" >&2
  exit 1
}

# Runs sluice from an unrelated directory (relative paths in the job resolve against
# the job file's directory) and insists on exit code 0.
run_sluice() {
  local rc=0
  (cd / && "$sluice" "$@") || rc=$?
  [[ $rc -eq 0 ]] || fail "'sluice $*' exited with $rc (expected 0)"
}

no_rejects() {
  local rejects="$1/_sluice/rejects"
  if [[ -d "$rejects" ]] && find "$rejects" -type f -size +0c | grep -q .; then
    find "$rejects" -type f -size +0c -exec head -n 3 {} + >&2
    fail "unexpected rejected rows in $rejects"
  fi
}

check() {
  "$python" "$tests/reference/check_predictions.py" "$work/$1" "$work/$2" --tol "$tol"
  no_rejects "$work/$2"
}

# expect_preflight_error JOB OUT_DIR NEEDLE [--set K=V]...: validate and run both exit 2,
# stderr is one error line containing NEEDLE, and run leaves no OUT_DIR behind.
expect_preflight_error() {
  local job="$1" out="$2" needle="$3"
  shift 3
  local cmd rc err
  for cmd in validate run; do
    rc=0
    err="$(cd / && "$sluice" "$cmd" "$work/$job" "$@" 2>&1 >/dev/null)" || rc=$?
    [[ $rc -eq 2 ]] || fail "'sluice $cmd $job $*' exited with $rc (expected 2); stderr: $err"
    [[ -n "$err" && $(wc -l <<<"$err") -eq 1 ]] || fail "'sluice $cmd $job $*': expected one line on stderr, got: $err"
    grep -qF -- "$needle" <<<"$err" || fail "'sluice $cmd $job $*': error does not mention '$needle': $err"
    [[ ! -e "$work/$out" ]] || fail "'sluice $cmd $job $*' created $work/$out"
  done
  echo "   exit 2: $err"
}

step "generating models, data and references ($rows rows, seed $seed) in $work"
"$python" "$tests/models/gen_onnx_models.py" "$work" --rows "$rows" --seed "$seed"

step "torch MLP 20 -> 64 -> 64 -> 1, CSV in, CSV out"
run_sluice validate "$work/job_mlp_csv.yaml"
run_sluice run "$work/job_mlp_csv.yaml"
check expected_mlp.csv out_mlp_csv

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
expect_preflight_error job_mlp_csv.yaml out_bad "string inputs are not supported yet" \
  --set "model.path=$work/string_input.onnx" --set "output.path=$work/out_bad"
expect_preflight_error job_mlp_width.yaml out_mlp_width "takes 20 inputs but the features list produces 19"

status=0
echo "onnx_e2e: PASS"
