#!/usr/bin/env bash
# Re-execute notebooks in place, engines included, and keep their outputs: `bash tools/run-notebooks.sh [nbs/NN_x.ipynb ...]`.
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} TQDM_DISABLE=1 TOKENIZERS_PARALLELISM=false
python tools/run_notebooks.py "$@"
nbdev_clean
