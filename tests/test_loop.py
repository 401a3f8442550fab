"""reasonforge.config, run_folder and loop beyond the notebook's lessons: every config error names its key and stages commit atomically.
Kills of real runs are in test_faults.py."""
import json, subprocess, sys
from pathlib import Path

import pytest
import yaml

from reasonforge.core import ReasonForgeError
from reasonforge.config import RunConfig, config_from_dict, config_to_dict, load_config
from reasonforge.run_folder import Run, run_lock, run_stage, stage_info

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT/"configs"


# --- the config ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["default-cpu.yaml", "spider-ministral8b.yaml"])
def test_shipped_configs_are_valid(name):
    config = load_config(CONFIGS/name)
    assert config.model and config.iterations >= 1
    assert config_from_dict(config_to_dict(config)) == config  # the snapshot reads back as the same config


def test_reference_config_has_the_reference_settings():
    config = load_config(CONFIGS/"spider-ministral8b.yaml")
    assert config.model == "mistralai/Ministral-8B-Instruct-2410"
    assert (config.sampling.k, config.sampling.temperature, config.iterations, config.evaluation.k) == (8, 0.7, 3, 16)
    assert config.train_subset.size is None and config.dev_subset.size is None


BAD_CONFIGS = [
    ({"model": "m", "sampling": {"kk": 4}}, "unknown key 'sampling.kk'"),
    ({"model": "m", "colour": "red"}, "unknown key 'colour'"),
    ({"model": "m", "training": {"lora_rnk": 8}}, "unknown key 'training.lora_rnk'"),
    ({"model": "m", "sampling": {"k": "8"}}, "sampling.k: expected an integer, got '8'"),
    ({"model": "m", "sampling": {"k": 2.5}}, "sampling.k: expected an integer"),
    ({"model": "m", "sampling": {"temperature": "hot"}}, "sampling.temperature: expected a number"),
    ({"model": "m", "sampling": {"temperature": -0.1}}, "sampling.temperature: must be at least 0"),
    ({"model": "m", "evaluation": {"k": -1}}, "evaluation.k: must be at least 0"),
    ({"model": "m", "evaluation": {"lenient": "yes"}}, "evaluation.lenient: expected true/false, got 'yes'"),
    ({"model": "m", "evaluation": {"sample_subset": 0}}, "evaluation.sample_subset: must be at least 1"),
    ({"model": "m", "learning_curve": [0.25, 1.0]}, "learning_curve: fractions of iteration 1's rows, each in (0, 1)"),
    ({"model": "m", "learning_curve": 0.5}, "learning_curve: expected a list"),
    ({"model": "m", "iterations": 0, "learning_curve": [0.5]}, "learning_curve: needs at least one iteration"),
    ({"model": "m", "iterations": -1}, "iterations: must be at least 0"),
    ({"model": "m", "iterations": 1.0}, "iterations: expected an integer"),
    ({"model": "m", "train_subset": {"size": 0}}, "train_subset.size: must be at least 1"),
    ({"model": "m", "train_subset": {"indices": [1, -2]}}, "train_subset.indices"),
    ({"model": "m", "dev_subset": [1, 2]}, "dev_subset: expected a mapping"),
    ({"model": "m", "harvest": {"gold_copies": -3}}, "harvest.gold_copies: must be at least 0"),
    ({"model": "m", "harvest": {"max_rows": 0}}, "harvest.max_rows: must be at least 1"),
    ({"model": "m", "training": {"learning_rate": 0}}, "training.learning_rate: must be greater than 0"),
    ({"model": "m", "training": {"backend": "keras"}}, "training: TrainSettings.backend='keras'"),
    ({"model": "m", "execution": {"timeout": 0}}, "execution.timeout: must be greater than 0"),
    ({"model": "m", "name": "../escape"}, "name: '../escape' must be a folder name"),
    ({"model": "m", "train_from_base": False}, "train_from_base: false is not supported"),
    ({"model": ""}, "model: required"),
    ({"model": 7}, "model: expected a string, got 7"),
]

@pytest.mark.parametrize("values,message", BAD_CONFIGS, ids=[m for _, m in BAD_CONFIGS])
def test_bad_configs_name_the_key(tmp_path, values, message):
    path = tmp_path/"bad.yaml"
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(ReasonForgeError) as error: load_config(path)
    assert message in str(error.value) and str(path) in str(error.value), str(error.value)


def test_yaml_quirks_are_accepted(tmp_path):
    path = tmp_path/"ok.yaml"
    path.write_text("model: m\ntraining: {learning_rate: 2e-4, epochs: 1}\nsampling: {temperature: 1}\n")
    config = load_config(path)
    assert (config.training.learning_rate, config.training.epochs, config.sampling.temperature) == (2e-4, 1.0, 1.0)


def test_config_must_be_a_mapping(tmp_path):
    (tmp_path/"list.yaml").write_text("- model\n")
    with pytest.raises(ReasonForgeError, match="expected a mapping"): load_config(tmp_path/"list.yaml")
    with pytest.raises(ReasonForgeError, match="cannot read config"): load_config(tmp_path/"missing.yaml")


