"""Throughput of candidate verification on Spider train: our `SQLExecutor.verify` against a naive per-pair verifier
and against the floor (each distinct query executed once, divided by the cores).

Run it alone on the machine:  flock /tmp/reasonforge-heavy.lock python benchmarks/verify_throughput.py [--quick]
"""
import argparse, os, random, re, sqlite3, statistics, time
from collections import Counter

from reasonforge.data import connect_read_only, find_spider_dir, load_spider
from reasonforge.execute import SQLExecutor
from reasonforge.match import official_results_equal, order_matters, prepare_sql

KEYWORDS = r"\b(SELECT|FROM|WHERE|GROUP BY|ORDER BY|HAVING|LIMIT|JOIN|ON|AS|AND|OR|NOT|IN|LIKE|DESC|ASC|COUNT|DISTINCT|INTERSECT|UNION|EXCEPT)\b"


def change_case_and_spacing(sql, rng):
    "Keywords in the other case, runs of spaces collapsed: what another sample often differs by."
    sql = re.sub(r"\s+", " ", sql)
    return re.sub(KEYWORDS, lambda m: m.group().lower() if m.group().isupper() else m.group().upper(), sql, flags=re.IGNORECASE)


def rename_aliases(sql, rng):
    "T1, T2, ... become a, b, ... (same result)."
    return re.sub(r"\bT(\d)\b", lambda m: "abcdefgh"[int(m.group(1)) - 1] if m.group(1) != "0" else "z", sql)


def change_literal(sql, rng):
    "Change one number or quoted string."
    literals = list(re.finditer(r"'[^']*'|\"[^\"]*\"|\b\d+(\.\d+)?\b", sql))
    literals = [m for m in literals if not re.search(r"\bT?\d\s*$", sql[:m.start()]) and not sql[:m.start()].rstrip().upper().endswith("LIMIT")]
    if not literals: return None
    m = rng.choice(literals)
    text = m.group()
    new = text[:-1] + "x" + text[-1] if text[0] in "'\"" else str(float(text) + 1) if "." in text else str(int(text) + 1)
    return sql[:m.start()] + new + sql[m.end():]


def drop_condition(sql, rng):
    "Drop the last AND/OR condition of the WHERE clause, or the whole WHERE clause."
    if re.search(r"\bWHERE\b", sql, re.IGNORECASE) is None: return None
    dropped = re.sub(r"\s+(AND|OR)\s+[^()]*?(?=\s+(GROUP|ORDER|LIMIT|INTERSECT|UNION|EXCEPT|HAVING)\b|\)|$)", "", sql, count=1, flags=re.IGNORECASE)
    if dropped != sql: return dropped
    return re.sub(r"\s+WHERE\s+[^()]*?(?=\s+(GROUP|ORDER|LIMIT|INTERSECT|UNION|EXCEPT|HAVING)\b|\)|$)", "", sql, count=1, flags=re.IGNORECASE)


def swap_order(sql, rng):
    "DESC becomes ASC and the other way round (or a DESC is added)."
    if re.search(r"\bDESC\b", sql, re.IGNORECASE): return re.sub(r"\bDESC\b", "ASC", sql, count=1, flags=re.IGNORECASE)
    if re.search(r"\bASC\b", sql, re.IGNORECASE): return re.sub(r"\bASC\b", "DESC", sql, count=1, flags=re.IGNORECASE)
    if re.search(r"\bORDER BY\b", sql, re.IGNORECASE): return re.sub(r"(\bORDER BY\s+\S+)", r"\1 DESC", sql, count=1, flags=re.IGNORECASE)
    return None


def change_limit(sql, rng):
    "LIMIT n becomes n+1, or the LIMIT goes."
    m = re.search(r"\bLIMIT\s+(\d+)", sql, re.IGNORECASE)
    if m is None: return None
    if rng.random() < 0.5: return sql[:m.start()].rstrip() + sql[m.end():]
    return sql[:m.start(1)] + str(int(m.group(1)) + 1) + sql[m.end(1):]


