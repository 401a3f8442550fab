"""Hostile SQL against the executor the loop uses: every case ends as a clear verdict in time, the pool stays usable,
memory stays bounded and no database file changes (issue 7, "Hostile SQL suite").

Each case is one row of `CASES`: a name, the database it runs on, the SQL, the verdict it must get (an error kind of
`reasonforge.sandbox.ERROR_KINDS`, or "ok" for SQL that runs and is harmless) and the path it takes: "verify" (the
loop's path: the SQL is a candidate judged against a harmless gold query, after the official preparation) or
"execute" (the text runs exactly as given). Policy decisions the table documents:
- PRAGMA statements are rejected, even read-only ones like `PRAGMA table_info` (a statement keyword other than a
  query), and so are the `pragma_*` table-valued functions; reading `sqlite_master` is an ordinary query and allowed.
- Under "verify" a text with several statements is judged on its first statement, as the official evaluator does;
  the rest never runs (the byte-identical check at the end proves it). Under "execute" such text is rejected.
- Memory blow-ups end as `memory` (SQLite's 10 MB value limit and hard heap limit, or the worker's address-space
  limit). One ends as `timeout`: `printf('%.*c', 2000000000, 'x')` spends ~11 s in SQLite's C code, past the value
  limit and outside its virtual machine (so no progress handler runs), and the parent's backstop kills the worker.
- Text longer than 100,000 characters is rejected before the official preparation (which would take sqlparse ~30 s
  for 5 MB) even when the official evaluator would run its first statement.

The suite executor has the loop's `max_rows` (100,000) and worker count, a 2 s timeout and a 256 MB memory budget
per worker (the loop: 5 or 30 s and 2048 MB) so that all cases finish in well under a minute;
`test_memory_blowup_under_the_loop_executor` repeats the memory blow-ups with the loop's own executor and config.
"""
import os, shutil, sqlite3, time
from pathlib import Path
from types import SimpleNamespace

import pytest

from reasonforge.core import sha256_file
from reasonforge.data import find_spider_dir
from reasonforge.execute import SQLExecutor
from reasonforge.sandbox import ERROR_KINDS
from reasonforge.config import ExecutionConfig

SPIDER = find_spider_dir()
DATABASES = {"concert": "concert_singer", "flight": "flight_4", "sakila": "sakila_1"}
GOLD = {"concert": "SELECT count(*) FROM singer", "flight": "SELECT count(*) FROM airlines", "sakila": "SELECT count(*) FROM actor"}
TIMEOUT, GRACE, MEMORY_MB = 2.0, 1.0, 256
MARGIN = 2.5  # seconds beyond timeout + grace: the parent's poll, and starting a replacement worker after a kill
NEW_FILE = "{folder}/created_by_attack.sqlite"  # a path in a database folder that must never come to exist

NESTED_PARENTHESES = "SELECT " + "(" * 5000 + "1" + ")" * 5000
NESTED_SUBQUERIES = "SELECT " + "(SELECT " * 300 + "1" + ")" * 300
LONG_SUM = "SELECT " + " + ".join(["1"] * 5000)
FIVE_MB = "SELECT count(*) FROM singer WHERE name = '" + "x" * 5_000_000 + "'"
FIVE_MB_DISTINCT = "SELECT DISTINCT count(*) FROM singer" + " + 0" * 1_250_000  # preparing it would take sqlparse ~30 s
FIVE_MB_STATEMENTS = "SELECT count(*) FROM singer; " * 180_000
NEVER_ENDS = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n"

