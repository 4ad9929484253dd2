#!/usr/bin/env bash
# Runs Verity's whole test suite: vet, then every package's tests against
# real SQLite and a throwaway PostgreSQL 15 cluster that this script starts
# (installing Debian's postgresql package when it is missing) and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> go vet"
go vet ./...

echo "==> starting a throwaway PostgreSQL"
eval "$(./scripts/pgtest.sh start)"
trap './scripts/pgtest.sh stop >/dev/null 2>&1 || true' EXIT
echo "    $VERITY_TEST_POSTGRES"

echo "==> go test -race"
go test -race -count=1 -timeout 20m "$@" ./...
