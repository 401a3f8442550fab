"Spider's official exact-set-match: perturbed cases labelled by reading test-suite-sql-eval's evaluation.py (every dev gold against itself is a lesson of 06a_exact_match)."
import pytest

from reasonforge.core import ReasonForgeError
from reasonforge.data import SpiderDataset, TableSchema, find_spider_dir
from reasonforge.exact_match import EMPTY_PARSE, PARTIAL_COMPONENTS, database_schema, exact_match, foreign_key_map, partial_score_summary


@pytest.fixture(scope="module")
def dev(): return SpiderDataset.load(find_spider_dir(), "dev", check_schemas=False)

@pytest.fixture(scope="module")
def singers(dev):
    "concert_singer: singer_in_concert.singer_id -> singer.singer_id, singer_in_concert.concert_id -> concert.concert_id, ..."
    return database_schema(dev.database_path("concert_singer")), foreign_key_map(dev.tables["concert_singer"])

def em(gold, predicted, singers): return exact_match(gold, predicted, *singers)


# ---- exact match: (gold, prediction, expected EM), each label read off the official code ----

@pytest.mark.parametrize("gold, predicted, expected", [
    # identical
    ("SELECT name FROM singer WHERE age > 20", "SELECT name FROM singer WHERE age > 20", True),
    # select items are compared as a multiset (eval_sel: `in` + remove)
    ("SELECT name, country, age FROM singer", "SELECT age, name, country FROM singer", True),
    # WHERE conditions too (eval_where), and connectors as a set (eval_and_or)
    ("SELECT name FROM singer WHERE age > 20 AND country = 'France'", "SELECT name FROM singer WHERE country = 'France' AND age > 20", True),
    # values are dropped (DISABLE_VALUE: rebuild_cond_unit_val sets non-query values to None)
    ("SELECT name FROM singer WHERE age > 20 AND country = 'France'", "SELECT name FROM singer WHERE age > 99 AND country = 'USA'", True),
    # the operator is not: > against < is a different condition
    ("SELECT name FROM singer WHERE age > 20", "SELECT name FROM singer WHERE age < 20", False),
    # DISTINCT is dropped, on SELECT and inside count (DISABLE_DISTINCT in rebuild_select_col / rebuild_col_unit_col)
    ("SELECT DISTINCT country FROM singer", "SELECT country FROM singer", True),
    ("SELECT count(DISTINCT country) FROM singer", "SELECT count(country) FROM singer", True),
    # aliases resolve to tables: T1.name and name are both __singer.name__
    ("SELECT T1.name FROM singer AS T1 WHERE T1.age > 20", "SELECT name FROM singer WHERE age > 20", True),
    # a foreign key and the key it points to become one id (kmap); join conditions lose their right-hand column
    ("SELECT T1.singer_id FROM singer_in_concert AS T1 JOIN singer AS T2 ON T1.singer_id = T2.singer_id",
     "SELECT T2.singer_id FROM singer_in_concert AS T1 JOIN singer AS T2 ON T2.singer_id = T1.singer_id", True),
    # ...but only for columns of the FROM tables (build_valid_col_units): here singer_in_concert is not in FROM
    ("SELECT singer.singer_id FROM singer", "SELECT singer_in_concert.singer_id FROM singer", False),
    # the FROM tables are compared sorted: the same tables joined the other way round match
    ("SELECT T2.name FROM singer_in_concert AS T1 JOIN singer AS T2 ON T1.singer_id = T2.singer_id",
     "SELECT T1.name FROM singer AS T1 JOIN singer_in_concert AS T2 ON T1.singer_id = T2.singer_id", True),
    # an extra table in FROM: every component agrees, the final table_units comparison does not
    ("SELECT T1.name FROM singer AS T1 JOIN singer_in_concert AS T2 ON T1.singer_id = T2.singer_id",
     "SELECT T1.name FROM singer AS T1 JOIN singer_in_concert AS T2 ON T1.singer_id = T2.singer_id JOIN concert AS T3 ON T2.concert_id = T3.concert_id", False),
    # ORDER direction differs: order and keywords fail
    ("SELECT name FROM singer ORDER BY age DESC", "SELECT name FROM singer ORDER BY age ASC", False),
    # no direction means asc
    ("SELECT name FROM singer ORDER BY age", "SELECT name FROM singer ORDER BY age ASC", True),
    # LIMIT: only its presence counts (the official parse stores 1 for any limit)
    ("SELECT name FROM singer ORDER BY age LIMIT 1", "SELECT name FROM singer ORDER BY age LIMIT 3", True),
    ("SELECT name FROM singer ORDER BY age LIMIT 1", "SELECT name FROM singer ORDER BY age", False),
    # nested: set operations compared by a recursive exact match (eval_IUEN), values dropped there too
    ("SELECT name FROM singer WHERE age > 20 INTERSECT SELECT name FROM singer WHERE country = 'France'",
     "SELECT name FROM singer WHERE age > 30 INTERSECT SELECT name FROM singer WHERE country = 'USA'", True),
    ("SELECT name FROM singer WHERE age > 20 INTERSECT SELECT name FROM singer WHERE country = 'France'",
     "SELECT name FROM singer WHERE age > 20 UNION SELECT name FROM singer WHERE country = 'France'", False),
    ("SELECT name FROM singer WHERE age > 20 EXCEPT SELECT name FROM singer WHERE country = 'France'",
     "SELECT name FROM singer WHERE age > 20 EXCEPT SELECT name FROM singer WHERE age = 30", False),
    # a nested query in WHERE is a value compared whole: its own values are dropped too
    ("SELECT name FROM singer WHERE age > (SELECT avg(age) FROM singer WHERE country = 'France')",
     "SELECT name FROM singer WHERE age > (SELECT avg(age) FROM singer WHERE country = 'USA')", True),
    # GROUP BY compared by column name without table (eval_group), but `group` needs the same ids: stadium.name is not singer.name
    ("SELECT count(*) FROM singer AS T1 JOIN stadium AS T2 GROUP BY T1.name", "SELECT count(*) FROM singer AS T1 JOIN stadium AS T2 GROUP BY T2.name", False),
    # HAVING is part of `group`: values dropped, the aggregate kept
    ("SELECT country FROM singer GROUP BY country HAVING count(*) > 1", "SELECT country FROM singer GROUP BY country HAVING count(*) > 5", True),
    ("SELECT country FROM singer GROUP BY country HAVING count(*) > 1", "SELECT country FROM singer GROUP BY country HAVING max(age) > 1", False),
    # LIKE against = : where differs (operator), keywords differ (like)
    ("SELECT name FROM singer WHERE name LIKE '%a%'", "SELECT name FROM singer WHERE name = 'a'", False),
    # case does not matter: tokens are lower-cased, schema names too
    ("SELECT name FROM singer", "select NAME from SINGER", True),
    # nltk splits `<` and `>` off a word but never `=`: `age=20` is one token, a column no table has, so the prediction
    # does not parse and is compared as the empty query; `age>=20` leaves `=20` as the value, which does not parse either
    ("SELECT name FROM singer WHERE age = 20", "SELECT name FROM singer WHERE age=20", False),
    ("SELECT name FROM singer WHERE age > 20", "SELECT name FROM singer WHERE age>20", True),
    ("SELECT name FROM singer WHERE age >= 20", "SELECT name FROM singer WHERE age>=20", False),
    # count(*) against count(column): different column units, although the rows are the same
    ("SELECT count(*) FROM singer", "SELECT count(singer_id) FROM singer", False),
    # `! =`, `> =`, `< =` (the official gold files hold them): the official tokenizer joins the two tokens
    ('SELECT name FROM singer WHERE country ! =  "France"', "SELECT name FROM singer WHERE country != 'France'", True),
    ("SELECT name FROM singer WHERE age > = 20", "SELECT name FROM singer WHERE age >= 20", True),
    ("SELECT name FROM singer WHERE age < = 20", "SELECT name FROM singer WHERE age <= 20", True),
    ("SELECT name FROM singer WHERE age < = 20", "SELECT name FROM singer WHERE age >= 20", False),
])
def test_exact_match_labels(gold, predicted, expected, singers):
    assert em(gold, predicted, singers).match is expected


