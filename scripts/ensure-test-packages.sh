#!/usr/bin/env bash
# What the tests drive besides Python: Debian's Chromium (browser tests), nginx and Caddy (the
# reverse-proxy examples in deploy/ are served through for real). Installs what is missing,
# in one apt-get call, when we are root on Debian; otherwise says how.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v caddy >/dev/null || missing+=(caddy)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing ${missing[*]} for the tests (apt-get)…"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "Missing for the tests: ${missing[*]}. Tests that need them fail under CI and skip otherwise." >&2
  echo "Install with: sudo apt-get install -y ${missing[*]}" >&2
fi
