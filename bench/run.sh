#!/usr/bin/env bash
# Whole-system load: builds verity, starts one node on SQLite and one on a
# throwaway PostgreSQL 15 (both on 127.0.0.1, plain HTTP), and drives each
# with bench/load for every scenario. Prints one line per run; the figures
# go to docs/benchmarks.md. Usage: bench/run.sh [duration] [concurrency]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10s}
CONC=${2:-16}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	./scripts/pgtest.sh stop >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

go build -o "$WORK/verity" ./cmd/verity
go build -o "$WORK/load" ./bench/load
eval "$(./scripts/pgtest.sh start)"
PGDSN="${VERITY_TEST_POSTGRES/\/postgres\?/\/verity_bench?}"
psql "$VERITY_TEST_POSTGRES" -qc "CREATE DATABASE verity_bench" >/dev/null

# start NAME DSN PORT: runs a node and waits for its banner.
start() {
	local name=$1 dsn=$2 port=$3
	env -u VERITY_TEST_POSTGRES -u VERITY_PGTEST_DIR VERITY_STORE_DSN="$dsn" VERITY_HTTP_ADDR="127.0.0.1:$port" \
		VERITY_HTTP_TLS_DISABLE=true VERITY_DATA_DIR="$WORK/$name" VERITY_LOG_LEVEL=warn \
		"$WORK/verity" server >"$WORK/$name.out" 2>"$WORK/$name.err" &
	PIDS+=($!)
	for _ in $(seq 100); do grep -q "Sign in:" "$WORK/$name.out" 2>/dev/null && return 0; sleep 0.2; done
	echo "node $name did not start" >&2; cat "$WORK/$name.err" >&2; exit 1
}

token() {
	local port=$1 name=$2 pw
	pw=$(awk '/password:/ {print $2}' "$WORK/$name.out")
	curl -fsS -H 'Content-Type: application/json' "http://127.0.0.1:$port/api/v1/login" \
		-d "{\"userPrincipalName\":\"admin@verity.local\",\"password\":\"$pw\"}" | sed -E 's/.*"access_token":"([^"]+)".*/\1/'
}

start sqlite "$WORK/sqlite.db" 18443
start postgres "$PGDSN" 18444
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for engine in sqlite:18443 postgres:18444; do
	name=${engine%%:*} port=${engine##*:}
	tok=$(token "$port" "$name")
	for scenario in read transitive write mixed; do
		"$WORK/load" -url "http://127.0.0.1:$port" -token "$tok" -scenario "$scenario" -c "$CONC" -d "$DUR" -label "$name"
	done
done
