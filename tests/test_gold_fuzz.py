"""Gold lines nobody checked: random mutations of real dev gold queries never raise from `score_predictions` or from
`reasonforge evaluate`, and each gold query that cannot be read is reported with a reason.

Mutations (seeded, so every run sees the same lines): tokens dropped, shuffled or repeated, `! =` / `> =` / `< =` with
one or more spaces, the text cut short, unbalanced parentheses and quotes, garbage, empty and blank SQL, unicode, a NUL
byte. A gold line's *structure* (a TAB then a known db_id) is a file error instead: one line naming the file and line.
"""
import json, random, subprocess, sys
from pathlib import Path

import pytest

from reasonforge.data import find_spider_dir, load_spider
from reasonforge.evaluate import evaluation_report, format_summary, score_predictions, summarize
from reasonforge.execute import SQLExecutor
from reasonforge.hardness import HARDNESS_LEVELS, UNKNOWN_HARDNESS, gold_hardness

SPIDER = find_spider_dir()
DEV = load_spider(SPIDER, "dev")
GARBAGE = ["", " ", "\t", ";", "(", ")", "'", '"', "SELECT", "NULL", "\x00", "é ü 中文 🙂", "\u2028", "--", "/*", "SELECT *", "DROP TABLE singer"]


def mutate(sql:str, rng:random.Random)->str:
    "One random mutation of `sql`."
    tokens = sql.split()
    kind = rng.randrange(11)
    if kind == 0: del tokens[rng.randrange(len(tokens))]
    elif kind == 1:
        spaced = rng.choice(["! =", ">  =", "< =", "!  =", "> =", "!="])
        return sql.replace("!=", spaced).replace(" = ", f" {spaced} ", 1) if " = " in sql else sql + f" WHERE 1 {spaced} 1"
    elif kind == 2: return sql[:rng.randrange(len(sql) + 1)]
    elif kind == 3: return rng.choice(GARBAGE)
    elif kind == 4:
        i = rng.randrange(len(sql) + 1)
        return sql[:i] + rng.choice("()'\"`[];,") + sql[i:]
    elif kind == 5: return "".join(rng.choice([c, c.upper(), "🙂", "ß", "\u00a0"]) if rng.random() < 0.2 else c for c in sql)
    elif kind == 6: return "(" * rng.randrange(1, 50) + sql
    elif kind == 7: tokens = [rng.choice(tokens) for _ in tokens]
    elif kind == 8: rng.shuffle(tokens)
    elif kind == 9: return sql.replace(")", "", 1) if ")" in sql else sql + ")"
    else: return sql.replace("SELECT", "SELEC", 1)
    return " ".join(tokens)


def fuzzed_gold(n:int, seed:int)->list[tuple[str, str, str]]:
    "(mutated gold, db_id, original gold) for `n` mutations of usable dev gold queries on a few databases."
    rng = random.Random(seed)
    questions = [q for q in DEV.usable if q.db_id in ("concert_singer", "pets_1", "world_1", "car_1")]
    return [(mutate(q.gold_sql, rng), q.db_id, q.gold_sql) for q in (rng.choice(questions) for _ in range(n))]


def assert_reported(example, gold_sql:str):
    "Every way a gold query can be unreadable shows in its example, with a reason."
    if example.hardness == UNKNOWN_HARDNESS: assert example.gold_problem and "hardness" in example.gold_problem, example
    else: assert example.hardness in HARDNESS_LEVELS
    if gold_hardness(gold_sql)[0] == UNKNOWN_HARDNESS and example.hardness == UNKNOWN_HARDNESS:  # the same reason
        assert example.gold_problem.startswith("hardness: " + gold_hardness(gold_sql)[1][:30]), example
    if example.excluded: assert example.error and example.exec_match is None and example.exact_match is None
    else:
        assert isinstance(example.exec_match, bool)  # both queries ran: execution is scored
        if example.exact_match is None: assert "exact match" in example.gold_problem, example
    if example.gold_problem is None: assert example.hardness in HARDNESS_LEVELS and (example.excluded or example.exact_match is not None)


@pytest.fixture(scope="module")
def executor():
    with SQLExecutor(timeout=2.0, workers=2) as running: yield running


