"Error taxonomy: hand-made wrong predictions for every category, perturbed dev gold queries, tables, flips and the error figure."
import json
from dataclasses import replace

import pandas as pd
import pytest

from reasonforge.core import ReasonForgeError
from reasonforge.data import find_spider_dir, load_tables
from reasonforge.evaluate import DevPrediction
from reasonforge.errors import (ERROR_CATEGORIES, EXECUTION_ERROR_CATEGORIES, REFERENCE_CATEGORIES, TO_REFERENCE_CATEGORY,
                                classify_examples, error_categories, error_examples, error_table, flips, plot_error_categories,
                                reference_category, wrong_answer_table)
from reasonforge.query_diff import structural_diff
from reasonforge.sql_shape import query_shape

SPIDER = find_spider_dir()
SCHEMAS = load_tables(SPIDER/"tables.json")
DEV = json.loads((SPIDER/"dev.json").read_text())


# Hand-made (gold, prediction) pairs, one or more per category, on real schemas: (db_id, gold, prediction, error kind, categories).
HAND_MADE = [
    # execution errors: the executor's kind decides; the structure adds what it can read
    ("concert_singer", "SELECT count(*) FROM singer", "SELECT count(* FROM singer", "syntax", ["execution_syntax"]),
    ("concert_singer", "SELECT name FROM singer", "SELECT nam FROM singer", "schema", ["execution_unknown_name", "wrong_select_columns"]),
    ("car_1", "SELECT count(*) FROM cars_data", "SELECT count(*) FROM cars_data AS a, cars_data AS b, cars_data AS c", "timeout",
     ["execution_timeout", "extra_join"]),
    ("pets_1", "SELECT count(*) FROM pets", "DELETE FROM pets", "rejected", ["execution_rejected"]),
    ("pets_1", "SELECT count(*) FROM pets", "SELECT count(*) FROM pets", "too_many_rows", ["execution_other"]),
    ("pets_1", "SELECT count(*) FROM pets", "SELECT count(*) FROM pets", "memory", ["execution_other"]),
    ("pets_1", "SELECT count(*) FROM pets", "SELECT count(*) FROM pets", "runtime", ["execution_other"]),
    # ran, but another structure
    ("pets_1", "SELECT count(*) FROM pets", "SELEC count(*) FROM pets", None, ["unparsed"]),
    ("pets_1", "SELECT count(*) FROM pets", "SELECT count(*) FROM student", None, ["wrong_table"]),
    ("pets_1", "SELECT count(*) FROM student AS T1 JOIN has_pet AS T2 ON T1.stuid = T2.stuid WHERE T1.age > 20",
     "SELECT count(*) FROM student WHERE age > 20", None, ["missing_join"]),
    ("pets_1", "SELECT count(*) FROM student WHERE age > 20",
     "SELECT count(*) FROM student AS T1 JOIN has_pet AS T2 ON T1.stuid = T2.stuid WHERE T1.age > 20", None, ["extra_join"]),
    ("car_1", "SELECT T1.Model FROM CAR_NAMES AS T1 JOIN CARS_DATA AS T2 ON T1.MakeId = T2.Id",
     "SELECT T1.Model FROM CAR_NAMES AS T1 JOIN CARS_DATA AS T2 ON T1.MakeId = T2.Horsepower", None, ["wrong_join_condition"]),
    ("car_1", "SELECT T1.Model FROM CAR_NAMES AS T1 JOIN CARS_DATA AS T2 ON T1.MakeId = T2.Id",
     "SELECT T1.Model FROM CAR_NAMES AS T1 LEFT JOIN CARS_DATA AS T2 ON T1.MakeId = T2.Id", None, ["wrong_join_condition"]),
    ("concert_singer", "SELECT name, country FROM singer", "SELECT name, age FROM singer", None, ["wrong_select_columns"]),
    ("concert_singer", "SELECT max(age) FROM singer", "SELECT age FROM singer", None, ["missing_aggregation"]),
    ("concert_singer", "SELECT country, count(*) FROM singer GROUP BY country", "SELECT country FROM singer GROUP BY country", None,
     ["missing_aggregation"]),
    ("concert_singer", "SELECT country FROM singer GROUP BY country", "SELECT country, count(*) FROM singer GROUP BY country", None,
     ["extra_aggregation"]),
    ("concert_singer", "SELECT name FROM singer", "SELECT max(name) FROM singer", None, ["extra_aggregation"]),
    ("concert_singer", "SELECT avg(age) FROM singer", "SELECT sum(age) FROM singer", None, ["wrong_aggregation"]),
    ("car_1", "SELECT count(*) FROM cars_data", "SELECT sum(cylinders) FROM cars_data", None, ["wrong_aggregation"]),
    ("car_1", "SELECT max(mpg) FROM cars_data", "SELECT min(weight) FROM cars_data", None, ["wrong_select_columns", "wrong_aggregation"]),
    ("concert_singer", "SELECT name FROM singer WHERE age > 20 AND country = 'France'", "SELECT name FROM singer WHERE age > 20", None,
     ["missing_where"]),
    ("concert_singer", "SELECT name FROM singer WHERE age > 20", "SELECT name FROM singer WHERE age < 20", None, ["wrong_where"]),
    ("concert_singer", "SELECT name FROM singer", "SELECT name FROM singer WHERE age > 20", None, ["wrong_where"]),
    ("concert_singer", "SELECT name FROM singer WHERE country = 'France'", 'SELECT name FROM singer WHERE country = "Frances"', None,
     ["wrong_literal"]),
    ("concert_singer", "SELECT name FROM singer WHERE age > 20", "SELECT name FROM singer WHERE age > -20.0", None, ["wrong_literal"]),
    ("concert_singer", "SELECT name FROM singer WHERE song_name LIKE '%Hey%'", "SELECT name FROM singer WHERE song_name LIKE 'Hey%'", None,
     ["wrong_literal"]),
    ("pets_1", "SELECT pettype, count(*) FROM pets GROUP BY pettype", "SELECT pettype, count(*) FROM pets", None, ["missing_group_by"]),
    ("pets_1", "SELECT pettype, count(*) FROM pets GROUP BY pettype", "SELECT pettype, count(*) FROM pets GROUP BY petid", None,
     ["wrong_group_by"]),
    ("pets_1", "SELECT count(*) FROM pets", "SELECT count(*) FROM pets GROUP BY pettype", None, ["wrong_group_by"]),
    ("pets_1", "SELECT pettype FROM pets GROUP BY pettype HAVING count(*) > 1", "SELECT pettype FROM pets GROUP BY pettype", None,
     ["wrong_having"]),
    ("pets_1", "SELECT pettype FROM pets GROUP BY pettype HAVING count(*) > 1",
     "SELECT pettype FROM pets GROUP BY pettype HAVING count(*) > 3", None, ["wrong_literal"]),
    ("pets_1", "SELECT pettype FROM pets GROUP BY pettype HAVING count(*) > 1",
     "SELECT pettype FROM pets GROUP BY pettype HAVING avg(weight) > 1", None, ["wrong_having"]),
    ("concert_singer", "SELECT name FROM singer ORDER BY age", "SELECT name FROM singer", None, ["missing_order_by"]),
    ("concert_singer", "SELECT name FROM singer ORDER BY age", "SELECT name FROM singer ORDER BY name", None, ["wrong_order_by"]),
    ("concert_singer", "SELECT name FROM singer", "SELECT name FROM singer ORDER BY name", None, ["wrong_order_by"]),
    ("concert_singer", "SELECT name FROM singer ORDER BY age DESC", "SELECT name FROM singer ORDER BY age ASC", None,
     ["wrong_order_direction"]),
    ("concert_singer", "SELECT name FROM singer ORDER BY age LIMIT 1", "SELECT name FROM singer ORDER BY age LIMIT 3", None, ["wrong_limit"]),
    ("concert_singer", "SELECT name FROM singer ORDER BY age", "SELECT name FROM singer ORDER BY age LIMIT 1", None, ["wrong_limit"]),
    ("concert_singer", "SELECT DISTINCT country FROM singer", "SELECT country FROM singer", None, ["missing_distinct"]),
    ("concert_singer", "SELECT count(DISTINCT country) FROM singer", "SELECT count(country) FROM singer", None, ["missing_distinct"]),
    ("concert_singer", "SELECT country FROM singer", "SELECT DISTINCT country FROM singer", None, ["extra_distinct"]),
    ("concert_singer", "SELECT name FROM singer WHERE age > 40 UNION SELECT name FROM singer WHERE age < 30",
     "SELECT name FROM singer WHERE age > 40 UNION ALL SELECT name FROM singer WHERE age < 30", None, ["set_operation"]),
    ("concert_singer", "SELECT country FROM singer WHERE age > 40 INTERSECT SELECT country FROM singer WHERE age < 30",
     "SELECT country FROM singer WHERE age > 40 AND age < 30", None, ["set_operation"]),
    ("concert_singer", "SELECT country FROM singer WHERE age > 40 INTERSECT SELECT country FROM singer WHERE age < 30",
     "SELECT country FROM singer WHERE age > 40 INTERSECT SELECT country FROM singer WHERE age < 20", None, ["wrong_literal"]),
    ("concert_singer", "SELECT name FROM singer WHERE age > (SELECT avg(age) FROM singer)",
     "SELECT name FROM singer WHERE age > (SELECT avg(age) FROM singer WHERE country = 'France')", None, ["wrong_where"]),
    ("concert_singer", "SELECT name FROM stadium WHERE stadium_id NOT IN (SELECT stadium_id FROM concert)",
     "SELECT name FROM stadium WHERE stadium_id NOT IN (SELECT stadium_id FROM concert WHERE year = 2014 AND stadium_id IN (SELECT stadium_id FROM stadium))",
     None, ["wrong_where", "nesting"]),
    ("concert_singer", "SELECT count(*) FROM singer", "select COUNT(*) from SINGER as s", None, ["same_structure"]),
    ("concert_singer", "SELECT count(*) FROM singer", "SELECT count(singer_id) FROM singer", None, ["wrong_select_columns"]),
]


