"""The tables of a finished study's section in benchmarks/RESULTS.md, printed as Markdown from its run folder.

    python benchmarks/study_tables.py ~/reasonforge-runs/study-cpu-2 [CONSOLE_LOG]

- stage seconds: each stage's wall time (`stage.json`), and their sum;
- harvests and trainings: train-side coverage, rows by source, rows trained on and dropped, steps, tokens/s, loss;
- the dev answers' errors per stage (`reasonforge.errors.execution_error_split`), and how many greedy answers failed
  to run (EG drew its samples for exactly those: the `N samples each: 100% n/n` progress line of the stage in the
  run's console output, CONSOLE_LOG, or else run.log, which holds only the report kernels' progress lines).
"""
import re, sys
from pathlib import Path

import pandas as pd
from reasonforge import errors
from reasonforge.results import markdown_table, stage_order, stage_predictions
from reasonforge.run_folder import ITERATION_STEPS, Run, stage_info


def stage_seconds(run:Run)->pd.DataFrame:
    "Seconds per step of each stage, and the stage's total."
    times = {stage: {step: round(info["wall_s"]) for step in ITERATION_STEPS
                     if (info := stage_info(run.folder, f"{stage}/{step}"))} for stage in stage_order(run)}
    frame = pd.DataFrame({stage: row for stage, row in times.items() if row}).T
    frame["total"] = frame.sum(axis=1)
    return frame.astype("Int64").astype(object).where(frame.notna(), "")


def harvests(run:Run)->pd.DataFrame:
    "Train-side coverage, harvested rows by source, and what training did with them, per stage that trained."
    rows = {}
    for stage in stage_order(run):
        harvest = (stage_info(run.folder, f"{stage}/harvest") or {}).get("summary")
        train = (stage_info(run.folder, f"{stage}/train") or {}).get("summary")
        if not harvest: continue
        coverage = harvest.get("coverage") or {}
        rows[stage] = {"questions": coverage.get("questions", ""), "pass@1": f"{coverage['pass@1']:.3f}" if coverage else "",
                       "pass@4": f"{coverage['pass@4']:.3f}" if coverage else "", "solved": coverage.get("solved", ""),
                       "rows": harvest.get("rows"),
                       "self / gold": "/".join(str(harvest.get("rows_by_source", {}).get(s, "–")) for s in ("self", "gold")),
                       "trained on": train and train.get("examples"), "dropped (length)": train and train.get("dropped_too_long"),
                       "steps": train and train.get("global_step"),
                       "tokens/s": train and f"{train.get('tokens_per_second') or 0:.1f}",
                       "loss first → last": train and f"{train.get('first_loss', 0):.3f} → {train.get('last_loss', 0):.3f}"}
    return pd.DataFrame(rows).T


def greedy_failures(run:Run, log:Path|None=None)->dict:
    ("stage -> greedy answers that failed to run, read from the progress line of EG's own samples in its evaluate "
     "stage (empty when EG chose among the self-consistency samples instead)")
    config = run.config
    if config.decoding.select != "first_executable" or (config.evaluation.k > 1 and not config.evaluation.sample_subset):
        return {}
    found, stage = {}, None
    pool = re.compile(rf"{config.decoding.samples} samples each: 100% (\d+)/\1\b")
    for line in Path(log or run.folder/"run.log").read_text(encoding="utf-8").splitlines():
        if (started := re.search(r"stage (\S+)/evaluate: started", line)): stage = started.group(1)
        elif re.search(r"stage \S+: finished", line): stage = None
        elif stage and (done := pool.search(line)): found[stage] = int(done.group(1))
    return found


def error_split(run:Run, log:Path|None=None)->pd.DataFrame:
    "The dev answers per stage: right, and the wrong ones by `EXECUTION_ERROR_SPLIT` kind or 'wrong_result'."
    tables, split = run.dataset("dev").root/"tables.json", {}
    failures = greedy_failures(run, log)
    for stage in stage_order(run):
        if not stage_info(run.folder, f"{stage}/evaluate"): continue
        predictions = stage_predictions(run, stage)
        counts = errors.execution_error_table(predictions, tables)["count"].to_dict()
        split[stage] = {"right": sum(p.exec_match is True for p in predictions), **counts,
                        "greedy answers that failed to run": failures.get(stage, "")}
    return pd.DataFrame(split)


if __name__ == "__main__":
    run = Run.open(sys.argv[1])
    seconds = stage_seconds(run)
    print("### Stage seconds\n\n" + markdown_table(seconds) + f"\n\nsum of stages: {int(seconds['total'].sum())} s\n")
    print("### Harvests and trainings\n\n" + markdown_table(harvests(run)) + "\n")
    log = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    print("### The dev answers' errors per stage\n\n" + markdown_table(error_split(run, log)))
