#!/usr/bin/env bash
# Sets up and runs the demo. Needs only Python 3.11: uses mosquitto if installed, else an
# embedded broker. Extra arguments go to `gridalarm demo` (e.g. --broker mqtt://host:1883).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/gridalarm demo "$@"
