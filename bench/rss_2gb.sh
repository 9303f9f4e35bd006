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

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
python=/usr/bin/python3

sluice="${1:-$repo/build/sluice}"
[[ -d "$sluice" ]] && sluice="$sluice/sluice"
if [[ ! -x "$sluice" ]]; then
  echo "rss_2gb: no sluice binary at '$sluice' (pass the binary or its build dir)" >&2
  exit 2
fi
if [[ ! -x /usr/bin/time ]]; then
  echo "rss_2gb: /usr/bin/time is required (Debian package 'time')" >&2
  exit 2
fi

bytes="${SLUICE_BENCH_BYTES:-2147483648}"
limit_mb="${SLUICE_BENCH_RSS_MB:-300}"
if [[ -n "${SLUICE_BENCH_DIR:-}" ]]; then
  work="$SLUICE_BENCH_DIR"
  mkdir -p "$work"
else
  work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench.XXXXXX")"
fi
cleanup() {
  if [[ "${SLUICE_BENCH_KEEP:-0}" == 1 ]]; then
    echo "rss_2gb: files kept in $work"
  else
    rm -rf "$work/data.csv" "$work/out" "$work/job.yaml" "$work/stats.json" \
      "$work/model.json" "$work/time.txt" "$work/sluice.log"
    rmdir "$work" 2>/dev/null || true
  fi
}
trap cleanup EXIT

echo "generating $bytes bytes of CSV in $work"
gen_start=$(date +%s.%N)
rows=$("$python" "$here/gen_bench_csv.py" "$work/data.csv" "$bytes")
gen_end=$(date +%s.%N)
actual_bytes=$(stat -c %s "$work/data.csv")
echo "  $rows rows, $actual_bytes bytes in $(awk -v a="$gen_start" -v b="$gen_end" 'BEGIN {printf "%.1f", b - a}') s"

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

set_args=()
for kv in ${SLUICE_BENCH_SET:-}; do
  set_args+=(--set "$kv")
done

echo "running: $sluice run $work/job.yaml ${set_args[*]}"
rc=0
/usr/bin/time -v -o "$work/time.txt" "$sluice" run "$work/job.yaml" "${set_args[@]}" \
  >"$work/sluice.log" 2>&1 || rc=$?

rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
wall=$(awk -F': ' '/Elapsed \(wall clock\) time/ {print $2}' "$work/time.txt")
# h:mm:ss or m:ss(.cc) -> seconds
seconds=$(echo "$wall" | awk -F: '{s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s}')
cpu_pct=$(awk -F': ' '/Percent of CPU this job got/ {print $2}' "$work/time.txt")

out_rows=0
if compgen -G "$work/out/part-*.csv" >/dev/null; then
  # Each part has a header line.
  out_rows=$(cat "$work/out"/part-*.csv | wc -l)
  parts=$(ls "$work/out"/part-*.csv | wc -l)
  out_rows=$((out_rows - parts))
fi

limit_kb=$((limit_mb * 1000000 / 1024))
rss_mb=$(awk -v k="$rss_kb" 'BEGIN {printf "%.1f", k * 1024 / 1e6}')
rows_per_s=$(awk -v r="$rows" -v s="$seconds" 'BEGIN {printf "%.0f", (s > 0 ? r / s : 0)}')
mb_per_s=$(awk -v b="$actual_bytes" -v s="$seconds" 'BEGIN {printf "%.1f", (s > 0 ? b / 1e6 / s : 0)}')

echo
echo "sluice exit code : $rc"
echo "input            : $actual_bytes bytes, $rows rows"
echo "output rows      : $out_rows"
echo "wall time        : ${seconds} s (CPU ${cpu_pct})"
echo "throughput       : ${rows_per_s} rows/s, ${mb_per_s} MB/s"
echo "peak RSS         : ${rss_mb} MB (${rss_kb} KiB), limit ${limit_mb} MB"

verdict=PASS
if [[ $rc -ne 0 ]]; then
  echo "sluice failed; last lines of its log:"
  tail -n 20 "$work/sluice.log"
  verdict=FAIL
fi
if [[ "$out_rows" -ne "$rows" ]]; then
  echo "row count mismatch: $rows in, $out_rows out"
  verdict=FAIL
fi
if [[ "$rss_kb" -ge "$limit_kb" ]]; then
  verdict=FAIL
fi
echo "$verdict: peak RSS ${rss_mb} MB vs limit ${limit_mb} MB"
[[ $verdict == PASS ]]
