#!/usr/bin/env bash
# The run report page in a browser (CTest: report_html).
#
#   run_report_html_test.sh SLUICE_BINARY_OR_BUILD_DIR
#
# Writes a synthetic report.json with tests/report/gen_report_json.py, renders
# report.html from it with `sluice report OUT_DIR`, and checks the page in
# headless Chromium with tests/report/check_report_html.py (no console
# messages, every chart drawn, text escaped, a screenshot that is not blank).
# Also: `sluice report` on a directory without a report exits 2 with one line.
set -euo pipefail
source "$(dirname "$0")/../e2e_lib.sh"

[[ $# -eq 1 ]] || usage_error "SLUICE_BINARY_OR_BUILD_DIR"
resolve_sluice "$1"
make_work_dir sluice-report-html

step "sluice report on a generated report.json"
"$python" "$tests/report/gen_report_json.py" "$work/out"
printed="$("$sluice" report "$work/out")"
[[ "$printed" == "$work/out/_sluice/report.html" ]] || fail "sluice report printed '$printed'"
grep -q '&lt;script&gt;alert(1)&lt;/script&gt;' "$work/out/_sluice/report.html" || fail "reject reason not escaped"

step "the page in headless Chromium"
"$python" "$tests/report/check_report_html.py" "$work/out/_sluice/report.html" "$work/report.png" ||
  fail "check_report_html.py failed"

step "sluice report without a report"
mkdir -p "$work/empty"
set +e
err="$("$sluice" report "$work/empty" 2>&1 >/dev/null)"
rc=$?
set -e
[[ $rc -eq 2 ]] || fail "sluice report on an empty directory exited $rc, expected 2"
[[ "$(wc -l <<<"$err")" -eq 1 && "$err" == *"no run report"* ]] || fail "unexpected error: $err"

status=0
echo "report_html: OK"
