#!/usr/bin/env bash
# Whole-system benchmark of Verity's identity-aware proxy against peers, on
# 127.0.0.1 only. It builds verity and bench/proxy, starts a static "ok"
# upstream, a Verity node (`verity up`: SQLite and a local CA in a temp
# directory, the proxy in plain HTTP on a port of its own), nginx as a
# reverse proxy with upstream keep-alive, a tuned httputil.ReverseProxy and
# oauth2-proxy (built from the Go module proxy; skipped with a message if it
# does not build) signed in through Verity's own OpenID Connect provider;
# applies a tenant of 200 enabled conditional access policies and 10,000
# role assignments; signs the bench user in through the browser flow; and
# runs wrk against each configuration in turn, ROUNDS times. Then it creates
# SESSIONS more sign-in sessions, restarts the node and reads its resident
# memory before and after one request through the proxy per session.
#
# Needs wrk and nginx (Debian: apt-get install -y nginx wrk) and Go. Every
# load run is at most 10 s; the whole run takes about 8 minutes with the
# defaults (the first build of oauth2-proxy adds about one). Everything it
# started is stopped on exit.
#
# Usage: bench/proxy/run.sh
# Environment: ROUNDS=3 (0: memory only), DURATION=10s (throughput runs), LAT_DURATION=5s
# (latency runs), SESSIONS=1000, SIGNIN_CONC=4 (sign-ins in flight),
# OAUTH2_PROXY=path (a built oauth2-proxy instead of building one),
# PROFILE=1 (a perf profile of the node under load; needs perf).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
SESSIONS=${SESSIONS:-1000}
SIGNIN_CONC=${SIGNIN_CONC:-4}
DURATION=${DURATION:-10s}
LAT_DURATION=${LAT_DURATION:-5s}
O2P_MODULE=github.com/oauth2-proxy/oauth2-proxy/v7@v7.15.6
for tool in wrk nginx go curl openssl; do
	command -v "$tool" >/dev/null || { echo "bench/proxy: $tool is required (Debian: apt-get install -y nginx wrk)" >&2; exit 1; }
done

WORK=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(go version | cut -d' ' -f3-4); $(nginx -v 2>&1 | cut -d' ' -f3); wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2)"

go build -o "$WORK/verity" ./cmd/verity
(cd bench/proxy && go build -o "$WORK/proxybench" .)
O2P=${OAUTH2_PROXY:-}
if [ -z "$O2P" ]; then
	if (cd "$WORK" && GOBIN="$WORK/bin" GOFLAGS=-mod=mod go install "$O2P_MODULE") >"$WORK/o2p-build.log" 2>&1; then
		O2P="$WORK/bin/oauth2-proxy"
	else
		echo "== oauth2-proxy ($O2P_MODULE) did not build; it is left out:" >&2
		tail -5 "$WORK/o2p-build.log" >&2
	fi
fi

mapfile -t PORTS < <("$WORK/proxybench" ports -n 6)
UP=${PORTS[0]} NG=${PORTS[1]} RP=${PORTS[2]} O2PP=${PORTS[3]} API=${PORTS[4]} VX=${PORTS[5]}

# wait_port PORT NAME: until something listens there.
wait_port() {
	for _ in $(seq 150); do
		(echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.2
	done
	echo "bench/proxy: $2 did not listen on $1" >&2
	exit 1
}

"$WORK/proxybench" upstream -addr "127.0.0.1:$UP" &
UPID=$!
PIDS+=("$UPID")
wait_port "$UP" upstream

# start_verity: one node, SQLite and the local CA in $WORK/verity-data;
# the proxy serves plain HTTP, as behind a TLS-terminating load balancer,
# like every other configuration here.
start_verity() {
	: >"$WORK/verity.out"
	VERITY_PROXY_ADDR="127.0.0.1:$VX" VERITY_PROXY_TLS_DISABLE=true VERITY_LOG_LEVEL=warn \
		"$WORK/verity" up --addr "127.0.0.1:$API" --data "$WORK/verity-data" >>"$WORK/verity.out" 2>"$WORK/verity.err" &
	VPID=$!
	PIDS+=("$VPID")
	for _ in $(seq 300); do
		grep -q "Sign in:" "$WORK/verity.out" 2>/dev/null && return 0
		kill -0 "$VPID" 2>/dev/null || break
		sleep 0.2
	done
	echo "bench/proxy: verity did not start" >&2
	cat "$WORK/verity.err" >&2
	exit 1
}
start_verity
ADMIN_PASSWORD=$(awk '/password:/ {print $2}' "$WORK/verity.out")
CA=$(awk '/CA to trust:/ {print $4}' "$WORK/verity.out")
CONN=(-api "https://127.0.0.1:$API" -ca "$CA" -route "https://bench.localhost:$VX/" -proxy-addr "127.0.0.1:$VX" -plain)

echo "== tenant"
eval "$("$WORK/proxybench" setup "${CONN[@]}" -admin-password "$ADMIN_PASSWORD" -upstream "http://127.0.0.1:$UP/" \
	-o2p-redirect "http://127.0.0.1:$O2PP/oauth2/callback")"

mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $WORK/nginx/body;
	proxy_temp_path $WORK/nginx/proxy;
	fastcgi_temp_path $WORK/nginx/fastcgi;
	uwsgi_temp_path $WORK/nginx/uwsgi;
	scgi_temp_path $WORK/nginx/scgi;
	upstream app {
		server 127.0.0.1:$UP;
		keepalive 128;
	}
	server {
		listen 127.0.0.1:$NG;
		location / {
			proxy_pass http://app;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Host \$host;
			proxy_set_header X-Forwarded-Proto \$scheme;
		}
	}
}
EOF
nginx -e "$WORK/nginx/error.log" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
NGPID=$!
PIDS+=("$NGPID")
wait_port "$NG" nginx

"$WORK/proxybench" reverseproxy -addr "127.0.0.1:$RP" -upstream "http://127.0.0.1:$UP" -idle 256 &
RPPID=$!
PIDS+=("$RPPID")
wait_port "$RP" httputil.ReverseProxy

# Each target with the processes whose processor time its requests cost
# (nginx: its workers; direct: the upstream).
TARGETS=(-target "direct=http://127.0.0.1:$UP/" -pid "direct=$UPID"
	-target "nginx=http://127.0.0.1:$NG/" -pid "nginx=$(pgrep -P "$NGPID" | paste -sd,)"
	-target "httputil=http://127.0.0.1:$RP/" -pid "httputil=$RPPID")
if [ -n "$O2P" ]; then
	# oauth2-proxy signs users in with Verity's OpenID Connect provider and
	# keeps the session in its own encrypted cookie. Request logging is off,
	# as nginx's access log is.
	SSL_CERT_FILE="$CA" "$O2P" --http-address="127.0.0.1:$O2PP" --provider=oidc \
		--oidc-issuer-url="https://127.0.0.1:$API" --client-id="$O2P_CLIENT_ID" --client-secret="$O2P_CLIENT_SECRET" \
		--redirect-url="http://127.0.0.1:$O2PP/oauth2/callback" --upstream="http://127.0.0.1:$UP/" \
		--cookie-secret="$(openssl rand -hex 16)" --cookie-secure=false --email-domain='*' --scope="openid email profile" \
		--skip-provider-button=true --insecure-oidc-allow-unverified-email=true --request-logging=false \
		>"$WORK/o2p.out" 2>&1 &
	O2PPID=$!
	PIDS+=("$O2PPID")
	wait_port "$O2PP" oauth2-proxy
	O2P_COOKIE=$("$WORK/proxybench" o2p-signin "${CONN[@]}" -url "http://127.0.0.1:$O2PP/" -password "$BENCH_PASSWORD")
	TARGETS+=(-target "oauth2-proxy=http://127.0.0.1:$O2PP/" -header "oauth2-proxy=Cookie: $O2P_COOKIE" -pid "oauth2-proxy=$O2PPID")
	echo "== oauth2-proxy $("$O2P" --version 2>&1 | head -1)"
fi
TARGETS+=(-target "verity=http://127.0.0.1:$VX/" -header "verity=Host: bench.localhost:$VX" -header "verity=Cookie: $VERITY_COOKIE" -pid "verity=$VPID")

echo "== $POLICIES enabled conditional access policies, $ROLE_ASSIGNMENTS role assignments; $ROUNDS rounds"
if [ "$ROUNDS" -gt 0 ]; then
	"$WORK/proxybench" measure -rounds "$ROUNDS" -d "$DURATION" -ld "$LAT_DURATION" "${TARGETS[@]}"
fi
echo
echo "== Verity's proxy metrics after the rounds"
curl -fsS --cacert "$CA" "https://127.0.0.1:$API/metrics" | grep -E '^verity_proxy_(requests_total|decisions_total|decision_seconds_(sum|count)|upstream_seconds_(sum|count)|audit_failures_total)' || true

