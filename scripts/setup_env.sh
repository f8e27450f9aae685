#!/usr/bin/env bash
# Create (or reuse) the project virtual environment in .venv and install the package.
#   bash scripts/setup_env.sh          # package + test extras (tests, Slicer logic tests): what CI uses
#   bash scripts/setup_env.sh fast     # package + OpenVINO only: what the CLI demo needs (no vtk/slicer-core)
# Safe to run repeatedly; installs only when the stamp for those extras is missing or older than pyproject.toml.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${BLS_VENV:-$root/.venv}"
py="${PYTHON:-python3}"
extras="${1:-test}"
case "$extras" in
  test) stamp="$venv/.bls-installed" ;;        # the test extras include everything 'fast' has
  fast) stamp="$venv/.bls-installed-fast" ;;
  *) echo "usage: setup_env.sh [test|fast]" >&2; exit 2 ;;
esac
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
fi
if [ "$extras" = "fast" ] && [ -f "$venv/.bls-installed" ] && [ ! "$root/pyproject.toml" -nt "$venv/.bls-installed" ]; then
  exit 0
fi
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  # torch first and pinned: the CPU build is taken from the local file on project machines.
  "$venv/bin/python" -m pip install -q "torch==2.13.0"
  "$venv/bin/python" -m pip install -q -e "$root[$extras]"
  touch "$stamp"
fi
