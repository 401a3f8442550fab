#!/usr/bin/env bash
# JupyterLab on the project's environment: install if needed, then `jupyter lab` on nbs/ from .venv, where the
# `ReasonForge` kernel (`reasonforge`) imports this checkout's library. Extra arguments go to `jupyter lab`:
#   bash tools/lab.sh                       # opens a browser tab (or prints the URL with its token)
#   bash tools/lab.sh --no-browser --port=8899 --ip=127.0.0.1
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
. .venv/bin/activate
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} TOKENIZERS_PARALLELISM=false
# Spider for the notebooks, as tools/run-default.sh finds it: $REASONFORGE_SPIDER_DIR; else a shared/data/spider beside
# the checkout (this script's convenience: the library never looks there); else the copy `reasonforge data download`
# made. Nothing is downloaded here: without any, one line says how, and the notebooks that load Spider say it again.
if [ -z "${REASONFORGE_SPIDER_DIR:-}" ] && [ -f ../shared/data/spider/tables.json ]; then
  export REASONFORGE_SPIDER_DIR="$(cd ../shared/data/spider && pwd)"
fi
python -c 'from reasonforge.data import find_spider_dir; find_spider_dir()' 2>/dev/null \
  || echo "tools/lab.sh: no Spider found: run \`reasonforge data download\` (or set REASONFORGE_SPIDER_DIR) for the notebooks that load it" >&2
# Jupyter refuses to start as root without --allow-root: containers and CI machines often are root.
root=(); [ "$(id -u)" = 0 ] && root=(--allow-root)
exec jupyter lab --notebook-dir=nbs "${root[@]}" "$@"
