#!/usr/bin/env bash
# README main command: prepare .venv (package + OpenVINO; no vtk / slicer-core) if needed, then run the
# demo (phantom exam -> segment with the shipped demo model -> lesion table + Dice against the phantom truth).
# Extra arguments go to `breastlesionseg demo` (e.g. --seed 3 --output /tmp/demo).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup_env.sh" fast   # CLI + OpenVINO; no vtk / slicer-core
exec "$root/.venv/bin/breastlesionseg" demo "$@"
