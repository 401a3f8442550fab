"""Load: 100,000 (database, gold, candidate) triples from Spider train verified in one batch: wall time,
candidates/s, peak memory of the parent and of the workers, and agreement with the same triples verified in small batches.

Run it alone on the machine:  flock /tmp/reasonforge-heavy.lock python benchmarks/verify_load.py [--count N] [--small-batch N]
"""
import argparse, os, random, re, resource, time
from collections import Counter, defaultdict

from reasonforge.data import find_spider_dir, load_spider
from reasonforge.execute import SQLExecutor

_KEYWORD = re.compile(r"\b(select|from|where|group by|order by|having|limit|join|on|as|and|or|not|in|like|count|distinct)\b", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
_STRING = re.compile(r"'[^']*'|\"[^\"]*\"")
_FIRST_COLUMN = re.compile(r"\bSELECT\s+(?:DISTINCT\s+)?(?:\w+\.)?([A-Za-z_]\w*)\b(?!\s*\()", re.IGNORECASE)
_FIRST_TABLE = re.compile(r"\bFROM\s+([A-Za-z_]\w*)", re.IGNORECASE)


def _other_case(sql, rng):
    "Keywords in the other case and runs of spaces collapsed: the same query."
    return _KEYWORD.sub(lambda m: m.group().swapcase(), re.sub(r"\s+", " ", sql))


def _swap_direction(sql, rng):
    "ASC and DESC swapped (a wrong answer when the order matters)."
    if not re.search(r"\b(ASC|DESC)\b", sql, re.IGNORECASE): return None
    return re.sub(r"\b(ASC|DESC)\b", lambda m: "DESC" if m.group().upper() == "ASC" else "ASC", sql, flags=re.IGNORECASE)


def _change_number(sql, rng):
    "One number one larger."
    numbers = list(_NUMBER.finditer(sql))
    if not numbers: return None
    m = rng.choice(numbers)
    value = m.group()
    changed = str(float(value) + 1) if "." in value else str(int(value) + 1)
    return sql[:m.start()] + changed + sql[m.end():]


def _change_string(sql, rng):
    "One quoted literal with a letter more."
    strings = list(_STRING.finditer(sql))
    if not strings: return None
    m = rng.choice(strings)
    return sql[:m.end() - 1] + "q" + sql[m.end() - 1:]


def _misspell_column(sql, rng):
    "The first selected column misspelled: a schema error."
    m = _FIRST_COLUMN.search(sql)
    if m is None: return None
    return sql[:m.end(1)] + "_typo" + sql[m.end(1):]


_ENDS_FROM_CLAUSE = {"WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "INTERSECT", "UNION", "EXCEPT", "SELECT"}

def _truncate(sql, rng):
    "Cut off after a random word, as a sample that ran out of tokens: usually a syntax or schema error."
    words = sql.split()
    if len(words) < 4: return None
    # never inside a FROM clause: a join cut before its condition is a cartesian product that runs for seconds,
    # close enough to the timeout to be a timeout in one run and a result in the next (the verdicts must not depend on luck)
    inside_from, cuts = False, []
    for position, word in enumerate(words):
        if word.upper() in _ENDS_FROM_CLAUSE: inside_from = False
        if position >= 2 and not inside_from: cuts.append(position)  # keep words[:position], which ends before `word`
        if word.upper() == "FROM": inside_from = True
    return " ".join(words[:rng.choice(cuts)]) if cuts else None


def _whole_table(sql, rng):
    "Every row of the first table of the query."
    m = _FIRST_TABLE.search(sql)
    return None if m is None else f"SELECT * FROM {m.group(1)}"


PERTURBATIONS = [_other_case, _swap_direction, _change_number, _change_string, _misspell_column, _truncate, _whole_table]


def build_triples(count:int=100_000, seed:int=0):
    "`count` (database file, gold, candidate) triples over every usable Spider train question, with right, wrong and failing candidates."
    rng = random.Random(seed)
    train = load_spider(find_spider_dir(), "train")
    questions = train.usable
    golds_by_db = defaultdict(list)
    for question in questions: golds_by_db[question.db_id].append(question.gold_sql)
    per_question, extra = divmod(count, len(questions))
    triples = []
    for position, question in enumerate(questions):
        gold = question.gold_sql
        pool = [gold, gold]  # the right answer is the most frequent sample
        for perturbation in PERTURBATIONS:
            variant = perturbation(gold, rng)
            if variant and variant != gold: pool.append(variant)
        pool += rng.sample(golds_by_db[question.db_id], min(2, len(golds_by_db[question.db_id])))  # other questions' SQL
        for _ in range(per_question + (position < extra)):
            triples.append((question.db_path, gold, rng.choice(pool)))
    rng.shuffle(triples)
    return triples


def reset_peak_memory()->bool:
    "Reset this process's peak RSS (VmHWM) so that a later reading covers only what follows (Linux; False elsewhere)."
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs: clear_refs.write("5")
        return True
    except OSError: return False


def memory_kib(pid="self", field="VmHWM")->int|None:
    "A memory figure of a process from /proc (KiB): VmHWM is its peak RSS, VmRSS its current RSS."
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
    except (OSError, StopIteration): return None


def verify_in_batches(executor, triples, batch_size):
    "Verdicts of `triples` verified `batch_size` at a time."
    verdicts = []
    for start in range(0, len(triples), batch_size): verdicts += executor.verify(triples[start:start + batch_size])
    return verdicts


def measure(count:int=100_000, small_batch:int=1_000, compare:int|None=None, workers:int|None=None, timeout:float=5.0, seed:int=0)->dict:
    "Verify `count` triples in one batch, then `compare` of them (all when None) in small batches with a fresh pool; the figures."
    triples = build_triples(count, seed)
    figures = {"count": len(triples), "distinct_triples": len(set(triples))}
    peak_reset = reset_peak_memory()
    parent_before = memory_kib(field="VmRSS")
    with SQLExecutor(timeout=timeout, workers=workers) as executor:
        started = time.perf_counter()
        verdicts = executor.verify(triples)
        figures["seconds"] = time.perf_counter() - started
        figures["worker_peak_kib"] = [memory_kib(worker.process.pid) for worker in executor._workers]
        figures["stats"] = {key: executor.stats.get(key) for key in ("statements_executed", "tasks", "busy_seconds", "replaced_workers")}
    figures["parent_peak_kib"] = memory_kib() if peak_reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    figures["parent_before_kib"], figures["peak_reset"] = parent_before, peak_reset
    figures["children_peak_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest finished child
    figures["candidates_per_second"] = len(triples) / figures["seconds"]
    figures["verdicts"] = Counter("match" if v.exec_match else (v.error_kind or ("gold error" if v.gold_error else "wrong")) for v in verdicts)
    positions = sorted(random.Random(seed + 1).sample(range(len(triples)), compare)) if compare else list(range(len(triples)))
    with SQLExecutor(timeout=timeout, workers=workers) as fresh:
        started = time.perf_counter()
        small = verify_in_batches(fresh, [triples[i] for i in positions], small_batch)
        figures["small_batch_seconds"] = time.perf_counter() - started
    differing = [(i, verdicts[i], verdict) for i, verdict in zip(positions, small) if verdicts[i] != verdict]
    figures.update(compared=len(positions), differing=differing, triples=triples, big_verdicts=verdicts)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="triples in the big batch")
    parser.add_argument("--small-batch", type=int, default=1_000, help="size of the small batches compared against it")
    parser.add_argument("--compare", type=int, default=None, help="random triples re-verified in small batches (default: all)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds a query may run (the loop's CPU default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
    f = measure(args.count, args.small_batch, args.compare, args.workers, args.timeout, args.seed)
    mib = lambda kib: f"{kib / 1024:,.0f} MiB" if kib is not None else "n/a"
    print(f"triples: {f['count']:,} ({f['distinct_triples']:,} distinct), verdicts: {dict(f['verdicts'])}")
    print(f"one batch: {f['seconds']:.1f} s = {f['candidates_per_second']:,.0f} candidates/s; "
          f"statements executed {f['stats']['statements_executed']:,}, tasks {f['stats']['tasks']}, "
          f"busy seconds per worker {f['stats']['busy_seconds']}, replaced workers {f['stats']['replaced_workers'] or 0}")
    print(f"peak RSS: parent {mib(f['parent_peak_kib'])} (RSS before the batch, triples built: {mib(f['parent_before_kib'])}, "
          f"growth {mib(f['parent_peak_kib'] - f['parent_before_kib'])}); workers {', '.join(map(mib, f['worker_peak_kib']))}; "
          f"largest finished child {mib(f['children_peak_kib'])}")
    print(f"small batches of {args.small_batch:,}: {f['compared']:,} triples in {f['small_batch_seconds']:.1f} s; "
          f"verdicts differing from the one batch: {len(f['differing'])}")
    for index, big, small in f["differing"][:10]: print(f"  {f['triples'][index][2][:100]!r}\n    one batch: {big}\n    small:     {small}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
