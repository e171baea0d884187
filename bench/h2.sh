#!/usr/bin/env bash
# bench/h2.sh: HTTP/2 clients through miffy and through nginx, measured with
# h2load on loopback: h2c (prior knowledge) and h2 over TLS, a plain proxy
# and shadow mode (nginx: proxy_pass + mirror). Upstreams speak HTTP/1.1 in
# both (nginx proxies HTTP/2 only to gRPC). Appends a section to
# BENCH_REPORT (default bench/RESULTS.md); `just bench` runs it after
# run.sh. See bench/README.md.
#
# Settings (environment):
#   BENCH_H2_DURATION=5    seconds of one measured h2load run
#   BENCH_H2_RUNS=3        rounds; each round runs every configuration once
#   BENCH_CONNECTIONS=64   h2load -c (one stream at a time per connection)
#   BENCH_REPORT=bench/RESULTS.md
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DURATION=${BENCH_H2_DURATION:-5}
RUNS=${BENCH_H2_RUNS:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
REPORT=${BENCH_REPORT:-bench/RESULTS.md}
OUT=bench/out/h2
BT=$OUT/benchtool
MIFFY=$OUT/miffy
mkdir -p "$OUT/nginx/tmp"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

if ! command -v h2load >/dev/null || ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		apt-get install -y nghttp2-client nginx >/dev/null || die "installing h2load and nginx"
	else
		die "h2load (Debian: nghttp2-client) and nginx are needed"
	fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
go build -o "$MIFFY" ./cmd/miffy
go build -o "$BT" ./bench/benchtool

declare -a PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT
start() {
	local name=$1
	shift
	"$@" >"$OUT/$name.log" 2>&1 &
	PIDS+=($!)
}

mapfile -t P < <("$BT" freeports 14)
REF=${P[0]} CAND=${P[1]} NG_H2C=${P[2]} NG_MIRROR_H2C=${P[3]} NG_TLS=${P[4]} NG_MIRROR_TLS=${P[5]}
MF_PLAIN=${P[6]} MF_SHADOW=${P[7]} MF_PLAIN_TLS=${P[8]} MF_SHADOW_TLS=${P[9]}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
	-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>/dev/null

start reference "$BT" upstream -addr "127.0.0.1:$REF" -role reference
start candidate "$BT" upstream -addr "127.0.0.1:$CAND" -role candidate -delay 0s -differ-every 10
rm -f "$OUT/broker.addr"
start broker "$BT" broker -addr 127.0.0.1:0 -addr-file "$OUT/broker.addr"
for _ in $(seq 100); do [[ -s $OUT/broker.addr ]] && break; sleep 0.1; done
BROKER=$(cat "$OUT/broker.addr")

user_line=""
[[ $(id -u) -eq 0 ]] && user_line="user root;"
mirror() { # PORT LISTEN-OPTIONS
	cat <<EOF
    server {
        listen 127.0.0.1:$1 $2;
        location / { mirror /_mirror; proxy_pass http://reference; }
        location = /_mirror { internal; proxy_pass http://candidate\$request_uri; }
    }
EOF
}
cat >"$OUT/nginx/nginx.conf" <<EOF
$user_line
worker_processes 2;
pid $ROOT/$OUT/nginx/nginx.pid;
error_log $ROOT/$OUT/nginx/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $ROOT/$OUT/nginx/tmp/body;
    proxy_temp_path $ROOT/$OUT/nginx/tmp/proxy;
    fastcgi_temp_path $ROOT/$OUT/nginx/tmp/fastcgi;
    uwsgi_temp_path $ROOT/$OUT/nginx/tmp/uwsgi;
    scgi_temp_path $ROOT/$OUT/nginx/tmp/scgi;
    ssl_certificate $ROOT/$OUT/cert.pem;
    ssl_certificate_key $ROOT/$OUT/key.pem;
    keepalive_requests 1000000;
    upstream reference { server 127.0.0.1:$REF; keepalive 256; keepalive_requests 1000000; }
    upstream candidate { server 127.0.0.1:$CAND; keepalive 256; keepalive_requests 1000000; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    server { listen 127.0.0.1:$NG_H2C http2; location / { proxy_pass http://reference; } }
    server { listen 127.0.0.1:$NG_TLS ssl http2; location / { proxy_pass http://reference; } }
$(mirror "$NG_MIRROR_H2C" http2)
$(mirror "$NG_MIRROR_TLS" "ssl http2")
}
EOF
start nginx "$NGINX" -p "$ROOT/$OUT/nginx" -c "$ROOT/$OUT/nginx/nginx.conf" -e "$ROOT/$OUT/nginx/error.log" -g 'daemon off;'

miffy() { # NAME PORT MGMT-PORT ROUTES TLS(0/1)
	local tls=""
	[[ $5 == 1 ]] && tls=$'tls_cert_file = "'"$ROOT/$OUT/cert.pem"$'"\ntls_key_file = "'"$ROOT/$OUT/key.pem"'"'
	cat >"$OUT/$1.toml" <<EOF
port = $2
management_port = $3
log_level = "warn"
access_log = false
shutdown_timeout = "2s"
reference = "http://127.0.0.1:$REF"
candidate = "http://127.0.0.1:$CAND"
routes = $4
[proxy]
host = "127.0.0.1"
$tls
[kafka]
topic = "miffy-bench"
"bootstrap.servers" = "$BROKER"
EOF
	start "$1" "$MIFFY" -config "$OUT/$1.toml"
}
ROUTE='[{ path = "/api/{value}", key = "value" }]'
miffy miffy-h2c "$MF_PLAIN" "${P[10]}" '[]' 0
miffy miffy-shadow-h2c "$MF_SHADOW" "${P[11]}" "$ROUTE" 0
miffy miffy-h2 "$MF_PLAIN_TLS" "${P[12]}" '[]' 1
miffy miffy-shadow-h2 "$MF_SHADOW_TLS" "${P[13]}" "$ROUTE" 1

declare -A URL=(
	[nginx-h2c]="http://127.0.0.1:$NG_H2C" [nginx-mirror-h2c]="http://127.0.0.1:$NG_MIRROR_H2C"
	[miffy-h2c]="http://127.0.0.1:$MF_PLAIN" [miffy-shadow-h2c]="http://127.0.0.1:$MF_SHADOW"
	[nginx-h2]="https://127.0.0.1:$NG_TLS" [nginx-mirror-h2]="https://127.0.0.1:$NG_MIRROR_TLS"
	[miffy-h2]="https://127.0.0.1:$MF_PLAIN_TLS" [miffy-shadow-h2]="https://127.0.0.1:$MF_SHADOW_TLS"
)
CONFIGS=(nginx-h2c miffy-h2c nginx-mirror-h2c miffy-shadow-h2c nginx-h2 miffy-h2 nginx-mirror-h2 miffy-shadow-h2)

# rps CONFIG: one h2load run's requests per second (and a check that every
# request succeeded).
rps() {
	local out
	out=$(h2load -c "$CONNECTIONS" -m 1 -D "$DURATION" --warm-up-time=1 "${URL[$1]}/api/7" 2>&1) || die "h2load $1: $out"
	if ! grep -q "0 failed, 0 errored, 0 timeout" <<<"$out"; then
		die "h2load $1 had failures: $(grep '^requests:' <<<"$out")"
	fi
	awk '/^finished in/ {gsub(",", ""); print $4}' <<<"$out"
}

for cfg in "${CONFIGS[@]}"; do
	for _ in $(seq 100); do h2load -n 1 -c 1 "${URL[$cfg]}/api/1" 2>/dev/null | grep -q "1 succeeded" && break; sleep 0.1; done
done
declare -A SAMPLES=()
for ((run = 1; run <= RUNS; run++)); do
	for cfg in "${CONFIGS[@]}"; do
		r=$(rps "$cfg")
		SAMPLES[$cfg]+="$r "
		log "round $run: $cfg $r req/s"
	done
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
declare -A MED=()
for cfg in "${CONFIGS[@]}"; do MED[$cfg]=$(median "${SAMPLES[$cfg]}"); done
ratio() { awk -v a="${MED[$1]}" -v b="${MED[$2]}" 'BEGIN {printf "%.2f", a / b}'; }

{
	echo
	echo "## HTTP/2 clients (bench/h2.sh)"
	echo
	echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, h2load -c$CONNECTIONS -m1 -D$DURATION, $RUNS rounds (medians),"
	echo "unpinned; nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///') with 2 workers, miffy with GOMAXPROCS=$(nproc); upstreams speak HTTP/1.1."
	echo
	echo "| client protocol | nginx req/s | miffy req/s | miffy / nginx | nginx + mirror req/s | miffy shadow req/s | shadow / mirror |"
	echo "|---|--:|--:|--:|--:|--:|--:|"
	for p in h2c h2; do
		echo "| $p | ${MED[nginx-$p]} | ${MED[miffy-$p]} | $(ratio miffy-$p nginx-$p) | ${MED[nginx-mirror-$p]} | ${MED[miffy-shadow-$p]} | $(ratio miffy-shadow-$p nginx-mirror-$p) |"
	done
	echo
	echo "Every request of every run succeeded (checked from h2load's summary)."
} >>"$REPORT"
log "appended the HTTP/2 section to $REPORT"