@pytest.mark.parametrize("db_id,gold,predicted,error_kind,expected", HAND_MADE, ids=[f"{c[-1][0]}-{i}" for i, c in enumerate(HAND_MADE)])
def test_hand_made(db_id, gold, predicted, error_kind, expected):
    assert error_categories(gold, predicted, SCHEMAS[db_id], error_kind) == expected, structural_diff(gold, predicted, SCHEMAS[db_id])


def test_every_category_is_exercised():
    covered = {category for case in HAND_MADE for category in case[-1]}
    assert covered == set(ERROR_CATEGORIES)


# Perturbed dev gold queries: (dev index, text in gold, replacement, categories the perturbation must produce).
PERTURBATIONS = [
    (0, "count(*)", "count(DISTINCT name)", ["wrong_select_columns", "extra_distinct"]),
    (2, " ORDER BY age DESC", "", ["missing_order_by"]),
    (2, "ORDER BY age DESC", "ORDER BY name DESC", ["wrong_order_by"]),
    (4, "'France'", "'United States'", ["wrong_literal"]),
    (4, " WHERE country  =  'France'", "", ["missing_where"]),
    (6, "ORDER BY age", "ORDER BY age DESC", ["wrong_order_direction"]),
    (8, "DISTINCT ", "", ["missing_distinct"]),
    (10, " GROUP BY country", "", ["missing_group_by"]),
    (12, "(SELECT avg(age) FROM singer)", "(SELECT max(age) FROM singer)", ["wrong_aggregation"]),
    (14, "BETWEEN 5000 AND 10000", "BETWEEN 5000 AND 1000", ["wrong_literal"]),
    (20, " OR YEAR  =  2015", "", ["wrong_where"]),
    (22, "GROUP BY T1.stadium_id", "GROUP BY T2.name", ["wrong_group_by"]),
    (24, "T1.year  >=  2014", "T1.year  >=  2015", ["wrong_literal"]),
    (26, " LIMIT 1", "", ["wrong_limit"]),
    (28, "NOT IN", "IN", ["wrong_where"]),
    (30, "INTERSECT", "EXCEPT", ["set_operation"]),
    (31, "EXCEPT", "UNION", ["set_operation"]),
    (33, "singer_in_concert AS T1", "stadium AS T1", ["wrong_table"]),
    (37, " JOIN concert AS T3 ON T1.concert_id  =  T3.concert_id WHERE T3.year  =  2014", "", ["missing_join", "missing_where"]),
    (45, "weight  >  10", "weight  <  10", ["wrong_where"]),
    (47, "ORDER BY pet_age", "ORDER BY weight", ["wrong_order_by"]),
    (49, "max(weight)", "min(weight)", ["wrong_aggregation"]),
    (51, " JOIN has_pet AS T2 ON T1.stuid  =  T2.stuid", "", ["missing_join"]),
    (53, "T1.sex  =  'F'", "T1.sex  =  'M'", ["wrong_literal"]),
    (55, "count(DISTINCT pettype)", "count(pettype)", ["missing_distinct"]),
    (57, "DISTINCT T1.Fname", "T1.Fname", ["missing_distinct"]),
    (61, "major ,  age", "major", ["wrong_select_columns"]),
    (73, "avg(weight)", "weight", ["missing_aggregation"]),
    (81, " HAVING count(*)  >  1", "", ["wrong_having"]),
    (85, "stuid not in (select stuid from has_pet)", "age > 20", ["wrong_where", "nesting"]),
    (89, "count(*)", "sum(T2.CountryId)", ["wrong_aggregation"]),
    (95, "T1.Model", "T2.Model", ["wrong_select_columns"]),
    (99, " JOIN CARS_DATA AS T4 ON T3.MakeId  =  T4.id WHERE T4.year  =  '1970'", "", ["missing_join", "missing_where"]),
    (101, "min(YEAR)", "max(YEAR)", ["wrong_aggregation"]),
    (107, "GROUP BY T1.Country", "GROUP BY T2.CountryName", ["wrong_group_by"]),
    (129, "count(*)  >=  3", "count(*)  >  3", ["wrong_having"]),
    (141, "DESC", "ASC", ["wrong_order_direction"]),
    (159, "Horsepower DESC", "Horsepower ASC", ["wrong_order_direction"]),
    (173, "EXCEPT", "INTERSECT", ["set_operation"]),
    (177, "UNION", "INTERSECT", ["set_operation"]),
    (179, '"JetBlue Airways"', '"Jetblue Airways"', ["wrong_literal"]),
]


