#!/usr/bin/env bash
# The project's test command (README): runs pytest in .venv and fails when no test ran.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup_env.sh test || exit 1
log="$(mktemp)"
OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" .venv/bin/python -m pytest "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if [ "$rc" -eq 5 ] || ! grep -qE '[0-9]+ passed' "$log"; then
  echo "ERROR: no test passed (pytest exit $rc)" >&2
  rm -f "$log"; exit 1
fi
rm -f "$log"
exit "$rc"
