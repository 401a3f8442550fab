"""Decoding that respects the database, measured: plain greedy against the schema grammar, execution-guided choice
(EG@n), repair from SQLite's error and their combination, on all usable dev questions; and on the CPU study's 96 train
questions, pass@1 / pass@4 and the harvest with and without them.

Each strategy is one `reasonforge predict` command, run as a user runs it, its wall time measured whole (engine start,
grammar compilation and execution included). Run it alone on the machine:

    flock /tmp/reasonforge-heavy.lock python benchmarks/decoding_comparison.py dev --out /tmp/decoding
    flock /tmp/reasonforge-heavy.lock python benchmarks/decoding_comparison.py train --out /tmp/decoding
    python benchmarks/decoding_comparison.py report --out /tmp/decoding --json benchmarks/out/decoding.json

`dev` and `train` skip a strategy whose report is already there (delete its folder to redo it). `report` prints the
tables: EX and EM per strategy with exact McNemar against plain greedy, the execution-error split of each
(`reasonforge.errors.execution_error_table`), seconds per question; pass@1, pass@4 and harvested rows on train. It
also writes each dev strategy's per-question predictions, compressed, to `nbs/fixtures/dev_decoding/` for the lessons.
"""
from __future__ import annotations
import argparse, gzip, json, os, subprocess, sys, time
from pathlib import Path

DEV_STRATEGIES = { # name -> predict flags
    "plain": ["--k", "1"],
    "schema": ["--k", "1", "--constrain", "schema"],
    "repair": ["--k", "1", "--repair", "1"],
    "eg": ["--k", "1", "--select", "first_executable"],
    "eg3": ["--k", "1", "--select", "first_executable", "--eg-samples", "2"],
    "eg3+repair": ["--k", "1", "--select", "first_executable", "--eg-samples", "2", "--repair", "1"],
}
TRAIN_STRATEGIES = { # the CPU study's train questions, k = 4 as its sampling
    "plain": [],
    "repair": ["--repair", "1"],
}
TRAIN_QUESTIONS = ["--split", "train", "--subset", "96", "--seed", "0", "--k", "4", "--max-tokens", "128",
                   "--prompt-budget", "896"]
FIXTURES = Path(__file__).resolve().parent.parent/"nbs"/"fixtures"/"dev_decoding"


def run_predict(out:Path, flags:list[str])->float:
    "Run `reasonforge predict` into `out` unless its report is there; its wall seconds (from `timing.json` on a rerun)."
    timing = out/"timing.json"
    if (out/"report.json").is_file() and timing.is_file(): return json.loads(timing.read_text())["seconds"]
    started = time.time()
    subprocess.run([str(Path(sys.executable).parent/"reasonforge"), "predict", *flags, "--out", str(out)], check=True)
    seconds = round(time.time() - started, 1)
    timing.write_text(json.dumps({"seconds": seconds, "flags": flags}))
    return seconds


def measure(split:str, out:Path, names:list[str]|None):
    "Run each strategy of the split."
    strategies = DEV_STRATEGIES if split == "dev" else TRAIN_STRATEGIES
    for name in names or strategies:
        flags = [*strategies[name]] + (["--split", "dev"] if split == "dev" else TRAIN_QUESTIONS)
        print(f"== {split} {name}: reasonforge predict {' '.join(flags)}", flush=True)
        print(f"   {run_predict(out/split/name, flags)} s", flush=True)


def _predictions(folder:Path)->list:
    from reasonforge.evaluate import DevPrediction
    return [DevPrediction.from_json(json.loads(line)) for line in (folder/"predictions.jsonl").open(encoding="utf-8")]


def _exact_matches(rows:list, spider)->list:
    "Official exact-set-match per question (None: excluded)."
    from reasonforge.exact_match import database_schema, exact_match, foreign_key_map, official_prediction
    from reasonforge.decoding import prediction_line
    tables = spider.tables
    return [None if r.excluded else bool(exact_match(r.gold_sql, official_prediction(prediction_line(r.predicted_sql)),
                                                     database_schema(spider.database_path(r.db_id)),
                                                     foreign_key_map(tables[r.db_id])).match)
            for r in rows]


def dev_report(out:Path)->dict:
    "EX, EM, McNemar against plain, error split and time per question of each dev strategy."
    from reasonforge.data import find_spider_dir, load_spider
    from reasonforge.errors import execution_error_table
    from reasonforge.stats import exact_mcnemar
    spider = load_spider(find_spider_dir(), "dev", check_schemas=False)
    results, flags = {}, {}
    for name in DEV_STRATEGIES:
        folder = out/"dev"/name
        if not (folder/"report.json").is_file(): continue
        rows = _predictions(folder)
        report = json.loads((folder/"report.json").read_text())
        ex = [None if r.excluded else bool(r.exec_match) for r in rows]
        em = _exact_matches(rows, spider)
        flags[name] = (ex, em)
        split = execution_error_table(rows, spider.tables)
        scored = sum(v is not None for v in ex)
        seconds = json.loads((folder/"timing.json").read_text())["seconds"]
        results[name] = {"answers": report["summary"].get("answers"), "scored": scored,
                         "ex_right": sum(bool(v) for v in ex), "em_right": sum(bool(v) for v in em),
                         "errors": {k: int(v) for k, v in split["count"].items()},
                         "seconds": seconds, "seconds_per_question": round(seconds / scored, 3),
                         "decoding": report["settings"].get("engine", {}).get("decoding", {})}
        FIXTURES.mkdir(parents=True, exist_ok=True)
        with gzip.GzipFile(FIXTURES/f"{name}.jsonl.gz", "wb", mtime=0) as f:
            f.write("".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in rows).encode())
    if "plain" in flags:
        for name, (ex, em) in flags.items():
            if name == "plain": continue
            for metric, before, after in (("ex", flags["plain"][0], ex), ("em", flags["plain"][1], em)):
                lost, gained, p = exact_mcnemar(before, after)
                results[name][f"{metric}_vs_plain"] = {"gained": gained, "lost": lost, "p_value": p}
    return results