@pytest.mark.parametrize("index,old,new,expected", PERTURBATIONS, ids=[f"dev{p[0]}-{p[-1][0]}" for p in PERTURBATIONS])
def test_perturbed_dev_queries(index, old, new, expected):
    gold, db_id = DEV[index]["query"], DEV[index]["db_id"]
    assert old in gold
    predicted = gold.replace(old, new, 1)
    assert error_categories(gold, predicted, SCHEMAS[db_id]) == expected, structural_diff(gold, predicted, SCHEMAS[db_id])


def test_perturbations_are_many_and_varied():
    assert len(PERTURBATIONS) >= 30
    assert len({category for *_, expected in PERTURBATIONS for category in expected}) >= 15


@pytest.mark.parametrize("gold,predicted", [
    ("SELECT T2.name FROM singer_in_concert AS T1 JOIN singer AS T2 ON T1.singer_id = T2.singer_id",
     "SELECT singer.Name FROM singer, singer_in_concert WHERE singer_in_concert.Singer_ID = singer.Singer_ID"),  # implicit join
    ("SELECT name FROM singer WHERE country = 'France' AND age > 20", 'select NAME from SINGER where 20 < AGE and "France" = COUNTRY'),
    ("SELECT country, count(*) AS n FROM singer GROUP BY country ORDER BY n DESC", "SELECT count(*), country FROM singer GROUP BY country ORDER BY count(*) DESC"),
    ("SELECT avg(age) FROM singer WHERE age > 20.0", "SELECT avg(age) FROM singer WHERE age > 20"),
    ("SELECT T1.* FROM singer AS T1 WHERE T1.age > 20", "SELECT singer.* FROM singer WHERE age > 20"),
    ("SELECT b.name FROM (SELECT * FROM stadium WHERE capacity > 5000) AS b",
     "WITH big AS (SELECT * FROM stadium WHERE capacity > 5000) SELECT b.name FROM big AS b"),  # a CTE reads as its subquery
    ("SELECT T2.name, count(*) FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id GROUP BY T1.stadium_id",
     "SELECT s.name, count(*) FROM stadium s JOIN concert c ON c.stadium_id = s.stadium_id GROUP BY s.stadium_id"),
])
def test_equivalent_writings_have_no_difference(gold, predicted):
    assert structural_diff(gold, predicted, SCHEMAS["concert_singer"]) == []


