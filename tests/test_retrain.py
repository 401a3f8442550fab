"""Retrain on errors (issue 15): training questions from a file, any start model, and no dev leakage.
Dev questions are refused through `reasonforge run` before any engine starts; the override marks every report."""
import json, re, shutil
from pathlib import Path

import pytest
import yaml

from reasonforge.core import ReasonForgeError
from reasonforge.config import config_from_dict
from reasonforge.data import find_spider_dir, load_spider
from reasonforge.loop import _with_first_cell, check_inputs
from reasonforge.report import execute_notebook
from reasonforge.run_folder import DEV_CONTAMINATED, DEV_TRAINED, TRAIN_QUESTIONS, Run, demo_run_dir, notebook_template

from test_bad_input import assert_one_clear_error, base_config, fake_model, no_engines, run_command  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[1]
SPIDER = find_spider_dir()


def _report(path:Path, split:str, wrong:dict)->Path:
    "A report.json as `reasonforge predict` writes it: question index, db_id and verdict per example."
    questions = load_spider(SPIDER, split, check_schemas=False).questions
    path.write_text(json.dumps({"examples": [{"question_index": i, "db_id": questions[i].db_id, "exec_match": not bad}
                                             for i, bad in wrong.items()]}))
    return path


def test_dev_questions_are_refused_before_any_engine(tmp_path, no_engines, fake_model):
    report = _report(tmp_path/"dev-report.json", "dev", {0: True, 1: False, 2: True})
    config = base_config(tmp_path, fake_model, train_subset={"from_file": str(report), "only": "wrong"})
    result = run_command(tmp_path, no_engines, config)
    assert_one_clear_error(result, "run", str(report), "Spider dev questions", "train_on_dev_questions")
    assert not (tmp_path/"runs").exists() and not (tmp_path/"reports").exists()


def test_train_errors_are_selected_recorded_and_start_from_the_start_model(tmp_path, fake_model):
    report = _report(tmp_path/"report.json", "train", {4: True, 9: False, 17: True, 30: False})
    config = config_from_dict(base_config(tmp_path, "pypi:not-used", start_model=str(fake_model),
                                          train_subset={"from_file": str(report), "only": "wrong"}))
    found = check_inputs(Run(tmp_path/"runs"/"bad", config))
    assert found["model"] == str(fake_model)  # sampling and training start from start_model, not model
    assert found["train_questions"] | {"from_file": None} == {"from_file": None, "kind": "report", "only": "wrong", "split": "train", "questions": 2}
    run = Run.start(config, tmp_path/"runs"/"bad")
    assert [q.index for q in run.questions("train")] == [4, 17]
    recorded = json.loads((run.folder/TRAIN_QUESTIONS).read_text())
    assert (recorded["from_file"], recorded["indices"], recorded["split"]) == (str(report.resolve()), [4, 17], "train")
    assert "start model" in run.provenance() and "2 (wrong) of train from the report" in run.provenance()
    assert not run.trained_on_dev()
    # a resumed run must find the same questions: a changed file is named, a deleted one falls back to the record
    _report(report, "train", {4: True})
    with pytest.raises(ReasonForgeError, match="report.json names other training questions"): Run.open(run.folder).questions("train")
    report.unlink()
    assert [q.index for q in Run.open(run.folder).questions("train")] == [4, 17]


def test_override_trains_on_dev_and_says_so(tmp_path, fake_model):
    report = _report(tmp_path/"dev-report.json", "dev", {0: True, 5: True})
    config = config_from_dict(base_config(tmp_path, fake_model, train_on_dev_questions=True, train_subset={"from_file": str(report)}))
    run = Run(tmp_path/"runs"/"bad", config)
    assert check_inputs(run)["train_questions"]["split"] == "dev"
    assert [q.split for q in run.questions("train")] == ["dev", "dev"] and run.trained_on_dev()
    assert run.dev_label("baseline") == "baseline" + DEV_CONTAMINATED


def _contaminated_demo_run()->Path:
    "The bundled tiny run, as if its training questions had been Spider dev questions taken with the override."
    folder = demo_run_dir()
    values = json.loads((folder/"config.json").read_text())
    values["train_on_dev_questions"] = True
    values["train_subset"] = {**values["train_subset"], "from_file": str(folder/"gone-dev-report.json"), "size": None, "indices": None}
    (folder/"config.json").write_text(json.dumps(values))
    (folder/"config.yaml").write_text(yaml.safe_dump(values))
    (folder/TRAIN_QUESTIONS).write_text(json.dumps({"from_file": values["train_subset"]["from_file"], "kind": "report", "only": "all",
                                                    "split": "dev", "questions": 3, "indices": [0, 1, 2], "sha256": "-"}))
    return folder