def test_without_the_foreign_key_map_the_key_columns_differ(singers):
    gold = "SELECT T1.singer_id FROM singer_in_concert AS T1 JOIN singer AS T2 ON T1.singer_id = T2.singer_id"
    assert exact_match(gold, gold.replace("SELECT T1", "SELECT T2"), singers[0], {}).match is False


def test_a_prediction_that_does_not_parse_is_the_empty_query(singers):
    verdict = em("SELECT name FROM singer WHERE age > 20", "SELECT name FROM nowhere", singers)
    assert (verdict.match, verdict.prediction_parsed) == (False, False) and "prediction" in verdict.error
    # empty query: nothing predicted, the gold's items all missing
    assert verdict.partial["select"] == {"acc": 0, "rec": 0, "f1": 0, "label_total": 1, "pred_total": 0}
    assert verdict.partial["where"] == {"acc": 0, "rec": 0, "f1": 0, "label_total": 1, "pred_total": 0}
    assert verdict.partial["order"]["f1"] == 1  # 0 against 0: get_scores gives 1
    assert em("SELECT name FROM singer", "", singers).prediction_parsed is False
    assert EMPTY_PARSE["select"] == [False, []]


def test_a_prediction_that_would_crash_the_official_script_counts_as_unparsed(singers):
    # no AND between two conditions: the official parser reads on, then rebuild_sql_val unpacks the stray 'and' as a
    # condition and the whole official run stops; we count such a prediction as not parsed instead
    verdict = em("SELECT name FROM singer WHERE age > 20", "SELECT name FROM singer WHERE age > 1 age < 3 AND age > 2", singers)
    assert (verdict.match, verdict.prediction_parsed) == (False, False) and "crash" in verdict.error
    # two conditions without a connector but nothing to crash on: the official scores what it parsed (the second
    # condition sits where a connector belongs, so only the first counts as a condition)
    verdict = em("SELECT name FROM singer WHERE age > 20", "SELECT name FROM singer WHERE age > 1 age < 3", singers)
    assert verdict.prediction_parsed and verdict.partial["where"]["pred_total"] == 1 and verdict.partial["and/or"]["f1"] == 0


