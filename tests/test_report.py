"Edge cases of reasonforge.report beyond the notebook's lessons: rendered reports, failing notebooks, tables of partial runs."
import json, re
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from reasonforge.core import ReasonForgeError
from reasonforge.evaluate import sample_summaries
from reasonforge.report import (accuracy_table, execute_notebook, hardness_table, iteration_table, plot_accuracy, plot_coverage,
                                plot_stage_times, render_html, stage_time_table)

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT/"nbs"/"fixtures"/"tiny-run"


def _notebook(path:Path, *sources, parameters=None)->Path:
    "A notebook of code cells; the one at index `parameters` is tagged as papermill's parameters cell."
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    if parameters is not None: nb.cells[parameters].metadata["tags"] = ["parameters"]
    nbformat.write(nb, path)
    return path


@pytest.mark.skipif(not (FIXTURE/"config.json").is_file(), reason="the bundled tiny run is missing")
def test_summary_report_renders_with_plots(tmp_path):
    "The summary notebook on the bundled tiny run: executed, rendered without code, with every plot as an embedded PNG."
    run_dir = tmp_path/"tiny-run"
    import shutil
    shutil.copytree(FIXTURE, run_dir)
    outcome = execute_notebook(ROOT/"nbs"/"summary.ipynb", tmp_path/"summary.ipynb", {"run_dir": str(run_dir)}, cwd=ROOT)
    assert outcome.ok, outcome.error
    page = outcome.html.read_text()
    images = re.findall(r'<img[^>]+src="data:image/png;base64,', page)
    assert len(images) >= 4, f"expected the accuracy, hardness, coverage and wall-time plots, found {len(images)} images"
    assert "from reasonforge" not in page and "run_dir: str" not in page  # no code, no parameters cell
    assert "Dev accuracy per stage" in page and "baseline" in page


def test_failing_notebook_is_written_and_rendered(tmp_path):
    "A cell that raises: the call returns ok=False with the error, and both the notebook and its HTML exist."
    template = _notebook(tmp_path/"fails.ipynb", 'limit: int = 3 # how far to count', "total = sum(range(limit))",
                         "raise ValueError(f'total was {total}')", "print('never reached')", parameters=0)
    outcome = execute_notebook(template, tmp_path/"out"/"fails.ipynb", {"limit": 5})
    assert not outcome.ok and "ValueError: total was 10" in outcome.error
    executed = nbformat.read(outcome.notebook, as_version=4)
    assert executed.metadata.papermill.exception
    assert "total was 10" in outcome.html.read_text()


def test_kernel_gets_tqdm_disabled_and_inline_backend(tmp_path):
    "The kernel sees TQDM_DISABLE=1 and the inline matplotlib backend even if the caller set Agg."
    template = _notebook(tmp_path/"env.ipynb", 'out: str = ""',
                         "import os, json, matplotlib\n"
                         "open(out, 'w').write(json.dumps([os.environ.get('TQDM_DISABLE'), matplotlib.get_backend()]))",
                         parameters=0)
    import os
    old = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "Agg"
    try: outcome = execute_notebook(template, tmp_path/"env_out.ipynb", {"out": str(tmp_path/"env.json")}, html=None)
    finally:
        if old is None: os.environ.pop("MPLBACKEND")
        else: os.environ["MPLBACKEND"] = old
    assert outcome.ok and outcome.html is None
    tqdm_disabled, backend = json.loads((tmp_path/"env.json").read_text())
    assert tqdm_disabled == "1" and "inline" in backend
    assert os.environ.get("MPLBACKEND") == old  # the caller's environment is restored


def test_missing_template_is_a_user_error(tmp_path):
    with pytest.raises(ReasonForgeError, match="nope.ipynb"):
        execute_notebook(tmp_path/"nope.ipynb", tmp_path/"out.ipynb")


