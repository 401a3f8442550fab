"""The error taxonomy on real wrong predictions: the default model's greedy answers to 48 Spider dev questions (the
baseline of `configs/default-cpu.yaml`, kept in nbs/fixtures/default-model). Every wrong answer gets categories that
agree with how it failed, and a handful of answers read by hand get exactly the categories a reader would give them."""
import json
from pathlib import Path

import pytest

from reasonforge.data import find_spider_dir, load_spider
from reasonforge.evaluate import DevPrediction
from reasonforge.errors import (ERROR_CATEGORIES, REFERENCE_CATEGORIES, error_categories, classify_examples, error_table,
                                reference_category)
from reasonforge.query_diff import structural_diff

PREDICTIONS = Path(__file__).resolve().parents[1]/"nbs"/"fixtures"/"default-model"/"baseline-dev-predictions.jsonl"


@pytest.fixture(scope="module")
def dev():
    return load_spider(find_spider_dir(), "dev")


@pytest.fixture(scope="module")
def wrong(dev):
    rows = [json.loads(line) for line in PREDICTIONS.read_text().splitlines()]
    assert len(rows) == 48 and sum(r["excluded"] for r in rows) == 3
    found = [r for r in rows if not r["excluded"] and not r["exec_match"]]
    for r in found:
        r["categories"] = error_categories(r["gold_sql"], r["predicted_sql"], dev.tables[r["db_id"]], r["error_kind"])
    return {r["index"]: r for r in found}


def test_every_real_wrong_prediction_is_explained(wrong):
    assert len(wrong) == 23
    for r in wrong.values():
        categories = r["categories"]
        assert categories and set(categories) <= set(ERROR_CATEGORIES), (r["index"], categories)
        failed_to_run = r["error_kind"] is not None
        assert categories[0].startswith("execution_") == failed_to_run, (r["index"], r["error_kind"], categories)
        assert sum(c.startswith("execution_") for c in categories) == int(failed_to_run)
        assert reference_category(categories) in REFERENCE_CATEGORIES


def test_real_wrong_predictions_read_by_hand(wrong):
    # ORDER BY age ASC where the question wants the oldest first
    assert wrong[2]["categories"] == ["wrong_order_direction"]
    # MAX(cost) where gold takes the cost of the latest treatment (ORDER BY date DESC LIMIT 1)
    assert wrong[976]["categories"] == ["extra_aggregation", "missing_order_by", "wrong_limit"]
    assert reference_category(wrong[976]["categories"]) == "missing_orderby"
    # one WHERE with IN (...) instead of gold's UNION of two queries
    assert wrong[1033]["categories"] == ["set_operation"]
    # Birth_Date read from poker_player, which has no such column: gold joins people
    assert wrong[666]["categories"][0] == "execution_unknown_name" and "missing_join" in wrong[666]["categories"]
    assert reference_category(wrong[666]["categories"]) == "execution_error"
    # the airport's own columns fetched through an unneeded join with flights
    assert "extra_join" in wrong[186]["categories"]
    # average weight per year from car_names instead of cars_data
    assert "wrong_table" in wrong[127]["categories"]
    # IndependenceYear does not exist (the column is IndepYear)
    assert wrong[788]["categories"] == ["execution_unknown_name", "wrong_select_columns"]


def test_real_diffs_and_table(wrong, dev):
    diff = structural_diff(wrong[976]["gold_sql"], wrong[976]["predicted_sql"], dev.tables[wrong[976]["db_id"]])
    assert any("ORDER BY" in line for line in diff) and any("LIMIT" in line for line in diff)
    rows = [DevPrediction.from_json(json.loads(line)) for line in PREDICTIONS.read_text().splitlines()]
    schemas = {r.db_id: dev.tables[r.db_id] for r in rows}
    classified = classify_examples(rows, schemas)  # the path the reports take: excluded and right answers are left out
    assert sorted(classified["index"]) == sorted(wrong)
    assert all(list(c) == wrong[i]["categories"] for i, c in zip(classified["index"], classified["categories"]))
    table = error_table(rows, schemas)
    assert table.loc["execution_unknown_name", "all"] == sum(r["error_kind"] == "schema" for r in wrong.values())
    assert table.loc["wrong_order_direction", "all"] >= 1
