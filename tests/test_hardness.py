"Spider hardness: each counting quirk on hand-made queries and parses (fidelity on every Spider question is a lesson of 02_hardness)."
import pytest

from reasonforge.official_parser import official_parse
from reasonforge.hardness import (UNKNOWN_HARDNESS, counts_from_parse, gold_hardness, hardness_counts, hardness_from_parse,
                                  hardness_level, query_hardness)


def counts(component1, component2, others): return {"component1": component1, "component2": component2, "others": others}


# ---- the level thresholds ----

@pytest.mark.parametrize("component1, component2, others, level", [
    (0, 0, 0, "easy"), (1, 0, 0, "easy"), (2, 0, 0, "medium"), (1, 0, 2, "medium"), (2, 0, 1, "medium"),
    (0, 1, 0, "hard"), (1, 1, 0, "hard"), (3, 0, 2, "hard"), (2, 0, 3, "hard"), (0, 0, 4, "hard"),
    (2, 0, 2, "extra"), (4, 0, 0, "extra"), (1, 1, 1, "extra"), (0, 2, 0, "extra"), (3, 0, 3, "extra"),
])
def test_level_thresholds(component1, component2, others, level):
    assert hardness_level(component1, component2, others) == level


# ---- quirks on SQL text (expected counts worked out by hand) ----

@pytest.mark.parametrize("sql, expected", [
    ("SELECT count(*) FROM singer", counts(0, 0, 0)),
    # NOT in WHERE counts as an aggregation: count(*) + NOT = 2 > 1
    ("SELECT count(*) FROM s WHERE id NOT IN (SELECT id FROM c)", counts(1, 1, 1)),
    ("SELECT count(*) FROM s WHERE id IN (SELECT id FROM c)", counts(1, 1, 0)),
    # aggregates on the left of a WHERE condition are not counted
    ("SELECT name FROM s WHERE count(a) > 1", counts(1, 0, 0)),
    # NOT LIKE is a LIKE (component1) and a NOT (aggregation)
    ("SELECT max(a) FROM s WHERE name NOT LIKE '%x%'", counts(2, 0, 1)),
    ("SELECT max(a) FROM s WHERE name LIKE '%x%'", counts(2, 0, 0)),
    # WHERE with two conditions: len(where) == 3 > 1; 'or' adds to component1
    ("SELECT a FROM s WHERE b = 1 AND c = 2", counts(1, 0, 1)),
    ("SELECT a FROM s WHERE b = 1 OR c = 2", counts(2, 0, 1)),
    ("SELECT a FROM s WHERE b BETWEEN 1 AND 2", counts(1, 0, 0)),  # BETWEEN's AND is no connector
    # HAVING: connectors count as aggregations, its aggregate calls do not; HAVING itself is no component
    ("SELECT a FROM s GROUP BY a HAVING count(*) > 1", counts(1, 0, 0)),
    ("SELECT a FROM s GROUP BY a HAVING count(*) > 1 AND sum(b) > 2", counts(1, 0, 0)),
    ("SELECT a, count(*) FROM s GROUP BY a HAVING count(*) > 1 AND sum(b) > 2", counts(1, 0, 2)),
    ("SELECT a, count(*) FROM s GROUP BY a HAVING count(*) > 1", counts(1, 0, 1)),
    ("SELECT a FROM s GROUP BY a HAVING count(*) > 1 OR sum(b) LIKE '1%'", counts(3, 0, 0)),
    ("SELECT a FROM s GROUP BY a HAVING max(b) > (SELECT avg(b) FROM s)", counts(1, 1, 0)),
    # ORDER BY aggregates count; GROUP BY with two columns
    ("SELECT a FROM s GROUP BY a, b ORDER BY count(*) DESC LIMIT 1", counts(3, 0, 1)),
    ("SELECT max(a) FROM s ORDER BY count(*)", counts(1, 0, 1)),
    # joins: tables minus one; a subquery in FROM is a table unit, never nested
    ("SELECT T1.a FROM x AS T1 JOIN y AS T2 ON T1.id = T2.id JOIN z AS T3 ON T2.k = T3.k", counts(2, 0, 0)),
    ("SELECT count(*) FROM (SELECT a FROM s WHERE b = 1)", counts(0, 0, 0)),
    ("SELECT count(*) FROM (SELECT a FROM s) JOIN t ON t.a = 1", counts(1, 0, 0)),
    # 'or' and LIKE in join conditions count; a subquery value in a join condition is nested
    ("SELECT T1.a FROM x AS T1 JOIN y AS T2 ON T1.b LIKE 'q' OR T1.id = T2.id", counts(3, 0, 0)),
    ("SELECT T1.a FROM x AS T1 JOIN y AS T2 ON T1.b = (SELECT max(b) FROM y)", counts(1, 1, 0)),
    # set operations: one at the top level, chained ones too; inside a subquery they belong to it
    ("SELECT a FROM s UNION SELECT a FROM t", counts(0, 1, 0)),
    ("SELECT a FROM s INTERSECT SELECT a FROM t EXCEPT SELECT a FROM u", counts(0, 1, 0)),
    ("SELECT a FROM s WHERE b = 1 EXCEPT SELECT a FROM t ORDER BY a LIMIT 3", counts(1, 1, 0)),  # ORDER/LIMIT: right branch
    ("SELECT a FROM s WHERE a IN (SELECT a FROM t UNION SELECT a FROM u)", counts(1, 1, 0)),
    ("SELECT a FROM s WHERE b BETWEEN (SELECT min(b) FROM t) AND (SELECT max(b) FROM t)", counts(1, 2, 0)),
    # the official parser skips `or ...` after a column-valued comparison, up to the next `and`
    ("SELECT a FROM s WHERE s.b < s.c OR s.b > s.d", counts(1, 0, 0)),
    ("SELECT a FROM s WHERE s.b < 1 OR s.b > s.d", counts(2, 0, 1)),
    ("SELECT a FROM s WHERE s.b < s.c OR s.b LIKE 'x' AND s.e = 2", counts(1, 0, 1)),
    # Spider's double-quoted strings are strings, not columns: no skipping
    ('SELECT a FROM s WHERE b = "x" OR c = "y"', counts(2, 0, 1)),
])
def test_quirks_on_sql(sql, expected):
    assert hardness_counts(sql) == expected
    assert counts_from_parse(official_parse(sql)) == expected  # the replica of the official parser agrees