def train_report(out:Path)->dict:
    "pass@1 and pass@4 of the samples, and the rows a harvest of them gives, per train strategy."
    from reasonforge.harvest import HarvestQuestion, HarvestSettings, build_training_rows, harvest_question
    results = {}
    for name in TRAIN_STRATEGIES:
        folder = out/"train"/name
        if not (folder/"report.json").is_file(): continue
        report = json.loads((folder/"report.json").read_text())
        harvests = []
        for line in (folder/"candidates.jsonl").open(encoding="utf-8"):
            row = json.loads(line)
            if row["excluded"] or "samples" not in row: continue
            samples = row["samples"]
            harvests.append(harvest_question(HarvestQuestion(
                row["question_index"], row["db_id"], row["question"], row["gold_sql"], [], [s["sql"] for s in samples],
                [bool(s["exec_match"]) for s in samples], [s.get("repair_of") is not None for s in samples])))
        rows, stats = build_training_rows(harvests, HarvestSettings(gold_copies=1))
        seconds = json.loads((folder/"timing.json").read_text())["seconds"]
        coverage = stats["coverage"]
        results[name] = {"questions": coverage["questions"], "pass@1": coverage["pass@1"], "pass@4": coverage["pass@4"],
                         "solved": coverage["solved"], "rows_by_source": stats["rows_by_source"],
                         "self_generated_rows": sum(n for s, n in stats["rows_by_source"].items() if s != "gold"),
                         "repaired_samples": report["settings"]["engine"].get("decoding", {}).get("repaired_samples"),
                         "seconds": seconds}
    return results


def _print_tables(dev:dict, train:dict):
    if dev:
        print("| dev answers | EX | vs plain (gained/lost, p) | EM | vs plain (gained/lost, p) | unknown table | "
              "column not in db | column of another table | syntax | other | ran, wrong | s/question |")
        print("|---" * 13 + "|")
        for name, r in dev.items():
            n = r["scored"]
            def versus(metric):
                v = r.get(f"{metric}_vs_plain")
                return "–" if v is None else f"+{v['gained']}/−{v['lost']}, p = {v['p_value']:.2g}"
            e = r["errors"]
            print(f"| {r['answers']} | {r['ex_right']}/{n} ({100 * r['ex_right'] / n:.1f}%) | {versus('ex')} | "
                  f"{r['em_right']}/{n} ({100 * r['em_right'] / n:.1f}%) | {versus('em')} | {e['unknown_table']} | "
                  f"{e['column_not_in_database']} | {e['column_of_another_table']} | {e['syntax']} | {e['other']} | "
                  f"{e['wrong_result']} | {r['seconds_per_question']:.3f} |")
    if train:
        print("\n| train samples (96 questions, k = 4) | pass@1 | pass@4 | solved | self-generated rows "
              "(sampled + repaired) | gold rows | s |")
        print("|---|---|---|---|---|---|---|")
        for name, r in train.items():
            rows = r["rows_by_source"]
            print(f"| {name} | {r['pass@1']:.3f} | {r['pass@4']:.3f} | {r['solved']}/{r['questions']} | "
                  f"{r['self_generated_rows']} ({rows.get('self', 0)} + {rows.get('repaired', 0)}) | "
                  f"{rows.get('gold', 0)} | {r['seconds']:.0f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["dev", "train", "report"])
    parser.add_argument("--out", required=True, help="folder of the predict runs (outside the checkout)")
    parser.add_argument("--only", nargs="*", help="strategies to run (default: all of the split)")
    parser.add_argument("--json", help="report: write the figures here")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.what != "report": return measure(args.what, out, args.only)
    import platform
    from reasonforge.models import cpu_flags
    dev, train = dev_report(out), train_report(out)
    _print_tables(dev, train)
    if args.json:
        machine = {"cpu": subprocess.run(["lscpu"], capture_output=True, text=True).stdout.split("Model name:")[1]
                   .splitlines()[0].strip(), "bf16": sorted(cpu_flags() & {"avx512_bf16", "amx_bf16"}),
                   "cores": len(os.sched_getaffinity(0)), "python": platform.python_version()}
        Path(args.json).write_text(json.dumps({"machine": machine, "dev": dev, "train": train}, indent=1))


if __name__ == "__main__":
    main()
