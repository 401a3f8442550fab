"Make the bundled tiny-run fixture (`nbs/fixtures/tiny-run`) from a finished run: test scaffolding, so it lives with the tests."
import json, shutil
from pathlib import Path

from reasonforge.core import atomic_write_json
from reasonforge.run_folder import STAGE_FILE

FIXTURE_FILES = ("config.yaml", "config.json", "stage.json", "metrics.json", "result.json", "candidates.jsonl",
                 "verdicts.jsonl", "train.jsonl", "train.stats.json", "predictions.jsonl", "stages.jsonl", "run.json")


def make_fixture(run_dir:str|Path, # a finished run folder
                 destination:str|Path, # the fixture folder to (re)write
                )->Path:
    "Copy a finished run's small files (configs, stage markers, JSON data; no models, caches or logs) to a fixture folder."
    run_dir, destination = Path(run_dir), Path(destination)
    if destination.exists(): shutil.rmtree(destination)
    for path in sorted(run_dir.rglob("*")):
        relative = path.relative_to(run_dir)
        if not path.is_file() or path.name not in FIXTURE_FILES: continue
        if any(part.endswith(".partial") or part in ("merged", "adapter", "checkpoints") for part in relative.parts): continue
        (destination/relative).parent.mkdir(parents=True, exist_ok=True)
        if path.name == "run.json": # where and by whom it ran means nothing elsewhere
            status = json.loads(path.read_text())
            atomic_write_json(destination/relative, {k: v for k, v in status.items() if k not in ("pid", "reports")})
        else: shutil.copy2(path, destination/relative)
    for marker in destination.rglob(STAGE_FILE): # a stage's checksums cover only the outputs the fixture kept
        info = json.loads(marker.read_text())
        if "outputs" in info:
            info["outputs"] = {name: record for name, record in info["outputs"].items() if (marker.parent/name).is_file()}
        if "inputs" in info: # and of the inputs it read: the models are not copied
            info["inputs"] = {name: record for name, record in info["inputs"].items() if (destination/name).is_file()}
        atomic_write_json(marker, info)
    return destination
