#!/usr/bin/env bash
# README.md is nbs/index.ipynb, executed and converted to markdown (no Quarto: nbconvert only).
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
# index.ipynb loads Spider: the variable, else a shared/data/spider beside the checkout (as tools/test.sh finds it)
if [ -z "${REASONFORGE_SPIDER_DIR:-}" ] && [ -f ../shared/data/spider/tables.json ]; then
  export REASONFORGE_SPIDER_DIR="$(cd ../shared/data/spider && pwd)"
fi
tmp=$(mktemp -d)
jupyter nbconvert --to notebook --execute nbs/index.ipynb --output-dir "$tmp" --ExecutePreprocessor.kernel_name=reasonforge --ExecutePreprocessor.timeout=600
jupyter nbconvert --to markdown "$tmp/index.ipynb" --RegexRemovePreprocessor.patterns="['^#\\| hide']" --output-dir . --output README
# nbdev directive lines are for the notebook, not for readers
sed -i '/^#| /d' README.md
echo "README.md written from nbs/index.ipynb"
