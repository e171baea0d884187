#!/usr/bin/env bash
# bench/run.sh: miffy side by side with a direct connection, nginx proxy_pass
# and nginx proxy_pass + mirror, measured with wrk on loopback. Writes
# bench/RESULTS.md. See bench/README.md; `just bench` runs it.
#
# Settings (environment):
#   BENCH_DURATION=10s     one measured wrk run
#   BENCH_RUNS=3           rounds; each round runs every configuration once
#   BENCH_WARMUP=2s        one unmeasured wrk run per configuration and set
#   BENCH_CONNECTIONS=64   wrk -c
#   BENCH_THREADS=1        wrk -t
#   BENCH_SLOW_DELAY=200ms how late the slow candidate answers
#   BENCH_MODES="pinned unpinned paced together"
#   BENCH_PACED_RPS=2000   the fixed rate of the paced mode (benchtool load)
#   BENCH_TOGETHER_RPS=1000  the together mode: miffy-shadow with the fast and
#                          with the slow candidate loaded at the same time, each
#                          at this rate (BENCH_PACED_RUNS rounds)
#   BENCH_PACED_RUNS=5     rounds in the paced mode, whose p99 the slow/fast
#                          candidate target is judged on
#   BENCH_CANDIDATES="fast slow"
#   BENCH_SLOW_SET=mirror  configurations run with the slow candidate:
#                          "mirror" (the two that call it: nginx-mirror,
#                          miffy-shadow) or "all"
#   BENCH_DIFFER_EVERY=10  the candidate differs on every Nth value (10%)
#   BENCH_PROFILE=1        CPU and allocation profiles of miffy-shadow
#   BENCH_PROFILE_SECONDS=10
#   BENCH_GO=1             run the Go micro-benchmarks too (BENCH_GO_TIME=1s)
#   BENCH_MIFFY_ENV=""     environment for the miffy processes, e.g.
#                          "GOGC=off GOMEMLIMIT=96MiB" (README: tuning Go's GC)
#   BENCH_REPORT=bench/RESULTS.md  where the report goes
#   The bodies mode (BENCH_MODES="bodies"; not in the default list, it takes
#   sizes x variants x 2 configurations x rounds runs): nginx-mirror and
#   miffy-shadow, pinned as in the pinned mode, with the candidate answering
#   equal JSON documents of each size (no value differs):
#   BENCH_BODY_SIZES="100 10240 102400"  bytes per answer (about)
#   BENCH_BODY_VARIANTS="bytes reordered"  the candidate's answer is the
#                          reference's bytes, or the same JSON with every
#                          object's members in reverse order
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${BENCH_DURATION:-10s}
RUNS=${BENCH_RUNS:-3}
WARMUP=${BENCH_WARMUP:-2s}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-1}
SLOW_DELAY=${BENCH_SLOW_DELAY:-200ms}
MODES=${BENCH_MODES:-pinned unpinned paced together}
PACED_RPS=${BENCH_PACED_RPS:-2000}
TOGETHER_RPS=${BENCH_TOGETHER_RPS:-1000}
PACED_RUNS=${BENCH_PACED_RUNS:-5}
CUR_MODE=""
CANDIDATES=${BENCH_CANDIDATES:-fast slow}
SLOW_SET=${BENCH_SLOW_SET:-mirror}
DIFFER_EVERY=${BENCH_DIFFER_EVERY:-10}
PROFILE=${BENCH_PROFILE:-1}
PROFILE_SECONDS=${BENCH_PROFILE_SECONDS:-10}
GO_BENCH=${BENCH_GO:-1}
GO_BENCH_TIME=${BENCH_GO_TIME:-1s}
read -r -a MIFFY_ENV <<<"${BENCH_MIFFY_ENV:-}"
REPORT=${BENCH_REPORT:-bench/RESULTS.md}
BODY_SIZES=${BENCH_BODY_SIZES:-100 10240 102400}
BODY_VARIANTS=${BENCH_BODY_VARIANTS:-bytes reordered}
# Extra arguments of the reference's and the candidates' benchtool upstream
# (the bodies mode sets them per set).
REF_ARGS=()
CAND_ARGS=()

OUT=bench/out
LOGS=$OUT/logs
RESULTS=$OUT/results.jsonl
BT=$OUT/benchtool
MIFFY=$OUT/miffy
LUA=bench/wrk-report.lua

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- tools -------------------------------------------------------------------

