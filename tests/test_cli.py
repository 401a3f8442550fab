"The `reasonforge evaluate` command as a user runs it: a subprocess, its output, its exit status and its report."
import json, subprocess, sys
from pathlib import Path

import pytest

from reasonforge.data import find_spider_dir

SPIDER = find_spider_dir()


def run(*args, cwd=None):
    command = Path(sys.executable).parent/"reasonforge"  # the console script pip installed next to this Python
    return subprocess.run([str(command), *map(str, args)], capture_output=True, text=True, cwd=cwd)


def gold_lines(n=None):
    lines = (SPIDER/"dev_gold.sql").read_text().splitlines()
    return lines[:n] if n else lines


def test_gold_as_predictions_scores_all_usable(tmp_path):
    pred = tmp_path/"pred.txt"
    pred.write_text("".join(line.split("\t")[0] + "\n" for line in gold_lines()))
    out = tmp_path/"report.json"
    result = run("evaluate", "--gold", SPIDER/"dev_gold.sql", "--pred", pred, "--db", SPIDER/"database",
                 "--table", SPIDER/"tables.json", "--out", out, "--lenient")
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    summary = report["summary"]
    assert (summary["total"], summary["evaluated"], summary["excluded"]) == (1034, 972, 62)
    assert summary["exec_accuracy"] == 1.0 and summary["lenient_accuracy"] == 1.0
    assert [summary["by_hardness"][level]["count"] for level in ("easy", "medium", "hard", "extra")] == [248, 446, 174, 166]
    assert len(report["examples"]) == 1034
    assert all((e["exec_match"] is None) == e["excluded"] for e in report["examples"])
    assert "execution" in result.stdout and "excluded: 62" in result.stdout


def test_spider_dir_mode_and_wrong_predictions(tmp_path):
    pred = tmp_path/"pred.txt"
    lines = [line.split("\t")[0] for line in gold_lines()]
    lines[0] = "SELECT name FROM singer"   # wrong
    lines[1] = ""                          # empty: wrong, not a crash
    lines[2] = "SELEC broken"              # syntax error: wrong
    pred.write_text("\n".join(lines) + "\n")
    out = tmp_path/"report.json"
    result = run("evaluate", "--spider-dir", SPIDER, "--split", "dev", "--pred", pred, "--out", out)
    assert result.returncode == 0, result.stderr
    examples = json.loads(out.read_text())["examples"]
    assert [e["exec_match"] for e in examples[:4]] == [False, False, False, True]
    assert json.loads(out.read_text())["summary"]["exec_accuracy"] == pytest.approx(969 / 972)


@pytest.mark.parametrize("case", ["short_pred", "unknown_db", "missing_pred", "missing_gold", "no_gold_args"])
def test_bad_input_is_one_clear_line_and_status_2(tmp_path, case):
    pred = tmp_path/"pred.txt"
    pred.write_text("SELECT 1\n")
    gold = SPIDER/"dev_gold.sql"
    args = ["evaluate", "--gold", gold, "--pred", pred, "--db", SPIDER/"database", "--table", SPIDER/"tables.json"]
    expected = {"short_pred": "1 lines but the gold has 1034", "unknown_db": "unknown db_id 'nowhere'",
                "missing_pred": "nope.txt", "missing_gold": "no_gold.sql", "no_gold_args": "missing: --gold"}[case]
    if case == "unknown_db":
        (tmp_path/"gold.sql").write_text("SELECT 1\tnowhere\n"); args[2] = tmp_path/"gold.sql"
    if case == "missing_pred": args[4] = tmp_path/"nope.txt"
    if case == "missing_gold": args[2] = tmp_path/"no_gold.sql"
    if case == "no_gold_args": args = ["evaluate", "--pred", pred, "--db", SPIDER/"database", "--table", SPIDER/"tables.json"]
    result = run(*args)
    assert result.returncode == 2
    assert expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def make_test_suite(tmp_path):
    "A test-suite style folder: concert_singer, two perturbed copies and files that are not compared."
    import shutil, sqlite3
    folder = tmp_path/"suite"/"concert_singer"
    folder.mkdir(parents=True)
    shutil.copy(SPIDER/"database"/"concert_singer"/"concert_singer.sqlite", folder)
    for name, change in [("concert_singer_1.sqlite", "UPDATE singer SET age = age + 100 WHERE singer_id = 2"),
                         ("concert_singer_2.sqlite", "DELETE FROM concert WHERE concert_id > 4")]:
        shutil.copy(folder/"concert_singer.sqlite", folder/name)
        with sqlite3.connect(folder/name) as connection: connection.execute(change)
    (folder/"schema.sql").write_text("not compared: no '.sqlite' in the name")
    return folder.parent