def break_column(sql, rng):
    "Misspell the first selected column."
    m = re.search(r"\bSELECT\s+(DISTINCT\s+)?(?:\w+\.)?([A-Za-z_]\w*)", sql, re.IGNORECASE)
    if m is None or m.group(2).lower() in {"count", "max", "min", "avg", "sum", "distinct"}: return None
    return sql[:m.start(2)] + m.group(2) + "_name" + sql[m.end(2):]


VARIATIONS = [change_case_and_spacing, rename_aliases, change_literal, drop_condition, swap_order, change_limit, break_column]


def candidates_for(gold, k, rng):
    "k candidates like a sampler at temperature 0.7 gives: about half are repeats, correct ones are frequent."
    distinct_count = max(1, min(k, round(rng.gauss(k / 2, 1))))
    pool = [gold]
    for variation in rng.sample(VARIATIONS, len(VARIATIONS)):
        if len(pool) >= distinct_count: break
        variant = variation(gold, rng)
        if variant and variant not in pool: pool.append(variant)
    candidates = list(pool) + [rng.choice(pool) for _ in range(k - len(pool))]
    rng.shuffle(candidates)
    return candidates


def run_with_deadline(connection, sql, timeout):
    "Execute and fetch everything, interrupting at `timeout` seconds; rows or None."
    deadline = time.monotonic() + timeout
    connection.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
    try: return connection.execute(sql).fetchall()
    except (sqlite3.Error, sqlite3.Warning, MemoryError): return None
    finally: connection.set_progress_handler(None, 0)


def open_like_reference(path):
    "A fresh read-only connection with the official text factory."
    connection = connect_read_only(path)
    connection.text_factory = lambda b: b.decode(errors="ignore")
    return connection


def naive_verify(items, timeout, replace_value=False):
    "The reference system's loop: per pair open the database, run gold and candidate, compare (official semantics)."
    verdicts = []
    for db_path, gold, candidate in items:
        prepared_gold, prepared_candidate = prepare_sql(gold), prepare_sql(candidate, is_prediction=replace_value)
        connection = open_like_reference(db_path)
        gold_rows = run_with_deadline(connection, prepared_gold, timeout)
        connection.close()
        connection = open_like_reference(db_path)
        candidate_rows = run_with_deadline(connection, prepared_candidate, timeout)
        connection.close()
        verdicts.append(gold_rows is not None and candidate_rows is not None
                        and official_results_equal(gold_rows, candidate_rows, order_matters(prepared_gold)))
    return verdicts


