#!/usr/bin/env bash
# Refresh tools/constraints-cpu.txt, the lock that tools/install.sh (and so CI) installs through.
#   bash tools/lock.sh                           every package to its newest version that resolves
#   bash tools/lock.sh --upgrade-package sqlglot  only that package moves (any `uv pip compile` options replace --upgrade)
#   bash tools/lock.sh --no-upgrade              keep every pin that still fits (after editing the requirements)
# uv resolves setup.py's [dev,cpu,model] extras plus pip itself for this machine's Python. uv does not read pip's
# configuration, so the sources pip is configured with here (find-links, index-url, extra-index-url, constraint
# files, from pip.conf or PIP_* variables) are handed to it: the lock resolves from what `pip install` sees.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
UV_VERSION=0.13.9
uv=${TMPDIR:-/tmp}/reasonforge-uv-$UV_VERSION
[ -x "$uv/bin/uv" ] || { "$PY" -m venv "$uv" && "$uv/bin/python" -m pip install -q "uv==$UV_VERSION"; }
mapfile -t sources < <("$PY" - <<'EOF'
import ast, subprocess, sys
flags = {'find-links': '--find-links', 'index-url': '--index-url', 'extra-index-url': '--extra-index-url', 'constraint': '--constraint'}
out = subprocess.run([sys.executable, '-m', 'pip', 'config', 'list'], capture_output=True, text=True, check=True).stdout
seen = []
for line in out.splitlines():
    key, _, value = line.partition('=')
    section, _, name = key.rpartition('.')
    if section not in ('global', 'install', ':env:') or name not in flags: continue
    for v in ast.literal_eval(value).split():  # pip prints repr(value); lists are whitespace-separated
        if (name, v) not in seen: seen.append((name, v))
for name, v in seen: print(flags[name]); print(v)
EOF
)
[ $# -gt 0 ] || set -- --upgrade
echo "uv pip compile through pip's sources: ${sources[*]:-(PyPI only)}" >&2
printf 'pip\n' | "$uv/bin/uv" pip compile setup.py - --extra dev --extra cpu --extra model --python "$PY" \
  --index-strategy unsafe-best-match "${sources[@]}" --annotation-style line --quiet \
  --custom-compile-command 'bash tools/lock.sh' -o tools/constraints-cpu.txt "$@"
echo "tools/constraints-cpu.txt: $(grep -c '^[A-Za-z0-9]' tools/constraints-cpu.txt) packages pinned"
