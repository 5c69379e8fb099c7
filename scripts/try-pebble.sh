#!/usr/bin/env bash
# Try wile end to end on this machine: a local Pebble issues a certificate for try.example.
# Needs the Debian packages pebble, nginx-light and openssl (scripts/test.sh installs them as root),
# and `npm ci` + `npm run build` done once.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules/tsx ] || { echo "try-pebble: run npm ci first" >&2; exit 1; }
[ -f dist/wile.cjs ] || { echo "try-pebble: dist/wile.cjs is missing: run npm run build" >&2; exit 1; }
exec node --import tsx scripts/try-pebble.ts "$@"