CASES = [  # name, database, sql, expected verdict, path
    # writes of every kind
    ("insert", "concert", "INSERT INTO singer (Singer_ID, Name) VALUES (99, 'Mallory')", "rejected", "verify"),
    ("insert select", "concert", "INSERT INTO singer SELECT * FROM singer", "rejected", "verify"),
    ("insert behind a CTE", "concert", "WITH x AS (SELECT 1) INSERT INTO singer SELECT * FROM singer", "rejected", "verify"),
    ("update", "concert", "UPDATE singer SET Age = 0", "rejected", "verify"),
    ("delete", "concert", "DELETE FROM singer", "rejected", "execute"),
    ("delete behind a CTE", "concert", "WITH d AS (SELECT 1) DELETE FROM singer", "rejected", "verify"),
    ("drop table", "concert", "DROP TABLE singer", "rejected", "verify"),
    ("drop table in lower case after a comment", "concert", "/* harmless */ drop table if exists concert", "rejected", "execute"),
    ("create table", "concert", "CREATE TABLE evil (x)", "rejected", "verify"),
    ("create table as select", "concert", "CREATE TABLE evil AS SELECT * FROM singer", "rejected", "verify"),
    ("create temp table", "concert", "CREATE TEMP TABLE evil (x)", "rejected", "verify"),
    ("create index", "concert", "CREATE INDEX evil ON singer (Age)", "rejected", "verify"),
    ("create view", "concert", "CREATE VIEW evil AS SELECT * FROM singer", "rejected", "verify"),
    ("create trigger", "concert", "CREATE TRIGGER evil AFTER INSERT ON singer BEGIN DELETE FROM singer; END", "rejected", "verify"),
    ("replace", "concert", "REPLACE INTO singer (Singer_ID, Name) VALUES (1, 'Mallory')", "rejected", "verify"),
    ("insert or replace", "concert", "INSERT OR REPLACE INTO singer (Singer_ID, Name) VALUES (1, 'Mallory')", "rejected", "verify"),
    ("alter rename", "concert", "ALTER TABLE singer RENAME TO singer_old", "rejected", "verify"),
    ("alter add column", "concert", "ALTER TABLE singer ADD COLUMN evil TEXT", "rejected", "verify"),
    ("reindex", "concert", "REINDEX", "rejected", "verify"),
    ("analyze", "concert", "ANALYZE", "rejected", "verify"),
    ("begin exclusive", "concert", "BEGIN EXCLUSIVE", "rejected", "execute"),
    ("savepoint", "concert", "SAVEPOINT s", "rejected", "verify"),
    ("explain a write", "concert", "EXPLAIN DELETE FROM singer", "rejected", "verify"),
    # other files
    ("attach another database", "concert", "ATTACH DATABASE '{flight}' AS other", "rejected", "verify"),
    ("attach a new file", "concert", f"ATTACH DATABASE '{NEW_FILE}' AS evil", "rejected", "execute"),
    ("attach memory", "concert", "ATTACH ':memory:' AS scratch", "rejected", "verify"),
    ("detach", "concert", "DETACH DATABASE main", "rejected", "verify"),
    ("vacuum", "concert", "VACUUM", "rejected", "verify"),
    ("vacuum into a new file", "concert", f"VACUUM INTO '{NEW_FILE}'", "rejected", "execute"),
    ("load_extension", "concert", "SELECT load_extension('/tmp/libevil.so')", "rejected", "verify"),
    ("load_extension in a WHERE clause", "concert", "SELECT Name FROM singer WHERE load_extension('libevil') IS NULL", "rejected", "verify"),
    ("fts3_tokenizer", "concert", "SELECT fts3_tokenizer('simple')", "rejected", "verify"),
    # past the first wall (leading semicolons and a byte-order mark are skipped by SQLite): the authorizer must hold
    ("delete after an empty statement", "concert", ";DELETE FROM singer", "rejected", "execute"),
    ("vacuum into after an empty statement", "concert", f"; VACUUM INTO '{NEW_FILE}'", "rejected", "execute"),
    ("attach after empty statements", "concert", f";; ATTACH DATABASE '{NEW_FILE}' AS evil", "rejected", "execute"),
    ("drop after a byte-order mark", "concert", "\ufeffDROP TABLE singer", "rejected", "execute"),
    ("pragma_user_version", "concert", "SELECT * FROM pragma_user_version", "rejected", "verify"),
    # PRAGMA
    ("pragma writable_schema", "concert", "PRAGMA writable_schema = ON", "rejected", "verify"),
    ("pragma journal_mode WAL", "concert", "PRAGMA journal_mode = WAL", "rejected", "execute"),
    ("pragma user_version", "concert", "PRAGMA user_version = 7", "rejected", "verify"),
    ("pragma table_info (policy: no PRAGMA)", "concert", "PRAGMA table_info(singer)", "rejected", "verify"),
    ("pragma function (policy: no pragma_*)", "concert", "SELECT * FROM pragma_table_info('singer')", "rejected", "verify"),
    # runaway queries
    ("recursive CTE that never ends", "concert", NEVER_ENDS, "timeout", "verify"),
    ("recursive CTE growing a string", "concert",
     "WITH RECURSIVE r(x, s) AS (SELECT 1, '' UNION ALL SELECT x + 1, s || 'abcdefghij' FROM r) SELECT max(length(s)) FROM r", "timeout", "verify"),
    ("cartesian product of the biggest tables", "flight", "SELECT count(*) FROM routes AS a, routes AS b", "timeout", "verify"),
    ("cartesian product of sakila's biggest tables", "sakila", "SELECT count(*) FROM rental AS a, payment AS b, film_actor AS c", "timeout", "execute"),
    ("LIKE over a cartesian product", "flight",
     "SELECT count(*) FROM routes AS a, airports AS b WHERE a.src_ap || b.name LIKE '%a%b%c%d%e%f%g%'", "timeout", "verify"),
    # memory
    ("randomblob of 2 GB", "concert", "SELECT randomblob(2000000000)", "memory", "verify"),
    ("zeroblob of 1 GB", "concert", "SELECT length(zeroblob(1000000000))", "memory", "verify"),
    ("replace blow-up", "concert", "SELECT replace(hex(zeroblob(1000000)), '0', hex(zeroblob(1000)))", "memory", "verify"),
    ("printf width blow-up", "concert", "SELECT length(printf('%.*c', 2000000000, 'x'))", "timeout", "verify"),  # the backstop
    ("group_concat of big blobs", "concert", "SELECT length(group_concat(randomblob(5000000))) FROM singer AS a, singer AS b", "memory", "verify"),
    ("9 MB rows until the address space ends", "flight", "SELECT zeroblob(9000000) FROM routes", "memory", "execute"),
    ("sorting an endless stream of blobs", "concert",
     "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT x, randomblob(1000) AS b FROM n ORDER BY b", "memory", "verify"),
    # deep nesting
    ("5000 nested parentheses", "concert", NESTED_PARENTHESES, "syntax", "verify"),
    ("300 nested subqueries", "concert", NESTED_SUBQUERIES, "syntax", "verify"),
    ("5000-term expression", "concert", LONG_SUM, "syntax", "verify"),
    # several statements, comments
    ("two statements (as given)", "concert", "SELECT count(*) FROM singer; DROP TABLE singer", "rejected", "execute"),
    ("two statements (official: the first only)", "concert", "SELECT count(*) FROM singer; DROP TABLE singer", "ok", "verify"),
    ("line comment hiding a second statement", "concert", "SELECT 1 -- harmless\n; DELETE FROM singer", "rejected", "execute"),
    ("block comment hiding a second statement", "concert", "SELECT 1 /* ; */ ; DELETE FROM singer", "rejected", "execute"),
    ("a write inside a comment only", "concert", "SELECT count(*) FROM singer /* ; DROP TABLE singer */", "ok", "verify"),
    # bytes that are not text
    ("NUL byte before a second statement", "concert", "SELECT 1\x00; DROP TABLE singer", "rejected", "verify"),
    ("NUL byte in a literal", "concert", "SELECT count(*) FROM singer WHERE Name = 'a\x00b'", "rejected", "execute"),
    ("lone surrogate (invalid UTF-8)", "concert", "SELECT count(*) FROM singer WHERE Name = '\udcff'", "rejected", "verify"),
    ("lone surrogate in a comment", "concert", "SELECT 1 -- \ud800", "rejected", "execute"),
    # size
    ("5 MB of SQL text", "concert", FIVE_MB, "rejected", "execute"),
    ("5 MB of SQL text through preparation", "concert", FIVE_MB_DISTINCT, "rejected", "verify"),
    ("5 MB of statements", "concert", FIVE_MB_STATEMENTS, "rejected", "verify"),
    ("enormous result (cartesian)", "flight", "SELECT a.rid, b.apid FROM routes AS a, airports AS b", "too_many_rows", "verify"),
    ("enormous result (recursive CTE)", "concert",
     "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n LIMIT 10000000) SELECT x FROM n", "too_many_rows", "execute"),
    ("large but allowed result", "flight", "SELECT rid, src_ap, dst_ap FROM routes", "ok", "verify"),
    # harmless
    ("sqlite_version()", "concert", "SELECT sqlite_version()", "ok", "verify"),
    ("reading sqlite_master", "concert", "SELECT name FROM sqlite_master WHERE type = 'table'", "ok", "verify"),
    ("schema-qualified read", "concert", "SELECT count(*) FROM main.singer", "ok", "verify"),
    ("json of a cartesian product", "concert", "SELECT json_group_array(a.Name) FROM singer AS a, singer AS b", "ok", "execute"),
]
CASE_NAMES = [case[0] for case in CASES]
assert len(set(CASE_NAMES)) == len(CASES) >= 40


