#!/usr/bin/env bash
# Installs what the app (and with --dev, the test suite) needs on a fresh Debian machine.
# Python packages come from requirements*.txt; the browser tests use Debian's Chromium, the
# several-machines tests start throwaway Redis and PostgreSQL servers from Debian's packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ "${1:-}" == "--dev" ]]; then
  $PY -m pip install -q --root-user-action=ignore -r requirements-dev.txt
  missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  command -v redis-server >/dev/null || missing+=(redis-server)
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  if (( ${#missing[@]} )); then
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
else
  $PY -m pip install -q --root-user-action=ignore -r requirements.txt
fi
