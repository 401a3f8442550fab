"Decoding that respects the database: the options, their place in cache keys and records, and real constrained runs."
import dataclasses, json, subprocess, sys
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from reasonforge.core import ReasonForgeError
from reasonforge.data import find_spider_dir, load_spider
from reasonforge.errors import execution_error_split, execution_error_table
from reasonforge.evaluate import DevPrediction
from reasonforge.execute import SQLExecutor
from reasonforge.generate import GREEDY, Candidate, GenerationBackend, SampledQuestion, SamplingSettings, prompt_key
from reasonforge.harvest import HarvestQuestion, build_training_rows, harvest_question, HarvestSettings
from reasonforge.decoding import Decoding, PromptedQuestions, first_executable, repair_candidates
from conftest import needs_engines

SPIDER = find_spider_dir()


@pytest.fixture(scope="module")
def dev():
    return load_spider(SPIDER, "dev", check_schemas=False)


def test_decoding_options_are_checked_and_labelled():
    assert Decoding().label() == "greedy"
    assert Decoding(select="first_executable").label() == "EG@5"  # greedy and 4 samples of its own
    assert Decoding(select="first_executable").label(k=16) == "EG@17"  # or the self-consistency samples
    assert Decoding("schema", "greedy", 1).label() == "greedy+schema+repair"
    for bad, words in [(dict(constrain="tables"), "constrain: 'tables'"), (dict(select="best"), "select: 'best'"),
                       (dict(repair=3), "repair: 3"), (dict(samples=0), "samples: 0")]:
        with pytest.raises(ReasonForgeError, match=words): Decoding(**bad)
    assert Decoding(constrain="schema").as_dict()["grammar_version"] is not None
    assert Decoding().as_dict()["grammar_version"] is None


def test_a_grammar_is_part_of_the_cache_key():
    sampler = {"backend": "x"}
    free, constrained = prompt_key(sampler, GREEDY, "p"), prompt_key(sampler, GREEDY, "p", "root ::= \"a\"")
    assert free != constrained != prompt_key(sampler, GREEDY, "p", "root ::= \"b\"")
    assert prompt_key(sampler, GREEDY, "p", None) == free  # unconstrained keys are those of earlier caches


class Recording(GenerationBackend):
    "A backend that records the grammars it was asked to sample under."
    name = "recording"
    def __init__(self, tmp):
        self.model_dir, self.use_cache, self.group_size, self.progress = Path("."), True, 8, False
        self.cache_root, self.engine_started, self.stats, self._tokenizer, self._bar = tmp, False, {}, None, None
        self.calls = []
    def sampler_identity(self): return {"backend": self.name}
    def _sample(self, prompts, settings, seeds, grammars=None):
        self.calls.append(grammars)
        return [[Candidate.from_text(f"SELECT {len(g or '')}", 1, 1)] for g in (grammars or [None] * len(prompts))]


def test_grammars_reach_the_engine_and_cached_answers_never_mix(tmp_path):
    backend = Recording(tmp_path)
    free = backend.generate(["a", "b"], GREEDY)
    assert backend.calls == [None]  # no grammar: the engine is called as before
    constrained = backend.generate(["a", "b"], GREEDY, ["g1", None])
    assert backend.calls[-1] == ["g1"]  # "b" without a grammar is the same request as before: from the cache
    assert constrained[0][0].sql == "SELECT 2" and free[0][0].sql == "SELECT 0"
    assert backend.generate(["a", "b"], GREEDY, ["g1", None])[0][0].sql == "SELECT 2"  # from the cache
    assert len(backend.calls) == 2
    with pytest.raises(ReasonForgeError, match="1 grammars for 2 prompts"): backend.generate(["a", "b"], GREEDY, ["g"])


def test_repaired_candidates_survive_candidates_jsonl():
    repaired = Candidate.from_text("SELECT 1", 3, 2)
    repaired.repair_of = {"sql": "SELECT x", "error": "no such column: x"}
    record = SampledQuestion(1, "db", "q", "SELECT 1", [], [Candidate.from_text("SELECT 2", 3, 2), repaired])
    back = SampledQuestion.from_json(json.loads(json.dumps(record.to_json())))
    assert [c.repair_of for c in back.candidates] == [None, repaired.repair_of]
    plain = SampledQuestion(1, "db", "q", "SELECT 1", [], [Candidate.from_text("SELECT 2", 3, 2)]).to_json()
    assert "repairs" not in plain  # files of runs without repair do not change


