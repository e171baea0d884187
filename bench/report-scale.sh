#!/usr/bin/env bash
# How fast miffy report and its page read a big topic, in bounded memory:
# writes REPORT_SCALE_N mismatch records (default 1 000 000) and their
# tallies to the embedded broker (its own process), then times `miffy
# report` and `miffy report --serve` over them, each in its own process.
# The section it prints is what bench/RESULTS.md quotes ("miffy report at
# scale"); everything listens on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/out
mkdir -p "$OUT"
go build -o "$OUT/miffy" ./cmd/miffy
go build -o "$OUT/benchtool" ./bench/benchtool
rm -f "$OUT/scale-broker.addr"
"$OUT/benchtool" broker -addr-file "$OUT/scale-broker.addr" -retention 1h &
BROKER=$!
trap 'kill $BROKER 2>/dev/null || true; wait $BROKER 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$OUT/scale-broker.addr" ] && break; sleep 0.1; done
"$OUT/benchtool" reportscale -miffy "$OUT/miffy" -brokers "$(cat "$OUT/scale-broker.addr")" -n "${REPORT_SCALE_N:-1000000}"
