"Sampling interface, candidate cache and the sample stage's record (`reasonforge.generate`), vLLM options (`reasonforge.engines`), without starting an engine, plus one greedy transformers run."
import json, subprocess, sys
from pathlib import Path

import pytest

from conftest import needs_engines

from reasonforge.core import ReasonForgeError
from reasonforge.engines import VLLMBackend, _vllm_engine_options
from reasonforge.generate import (GREEDY, Candidate, CandidateCache, GenerationBackend, SampledQuestion, SamplingSettings,
                                  TransformersBackend, request_seed)


class Echo(GenerationBackend):
    "Answers every prompt with its own last line; counts what it samples."
    name = "echo"
    def __init__(self, cache_folder, model_dir, fail_on=None):
        super().__init__(model_dir, cache_folder, group_size=2)
        self.sampled, self.fail_on = [], fail_on
    def _sample(self, prompts, settings, seeds):
        if self.fail_on and self.fail_on in prompts: raise RuntimeError("killed")
        self.sampled += prompts
        return [[Candidate.from_text(f"SELECT {seed % 97 + i} FROM t", 3, 4, "stop") for i in range(settings.k)]
                for prompt, seed in zip(prompts, seeds)]


@pytest.fixture
def model_dir(tmp_path):
    folder = tmp_path/"model"
    folder.mkdir()
    (folder/"config.json").write_text("{}")
    (folder/"model.safetensors").write_bytes(b"weights")
    return folder


def test_settings_validation_and_record():
    assert SamplingSettings(k=2).as_dict()["k"] == 2
    assert GREEDY.greedy and GREEDY.k == 1
    for bad in ({"k": 0}, {"temperature": -1}, {"top_p": 0}, {"max_tokens": 0}):
        with pytest.raises(ReasonForgeError):
            SamplingSettings(**bad)
    assert request_seed(SamplingSettings(seed=3), "p") == request_seed(SamplingSettings(seed=3, k=9), "p")
    assert request_seed(SamplingSettings(seed=3), "p") != request_seed(SamplingSettings(seed=4), "p")


def test_order_k_and_resume(tmp_path, model_dir):
    prompts = [f"prompt {c}" for c in "dbecafd"]  # one duplicate
    crashed = Echo(tmp_path/"cache", model_dir, fail_on="prompt e")
    with pytest.raises(RuntimeError, match="killed"):
        crashed.generate(prompts, SamplingSettings(k=3))
    assert crashed.sampled == ["prompt a", "prompt b", "prompt c", "prompt d"]  # sorted; two groups done
    resumed = Echo(tmp_path/"cache", model_dir)
    results = resumed.generate(prompts, SamplingSettings(k=3))
    assert resumed.sampled == ["prompt e", "prompt f"]
    assert [len(r) for r in results] == [3] * 7
    assert results[0] == results[-1]  # the duplicate prompt is sampled once
    seed = request_seed(SamplingSettings(k=3), "prompt b")
    assert results[1][0].sql == f"SELECT {seed % 97} FROM t"  # caller's order kept
    again = Echo(tmp_path/"cache", model_dir)
    assert again.generate(prompts, SamplingSettings(k=3)) == results and again.sampled == [] and not again.engine_started


def test_cache_lines_record_settings(tmp_path, model_dir):
    backend = Echo(tmp_path/"cache", model_dir)
    backend.generate(["only prompt"], SamplingSettings(k=2, temperature=0.5, seed=7))
    lines = [json.loads(l) for f in (tmp_path/"cache").rglob("*.jsonl") for l in f.read_text().splitlines()]
    assert len(lines) == 1
    assert lines[0]["settings"] == {"k": 2, "temperature": 0.5, "top_p": 1.0, "max_tokens": 256, "seed": 7, "stop": ["```"]}
    assert lines[0]["sampler"]["backend"] == "echo" and len(lines[0]["candidates"]) == 2


def test_new_weights_invalidate_the_cache(tmp_path, model_dir):
    Echo(tmp_path/"cache", model_dir).generate(["p"], GREEDY)
    (model_dir/"model.safetensors").write_bytes(b"new weights!")
    changed = Echo(tmp_path/"cache", model_dir)
    changed.generate(["p"], GREEDY)
    assert changed.sampled == ["p"]


def test_cache_ignores_a_torn_line(tmp_path):
    cache = CandidateCache(tmp_path)
    cache.write_batch("b", [{"key": "k1", "candidates": [{"text": "SELECT 1", "sql": "SELECT 1", "prompt_tokens": 1, "completion_tokens": 2}]}])
    with open(tmp_path/"b.jsonl", "a") as f: f.write('{"key": "k2", "candid')
    reopened = CandidateCache(tmp_path)
    assert "k1" in reopened and "k2" not in reopened and reopened.get("k1")[0].sql == "SELECT 1"


FIXTURE_CANDIDATES = Path(__file__).parents[1]/"nbs"/"fixtures"/"tiny-run"/"iteration_1"/"sample"/"candidates.jsonl"


