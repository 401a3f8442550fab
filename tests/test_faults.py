"""Runs killed at the worst moments. Fast: one stage killed after writing its outputs, or after committing them. With the
real engines (vLLM and Unsloth on CPU): a tiny run killed once in every stage (evaluation, sampling, verification,
harvest, training, report rendering) ends with the same artefacts as an uninterrupted run with the same seeds."""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest
import yaml

from conftest import needs_engines
from reasonforge.core import FAULT_VARIABLE, RUNNER_VARIABLE
from reasonforge.run_folder import stage_info
from tiny_run import make_fixture

ROOT = Path(__file__).resolve().parents[1]


# --- one stage, killed at its named fault points (no engine) -------------------------------------------------------

STAGE_SCRIPT = """
import json, sys
from reasonforge.data import find_spider_dir, load_spider
from reasonforge.run_folder import run_stage
def work(folder):
    questions = load_spider(find_spider_dir(), "dev", check_schemas=False).questions[:50]
    (folder/"gold.jsonl").write_text("".join(json.dumps({"db_id": q.db_id, "sql": q.gold_sql}) + "\\n" for q in questions))
    return {"questions": len(questions)}
info = run_stage(sys.argv[1], "iteration_1/verify", work)
print(json.dumps({"summary": info["summary"], "skipped": info["skipped"], "attempts": info["attempts"]}))
"""


def _stage_process(run_dir:Path, fault:str|None=None)->subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != FAULT_VARIABLE}
    if fault: env[FAULT_VARIABLE] = fault
    return subprocess.run([sys.executable, "-c", STAGE_SCRIPT, str(run_dir)], env=env, capture_output=True, text=True, timeout=120)