def test_every_dev_gold_query_reads_and_equals_itself():
    for entry in DEV:
        assert structural_diff(entry["query"], entry["query"], SCHEMAS[entry["db_id"]]) == [], entry["query"]


def test_double_quoted_values_resolved_against_the_schema():
    # "Name" is a column of singer: it stays a column; "Bob" is none: a value
    shape = query_shape('SELECT "Name" FROM singer WHERE name = "Bob"', SCHEMAS["concert_singer"])
    assert [item[0] for item in shape.select] == ["singer.name"]
    assert [part.sql() for part in shape.where] == ["singer.name = 'Bob'"]
    # without a schema the position decides: the value side of a comparison is a value
    shape = query_shape('SELECT name FROM singer WHERE country = "France"')
    assert [part.sql() for part in shape.where] == ["singer.country = 'France'"]
    # a raw tables.json entry and a {table: [columns]} mapping work as schemas too
    raw = next(e for e in json.loads((SPIDER/"tables.json").read_text()) if e["db_id"] == "flight_2")
    assert error_categories(DEV[179]["query"], DEV[179]["query"].replace("JetBlue", "Jet"), raw) == ["wrong_literal"]
    assert error_categories("SELECT a FROM t WHERE b = 'x'", 'SELECT a FROM t WHERE b = "y"', {"t": ["a", "b"]}) == ["wrong_literal"]