find_nginx() {
	command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true
}

ensure_tools() {
	command -v go >/dev/null || die "go is not installed (see README.md)"
	local missing=()
	command -v wrk >/dev/null || missing+=(wrk)
	[[ -n $(find_nginx) ]] || missing+=(nginx)
	if ((${#missing[@]})); then
		if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
			log "installing ${missing[*]}"
			apt-get install -y "${missing[@]}" >/dev/null ||
				{ apt-get update >/dev/null && apt-get install -y "${missing[@]}" >/dev/null; }
		else
			die "missing ${missing[*]}: install with: sudo apt-get install -y wrk nginx"
		fi
	fi
	NGINX=$(find_nginx)
	[[ -n $NGINX ]] || die "nginx not found after installing"
	# Pinning needs taskset and two CPUs.
	if [[ " $MODES " == *" pinned "* ]]; then
		if ! command -v taskset >/dev/null || (($(nproc) < 2)); then
			log "pinned mode needs taskset and 2 CPUs: skipping it"
			MODES=${MODES//pinned/}
		fi
	fi
}

# --- processes ---------------------------------------------------------------

declare -A PID=()
SAMPLER=""

# start NAME CMD...: runs CMD in the background (pinned to CPU 1 in pinned
# mode), its output in bench/out/logs/NAME.log.
start() {
	local name=$1
	shift
	$PIN_SRV "$@" >"$LOGS/$name.log" 2>&1 &
	PID[$name]=$!
}

stop_one() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

stop_all() {
	local name
	if [[ -n $SAMPLER ]]; then
		stop_one "$SAMPLER"
		SAMPLER=""
	fi
	for name in "${!PID[@]}"; do
		stop_one "${PID[$name]}"
		unset "PID[$name]"
	done
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_all
	if ((rc != 0)); then
		log "failed (exit $rc); logs in $LOGS/"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# alive NAME: the process is still running, or its log is shown and we stop.
alive() {
	kill -0 "${PID[$1]}" 2>/dev/null && return 0
	tail -n 20 "$LOGS/$1.log" >&2 || true
	die "$1 exited"
}

# rss_sampler PID FILE: the largest VmRSS (KiB, what ps -o rss shows) seen,
# every 0.5 s, written to FILE.
rss_sampler() {
	local pid=$1 file=$2 max=0 cur
	while kill -0 "$pid" 2>/dev/null; do
		cur=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
		if ((${cur:-0} > max)); then max=$cur; fi
		echo "$max" >"$file"
		sleep 0.5
	done
}

# cpu_ticks PID: CPU time (user + system, in clock ticks) of PID and of its
# children (nginx's workers), so far.
cpu_ticks() {
	local pids=("$1") p total=0 t
	[[ -n $1 ]] || { echo 0; return; }
	mapfile -t -O 1 pids < <(pgrep -P "$1" 2>/dev/null || true)
	for p in "${pids[@]}"; do
		# Fields after the command name, which is in parentheses and may hold spaces.
		t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
		total=$((total + ${t:-0}))
	done
	echo "$total"
}

# proxy_pid CONFIG CANDIDATE: the process that proxies for CONFIG (none for
# direct).
proxy_pid() {
	case $1:$2 in
	nginx:* | nginx-mirror:*) echo "${PID[nginx]}" ;;
	miffy-shadow:slow) echo "${PID[miffy-shadow-slow]}" ;;
	miffy-*) echo "${PID[$1]}" ;;
	esac
}

# cpu_snapshot CONFIG CANDIDATE: JSON of the CPU ticks of the proxy, the
# reference and the candidate it calls.
cpu_snapshot() {
	local cand=candidate
	if [[ $2 == slow ]]; then cand=candidate-slow; fi
	printf '{"proxy":%d,"reference":%d,"candidate":%d}' "$(cpu_ticks "$(proxy_pid "$1" "$2")")" \
		"$(cpu_ticks "${PID[reference]}")" "$(cpu_ticks "${PID[$cand]}")"
}

# ready NAME URL: wait until URL answers 200, or stop.
ready() {
	"$BT" wait "$2" && return 0
	alive "$1"
	die "$1 not ready at $2"
}

# --- configuration files ------------------------------------------------------

# mirror_server PORT UPSTREAM: an nginx server block that proxies to the
# reference and mirrors every request to UPSTREAM.
mirror_server() {
	cat <<EOF
    server {
        listen 127.0.0.1:$1;
        location / {
            mirror /_mirror;
            proxy_pass http://reference;
        }
        location = /_mirror {
            internal;
            proxy_pass http://$2\$request_uri;
        }
    }
EOF
}

write_nginx_conf() {
	local dir=$ROOT/$OUT/nginx
	mkdir -p "$dir/tmp"
	local user_line=""
	if [[ $(id -u) -eq 0 ]]; then user_line="user root;"; fi
	cat >"$dir/nginx.conf" <<EOF
# Written by bench/run.sh: nginx tuned as a fair reverse proxy.
$user_line
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    keepalive_requests 1000000;
    upstream reference { server 127.0.0.1:$REF_PORT; keepalive 256; keepalive_requests 1000000; }
    upstream candidate { server 127.0.0.1:$CAND_PORT; keepalive 256; keepalive_requests 1000000; }
    upstream candidate_slow { server 127.0.0.1:$SLOW_CAND_PORT; keepalive 256; keepalive_requests 1000000; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    # Answers up to 256 KiB stay in memory (the bodies mode's 100 KB ones
    # would otherwise go through temp files).
    proxy_buffers 16 16k;
    proxy_set_header Host \$host;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / { proxy_pass http://reference; }
    }
$(mirror_server "$MIRROR_PORT" candidate)
$(mirror_server "$SLOW_MIRROR_PORT" candidate_slow)
}
EOF
}

# write_miffy_conf NAME PORT MGMT_PORT ROUTES [CANDIDATE_PORT]
write_miffy_conf() {
	cat >"$OUT/$1.toml" <<EOF
# Written by bench/run.sh.
port = $2
logging = "json"
log_level = "warn"
access_log = false
reference = "http://127.0.0.1:$REF_PORT"
candidate = "http://127.0.0.1:${5:-$CAND_PORT}"
routes = $4

[proxy]
host = "127.0.0.1"

[management]
port = $3
pprof = true

[kafka]
topic = "miffy-bench"
"bootstrap.servers" = "$BROKER"
EOF
}

# --- one set of servers --------------------------------------------------------

# start_servers: upstreams (the reference, a fast candidate and one SLOW_DELAY
# late), broker, nginx (with a mirror to each candidate) and four miffys
# (plain, net/http, shadow to the fast and to the slow candidate). Both
# candidates run side by side so that the fast and the slow runs alternate in
# one round and share the machine's noise.
start_servers() {
	local ports i
	mapfile -t ports < <("$BT" freeports 15)
	REF_PORT=${ports[0]} CAND_PORT=${ports[1]} NGINX_PORT=${ports[2]} MIRROR_PORT=${ports[3]}
	PLAIN_PORT=${ports[4]} PLAIN_MGMT=${ports[5]} SHADOW_PORT=${ports[6]} SHADOW_MGMT=${ports[7]}
	SLOW_CAND_PORT=${ports[10]} SLOW_MIRROR_PORT=${ports[11]} SLOW_SHADOW_PORT=${ports[12]}
	SLOW_SHADOW_MGMT=${ports[13]}

	start reference "$BT" upstream -addr "127.0.0.1:$REF_PORT" -role reference ${REF_ARGS[@]+"${REF_ARGS[@]}"}
	start candidate "$BT" upstream -addr "127.0.0.1:$CAND_PORT" -role candidate \
		-delay 0s -differ-every "$DIFFER_EVERY" ${CAND_ARGS[@]+"${CAND_ARGS[@]}"}
	start candidate-slow "$BT" upstream -addr "127.0.0.1:$SLOW_CAND_PORT" -role candidate \
		-delay "$SLOW_DELAY" -differ-every "$DIFFER_EVERY" ${CAND_ARGS[@]+"${CAND_ARGS[@]}"}
	rm -f "$OUT/broker.addr"
	start broker "$BT" broker -addr 127.0.0.1:0 -addr-file "$OUT/broker.addr"
	for ((i = 0; i < 100; i++)); do
		[[ -s $OUT/broker.addr ]] && break
		alive broker
		sleep 0.1
	done
	BROKER=$(cat "$OUT/broker.addr")

	write_nginx_conf
	start nginx "$NGINX" -p "$ROOT/$OUT/nginx" -c "$ROOT/$OUT/nginx/nginx.conf" \
		-e "$ROOT/$OUT/nginx/error.log" -g 'daemon off;'

	write_miffy_conf miffy-plain "$PLAIN_PORT" "$PLAIN_MGMT" '[]'
	write_miffy_conf miffy-shadow "$SHADOW_PORT" "$SHADOW_MGMT" '[{ path = "/api/{value}", key = "value" }]'
	write_miffy_conf miffy-shadow-slow "$SLOW_SHADOW_PORT" "$SLOW_SHADOW_MGMT" \
		'[{ path = "/api/{value}", key = "value" }]' "$SLOW_CAND_PORT"
	start miffy-plain env ${MIFFY_ENV[@]+"${MIFFY_ENV[@]}"} "$MIFFY" -config "$OUT/miffy-plain.toml"
	start miffy-shadow env ${MIFFY_ENV[@]+"${MIFFY_ENV[@]}"} "$MIFFY" -config "$OUT/miffy-shadow.toml"
	start miffy-shadow-slow env ${MIFFY_ENV[@]+"${MIFFY_ENV[@]}"} "$MIFFY" -config "$OUT/miffy-shadow-slow.toml"

	ready reference "http://127.0.0.1:$REF_PORT/api/1"
	ready candidate "http://127.0.0.1:$CAND_PORT/api/1"
	ready candidate-slow "http://127.0.0.1:$SLOW_CAND_PORT/api/1"
	ready nginx "http://127.0.0.1:$NGINX_PORT/api/1"
	ready nginx "http://127.0.0.1:$MIRROR_PORT/api/1"
	ready nginx "http://127.0.0.1:$SLOW_MIRROR_PORT/api/1"
	ready miffy-plain "http://127.0.0.1:$PLAIN_MGMT/readyz"
	ready miffy-shadow "http://127.0.0.1:$SHADOW_MGMT/readyz"
	ready miffy-shadow "http://127.0.0.1:$SHADOW_PORT/api/1"
	ready miffy-shadow-slow "http://127.0.0.1:$SLOW_SHADOW_MGMT/readyz"
	ready miffy-shadow-slow "http://127.0.0.1:$SLOW_SHADOW_PORT/api/1"
}

# url_of CONFIG CANDIDATE, mgmt_of CONFIG CANDIDATE: where to send the load,
# and the miffy's management address (none for direct and nginx). miffy-plain
# never calls the candidate: their "slow" runs (SLOW_SET=all)
# are the same servers measured again, a control for the noise.
url_of() {
	case $1:$2 in
	nginx-mirror:slow) echo "http://127.0.0.1:$SLOW_MIRROR_PORT/" ;;
	miffy-shadow:slow) echo "http://127.0.0.1:$SLOW_SHADOW_PORT/" ;;
	*) url_of_config "$1" ;;
	esac
}

