"The per-database SQL grammar on real Spider: gold acceptance on a dev sample, the scope it enforces, and `reasonforge grammar check`."
import json, random, subprocess, sys
from pathlib import Path

import pytest

from reasonforge.core import ReasonForgeError
from reasonforge.data import find_spider_dir, load_spider

try: SPIDER = find_spider_dir()
except ReasonForgeError: pytest.skip("Spider not found: set REASONFORGE_SPIDER_DIR", allow_module_level=True)

from reasonforge.grammar import ACCEPTANCE_FLOOR, check_grammar, database_grammar, grammar_accepts


@pytest.fixture(scope="module")
def dev():
    return load_spider(SPIDER, "dev", check_schemas=False)


def test_a_seeded_sample_of_dev_gold_is_accepted(dev):
    sample = random.Random(0).sample(dev.usable, 200)
    result = check_grammar(dev, sample, progress=False)
    assert result.total == 200
    assert result.rate >= ACCEPTANCE_FLOOR, result.rejected


def test_a_single_table_query_reads_only_its_table(dev):
    grammar = database_grammar(dev, "car_1")
    assert not grammar_accepts(grammar, "SELECT Year, AVG(Weight) FROM car_names")
    assert grammar_accepts(grammar, "SELECT Year, AVG(Weight) FROM cars_data")
    assert grammar_accepts(grammar, "select YEAR, avg(weight) from Cars_Data as T1 group by T1.year;\n```")
    assert not grammar_accepts(grammar, "SELECT T1.Year FROM car_names AS T1")
    assert not grammar_accepts(grammar, "SELECT cars_data.Nonexistent FROM cars_data")
    assert not grammar_accepts(grammar, "SELECT Year FROM nowhere")
    assert grammar_accepts(grammar, "SELECT T2.Year FROM car_names AS T1 JOIN cars_data AS T2 ON T1.MakeId = T2.Id")


def spider_copy(root:Path, entries:list)->Path:
    "A Spider folder holding car_1 only (links to the real files) and the given dev entries."
    (root/"database"/"car_1").mkdir(parents=True)
    (root/"database"/"car_1"/"car_1.sqlite").symlink_to(SPIDER/"database"/"car_1"/"car_1.sqlite")
    (root/"tables.json").symlink_to(SPIDER/"tables.json")
    (root/"dev.json").write_text(json.dumps(entries))
    return root


def run_check(*args):
    command = Path(sys.executable).parent/"reasonforge"  # the console script pip installed next to this Python
    return subprocess.run([str(command), "grammar", "check", *map(str, args)], capture_output=True, text=True)


def test_the_command_ends_with_the_count(tmp_path):
    entries = [e for e in json.loads((SPIDER/"dev.json").read_text()) if e["db_id"] == "car_1"]
    result = run_check("--split", "dev", "--spider-dir", spider_copy(tmp_path, entries))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"accepted {len(entries)}/{len(entries)}"


def test_the_command_lists_refused_gold_and_fails_below_the_floor(tmp_path):
    wrong = {"db_id": "car_1", "question": "?", "query": "SELECT Year, AVG(Weight) FROM car_names"}
    entries = [e for e in json.loads((SPIDER/"dev.json").read_text()) if e["db_id"] == "car_1"][:3] + [wrong]
    result = run_check("--spider-dir", spider_copy(tmp_path, entries))
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["3\tcar_1\tSELECT Year, AVG(Weight) FROM car_names", "accepted 3/4"]


def test_a_qualifying_alias_is_short_so_a_wanted_column_cannot_run_on(dev):
    "Grammar 1 let a model that wanted a column its table lacks write an endless 'alias': qualifiers are now 1-3 characters."
    grammar = database_grammar(dev, "pets_1")
    assert grammar_accepts(grammar, "SELECT T1.StuID FROM Has_Pet AS T1")
    assert grammar_accepts(grammar, "SELECT si2.StuID FROM Has_Pet AS si2")
    assert not grammar_accepts(grammar, "SELECT StuID FROM Has_Pet WHERE PetTypeIN_GROUP.PetID = 1")
    assert not grammar_accepts(grammar, "SELECT StuID FROM Has_Pet WHERE PetType = 'cat'")  # a column of Pets only
