"Unit tests of reasonforge.harvest: dedup, pass@k, injection, weighting, caps, shuffling, sampling, files."
import json, random
from math import comb

import pytest

from reasonforge.core import ReasonForgeError
from reasonforge.harvest import (HarvestQuestion, HarvestSettings, build_training_rows, coverage, gold_sft_rows,
                                 harvest_question, normalize_sql, pass_at_k, write_training_set)
from reasonforge.core import read_jsonl

PROMPT = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]


def question(index, candidates, verdicts, gold="SELECT 1"):
    return HarvestQuestion(index, "db", f"q{index}", gold, PROMPT, candidates, verdicts)


@pytest.mark.parametrize("first,second", [
    ("SELECT a FROM t;", "select A from T"),
    ("SELECT T1.a FROM t AS T1 JOIN u AS T2 ON T1.id = T2.id", "SELECT x.a FROM t x JOIN u y ON x.id = y.id"),
    ('SELECT "t"."a" FROM "t"', "SELECT t.a FROM t"),
    ("SELECT count(*) AS n FROM t GROUP BY b ORDER BY n", "SELECT COUNT(*) AS total FROM t GROUP BY b ORDER BY total"),
    ("SELECT a\n  FROM   t\tWHERE b > 1", "SELECT a FROM t WHERE b > 1"),
])
def test_normalize_merges_spellings(first, second):
    assert normalize_sql(first) == normalize_sql(second)


@pytest.mark.parametrize("first,second", [
    ("SELECT a FROM t WHERE b = 'X'", "SELECT a FROM t WHERE b = 'x'"),
    ('SELECT a FROM t WHERE b = "X"', 'SELECT a FROM t WHERE b = "x"'),
    ("SELECT a FROM t ORDER BY a", "SELECT a FROM t ORDER BY a DESC"),
    ("SELECT a FROM t LIMIT 1", "SELECT a FROM t LIMIT 2"),
    ("SELECT a FROM t", "SELECT b FROM t"),
])
def test_normalize_keeps_different_queries_apart(first, second):
    assert normalize_sql(first) != normalize_sql(second)


def test_unparsable_sql_falls_back_to_folding():
    assert normalize_sql("SELEC  x\nFRM y ;") == "selec x frm y"
    assert normalize_sql("") == ""


def test_first_spelling_is_the_representative():
    harvest = harvest_question(question(0, ["select a from t;", "SELECT a FROM t", "SELECT b FROM t", "bad"], [True, True, True, False]))
    assert (harvest.correct, harvest.k) == (3, 4)
    assert harvest.distinct_correct == ["select a from t;", "SELECT b FROM t"]


def test_verdict_count_must_match():
    with pytest.raises(ReasonForgeError, match="2 candidates but 1 verdicts"):
        question(7, ["a", "b"], [True])


@pytest.mark.parametrize("n,c,k", [(10, 3, 1), (10, 3, 5), (20, 0, 5), (20, 20, 5), (200, 17, 50), (8, 7, 8)])
def test_pass_at_k_matches_the_binomial_formula(n, c, k):
    expected = 1.0 if n - c < k else 1 - comb(n - c, k) / comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_large_n_is_finite():
    assert 0 < pass_at_k(100_000, 5, 1000) < 1


def test_coverage_counts():
    harvests = [harvest_question(question(i, ["SELECT 1"] * 4, [j < i for j in range(4)])) for i in range(5)]
    stats = coverage(harvests)
    assert (stats["questions"], stats["solved"], stats["unsolved"]) == (5, 4, 1)
    assert stats["pass@1"] == pytest.approx(sum(min(i, 4) / 4 for i in range(5)) / 5)
    assert stats["correct_histogram"] == {"0": 1, "1": 1, "2": 1, "3": 1, "4": 1}


def counts(rows):
    result = {}
    for row in rows: result[(row["question_index"], row["source"])] = result.get((row["question_index"], row["source"]), 0) + 1
    return result