def test_test_suite_folder_every_sqlite_file_counts(tmp_path):
    "TS: right only when it matches on every file whose name contains `.sqlite`; the report says how many."
    suite = make_test_suite(tmp_path)
    gold = ["SELECT count(*) FROM singer", "SELECT max(age) FROM singer", "SELECT name FROM singer ORDER BY age DESC LIMIT 1",
            "SELECT count(*) FROM singer"]
    pred = ["SELECT count(*) FROM concert", "SELECT max(age) FROM singer", "SELECT name FROM singer WHERE age = 52",
            "SELECT count(*) FROM singer WHERE age > value\tconcert_singer"]
    (tmp_path/"gold.sql").write_text("".join(f"{g}\tconcert_singer\n" for g in gold))
    (tmp_path/"pred.sql").write_text("".join(f"{p}\n" for p in pred))
    reports = {}
    for name, folder in [("ts", suite), ("ex", SPIDER/"database")]:
        result = run("evaluate", "--gold", tmp_path/"gold.sql", "--pred", tmp_path/"pred.sql", "--db", folder,
                     "--table", SPIDER/"tables.json", "--out", tmp_path/f"{name}.json")
        assert result.returncode == 0, result.stderr
        reports[name] = json.loads((tmp_path/f"{name}.json").read_text())
    assert [(e["exec_match"], e["databases"]) for e in reports["ex"]["examples"]] == [(True, 1), (True, 1), (True, 1), (True, 1)]
    assert [(e["exec_match"], e["databases"]) for e in reports["ts"]["examples"]] == [(False, 3), (True, 3), (False, 3), (True, 3)]
    assert (reports["ex"]["summary"]["execution_metric"], reports["ts"]["summary"]["execution_metric"]) == ("EX", "TS")
    assert "TS" in run("evaluate", "--gold", tmp_path/"gold.sql", "--pred", tmp_path/"pred.sql", "--db", suite,
                       "--table", SPIDER/"tables.json").stdout


def test_etype_all_adds_exact_match_and_partial_scores(tmp_path):
    lines = gold_lines(4)
    pred = tmp_path/"pred.txt"
    pred.write_text(lines[0].split("\t")[0] + "\nSELECT count(*) FROM concert\n\n" + lines[3].split("\t")[0] + "\n")
    (tmp_path/"gold.sql").write_text("".join(line + "\n" for line in lines))
    result = run("evaluate", "--gold", tmp_path/"gold.sql", "--pred", pred, "--db", SPIDER/"database", "--table", SPIDER/"tables.json",
                 "--out", tmp_path/"r.json", "--etype", "all")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path/"r.json").read_text())
    assert [e["exact_match"] for e in report["examples"]] == [True, False, False, True]
    assert [e["exec_match"] for e in report["examples"]][2] is False  # an empty line: a wrong prediction, not a session break
    assert report["summary"]["exact_match_accuracy"] == 0.5
    assert set(report["summary"]["partial_scores"]["all"]) >= {"select", "where", "IUEN", "keywords"}
    assert "exact match" in result.stdout and "partial matching f1" in result.stdout