def test_difference_lines_name_the_clause():
    gold = DEV[51]["query"]  # SELECT count(*) FROM student AS T1 JOIN has_pet AS T2 ON ... WHERE T1.age > 20
    lines = structural_diff(gold, gold.replace(" WHERE T1.age  >  20", ""), SCHEMAS["pets_1"])
    assert lines == ["WHERE: missing condition student.age > 20"]
    lines = structural_diff(DEV[12]["query"], DEV[12]["query"].replace("avg(age)", "max(age)"), SCHEMAS["concert_singer"])
    assert lines == ["subquery 1 > SELECT: MAX(singer.age) instead of AVG(singer.age)"]


def test_unknown_inputs_are_refused():
    with pytest.raises(ReasonForgeError, match="'crash'"): error_categories("SELECT 1", "SELECT 2", None, "crash")
    with pytest.raises(ReasonForgeError, match="'nonsense'"): reference_category(["nonsense"])
    with pytest.raises(ReasonForgeError, match="taxonomy"): error_table([], taxonomy="theirs")


def test_reference_mapping():
    assert set(TO_REFERENCE_CATEGORY) == set(ERROR_CATEGORIES)
    assert set(TO_REFERENCE_CATEGORY.values()) == set(REFERENCE_CATEGORIES)
    assert set(EXECUTION_ERROR_CATEGORIES) == {"syntax", "schema", "timeout", "rejected", "too_many_rows", "memory", "runtime"}
    assert reference_category(["execution_syntax", "missing_join"]) == "execution_error"
    assert reference_category(["wrong_select_columns", "missing_where"]) == "missing_where"
    assert reference_category(["missing_join", "wrong_table"]) == "wrong_table"
    assert reference_category(["wrong_literal", "nesting"]) == "wrong_logic"
    assert reference_category(["extra_distinct"]) == "wrong_logic" and reference_category(["missing_distinct"]) == "missing_distinct"
    assert reference_category([]) == "wrong_logic"


