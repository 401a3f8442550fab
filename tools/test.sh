#!/usr/bin/env bash
# Install if needed, check that notebooks are clean and the library is in sync with them, then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
. .venv/bin/activate
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} TQDM_DISABLE=${TQDM_DISABLE:-1} TOKENIZERS_PARALLELISM=false
nbdev_clean
if [ -n "$(git status --porcelain -uno)" ]; then
  echo "Notebooks are not clean: run nbdev_clean and commit."; git status --porcelain -uno; git diff | head -50; exit 1
fi
nbdev_export
if [ -n "$(git status --porcelain -uno)" ]; then
  echo "Notebooks and library are not in sync: run nbdev_export and commit."; git status --porcelain -uno; git diff | head -50; exit 1
fi
python -m pytest "$@"