def test_levels_flip_on_quirks():
    assert query_hardness("SELECT count(*) FROM s WHERE id IN (SELECT id FROM c)") == "hard"
    assert query_hardness("SELECT count(*) FROM s WHERE id NOT IN (SELECT id FROM c)") == "extra"
    skipped = "SELECT T1.c FROM x AS T1 JOIN y AS T2 ON T1.id = T2.id WHERE T2.m < T2.j OR T2.m > T2.o"
    assert query_hardness(skipped) == "medium"
    assert query_hardness(skipped.replace("T2.j", "3").replace("T2.o", "9")) == "hard"


# ---- quirks on hand-built official parses ----

def parse(**parts):
    tree = {"select": (False, [(0, (0, (0, 1, False), None))]), "from": {"table_units": [("table_unit", 0)], "conds": []},
            "where": [], "groupBy": [], "having": [], "orderBy": [], "limit": None,
            "intersect": None, "except": None, "union": None}
    tree.update(parts)
    return tree

def condition(negated=False, operator=2, value=1.0, agg=0): return (negated, operator, (0, (agg, 1, False), None), value, None)


def test_parse_counts():
    assert counts_from_parse(parse()) == counts(0, 0, 0)
    assert counts_from_parse(parse(where=[condition(negated=True)])) == counts(1, 0, 0)
    two_aggregations = parse(select=(False, [(3, (0, (0, 0, False), None))]), where=[condition(negated=True, operator=8, value=parse())])
    assert counts_from_parse(two_aggregations) == counts(1, 1, 1)
    assert counts_from_parse(parse(where=[condition(agg=3), "and", condition(agg=3)])) == counts(1, 0, 1)
    having = parse(groupBy=[(0, 1, False)], having=[condition(agg=3), "or", condition(agg=4)])
    assert counts_from_parse(having) == counts(2, 0, 0)  # 'or' in HAVING: component1 +1, one aggregation
    having_select = parse(select=(False, [(3, (0, (0, 0, False), None))]), groupBy=[(0, 1, False)],
                          having=[condition(), "and", condition()])
    assert counts_from_parse(having_select) == counts(1, 0, 1)  # count(*) + 'and' = 2 aggregations
    likes = parse(where=[condition(operator=9, value='"%a%"'), "or", condition(negated=True, operator=9, value='"b%"')])
    assert counts_from_parse(likes) == counts(4, 0, 1)
    joins = parse(**{"from": {"table_units": [("table_unit", 0), ("sql", parse()), ("table_unit", 2)],
                              "conds": [condition(), "and", condition(operator=9)]}})
    assert counts_from_parse(joins) == counts(3, 0, 0)
    order = parse(orderBy=("desc", [(0, (3, 0, False), None), (1, (4, 1, False), (5, 2, False))]), limit=1)
    assert counts_from_parse(order) == counts(2, 0, 1)
    chained = parse(union=parse(union=parse()))
    assert counts_from_parse(chained) == counts(0, 1, 0)
    assert hardness_from_parse(chained) == "hard"
    with pytest.raises(ValueError, match="not an official Spider parse"): hardness_from_parse({"select": (False, [])})