def test_harvest_marks_repaired_rows_as_a_third_source():
    question = HarvestQuestion(0, "db", "q", "SELECT 1", [{"role": "user", "content": "q"}],
                               ["SELECT a FROM t", "SELECT a FROM t", "SELECT b FROM t", "SELECT c FROM t"],
                               [True, True, True, False], [False, True, True, False])
    harvest = harvest_question(question)
    assert harvest.distinct_correct == ["SELECT a FROM t", "SELECT b FROM t"] and harvest.sources == ["self", "repaired"]
    rows, stats = build_training_rows([harvest], HarvestSettings())
    assert stats["rows_by_source"] == {"self": 1, "repaired": 1}


def test_execution_error_split_on_real_schemas(dev):
    cars = dev.tables["car_1"]
    assert execution_error_split("schema", "no such column: T1.Year", cars) == "column_of_another_table"
    assert execution_error_split("schema", "no such column: Horsepowerz", cars) == "column_not_in_database"
    assert execution_error_split("schema", "no such table: car_data", cars) == "unknown_table"
    assert execution_error_split("syntax", 'near "SELEC": syntax error', cars) == "syntax"
    assert execution_error_split("syntax", "parser stack overflow", cars) == "other"
    rows = [DevPrediction(0, "car_1", "easy", "q", "g", "s", exec_match=False, error_kind="schema",
                          error="no such column: Year"), DevPrediction(1, "car_1", "easy", "q", "g", "s", exec_match=True),
            DevPrediction(2, "car_1", "easy", "q", "g", "s", exec_match=False)]
    table = execution_error_table(rows, dev.tables)
    assert table.loc["column_of_another_table", "count"] == 1 and table.loc["wrong_result", "count"] == 1
    assert table.attrs == {"wrong": 2, "scored": 3}


class Fixer:
    "A stand-in backend: a repair prompt gets the question's gold query back."
    class tokenizer:
        @staticmethod
        def apply_chat_template(messages, tokenize=False, add_generation_prompt=True):
            return json.dumps(messages)
    def __init__(self, golds): self.golds, self.prompts = golds, []
    def generate(self, prompts, settings, grammars=None):
        self.prompts += prompts
        return [[Candidate.from_text(next(g for q, g in self.golds.items() if q in p), 1, 1)] for p in prompts]


def test_repair_sends_sqlites_error_and_records_what_it_repaired(dev):
    questions = [q for q in dev.questions if not q.excluded][:2]
    backend = Fixer({q.question: q.gold_sql for q in questions})
    broken = {questions[0].index: [Candidate.from_text("SELECT Nmae FROM singer", 1, 1),
                                   Candidate.from_text(questions[0].gold_sql, 1, 1)],
              questions[1].index: [Candidate.from_text("", 1, 1)]}  # no SQL: nothing to repair
    with SQLExecutor(workers=1) as executor:
        prompted = PromptedQuestions(questions, ["schema"] * 2, [q.question for q in questions])
        fixed, count = repair_candidates(backend, executor, prompted, broken, GREEDY, tables=dev.tables)
    assert count == 1 and "no such column: Nmae" in backend.prompts[0]
    assert "No table of this database has a column named Nmae." in backend.prompts[0]  # the schema's hint
    assert fixed[questions[0].index][0].sql == questions[0].gold_sql
    assert fixed[questions[0].index][0].repair_of == {"sql": "SELECT Nmae FROM singer", "error": "no such column: Nmae"}
    assert fixed[questions[0].index][1] is broken[questions[0].index][1] and fixed[questions[1].index][0].sql == ""