url_of_config() {
	case $1 in
	direct) echo "http://127.0.0.1:$REF_PORT/" ;;
	nginx) echo "http://127.0.0.1:$NGINX_PORT/" ;;
	nginx-mirror) echo "http://127.0.0.1:$MIRROR_PORT/" ;;
	miffy-plain) echo "http://127.0.0.1:$PLAIN_PORT/" ;;
	miffy-shadow) echo "http://127.0.0.1:$SHADOW_PORT/" ;;
	esac
}

mgmt_of() {
	case $1:$2 in
	miffy-shadow:slow) echo "http://127.0.0.1:$SLOW_SHADOW_MGMT" ;;
	*) mgmt_of_config "$1" ;;
	esac
}

mgmt_of_config() {
	case $1 in
	miffy-plain) echo "http://127.0.0.1:$PLAIN_MGMT" ;;
	miffy-shadow) echo "http://127.0.0.1:$SHADOW_MGMT" ;;
	esac
}

# wrk_run DURATION URL: wrk's whole output; in the paced mode, benchtool
# load's at PACED_RPS (TOGETHER_RPS in the together mode), which prints the
# same WRKJSON line.
wrk_run() {
	case $CUR_MODE in
	paced)
		"$BT" load -rate "$PACED_RPS" -d "$1" "$2"
		return
		;;
	together)
		"$BT" load -rate "$TOGETHER_RPS" -d "$1" "$2"
		return
		;;
	esac
	$PIN_WRK wrk -t"$THREADS" -c"$CONNECTIONS" -d"$1" --latency -s "$LUA" "$2"
}

