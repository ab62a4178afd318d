#!/usr/bin/env bash
# Create .venv (if needed) with the tested stack: torch==2.13.0 first (a CPU wheel here), then
# gan_lab in editable mode with every other version pinned by constraints.txt. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.gan_lab-installed
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ "$stamp" -nt constraints.txt ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
touch "$stamp"
echo "gan_lab installed in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
