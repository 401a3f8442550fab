#!/usr/bin/env bash
# Install if needed, find Spider, check that notebooks are clean and the library is in sync with them, then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
. .venv/bin/activate
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} TQDM_DISABLE=${TQDM_DISABLE:-1} TOKENIZERS_PARALLELISM=false
# Headless Chromium for tests/test_jupyterlab.py (JupyterLab's page in a real browser): installed once, where apt-get can.
if [ -z "$(command -v chromium chromium-browser google-chrome google-chrome-stable || true)" ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "tools/test.sh: installing chromium (apt-get) for tests/test_jupyterlab.py"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } >/dev/null 2>&1 \
    || echo "tools/test.sh: apt-get could not install chromium: tests/test_jupyterlab.py will say so" >&2
fi

# Spider for the tests and notebooks, in this order: $REASONFORGE_SPIDER_DIR; a shared/data/spider beside the checkout
# (how CI gets it: a copy of shared/ next to the clone); else the official release, downloaded, verified and unpacked
# into the user's cache as tools/run-default.sh does. Without any of them: one line saying what to do, before pytest.
if [ -n "${REASONFORGE_SPIDER_DIR:-}" ]; then
  if [ ! -f "$REASONFORGE_SPIDER_DIR/tables.json" ]; then
    echo "tools/test.sh: REASONFORGE_SPIDER_DIR=$REASONFORGE_SPIDER_DIR has no tables.json:" \
         "point it at the unpacked Spider folder, or unset it to download Spider" >&2
    exit 1
  fi
elif [ -f ../shared/data/spider/tables.json ]; then
  export REASONFORGE_SPIDER_DIR="$(cd ../shared/data/spider && pwd)"
else
  download_log=$(mktemp)
  if spider=$(reasonforge data download --if-missing 2>"$download_log"); then
    export REASONFORGE_SPIDER_DIR="$(printf '%s\n' "$spider" | tail -n 1)"
    rm -f "$download_log"
    echo "tools/test.sh: Spider from reasonforge data download: $REASONFORGE_SPIDER_DIR"
  else
    reason=$(grep -v '^[[:space:]]*$' "$download_log" | tail -n 1 | sed 's/^reasonforge data: error: //')
    rm -f "$download_log"
    echo "tools/test.sh: no Spider for the tests: ${reason:-reasonforge data download failed}" >&2
    exit 1
  fi
fi

nbdev_clean
if [ -n "$(git status --porcelain -uno)" ]; then
  echo "Notebooks are not clean: run nbdev_clean and commit."; git status --porcelain -uno; git diff | head -50; exit 1
fi
nbdev_export
if [ -n "$(git status --porcelain -uno)" ]; then
  echo "Notebooks and library are not in sync: run nbdev_export and commit."; git status --porcelain -uno; git diff | head -50; exit 1
fi
python -m pytest "$@"
