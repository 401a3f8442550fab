"""Damaged run files, without engines: a finished stage whose marker or outputs no longer match what was written is
recomputed with a warning; where nothing can be recomputed (both config snapshots damaged) the error names the files.
Stages are driven by `run_stage` with small stand-in work functions, as in tests/test_loop.py."""
import json, logging, shutil
from pathlib import Path

import pytest

from reasonforge import loop, run_folder
from reasonforge.core import ReasonForgeError
from reasonforge.generate import CandidateCache
from reasonforge.config import RunConfig
from reasonforge.core import read_jsonl, write_jsonl
from reasonforge.run_folder import Run, STAGE_FILE, run_stage, stage_info
from reasonforge.loop import stage_inputs
from tiny_run import make_fixture

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT/"nbs"/"fixtures"/"tiny-run"


class Work:
    "A stand-in stage: writes a metrics file and a JSON-lines file, and counts its calls."
    def __init__(self): self.calls = 0
    def __call__(self, folder:Path)->dict:
        self.calls += 1
        rows = [{"index": i, "verdicts": [{"exec_match": i % 2 == 0, "error": None}] * 3} for i in range(20)]
        write_jsonl(folder/"verdicts.jsonl", rows)
        (folder/"metrics.json").write_text(json.dumps({"correct": 30, "candidates": 60}, indent=2))
        return {"questions": len(rows)}


@pytest.fixture
def finished(tmp_path):
    "A run folder with one finished stage `iteration_1/verify`, and its work function."
    work = Work()
    info = run_stage(tmp_path, "iteration_1/verify", work)
    assert not info["skipped"] and work.calls == 1
    return tmp_path, work


def _warnings(caplog)->list:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name in ("reasonforge.run_folder", "reasonforge.loop")]


def test_intact_stage_is_reused(finished, caplog):
    run_dir, work = finished
    info = stage_info(run_dir, "iteration_1/verify")
    assert set(info["outputs"]) == {".attempts", "verdicts.jsonl", "metrics.json"}
    assert all(len(record["sha256"]) == 64 for record in info["outputs"].values())
    with caplog.at_level(logging.INFO, "reasonforge"):
        assert run_stage(run_dir, "iteration_1/verify", work)["skipped"]
    assert work.calls == 1 and _warnings(caplog) == []


def _truncate_stage_json(stage:Path): (stage/STAGE_FILE).write_text((stage/STAGE_FILE).read_text()[:50])
def _empty_stage_json(stage:Path): (stage/STAGE_FILE).write_bytes(b"")
def _foreign_stage_json(stage:Path):
    info = json.loads((stage/STAGE_FILE).read_text()); info["stage"] = "iteration_2/verify"
    (stage/STAGE_FILE).write_text(json.dumps(info))
def _truncate_metrics(stage:Path): (stage/"metrics.json").write_text((stage/"metrics.json").read_text()[:-9])
def _tear_last_line(stage:Path):
    text = (stage/"verdicts.jsonl").read_text()
    (stage/"verdicts.jsonl").write_text(text[:len(text) - 30])
def _same_size_edit(stage:Path):
    text = (stage/"metrics.json").read_text()
    (stage/"metrics.json").write_text(text.replace('"correct": 30', '"correct": 99'))
def _delete_output(stage:Path): (stage/"verdicts.jsonl").unlink()

