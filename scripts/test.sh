#!/usr/bin/env bash
# The test command: installs what the tests need, then runs lint, contracts and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:/usr/sbin:$PATH"
ruff check wire edge firmware_sim rules cloud replay gridalarm rigs tests benchmarks
lint-imports
mypy
pytest "$@"
