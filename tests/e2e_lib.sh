# shellcheck shell=bash
# Shared bash code of the end-to-end test scripts (tests/reference/run_reference_test.sh,
# tests/onnx_e2e/run_onnx_e2e_test.sh, tests/xgboost_e2e/run_xgboost_e2e_test.sh).
# Sourced, not run; the caller has already done `set -euo pipefail`.
#
# Sourcing it sets:
#   tests      absolute path of the tests/ directory (where this file is)
#   python     the interpreter for the helper scripts (/usr/bin/python3)
#   e2e_name   the calling script's name without .sh; prefixes every error message
# and unsets rows, seed and tol (see parse_options).
#
# The caller sets:
#   rows, seed, tol
#              defaults of the options, after sourcing; parse_options accepts only the
#              options whose variable is set (check needs tol)
#   status     0 once every check has passed, just before the script ends
#              (make_work_dir sets it to 1)
#
# Setup:
#   usage_error ARGS    prints "usage: SCRIPT ARGS" and exits 2
#   resolve_sluice PATH sets sluice to the absolute path of the binary PATH, or of
#                       PATH/sluice when PATH is a build directory; exits 2 if not executable
#   parse_options ARGS  --rows N, --seed S, --tol T set rows, seed, tol; anything else,
#                       or an option whose variable the caller did not set, exits 2
#                       ("unknown argument")
#   make_work_dir PREFIX
#                       sets work to a new directory ${TMPDIR:-/tmp}/PREFIX.XXXXXX, removed
#                       on exit when status is 0 and SLUICE_KEEP_TMP is not 1, else kept
#                       (and its path printed on stderr)
#
# Steps and checks (a failed check prints a message on stderr and exits 1):
#   step TEXT           prints "== TEXT"
#   fail TEXT           prints "$e2e_name: TEXT" on stderr and exits 1
#   run_sluice ARGS     runs "$sluice ARGS" from / (relative paths in a job must resolve
#                       against the job file's directory) and insists on exit code 0
#   no_rejects OUT_DIR  a clean run writes no rejected rows under OUT_DIR/_sluice/rejects
#   check EXPECTED OUT  compares $work/OUT with $work/EXPECTED (reference/check_predictions.py
#                       --tol $tol), then no_rejects $work/OUT
#   expect_preflight_error JOB OUT_DIR NEEDLE [--set K=V]...
#                       validate and run of $work/JOB both exit 2, stderr is one error line
#                       containing NEEDLE, and run leaves no $work/OUT_DIR behind

tests="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python=/usr/bin/python3
e2e_name="$(basename "$0" .sh)"
unset rows seed tol

usage_error() {
  echo "usage: $0 $1" >&2
  exit 2
}

resolve_sluice() {
  sluice="$1"
  [[ -d "$sluice" ]] && sluice="$sluice/sluice"
  if [[ ! -x "$sluice" ]]; then
    echo "$e2e_name: no sluice binary at '$sluice'" >&2
    exit 2
  fi
  sluice="$(cd "$(dirname "$sluice")" && pwd)/$(basename "$sluice")"
}

parse_options() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --rows) [[ -v rows ]] || unknown_argument "$1"; rows="$2"; shift 2 ;;
      --seed) [[ -v seed ]] || unknown_argument "$1"; seed="$2"; shift 2 ;;
      --tol) [[ -v tol ]] || unknown_argument "$1"; tol="$2"; shift 2 ;;
      *) unknown_argument "$1" ;;
    esac
  done
}

unknown_argument() {
  echo "$e2e_name: unknown argument '$1'" >&2
  exit 2
}

make_work_dir() {
  work="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
  status=1
  trap cleanup EXIT
}

cleanup() {
  if [[ $status -eq 0 && "${SLUICE_KEEP_TMP:-0}" != 1 ]]; then
    rm -rf "$work"
  else
    echo "$e2e_name: files kept in $work" >&2
  fi
}

step() { echo "== $*"; }

fail() {
  echo "$e2e_name: $*" >&2
  exit 1
}

run_sluice() {
  local rc=0
  (cd / && "$sluice" "$@") || rc=$?
  [[ $rc -eq 0 ]] || fail "'sluice $*' exited with $rc (expected 0)"
}

no_rejects() {
  local rejects="$1/_sluice/rejects"
  if [[ -d "$rejects" ]] && find "$rejects" -type f -size +0c | grep -q .; then
    echo "$e2e_name: unexpected rejected rows in $rejects:" >&2
    find "$rejects" -type f -size +0c -exec head -n 3 {} + >&2
    exit 1
  fi
}

check() {
  "$python" "$tests/reference/check_predictions.py" "$work/$1" "$work/$2" --tol "$tol"
  no_rejects "$work/$2"
}

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