@pytest.fixture(scope="module")
def databases(tmp_path_factory):
    "Writable copies of three Spider database folders, their files' sha256 and the file names, before any case runs."
    root = tmp_path_factory.mktemp("hostile")
    paths = {}
    for key, db_id in DATABASES.items():
        folder = root/db_id
        shutil.copytree(SPIDER/"database"/db_id, folder)
        folder.chmod(0o755)
        for file in folder.iterdir(): file.chmod(0o644)  # Spider is read-only; the copies are not: the executor must hold
        paths[key] = folder/f"{db_id}.sqlite"
    digests = {file: sha256_file(file) for file in root.rglob("*") if file.is_file()}
    return SimpleNamespace(root=root, paths=paths, digests=digests)


@pytest.fixture(scope="module")
def executor():
    "The executor the loop builds (its `max_rows`, one worker per core), with the suite's shorter time and memory budgets."
    settings = ExecutionConfig()
    with SQLExecutor(timeout=TIMEOUT, max_rows=settings.max_rows, workers=2, memory_limit_mb=MEMORY_MB, grace=GRACE) as pool:
        yield pool


def verdict_kind(error_kind):
    return "ok" if error_kind is None else error_kind


def run_case(executor, databases, database, sql, path):
    "Run one case; its verdict kind, error text and the seconds the call took."
    db_path = databases.paths[database]
    sql = sql.replace("{flight}", str(databases.paths["flight"])).replace("{folder}", str(db_path.parent))
    started = time.monotonic()
    if path == "execute":
        outcome = executor.execute([(db_path, sql)])[0]
        kind, error = verdict_kind(outcome.error_kind), outcome.error
    else:
        verdict = executor.verify([(db_path, GOLD[database], sql)])[0]
        assert verdict.gold_error is None, verdict.gold_error
        kind, error = verdict_kind(verdict.error_kind), verdict.error
    return kind, error, time.monotonic() - started


