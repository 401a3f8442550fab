"Sampling past one GPU: prompts sharded over engine replicas and merged back (order, seeds, a dead replica resumed), engine layouts."
from pathlib import Path

import pytest

from reasonforge.core import ReasonForgeError
from reasonforge.engines import DataParallelBackend, VLLMBackend, merge_shards, replica_plan, shard_indices, vllm_backend
from reasonforge.generate import SamplingSettings, TransformersBackend


def test_shards_are_contiguous_balanced_and_merge_back():
    assert shard_indices(10, 4) == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]
    assert shard_indices(0, 3) == [[], [], []]
    for count in range(30):
        for replicas in (1, 2, 3, 8):
            blocks = shard_indices(count, replicas)
            assert sum(blocks, []) == list(range(count))
            assert merge_shards(blocks, [[f"r{i}" for i in block] for block in blocks]) == [f"r{i}" for i in range(count)]
    with pytest.raises(ReasonForgeError, match="data_parallel_size=0"): shard_indices(3, 0)


def test_replica_layouts():
    plan = replica_plan(2, tensor_parallel_size=2, pipeline_parallel_size=2, max_model_len=8192)
    assert [p["cuda_visible_devices"] for p in plan] == ["0,1,2,3", "4,5,6,7"] and [p["gpus"] for p in plan] == [4, 4]
    args = plan[1]["engine_args"]
    assert (args["tensor_parallel_size"], args["pipeline_parallel_size"], args["max_model_len"], args["dtype"]) == (2, 2, 8192, "bfloat16")
    assert "distributed_executor_backend" not in args and "tensor_parallel_size" not in replica_plan(1)[0]["engine_args"]
    ray = replica_plan(4, tensor_parallel_size=2, distributed_executor_backend="ray")
    assert [p["cuda_visible_devices"] for p in ray] == [None] * 4 and ray[0]["engine_args"]["distributed_executor_backend"] == "ray"
    for bad, message in ((dict(data_parallel_size=0), "data_parallel_size=0"), (dict(tensor_parallel_size=1.5), "tensor_parallel_size=1.5"),
                         (dict(pipeline_parallel_size=True), "pipeline_parallel_size=True"),
                         (dict(distributed_executor_backend="slurm"), "slurm")):
        with pytest.raises(ReasonForgeError, match=message): replica_plan(**bad)


def test_vllm_backend_builds_replicas_without_starting_them(tmp_path):
    model = tmp_path/"model"; model.mkdir()
    (model/"config.json").write_text("{}"); (model/"model.safetensors").write_bytes(b"w")
    single = vllm_backend(model, cache_folder=tmp_path/"cache", max_model_len=4096)
    assert isinstance(single, VLLMBackend) and single.options["cuda_visible_devices"] is None
    backend = vllm_backend(model, data_parallel_size=2, tensor_parallel_size=2, cache_folder=tmp_path/"cache")
    assert isinstance(backend, DataParallelBackend) and not backend.engine_started
    assert [r.options["cuda_visible_devices"] for r in backend.replicas] == ["0,1", "2,3"]
    assert all(r.options["tensor_parallel_size"] == 2 for r in backend.replicas)
    # the parallel layout is not part of the cache key: one engine and four replicas share their cached candidates
    assert backend.sampler_identity() == single.sampler_identity() and backend.name == single.name == "vllm"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    pytest.importorskip("transformers")
    from reasonforge.train import build_tiny_model
    from reasonforge.data import find_spider_dir, load_spider
    questions = load_spider(find_spider_dir(), "dev").usable[:200]
    folder = build_tiny_model(tmp_path_factory.mktemp("tiny")/"model", [q.question for q in questions] + [q.gold_sql for q in questions],
                              vocab_size=400, hidden_size=32)
    return folder, questions


class Dying(TransformersBackend):
    "A replica whose engine dies (as a killed vLLM child does) once it has sampled `groups` groups."
    def __init__(self, *args, groups=1, **kwargs):
        super().__init__(*args, **kwargs)
        self.groups, self.sampled = groups, 0
    def _sample(self, prompts, settings, seeds):
        if self.sampled >= self.groups: raise RuntimeError("engine child process died (exit code -9)")
        self.sampled += 1
        return super()._sample(prompts, settings, seeds)