if [ "${PROFILE:-0}" = 1 ]; then
	# Where the node's processor time goes under load: perf samples the
	# process (Go binaries carry their symbols), cumulative per function.
	# Then how many fsyncs the node makes per proxied request, under load
	# and on one connection (every decision is an audit record).
	echo
	echo "== profile of the node under wrk -t2 -c64 (perf, 8 s)"
	VX_WRK=(-H "Host: bench.localhost:$VX" -H "Cookie: $VERITY_COOKIE" "http://127.0.0.1:$VX/")
	wrk -t2 -c64 -d10s "${VX_WRK[@]}" >"$WORK/wrk-profile.txt" &
	WRK=$!
	sleep 1
	perf record -q -F 999 -g -p "$VPID" -o "$WORK/perf.data" -- sleep 8 2>/dev/null
	wait "$WRK"
	grep Requests/sec "$WORK/wrk-profile.txt"
	perf report -i "$WORK/perf.data" --stdio --children --sort symbol -g none 2>/dev/null |
		grep -E '^ +[0-9]' | grep -E 'internal/(proxy|store|decision|access|rbac|keyring|signin)|net/http\.\(\*conn\)\.serve|ReverseProxy\)\.ServeHTTP|persistConn\)\.(readLoop|writeLoop)|gcBgMarkWorker|syscall\.(read|write)$|encoding/json\.Marshal$|sqlite3VdbeExec' |
		awk 'NR <= 40 {printf "  %7s  %s\n", $1, $4}' || true
	echo "  -- self time, top 30"
	perf report -i "$WORK/perf.data" --stdio --no-children --sort symbol -g none 2>/dev/null |
		grep -E '^ +[0-9]' | awk 'NR <= 30 {printf "  %7s  %s\n", $1, $3}' || true
	for c in "1 1" "2 64"; do
		read -r t n <<<"$c"
		perf stat -x, -e syscalls:sys_enter_fsync -p "$VPID" -o "$WORK/fsync.txt" -- sleep 5.5 &
		STAT=$!
		sleep 0.2
		REQS=$(wrk -t"$t" -c"$n" -d5s "${VX_WRK[@]}" | awk '/requests in/ {print $1}')
		wait "$STAT"
		FSYNCS=$(awk -F, '/sys_enter_fsync/ {print $1}' "$WORK/fsync.txt")
		echo "  wrk -c$n: $REQS requests, $FSYNCS fsyncs by the node ($(awk -v f="$FSYNCS" -v r="$REQS" 'BEGIN {printf "%.2f", f/r}') per request)"
	done
fi

echo
echo "== memory: $SESSIONS sign-in sessions, one request each through the proxy"
"$WORK/proxybench" sessions "${CONN[@]}" -n "$SESSIONS" -c "$SIGNIN_CONC" -password "$BENCH_PASSWORD" -out "$WORK/cookies.txt"
echo "$VERITY_COOKIE" >>"$WORK/cookies.txt"
# A fresh process, so that what sign-in (argon2id, 32 MiB a hash) and the
# rounds allocated is not counted; sessions and cookies outlive a restart.
# gctrace prints the live heap each garbage collection finds.
kill -TERM "$VPID"
wait "$VPID" 2>/dev/null || true
GODEBUG=gctrace=1 start_verity
rss() { awk '/VmRSS/ {print $2}' "/proc/$VPID/status"; }
live() { grep -Eo '[0-9]+->[0-9]+->[0-9]+ MB' "$WORK/verity.err" | tail -1 | awk -F'->' '{print $3+0}'; }
HIT=(-url "http://127.0.0.1:$VX/" -host "bench.localhost:$VX" -c 8 -cookies "$WORK/cookies.txt")
# Warm up with one session over the same connections, long enough for the
# garbage collector to run a few times; after the sessions' requests, the
# same again, so that it runs with their data in the caches.
"$WORK/proxybench" hit "${HIT[@]}" -first 1 -repeat 4000
sleep 1
RSS0=$(rss) LIVE0=$(live)
"$WORK/proxybench" hit "${HIT[@]}"
"$WORK/proxybench" hit "${HIT[@]}" -first 1 -repeat 4000
sleep 1
RSS1=$(rss) LIVE1=$(live)
N=$(grep -c . "$WORK/cookies.txt")
awk -v r0="$RSS0" -v r1="$RSS1" -v l0="$LIVE0" -v l1="$LIVE1" -v n="$N" 'BEGIN {
	printf "RSS %.1f -> %.1f MiB: %+.1f MiB for %d sessions, %.0f bytes each = %.1f MiB per 10k sessions\n", r0/1024, r1/1024, (r1-r0)/1024, n, (r1-r0)*1024/n, (r1-r0)*10000/n/1024
	printf "live heap (gctrace, whole MB) %d -> %d MB: %.1f MB per 10k sessions\n", l0, l1, (l1-l0)*10000/n }'
