#!/usr/bin/env bash
# Try wile end to end on this machine: a local Pebble (with its DNS stand-in) and nginx on
# 127.0.0.1, and dist/wile.cjs issuing a certificate for try.example into a temporary home.
# Installs what it needs: the Debian packages pebble, nginx-light and openssl (as root; otherwise it
# names them), and the npm dev dependencies (npm ci) when node_modules is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/debian-packages.sh
. scripts/debian-packages.sh
ensure_debian_packages pebble nginx-light openssl
[ -d node_modules/tsx ] || npm ci --no-audit --no-fund --loglevel=error
[ -f dist/wile.cjs ] || npm run --silent build
exec node --import tsx scripts/try-pebble.ts "$@"