def test_a_gold_query_that_does_not_parse_is_reported_not_scored(singers):
    verdict = em("SELECT nonsense FROM singer", "SELECT name FROM singer", singers)
    assert verdict.match is None and verdict.partial == {} and verdict.error.startswith("gold:")


# ---- partial counts, worked out by hand ----

def test_partial_counts_on_group_and_having(singers):
    gold = "SELECT name, count(*) FROM singer GROUP BY country HAVING count(*) > 1"
    scores = em(gold, "SELECT name, avg(age) FROM singer GROUP BY country", singers).partial
    totals = {component: (s["label_total"], s["pred_total"], s["f1"]) for component, s in scores.items()}
    assert totals == {
        "select": (2, 2, 0),            # (0, name) matches, (3, *) against (5, age) does not
        "select(no AGG)": (2, 2, 0),    # name matches, * against age does not
        "where": (0, 0, 1), "where(no OP)": (0, 0, 1),
        "group(no Having)": (1, 1, 1),  # country = country
        "group": (1, 1, 0),             # HAVING differs
        "order": (0, 0, 1),
        "and/or": (1, 1, 1),            # two empty connector sets are equal: the official returns 1, 1, 1
        "IUEN": (0, 0, 1),
        "keywords": (2, 1, 0),          # {group, having} against {group}
    }
    assert list(scores) == list(PARTIAL_COMPONENTS)


def test_and_or_totals_come_back_swapped(singers):
    # eval_and_or returns (len(pred set), len(label set), 0) where the callers read (label_total, pred_total, count)
    gold = "SELECT name FROM singer WHERE age > 1 AND age < 5 OR country = 'x'"
    scores = em(gold, "SELECT name FROM singer WHERE age > 1", singers).partial["and/or"]
    assert (scores["label_total"], scores["pred_total"], scores["f1"]) == (0, 2, 0)