# scrape MGMT CANDIDATE: the upstreams' counters and, given MGMT, miffy's.
scrape() {
	local cand_port=$CAND_PORT
	if [[ ${2:-} == slow ]]; then cand_port=$SLOW_CAND_PORT; fi
	local args=(-upstream "reference=http://127.0.0.1:$REF_PORT/_stats"
		-upstream "candidate=http://127.0.0.1:$cand_port/_stats")
	if [[ -n ${1:-} ]]; then args+=(-metrics "$1/metrics"); fi
	"$BT" scrape "${args[@]}"
}

# measure MODE CAND CONFIG RUN: one wrk run, appended to results.jsonl.
measure() {
	local mode=$1 cand=$2 cfg=$3 run=$4
	local url mgmt before after out json rss=0 rssfile=$OUT/rss-$3-$2.tmp cpu0 cpu1
	url=$(url_of "$cfg" "$cand")
	mgmt=$(mgmt_of "$cfg" "$cand")
	before=$(scrape "$mgmt" "$cand")
	cpu0=$(cpu_snapshot "$cfg" "$cand")
	if [[ -n $mgmt ]]; then
		echo 0 >"$rssfile"
		rss_sampler "$(proxy_pid "$cfg" "$cand")" "$rssfile" &
		SAMPLER=$!
	fi
	out=$(wrk_run "$DURATION" "$url") || { echo "$out" >&2; die "wrk failed against $cfg"; }
	if [[ -n $mgmt ]]; then
		stop_one "$SAMPLER"
		SAMPLER=""
		rss=$(cat "$rssfile")
		"$BT" settle "$mgmt/metrics"
	elif [[ $cfg == nginx-mirror ]]; then
		sleep 0.5 # mirror subrequests still on their way to a slow candidate
	fi
	cpu1=$(cpu_snapshot "$cfg" "$cand")
	after=$(scrape "$mgmt" "$cand")
	json=$(sed -n 's/^WRKJSON //p' <<<"$out")
	[[ -n $json ]] || { echo "$out" >&2; die "no WRKJSON line from wrk (bench/wrk-report.lua)"; }
	printf '{"mode":"%s","candidate":"%s","config":"%s","run":%d,"wrk":%s,"before":%s,"after":%s,"rss_kb":%d,"cpu_before":%s,"cpu_after":%s,"clk_tck":%d}\n' \
		"$mode" "$cand" "$cfg" "$run" "$json" "$before" "$after" "${rss:-0}" "$cpu0" "$cpu1" "$CLK_TCK" >>"$RESULTS"
	awk -v m="$mode" -v c="$cand" -v g="$cfg" -v r="$run" '/^WRKJSON/ {
		match($0, /"requests":[0-9]+/); n = substr($0, RSTART + 11, RLENGTH - 11)
		match($0, /"duration_us":[0-9]+/); d = substr($0, RSTART + 14, RLENGTH - 14)
		match($0, /"p50":[0-9]+/); p50 = substr($0, RSTART + 6, RLENGTH - 6)
		match($0, /"p99":[0-9]+/); p99 = substr($0, RSTART + 6, RLENGTH - 6)
		printf "  %-8s %-4s %-13s run %d: %8.0f req/s  p50 %7.2f ms  p99 %7.2f ms\n", m, c, g, r, n / (d / 1e6), p50 / 1000, p99 / 1000
	}' <<<"$out" >&2
}