@pytest.mark.parametrize("name", ["summary", "iteration"])
def test_override_marks_every_report(tmp_path, name):
    "As `run_loop` runs a report of a run that trained on dev: the warning is its first line; the summary marks each dev figure."
    run_dir = _contaminated_demo_run()
    template = _with_first_cell(notebook_template(name), tmp_path/".templates", DEV_TRAINED)
    outcome = execute_notebook(template, tmp_path/f"{name}.ipynb", {"run_dir": str(run_dir)}, cwd=ROOT)
    assert outcome.ok, outcome.error
    page = outcome.html.read_text()
    text = re.sub(r"<[^>]+>", " ", page[page.index("<body"):])
    assert text.split()[:6] == "This run trained on Spider dev questions".split()[:6], text[:300]  # the first words of the page
    assert page.count(DEV_CONTAMINATED.strip()) >= (8 if name == "summary" else 2)
    if name == "summary":  # no unmarked stage label beside a dev figure in the accuracy table
        executed = json.loads((tmp_path/"summary.ipynb").read_text())
        table = next(c for c in executed["cells"] if "".join(c["source"]).strip() == "accuracy_table(evaluations)")
        html = "".join(table["outputs"][0]["data"]["text/html"])
        assert "baseline (dev-contaminated)" in html and re.search(r">baseline<", html) is None


def test_shipped_retrain_config_reads_what_predict_writes():
    from reasonforge.config import load_config
    config = load_config(ROOT/"configs"/"retrain-errors-cpu.yaml")
    assert (config.train_subset.from_file, config.train_subset.only, config.train_on_dev_questions) == ("predict-train/report.json", "wrong", False)
    assert config.model == "pypi:qwen2.5-coder-0.5b-instruct" and config.iterations >= 1


def test_retrain_chain_on_the_embedded_model(tmp_path):
    "README's chain, tiny: `reasonforge predict --split train` -> a config on its wrong questions -> `reasonforge run` (transformers engine)."
    import subprocess, sys
    command = Path(sys.executable).parent/"reasonforge"
    predicted = subprocess.run([command, "predict", "--split", "train", "--subset", "8", "--seed", "0", "--k", "1", "--max-tokens", "96",
                                "--backend", "transformers", "--spider-dir", SPIDER, "--out", tmp_path/"predict-train"], capture_output=True, text=True, cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    examples = json.loads((tmp_path/"predict-train"/"report.json").read_text())["examples"]
    wrong = sorted(e["question_index"] for e in examples if e.get("exec_match") is False and not e.get("excluded"))
    assert wrong, "the embedded model answered all 8 train questions right: pick another --seed"
    values = yaml.safe_load((ROOT/"configs"/"retrain-errors-cpu.yaml").read_text())
    values |= {"spider_dir": str(SPIDER), "dev_subset": {"indices": [0]}, "evaluation": {"greedy": True, "k": 0}, "sampling": {"k": 2, "max_tokens": 96, "seed": 0},
               "training": {"max_steps": 1, "per_device_batch_size": 2, "max_length": 1024, "save_steps": 1}, "harvest": {"max_rows": 4},
               "engine": {"backend": "transformers", "group_size": 4}}
    (tmp_path/"retrain.yaml").write_text(yaml.safe_dump(values))
    ran = subprocess.run([command, "run", "--config", "retrain.yaml"], capture_output=True, text=True, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-3000:]
    run_dir = tmp_path/"runs"/"retrain-errors-cpu"
    assert json.loads((run_dir/TRAIN_QUESTIONS).read_text())["indices"] == wrong
    sampled = [json.loads(line)["index"] for line in (run_dir/"iteration_1"/"sample"/"candidates.jsonl").read_text().splitlines()]
    assert sampled == wrong  # sampled, trained and recorded: the wrong questions only
    summary = (tmp_path/"reports"/"retrain-errors-cpu"/"summary.html").read_text()
    assert "(wrong) of train from the report" in summary and DEV_CONTAMINATED.strip() not in summary
