#!/usr/bin/env bash
# Install everything the tests need, then run lint, type checks and the whole test suite.
# Works on a fresh machine with Python 3.11+; installs Debian's chromium for the browser test
# (with sudo when not root). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
# One command a line: under set -e a failure inside an && list would not stop the script.
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
echo "== import contracts"; .venv/bin/lint-imports --no-cache
# stdin from /dev/null: CI may start us with no standard input at all, and IPython (imported
# by the widget tests) cannot even be imported without one.
echo "== pytest"; .venv/bin/python -m pytest "$@" </dev/null