# profile: CPU and allocation profiles of miffy-shadow under wrk.
profile() {
	local mgmt=http://127.0.0.1:$SHADOW_MGMT wrk_pid cpu_pid before after json
	log "profiling miffy-shadow for ${PROFILE_SECONDS}s"
	wrk_run "$((PROFILE_SECONDS + 4))s" "$(url_of miffy-shadow fast)" >"$OUT/profile-wrk.txt" &
	wrk_pid=$!
	sleep 2
	before=$("$BT" scrape -metrics "$mgmt/metrics")
	"$BT" fetch "$mgmt/debug/pprof/profile?seconds=$PROFILE_SECONDS" "$OUT/cpu.pprof" &
	cpu_pid=$!
	"$BT" fetch "$mgmt/debug/pprof/allocs?seconds=$PROFILE_SECONDS" "$OUT/allocs.pprof"
	after=$("$BT" scrape -metrics "$mgmt/metrics")
	wait "$cpu_pid"
	wait "$wrk_pid"
	json=$(sed -n 's/^WRKJSON //p' "$OUT/profile-wrk.txt")
	[[ -n $json ]] || json='{}'
	printf '{"seconds":%s,"before":%s,"after":%s,"wrk":%s}\n' "$PROFILE_SECONDS" "$before" "$after" "$json" >"$OUT/profile-counts.json"
	go tool pprof -top -nodecount=25 "$MIFFY" "$OUT/cpu.pprof" >"$OUT/profile-cpu-top.txt" 2>/dev/null
	go tool pprof -top -cum -nodecount=40 "$MIFFY" "$OUT/cpu.pprof" >"$OUT/profile-cpu-cum.txt" 2>/dev/null
	go tool pprof -top -sample_index=alloc_objects -nodecount=25 "$MIFFY" "$OUT/allocs.pprof" >"$OUT/profile-alloc-objects-top.txt" 2>/dev/null
	go tool pprof -top -sample_index=alloc_space -nodecount=20 "$MIFFY" "$OUT/allocs.pprof" >"$OUT/profile-alloc-space-top.txt" 2>/dev/null
}