def floor_seconds(items, timeout):
    "Wall and CPU seconds to execute each distinct (database, prepared query) once, one process, connections reused."
    distinct = {(str(db), prepare_sql(gold)) for db, gold, _ in items}
    distinct |= {(str(db), prepare_sql(candidate)) for db, _, candidate in items}  # the train-side verifier: no `value` rule
    connections, total, cpu = {}, 0.0, 0.0
    for db_path, sql in sorted(distinct):
        if db_path not in connections: connections[db_path] = open_like_reference(db_path)
        started, cpu_started = time.perf_counter(), time.process_time()
        run_with_deadline(connections[db_path], sql, timeout)
        total += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
    for connection in connections.values(): connection.close()
    return total, len(distinct), cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 questions and a 500-pair naive sample")
    parser.add_argument("--k", type=int, default=8, help="candidates per question")
    parser.add_argument("--naive-pairs", type=int, default=None, help="pairs the naive verifier runs (default: 4000, quick: 500)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU cores)")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours and of the floor; the best of each counts")
    args = parser.parse_args()
    cores = args.workers or os.cpu_count()
    rng = random.Random(args.seed)

    train = load_spider(find_spider_dir(), "train")
    questions = train.usable  # the 96 questions whose database is missing cannot be verified at all: left out
    if args.quick: questions = rng.sample(questions, 300)
    items = [(q.db_path, q.gold_sql, candidate) for q in questions for candidate in candidates_for(q.gold_sql, args.k, rng)]
    distinct_pairs = len(set(items))
    print(f"questions: {len(questions)} (train has {len(train)}, {len(train.excluded)} excluded: their database is missing)")
    print(f"pairs: {len(items)}  distinct (question, candidate) pairs: {distinct_pairs} "
          f"({1 - distinct_pairs / len(items):.0%} repeats)  cores: {cores}")

    print(f"load average before: {os.getloadavg()[0]:.2f} (other processes on the machine slow every number below)")

    floor_runs = [floor_seconds(items, args.timeout) for _ in range(args.repeats)]
    floor_total, distinct_statements, floor_cpu = min(floor_runs)
    floor = floor_total / cores

    cold_runs, warm_runs = [], []
    for _ in range(args.repeats):  # a fresh pool each time: nothing cached
        started = time.perf_counter()
        executor = SQLExecutor(timeout=args.timeout, workers=cores).start()  # returns when every worker answers
        startup = time.perf_counter() - started
        started, cpu_started = time.perf_counter(), time.process_time()
        verdicts = executor.verify(items)
        stats = dict(executor.stats)
        stats["parent_cpu"] = time.process_time() - cpu_started
        cold_runs.append((time.perf_counter() - started, startup, stats))
        started = time.perf_counter()
        executor.verify(items)
        warm_runs.append(time.perf_counter() - started)
        executor.close()
    ours, startup, stats = min(cold_runs, key=lambda run: run[0])
    ours_warm = min(warm_runs)
    matches = sum(v.exec_match for v in verdicts)
    kinds = Counter(v.error_kind for v in verdicts if v.error_kind)
    runs = ", ".join(f"{run[0]:.2f}" for run in cold_runs)
    print(f"\nours: {ours:.2f} s for {len(items)} pairs = {len(items) / ours:,.0f} candidates/s (best of {args.repeats}: {runs} s; "
          f"pool start {startup:.2f} s not included)")
    print(f"      a second batch of the same pairs, gold results cached in the workers: {ours_warm:.2f} s = {len(items) / ours_warm:,.0f} candidates/s")
    ours_cpu = sum(stats["cpu_seconds"]) + stats["parent_cpu"]
    print(f"      statements executed: {stats['statements_executed']}, tasks: {stats['tasks']}, busy seconds per worker: "
          f"{stats['busy_seconds']}, CPU seconds: workers {stats['cpu_seconds']} + parent {stats['parent_cpu']:.2f} = {ours_cpu:.2f}")
    print(f"      matches: {matches} ({matches / len(items):.1%}), candidate errors: {dict(kinds)}, "
          f"gold errors: {sum(v.gold_error is not None for v in verdicts)}")

    sample_size = min(len(items), args.naive_pairs or (500 if args.quick else 4000))
    sample_positions = sorted(rng.sample(range(len(items)), sample_size))
    sample = [items[i] for i in sample_positions]
    started = time.perf_counter()
    naive_verdicts = naive_verify(sample, args.timeout)
    naive_sample = time.perf_counter() - started
    naive_total = naive_sample * len(items) / sample_size
    agree = sum(a == verdicts[i].exec_match for a, i in zip(naive_verdicts, sample_positions))
    print(f"\nnaive (one process, per pair: open db, run gold and candidate, compare): {naive_sample:.2f} s for "
          f"{sample_size} random pairs = {sample_size / naive_sample:,.0f} candidates/s"
          f"{'' if sample_size == len(items) else f'; extrapolated to all pairs: {naive_total:.1f} s'}")
    print(f"      verdicts equal to ours on the sample: {agree}/{sample_size}")

    runs = ", ".join(f"{run[0]:.2f}" for run in floor_runs)
    print(f"\nfloor: executing the {distinct_statements} distinct (db, prepared SQL) once takes {floor_total:.2f} s "
          f"in one process (best of {args.repeats}: {runs} s); / {cores} cores = {floor:.2f} s = {len(items) / floor:,.0f} candidates/s")
    print(f"load average after: {os.getloadavg()[0]:.2f}")

    print(f"\nours / naive speed: {naive_total / ours:.1f}x (target >= 5x); "
          f"per core (naive given all {cores} cores): {naive_total / cores / ours:.1f}x")
    print(f"ours / floor time: {ours / floor:.2f}x (target <= 2x); with gold cached: {ours_warm / floor:.2f}x")
    print(f"ours / floor CPU seconds (insensitive to other load on the machine): {ours_cpu:.2f} / {floor_cpu:.2f} = {ours_cpu / floor_cpu:.2f}x")


if __name__ == "__main__":
    main()