def _rows():
    "Five dev questions: two wrong, one failed, one right, one excluded."
    def row(index, predicted, match, kind=None, hardness="easy"):
        return DevPrediction(index, DEV[index]["db_id"], hardness, DEV[index]["question"], DEV[index]["query"], predicted, exec_match=match,
                             excluded=match is None, error_kind=kind, error="no such table: pet" if kind else None)
    return [row(2, DEV[2]["query"].replace(" ORDER BY age DESC", ""), False, hardness="medium"),
            row(4, DEV[4]["query"].replace("France", "france"), False, hardness="medium"),
            row(45, DEV[45]["query"].replace("pets", "pet"), False, "schema"),
            row(0, DEV[0]["query"], True),
            row(46, DEV[46]["query"], None)]


def test_tables_and_examples_from_predictions():
    table = error_table(_rows(), SCHEMAS)
    assert list(table.columns) == ["easy", "medium", "all"]
    assert table.attrs["wrong_predictions"] == {"medium": 2, "easy": 1, "all": 3}
    assert table.loc["missing_order_by", "medium"] == 1 and table.loc["wrong_literal", "all"] == 1
    assert table.loc["execution_unknown_name", "easy"] == 1
    shares = error_table(_rows(), SCHEMAS, share=True)
    assert shares.loc["missing_order_by", "medium"] == 0.5
    reference = error_table(_rows(), SCHEMAS, taxonomy="reference")
    assert reference["all"].to_dict() == {"execution_error": 1, "missing_orderby": 1, "wrong_logic": 1}
    examples = error_examples(_rows(), per_category=2, schemas=str(SPIDER/"tables.json"))
    assert examples.loc[examples["category"] == "missing_order_by", "index"].to_list() == [2]
    assert "ORDER BY: missing singer.age DESC" in examples.loc[examples["category"] == "missing_order_by", "differences"].iloc[0]


def test_classified_frame_is_reused_and_other_rows_are_refused():
    classified = classify_examples(_rows(), SCHEMAS)
    assert classified["index"].to_list() == [2, 4, 45]
    assert error_table(classified).equals(error_table(_rows(), SCHEMAS))  # a report classifies once
    assert classified["reference_category"].to_list() == ["missing_orderby", "wrong_logic", "execution_error"]
    with pytest.raises(ReasonForgeError, match="not a DevPrediction"): classify_examples([vars(row) for row in _rows()])


def test_wrong_answers_say_how_they_failed():
    "A wrong answer that ran reads 'wrong result', never NaN; right and excluded answers are left out."
    table = wrong_answer_table(_rows())
    assert table["index"].to_list() == [2, 4, 45]
    assert table["failure"].to_list() == ["wrong result", "wrong result", "schema"]
    assert wrong_answer_table(_rows(), limit=1)["index"].to_list() == [2]
    assert wrong_answer_table([r for r in _rows() if r.exec_match is not False]).empty


def test_flips():
    before = _rows()
    after = [replace(row, exec_match={2: True, 4: False, 45: False, 0: False, 46: None}[row.index]) for row in before]
    changes = flips(before, after)
    assert dict(zip(changes["index"], changes["change"])) == {0: "broken", 2: "fixed", 4: "still wrong", 45: "still wrong"}
    with pytest.raises(ReasonForgeError, match="different questions"): flips(before, after[:3])
    with pytest.raises(ReasonForgeError, match="appears twice"): flips(before + before[:1], after)


def test_error_figure_has_the_expected_parts():
    figure = plot_error_categories({"0": {"wrong_table": 3, "missing_join": 1}, "1": {"wrong_table": 2, "nesting": 4}, "2": {}})
    axes = figure.axes[0]
    assert len(figure.axes) == 1 and len(axes.patches) == 3 * 3
    assert [label.get_text() for label in axes.get_yticklabels()] == ["wrong_table", "missing_join", "nesting"]


def test_no_wrong_predictions_gives_empty_tables():
    right = [row for row in _rows() if row.exec_match is not False]
    assert error_table(right).empty and error_examples(right).empty
    assert classify_examples(right).columns.to_list()[:3] == ["index", "db_id", "hardness"]