def test_gold_injection_copies_and_provenance():
    harvests = [harvest_question(question(0, ["x"] * 8, [False] * 8, gold="SELECT gold FROM t"))]
    rows, stats = build_training_rows(harvests)
    assert counts(rows) == {(0, "gold"): 8}  # k copies by default, as the reference
    assert {row["sql"] for row in rows} == {"SELECT gold FROM t"}
    assert {row["messages"][-1]["content"] for row in rows} == {"```sql\nSELECT gold FROM t\n```"}
    assert rows[0]["messages"][:2] == PROMPT and rows[0]["weight"] == 8
    assert counts(build_training_rows(harvests, HarvestSettings(gold_copies=3))[0]) == {(0, "gold"): 3}
    assert build_training_rows(harvests, HarvestSettings(gold_copies=0))[0] == []
    assert stats["gold_rows"] == 8 and stats["unsolved"] == 1


def test_difficulty_weighting_and_cap():
    harvests = [harvest_question(question(0, ["SELECT a FROM t"] + ["x"] * 7, [True] + [False] * 7)),
                harvest_question(question(1, ["SELECT b FROM t"] * 8, [True] * 8))]
    assert counts(build_training_rows(harvests, HarvestSettings(difficulty_weighting=True))[0]) == {(0, "self"): 7, (1, "self"): 1}
    assert counts(build_training_rows(harvests, HarvestSettings(difficulty_weighting=True, min_copies=0))[0]) == {(0, "self"): 7}
    rows, stats = build_training_rows(harvests, HarvestSettings(difficulty_weighting=True, max_rows_per_question=4))
    assert counts(rows) == {(0, "self"): 4, (1, "self"): 1}
    assert (stats["self_rows_before_cap"], stats["self_rows"], stats["questions_capped"]) == (8, 5, 1)


def test_distinct_cap_keeps_the_first():
    harvests = [harvest_question(question(0, [f"SELECT {c} FROM t" for c in "abcd"], [True] * 4))]
    rows, stats = build_training_rows(harvests, HarvestSettings(max_distinct_per_question=2))
    assert sorted(row["sql"] for row in rows) == ["SELECT a FROM t", "SELECT b FROM t"]
    assert (stats["distinct_correct"], stats["distinct_kept"]) == (4, 2)


def test_rows_are_shuffled_reproducibly_and_never_silently_truncated():
    harvests = [harvest_question(question(i, ["SELECT 1"] * 4, [i % 2 == 0] * 4)) for i in range(100)]
    rows, stats = build_training_rows(harvests)
    assert len(rows) == stats["rows"] == 50 + 50 * 4
    first_tenth = {row["question_index"] for row in rows[:25]}
    assert any(i % 2 for i in first_tenth) and any(i % 2 == 0 for i in first_tenth)  # gold is not appended last
    assert rows == build_training_rows(harvests)[0]
    capped, capped_stats = build_training_rows(harvests, HarvestSettings(max_rows=60))
    assert len(capped) == 60 and capped_stats["sampled"] and capped_stats["rows_before_sampling"] == 250
    assert capped_stats["questions_in_rows"] > 30  # a uniform sample, not the first 60 rows in question order
    uncapped, uncapped_stats = build_training_rows(harvests, HarvestSettings(max_rows=1000))
    assert len(uncapped) == 250 and not uncapped_stats["sampled"]


def test_files_round_trip(tmp_path):
    rows, stats = build_training_rows([harvest_question(question(0, ["SELECT 1"], [True]))])
    path = write_training_set(rows, stats, tmp_path/"set.jsonl")
    assert read_jsonl(path) == rows
    saved = json.loads((tmp_path/"set.stats.json").read_text())
    assert saved["rows"] == 1 and len(saved["sha256"]) == 64
    with pytest.raises(ReasonForgeError, match="missing.jsonl"): read_jsonl(tmp_path/"missing.jsonl")
    (tmp_path/"broken.jsonl").write_text('{"messages": []}\nnot json\n')
    with pytest.raises(ReasonForgeError, match="broken.jsonl line 2"): read_jsonl(tmp_path/"broken.jsonl")


def test_gold_sft_rows():
    class Q:
        def __init__(self, index): self.index, self.db_id, self.gold_sql = index, "db", f"SELECT {index} "
    rows = gold_sft_rows([Q(i) for i in range(5)], lambda q: PROMPT, seed=None)
    assert [row["question_index"] for row in rows] == list(range(5))
    assert rows[2]["messages"] == [*PROMPT, {"role": "assistant", "content": "```sql\nSELECT 2\n```"}] and rows[2]["sql"] == "SELECT 2"
    assert {row["source"] for row in rows} == {"gold"}
