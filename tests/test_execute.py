"Safety and robustness of reasonforge.execute beyond the notebook's lessons."
import shutil, sqlite3

import pytest

from reasonforge.core import sha256_file
from reasonforge.data import find_spider_dir, load_spider
from reasonforge.execute import SQLExecutor
from reasonforge.sql_worker import Verdict


@pytest.fixture(scope="module")
def dev():
    return load_spider(find_spider_dir(), "dev")


@pytest.fixture(scope="module")
def executor():
    with SQLExecutor(timeout=1.0, workers=2, grace=1.0, max_rows=5000) as pool: yield pool


def test_writes_cannot_touch_a_writable_copy(dev, executor, tmp_path):
    copy = tmp_path/"pets_1.sqlite"
    shutil.copy(dev.database_path("pets_1"), copy)
    before = sha256_file(copy)
    attacks = ["DELETE FROM Pets", "UPDATE Pets SET weight = 0", "INSERT INTO Pets VALUES (1, 'x', 1, 1)",
               "DROP TABLE Pets", "CREATE TABLE x (y)", "PRAGMA user_version = 3", "VACUUM", "BEGIN IMMEDIATE",
               "WITH t AS (SELECT 1) INSERT INTO Pets SELECT * FROM Pets", "SELECT 1; DROP TABLE Pets",
               f"ATTACH '{tmp_path/'other.sqlite'}' AS o", "SELECT load_extension('libevil')"]
    outcomes = executor.execute([(copy, sql) for sql in attacks])
    assert [o.error_kind for o in outcomes] == ["rejected"] * len(attacks), [(o.error_kind, o.error) for o in outcomes]
    assert sha256_file(copy) == before
    assert not (tmp_path/"other.sqlite").exists()
    assert sqlite3.connect(copy).execute("SELECT count(*) FROM Pets").fetchone()[0] > 0


def test_missing_database_and_odd_text(dev, executor, tmp_path):
    outcomes = executor.execute([(tmp_path/"absent.sqlite", "SELECT 1"), (dev.database_path("pets_1"), ""),
                                 (dev.database_path("pets_1"), "-- only a comment"), (dev.database_path("pets_1"), "SELECT 1\x00")])
    assert [o.error_kind for o in outcomes] == ["runtime", "rejected", "rejected", "rejected"]


def test_verify_keeps_order_and_duplicates(dev, executor):
    questions = dev.usable[:60]
    items = []
    for q in questions:
        items += [(q.db_path, q.gold_sql, q.gold_sql), (q.db_path, q.gold_sql, "SELECT 1"), (q.db_path, q.gold_sql, q.gold_sql)]
    verdicts = executor.verify(items)
    assert len(verdicts) == len(items) and all(isinstance(v, Verdict) for v in verdicts)
    assert [v.exec_match for v in verdicts[0::3]] == [True] * 60
    assert verdicts[0::3] == verdicts[2::3]
    assert all(v.result_key is not None for v in verdicts)


def test_pool_survives_timeouts_in_a_batch(dev, executor):
    path = dev.database_path("concert_singer")
    runaway = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT max(x) FROM n"
    outcomes = executor.execute([(path, runaway), (path, "SELECT count(*) FROM singer"), (path, runaway + " ")])
    assert [o.error_kind for o in outcomes] == ["timeout", None, "timeout"]
    assert outcomes[1].rows == [(6,)]
    executor._debug("stall", 30)
    assert executor.execute([(path, "SELECT count(*) FROM stadium")])[0].rows == [(9,)]


def test_memory_blowup_is_a_memory_error(dev):
    path = dev.database_path("concert_singer")
    with SQLExecutor(timeout=20, workers=1, memory_limit_mb=256, max_rows=10**9) as small:
        big = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n LIMIT 30000000) SELECT x, x || 'padding' FROM n"
        outcome = small.execute([(path, big)])[0]
        assert outcome.error_kind == "memory", (outcome.error_kind, outcome.error)
        assert small.execute([(path, "SELECT count(*) FROM singer")])[0].rows == [(6,)]


def test_lenient_runs_both_queries_as_written(dev, executor):
    "The reference's lenient check: no DISTINCT removal, no `> =` joining, no `value` rule; official EX does all three."
    concert = dev.database_path("concert_singer")
    gold = "SELECT count(DISTINCT country) FROM singer"
    cases = {"SELECT count(country) FROM singer": (True, False),
             "SELECT count(DISTINCT country) FROM singer": (True, True),
             "SELECT count(DISTINCT country) FROM singer WHERE age > = 0": (True, False),
             "SELECT count(DISTINCT country) FROM singer WHERE age > value": (True, False)}
    verdicts = executor.verify([(concert, gold, candidate) for candidate in cases], lenient=True, replace_value=True)
    assert [(v.exec_match, v.lenient_match) for v in verdicts] == list(cases.values()), verdicts
    ordered = "SELECT DISTINCT country FROM singer ORDER BY country LIMIT 1"
    verdict, = executor.verify([(concert, ordered, "SELECT country FROM singer ORDER BY country LIMIT 1")], lenient=True)
    assert (verdict.exec_match, verdict.lenient_match) == (True, True)
    verdict, = executor.verify([(concert, "SELECT DISTINCT country FROM singer", "SELECT country FROM singer")], lenient=True)
    assert (verdict.exec_match, verdict.lenient_match) == (True, True)  # sets of rows: duplicates do not matter to lenient
    verdict, = executor.verify([(concert, "SELECT country FROM singer", "")], lenient=True)
    assert (verdict.exec_match, verdict.lenient_match) == (False, False)  # blank prediction: wrong


def test_value_rule_only_when_asked(dev, executor):
    "Train-side verification runs candidates as written; published predictions get the official `value` -> `1`."
    concert = dev.database_path("concert_singer")
    item = (concert, "SELECT count(*) FROM singer WHERE age > 1", "SELECT count(*) FROM singer WHERE age > value")
    as_written, replaced = executor.verify([item])[0], executor.verify([item], replace_value=True)[0]
    assert (as_written.exec_match, as_written.error_kind) == (False, "schema")
    assert (replaced.exec_match, replaced.error_kind) == (True, None)


def test_the_pool_sends_the_verdicts_one_session_computes(dev, executor):
    "Verdicts cross the worker pipe as `to_json` dicts and come back as the same `Verdict`s a session computes in this process."
    from reasonforge.sql_worker import verify_group
    from reasonforge.sandbox import WorkerSession
    questions = [q for q in dev.usable if q.db_id == "pets_1"][:6]
    golds = list(dict.fromkeys(q.gold_sql for q in questions))
    candidates = [q.gold_sql.replace("10", "3") for q in questions] + ["SELECT nickname FROM Pets"]
    pairs = [(golds.index(q.gold_sql), j) for j, q in enumerate(questions)] + [(0, len(questions))]
    here = verify_group(WorkerSession(), str(dev.database_path("pets_1")), golds, candidates, pairs, lenient=True)
    pooled = executor.verify([(dev.database_path("pets_1"), golds[g], candidates[c]) for g, c in pairs], lenient=True)
    assert all(type(v) is Verdict for v in pooled) and pooled == here
    assert {v.exec_match for v in pooled} == {True, False} and pooled[-1].error_kind == "schema"
    assert [Verdict.from_json({**v.to_json(), "sql": "SELECT 1"}) for v in pooled] == pooled  # keys of other records beside it are ignored
