#!/usr/bin/env bash
# Soak test: builds miffy and the driver, then runs SOAK_MINUTES (default 10)
# of steady load on loopback against the built binary, with an embedded
# broker restarted midway and a candidate that flaps every 20 s. Prints the
# figures docs/RELIABILITY.md records. Not part of CI.
#
#   SOAK_MINUTES=3 soak/run.sh            # or: just soak
#   SOAK_RPS=400 soak/run.sh -flap 10s    # extra arguments go to the driver
set -euo pipefail
cd "$(dirname "$0")/.."

out=${SOAK_DIR:-$(mktemp -d /tmp/miffy-soak.XXXXXX)}
mkdir -p "$out"
go build -o "$out/miffy" ./cmd/miffy
go build -o "$out/soak" ./soak
echo "soak: ${SOAK_MINUTES:-10} min at ${SOAK_RPS:-200} req/s; logs and data in $out"
exec "$out/soak" -miffy "$out/miffy" -dir "$out" -minutes "${SOAK_MINUTES:-10}" -rps "${SOAK_RPS:-200}" "$@"