def test_writes_would_change_an_unprotected_copy(databases, tmp_path):
    "Control: the copies are writable, and the same attacks through a plain connection do change the bytes."
    for path in databases.paths.values(): assert os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    copy = tmp_path/"concert_singer.sqlite"
    shutil.copy(databases.paths["concert"], copy)
    before = sha256_file(copy)
    connection = sqlite3.connect(copy, isolation_level=None)
    connection.execute("DELETE FROM singer")
    connection.execute(f"VACUUM INTO '{tmp_path/'created_by_attack.sqlite'}'")
    connection.close()
    assert sha256_file(copy) != before and (tmp_path/"created_by_attack.sqlite").exists()


@pytest.mark.parametrize("name,database,sql,expected,path", CASES, ids=CASE_NAMES)
def test_hostile_case(executor, databases, name, database, sql, expected, path):
    assert expected == "ok" or expected in ERROR_KINDS
    kind, error, seconds = run_case(executor, databases, database, sql, path)
    assert kind == expected, (kind, error)
    assert seconds < TIMEOUT + GRACE + MARGIN, seconds


def test_after_the_suite_nothing_changed_and_the_pool_answers(executor, databases):
    "Runs after every case (pytest keeps file order): same bytes, no new files, correct answers from the same pool."
    files = {file for file in databases.root.rglob("*") if file.is_file()}
    assert files == set(databases.digests), sorted(map(str, files ^ set(databases.digests)))
    assert {file: sha256_file(file) for file in files} == databases.digests
    concert, flight = databases.paths["concert"], databases.paths["flight"]
    outcomes = executor.execute([(concert, "SELECT count(*) FROM singer"), (flight, "SELECT count(*) FROM routes")])
    assert [o.rows for o in outcomes] == [[(6,)], [(67240,)]]
    verdicts = executor.verify([(concert, "SELECT Name FROM singer ORDER BY Age DESC", "SELECT Name FROM singer ORDER BY Age DESC"),
                                (concert, "SELECT Name FROM singer ORDER BY Age DESC", "SELECT Name FROM singer ORDER BY Age")])
    assert [v.exec_match for v in verdicts] == [True, False]


def _address_space_limit(pid):
    with open(f"/proc/{pid}/limits") as limits:
        line = next(line for line in limits if line.startswith("Max address space"))
    return line.split()[3]


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="reads /proc (Linux)")
def test_workers_have_a_bounded_address_space(executor):
    "Every worker caps its address space at its start size plus the budget, and its peak stayed below that cap."
    for worker in executor._workers:
        limit = _address_space_limit(worker.process.pid)
        assert limit != "unlimited"
        with open(f"/proc/{worker.process.pid}/status") as status:
            peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmPeak:"))
        assert peak <= int(limit) < (MEMORY_MB + 256) * 2**20, (peak, limit)  # a worker starts at ~30 MB of address space


def test_memory_blowup_under_the_loop_executor(databases):
    "The loop's own executor (full-run config: 30 s, 100,000 rows, 2048 MB per worker) turns blow-ups into `memory`."
    from reasonforge.config import load_config
    from reasonforge.execute import SQLExecutor
    config = load_config(Path(__file__).parents[1]/"configs"/"spider-ministral8b.yaml")
    execution = config.execution # what the run's verification and `reasonforge.score` start their executors with
    with SQLExecutor(timeout=execution.timeout, max_rows=execution.max_rows, workers=execution.workers) as pool:
        assert (pool.memory_limit_mb, pool.max_rows) == (2048, 100_000)
        for database, sql in [("flight", "SELECT zeroblob(9000000) FROM routes"), ("concert", "SELECT randomblob(2000000000)")]:
            started = time.monotonic()
            outcome = pool.execute([(databases.paths[database], sql)])[0]
            assert outcome.error_kind == "memory", (outcome.error_kind, outcome.error)
            assert time.monotonic() - started < pool.timeout
        assert pool.execute([(databases.paths["concert"], "SELECT count(*) FROM singer")])[0].rows == [(6,)]
