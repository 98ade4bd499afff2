#!/usr/bin/env bash
# Installs the Debian packages the project drives for real.
#   system-packages.sh         what the tests need: Chromium (web pages), Dovecot (operator), fonts;
#                              fails when one is missing and this is not root
#   system-packages.sh --demo  what `make demo` needs: Dovecot (the demo's mail); never fails: without
#                              it the demo runs without mail, and says so
set -euo pipefail

demo=0
if [ "${1:-}" = "--demo" ]; then
  demo=1
fi

has_dovecot() {
  # /usr/sbin is often not on a user's PATH
  command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ]
}

need=()
if [ $demo -eq 0 ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  fc-list 2>/dev/null | grep -qi dejavu || need+=(fonts-dejavu-core)
fi
has_dovecot || need+=(dovecot-imapd dovecot-lmtpd)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

no_mail() {
  echo "Dovecot is not installed ($1): the demo runs WITHOUT MAIL." >&2
  echo "  To have mail: sudo apt-get install dovecot-imapd dovecot-lmtpd (or sudo make system-packages), then make demo." >&2
  exit 0
}

if [ "$(id -u)" != 0 ]; then
  [ $demo -eq 1 ] && no_mail "installing it needs root"
  echo "missing Debian packages: ${need[*]} (run as root, or install them)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  [ $demo -eq 1 ] && no_mail "no apt-get here"
  echo "missing packages: ${need[*]} (no apt-get: install them with your system's package manager)" >&2
  exit 1
fi
echo "installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }; then
  [ $demo -eq 1 ] && no_mail "apt-get failed"
  exit 1
fi