def test_first_executable_takes_the_most_likely_that_runs(dev):
    q = next(q for q in dev.questions if not q.excluded)
    greedy = Candidate("", "SELECT Nmae FROM singer", 1, 1)
    samples = [Candidate("", "SELECT count(*) FROM singer WHERE 0", 1, 1, logprob=-4.0),
               Candidate("", "SELECT Agee FROM singer", 1, 1, logprob=-0.1),
               Candidate("", q.gold_sql, 1, 1, logprob=-1.0)]
    with SQLExecutor(workers=1) as executor:
        chosen, changed = first_executable(executor, [q], {q.index: greedy}, {q.index: samples})
        assert chosen[q.index].sql == q.gold_sql and changed == 1
        kept, _ = first_executable(executor, [q], {q.index: greedy}, {q.index: samples[1:2]})
        assert kept[q.index] is greedy  # none runs: greedy stays


def test_predict_refuses_bad_decoding_flags(tmp_path):
    command = Path(sys.executable).parent/"reasonforge"
    result = subprocess.run([str(command), "predict", "--spider-dir", str(SPIDER), "--out", str(tmp_path/"o"),
                             "--constrain", "tables"], capture_output=True, text=True)
    assert result.returncode == 2 and "--constrain: invalid choice: 'tables'" in result.stderr


def names_outside(sql:str, schema)->list:
    "Tables and columns of a query that its database does not have (aliases of its own FROM and SELECT allowed)."
    tables = {t.lower() for t in schema.table_names}
    columns = {c.lower() for _, c in schema.column_names}
    tree = sqlglot.parse_one(sql, read="sqlite")
    aliases = {a.alias.lower() for a in tree.find_all(exp.Alias)} | {t.alias.lower() for t in tree.find_all(exp.Table)
                                                                      if t.alias}
    wrong = [t.name for t in tree.find_all(exp.Table) if t.name.lower() not in tables]
    wrong += [c.name for c in tree.find_all(exp.Column) if c.name.lower() not in columns | aliases and c.name != "*"]
    wrong += [c.table for c in tree.find_all(exp.Column) if c.table and c.table.lower() not in tables | aliases]
    return wrong


@needs_engines
def test_predict_with_the_schema_grammar_writes_only_the_databases_names(tmp_path, dev):
    command = Path(sys.executable).parent/"reasonforge"
    out = tmp_path/"constrained"
    result = subprocess.run([str(command), "predict", "--spider-dir", str(SPIDER), "--subset", "12", "--seed", "5",
                             "--k", "1", "--constrain", "schema", "--select", "first_executable", "--repair", "1",
                             "--max-tokens", "160", "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "answers: EG@5+schema+repair" in result.stdout and (out/"eg@5.sql").is_file()
    report = json.loads((out/"report.json").read_text())
    assert report["settings"]["decoding"]["constrain"] == "schema" and report["summary"]["answers"] == "EG@5+schema+repair"
    rows = [json.loads(line) for line in (out/"candidates.jsonl").open()]
    assert len(rows) == 12
    # an answer cut at --max-tokens can end inside a name: only finished answers are whole queries
    finished = [row for row in rows if not row["excluded"] and row["greedy"]["finish_reason"] == "stop"]
    assert len(finished) >= 8, [row["greedy"]["finish_reason"] for row in rows]
    for row in finished:
        sql = row["greedy"]["sql"]
        assert sql and not names_outside(sql, dev.tables[row["db_id"]]), (row["db_id"], sql)


@needs_engines
def test_the_transformers_backend_follows_the_grammar_too(tmp_path, dev):
    "xgrammar's logits processor for transformers: the same constraint as vLLM's structured outputs."
    command = Path(sys.executable).parent/"reasonforge"
    out = tmp_path/"transformers"
    result = subprocess.run([str(command), "predict", "--spider-dir", str(SPIDER), "--subset", "3", "--seed", "11",
                             "--k", "1", "--constrain", "schema", "--backend", "transformers", "--max-tokens", "96",
                             "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    from reasonforge.grammar import database_grammar, grammar_accepts
    for row in map(json.loads, (out/"candidates.jsonl").open()):
        if row["excluded"] or row["greedy"]["finish_reason"] != "stop": continue
        assert grammar_accepts(database_grammar(dev, row["db_id"]), row["greedy"]["text"]), row["greedy"]["text"]
