"""Does a change keep behaviour? Two checkouts (before and after a refactor) answer the same questions the same way.

    flock /tmp/reasonforge-heavy.lock python benchmarks/behaviour_check.py run BEFORE_CHECKOUT OUT/before
    flock /tmp/reasonforge-heavy.lock python benchmarks/behaviour_check.py run AFTER_CHECKOUT OUT/after [--reuse OUT/before]
    python benchmarks/behaviour_check.py compare OUT/before OUT/after

`run` scores a seeded 100 of the dev questions with every decoding of `benchmarks/decoding_comparison.py` (plain
greedy, the schema grammar, repair, EG@5, EG@3, EG@3 with repair) through `reasonforge predict`, then runs the default
config (`configs/default-cpu.yaml`), all with the library of CHECKOUT (`PYTHONPATH`, so one virtual environment serves
both), from a fresh run folder. Checkouts are e.g. `git worktree add /tmp/before COMMIT`.

`--reuse` copies each strategy's candidate cache from an earlier `run` first. The cache key holds the prompt text, the
sampling settings, the grammar and the model, so with it the after-run generates nothing unless it asks the engine
something different: `compare` prints how many prompts each pass sampled anew (0: same prompts, same grammars), and
whether the predictions, candidates, prediction files, summaries and EG/repair counts are equal. The default runs are
always fresh (no cache): their `results.json` and `dev_verdicts.jsonl.gz` are compared with timings and provenance left
out. Answers depend on the CPU and dtype: compare two runs of one machine.
"""
import argparse, gzip, json, os, shutil, subprocess, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decoding_comparison import DEV_STRATEGIES  # noqa: E402 -- the strategies, as the decoding measurement names them

QUESTIONS = ["--split", "dev", "--subset", "100", "--seed", "0"]
IGNORED = {"provenance", "commit", "machine", "library_versions", "written"}  # what a re-run may change besides timings


def run(checkout:Path, out:Path, reuse:Path|None):
    "Score the 100 questions with every strategy, then the default run, with the library of `checkout`."
    env = {**os.environ, "PYTHONPATH": str(checkout), "TQDM_DISABLE": "1"}
    reasonforge = str(Path(sys.executable).parent/"reasonforge")
    out.mkdir(parents=True, exist_ok=True)
    for name, flags in DEV_STRATEGIES.items():
        if (out/name/"report.json").is_file(): continue
        if reuse is not None and (reuse/name/"cache").is_dir():
            shutil.copytree(reuse/name/"cache", out/name/"cache", dirs_exist_ok=True)
        started = time.time()
        subprocess.run([reasonforge, "predict", *QUESTIONS, *flags, "--out", str(out/name)], env=env, check=True,
                       cwd=checkout)
        print(f"{name}: {time.time() - started:.0f} s", flush=True)
    if not (out/"default"/"results.json").is_file():
        shutil.rmtree(checkout/"runs"/"default-cpu", ignore_errors=True) # a fresh run, every stage computed
        subprocess.run([reasonforge, "run", "--config", "configs/default-cpu.yaml"], env=env, check=True, cwd=checkout)
        shutil.copytree(checkout/"reports"/"default-cpu", out/"default", dirs_exist_ok=True)


def _without_timings(value):
    "A results document with timings and what a re-run may change taken out."
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items()
                if k not in IGNORED and not k.endswith(("_s", "_seconds", "seconds"))}
    if isinstance(value, list): return [_without_timings(v) for v in value]
    return value


def compare(before:Path, after:Path)->bool:
    "Print, per strategy and for the default run, whether the after-run equals the before-run; True when all do."
    same = True
    for name in DEV_STRATEGIES:
        b, a = before/name, after/name
        report_b, report_a = (json.loads((d/"report.json").read_text()) for d in (b, a))
        files = sorted(p.name for p in b.iterdir() if p.suffix in (".sql", ".jsonl"))
        equal = {f: (b/f).read_bytes() == (a/f).read_bytes() for f in files}
        equal["summary"] = report_b["summary"] == report_a["summary"]
        equal["decoding counts"] = (report_b["settings"]["engine"].get("decoding")
                                    == report_a["settings"]["engine"].get("decoding"))
        anew = {p: s.get("sampled_prompts") for p, s in report_a["settings"]["engine"].items()
                if isinstance(s, dict) and "sampled_prompts" in s}
        same &= all(equal.values())
        print(f"{name}: {'equal' if all(equal.values()) else 'DIFFERENT'} "
              f"({', '.join(k for k, v in equal.items() if not v) or 'every file'}); "
              f"EX {report_a['summary'].get('exec_accuracy'):.3f}; "
              f"prompts sampled anew: {anew}")
    results_b, results_a = (json.loads((d/"default"/"results.json").read_text()) for d in (before, after))
    results_equal = _without_timings(results_b) == _without_timings(results_a)
    verdicts_equal = (gzip.open(before/"default"/"dev_verdicts.jsonl.gz").read()
                      == gzip.open(after/"default"/"dev_verdicts.jsonl.gz").read())
    print(f"default run: results.json {'equal' if results_equal else 'DIFFERENT'} (timings and provenance aside), "
          f"dev_verdicts.jsonl.gz {'equal' if verdicts_equal else 'DIFFERENT'}")
    return same and results_equal and verdicts_equal


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    one = sub.add_parser("run"); one.add_argument("checkout"); one.add_argument("out"); one.add_argument("--reuse")
    two = sub.add_parser("compare"); two.add_argument("before"); two.add_argument("after")
    args = parser.parse_args(argv)
    if args.what == "run":
        return run(Path(args.checkout).resolve(), Path(args.out).resolve(), args.reuse and Path(args.reuse).resolve())
    sys.exit(0 if compare(Path(args.before), Path(args.after)) else 1)


if __name__ == "__main__":
    main()
