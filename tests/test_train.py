"Tests of reasonforge.train on a tiny random model: masking, both backends, resume after a kill, refusals."
import json, os, time
from pathlib import Path

import pytest

from reasonforge.core import ReasonForgeError
from reasonforge.data import find_spider_dir, load_spider
from reasonforge.harvest import gold_sft_rows, write_training_set
from reasonforge.train import (IGNORE_INDEX, TrainSettings, build_tiny_model, start_training, tokenize_row,
                               tokenize_rows, train_lora, wait_for_training)

pytest.importorskip("torch")
pytest.importorskip("trl")


def short_prompt(question):
    "A prompt without the schema, so rows stay short and the tiny runs fast."
    return [{"role": "system", "content": "Write SQLite SQL."}, {"role": "user", "content": question.question}]


@pytest.fixture(scope="module")
def spider_rows():
    questions = [q for q in load_spider(find_spider_dir(), "train").questions if q.db_path is not None][:400]
    return questions


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, spider_rows):
    folder = tmp_path_factory.mktemp("tiny")
    model = build_tiny_model(folder/"base", [q.question for q in spider_rows] + [q.gold_sql for q in spider_rows])
    data = write_training_set(gold_sft_rows(spider_rows[:64], short_prompt), {}, folder/"train.jsonl")
    return model, data


def settings(**changes):
    base = dict(max_steps=4, per_device_batch_size=2, gradient_accumulation_steps=2, max_length=256,
                learning_rate=5e-3, save_steps=2, save_total_limit=10)
    return TrainSettings(**{**base, **changes})


def test_labels_cover_exactly_the_sql_and_end_of_turn(tiny, spider_rows):
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(tiny[0])
    for row in gold_sft_rows(spider_rows[:20], short_prompt):
        example = tokenize_row(row, tokenizer)
        labelled = [t for t, label in zip(example["input_ids"], example["labels"]) if label != IGNORE_INDEX]
        assert tokenizer.decode(labelled) == row["sql"] + "\n```<|im_end|>"
        assert tokenizer.decode(example["input_ids"]) == tokenizer.apply_chat_template(row["messages"], tokenize=False).rstrip()
        first = example["labels"].index(next(l for l in example["labels"] if l != IGNORE_INDEX))
        assert all(label == IGNORE_INDEX for label in example["labels"][:first])
        assert all(label != IGNORE_INDEX for label in example["labels"][first:])
    kept, counts = tokenize_rows(gold_sft_rows(spider_rows[:20], short_prompt), tokenizer, max_length=40)
    assert counts["examples"] + counts["dropped_too_long"] == 20 and counts["dropped_too_long"] > 0
    assert all(len(e["input_ids"]) <= 40 for e in kept)


def test_both_backends_see_the_same_first_batch(tiny, tmp_path):
    model, data = tiny
    unsloth = train_lora(model, data, tmp_path/"unsloth", settings(max_steps=2, merge=False))
    peft = train_lora(model, data, tmp_path/"peft", settings(max_steps=2, backend="peft", merge=False))
    assert (unsloth["backend"], peft["backend"]) == ("unsloth", "peft")
    assert unsloth["examples"] == peft["examples"] and unsloth["examples"] + unsloth["dropped_too_long"] == 64
    # LoRA's B starts at zero, so the first loss is the base model's on the first batch: equal if data, order and masking agree
    assert unsloth["losses"][0]["loss"] == pytest.approx(peft["losses"][0]["loss"], rel=1e-4)
    assert not (tmp_path/"unsloth"/"merged").exists() and (tmp_path/"unsloth"/"adapter"/"adapter_config.json").exists()
    for info in (unsloth, peft):
        assert info["versions"]["torch"] and info["versions"]["trl"] and info["versions"]["peft"]
        assert info["settings"]["lora_rank"] == 16 and info["effective_batch_size"] == 4
        assert "peak_gpu_allocated_mb" in info and "peak_gpu_reserved_mb" in info


def test_benchmark_settings_save_no_checkpoint_and_unsloth_padded_matches_peft(tiny, tmp_path):
    "What the training benchmark runs: save_steps=None writes no checkpoint (not even at the last step), and Unsloth with its"
    " optimizations off (padded batches, standard checkpointing) starts from PEFT's first loss."
    model, data = tiny
    padded = train_lora(model, data, tmp_path/"padded", settings(max_steps=2, merge=False, save_steps=None, unsloth_optimizations=False))
    peft = train_lora(model, data, tmp_path/"peft", settings(max_steps=2, backend="peft", merge=False, save_steps=None))
    for name in ("padded", "peft"):
        assert not list((tmp_path/name/"checkpoints").glob("checkpoint-*")), name
        assert (tmp_path/name/"adapter"/"adapter_config.json").exists()
    assert padded["global_step"] == peft["global_step"] == 2
    assert padded["losses"][0]["loss"] == pytest.approx(peft["losses"][0]["loss"], rel=1e-4)


