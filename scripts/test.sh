#!/usr/bin/env bash
# The one test command (README, .ci/run): from a fresh Debian 12 machine with Node >= 20 to a full
# check. Installs missing Debian packages when run as root (otherwise names them and stops), then:
# npm ci, build + dist freshness, standalone binaries, typecheck, lint, unit tests, e2e tests
# against Pebble/nginx, the secrets audit of the e2e run, the arm64 binary under qemu, and the
# benchmark in quick mode.
# Stops at the first failure with a non-zero exit.
#
# Environment: SKIP_APT=1 skips the package step; SKIP_NPM_CI=1 reuses node_modules.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
START=$(date +%s)
SECTION_START=$START
ARM64_SYSROOT=/usr/aarch64-linux-gnu

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  B=$'\e[1m' R=$'\e[31m' G=$'\e[32m' N=$'\e[0m'
else
  B='' R='' G='' N=''
fi

section_done() {
  if [ -n "${CURRENT:-}" ]; then
    local now
    now=$(date +%s)
    echo "${G}--- ${CURRENT}: ok ($((now - SECTION_START)) s)${N}"
  fi
}

section() {
  section_done
  CURRENT="$1"
  SECTION_START=$(date +%s)
  echo
  echo "${B}=== $1 ===${N}"
}

fail() {
  echo "${R}FAILED${CURRENT:+ in \"$CURRENT\"}: $*${N}" >&2
  exit 1
}

trap 'rc=$?; if [ $rc -ne 0 ]; then echo "${R}scripts/test.sh: \"${CURRENT:-setup}\" failed (exit $rc) after $(( $(date +%s) - START )) s${N}" >&2; fi' EXIT

# ----------------------------------------------------------------------------------------------
section "Debian packages"
# pebble: pebble + pebble-challtestsrv; nginx-light: the webroot server; openssl: listener CA and
# certificate checks; qemu-user-static + *-arm64-cross: start the arm64 binary; time: GNU time for the
# benchmark; git: the dist freshness check; ca-certificates: npm over HTTPS; cron: the real
# crontab for the install-cron e2e test; bind9: named, the authoritative DNS server with TSIG-signed
# dynamic updates that the dns-01 / RFC 2136 tests run (test/helpers/bind9.ts); pdns-server +
# pdns-backend-sqlite3 + sqlite3: the PowerDNS Authoritative Server whose real HTTP API the powerdns
# provider is tested against (test/helpers/pdns.ts; sqlite3 creates its database from the schema);
# apache2: the stateless http-01 snippet wile prints for Apache, checked with apache2ctl -t and
# served by apache2 -X (test/e2e/stateless.test.ts); libnginx-mod-stream: nginx's stream module
# (ssl_preread), the tls-alpn-01 front in test/e2e/tls-alpn.test.ts; binutils +
# binutils-aarch64-linux-gnu: strip the Node binaries of the standalone builds (scripts/lib/sea.mjs);
# xz-utils: the .xz form of a release and the install tests.
PACKAGES=(pebble nginx-light libnginx-mod-stream openssl qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross
  libgcc-s1-arm64-cross libatomic1-arm64-cross time git ca-certificates tar gzip cron haproxy openssh-server openssh-client
  curl wget busybox shellcheck dash dovecot-imapd postfix bind9 pdns-server pdns-backend-sqlite3 sqlite3
  apache2 binutils binutils-aarch64-linux-gnu xz-utils)
# shellcheck source=scripts/debian-packages.sh
. scripts/debian-packages.sh
ensure_debian_packages "${PACKAGES[@]}" || fail "Debian packages missing (see above)"

command -v node >/dev/null || fail "node not found: install Node.js 20 or newer"
command -v npm >/dev/null || fail "npm not found: install Node.js 20 or newer with npm"
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" -ge 20 ] || fail "Node $(node --version) is too old: wile needs Node 20 or newer"
echo "node $(node --version), npm $(npm --version 2>/dev/null)"