# run_set MODE: start the servers, warm up, measure RUNS rounds. A round runs
# every configuration once with each candidate in CANDIDATES, a slow run
# right after its fast twin, so that the two share the machine's noise.
run_set() {
	local mode=$1 run item cfg cand items=() runs=$RUNS
	PIN_SRV="" PIN_WRK="" CUR_MODE=$mode
	if [[ $mode == paced ]]; then runs=$PACED_RUNS; fi
	if [[ $mode == pinned ]]; then PIN_SRV="taskset -c 1" PIN_WRK="taskset -c 0"; fi
	for cfg in "${CONFIGS[@]}"; do
		for cand in "${CAND_LIST[@]}"; do
			if [[ $cand == slow && $SLOW_SET != all && $cfg != nginx-mirror && $cfg != miffy-shadow ]]; then
				continue
			fi
			items+=("$cfg:$cand")
		done
	done
	if [[ $mode == together ]]; then
		# miffy-shadow with the fast and with the slow candidate, loaded at the
		# same moment: both see the same machine, the same neighbours and the
		# same candidate processes at work, so the pair differs only in which
		# candidate each miffy waits for.
		runs=$PACED_RUNS
		items=()
		if [[ " ${CAND_LIST[*]} " == *" fast "* && " ${CAND_LIST[*]} " == *" slow "* ]]; then
			items=(miffy-shadow:fast miffy-shadow:slow)
		fi
		if ((${#items[@]} == 0)); then
			log "set: together needs both candidates (BENCH_CANDIDATES=\"fast slow\"); skipped"
			return
		fi
	fi
	log "set: $mode (slow candidate +$SLOW_DELAY): ${items[*]}"
	start_servers
	local mgmt
	for item in "${items[@]}"; do
		wrk_run "$WARMUP" "$(url_of "${item%%:*}" "${item#*:}")" >/dev/null
	done
	# The warm-up's replays (200 ms late to the slow candidate) must not count
	# in the first measured run.
	for item in "${items[@]}"; do
		mgmt=$(mgmt_of "${item%%:*}" "${item#*:}")
		if [[ -n $mgmt ]]; then "$BT" settle "$mgmt/metrics"; fi
	done
	for ((run = 1; run <= runs; run++)); do
		if [[ $mode == together ]]; then
			local pids=() pid
			for item in "${items[@]}"; do
				measure "$mode" "${item#*:}" "${item%%:*}" "$run" &
				pids+=($!)
			done
			for pid in "${pids[@]}"; do wait "$pid" || die "a together run failed"; done
			continue
		fi
		for item in "${items[@]}"; do
			measure "$mode" "${item#*:}" "${item%%:*}" "$run"
		done
	done
	for cfg in miffy-plain miffy-shadow miffy-shadow-slow; do alive "$cfg"; done
	if [[ $PROFILE == 1 && $mode == "$PROFILE_MODE" ]]; then
		profile
	fi
	stop_all
}

# run_bodies: the bodies mode, one set per body size and variant, each
# measuring nginx-mirror and miffy-shadow (fast candidate, equal answers)
# pinned, round-robin over BENCH_RUNS rounds. Results carry the mode
# "bodies/SIZE/VARIANT".
run_bodies() {
	local size variant run item items=(nginx-mirror:fast miffy-shadow:fast) mgmt
	local saved_differ=$DIFFER_EVERY
	DIFFER_EVERY=0
	for size in $BODY_SIZES; do
		for variant in $BODY_VARIANTS; do
			PIN_SRV="" PIN_WRK="" CUR_MODE=bodies
			if command -v taskset >/dev/null && (($(nproc) >= 2)); then
				PIN_SRV="taskset -c 1" PIN_WRK="taskset -c 0"
			fi
			REF_ARGS=(-body-size "$size")
			CAND_ARGS=(-body-size "$size")
			if [[ $variant == reordered ]]; then CAND_ARGS+=(-reorder); fi
			log "set: bodies, $size bytes, candidate's answer: $variant"
			start_servers
			for item in "${items[@]}"; do
				wrk_run "$WARMUP" "$(url_of "${item%%:*}" "${item#*:}")" >/dev/null
			done
			"$BT" settle "$(mgmt_of miffy-shadow fast)/metrics"
			for ((run = 1; run <= RUNS; run++)); do
				for item in "${items[@]}"; do
					measure "bodies/$size/$variant" "${item#*:}" "${item%%:*}" "$run"
				done
			done
			alive miffy-shadow
			stop_all
		done
	done
	REF_ARGS=() CAND_ARGS=() DIFFER_EVERY=$saved_differ
}

# --- main --------------------------------------------------------------------

ensure_tools
mkdir -p "$OUT" "$LOGS"
rm -f "$RESULTS" "$OUT"/profile-*.txt "$OUT/profile-counts.json" "$OUT/gobench.txt"
# The benchmark's own config files say everything; the caller's MIFFY_ and
# KAFKA_ variables must not change them.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(MIFFY|KAFKA)_' || true)

log "building miffy and benchtool"
go build -o "$MIFFY" ./cmd/miffy
go build -o "$BT" ./bench/benchtool

CONFIGS=(direct nginx nginx-mirror miffy-plain miffy-shadow)
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
read -r -a MODE_LIST <<<"$MODES"
read -r -a CAND_LIST <<<"$CANDIDATES"
((${#MODE_LIST[@]})) || die "no mode to run"
PROFILE_MODE=unpinned
[[ " $MODES " == *" unpinned "* ]] || PROFILE_MODE=${MODE_LIST[0]}

{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "nproc: $(nproc)"
	echo "CPU: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "kernel: $(uname -sr)"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "go: $(go version)"
	echo "nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
	echo "wrk: $(wrk -v 2>&1 | head -n 1 | sed 's/ Copyright.*//' || true)"
	echo "miffy: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- cmd internal 2>/dev/null || echo ' (+ uncommitted changes)')"
	echo "settings: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, $RUNS rounds ($PACED_RUNS paced), warm-up $WARMUP, slow candidate +$SLOW_DELAY, candidate differs on 1 value in $DIFFER_EVERY, modes: ${MODE_LIST[*]}, paced rate $PACED_RPS req/s, together rate $TOGETHER_RPS req/s each, miffy environment: ${BENCH_MIFFY_ENV:-none (Go defaults)}"
} >"$OUT/machine.txt"

for mode in "${MODE_LIST[@]}"; do
	if [[ $mode == bodies ]]; then
		run_bodies
	else
		run_set "$mode"
	fi
done

if [[ $GO_BENCH == 1 ]]; then
	log "Go micro-benchmarks"
	go test -run '^$' -bench 'ReplayHeader|JoinURL|Capture|Proxy|CompareAndPublish|ReplayCompare|Encode$|Match$' -benchmem \
		-benchtime "$GO_BENCH_TIME" ./internal/shadow/ ./internal/publish/ ./internal/route/ >"$OUT/gobench.txt"
fi

"$BT" report -results "$RESULTS" -machine "$OUT/machine.txt" -profile-dir "$OUT" \
	-go-bench "$OUT/gobench.txt" -out "$REPORT"
log "wrote $REPORT"
