"""A finished run heals (issue 16). Outputs of a real finished tiny run (vLLM and Unsloth on CPU) are damaged the ways a full
disk or a bad copy damages them; the next `reasonforge run` names each damaged file once, redoes the stage that wrote it (and
the stages whose inputs changed, keeping those whose inputs came out identical), exits 0, and ends with the artefacts of the
run never damaged. Each case works on a copy of the one finished run the session makes (`finished_tiny_run` in conftest.py)."""
import json, os, shutil
from pathlib import Path

import pytest

from conftest import needs_engines
from test_faults import SAME_FILES, TinyRun
from reasonforge.core import sha256_file
from reasonforge.run_folder import STAGE_FILE

BIG = 64 << 20  # files over this size (the merged weights) are hard-linked into a copy, never changed in place


def _copy(reference:TinyRun, root:Path)->TinyRun:
    "A copy of the finished run (run folder and reports) that a case may damage."
    run = TinyRun(root)
    def copy(source, target):
        if os.path.getsize(source) > BIG: os.link(source, target)
        else: shutil.copy2(source, target)
    shutil.copytree(reference.run_dir, run.run_dir, copy_function=copy)
    shutil.copytree(reference.reports, run.reports, copy_function=copy)
    return run


def _replace(path:Path, data:bytes):
    "Damage a file by writing a new one in its place (a hard-linked original is left alone)."
    path.unlink()
    path.write_bytes(data)


def _markers(run:TinyRun)->dict:
    "Every stage's `stage.json` bytes, by stage."
    return {str(p.parent.relative_to(run.run_dir)): p.read_bytes() for p in run.run_dir.glob(f"**/{STAGE_FILE}")}


def _resume(run:TinyRun)->str:
    "Run the same command again (umask 022, as a user's shell has it); its console output."
    mask = os.umask(0o022)
    try: run.finish(run.start(), timeout=1200)
    finally: os.umask(mask)
    return run.log.read_text(errors="replace")


def _named_once(log:str, path:Path)->list:
    "The warning lines that name `path`: there must be exactly one."
    lines = [line for line in log.splitlines() if str(path) in line and "WARNING" in line]
    assert len(lines) == 1 and "will be redone" in lines[0], lines or log[-3000:]
    return lines


def _ends_like(run:TinyRun, reference:TinyRun):
    "The artefacts of a healed run are those of the run never damaged; reports exist and are readable by others."
    for relative in SAME_FILES:
        assert (run.run_dir/relative).read_bytes() == (reference.run_dir/relative).read_bytes(), f"{relative} differs from the undamaged run"
    healed, original = (json.loads((r.run_dir/"iteration_1"/"result.json").read_text()) for r in (run, reference))
    assert healed["dev"] == original["dev"]
    assert json.loads((run.run_dir/"run.json").read_text())["status"] == "completed"
    assert not list(run.run_dir.rglob("*.partial"))
    for report in ("iteration_1.html", "summary.html"):
        assert (run.reports/report).stat().st_mode & 0o777 == 0o644, f"{report} is not readable by others"


@needs_engines
def test_torn_predictions_of_a_finished_iteration_are_redone(finished_tiny_run, tmp_path):
    "The issue's scenario: the last iteration's predictions cut to a third. Exit 0, the file named, then byte-identical again."
    run = _copy(finished_tiny_run, tmp_path/"torn")
    torn = run.run_dir/"iteration_1"/"evaluate"/"predictions.jsonl"
    original, before = torn.read_bytes(), _markers(run)
    _replace(torn, original[:len(original) // 3])
    _named_once(_resume(run), torn)
    assert torn.read_bytes() == original
    after = _markers(run)
    assert after["iteration_1/evaluate"] != before["iteration_1/evaluate"]  # redone ...
    assert {k: v for k, v in after.items() if k != "iteration_1/evaluate"} == {k: v for k, v in before.items() if k != "iteration_1/evaluate"}
    _ends_like(run, finished_tiny_run)


@needs_engines
def test_every_kind_of_damage_heals_like_the_undamaged_run(finished_tiny_run, tmp_path):
    """A JSON-lines file torn in half (verdicts), a stats JSON damaged (harvest), the merged weights truncated (training) and both
    reports deleted, all at once: each damaged file is named once, its stage redone, later stages kept when their inputs come out
    the same (harvest's training set, hence the training's inputs), and the run ends as if never damaged."""
    run = _copy(finished_tiny_run, tmp_path/"damaged")
    stage = run.run_dir/"iteration_1"
    verdicts, stats = stage/"verify"/"verdicts.jsonl", stage/"harvest"/"train.stats.json"
    weights = max((stage/"train"/"merged").glob("*.safetensors"), key=lambda p: p.stat().st_size)
    assert weights.stat().st_size > 256 << 20  # over the re-hash limit: checked by size and the hash of its ends
    original_weights, before = sha256_file(weights), _markers(run)
    _replace(verdicts, verdicts.read_bytes()[:verdicts.stat().st_size // 2])
    _replace(stats, stats.read_bytes()[:stats.stat().st_size // 2])
    with open(weights, "rb") as f: _replace(weights, f.read(weights.stat().st_size // 2))
    for report in ("iteration_1.html", "summary.html"): (run.reports/report).unlink()

    log = _resume(run)
    for damaged in (verdicts, stats, weights): _named_once(log, damaged)
    after = _markers(run)
    for redone in ("iteration_1/verify", "iteration_1/harvest", "iteration_1/train"):
        assert after[redone] != before[redone], f"{redone} was not redone"
    for kept in ("baseline/evaluate", "iteration_1/sample"):
        assert after[kept] == before[kept], f"{kept} was redone"
    # the evaluation read the model: kept when training came out byte-identical, redone otherwise
    assert (after["iteration_1/evaluate"] == before["iteration_1/evaluate"]) == (sha256_file(weights) == original_weights)
    assert weights.stat().st_size == finished_tiny_run.run_dir.joinpath(weights.relative_to(run.run_dir)).stat().st_size
    _ends_like(run, finished_tiny_run)