@pytest.mark.parametrize("seed", [0, 1])
def test_score_predictions_never_raises_on_mutated_gold(seed, executor):
    cases = fuzzed_gold(150, seed)
    gold = [(sql, db_id) for sql, db_id, _ in cases]
    for predictions in ([original for _, _, original in cases], [sql for sql, _, _ in cases]):  # the true query, the gold itself
        scored = score_predictions(gold, predictions, DEV.database_path, etype="all", tables=DEV.tables, executor=executor)
        assert [s.index for s in scored] == list(range(len(cases)))
        for example, (sql, _, _) in zip(scored, cases): assert_reported(example, sql)
        summary = summarize(scored)
        assert summary.get("gold_problems", 0) == sum(s.gold_problem is not None for s in scored)
        assert summary["total"] == len(cases) and format_summary(summary)
        json.dumps(evaluation_report(scored)["examples"])  # the report is plain JSON
    assert sum(s.gold_problem is not None for s in scored) > 10  # the mutations do reach the unreadable cases
    assert any(not s.excluded and s.gold_problem for s in scored)  # some gold queries run but cannot be read: scored on EX


def test_score_predictions_refuses_what_is_not_a_gold_pair():
    from reasonforge.core import ReasonForgeError
    for gold, predictions, message in [([("SELECT 1",)], ["SELECT 1"], "gold 0"), ([(None, "concert_singer")], ["x"], "gold 0"),
                                       ([("SELECT 1", "concert_singer")], [3], "prediction 0"),
                                       ([("SELECT 1", "concert_singer")], [], "counts must match")]:
        with pytest.raises(ReasonForgeError, match=message): score_predictions(gold, predictions, DEV.database_path)


def test_unknown_or_missing_databases_are_excluded_with_their_reason(executor):
    gold = [("SELECT 1", "nowhere"), ("SELECT 1", ""), ("SELECT 1", "wta_1"), ("SELECT count(*) FROM singer", "concert_singer")]
    scored = score_predictions(gold, ["SELECT 1"] * 4, DEV.database_path, etype="all", tables=DEV.tables, executor=executor)
    assert [s.excluded for s in scored] == [True, True, True, False]
    assert "nowhere" in scored[0].error and "wta_1" in scored[2].error and "missing" in scored[2].error