def test_render_html_drops_parameters_cells(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("secret_default = 1")
    cell.metadata["tags"] = ["parameters"]
    cell.outputs = [nbformat.v4.new_output("stream", text="PARAMETER OUTPUT\n")]
    shown = nbformat.v4.new_code_cell("x = 2")
    shown.outputs = [nbformat.v4.new_output("stream", text="VISIBLE OUTPUT\n")]
    nb.cells = [cell, shown]
    nbformat.write(nb, tmp_path/"p.ipynb")
    page = render_html(tmp_path/"p.ipynb").read_text()
    assert "VISIBLE OUTPUT" in page and "PARAMETER OUTPUT" not in page and "x = 2" not in page


def _verdict(match, key, gold_error=None):
    return SimpleNamespace(exec_match=match, lenient_match=match, result_key=key, gold_error=gold_error, error=None, error_kind=None)


def test_sample_summaries_excludes_failing_gold_and_checks_shapes():
    gold = [("SELECT count(*) FROM singer", "concert_singer"), ("SELECT name FROM singer", "concert_singer")]
    verdicts = [[_verdict(True, "a"), _verdict(False, "b")], [_verdict(False, None, gold_error="syntax: boom")] * 2]
    summaries = sample_summaries(gold, verdicts, lenient=True)
    assert (summaries["pass_at_k"]["evaluated"], summaries["pass_at_k"]["excluded"]) == (1, 1)
    assert summaries["pass_at_k"]["exec_accuracy"] == 1.0 and summaries["pass_at_k"]["pass@1"] == 0.5
    assert summaries["self_consistency"]["exec_accuracy"] == 1.0  # a tie goes to the first sampled, which is right
    assert summaries["pass_at_k_curve"] == {"1": 0.5, "2": 1.0}  # over the one scored question
    with pytest.raises(ReasonForgeError, match="different numbers of samples"):
        sample_summaries(gold, [[_verdict(True, "a")], [_verdict(True, "a")] * 2])
    with pytest.raises(ReasonForgeError, match="2 questions but 1 verdict lists"):
        sample_summaries(gold, [None])


def test_tables_and_plots_of_a_run_in_progress():
    "A run whose first iteration has sampled but not trained or evaluated: tables and plots show what exists."
    summary = {"exec_accuracy": 0.5, "lenient_accuracy": None, "evaluated": 2, "excluded": 0, "total": 2,
               "by_hardness": {level: {"exec_accuracy": 0.5, "evaluated": 1} for level in ("easy", "medium", "hard", "extra")}}
    evaluations = {"baseline": {"greedy": summary}}
    table = accuracy_table(evaluations)
    assert table.loc["baseline", "greedy"] == 50.0 and "greedy lenient" not in table.columns
    assert list(hardness_table(evaluations, "pass_at_k").index) == []
    records = [{"iteration": 1, "harvest": None, "training": None, "evaluation": None}]
    row = iteration_table(records).loc["iteration 1"]
    assert row["train questions"] is None or row.isna()["train questions"]
    assert plot_accuracy(evaluations).axes[0].get_lines()[0].get_ydata().tolist() == [50.0]
    assert len(plot_coverage([]).axes) == 2
    assert stage_time_table([]).empty and len(plot_stage_times([]).axes) == 1


# --- a failing notebook: its partial report shows the error, the run is marked failed, the CLI exits non-zero --------

def test_failing_notebook_report_shows_the_error_and_the_work_before_it(tmp_path):
    "Outputs of the cells before the failure stay in the page, the traceback is visible, the cells after it never ran."
    template = _notebook(tmp_path/"fails.ipynb", 'rows: int = 3 # rows to report', "print(f'PARTIAL RESULT: {rows * 7} rows')",
                         "raise RuntimeError('sampling exploded')", "print('NEVER REACHED')", parameters=0)
    outcome = execute_notebook(template, tmp_path/"reports"/"iteration_1.ipynb", {"rows": 6})
    assert not outcome.ok and outcome.error.endswith("RuntimeError: sampling exploded"), outcome.error
    page = outcome.html.read_text()
    assert outcome.html == tmp_path/"reports"/"iteration_1.html"
    assert "PARTIAL RESULT: 42 rows" in page and "NEVER REACHED" not in page.replace("print(&#39;NEVER REACHED&#39;)", "")
    assert "RuntimeError" in page and "sampling exploded" in page
    assert "An Exception was encountered" in page  # papermill's banner at the top of the page


def _failing_iteration_notebooks(folder:Path)->Path:
    "Stand-ins for nbs/iteration.ipynb (raises after some output) and nbs/summary.ipynb (reads the run status)."
    folder.mkdir()
    _notebook(folder/"iteration.ipynb", 'run_dir: str = ""\niteration: int = 1\nconfig_path: str = ""',
              "print(f'ITERATION {iteration} STARTED in {run_dir}')", "raise RuntimeError('the trainer ran out of memory')", parameters=0)
    _notebook(folder/"summary.ipynb", 'run_dir: str = ""',
              "import json, pathlib\nprint('SUMMARY STATUS', json.loads((pathlib.Path(run_dir)/'run.json').read_text())['status'])", parameters=0)
    return folder


@pytest.mark.skipif(not (FIXTURE/"config.json").is_file(), reason="the bundled tiny run is missing")
def test_failing_iteration_notebook_fails_the_run(tmp_path):
    """`reasonforge run` on the bundled tiny run (baseline finished) whose iteration notebook raises: no engine starts, the page
    shows the error, run.json says failed, and the command exits 1 naming the notebook and its HTML page."""
    import os, shutil, subprocess, sys, yaml
    run_dir = tmp_path/"tiny"
    shutil.copytree(FIXTURE, run_dir)
    model = tmp_path/"model"
    model.mkdir()
    (model/"config.json").write_text("{}")  # the checks resolve the model; nothing loads it
    values = yaml.safe_load((run_dir/"config.yaml").read_text()) | {"model": str(model)}
    (tmp_path/"tiny.yaml").write_text(yaml.safe_dump(values))
    resolved = json.loads((run_dir/"config.json").read_text()) | {"model": str(model)}
    (run_dir/"config.json").write_text(json.dumps(resolved))
    blocked = tmp_path/"no-engines"
    for name in ("vllm", "unsloth"):
        (blocked/name).mkdir(parents=True)
        (blocked/name/"__init__.py").write_text(f"raise ImportError('{name} imported')\n")
    env = {**os.environ, "REASONFORGE_NOTEBOOKS": str(_failing_iteration_notebooks(tmp_path/"nbs")),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(blocked), os.environ.get("PYTHONPATH")]))}
    reports = tmp_path/"reports"
    result = subprocess.run([str(Path(sys.executable).parent/"reasonforge"), "run", "--config", str(tmp_path/"tiny.yaml"),
                             "--run-dir", str(run_dir), "--reports-dir", str(reports)],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 1, result.stderr[-3000:]
    assert "RuntimeError: the trainer ran out of memory in " in failed[0] and failed[0].startswith("failed: iteration 1: cell "), failed[0]
    assert str(reports/"iteration_1.ipynb") in failed[0] and str(reports/"iteration_1.html") in failed[0], failed[0]
    page = (reports/"iteration_1.html").read_text()
    assert "ITERATION 1 STARTED" in page and "the trainer ran out of memory" in page
    status = json.loads((run_dir/"run.json").read_text())
    assert status["status"] == "failed" and "the trainer ran out of memory" in status["error"]
    assert "SUMMARY STATUS failed" in (reports/"summary.html").read_text()  # the summary still renders, and sees the failure
    results = json.loads((reports/"results.json").read_text())  # written for a failed run too: the stages that exist
    assert results["schema_version"] == 2 and "baseline" in results["stages"], list(results)
    assert set(results["stages"]["baseline"]["dev"]["greedy"]) >= {"accuracy", "ci95", "n"}
    assert json.loads((run_dir/"stages.jsonl").read_text().splitlines()[0])["stage"] == "baseline/evaluate"
    assert len((run_dir/"stages.jsonl").read_text().splitlines()) == len((FIXTURE/"stages.jsonl").read_text().splitlines())  # nothing redone


@pytest.mark.skipif(not (FIXTURE/"config.json").is_file(), reason="the bundled tiny run is missing")
def test_unreadable_notebook_marks_the_run_failed_and_keeps_the_traceback(tmp_path, monkeypatch):
    "Not a user error but a bug-like failure (a template that is not a notebook): run.json still says failed, the exception propagates."
    import shutil
    from reasonforge.config import config_from_dict
    from reasonforge.loop import run_loop
    run_dir = tmp_path/"tiny"
    shutil.copytree(FIXTURE, run_dir)
    (tmp_path/"model").mkdir()
    (tmp_path/"model"/"config.json").write_text("{}")
    resolved = json.loads((run_dir/"config.json").read_text()) | {"model": str(tmp_path/"model")}
    (run_dir/"config.json").write_text(json.dumps(resolved))
    (tmp_path/"nbs").mkdir()
    (tmp_path/"nbs"/"iteration.ipynb").write_text("{ this is not a notebook")
    monkeypatch.setenv("REASONFORGE_NOTEBOOKS", str(tmp_path/"nbs"))
    with pytest.raises(Exception) as error: run_loop(config_from_dict(resolved), run_dir, tmp_path/"reports")
    assert not isinstance(error.value, ReasonForgeError)
    status = json.loads((run_dir/"run.json").read_text())
    assert status["status"] == "failed" and type(error.value).__name__ in status["error"]
