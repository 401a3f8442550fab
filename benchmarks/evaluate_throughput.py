"""End-to-end speed of `reasonforge evaluate` (the command users run) against the naive per-pair verifier, on the
(gold, prediction) pairs of `verify_throughput.py`: Spider train, k = 8 candidates per usable question (55,232 pairs).

Run it alone on the machine:  flock /tmp/reasonforge-heavy.lock python benchmarks/evaluate_throughput.py [--quick]
Target: evaluate end to end (process start, pool start, scoring, report written) >= 8x faster than the naive verifier.
"""
import argparse, json, os, random, subprocess, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from verify_throughput import candidates_for, naive_verify  # the same workload and the same naive verifier
from reasonforge.data import find_spider_dir, load_spider


def one_line(sql):
    "A query as one line of an official prediction/gold file (Spider has a few with newlines or tabs inside)."
    return sql.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 questions")
    parser.add_argument("--k", type=int, default=8, help="candidates per question")
    parser.add_argument("--naive-pairs", type=int, default=None, help="pairs the naive verifier runs (default: all; extrapolated when fewer)")
    parser.add_argument("--etype", default="exec", help="passed to `reasonforge evaluate --etype` (exec, match, all)")
    parser.add_argument("--lenient", action="store_true", help="also pass --lenient")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2, help="runs of `reasonforge evaluate`; the best counts")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    spider = find_spider_dir()
    train = load_spider(spider, "train")
    questions = train.usable
    if args.quick: questions = rng.sample(questions, 300)
    pairs = [(q, one_line(candidate)) for q in questions for candidate in candidates_for(q.gold_sql, args.k, rng)]
    folder = Path(tempfile.mkdtemp(prefix="rf-evaluate-bench-"))
    (folder/"gold.sql").write_text("".join(f"{one_line(q.gold_sql)}\t{q.db_id}\n" for q, _ in pairs))
    (folder/"pred.sql").write_text("".join(f"{candidate}\n" for _, candidate in pairs))
    print(f"pairs: {len(pairs)} from {len(questions)} usable train questions, k = {args.k}; files in {folder}")
    print(f"load average before: {os.getloadavg()[0]:.2f} (other processes on the machine slow every number below)")

    command = [sys.executable, "-c", "import sys; from reasonforge.cli import main; sys.exit(main())", "evaluate", "--gold", str(folder/"gold.sql"), "--pred", str(folder/"pred.sql"),
               "--db", str(spider/"database"), "--table", str(spider/"tables.json"), "--out", str(folder/"report.json"),
               "--timeout", str(args.timeout)]
    if args.etype != "exec": command += ["--etype", args.etype]
    if args.lenient: command += ["--lenient"]
    runs = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        runs.append(time.perf_counter() - started)
    ours = min(runs)
    report = json.loads((folder/"report.json").read_text())
    verdicts = [e["exec_match"] for e in report["examples"]]
    print(f"\nreasonforge evaluate, end to end: {ours:.2f} s (best of {args.repeats}: {', '.join(f'{r:.2f}' for r in runs)} s) "
          f"= {len(pairs) / ours:,.0f} pairs/s; exec accuracy {report['summary']['exec_accuracy']:.4f}, "
          f"metric {report['summary'].get('execution_metric')}, report {(folder/'report.json').stat().st_size / 1e6:.1f} MB")

    size = min(len(pairs), args.naive_pairs or len(pairs))
    positions = sorted(rng.sample(range(len(pairs)), size)) if size < len(pairs) else list(range(len(pairs)))
    items = [(pairs[i][0].db_path, one_line(pairs[i][0].gold_sql), pairs[i][1]) for i in positions]
    started = time.perf_counter()
    naive = naive_verify(items, args.timeout, replace_value=True)
    naive_seconds = time.perf_counter() - started
    naive_total = naive_seconds * len(pairs) / size
    agree = sum(a == bool(verdicts[i]) for a, i in zip(naive, positions))
    print(f"naive per-pair verifier (one process: per pair open db, run gold and prediction, compare): {naive_seconds:.2f} s for {size} pairs"
          f"{'' if size == len(pairs) else f', extrapolated to all: {naive_total:.1f} s'}; verdicts equal to evaluate's: {agree}/{size}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"\nevaluate / naive speed: {naive_total / ours:.1f}x (target >= 8x)")


if __name__ == "__main__":
    main()
