# shellcheck shell=bash
# Shared code of the benchmark scripts. Sourced after `set -euo pipefail`, with
# bench_name set to the script's name (prefixes messages).
#
#   bench_init BINARY_OR_BUILD_DIR  sets here, repo, python, sluice (exits 2 if missing),
#                                   work (SLUICE_BENCH_DIR or a new temp dir, removed on
#                                   exit unless SLUICE_BENCH_KEEP=1)
#   bench_generate BYTES            writes $work/data.csv (bench/gen_bench_csv.py); sets rows,
#                                   actual_bytes
#   bench_write_job                 writes $work/job.yaml with its stats.json and a linear
#                                   model.json (a trained pipeline's shape; output to $work/out)
#   bench_run LABEL ARGS...         runs `sluice run $work/job.yaml ARGS...` under
#                                   /usr/bin/time -v; sets seconds, rss_kb, rss_mb,
#                                   rows_per_s; fails when sluice fails or rows are lost
#   out_rows DIR                    data rows in DIR/part-*.csv (headers not counted)

bench_init() {
  here="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
  repo="$(dirname "$here")"
  python=/usr/bin/python3
  sluice="${1:-$repo/build/sluice}"
  [[ -d "$sluice" ]] && sluice="$sluice/sluice"
  if [[ ! -x "$sluice" ]]; then
    echo "$bench_name: no sluice binary at '$sluice' (pass the binary or its build dir)" >&2
    exit 2
  fi
  if [[ ! -x /usr/bin/time ]]; then
    echo "$bench_name: /usr/bin/time is required (Debian package 'time')" >&2
    exit 2
  fi
  if [[ -n "${SLUICE_BENCH_DIR:-}" ]]; then
    work="$SLUICE_BENCH_DIR"
    mkdir -p "$work"
  else
    work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench.XXXXXX")"
  fi
  trap bench_cleanup EXIT
}

bench_cleanup() {
  if [[ "${SLUICE_BENCH_KEEP:-0}" == 1 ]]; then
    echo "$bench_name: files kept in $work"
  else
    rm -rf "$work/data.csv" "$work/out" "$work/job.yaml" "$work/stats.json" \
      "$work/model.json" "$work/time.txt" "$work/sluice.log"
    rmdir "$work" 2>/dev/null || true
  fi
}

bench_generate() {
  echo "generating $1 bytes of CSV in $work"
  local start end
  start=$(date +%s.%N)
  rows=$("$python" "$here/gen_bench_csv.py" "$work/data.csv" "$1")
  end=$(date +%s.%N)
  actual_bytes=$(stat -c %s "$work/data.csv")
  echo "  $rows rows, $actual_bytes bytes in $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}') s"
}

bench_write_job() {
  # Statistics and model: fixed values of the shape a trained pipeline produces.
  cat >"$work/stats.json" <<'EOF'
{"sluice_stats": 1, "features": {
  "age": {"impute": 42.0, "standardize": {"mean": 42.1, "std": 12.4}},
  "score_a": {"standardize": {"mean": 0.0, "std": 1.0}},
  "score_b": {"minmax": {"min": 0.0, "max": 100.0}},
  "amount": {"impute": 36.6, "standardize": {"mean": 3.65, "std": 1.02}},
  "hour": {"standardize": {"mean": 11.5, "std": 6.9}},
  "merchant": {"impute": "grocery"}}}
EOF
  cat >"$work/model.json" <<'EOF'
{"sluice_linear": 1,
 "feature_names": ["age", "score_a", "score_b", "amount", "hour", "merchant=grocery",
                   "merchant=travel", "merchant=online", "merchant=restaurant", "merchant=fuel"],
 "coefficients": [[-0.25, 0.7, 0.2, 0.55, -0.05, -0.3, 0.4, 0.6, -0.1, -0.2]],
 "intercepts": [-2.1],
 "link": "logistic"}
EOF
  cat >"$work/job.yaml" <<'EOF'
input:
  path: data.csv
  format: csv
  schema: {id: int64, ts: timestamp, amount: float64, age: float64, score_a: float64,
           score_b: float64, merchant: string}
features:
  - {name: age, impute: median, transform: [standardize]}
  - {name: score_a, transform: [{clip: {min: -4, max: 4}}, standardize]}
  - {name: score_b, transform: [minmax]}
  - {name: amount, impute: median, transform: [log1p, standardize]}
  - {name: hour, from: ts, datetime: hour, transform: [standardize]}
  - {name: merchant, impute: most_frequent, one_hot: [grocery, travel, online, restaurant, fuel]}
stats: stats.json
model:
  path: model.json
  kind: linear
  outputs: {score: probability}
errors:
  max_rejected: 0
output:
  path: out
  format: csv
  keys: [id]
  threshold: {column: score, at: 0.5, label: label}
EOF
}

out_rows() {
  local n=0 parts=0
  if compgen -G "$1/part-*.csv" >/dev/null; then
    n=$(cat "$1"/part-*.csv | wc -l)
    parts=$(ls "$1"/part-*.csv | wc -l)
  fi
  echo $((n - parts))
}

bench_run() {
  local label="$1"
  shift
  rm -rf "$work/out"
  echo "running ($label): $sluice run $work/job.yaml $*"
  local rc=0
  /usr/bin/time -v -o "$work/time.txt" "$sluice" run "$work/job.yaml" "$@" >"$work/sluice.log" 2>&1 || rc=$?
  rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  local wall
  wall=$(awk -F': ' '/Elapsed \(wall clock\) time/ {print $2}' "$work/time.txt")
  seconds=$(echo "$wall" | awk -F: '{s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s}')
  rss_mb=$(awk -v k="$rss_kb" 'BEGIN {printf "%.1f", k * 1024 / 1e6}')
  rows_per_s=$(awk -v r="$rows" -v s="$seconds" 'BEGIN {printf "%.0f", (s > 0 ? r / s : 0)}')
  local got
  got=$(out_rows "$work/out")
  if [[ $rc -ne 0 || "$got" -ne "$rows" ]]; then
    echo "$bench_name: $label: sluice exit $rc, $got of $rows rows out; last lines of its log:" >&2
    tail -n 20 "$work/sluice.log" >&2
    exit 1
  fi
  echo "  $seconds s, $rows_per_s rows/s, peak RSS $rss_mb MB"
}