def test_where_without_operator_and_keywords(singers):
    scores = em("SELECT name FROM singer WHERE name LIKE '%a%'", "SELECT name FROM singer WHERE name = 'a'", singers).partial
    assert scores["where"]["f1"] == 0 and scores["where(no OP)"]["f1"] == 1
    assert (scores["keywords"]["label_total"], scores["keywords"]["pred_total"]) == (2, 1)  # {where, like} against {where}


def test_nested_set_operation_counts(singers):
    gold = "SELECT name FROM singer INTERSECT SELECT name FROM singer WHERE age > 1"
    scores = em(gold, "SELECT name FROM singer", singers).partial["IUEN"]
    assert (scores["label_total"], scores["pred_total"], scores["f1"]) == (1, 0, 0)


# ---- the foreign-key map and the schema reader ----


def test_foreign_key_groups_join_the_first_group_found():
    columns = [(-1, "*")] + [(0, f"C{i}") for i in range(1, 5)]
    schema = TableSchema("x", ["T"], columns, ["text"] * 5, [], [(3, 1), (4, 2), (4, 3)])
    # (3,1) -> {1,3}; (4,2) -> {2,4}; (4,3) joins the first group holding 4 or 3: {1,3,4}. Group {2,4} is written last: 4 -> 2
    assert foreign_key_map(schema) == {"__t.c1__": "__t.c1__", "__t.c3__": "__t.c1__", "__t.c4__": "__t.c2__", "__t.c2__": "__t.c2__"}


def test_database_schema_is_read_once_and_missing_files_are_named(dev, tmp_path):
    path = dev.database_path("concert_singer")
    assert database_schema(path) is database_schema(path)
    assert database_schema(path).tables["singer"][:2] == ["singer_id", "name"]
    with pytest.raises(ReasonForgeError, match="nowhere.sqlite"): database_schema(tmp_path/"nowhere.sqlite")


# ---- the official table ----

def test_summary_accumulates_like_evaluate(singers):
    gold = "SELECT name FROM singer WHERE age > 20"
    results = [em(gold, gold, singers), em(gold, "SELECT name FROM nowhere", singers), em("SELECT nonsense FROM singer", gold, singers)]
    table = partial_score_summary(results, ["easy", "easy", "medium"])
    assert table["all"]["count"] == 2 and table["easy"]["exact"] == 0.5 and table["medium"]["count"] == 0  # match None: left out
    select = table["easy"]["partial"]["select"]
    # acc only where the prediction has items (1 of 2), rec where the gold has (2 of 2): acc 1, rec 0.5
    assert (select["acc"], select["rec"]) == (1.0, 0.5) and select["f1"] == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert table["easy"]["partial"]["IUEN"] == {"acc": 0, "rec": 0, "f1": 1}  # nobody has one: both 0, f1 1 (official quirk)
    assert table["hard"] == {"count": 0, "exact": 0.0, "partial": {c: {"acc": 0.0, "rec": 0.0, "f1": 0.0} for c in PARTIAL_COMPONENTS}}
    with pytest.raises(ValueError): partial_score_summary(results, ["easy"])


def test_an_unknown_level_counts_in_all_only(singers):
    gold = "SELECT name FROM singer WHERE age > 20"
    table = partial_score_summary([em(gold, gold, singers), em(gold, gold, singers)], ["easy", "unknown"])
    assert table["all"]["count"] == 2 and table["easy"]["count"] == 1 and "unknown" not in table


@pytest.mark.parametrize("gold", ["", "   ", "SELECT", "SELECT name FROM", 'SELECT name FROM singer WHERE name = "open', "(((",
                                  "SELECT name FROM singer WHERE age ! ! = 1", "\x00", "é 中文 🙂", None, 7])
def test_an_unreadable_gold_query_is_reported_never_raised(gold, singers):
    verdict = em(gold, "SELECT name FROM singer", singers)
    assert verdict.match is None and verdict.error.startswith("gold:")