CORRUPTIONS = {  # name: (damage, what the warning says)
    "stage.json truncated": (_truncate_stage_json, "stage.json is unreadable"),
    "stage.json empty": (_empty_stage_json, "stage.json is unreadable"),
    "stage.json of another stage": (_foreign_stage_json, "is not the record of stage iteration_1/verify"),
    "metrics.json truncated": (_truncate_metrics, "metrics.json has"),
    "verdicts.jsonl with a torn last line": (_tear_last_line, "verdicts.jsonl has"),
    "metrics.json edited, same size": (_same_size_edit, "metrics.json differs from its checksum"),
    "an output deleted": (_delete_output, "verdicts.jsonl is missing"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_damaged_stage_is_recomputed_with_a_warning(finished, caplog, case):
    run_dir, work = finished
    damage, warning = CORRUPTIONS[case]
    stage = run_dir/"iteration_1"/"verify"
    damage(stage)
    with caplog.at_level(logging.WARNING, "reasonforge"):
        info = run_stage(run_dir, "iteration_1/verify", work)
    assert not info["skipped"] and work.calls == 2
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and warning in warnings[0] and "recomputing the stage" in warnings[0], warnings
    assert len(read_jsonl(stage/"verdicts.jsonl")) == 20 and json.loads((stage/"metrics.json").read_text())["correct"] == 30
    assert stage_info(run_dir, "iteration_1/verify")["summary"] == {"questions": 20}
    assert sorted(p.name for p in (run_dir/"iteration_1").iterdir()) == ["verify"]  # no partial folder or copy left
    assert run_stage(run_dir, "iteration_1/verify", work)["skipped"] and work.calls == 2  # intact again: reused


def test_big_outputs_are_checked_by_size(tmp_path, monkeypatch, caplog):
    "Files over the hashing limit (merged weights) get their size recorded, so a truncated one is still caught."
    monkeypatch.setattr(run_folder, "_HASHED_UP_TO", 100)
    def work(folder):
        (folder/"merged").mkdir()
        (folder/"merged"/"model.safetensors").write_bytes(b"w" * 1000)
        return {}
    run_stage(tmp_path, "iteration_1/train", work)
    record = stage_info(tmp_path, "iteration_1/train")["outputs"]["merged/model.safetensors"]
    assert set(record) == {"size", "ends_sha256"} and record["size"] == 1000
    weights = tmp_path/"iteration_1"/"train"/"merged"/"model.safetensors"
    weights.write_bytes(b"w" * 600)
    with caplog.at_level(logging.WARNING, "reasonforge"):
        assert not run_stage(tmp_path, "iteration_1/train", work)["skipped"]
    assert weights.stat().st_size == 1000 and "model.safetensors has 600 bytes" in _warnings(caplog)[0]
    weights.write_bytes(b"w" * 999 + b"x")  # same size, last bytes overwritten: caught by the hash of its ends
    caplog.clear()
    with caplog.at_level(logging.WARNING, "reasonforge"):
        assert not run_stage(tmp_path, "iteration_1/train", work)["skipped"]
    assert weights.read_bytes() == b"w" * 1000 and "first and last" in _warnings(caplog)[0]


def test_stage_without_checksums_is_trusted(finished):
    "Stages finished before checksums were recorded (the bundled fixture) are reused as they are."
    run_dir, work = finished
    marker = run_dir/"iteration_1"/"verify"/STAGE_FILE
    info = json.loads(marker.read_text()); del info["outputs"]
    marker.write_text(json.dumps(info))
    _truncate_metrics(run_dir/"iteration_1"/"verify")
    assert run_stage(run_dir, "iteration_1/verify", work)["skipped"] and work.calls == 1


def test_torn_jsonl_is_a_clear_error_naming_file_and_line(finished):
    "A reader that meets a torn JSON-lines file (outside `run_stage`'s check) gets the file and line, not a traceback."
    run_dir, _ = finished
    path = run_dir/"iteration_1"/"verify"/"verdicts.jsonl"
    _tear_last_line(path.parent)
    with pytest.raises(ReasonForgeError, match=r"verdicts.jsonl line 20: not valid JSON .*torn or damaged"): read_jsonl(path)


def test_marker_left_in_a_partial_folder_is_not_a_finished_stage(tmp_path):
    "Killed between writing stage.json and renaming `<stage>.partial`: the stage is unfinished, is listed nowhere, and commits once."
    run = Run.start(RunConfig(model="m", name="partial"), tmp_path/"run")
    partial = run.folder/"iteration_1"/"sample.partial"
    partial.mkdir(parents=True)
    (partial/STAGE_FILE).write_text(json.dumps({"stage": "iteration_1/sample", "wall_s": 1.0, "finished": "x", "summary": {}}))
    assert run.stages() == [] and stage_info(run.folder, "iteration_1/sample") is None
    info = run.stage("iteration_1/sample", lambda folder: {"rows": 1})
    assert not info["skipped"] and [s["stage"] for s in run.stages()] == ["iteration_1/sample"]


def test_torn_stage_log_is_skipped_and_not_glued_to_the_next_line(tmp_path):
    run = Run.start(RunConfig(model="m", name="log"), tmp_path/"run")
    run.stage("baseline/evaluate", lambda folder: {"a": 1})
    log = run.folder/"stages.jsonl"
    log.write_text(log.read_text() + '{"stage": "iteration_1/sam')  # a kill in the middle of an append
    run.stage("iteration_1/sample", lambda folder: {"b": 2})
    lines = log.read_text().splitlines()
    assert json.loads(lines[-1])["stage"] == "iteration_1/sample" and lines[1] == '{"stage": "iteration_1/sam'
    assert [s["stage"] for s in run.stages()] == ["baseline/evaluate", "iteration_1/sample"]


def test_damaged_config_json_falls_back_to_the_yaml_snapshot(tmp_path, caplog):
    config = RunConfig(model="m", name="snap")
    run = Run.start(config, tmp_path/"run")
    resolved = run.folder/"config.json"
    resolved.write_text(resolved.read_text()[:60])  # truncated
    with caplog.at_level(logging.WARNING, "reasonforge"):
        assert Run.open(run.folder).config == config
    assert "config.json is damaged" in _warnings(caplog)[0] and "config.yaml" in _warnings(caplog)[0]
    with pytest.raises(ReasonForgeError, match=r"changed: model \('m' -> 'other'\)"):  # still guards the experiment
        Run.start(RunConfig(model="other", name="snap"), run.folder)
    Run.start(config, run.folder)  # the same config: resumed, and config.json rewritten whole
    assert json.loads(resolved.read_text())["model"] == "m"


def test_both_config_snapshots_damaged_is_a_clear_error(tmp_path):
    run = Run.start(RunConfig(model="m", name="snap"), tmp_path/"run")
    (run.folder/"config.json").write_text("{not json")
    (run.folder/"config.yaml").write_text("model: [")
    for attempt in (lambda: Run.open(run.folder), lambda: Run.start(RunConfig(model="m", name="snap"), run.folder)):
        with pytest.raises(ReasonForgeError) as error: attempt()
        message = str(error.value)
        assert "config.json is damaged" in message and "config.yaml cannot replace it" in message and str(run.folder) in message


def test_damaged_run_json_is_replaced_with_a_warning(tmp_path, caplog):
    run = Run.start(RunConfig(model="m", name="status"), tmp_path/"run")
    (run.folder/"run.json").write_text('{"status": "runn')
    with caplog.at_level(logging.WARNING, "reasonforge"):
        loop._set_status(run, status="failed", error="x")
    assert json.loads((run.folder/"run.json").read_text()) == {"status": "failed", "error": "x"}
    assert "run.json is damaged" in _warnings(caplog)[0]


def test_candidate_cache_ignores_a_torn_line(tmp_path):
    "generate's resume cache: a torn last line is skipped (the prompt is sampled again), the lines before it are kept."
    cache = CandidateCache(tmp_path)
    cache.write_batch("group-0", [{"key": "a", "candidates": []}, {"key": "b", "candidates": []}])
    path = tmp_path/"group-0.jsonl"
    path.write_text(path.read_text()[:-12])
    reopened = CandidateCache(tmp_path)
    assert "a" in reopened and "b" not in reopened and len(reopened) == 1
    reopened.write_batch("group-0", [{"key": "b", "candidates": []}])  # sampled again: both readable afterwards
    assert len(CandidateCache(tmp_path)) == 2


def test_fixture_keeps_checksums_only_of_the_files_it_copies(finished, tmp_path):
    "A fixture drops models and logs, so its stage records must not ask for them, or every reuse would recompute."
    run_dir, work = finished
    (run_dir/"config.json").write_text("{}")
    fixture = make_fixture(run_dir, tmp_path/"fixture")
    outputs = stage_info(fixture, "iteration_1/verify")["outputs"]
    assert set(outputs) == {"verdicts.jsonl", "metrics.json"}  # `.attempts` was not copied
    assert run_stage(fixture, "iteration_1/verify", work)["skipped"] and work.calls == 1


@pytest.mark.skipif(not (FIXTURE/"config.json").is_file(), reason="the bundled tiny run is missing")
def test_bundled_fixture_stages_are_reused(tmp_path):
    "Every finished stage of the bundled run is trusted as it is (the demo notebooks rely on it: no engine)."
    shutil.copytree(FIXTURE, tmp_path/"tiny")
    run = Run.open(tmp_path/"tiny")
    for info in run.stages():
        inputs = stage_inputs(run, info["stage"])  # the files it read, as the runner passes them: recorded, and unchanged
        assert run_stage(run.folder, info["stage"], lambda folder: pytest.fail(f"{info['stage']} recomputed"), inputs)["skipped"]