# ----------------------------------------------------------------------------------------------
section "npm ci"
if [ -n "${SKIP_NPM_CI:-}" ] && [ -d node_modules ]; then
  echo "SKIP_NPM_CI set: keeping node_modules"
else
  npm ci --no-audit --no-fund --loglevel=error
fi

# ----------------------------------------------------------------------------------------------
section "build (dist/wile.cjs) and freshness"
npm run --silent build
[ -f dist/wile.cjs ] || fail "npm run build produced no dist/wile.cjs"
if ! git ls-files --error-unmatch dist/wile.cjs >/dev/null 2>&1; then
  fail "dist/wile.cjs is not committed: run npm run build and commit it"
fi
if ! git diff --quiet -- dist/wile.cjs; then
  git --no-pager diff --stat -- dist/wile.cjs
  fail "dist/wile.cjs is stale: run npm run build and commit it"
fi
echo "dist/wile.cjs: $(wc -c <dist/wile.cjs) bytes, matches the committed file"

# ----------------------------------------------------------------------------------------------
section "standalone binaries (npm run build:sea)"
npm run --silent build:sea
for f in dist/wile-linux-x64 dist/wile-linux-arm64 dist/SHA256SUMS; do
  [ -f "$f" ] || fail "$f was not built"
done
(cd dist && sha256sum -c SHA256SUMS) || fail "dist/SHA256SUMS does not match"

# ----------------------------------------------------------------------------------------------
section "typecheck"
npm run --silent typecheck

# ----------------------------------------------------------------------------------------------
section "lint"
npm run --silent lint
# install.sh is POSIX sh: shellcheck it as such, and parse it with the shells it must run under.
shellcheck -s sh install.sh || fail "shellcheck install.sh"
for shell in dash bash "busybox ash"; do $shell -n install.sh || fail "$shell cannot parse install.sh"; done

# ----------------------------------------------------------------------------------------------
section "unit tests"
npm run --silent test:unit

# ----------------------------------------------------------------------------------------------
section "e2e tests (Pebble, pebble-challtestsrv, nginx)"
# Every run's argv and output, and the homes, deploy targets and temp dirs, are recorded for the
# secrets audit below (test/helpers/secrets-audit.ts).
WILE_TEST_AUDIT_DIR=$(mktemp -d /tmp/wile-secrets-audit-XXXXXX)
export WILE_TEST_AUDIT_DIR
CI="${CI:-true}" npm run --silent test:e2e

# ----------------------------------------------------------------------------------------------
section "secrets audit of the e2e run (key material, EAB keys, PKCS#12 passwords)"
node scripts/secrets-audit.mjs "$WILE_TEST_AUDIT_DIR" || fail "secrets leaked (see above; records in $WILE_TEST_AUDIT_DIR)"
rm -rf "$WILE_TEST_AUDIT_DIR"
unset WILE_TEST_AUDIT_DIR

# ----------------------------------------------------------------------------------------------
section "arm64 binary under qemu-user-static"
[ -d "$ARM64_SYSROOT" ] || fail "$ARM64_SYSROOT missing: apt-get install libc6-arm64-cross libstdc++6-arm64-cross"
out=$(qemu-aarch64-static -L "$ARM64_SYSROOT" dist/wile-linux-arm64 --version 2>&1) ||
  fail "dist/wile-linux-arm64 --version under qemu failed: $out"
echo "qemu-aarch64-static dist/wile-linux-arm64 --version: $out"
want=$(node dist/wile.cjs --version)
[ "$out" = "$want" ] || fail "arm64 binary says \"$out\", dist/wile.cjs says \"$want\""

# ----------------------------------------------------------------------------------------------
section "benchmark (quick)"
npm run --silent bench -- --quick

section_done
echo
echo "${G}${B}all checks passed in $(( $(date +%s) - START )) s${N} ($ROOT)"