def test_sampled_question_reads_the_fixture_and_round_trips():
    "The tiny-run fixture's candidates.jsonl (no token counts) reads and writes back unchanged; a fresh record keeps everything."
    rows = [json.loads(line) for line in FIXTURE_CANDIDATES.read_text(encoding="utf-8").splitlines()]
    records = [SampledQuestion.from_json(row) for row in rows]
    assert [r.to_json() for r in records] == rows and all(len(r.candidates) == 2 for r in records)
    assert records[0].sqls == rows[0]["candidates"] and records[0].candidates[0].text == rows[0]["outputs"][0]
    assert records[0].candidates[0].prompt_tokens is None and records[0].candidates[1].finish_reason == rows[0]["finish_reasons"][1]
    fresh = SampledQuestion(3, "concert_singer", "How many singers?", "SELECT count(*) FROM singer", [{"role": "user", "content": "q"}],
                            [Candidate.from_text("SELECT count(*) FROM singer;\n", 812, 9, "stop"), Candidate.from_text("no query", 812, 256, "length")])
    line = fresh.to_json()
    assert (line["prompt_tokens"], line["completion_tokens"], line["candidates"]) == (812, [9, 256], ["SELECT count(*) FROM singer", ""])
    assert SampledQuestion.from_json(json.loads(json.dumps(line))) == fresh


def test_sampled_question_refuses_a_broken_line():
    row = SampledQuestion(5, "db", "q", "SELECT 1", [], [Candidate.from_text("SELECT 1", 1, 1, "stop")]).to_json()
    with pytest.raises(ReasonForgeError, match="question 5: no gold_sql"):
        SampledQuestion.from_json({k: v for k, v in row.items() if k != "gold_sql"})
    with pytest.raises(ReasonForgeError, match="question 5: 1 outputs but 2 candidates"):
        SampledQuestion.from_json({**row, "candidates": ["SELECT 1", "SELECT 2"]})


def test_engine_options_per_device():
    cpu = _vllm_engine_options("cpu", {})
    assert cpu["dtype"] == "float32" and cpu["enforce_eager"] and cpu["max_num_seqs"] == 64 and cpu["enable_prefix_caching"]
    assert cpu["block_size"] == 32 and cpu["disable_log_stats"] is False  # a fine prefix-cache grain; counters kept
    assert cpu["enable_chunked_prefill"] is False and cpu["max_num_batched_tokens"] == cpu["max_model_len"] == 8192
    assert _vllm_engine_options("cpu", {"max_model_len": 3000})["max_num_batched_tokens"] == 3000
    gpu = _vllm_engine_options("cuda", {})
    assert gpu["dtype"] == "bfloat16" and "max_num_seqs" not in gpu and "enforce_eager" not in gpu
    assert _vllm_engine_options("cuda", {"lora_adapter": "/a"})["enable_lora"]


def test_missing_adapter_is_a_user_error(tmp_path, model_dir):
    with pytest.raises(ReasonForgeError, match="no-adapter"):
        VLLMBackend(model_dir, lora_adapter=tmp_path/"no-adapter")


def test_library_import_stays_light():
    code = "import sys, reasonforge.generate, reasonforge.engines; print([m for m in ('torch', 'vllm', 'transformers') if m in sys.modules])"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_transformers_greedy_answers_a_real_question(tmp_path):
    from reasonforge.data import find_spider_dir, load_spider
    spider = load_spider(find_spider_dir(), "dev")
    question = spider.usable[0]  # How many singers do we have?
    with TransformersBackend(cache_folder=tmp_path) as backend:
        prompt = backend.prompt(spider.schema_prompt(question.db_id), question.question)
        [[candidate]] = backend.generate([prompt], SamplingSettings(k=1, temperature=0, max_tokens=32))
    assert candidate.sql.lower() == question.gold_sql.lower()
    assert candidate.finish_reason == "stop" and "```" not in candidate.text
    assert candidate.prompt_tokens > 100 and 0 < candidate.completion_tokens < 32


@needs_engines
def test_vllm_seeded_group_longer_than_one_engine_step():
    "Twelve seeded prompts in one call (about 10k prompt tokens, more than vLLM's default step) sample without the CPU crash."
    from reasonforge.data import find_spider_dir, load_spider
    spider = load_spider(find_spider_dir(), "dev")
    questions = [spider.usable[i] for i in range(0, 960, 80)]
    settings = SamplingSettings(k=2, temperature=0.7, max_tokens=24, seed=5)
    with VLLMBackend(use_cache=False, group_size=12) as backend:
        prompts = [backend.prompt(spider.schema_prompt(q.db_id), q.question) for q in questions]
        first = backend.generate(prompts, settings)
        assert backend.stats["sampled_prompts"] == 12
        backend.group_size = 5  # other groups, another order: each prompt's seed alone decides its candidates
        again = backend.generate(prompts[::-1], settings)[::-1]
    assert sum(c[0].prompt_tokens for c in first) > 4096
    assert [len(c) for c in first] == [2] * 12
    assert [[c.text for c in cands] for cands in again] == [[c.text for c in cands] for cands in first]
