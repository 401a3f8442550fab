#!/usr/bin/env bash
# The GPU check, kept ready for a lent GPU machine (the `device` tool: one H100/H200, Python 3.12, torch, transformers,
# peft and accelerate installed, no internet; a call carries at most 64 MiB of working tree).
#
#   bash tools/gpu-check.sh prepare   # HERE (PyPI reachable): wheels + a few Spider files into .gpu-bundle/ (ignored)
#   bash tools/gpu-check.sh run [PART ...]   # THERE, from the repository root; carry .gpu-bundle. PARTs: cells,
#       qwen2.5-0.5b, ministral-8b (default: all three, ~650-700 s on an H100: more than one 600 s call, so split it):
#       device run  carry=[".gpu-bundle"]  timeout_s=400  command="bash tools/gpu-check.sh run cells qwen2.5-0.5b"
#       device run  carry=[".gpu-bundle"]  timeout_s=400  command="bash tools/gpu-check.sh run ministral-8b"
#   (GPU_NOTEBOOKS="nbs/05a_engines.ipynb" limits the cells part to those notebooks)
#
# `prepare` downloads the wheels the device image lacks (for CPython 3.12, manylinux x86_64), repacks the two that are
# far too big to travel (unsloth without its studio/ web app; bitsandbytes with only its CUDA 13 and CPU libraries),
# and copies the Spider files the check reads (tables.json, the first train/dev questions and their databases).
# `run` installs the wheels with --no-deps into .gpu-bundle/site (put first on PYTHONPATH; nothing of the image is
# changed), then, in under 8 minutes, prints: the `#| gpu` cells of the notebooks (tools/gpu_cells.py: each notebook's
# export cells, then its gpu cells: the transformers sampling backend on the GPU, both training backends and a merge),
# and the training benchmark (unsloth, unsloth-padded and peft; shapes qwen2.5-0.5b and ministral-8b; random weights
# built on the GPU). Figures go to stdout and, as JSON and logs, to $OUT (if set).
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=.gpu-bundle
PY=${PYTHON:-python3}

# versions of the H200 run recorded in benchmarks/RESULTS.md (the device image brings torch, transformers, peft, accelerate)
WHEELS=(unsloth==2026.10.9 unsloth_zoo==2026.10.9 trl==1.15.0 datasets==4.8.5 torchao==0.18.0 tyro==1.0.17
        msgspec==0.22.0 cut_cross_entropy==25.1.1 multiprocess==0.70.19 dill==0.4.1 typeguard==4.6.1
        docstring_parser==0.18.0 bitsandbytes==0.50.2
        fastcore==1.14.5 sqlglot==30.31.0 sqlparse==0.6.1)   # the project's pure-Python needs
TRAIN_QUESTIONS=400   # at least this many, from the smallest schemas: the benchmark needs 24 rows that fit 512 tokens
DEV_QUESTIONS=40

