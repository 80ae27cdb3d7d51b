#!/usr/bin/env bash
# Browser tests drive Debian's Chromium; install it when it is missing and we may.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Chromium for the browser tests (apt-get)…"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "Chromium is not at /usr/bin/chromium; browser tests will fail under CI and skip otherwise." >&2
  echo "Install it with: sudo apt-get install -y chromium" >&2
fi