def test_sharded_equals_unsharded_and_a_dead_replica_resumes(tiny_model, tmp_path):
    "Real sampling (transformers, a tiny random model, real Spider questions): 3 replicas return one engine's candidates in"
    " the caller's order; a replica that dies leaves the others' groups cached, and the rerun samples only what it left."
    model, questions = tiny_model
    settings = SamplingSettings(k=3, temperature=1.0, max_tokens=8, seed=11)
    with TransformersBackend(model, use_cache=False) as one:
        prompts = [one.prompt("", q.question) for q in questions[:9]] + [one.prompt("", questions[2].question)]  # one duplicate
        single = one.generate(prompts, settings)
    texts = lambda results: [[c.text for c in cands] for cands in results]
    assert len({tuple(t) for t in texts(single)}) > 1  # the sampler really samples
    with DataParallelBackend([TransformersBackend(model, cache_folder=tmp_path/"a", group_size=2) for _ in range(3)]) as sharded:
        assert texts(sharded.generate(prompts, settings)) == texts(single)
        assert sharded.stats["prompts_per_replica"] == [3, 3, 3]
    replicas = [TransformersBackend(model, cache_folder=tmp_path/"b", group_size=2), Dying(model, cache_folder=tmp_path/"b", group_size=2),
                TransformersBackend(model, cache_folder=tmp_path/"b", group_size=2)]
    with DataParallelBackend(replicas) as dying, pytest.raises(RuntimeError, match="engine replica 1 of 3 failed.*rerun"):
        dying.generate(prompts, settings)
    with DataParallelBackend([TransformersBackend(model, cache_folder=tmp_path/"b") for _ in range(2)]) as resumed:
        assert texts(resumed.generate(prompts, settings)) == texts(single)
        assert resumed.stats["sampled_prompts"] == 1  # replica 1 finished one group of 2 of its 3 prompts
    with TransformersBackend(model, cache_folder=tmp_path/"b") as cached:  # one engine reads what the replicas cached
        assert texts(cached.generate(prompts, settings)) == texts(single) and not cached.engine_started


def test_replicas_must_sample_alike(tiny_model, tmp_path):
    model, _ = tiny_model
    with pytest.raises(ReasonForgeError, match="sample alike"):
        DataParallelBackend([TransformersBackend(model, dtype="float32"), TransformersBackend(model, dtype="bfloat16")])
    with pytest.raises(ReasonForgeError, match="at least one"): DataParallelBackend([])


CONFIGS = Path(__file__).parents[1]/"configs"
BLOCK_ENGINES = "import sys\nfor name in ('vllm', 'unsloth', 'torch', 'transformers', 'peft', 'trl'): sys.modules[name] = None\n"


def _dry_run(*args):
    import subprocess, sys
    code = BLOCK_ENGINES + "from reasonforge.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, "run", *args], capture_output=True, text=True, timeout=120)


def test_dry_run_prints_the_8gpu_plan_without_engines(tmp_path):
    "The 8-GPU config's plan, printed with vLLM, Unsloth, torch and transformers unimportable; no run folder is made."
    result = _dry_run("--config", str(CONFIGS/"spider-ministral8b-8gpu.yaml"), "--run-dir", str(tmp_path/"run"), "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "engine: vllm, 8 replica(s), 8 GPU(s) in all" in out and "replica 7: CUDA_VISIBLE_DEVICES=7 " in out
    assert "iteration_3/evaluate" in out and "x k=8 = 55,232 candidates" in out
    assert "--num_processes 8" in out and "training: peft, 8 process(es), effective batch 16" in out
    assert not (tmp_path/"run").exists()
    single = _dry_run("--config", str(CONFIGS/"spider-ministral8b.yaml"), "--run-dir", str(tmp_path/"one"), "--dry-run")
    assert single.returncode == 0 and "1 replica(s), 1 GPU(s)" in single.stdout and "training: unsloth, 1 process(es)" in single.stdout


def test_parallel_config_errors_are_one_line(tmp_path):
    text = (CONFIGS/"spider-ministral8b-8gpu.yaml").read_text()
    for change, message in ((("data_parallel_size: 8", "data_parallel_size: 0"), "engine.data_parallel_size: must be at least 1"),
                            (("distributed_executor_backend: null", "distributed_executor_backend: slurm"), "must be 'ray', 'mp' or null"),
                            (("backend: peft ", "backend: unsloth "), "use backend='peft' for DDP"),
                            (("backend: vllm", "backend: transformers"), "needs backend: vllm")):
        assert change[0] in text, change
        bad = tmp_path/"bad.yaml"
        bad.write_text(text.replace(change[0], change[1], 1))
        result = _dry_run("--config", str(bad), "--dry-run")
        assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
