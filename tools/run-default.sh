#!/usr/bin/env bash
# The main job: install if needed, then run the self-improvement loop on the embedded default (CPU, no model hub).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
. .venv/bin/activate
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} TQDM_DISABLE=${TQDM_DISABLE:-} TOKENIZERS_PARALLELISM=false
# A fresh machine has no Spider: download, verify and unpack the official release first (nothing happens when one is found).
# With no network this ends with one line naming `reasonforge data download` and REASONFORGE_SPIDER_DIR.
reasonforge data download --if-missing >/dev/null
exec reasonforge run --config configs/default-cpu.yaml "$@"
