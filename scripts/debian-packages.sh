#!/usr/bin/env bash
# ensure_debian_packages PKG...: installs the missing ones when root (apt-get, with the packages'
# services kept from starting: the tests run their own nginx on free ports), otherwise names them
# and returns 1. Sourced by scripts/test.sh and scripts/try-pebble.sh.
ensure_debian_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "Debian packages present: $*"
    return 0
  fi
  if [ -n "${SKIP_APT:-}" ]; then
    echo "missing Debian packages: ${missing[*]} (SKIP_APT is set)" >&2
    return 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]}" >&2
    echo "  install them with: sudo apt-get install ${missing[*]}" >&2
    echo "  (or run this script as root, which installs them)" >&2
    return 1
  fi
  echo "installing: ${missing[*]}"
  local policy="" rc=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
  fi
  { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } || rc=$?
  [ -z "$policy" ] || rm -f "$policy"
  if [ $rc -ne 0 ]; then
    echo "apt-get install ${missing[*]} failed (exit $rc)" >&2
    return 1
  fi
}