def test_a_stage_killed_before_its_commit_is_redone_once(tmp_path):
    killed = _stage_process(tmp_path, "iteration_1/verify:outputs-written")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (tmp_path/"iteration_1"/"verify.partial"/"gold.jsonl").is_file()  # every output written ...
    assert stage_info(tmp_path, "iteration_1/verify") is None  # ... but nothing reads them as a finished stage
    resumed = _stage_process(tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == {"summary": {"questions": 50}, "skipped": False, "attempts": 2}
    assert not (tmp_path/"iteration_1"/"verify.partial").exists()
    assert len((tmp_path/"iteration_1"/"verify"/"gold.jsonl").read_text().splitlines()) == 50
    assert [json.loads(l)["stage"] for l in (tmp_path/"stages.jsonl").read_text().splitlines()] == ["iteration_1/verify"]


def test_a_stage_killed_after_its_commit_is_not_redone(tmp_path):
    killed = _stage_process(tmp_path, "iteration_1/verify:committed")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert stage_info(tmp_path, "iteration_1/verify")["summary"] == {"questions": 50}
    assert not (tmp_path/"stages.jsonl").exists()  # killed before the log line: stage.json, not the log, is the truth
    resumed = _stage_process(tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == {"summary": {"questions": 50}, "skipped": True, "attempts": 1}


# --- a real tiny run, killed in every stage --------------------------------------------------------------------------

TINY_CONFIG = {
    "name": "tiny", "model": "pypi:qwen2.5-coder-0.5b-instruct", "iterations": 1,
    "train_subset": {"indices": [0, 3, 4, 12]},
    "dev_subset": {"indices": [0, 4, 12, 429]},  # 429 is a wta_1 question: its database is missing, so it is excluded
    "sampling": {"k": 2, "temperature": 0.7, "max_tokens": 96},
    "evaluation": {"k": 2, "temperature": 0.7},
    "harvest": {"gold_copies": 2},
    "training": {"max_steps": 2, "per_device_batch_size": 2, "gradient_accumulation_steps": 1, "save_steps": 1, "max_length": 1024},
    "engine": {"max_num_seqs": 8, "group_size": 2},  # two prompts per cache group, so a killed sampling keeps finished groups
}
RUNNER = ("import sys, logging\nlogging.basicConfig(level=logging.INFO)\nfrom reasonforge.loop import run_loop\n"
          "outcome = run_loop(sys.argv[1], sys.argv[2], sys.argv[3])\nsys.exit(0 if outcome.ok else 1)")
STAGES = ["baseline/evaluate", "iteration_1/sample", "iteration_1/verify", "iteration_1/harvest", "iteration_1/train",
          "iteration_1/evaluate"]
# what must come out the same, killed or not: every data file a stage writes, and the dev results
SAME_FILES = ["baseline/evaluate/predictions.jsonl", "iteration_1/sample/candidates.jsonl", "iteration_1/verify/verdicts.jsonl",
              "iteration_1/harvest/train.jsonl", "iteration_1/harvest/train.stats.json", "iteration_1/evaluate/predictions.jsonl"]


class TinyRun:
    "One run folder of the tiny config, started as a separate runner process (the way a user's shell starts it)."
    def __init__(self, root:Path):
        self.root, self.attempt = root, 0
        root.mkdir(parents=True, exist_ok=True)
        (root/"tiny.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
        self.run_dir, self.reports = root/"runs"/"tiny", root/"reports"

    def start(self, fault:str|None=None)->subprocess.Popen:
        self.attempt += 1
        env = {key: value for key, value in os.environ.items() if key != FAULT_VARIABLE}
        env.update(OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"), TOKENIZERS_PARALLELISM="false")
        if fault: env[FAULT_VARIABLE] = fault
        self.log = self.root/f"runner_{self.attempt}.log"
        with open(self.log, "w") as log:
            return subprocess.Popen([sys.executable, "-c", RUNNER, str(self.root/"tiny.yaml"), str(self.run_dir), str(self.reports)],
                                    cwd=self.root, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def tail(self)->str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])

    def wait_until(self, condition, process, timeout:float, what:str):
        deadline = time.time() + timeout
        while not condition():
            if process.poll() is not None: pytest.fail(f"the run ended (status {process.returncode}) before {what}:\n{self.tail()}")
            if time.time() > deadline:
                process.kill(); pytest.fail(f"no {what} after {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.5)

    def finish(self, process, timeout:float=1500):
        assert process.wait(timeout=timeout) == 0, self.tail()


def _survivors(runner_pid:int, timeout:float=30)->list:
    "Processes of a killed run (anything started with its runner's id in `$REASONFORGE_RUNNER_PID`) still alive after `timeout`."
    import psutil
    def of_run():
        found = []
        for process in psutil.process_iter(["pid", "cmdline"]):
            try:
                if process.environ().get(RUNNER_VARIABLE) == str(runner_pid): found.append(process)
            except psutil.Error: pass
        return found
    deadline = time.time() + timeout
    while (alive := of_run()) and time.time() < deadline: time.sleep(0.5)
    for process in alive:
        try: process.kill()
        except psutil.Error: pass
    return [" ".join(process.info["cmdline"][:3]) for process in alive]


def _kill(process:subprocess.Popen)->list:
    "SIGKILL the runner alone, as a crash would; the processes of its run still alive 30 s later."
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return _survivors(process.pid)


def _killed_at(run:TinyRun, fault:str)->list:
    "Start the run with a fault point armed; it must die there by SIGKILL. The processes of the run that survive it."
    process = run.start(fault)
    status = process.wait(timeout=1500)
    assert status == -signal.SIGKILL, f"expected a kill at {fault}, got exit status {status}:\n{run.tail()}"
    return _survivors(process.pid)


def _data(path:Path):
    "A file's content for comparison: JSON lines or JSON parsed, wall times and paths left out."
    text = path.read_text()
    if path.suffix == ".jsonl": return [json.loads(line) for line in text.splitlines()]
    return {key: value for key, value in json.loads(text).items() if key not in ("seconds", "wall_s", "path", "output")}


@needs_engines
def test_real_tiny_run_killed_in_every_stage_ends_like_an_uninterrupted_run(finished_tiny_run, tmp_path):
    "Baseline + 1 iteration with vLLM and Unsloth on CPU, killed once in each stage, against the same run never killed."
    reference = finished_tiny_run  # made once per session (conftest.py), shared with test_heal.py

    run = TinyRun(tmp_path/"killed")
    # evaluation: the baseline's predictions are written, the stage not yet committed
    assert _killed_at(run, "baseline/evaluate:outputs-written") == [], "processes outlived the killed run"
    assert stage_info(run.run_dir, "baseline/evaluate") is None
    # sampling: a real SIGKILL from outside, once the first group of prompts is in the stage's cache
    process = run.start()
    cache = run.run_dir/"iteration_1"/"sample.partial"/"cache"
    run.wait_until(lambda: any(cache.glob("*/*.jsonl")), process, 1800, "cached samples in iteration 1")
    assert _kill(process) == [], "processes outlived the killed runner"
    assert stage_info(run.run_dir, "baseline/evaluate") is not None and stage_info(run.run_dir, "iteration_1/sample") is None
    # verification, inside the iteration notebook's kernel: the kill takes the runner down too
    assert _killed_at(run, "iteration_1/verify:outputs-written") == []
    # harvest: committed, but killed before its line in the stage log
    assert _killed_at(run, "iteration_1/harvest:committed") == []
    assert stage_info(run.run_dir, "iteration_1/harvest") is not None
    # training: a real SIGKILL once its first checkpoint is written
    process = run.start()
    checkpoint = run.run_dir/"iteration_1"/"train.partial"/"checkpoints"/"checkpoint-1"
    run.wait_until(lambda: (checkpoint/"trainer_state.json").is_file(), process, 1800, "a training checkpoint")
    assert _kill(process) == [], "processes outlived the killed runner"
    assert stage_info(run.run_dir, "iteration_1/train") is None
    # evaluation of the trained model, then report rendering (notebook executed, HTML not yet written)
    assert _killed_at(run, "iteration_1/evaluate:outputs-written") == []
    assert _killed_at(run, "render:iteration_1") == []
    assert (run.reports/"iteration_1.ipynb").is_file() and not (run.reports/"iteration_1.html").exists()
    run.finish(run.start())

    status = json.loads((run.run_dir/"run.json").read_text())
    assert status["status"] == "completed" and status["error"] is None
    attempts = {info: stage_info(run.run_dir, info)["attempts"] for info in STAGES}
    assert attempts == {"baseline/evaluate": 2, "iteration_1/sample": 2, "iteration_1/verify": 2, "iteration_1/harvest": 1,
                        "iteration_1/train": 2, "iteration_1/evaluate": 2}
    assert stage_info(run.run_dir, "iteration_1/sample")["summary"]["resumed_prompts"] >= 2  # the cached group was reused
    assert stage_info(run.run_dir, "iteration_1/train")["summary"]["resumed_from"] == "checkpoint-1"
    assert not list(run.run_dir.rglob("*.partial")), "unfinished stage folders left behind"
    logged = [json.loads(line)["stage"] for line in (run.run_dir/"stages.jsonl").read_text().splitlines()]
    assert sorted(logged) == sorted(set(STAGES) - {"iteration_1/harvest"}), logged  # each commit logged once, none twice

    for relative in SAME_FILES:  # the same artefacts as the run that was never killed
        assert _data(run.run_dir/relative) == _data(reference.run_dir/relative), f"{relative} differs from the uninterrupted run"
    assert not list(reference.run_dir.rglob("*.partial"))
    killed_result, reference_result = (json.loads((r.run_dir/"iteration_1"/"result.json").read_text()) for r in (run, reference))
    assert killed_result["dev"] == reference_result["dev"] and set(killed_result["dev"]) == {"greedy", "SC@2", "pass@2"}
    baseline = stage_info(run.run_dir, "baseline/evaluate")["summary"]
    assert (baseline["greedy"]["evaluated"], baseline["greedy"]["excluded"]) == (3, 1)
    assert (run.run_dir/"iteration_1"/"train"/"merged"/"config.json").is_file()
    for report in ("iteration_1.html", "summary.html"):
        page = (run.reports/report).read_text()
        assert "data:image/png" in page and "<img" in page, f"{report} has no plots"

    again = run.start()  # a finished run: nothing is redone
    run.finish(again, timeout=600)
    assert [json.loads(line)["stage"] for line in (run.run_dir/"stages.jsonl").read_text().splitlines()] == logged
    if os.environ.get("REASONFORGE_WRITE_FIXTURE"): make_fixture(run.run_dir, ROOT/"nbs"/"fixtures"/"tiny-run")
