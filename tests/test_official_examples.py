"""test-suite-sql-eval's own evaluation examples through `reasonforge evaluate --etype all`, pair by pair.

`tests/fixtures/official_examples` holds the repository's `gold.txt` and `predict.txt` (132 SParC-style sessions, 322
pairs, three golds written with `! =`) and `expected.jsonl`: the hardness, execution match and exact match that the
official `evaluation.py` gave each pair when it was run once on them (its README says how). A pair whose database is
missing from the Spider copy at hand is excluded, never wrong.
"""
import json, subprocess, sys
from pathlib import Path

import pytest

from reasonforge.data import find_spider_dir

SPIDER = find_spider_dir()
EXAMPLES = Path(__file__).parent/"fixtures"/"official_examples"
OFFICIAL = [json.loads(line) for line in (EXAMPLES/"expected.jsonl").open()]


def run(*args):
    command = Path(sys.executable).parent/"reasonforge"  # the console script pip installed next to this Python
    return subprocess.run([str(command), *map(str, args)], capture_output=True, text=True)


def evaluate(database_dir, out):
    result = run("evaluate", "--gold", EXAMPLES/"gold.txt", "--pred", EXAMPLES/"predict.txt", "--db", database_dir,
                 "--table", SPIDER/"tables.json", "--etype", "all", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return json.loads(Path(out).read_text()), result.stdout


def missing_databases(database_dir):
    return {pair["db_id"] for pair in OFFICIAL if not (Path(database_dir)/pair["db_id"]/f"{pair['db_id']}.sqlite").is_file()}


def assert_agrees(examples, missing):
    "Every pair: the official verdicts, or excluded (never wrong) when its database is missing."
    assert len(examples) == len(OFFICIAL) == 322
    for example, pair in zip(examples, OFFICIAL):
        assert (example["gold_line"], example["db_id"]) == (pair["gold_line"], pair["db_id"])
        assert example["hardness"] == pair["hardness"], pair
        assert example["gold_problem"] is None, example
        if pair["db_id"] in missing:
            assert (example["excluded"], example["exec_match"], example["exact_match"]) == (True, None, None), example
            assert "missing" in example["error"]
        else:
            assert (example["excluded"], example["exec_match"], example["exact_match"]) == (False, pair["exec_match"], pair["exact_match"]), pair


@pytest.fixture(scope="module")
def official_run(tmp_path_factory):
    return evaluate(SPIDER/"database", tmp_path_factory.mktemp("official")/"report.json")


def test_the_fixture_is_what_the_official_script_saw():
    gold = [line for line in (EXAMPLES/"gold.txt").read_text().splitlines() if line.strip()]
    predicted = [line for line in (EXAMPLES/"predict.txt").read_text().splitlines() if line.strip()]
    assert [pair["gold"] + "\t" + pair["db_id"] for pair in OFFICIAL] == [line.strip() for line in gold]
    assert [pair["prediction"] for pair in OFFICIAL] == [line.strip() for line in predicted]
    assert (len(OFFICIAL), sum(p["exec_match"] for p in OFFICIAL), sum(p["exact_match"] for p in OFFICIAL)) == (322, 67, 27)
    assert sum("! =" in pair["gold"] for pair in OFFICIAL) == 3


def test_every_pair_agrees_with_the_official_ex_and_em(official_run):
    report, printed = official_run
    missing = missing_databases(SPIDER/"database")
    assert_agrees(report["examples"], missing)
    scored = [pair for pair in OFFICIAL if pair["db_id"] not in missing]
    summary = report["summary"]
    assert summary["evaluated"] == len(scored) and "gold_problems" not in summary
    assert summary["exec_accuracy"] == pytest.approx(sum(p["exec_match"] for p in scored) / len(scored))
    assert summary["exact_match_accuracy"] == pytest.approx(sum(p["exact_match"] for p in scored) / len(scored))
    assert "exact match" in printed and "partial matching f1" in printed


def test_the_spaced_operator_golds_run_and_parse(official_run):
    report, _ = official_run
    spaced = [(example, pair) for example, pair in zip(report["examples"], OFFICIAL) if "! =" in pair["gold"]]
    assert [example["hardness"] for example, _ in spaced] == ["easy", "easy", "hard"]
    assert all(example["exec_match"] is not None and example["exact_match"] is not None for example, _ in spaced)


def test_a_missing_database_excludes_its_pairs_and_the_rest_still_agree(tmp_path):
    "Our Spider copy lacks three databases, none of them these four; here `world_1` is left out of the folder."
    folder = tmp_path/"database"
    folder.mkdir()
    for db_id in {pair["db_id"] for pair in OFFICIAL} - {"world_1"}: (folder/db_id).symlink_to(SPIDER/"database"/db_id)
    report, printed = evaluate(folder, tmp_path/"report.json")
    assert missing_databases(folder) == {"world_1"}
    assert_agrees(report["examples"], {"world_1"})
    assert report["summary"]["excluded"] == sum(pair["db_id"] == "world_1" for pair in OFFICIAL) > 0
    assert "excluded:" in printed and "world_1" in printed
