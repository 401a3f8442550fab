#!/usr/bin/env bash
# The main job: install if needed, then run the self-improvement loop on the embedded default (CPU, no model hub).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
. .venv/bin/activate
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} TQDM_DISABLE=${TQDM_DISABLE:-} TOKENIZERS_PARALLELISM=false
# Spider: $REASONFORGE_SPIDER_DIR; else a shared/data/spider beside the checkout, as CI and tools/test.sh have it (this
# script's convenience: the library never looks there); else, on a fresh machine, download, verify and unpack the
# official release into the user's cache (nothing happens when one is found). With no network this ends with one line
# naming `reasonforge data download` and REASONFORGE_SPIDER_DIR.
if [ -z "${REASONFORGE_SPIDER_DIR:-}" ] && [ -f ../shared/data/spider/tables.json ]; then
  export REASONFORGE_SPIDER_DIR="$(cd ../shared/data/spider && pwd)"
fi
reasonforge data download --if-missing >/dev/null
exec reasonforge run --config configs/default-cpu.yaml "$@"
