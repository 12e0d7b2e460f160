#!/usr/bin/env bash
# Installs what edgeq needs (scripts/install.sh) and runs the whole test suite: Python tests and the lit pass tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/python -m pytest -q "$@"
