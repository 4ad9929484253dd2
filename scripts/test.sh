#!/usr/bin/env bash
# Runs Verity's whole test suite: vet, then every package's tests against
# real SQLite and a throwaway PostgreSQL 15 cluster that this script starts
# (installing Debian's postgresql package when it is missing) and stops,
# with headless Chromium for the sign-in pages and Node.js for the token
# checks of a third-party JOSE library (both installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> go vet"
go vet ./...

# The browser tests drive Debian's Chromium; the OIDC tests verify tokens
# with the npm jose library under Node.js. Install what is missing.
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
	echo "==> installing ${need[*]}"
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
	else
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
	fi
fi

echo "==> starting a throwaway PostgreSQL"
eval "$(./scripts/pgtest.sh start)"
trap './scripts/pgtest.sh stop >/dev/null 2>&1 || true' EXIT
echo "    $VERITY_TEST_POSTGRES"

echo "==> go test -race"
go test -race -count=1 -timeout 20m "$@" ./...