# ---- unparseable input ----

@pytest.mark.parametrize("sql, message", [
    ("SELEC a FROM t", "SELEC a FROM t"), ("", "cannot parse"), ("SELECT a FROM t WHERE", "cannot parse"),
    ("DROP TABLE t", "not a SELECT"), ("hello world", "not a SELECT"), (None, "not SQL text"),
    ("SELECT a FROM t WHERE b NOT IN", "IndexError"), ("SELECT a FROM t WHERE b ! ! = 1", "cannot parse"),
])
def test_unparseable_raises_value_error(sql, message):
    with pytest.raises(ValueError, match=message): query_hardness(sql)


def test_official_replica_refuses_what_the_official_parser_cannot_read():
    for sql in ["SELECT a FROM t WHERE (a = 1 OR b = 2)", "SELECT a FROM t WHERE b IN (1, 2)", "SELECT a FROM t WHERE x = 'it''s'"]:
        with pytest.raises(ValueError): official_parse(sql)


# ---- spaced operators and gold lines nobody checked ----

@pytest.mark.parametrize("spaced, joined", [
    ('SELECT Code FROM country WHERE GovernmentForm ! =  "Republic"', 'SELECT Code FROM country WHERE GovernmentForm != "Republic"'),
    ("SELECT a FROM t WHERE b > = 1 AND c < =  2", "SELECT a FROM t WHERE b >= 1 AND c <= 2"),
    ("SELECT a FROM t WHERE b >\t= 1 OR c ! = 2 OR d LIKE 'x'", "SELECT a FROM t WHERE b >= 1 OR c != 2 OR d LIKE 'x'"),
    ('SELECT a FROM t WHERE b ! = 1 EXCEPT SELECT a FROM u WHERE c > = 2', 'SELECT a FROM t WHERE b != 1 EXCEPT SELECT a FROM u WHERE c >= 2'),
])
def test_spaced_operators_read_as_one(spaced, joined):
    "`! =`, `> =`, `< =` (any spaces inside) count exactly like the joined operator, as the official tokenizer reads them."
    assert hardness_counts(spaced) == hardness_counts(joined)
    assert query_hardness(spaced) == query_hardness(joined)


@pytest.mark.parametrize("sql", [None, "", "   ", "SELEC a", "DROP TABLE t", "SELECT a FROM t WHERE b NOT IN", "SELECT ((((a",
                                 "\x00", "SELECT '", "SELECT a FROM t WHERE b = \"", "(" * 5000 + "SELECT 1", ["SELECT 1"], 42])
def test_gold_hardness_never_raises(sql):
    level, why = gold_hardness(sql)
    assert level == UNKNOWN_HARDNESS and why


def test_gold_hardness_of_good_queries():
    assert gold_hardness("SELECT count(*) FROM singer") == ("easy", None)
    assert gold_hardness('SELECT a FROM t WHERE b ! = "x" EXCEPT SELECT a FROM u') == ("hard", None)
