"Edge cases of reasonforge.report beyond the notebook's lessons: rendered reports, failing notebooks, tables of partial runs."
import json, re
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from reasonforge.core import ReasonForgeError
from reasonforge.report import (accuracy_table, execute_notebook, hardness_table, iteration_table, plot_accuracy, plot_coverage,
                                plot_stage_times, render_html, sample_summaries, stage_time_table)

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