def test_unsloth_names_the_missing_package(tiny, tmp_path, monkeypatch):
    "Unsloth needs bitsandbytes even for 16-bit LoRA: without it the error names the package and the [gpu] extra."
    model, data = tiny
    shadow = tmp_path/"shadow"/"bitsandbytes"
    shadow.mkdir(parents=True)
    (shadow/"__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'bitsandbytes'\", name='bitsandbytes')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path/"shadow"), os.environ.get("PYTHONPATH", "")]))
    with pytest.raises(ReasonForgeError, match="'bitsandbytes' is missing.*reasonforge\\[gpu\\]"):
        train_lora(model, data, tmp_path/"out", settings(max_steps=1))
    assert not (tmp_path/"out"/"adapter").exists()


def test_settings_added_later_keep_earlier_job_hashes(tiny, tmp_path):
    "num_processes, unsloth_optimizations and group_by_length at their defaults leave a job's hash as it was before they existed."
    from dataclasses import asdict
    from reasonforge.core import stable_hash
    from reasonforge.train import _prepare_job
    model, data = tiny
    job = _prepare_job(model, data, tmp_path/"out", settings())
    earlier = {k: v for k, v in asdict(settings()).items() if k not in ("num_processes", "unsloth_optimizations", "group_by_length")}
    assert job["job_hash"] == stable_hash({"base_model_sha256": job["base_model_sha256"], "training_set_sha256": job["training_set_sha256"], "settings": earlier})
    assert _prepare_job(model, data, tmp_path/"out", settings(backend="peft", num_processes=2))["job_hash"] != job["job_hash"]
    assert _prepare_job(model, data, tmp_path/"out", settings(group_by_length=True))["job_hash"] != job["job_hash"]


def test_the_cpu_default_trains_from_its_first_step_and_groups_rows_by_length(tiny, tmp_path):
    "configs/default-cpu.yaml's training settings: step 1 updates at the full learning rate (no warm-up step at lr 0), with"
    " length-grouped batches; a 10% warm-up would spend step 1 at lr 0."
    from dataclasses import replace
    from reasonforge.config import read_config
    model, data = tiny
    cpu = read_config(Path(__file__).parents[1]/"configs"/"default-cpu.yaml")[0].training
    assert cpu.warmup_ratio == 0 and cpu.group_by_length and not cpu.gradient_checkpointing
    tiny_cpu = replace(cpu, max_steps=4, per_device_batch_size=4, gradient_accumulation_steps=1, max_length=256, save_steps=None, merge=False)
    info = train_lora(model, data, tmp_path/"cpu", tiny_cpu)
    assert info["step_times"][0]["learning_rate"] == pytest.approx(cpu.learning_rate)
    warm = train_lora(model, data, tmp_path/"warm", replace(tiny_cpu, warmup_ratio=0.1, group_by_length=False))
    assert warm["step_times"][0]["learning_rate"] == 0 and warm["step_times"][1]["learning_rate"] == pytest.approx(cpu.learning_rate)
    # same seed and data: only the length-grouped sampler makes the batches differ
    assert [s["tokens"] for s in info["step_times"]] != [s["tokens"] for s in warm["step_times"]]


def test_ddp_launch_command_and_refusals(tmp_path):
    from reasonforge.train import training_launch_command
    import sys
    assert training_launch_command(tmp_path/"job.json", settings())[:2] == [sys.executable, "-c"]
    command = training_launch_command(tmp_path/"job.json", settings(backend="peft", num_processes=4))
    assert command[1:5] == ["-m", "accelerate.commands.launch", "--num_processes", "4"] and "--multi_gpu" in command
    assert command[-1] == str(tmp_path/"train_entry.py")
    with pytest.raises(ReasonForgeError, match="num_processes=2 with backend='unsloth'"): settings(num_processes=2)
    with pytest.raises(ReasonForgeError, match="num_processes"): settings(backend="peft", num_processes=0)


def test_benchmark_figures_use_the_same_steps():
    "The training benchmark's s/step and tokens/s come from the same steps (all after the first), mean and median."
    import importlib.util
    spec = importlib.util.spec_from_file_location("training_throughput", Path(__file__).parents[1]/"benchmarks"/"training_throughput.py")
    bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
    steps = [{"seconds": 9.0, "tokens": 100}, {"seconds": 1.0, "tokens": 100}, {"seconds": 1.0, "tokens": 100}, {"seconds": 4.0, "tokens": 400}]
    figures = bench.step_figures(steps)
    assert figures["timed_steps"] == 3 and figures["seconds_per_step_mean"] == 2.0 and figures["seconds_per_step_median"] == 1.0
    assert figures["tokens_per_second_mean"] == 600 / 6 and figures["tokens_per_second_median"] == 100.0


def test_a_killed_run_resumes_from_its_last_checkpoint(tiny, tmp_path, capsys, monkeypatch):
    import re
    from safetensors.torch import load_file
    model, data = tiny
    run = settings(max_steps=8, merge=False)
    reference = train_lora(model, data, tmp_path/"reference", run)
    process = start_training(model, data, tmp_path/"killed", run)
    deadline = time.time() + 300
    while not (tmp_path/"killed"/"checkpoints"/"checkpoint-2"/"trainer_state.json").exists():
        assert process.poll() is None and time.time() < deadline, "training ended before its first checkpoint"
        time.sleep(0.02)
    process.kill()
    process.wait()
    assert not (tmp_path/"killed"/"training_info.json").exists()
    (tmp_path/"killed"/"checkpoints"/"checkpoint-7").mkdir()  # as if killed while writing a checkpoint
    (tmp_path/"killed"/"checkpoints"/"checkpoint-7"/"adapter_config.json").write_text("{")
    monkeypatch.setattr("reasonforge.core.PROGRESS_EVERY", 0)  # every change of the bar is a line
    capsys.readouterr()
    resumed = train_lora(model, data, tmp_path/"killed", run)
    assert resumed["resumed_from"] in ("checkpoint-2", "checkpoint-4", "checkpoint-6")
    bar = [int(found[1]) for line in capsys.readouterr().err.splitlines()
           if (found := re.search(r"INFO reasonforge\.progress: training: +\d+% (\d+)/8 ", line))]
    assert bar[0] == int(resumed["resumed_from"].split("-")[1]) and bar[-1] == 8, bar  # from the step it resumed at
    assert not (tmp_path/"killed"/"training_progress.json").exists()
    assert resumed["global_step"] == 8 and resumed["steps_this_run"] < 8
    assert [e["step"] for e in resumed["losses"]] == list(range(1, 9))
    assert [e["loss"] for e in resumed["losses"]] == pytest.approx([e["loss"] for e in reference["losses"]], rel=1e-4)
    adapter, adapter_reference = (load_file(tmp_path/name/"adapter"/"adapter_model.safetensors") for name in ("killed", "reference"))
    for key, tensor in adapter_reference.items():
        assert (adapter[key] - tensor).abs().max() < 1e-5, key


def test_checkpoints_of_another_job_are_not_resumed(tiny, tmp_path):
    model, data = tiny
    train_lora(model, data, tmp_path/"run", settings(max_steps=2, merge=False))
    with pytest.raises(ReasonForgeError, match="different job"):
        train_lora(model, data, tmp_path/"run", settings(max_steps=2, merge=False, learning_rate=1e-3))


def test_refusals(tiny, tmp_path):
    model, data = tiny
    with pytest.raises(ReasonForgeError, match="no config.json"): train_lora(tmp_path, data, tmp_path/"out", settings())
    with pytest.raises(ReasonForgeError, match="training set not found"): train_lora(model, tmp_path/"none.jsonl", tmp_path/"out", settings())
    with pytest.raises(ReasonForgeError, match="backend"): settings(backend="nope")


def test_unsloth_without_cpu_fallback_fails_clearly(tiny, tmp_path, monkeypatch):
    import torch
    if torch.cuda.is_available(): pytest.skip("needs a machine without a GPU")
    model, data = tiny
    monkeypatch.setenv("UNSLOTH_DISABLE_CPU_FALLBACK", "1")
    with pytest.raises(ReasonForgeError, match="Unsloth cannot start here.*backend='peft'"):
        train_lora(model, data, tmp_path/"out", settings(max_steps=1))
    assert not (tmp_path/"out"/"adapter").exists()  # it did not quietly train with the other backend


def test_ddp_launch_trains_one_adapter(tiny, tmp_path):
    "num_processes=2 runs the real `accelerate launch` path (torchrun; gloo on a CPU), and only global rank 0 saves the one"
    " adapter and merged model (two savers raced for merged.tmp and lost the weights). On a CPU the trainer does not enter"
    " DDP mode (each process trains on all rows), so gradient sharing itself is checked only on GPUs."
    model, data = tiny
    info = train_lora(model, data, tmp_path/"ddp", settings(backend="peft", num_processes=2, max_steps=2, save_steps=None))
    assert (info["num_processes"], info["global_step"], info["effective_batch_size"]) == (2, 2, 8)
    assert (tmp_path/"ddp"/"adapter"/"adapter_config.json").exists() and (tmp_path/"ddp"/"merged"/"model.safetensors").exists()
    assert (tmp_path/"ddp"/"train_entry.py").exists()