prepare() {
    rm -rf "$BUNDLE.tmp"; mkdir -p "$BUNDLE.tmp/raw" "$BUNDLE.tmp/wheels"
    local platforms=()
    for v in 2_17 2_24 2_27 2_28 2_31 2_34 2_35; do platforms+=(--platform "manylinux_${v}_x86_64"); done
    $PY -m pip download --quiet --no-deps --only-binary=:all: "${platforms[@]}" --platform manylinux2014_x86_64 \
        --platform any --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
        -d "$BUNDLE.tmp/raw" "${WHEELS[@]}"
    $PY - "$BUNDLE.tmp/raw" "$BUNDLE.tmp/wheels" <<'EOF'
"Repack wheels: unsloth without studio/, bitsandbytes with only its cuda130 and cpu libraries; all at maximum compression."
import base64, hashlib, re, sys, zipfile
from pathlib import Path
raw, out = Path(sys.argv[1]), Path(sys.argv[2])
def keep(wheel:str, name:str)->bool:
    if wheel.startswith("unsloth-") and re.match(r"(unsloth/)?studio/", name): return False
    if wheel.startswith("bitsandbytes-") and name.endswith(".so") and "libbitsandbytes_" in name:
        return bool(re.search(r"libbitsandbytes_(cuda130|cpu)\.so$", name))
    return True
for path in sorted(raw.glob("*.whl")):
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out/path.name, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        names = [n for n in source.namelist() if keep(path.name, n)]
        record = next(n for n in names if n.endswith(".dist-info/RECORD"))
        for name in names:
            if name == record: continue
            target.writestr(source.getinfo(name), source.read(name), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
        lines = [l for l in source.read(record).decode().splitlines() if l and keep(path.name, l.split(",")[0])]
        target.writestr(record, "\n".join(lines) + "\n", compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    dropped = len(zipfile.ZipFile(path).namelist()) - len(names)
    print(f"{path.name}: {path.stat().st_size/2**20:.1f} MiB -> {(out/path.name).stat().st_size/2**20:.1f} MiB"
          + (f" ({dropped} files left out)" if dropped else ""))
EOF
    rm -rf "$BUNDLE.tmp/raw"
    $PY - "$BUNDLE.tmp/spider" "$TRAIN_QUESTIONS" "$DEV_QUESTIONS" <<'EOF'
# The few Spider files the check reads: tables.json, train questions of the databases with the smallest schemas (so
# prompts fit the benchmark's 512 tokens), the first dev questions, and their databases.
import json, shutil, sys
from pathlib import Path
from reasonforge.data import find_spider_dir
source, target = find_spider_dir(), Path(sys.argv[1])
target.mkdir(parents=True)
shutil.copy(source/"tables.json", target/"tables.json")
columns = {t["db_id"]: len(t["column_names_original"]) for t in json.loads((source/"tables.json").read_text())}
present = {db for db in columns if (source/"database"/db/f"{db}.sqlite").is_file()}
train = [q for q in json.loads((source/"train_spider.json").read_text()) if q["db_id"] in present]
kept, dbs = [], set()
for db in sorted({q["db_id"] for q in train}, key=lambda db: (columns[db], db)):
    if len(kept) >= int(sys.argv[2]): break
    kept += [q for q in train if q["db_id"] == db]; dbs.add(db)
dev = json.loads((source/"dev.json").read_text())[:int(sys.argv[3])]
(target/"train_spider.json").write_text(json.dumps(kept, ensure_ascii=False))
(target/"dev.json").write_text(json.dumps(dev, ensure_ascii=False))
for db in sorted(dbs | {q["db_id"] for q in dev}):
    if (source/"database"/db).is_dir(): shutil.copytree(source/"database"/db, target/"database"/db)
print(f"spider: {len(kept)} train and {len(dev)} dev questions, {len(list((target/'database').iterdir()))} databases, "
      f"{sum(f.stat().st_size for f in target.rglob('*') if f.is_file())/2**20:.1f} MiB")
EOF
    rm -rf "$BUNDLE"; mv "$BUNDLE.tmp" "$BUNDLE"
    local bundle tree
    bundle=$(du -sb "$BUNDLE" | cut -f1)
    # what a device call carries: tracked + untracked-not-ignored files, plus the carried bundle
    tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
    echo "bundle: $((bundle / 1048576)) MiB; working tree that travels: $((tree / 1048576)) MiB; together $(((bundle + tree) / 1048576)) MiB (limit 64)"
    if (( bundle + tree >= 64 * 1048576 )); then echo "too big to carry" >&2; exit 1; fi
}

run() {
    local started=$SECONDS out=${OUT:-/tmp/gpu-check-out} parts=" ${*:-cells qwen2.5-0.5b ministral-8b} "
    mkdir -p "$out"
    [[ -d $BUNDLE/wheels ]] || { echo "no $BUNDLE/wheels: run 'bash tools/gpu-check.sh prepare' first and carry $BUNDLE" >&2; exit 2; }
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    $PY -m pip install --quiet --no-deps --no-index --upgrade --target "$BUNDLE/site" "$BUNDLE"/wheels/*.whl
    export PYTHONPATH="$PWD/$BUNDLE/site:$PWD${PYTHONPATH:+:$PYTHONPATH}" REASONFORGE_SPIDER_DIR="$PWD/$BUNDLE/spider"
    export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 REASONFORGE_CACHE=/tmp/rf-cache
    $PY -c "import torch, transformers, peft, trl, unsloth, bitsandbytes; print('versions:', 'torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'trl', trl.__version__, 'unsloth', unsloth.__version__, 'bitsandbytes', bitsandbytes.__version__, 'cuda', torch.cuda.get_device_name(0))" \
        || echo "== an import failed (above): the steps that need it will fail too"
    echo "== setup done at $((SECONDS - started)) s"

    if [[ $parts == *" cells "* ]]; then
        echo "== #| gpu notebook cells: 05a_engines (transformers sampling on the GPU, replicas), 09_train (both backends, a merge)"
        $PY tools/gpu_cells.py ${GPU_NOTEBOOKS:-nbs/*.ipynb} 2>&1 | tee "$out/gpu-cells.log" || echo "== gpu cells FAILED (above); the benchmark runs anyway"
        echo "== at $((SECONDS - started)) s"
    fi

    echo "== training benchmark (random weights built on the GPU)"
    for shape in qwen2.5-0.5b ministral-8b; do
        [[ $parts == *" $shape "* ]] || continue
        $PY benchmarks/training_throughput.py --random-init --shape "$shape" --steps 6 --backends unsloth unsloth-padded peft \
            --json "$out/train-$shape.json" 2>&1 | tee "$out/train-$shape.log" | grep -v '^{' || true
        echo "== $shape at $((SECONDS - started)) s"
    done

    echo "== gpu check done in $((SECONDS - started)) s"
}

case "${1:-}" in
    prepare) prepare ;;
    run) shift; for part in "$@"; do [[ $part =~ ^(cells|qwen2\.5-0\.5b|ministral-8b)$ ]] || { echo "unknown part: $part (cells, qwen2.5-0.5b, ministral-8b)" >&2; exit 2; }; done; run "$@" ;;
    *) echo "usage: bash tools/gpu-check.sh prepare | run [cells] [qwen2.5-0.5b] [ministral-8b]" >&2; exit 2 ;;
esac
