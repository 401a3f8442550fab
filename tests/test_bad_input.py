"""Bad input through the `reasonforge` command as a user runs it: each case ends with ONE line naming the file, key or
value at fault, exit status 2 and no traceback. `reasonforge run` must refuse before any engine starts: its subprocess
gets stand-in `vllm` and `unsloth` packages that fail on import, and no run folder may appear."""
import json, os, shutil, subprocess, sys
from pathlib import Path

import pytest
import yaml

from reasonforge.data import find_spider_dir

SPIDER = find_spider_dir()
COMMAND = Path(sys.executable).parent/"reasonforge"  # the console script pip installed next to this Python


@pytest.fixture(scope="module")
def no_engines(tmp_path_factory)->Path:
    "A folder of stand-in `vllm` and `unsloth` packages whose import fails: put first on PYTHONPATH."
    folder = tmp_path_factory.mktemp("no-engines")
    for name in ("vllm", "unsloth"):
        (folder/name).mkdir()
        (folder/name/"__init__.py").write_text(f"raise ImportError('{name} was imported while checking bad input')\n")
    return folder


def reasonforge(*args, engines_blocked:Path|None=None, cwd=None)->subprocess.CompletedProcess:
    env = dict(os.environ)
    if engines_blocked: env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(engines_blocked), env.get("PYTHONPATH")]))
    return subprocess.run([str(COMMAND), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def assert_one_clear_error(result:subprocess.CompletedProcess, command:str, *expected:str):
    "Exit status 2, no traceback, exactly one error line, and it contains every expected fragment."
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith(f"reasonforge {command}: error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    for fragment in expected: assert fragment in errors[0], errors[0]
    print(errors[0])  # shown with pytest -s: the message a user sees
    return errors[0]


def spider_copy(tmp_path:Path)->Path:
    "A writable copy of Spider (the shared one is read-only)."
    root = tmp_path/"spider"
    shutil.copytree(SPIDER, root, ignore=shutil.ignore_patterns("train_gold.sql", "SHA256_OFFICIAL.json", "DATABASES.sha256"))
    for path in [root, *root.rglob("*")]: path.chmod(path.stat().st_mode | 0o200)
    return root


def edit_json(path:Path, change):
    values = json.loads(path.read_text())
    change(values)
    path.write_text(json.dumps(values))


def concert_entry(tables:list)->dict:
    return next(entry for entry in tables if entry["db_id"] == "concert_singer")


# --- Spider files, through `reasonforge evaluate --spider-dir` --------------------------------------------------------

def _truncate_dev(root): (root/"dev.json").write_text((root/"dev.json").read_text()[:5000])
def _remove_tables(root): (root/"tables.json").unlink()
def _remove_dev(root): (root/"dev.json").unlink()
def _rename_table(root): edit_json(root/"tables.json", lambda t: concert_entry(t)["table_names_original"].__setitem__(0, "stadiums"))
def _extra_table(root): edit_json(root/"tables.json", lambda t: concert_entry(t)["table_names_original"].append("ticket"))
def _bad_foreign_key(root): edit_json(root/"tables.json", lambda t: concert_entry(t).__setitem__("foreign_keys", [[3]]))
def _bad_column(root): edit_json(root/"tables.json", lambda t: concert_entry(t)["column_names_original"].__setitem__(1, "Stadium_ID"))
def _no_database_folder(root): shutil.rmtree(root/"database")
def _not_sqlite(root): (root/"database"/"concert_singer"/"concert_singer.sqlite").write_bytes(b"not a database" * 100)
def _unknown_db_id(root): edit_json(root/"dev.json", lambda d: d[3].__setitem__("db_id", "atlantis"))
def _empty_dev(root): (root/"dev.json").write_text("[]")
def _dev_not_a_list(root): (root/"dev.json").write_text('{"questions": []}')
def _question_without_query(root): edit_json(root/"dev.json", lambda d: d[7].pop("query"))
def _tables_not_utf8(root): (root/"tables.json").write_bytes(b'[{"db_id": "\xff\xfe"}]')

SPIDER_CASES = {  # name: (how the copy is broken, fragments the one error line must hold)
    "truncated dev.json": (_truncate_dev, ["dev.json: malformed JSON at line"]),
    "no tables.json": (_remove_tables, ["spider: no tables.json here"]),
    "no dev.json": (_remove_dev, ["dev.json: file not found"]),
    "table renamed in tables.json": (_rename_table, ["tables.json entry 'concert_singer' does not match", "concert_singer.sqlite",
                                                     "table 'stadiums' is missing from the file"]),
    "table only in tables.json": (_extra_table, ["entry 'concert_singer' does not match", "table 'ticket' is missing"]),
    "malformed foreign key": (_bad_foreign_key, ["tables.json entry", "(concert_singer): 'foreign_keys' item 0", "got [3]"]),
    "malformed column entry": (_bad_column, ["(concert_singer): 'column_names_original' item 1", "'Stadium_ID'"]),
    "no database folder": (_no_database_folder, ["spider/database: no such folder"]),
    "database file not SQLite": (_not_sqlite, ["concert_singer.sqlite: not a readable SQLite database"]),
    "unknown db_id": (_unknown_db_id, ["dev.json question 3: db_id 'atlantis' is not in tables.json"]),
    "empty question list": (_empty_dev, ["dev.json: contains no questions"]),
    "dev.json not a list": (_dev_not_a_list, ["dev.json: expected a list of questions, got dict"]),
    "question without query": (_question_without_query, ["dev.json question 7: missing or non-text 'query'"]),
    "tables.json not UTF-8": (_tables_not_utf8, ["tables.json: not UTF-8 text"]),
}


@pytest.mark.parametrize("case", list(SPIDER_CASES))
def test_broken_spider_copy_is_one_clear_line(tmp_path, case):
    breaks, expected = SPIDER_CASES[case]
    root = spider_copy(tmp_path)
    breaks(root)
    predictions = tmp_path/"pred.txt"
    predictions.write_text("SELECT 1\n" * 1034)
    result = reasonforge("evaluate", "--spider-dir", root, "--pred", predictions)
    assert_one_clear_error(result, "evaluate", *expected)


def test_missing_database_folder_excludes_its_questions(tmp_path):
    "One database folder missing is how Spider ships (3 are): its questions are excluded and counted, never a crash."
    root = spider_copy(tmp_path)
    shutil.rmtree(root/"database"/"concert_singer")
    predictions, out = tmp_path/"pred.txt", tmp_path/"report.json"
    predictions.write_text("".join(line.split("\t")[0] + "\n" for line in (SPIDER/"dev_gold.sql").read_text().splitlines()))
    result = reasonforge("evaluate", "--spider-dir", root, "--pred", predictions, "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(out.read_text())["summary"]
    assert summary["excluded"] == 62 + 45 and "concert_singer" in summary["excluded_databases"]
    assert summary["exec_accuracy"] == 1.0


# --- gold and prediction files, through `reasonforge evaluate --gold/--db/--table` ----------------------------------

def _gold_args(tmp_path, gold=None, predictions=None):
    gold_path = tmp_path/"gold.sql"
    gold_path.write_text(gold if gold is not None else (SPIDER/"dev_gold.sql").read_text())
    predictions_path = tmp_path/"pred.txt"
    predictions_path.write_text(predictions if predictions is not None else "SELECT 1\n" * 1034)
    return ["evaluate", "--gold", gold_path, "--pred", predictions_path, "--db", SPIDER/"database", "--table", SPIDER/"tables.json"]


GOLD_CASES = {
    "predictions with too few lines": (dict(predictions="SELECT 1\nSELECT 2\nSELECT 3\n"), ["pred.txt has 3 lines but the gold has 1034"]),
    "predictions with too many lines": (dict(predictions="SELECT 1\n" * 1035), ["pred.txt has 1035 lines but the gold has 1034"]),
    "empty gold file": (dict(gold="", predictions=""), ["gold.sql: contains no gold queries"]),
    "gold line without db_id": (dict(gold="SELECT 1\tconcert_singer\nSELECT 2\n", predictions="a\nb\n"), ["gold.sql line 2: expected 'SQL<TAB>db_id'"]),
    "unknown db_id in gold": (dict(gold="SELECT 1\tatlantis\n", predictions="SELECT 1\n"), ["gold.sql, line 1: unknown db_id 'atlantis'"]),
}


@pytest.mark.parametrize("case", list(GOLD_CASES))
def test_bad_gold_or_predictions_is_one_clear_line(tmp_path, case):
    files, expected = GOLD_CASES[case]
    assert_one_clear_error(reasonforge(*_gold_args(tmp_path, **files)), "evaluate", *expected)


def test_missing_database_dir_is_named(tmp_path):
    args = _gold_args(tmp_path, gold="SELECT 1\tconcert_singer\n", predictions="SELECT 1\n")
    args[args.index("--db") + 1] = tmp_path/"no-databases"
    assert_one_clear_error(reasonforge(*args), "evaluate", "database folder", "no-databases does not exist")


# --- the run config and its inputs, through `reasonforge run` (refused before any engine starts) -------------------

@pytest.fixture
def fake_model(tmp_path)->Path:
    "A folder `resolve_model` accepts (it has a config.json): enough for the checks, never loaded."
    folder = tmp_path/"model"
    folder.mkdir()
    (folder/"config.json").write_text("{}")
    return folder


def run_command(tmp_path, no_engines, values:dict|str, *extra):
    "`reasonforge run` on a config (a mapping or YAML text), run folders under tmp_path/runs."
    config = tmp_path/"run.yaml"
    config.write_text(values if isinstance(values, str) else yaml.safe_dump(values))
    return reasonforge("run", "--config", config, *extra, engines_blocked=no_engines, cwd=tmp_path)


def base_config(tmp_path, model, **values)->dict:
    return {"name": "bad", "model": str(model), "iterations": 1, "run_root": str(tmp_path/"runs"), "reports_root": str(tmp_path/"reports"),
            "train_subset": {"size": 4}, "dev_subset": {"size": 4}, **values}


CONFIG_CASES = {
    "unknown top-level key": ({"colour": "red"}, ["run.yaml: unknown key 'colour'"]),
    "unknown nested key": ({"training": {"lora_rnk": 8}}, ["run.yaml: unknown key 'training.lora_rnk'"]),
    "unknown key two levels down": ({"train_subset": {"size": 4, "sead": 1}}, ["unknown key 'train_subset.sead'"]),
    "wrong type nested": ({"sampling": {"k": "eight"}}, ["run.yaml: sampling.k: expected an integer, got 'eight'"]),
    "wrong type top level": ({"iterations": "two"}, ["iterations: expected an integer, got 'two'"]),
    "a section that is not a mapping": ({"evaluation": [1, 2]}, ["evaluation: expected a mapping, got [1, 2]"]),
    "value out of range": ({"sampling": {"top_p": 1.5}}, ["sampling.top_p: must be in (0, 1]"]),
    "unknown engine": ({"engine": {"backend": "tensorrt"}}, ["engine.backend: must be 'vllm' or 'transformers'"]),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_config_is_one_clear_line(tmp_path, no_engines, fake_model, case):
    values, expected = CONFIG_CASES[case]
    result = run_command(tmp_path, no_engines, base_config(tmp_path, fake_model) | values)
    assert_one_clear_error(result, "run", *expected)
    assert not (tmp_path/"runs").exists()


def test_config_that_is_not_yaml(tmp_path, no_engines):
    result = run_command(tmp_path, no_engines, "model: m\nsampling: {k: 4\n")
    assert_one_clear_error(result, "run", "run.yaml: not valid YAML at line")


def test_config_file_missing(tmp_path, no_engines):
    result = reasonforge("run", "--config", tmp_path/"nope.yaml", engines_blocked=no_engines, cwd=tmp_path)
    assert_one_clear_error(result, "run", "cannot read config", "nope.yaml")


def _subset_of_missing_databases()->list:
    dev = json.loads((SPIDER/"dev.json").read_text())
    return [i for i, q in enumerate(dev) if q["db_id"] == "wta_1"][:3]


INPUT_CASES = {  # config changes (a function of tmp_path, model, spider copy), what breaks the Spider copy, expected fragments
    "model path that does not exist": (lambda tmp, model, root: {"model": str(tmp/"no-such-model")}, None,
                                       ["model source not found", "no-such-model"]),
    "model folder without config.json": (lambda tmp, model, root: {"model": str(tmp)}, None, ["model folder", "has no config.json"]),
    "spider_dir that does not exist": (lambda tmp, model, root: {"spider_dir": str(tmp/"no-spider")}, None, ["no-spider: no such Spider folder"]),
    "truncated dev.json": (lambda tmp, model, root: {"spider_dir": str(root)}, _truncate_dev, ["dev.json: malformed JSON at line"]),
    "no train_spider.json": (lambda tmp, model, root: {"spider_dir": str(root)}, lambda root: (root/"train_spider.json").unlink(),
                             ["train_spider.json: file not found"]),
    "tables.json not matching a used database": (lambda tmp, model, root: {"spider_dir": str(root), "dev_subset": {"indices": [0, 1]}},
                                                 _rename_table, ["tables.json entry 'concert_singer' does not match", "'stadiums'"]),
    "unknown db_id": (lambda tmp, model, root: {"spider_dir": str(root)}, _unknown_db_id, ["dev.json question 3: db_id 'atlantis'"]),
    "subset that selects nothing": (lambda tmp, model, root: {"dev_subset": {"indices": []}}, None, ["dev_subset: selects no questions"]),
    "subset larger than the split": (lambda tmp, model, root: {"train_subset": {"size": 99999}}, None,
                                     ["train_subset.size: 99999 is more than the 7000 questions"]),
    "subset index out of range": (lambda tmp, model, root: {"dev_subset": {"indices": [5, 1034]}}, None,
                                  ["dev_subset.indices: [1034] out of range"]),
    "subset of excluded questions only": (lambda tmp, model, root: {"dev_subset": {"indices": _subset_of_missing_databases()}}, None,
                                          ["dev_subset: all 3 selected dev questions are excluded", "['wta_1'] are missing"]),
    "empty dev split": (lambda tmp, model, root: {"spider_dir": str(root)}, _empty_dev, ["dev.json: contains no questions"]),
}


@pytest.mark.parametrize("case", list(INPUT_CASES))
def test_bad_run_input_stops_before_any_engine(tmp_path, no_engines, fake_model, case):
    values, breaks, expected = INPUT_CASES[case]
    root = None
    if breaks:
        root = spider_copy(tmp_path)
        breaks(root)
    result = run_command(tmp_path, no_engines, base_config(tmp_path, fake_model) | values(tmp_path, fake_model, root))
    assert_one_clear_error(result, "run", *expected)
    assert not (tmp_path/"runs").exists() and not (tmp_path/"reports").exists()  # nothing was started


def test_run_folder_under_a_file(tmp_path, no_engines, fake_model):
    "A run folder that cannot be made (its parent is a regular file: refused even for root)."
    (tmp_path/"runs").write_text("a file, not a folder")
    result = run_command(tmp_path, no_engines, base_config(tmp_path, fake_model))
    assert_one_clear_error(result, "run", "cannot write the run folder", str(tmp_path/"runs"/"bad"), "Not a directory")


def test_reports_folder_under_a_file(tmp_path, no_engines, fake_model):
    (tmp_path/"reports").write_text("a file, not a folder")
    result = run_command(tmp_path, no_engines, base_config(tmp_path, fake_model))
    assert_one_clear_error(result, "run", "cannot write the reports folder", str(tmp_path/"reports"/"bad"))


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores directory permissions (the file-parent case covers it)")
def test_read_only_run_root(tmp_path, no_engines, fake_model):
    "A run root without write permission (chmod 0o500)."
    (tmp_path/"runs").mkdir()
    (tmp_path/"runs").chmod(0o500)
    try: result = run_command(tmp_path, no_engines, base_config(tmp_path, fake_model))
    finally: (tmp_path/"runs").chmod(0o700)
    assert_one_clear_error(result, "run", "cannot write the run folder", "Permission denied")


def test_read_only_existing_run_folder(tmp_path, no_engines, fake_model):
    "An existing run folder whose lock file cannot be opened for writing (a folder in its place: refused even for root)."
    (tmp_path/"runs"/"bad"/".lock").mkdir(parents=True)
    result = run_command(tmp_path, no_engines, base_config(tmp_path, fake_model))
    assert_one_clear_error(result, "run", "cannot write the run folder", str(tmp_path/"runs"/"bad"))