def run(*args, cwd):
    command = Path(sys.executable).parent/"reasonforge"  # the console script pip installed next to this Python
    return subprocess.run([str(command), *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_evaluate_reports_every_unreadable_gold_line(tmp_path):
    cases = fuzzed_gold(80, 2)
    lines = [f"{sql.replace(chr(10), ' ').replace(chr(13), ' ')}\t{db_id}" for sql, db_id, _ in cases]
    lines += ['SELECT Code FROM country WHERE GovernmentForm ! =  "Republic"\tworld_1', "\tconcert_singer", "   \tpets_1"]
    (tmp_path/"gold.sql").write_text("\n".join(lines) + "\n")
    (tmp_path/"pred.sql").write_text("".join(f"{original}\n" for _, _, original in cases) + "SELECT 1\n" * 3)
    result = run("evaluate", "--gold", "gold.sql", "--pred", "pred.sql", "--db", SPIDER/"database", "--table", SPIDER/"tables.json",
                 "--etype", "all", "--out", "report.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    report = json.loads((tmp_path/"report.json").read_text())
    examples = report["examples"]
    assert [e["gold_line"] for e in examples] == list(range(1, len(lines) + 1))
    for example in examples:
        if example["hardness"] == UNKNOWN_HARDNESS or (example["exact_match"] is None and not example["excluded"]):
            assert example["gold_problem"], example
        if example["excluded"]: assert example["error"], example
    assert report["summary"].get("gold_problems", 0) == sum(e["gold_problem"] is not None for e in examples) > 0
    spaced, empty, blank = examples[-3:]
    assert (spaced["hardness"], spaced["excluded"], spaced["gold_problem"]) == ("easy", False, None)
    assert empty["excluded"] and blank["excluded"] and "empty" in empty["error"] and "hardness" in blank["gold_problem"]
    if report["summary"].get("gold_problems"): assert "gold problems:" in result.stdout


@pytest.mark.parametrize("gold, predictions, message", [
    ("SELECT 1\tconcert_singer\nSELECT 2 concert_singer\n", "a\nb\n", "gold.sql line 2: expected 'SQL<TAB>db_id', found no tab"),
    ("SELECT 1\tconcert_singer\nSELECT 2\t  \n", "a\nb\n", "gold.sql line 2: expected 'SQL<TAB>db_id', found no db_id after its tab"),
    ("SELECT 1\tconcert_singer\nSELECT 2\tatlantis\n", "a\nb\n", "gold.sql, line 2: unknown db_id 'atlantis'"),
    ("\n\n  \n", "", "gold.sql: contains no gold queries"),
    (b"SELECT 1\tconcert_singer\nSELECT '\xe9'\tconcert_singer\n", "a\nb\n", "gold.sql line 2: not UTF-8 text"),
    ("SELECT 1\tconcert_singer\n\nSELECT 2\tconcert_singer\n", "a\nb\nc\n", "gold.sql has 2 sessions"),
    ("SELECT 1\tconcert_singer\nSELECT 2\tconcert_singer\n\nSELECT 3\tconcert_singer\n", "a\n\nb\nc\n",
     "session 1: gold.sql lines 1-2 hold 2 gold queries but pred.sql lines 1-1 hold 1 predictions"),
    ("SELECT 1\tconcert_singer\n", "a\nb\n", "pred.sql has 2 lines but the gold has 1"),
])
def test_a_broken_gold_file_is_one_line_naming_file_and_line(tmp_path, gold, predictions, message):
    (tmp_path/"gold.sql").write_bytes(gold if isinstance(gold, bytes) else gold.encode())
    (tmp_path/"pred.sql").write_text(predictions)
    result = run("evaluate", "--gold", "gold.sql", "--pred", "pred.sql", "--db", SPIDER/"database", "--table", SPIDER/"tables.json",
                 cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_session_files_and_line_ends_read_as_officially(tmp_path):
    "Blank lines separate sessions in both files; CRLF, a lone CR and a byte-order mark end lines as Python's readlines does."
    (tmp_path/"gold.sql").write_bytes("\ufeffSELECT count(*) FROM singer\tconcert_singer\r\n\r\n".encode()
                                      + b"SELECT name FROM singer WHERE age > = 40\tconcert_singer\rSELECT count(*) FROM concert\tconcert_singer\n\n\n")
    (tmp_path/"pred.sql").write_text("SELECT count(*) FROM singer\n\nSELECT name FROM singer WHERE age >= 40\nSELECT count(*) FROM stadium\n\n")
    result = run("evaluate", "--gold", "gold.sql", "--pred", "pred.sql", "--db", SPIDER/"database", "--table", SPIDER/"tables.json",
                 "--etype", "all", "--out", "report.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    examples = json.loads((tmp_path/"report.json").read_text())["examples"]
    assert [(e["gold_line"], e["exec_match"], e["exact_match"]) for e in examples] == [(1, True, True), (3, True, True), (4, False, False)]


def test_sampled_and_dev_prediction_summaries_report_unreadable_golds(executor):
    "The loop's own metrics take gold queries through `gold_hardness` too: an unreadable one is reported, never raised."
    from dataclasses import replace
    from reasonforge.evaluate import DevPrediction, dev_predictions, greedy_summary, sample_summaries
    from reasonforge.generate import Candidate
    gold_sqls = ["SELECT count(*) FROM singer", "SELECT name FROM singer WHERE singer_id NOT IN ()", "SELEC name FROM singer"]
    concert = DEV.database_path("concert_singer")
    verdicts = executor.verify([(concert, gold, gold) for gold in gold_sqls for _ in range(2)])
    per_question = [verdicts[2 * i:2 * i + 2] for i in range(3)]
    summaries = sample_summaries([(gold, "concert_singer") for gold in gold_sqls], per_question)
    voted = summaries["self_consistency"]
    assert (voted["gold_problems"], voted["by_hardness"]["unknown"]["count"], voted["evaluated"]) == (2, 2, 2)
    questions = [replace(q, gold_sql=gold) for q, gold in zip([q for q in DEV.usable if q.db_id == "concert_singer"][:3], gold_sqls)]
    answer = Candidate.from_text("SELECT 1", 0, 0)
    rows = dev_predictions(questions, {q.index: (answer, v[0]) for q, v in zip(questions, per_question)})
    assert [(r.hardness, r.excluded, r.gold_problem is not None) for r in rows] == [("easy", False, False), ("unknown", False, True),
                                                                                   ("unknown", True, True)]
    assert "gold_problem" not in rows[0].to_json() and DevPrediction.from_json(json.loads(json.dumps(rows[1].to_json()))) == rows[1]
    assert greedy_summary(rows)["gold_problems"] == 2
