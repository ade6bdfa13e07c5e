#!/usr/bin/env bash
# Creates .venv and installs gridalarm with its test tools; says what it does while it does it.
# Safe to run again: when pyproject.toml is unchanged since the last install, it installs nothing.
# Debian and Ubuntu ship Python without venv/ensurepip; install python3-venv when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
STAMP=.venv/.gridalarm-installed
say() { echo "setup: $*"; }

want=$( { "$PY" --version 2>&1; cat pyproject.toml; } | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/gridalarm ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  say "up to date (.venv matches pyproject.toml; delete $STAMP to reinstall)"
  exit 0
fi

if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $("$PY" --version 2>&1)"
  if ! "$PY" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    ver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    say "installing python${ver}-venv (apt-get; Debian ships Python without venv)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "python${ver}-venv" >/dev/null \
      || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    "$PY" -m venv .venv
  fi
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_WARN_SCRIPT_LOCATION=1 PIP_PROGRESS_BAR=off
log=.venv/pip-install.log
say "upgrading pip"
.venv/bin/python -m pip install -q --upgrade pip >"$log" 2>&1 || { cat "$log"; exit 1; }
say "installing gridalarm and its dependencies (FastAPI, paho-mqtt, pymodbus, SQLAlchemy, ...)"
say "  and the test tools (pytest, mypy, ruff, import-linter, Playwright); about a minute the first time"
.venv/bin/python -m pip install -q -e ".[test]" >>"$log" 2>&1 || { cat "$log"; exit 1; }
echo "$want" >"$STAMP"
say "done: $(.venv/bin/python -m pip list 2>/dev/null | tail -n +3 | wc -l) packages in .venv (pip's output: $log)"