# --- the run folder and its stages --------------------------------------------------------------------------------

def test_config_snapshot_and_resume_rules(tmp_path):
    config = RunConfig(model="m", name="snap")
    run = Run.start(config, tmp_path/"run")
    assert yaml.safe_load((run.folder/"config.yaml").read_text())["model"] == "m"
    assert json.loads((run.folder/"config.json").read_text()) == config_to_dict(config)
    changed = RunConfig(model="other", name="snap")
    with pytest.raises(ReasonForgeError, match=r"changed: model \('m' -> 'other'\)"): Run.start(changed, tmp_path/"run")
    with pytest.raises(ReasonForgeError, match="is not a run folder"): Run.open(tmp_path)


def test_stage_failure_leaves_no_final_folder_and_resumes(tmp_path):
    calls = []
    def failing(folder):
        (folder/"half.txt").write_text("half")
        raise RuntimeError("power cut")
    with pytest.raises(RuntimeError): run_stage(tmp_path, "iteration_1/sample", failing)
    assert not (tmp_path/"iteration_1"/"sample").exists() and stage_info(tmp_path, "iteration_1/sample") is None
    def finishing(folder):
        calls.append((folder/"half.txt").read_text())  # the unfinished work is there to resume from
        (folder/"out.json").write_text("{}")
        return {"rows": 3}
    info = run_stage(tmp_path, "iteration_1/sample", finishing)
    assert (info["attempts"], info["summary"], calls) == (2, {"rows": 3}, ["half"])
    assert sorted(p.name for p in (tmp_path/"iteration_1").iterdir()) == ["sample"]
    assert run_stage(tmp_path, "iteration_1/sample", failing)["skipped"]
    assert len((tmp_path/"stages.jsonl").read_text().splitlines()) == 1


def test_lock_refuses_a_second_process(tmp_path):
    probe = f"from reasonforge.run_folder import run_stage\nrun_stage({str(tmp_path)!r}, 's', lambda f: {{}})"
    with run_lock(tmp_path):
        other = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
        assert other.returncode != 0 and "is in use by another process" in other.stderr
        assert run_stage(tmp_path, "mine", lambda f: {"ok": 1})["summary"] == {"ok": 1}  # re-entrant in this process
    assert subprocess.run([sys.executable, "-c", probe]).returncode == 0


# --- the command line -----------------------------------------------------------------------------------------------

def test_run_command_reports_a_bad_config(tmp_path):
    "`run --config` with a misspelt key: the handler raises the error naming the key (the CLI prints it, exit 2)."
    import argparse
    from reasonforge.cli import add_run_command
    parser = argparse.ArgumentParser(prog="reasonforge")
    add_run_command(parser.add_subparsers(dest="command", required=True))
    (tmp_path/"bad.yaml").write_text("model: m\nsampling: {temprature: 0.7}\n")
    args = parser.parse_args(["run", "--config", str(tmp_path/"bad.yaml"), "--run-dir", str(tmp_path/"run")])
    with pytest.raises(ReasonForgeError, match="unknown key 'sampling.temprature'"): args.handler(args)
    assert not (tmp_path/"run").exists()  # nothing was started


def test_cli_main_has_the_run_command(tmp_path, capsys):
    from reasonforge import cli
    (tmp_path/"bad.yaml").write_text("model: m\niterations: -2\n")
    try: status = cli.main(["run", "--config", str(tmp_path/"bad.yaml")])
    except SystemExit as exit: pytest.skip(f"reasonforge.cli has no run command yet (argparse exit {exit.code})")
    assert status == 2 and "iterations: must be at least 0" in capsys.readouterr().err


def test_resumed_finished_run_prints_progress_lines_only(tmp_path):
    "`reasonforge run` on a copy of the finished tiny run: both report notebooks execute, and the console shows only the run's own log lines."
    import os, re, shutil
    from reasonforge.data import find_spider_dir
    run = tmp_path/"run"
    shutil.copytree(ROOT/"nbs"/"fixtures"/"tiny-run", run)
    env = {**os.environ, "REASONFORGE_SPIDER_DIR": str(find_spider_dir())}
    done = subprocess.run([sys.executable, "-c", "import sys; from reasonforge.cli import main; sys.exit(main(sys.argv[1:]))", "run", "--config", str(run/"config.yaml"), "--run-dir", str(run),
                           "--reports-dir", str(tmp_path/"reports")], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (tmp_path/"reports"/"iteration_1.html").is_file() and (tmp_path/"reports"/"summary.html").is_file()
    lines = done.stderr.splitlines()
    assert any("iteration 1: done" in line for line in lines), lines
    noise = [line for line in lines if not re.match(r"\d\d:\d\d:\d\d (INFO|WARNING) reasonforge\.\w+: ", line)]
    assert noise == [], noise  # e.g. ipykernel's "Kernel is running over TCP without encryption"
