#!/usr/bin/env bash
# Runs every benchmark behind docs/benchmarks.md: the Go micro-benchmarks
# (store, audit, snapshot, decisions, apply), the snapshot build of a large
# directory in a fresh process (time and peak RSS), the whole-system load on
# a SQLite and a PostgreSQL node, and the identity-aware proxy against peers
# (bench/proxy, with wrk and nginx). Needs PostgreSQL 15 like the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(mktemp -d)
trap './scripts/pgtest.sh stop >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
eval "$(./scripts/pgtest.sh start)"

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(go version)"
echo "== go benchmarks"
go test -run '^$' -bench . -benchmem -benchtime 2s ./internal/store/ ./internal/decision/ ./internal/apply/
go test -run '^$' -bench 'SnapshotBuild' -benchmem -benchtime 5x ./internal/directory/
go test -run '^$' -bench 'TransitiveMemberOf|InGroup|DirectoryRoles|InTrustedLocation|UserByUPN' -benchmem ./internal/directory/

echo "== conditional access (one core) and device filters"
go test -run '^$' -bench 'Evaluate|Compile' -benchmem -cpu 1 -benchtime 2s ./internal/access/
go test -run '^$' -bench 'Match|Country' -benchmem ./internal/access/devicefilter/ ./internal/geo/

echo "== conditional access against OPA (separate module bench/opa)"
(cd bench/opa && go test -run TestAgreement -bench . -benchtime 3s -cpu 1)

echo "== role-based access, ABAC conditions, the joined decision, and Cedar"
go test -run XXX -bench 'Check|WhoCan' -benchmem -benchtime 2s ./internal/rbac/
go test -run XXX -bench . -benchmem ./internal/rbac/condition/
go test -run '^$' -bench Decide -benchtime 2s -cpu 1 ./internal/decision/
(cd bench/cedar && go test -run TestAgreement -bench . -benchtime 3s -cpu 1)

echo "== snapshot build: 100k users, 10k groups (5 levels), 1k apps, fresh process"
go build -o "$WORK/snapshot" ./bench/snapshot
"$WORK/snapshot" -populate -dsn "$WORK/big.db" >/dev/null
"$WORK/snapshot" -dsn "$WORK/big.db"
psql "$VERITY_TEST_POSTGRES" -qc "CREATE DATABASE bench_snapshot" >/dev/null
PGBIG="${VERITY_TEST_POSTGRES/\/postgres\?/\/bench_snapshot?}"
"$WORK/snapshot" -populate -dsn "$PGBIG" >/dev/null
"$WORK/snapshot" -dsn "$PGBIG"
./scripts/pgtest.sh stop >/dev/null 2>&1 || true

echo "== whole-system load (bench/run.sh)"
./bench/run.sh "${LOAD_DURATION:-10s}" "${LOAD_CONCURRENCY:-16}"

echo "== identity-aware proxy against nginx, httputil.ReverseProxy and oauth2-proxy (bench/proxy/run.sh)"
if command -v wrk >/dev/null && command -v nginx >/dev/null; then
	./bench/proxy/run.sh
else
	echo "skipped: needs wrk and nginx (Debian: apt-get install -y nginx wrk)"
fi
