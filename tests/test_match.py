"Properties of reasonforge.match that the notebook's lessons do not cover exhaustively."
import random
from collections import Counter
from itertools import permutations

import sqlparse

from reasonforge.match import lenient_results_equal, official_results_equal, remove_distinct


def brute_force_equal(gold, predicted, ordered):
    "The official definition with no pruning at all: try every column permutation."
    if not gold and not predicted: return True
    if len(gold) != len(predicted) or len(gold[0]) != len(predicted[0]): return False
    for order in permutations(range(len(gold[0]))):
        permuted = [tuple(row[i] for i in order) for row in predicted]
        if (permuted == list(gold)) if ordered else (Counter(permuted) == Counter(gold)): return True
    return False


def random_result(rng, rows, width):
    values = [None, 0, 1, 1.0, 2, "a", "b", "A"]
    return [tuple(rng.choice(values) for _ in range(width)) for _ in range(rows)]


def test_pruned_search_agrees_with_brute_force():
    rng = random.Random(0)
    checked = {True: 0, False: 0}
    for _ in range(3000):
        width, rows = rng.randint(1, 6), rng.randint(0, 5)
        gold = random_result(rng, rows, width)
        if rng.random() < 0.6:  # mostly near-misses: a permutation of gold, maybe shuffled, maybe with one value changed
            order = list(range(width)); rng.shuffle(order)
            predicted = [tuple(row[i] for i in order) for row in gold]
            if rng.random() < 0.5: rng.shuffle(predicted)
            if predicted and rng.random() < 0.4:
                row = list(predicted[0]); row[rng.randrange(width)] = rng.choice([None, 3, "z", 1.0]); predicted[0] = tuple(row)
        else: predicted = random_result(rng, rows, width)
        for ordered in (False, True):
            expected = brute_force_equal(gold, predicted, ordered)
            assert official_results_equal(gold, predicted, ordered) == expected, (gold, predicted, ordered)
            checked[expected] += 1
    assert checked[True] > 500 and checked[False] > 500


def test_remove_distinct_matches_sqlparse_full_parse():
    def official(sql): return "".join(t.value for t in sqlparse.parse(sql)[0].flatten() if t.value.lower() != "distinct")
    queries = ["SELECT DISTINCT a FROM t", "select count(distinct a), b from t GO select 1", "SELECT 'distinct' FROM t",
               'SELECT "distinct" FROM t', "SELECT a FROM t -- distinct\n", "SELECT a FROM t; SELECT DISTINCT b FROM u",
               "SELECT T1.distinct FROM t AS T1", "SELECT a FROM CATEGORY", "  SELECT DiStInCt a FROM t  "]
    for sql in queries: assert remove_distinct(sql) == official(sql), sql


def test_remove_distinct_fuzzed_spider_queries():
    "Our shortcuts agree with sqlparse's full parse on every Spider gold query with `;` or DISTINCT, and on 1500 with odd text spliced in."
    from reasonforge.data import find_spider_dir, load_spider
    def official(sql):
        statements = sqlparse.parse(sql)
        return "".join(t.value for t in statements[0].flatten() if t.value.lower() != "distinct") if statements else ""
    queries = [q.gold_sql for split in ("train", "dev") for q in load_spider(find_spider_dir(), split, check_schemas=False)]
    rng = random.Random(1)
    spliced = []
    for query in rng.sample(queries, 1500):
        insert = rng.choice([" DISTINCT ", " distinct", "DISTINCT(", ";", "; ", ";\t", "\n", "'", '"', "--", "/*", "`", "$",
                             "@", ":", "#", "GO ", "x.distinct ", "BEGIN ", " END;"])
        position = rng.randrange(len(query) + 1)
        spliced.append(query[:position] + insert + query[position:])
    interesting = [q for q in queries if ";" in q or "distinct" in q.lower()]
    assert [q for q in interesting + spliced if remove_distinct(q) != official(q)] == []


def test_lenient_null_sentinel_and_row_cut():
    "NULL is `<NULL>` (never equal to the text 'None' or '<null>'), and only the first 50,000 rows count."
    assert not lenient_results_equal([(None,)], [("None",)])
    assert not lenient_results_equal([(None,)], [("<NULL>",)])
    assert lenient_results_equal([(None, "A")], [("a ", None)])
    big = [(i,) for i in range(50_010)]
    assert lenient_results_equal(big, big[:50_000])
    assert not lenient_results_equal(big, big[1:])
