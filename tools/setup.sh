#!/usr/bin/env bash
# Installs what the app (and with --dev, the test suite) needs on a fresh Debian machine.
# Python packages come from requirements*.txt; the browser tests use Debian's Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ "${1:-}" == "--dev" ]]; then
  $PY -m pip install -q --root-user-action=ignore -r requirements-dev.txt
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
else
  $PY -m pip install -q --root-user-action=ignore -r requirements.txt
fi
