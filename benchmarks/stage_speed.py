"""The three slow CPU stages of a run, for one code tree: greedy evaluation of Spider dev, sampling train questions
(k = 4) and LoRA training on the CPU study's rows. Where the time goes, and how far each stage is from this machine's floor.

Measure the tree before a change and after it in one sitting, alone on the machine (the heavy-job lock keeps other
engines off it):

    git worktree add --detach ../before c483bac
    flock /tmp/reasonforge-heavy.lock env PYTHONPATH=../before python benchmarks/stage_speed.py --label before --json benchmarks/out/before.json
    flock /tmp/reasonforge-heavy.lock python benchmarks/stage_speed.py --label after --json benchmarks/out/after.json
    python benchmarks/stage_speed.py --compare benchmarks/out/before.json benchmarks/out/after.json

`PYTHONPATH` picks the code tree: the script imports whichever `reasonforge` comes first, and each stage runs it the way
that tree's run does (its own `configs/study-cpu.yaml` engine and training sections, its own library defaults).
- eval: `reasonforge predict --split dev --k 1 --max-tokens 128 --prompt-budget 896` (the study's dev evaluation, as a
  user runs it), wall time of the whole command, engine start and verification included; its per-question verdicts
  feed the paired McNemar test of `--compare`.
- sample: the study's seeded train questions, k = 4, T = 0.7, max 128 tokens, through the tree's vLLM backend with
  the config's engine section; the engine's start is timed apart, the candidate cache is off.
- train: `train_lora` on the gold rows of the study's train questions with the loop's prompt, the config's training
  section, `--train-steps` optimizer steps; tokens/s over every step but the first.
`--compare` prints one table of both files with the ratios, the McNemar test of the greedy verdicts, and (with
`--results`) writes it into `benchmarks/RESULTS.md`.
"""
from __future__ import annotations
import argparse, dataclasses, json, math, os, platform, random, re, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path

STUDY_CONFIG = "configs/study-cpu.yaml"
CPU_FLAGS_SHOWN = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16")


def tree_root()->Path:
    "The checkout whose `reasonforge` this process imports."
    import reasonforge
    return Path(reasonforge.__file__).resolve().parent.parent


def tree_commit(root:Path)->str:
    "The checkout's commit, with '+changes' when its library differs from it."
    run = lambda *a: subprocess.run(["git", "-C", str(root), *a], capture_output=True, text=True).stdout.strip()
    dirty = run("status", "--porcelain", "--", "reasonforge", "configs")
    return run("rev-parse", "--short", "HEAD") + ("+changes" if dirty else "")


def cpu_description()->dict:
    "lscpu's model name, the SIMD flags that decide the speed of bf16 and fp32, cores and memory."
    info = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
            for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines() if ":" in line}
    flags = set(info.get("Flags", "").split())
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"model": info.get("Model name", platform.processor()), "flags": [f for f in CPU_FLAGS_SHOWN if f in flags],
            "cores": len(os.sched_getaffinity(0)), "memory_gib": round(memory_gib, 1)}


def machine_floor(seconds:float=3.0)->dict:
    "This machine's measured matrix-multiply GFLOP/s (float32, bfloat16) and memory read bandwidth (GB/s), with torch."
    import torch
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    figures = {}
    for dtype in ("float32", "bfloat16"):  # a prefill-sized product: 512 tokens through one MLP projection of the 0.5B model
        a, b = torch.randn(512, 896, dtype=getattr(torch, dtype)), torch.randn(896, 4864, dtype=getattr(torch, dtype))
        a @ b
        started, runs = time.perf_counter(), 0
        while time.perf_counter() - started < seconds: a @ b; runs += 1
        figures[f"matmul_gflops_{dtype}"] = round(2 * 512 * 896 * 4864 * runs / (time.perf_counter() - started) / 1e9, 1)
    big = torch.ones(256 * 2**20, dtype=torch.float32)  # 1 GiB, read by a sum
    big.sum()
    started, runs = time.perf_counter(), 0
    while time.perf_counter() - started < seconds: big.sum(); runs += 1
    figures["memory_read_gbs"] = round(big.numel() * 4 * runs / (time.perf_counter() - started) / 1e9, 1)
    return figures


def study_config(root:Path):
    "The tree's own study config (engine and training sections as its run uses them)."
    from reasonforge.config import read_config
    config, _ = read_config(root/STUDY_CONFIG)
    return config


def train_questions(spider:Path, size:int, seed:int=0)->list:
    "A seeded sample of usable train questions, in split order (the same for every tree)."
    from reasonforge.data import load_spider
    usable = load_spider(spider, "train", check_schemas=False).usable
    return sorted(random.Random(seed).sample(usable, size), key=lambda q: q.index)


def engine_options(config)->dict:
    "The run's engine section as backend options (as the loop passes them)."
    return {k: v for k, v in dataclasses.asdict(config.engine).items() if k != "backend" and v is not None}


def stage_eval(spider:Path, scratch:Path, subset:int|None, dtype:str|None, keep:str|None=None)->dict:
    "`reasonforge predict` greedy on dev: wall seconds, accuracy, per-question verdicts and the engine's figures."
    out = scratch/f"eval-{dtype or 'default'}"
    command = [sys.executable, "-c", "import sys; from reasonforge.cli import main; sys.exit(main())", "predict",
               "--split", "dev", "--k", "1", "--max-tokens", "128", "--prompt-budget", "896", "--spider-dir", str(spider),
               "--out", str(out)] + (["--subset", str(subset)] if subset else []) + (["--dtype", dtype] if dtype else [])
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, cwd=tree_root()) # `-c` imports the tree's library
    seconds = time.perf_counter() - started
    if finished.returncode: raise SystemExit(f"predict failed:\n{finished.stderr[-3000:]}")
    if keep: shutil.copytree(out, Path(keep)/f"eval-{dtype or 'default'}", ignore=shutil.ignore_patterns("cache"), dirs_exist_ok=True)
    report = json.loads((out/"report.json").read_text())
    examples = [e for e in report["examples"] if not e.get("excluded")]
    engine = report.get("settings", {}).get("engine", {})
    greedy = engine.get("greedy", engine)
    return {"seconds": round(seconds, 1), "questions": len(examples), "seconds_per_question": round(seconds / len(examples), 3),
            "accuracy": report["summary"].get("exec_accuracy"), "engine": greedy,
            "verdicts": {str(e["question_index"]): bool(e["exec_match"]) for e in examples}}


def stage_sample(spider:Path, scratch:Path, size:int, dtype:str|None)->dict:
    "k = 4 samples for the study's seeded train questions through the tree's vLLM backend, engine start timed apart."
    from reasonforge.data import load_spider
    from reasonforge.engines import vllm_backend
    from reasonforge.generate import SamplingSettings
    from reasonforge.prompt import chat_token_counter, fit_schema
    config = study_config(tree_root())
    options = engine_options(config) | ({"dtype": dtype} if dtype else {})
    dataset = load_spider(spider, "train", check_schemas=False)
    questions = train_questions(spider, size)
    settings = SamplingSettings(k=4, temperature=0.7, top_p=1.0, max_tokens=128, seed=0)
    with vllm_backend(config.model, cache_folder=scratch/"sample-cache", use_cache=False, **options) as backend:
        count = chat_token_counter(backend.tokenizer)
        prompts = [backend.prompt(fit_schema(dataset, q, count, config.prompt_budget).text, q.question) for q in questions]
        started = time.perf_counter()
        backend.start()
        start_seconds = time.perf_counter() - started
        started = time.perf_counter()
        results = backend.generate(prompts, settings)
        seconds = time.perf_counter() - started
        stats = dict(backend.stats)
    tokens = sum(c.completion_tokens for candidates in results for c in candidates)
    return {"questions": len(prompts), "k": 4, "engine_start_seconds": round(start_seconds, 1), "seconds": round(seconds, 1),
            "questions_per_minute": round(60 * len(prompts) / seconds, 2), "generated_tokens": tokens,
            "tokens_per_second": round(tokens / seconds, 1), "options": options, "engine": stats}


def stage_train(scratch:Path, steps:int, dtype:str|None)->dict:
    "`train_lora` on the gold rows of the study's train questions with the tree's training section, `steps` steps."
    sys.path.insert(0, str(Path(__file__).parent))
    from training_throughput import default_run_rows
    from reasonforge.harvest import write_training_set
    from reasonforge.train import train_lora
    config, model_dir, rows = default_run_rows(tree_root()/STUDY_CONFIG, scratch/"train-rows")
    changes = {"max_steps": steps, "save_steps": None, "merge": False} | ({"dtype": dtype} if dtype else {})
    settings = dataclasses.replace(config.training, **changes)
    data = write_training_set(rows, {"rows": len(rows)}, scratch/"train.jsonl")
    started = time.perf_counter()
    info = train_lora(model_dir, data, scratch/f"train-{dtype or 'default'}", settings)
    wall = time.perf_counter() - started
    later = info["step_times"][1:] or info["step_times"]
    seconds, tokens = sum(s["seconds"] for s in later), sum(s["tokens"] for s in later)
    phases = {key: round(sum(s.get(key, 0) for s in later) / len(later), 2) for key in ("forward", "backward", "optimizer")
              if any(key in s for s in later)}
    return {"rows": len(rows), "steps": info["global_step"], "dtype": info["dtype"], "wall_seconds": round(wall, 1),
            "seconds_per_step": round(seconds / len(later), 2), "tokens_per_step": round(tokens / len(later)),
            "tokens_per_second": round(tokens / seconds, 1), "phases_per_step": phases,
            "first_loss": info["first_loss"], "last_loss": info["last_loss"], "peak_rss_gb": round(info["peak_rss_mb"] / 1024, 2),
            "settings": {k: getattr(settings, k) for k in ("per_device_batch_size", "gradient_accumulation_steps",
                                                            "gradient_checkpointing", "group_by_length", "max_length")}}


PHASES_SCRIPT = """
import json, sys, time
from pathlib import Path
from reasonforge.core import read_jsonl
from reasonforge.train import TrainSettings, tokenize_rows
from reasonforge.train_job import _import_unsloth, _load_for_training
job = json.loads(sys.argv[1])
settings = TrainSettings(**job["settings"])
if settings.backend == "unsloth": _import_unsloth()
import torch
model, tokenizer = _load_for_training(Path(job["model"]), settings)
examples, _ = tokenize_rows(read_jsonl(job["rows"]), tokenizer, settings.max_length)
trainable = [p for p in model.parameters() if p.requires_grad]
optimizer = torch.optim.AdamW(trainable, lr=1e-4)
bf16 = next(model.parameters()).dtype == torch.bfloat16
size, times = settings.per_device_batch_size, []
for step in range(job["steps"]):
    batch = examples[step * size:(step + 1) * size]
    longest = max(len(e["input_ids"]) for e in batch)
    pad = lambda values, fill: [v + [fill] * (longest - len(v)) for v in values]
    ids = torch.tensor(pad([e["input_ids"] for e in batch], tokenizer.pad_token_id or 0))
    labels = torch.tensor(pad([e["labels"] for e in batch], -100))
    mask = torch.tensor(pad([[1] * len(e["input_ids"]) for e in batch], 0))
    started = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    forward = time.perf_counter()
    loss.backward()
    backward = time.perf_counter()
    optimizer.step(); optimizer.zero_grad()
    done = time.perf_counter()
    times.append({"tokens": int(mask.sum()), "forward": forward - started, "backward": backward - forward,
                  "optimizer": done - backward})
print("PHASES " + json.dumps(times))
"""


def stage_phases(scratch:Path, steps:int, dtype:str|None)->dict:
    "Seconds in forward, backward and optimizer per pass of `per_device_batch_size` rows, the model loaded as training loads it."
    sys.path.insert(0, str(Path(__file__).parent))
    from training_throughput import default_run_rows
    from reasonforge.harvest import write_training_set
    config, model_dir, rows = default_run_rows(tree_root()/STUDY_CONFIG, scratch/"phase-rows")
    settings = dataclasses.replace(config.training, **({"dtype": dtype} if dtype else {}))
    data = write_training_set(rows, {"rows": len(rows)}, scratch/"phases.jsonl")
    job = {"settings": dataclasses.asdict(settings), "model": str(model_dir), "rows": str(data), "steps": steps + 1}
    finished = subprocess.run([sys.executable, "-c", PHASES_SCRIPT, json.dumps(job)], capture_output=True, text=True,
                              cwd=tree_root())
    line = next((l.split("PHASES ", 1)[1] for l in finished.stdout.splitlines() if "PHASES " in l), None)
    if line is None: raise SystemExit(f"phase profile failed:\n{finished.stderr[-3000:]}")
    later = json.loads(line)[1:]  # the first pass carries one-off costs
    total = {key: sum(t[key] for t in later) for key in ("tokens", "forward", "backward", "optimizer")}
    seconds = total["forward"] + total["backward"] + total["optimizer"]
    return {"passes": len(later), "rows_per_pass": settings.per_device_batch_size, "tokens_per_pass": round(total["tokens"] / len(later)),
            "seconds_per_pass": round(seconds / len(later), 2), "tokens_per_second": round(total["tokens"] / seconds, 1),
            **{f"{key}_share": round(total[key] / seconds, 3) for key in ("forward", "backward", "optimizer")}}


def measure(args)->dict:
    "Every stage asked for, on this tree, in order."
    from reasonforge.data import find_spider_dir
    spider = Path(args.spider_dir) if args.spider_dir else find_spider_dir()
    root = tree_root()
    result = {"label": args.label, "tree": tree_commit(root), "date": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu_description(),
              "load_before": round(os.getloadavg()[0], 2), "stages": {}}
    try:  # what the tree's default stages compute in here (its configs and predict ask for `auto`)
        from reasonforge.models import compute_dtype
        result["default_dtype"] = compute_dtype("auto")
    except ImportError: result["default_dtype"] = "float32"  # trees before `dtype: auto` computed in float32 on a CPU
    print(json.dumps({k: result[k] for k in ("label", "tree", "cpu", "load_before", "default_dtype")}), flush=True)
    result["floor"] = machine_floor()
    print(json.dumps(result["floor"]), flush=True)
    with tempfile.TemporaryDirectory(prefix="rf-stage-speed-") as scratch:
        scratch = Path(scratch)
        for stage in args.stages:
            name, _, dtype = stage.partition(":")  # e.g. eval:float32, the stage with that dtype forced
            started = time.perf_counter()
            if name == "eval": figures = stage_eval(spider, scratch, args.dev_subset, dtype or None, args.keep)
            elif name == "sample": figures = stage_sample(spider, scratch, args.train_questions, dtype or None)
            elif name == "train": figures = stage_train(scratch, args.train_steps, dtype or None)
            elif name == "phases": figures = stage_phases(scratch, 3, dtype or None)
            else: raise SystemExit(f"unknown stage {stage!r}: eval, sample, train or phases (optionally :dtype)")
            figures["stage_wall_seconds"] = round(time.perf_counter() - started, 1)
            figures["load_after"] = round(os.getloadavg()[0], 2)
            result["stages"][stage] = figures
            print(json.dumps({stage: {k: v for k, v in figures.items() if k != "verdicts"}}), flush=True)
            if args.json: Path(args.json).parent.mkdir(parents=True, exist_ok=True); Path(args.json).write_text(json.dumps(result, indent=1))
    return result


def mcnemar_exact(before:dict, after:dict)->dict:
    "Exact two-sided McNemar test on the questions both verdict maps score."
    common = sorted(set(before) & set(after))
    gained = sum(after[q] and not before[q] for q in common)
    lost = sum(before[q] and not after[q] for q in common)
    n = gained + lost
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(min(gained, lost) + 1)) / 2**n) if n else 1.0
    return {"questions": len(common), "before_right": sum(before[q] for q in common), "after_right": sum(after[q] for q in common),
            "gained": gained, "lost": lost, "p_value": p}


DECODER_PARAMS, VOCAB_PARAMS = 358e6, 136e6  # Qwen2.5-0.5B: 24 decoder layers; the tied 151,936 × 896 vocabulary projection


def floor_seconds(figures:dict, gflops:float)->float|None:
    "The stage's matrix-product work divided by the measured GFLOP/s: its floor on this machine (attention left out)."
    counters = figures.get("engine", {}).get("engine_counters")
    if counters:  # a prefill token runs the decoder; a generated token the decoder and the vocabulary projection
        prefill = counters["prompt_tokens"] - counters["prompt_tokens_cached"]
        return (2 * DECODER_PARAMS * prefill + 2 * (DECODER_PARAMS + VOCAB_PARAMS) * counters["generated_tokens"]) / (gflops * 1e9)
    if "tokens_per_step" in figures:  # forward, and the backward pass's input gradients (frozen weights get none)
        return 4 * DECODER_PARAMS * figures["tokens_per_step"] / (gflops * 1e9)
    return None


def profile_lines(measurement:dict)->list[str]:
    "Where each stage's time went: tokens computed against cached, steps, rates, and the distance from the floor."
    lines = [f"| {measurement['label']}: stage | prompt tokens (cached) | generated | engine steps (tokens a step) | "
             "seconds | floor s | × floor |", "|---|---|---|---|---|---|---|"]
    for stage, figures in measurement["stages"].items():
        dtype = stage.partition(":")[2] or figures.get("dtype") or measurement.get("default_dtype", "float32")
        gflops = measurement["floor"][f"matmul_gflops_{'bfloat16' if 'bfloat16' in dtype else 'float32'}"]
        counters = figures.get("engine", {}).get("engine_counters")
        if counters:
            seconds = figures["engine"]["seconds"]
            cached = f"{counters['prompt_tokens']:,} ({counters['prompt_tokens_cached'] / counters['prompt_tokens']:.0%})"
            steps = f"{counters['engine_steps']:,} ({counters['step_tokens'] / max(counters['engine_steps'], 1):.0f})"
            generated = f"{counters['generated_tokens']:,}"
        elif "seconds_per_step" in figures:
            seconds, cached, steps, generated = figures["seconds_per_step"], f"{figures['tokens_per_step']:,} a step", "–", "–"
        else: continue
        floor = floor_seconds(figures, gflops)
        lines.append(f"| {stage} | {cached} | {generated} | {steps} | {seconds} | {floor:.0f} | {seconds / floor:.2f} |"
                     if floor else f"| {stage} | {cached} | {generated} | {steps} | {seconds} | – | – |")
    return lines


def compare(paths:list[str], results:str|None):
    "One table of two measurements with the ratios, where each stage's time goes, and the paired tests of the verdicts."
    before, after = (json.loads(Path(p).read_text()) for p in paths)
    cpu, floor = after["cpu"], after["floor"]
    lines = [f"Measured {before['date']} (`{before['tree']}`) and {after['date']} (`{after['tree']}`) on one machine: "
             f"{cpu['model']}, {cpu['cores']} cores, flags {', '.join(cpu['flags']) or 'none of interest'}, {cpu['memory_gib']} GiB; "
             f"measured there: matmul {floor['matmul_gflops_float32']} GFLOP/s float32, {floor['matmul_gflops_bfloat16']} bfloat16, "
             f"memory read {floor['memory_read_gbs']} GB/s.", "",
             f"| stage | figure | {before['label']} | {after['label']} | ratio |", "|---|---|---|---|---|"]
    rows = [("eval", "seconds", False), ("eval", "accuracy", None), ("sample", "questions_per_minute", True),
            ("sample", "tokens_per_second", True), ("train", "tokens_per_second", True), ("train", "seconds_per_step", False),
            ("phases", "tokens_per_second", True)]
    for stage in sorted(set(before["stages"]) | set(after["stages"])):
        name = stage.partition(":")[0]
        for row_name, figure, higher in rows:
            if name != row_name: continue
            b = before["stages"].get(name, {}).get(figure)  # the before tree ran each stage once, in its own dtype
            a = after["stages"].get(stage, {}).get(figure)
            ratio = "–" if higher is None or not (a and b) else f"{(a / b if higher else b / a):.2f}×"
            shown = lambda v: "–" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)
            lines.append(f"| {stage} | {figure} | {shown(b)} | {shown(a)} | {ratio} |")
    lines += ["", *profile_lines(after), "", *profile_lines(before)]
    for stage in after["stages"]:
        if stage.startswith("eval") and "verdicts" in after["stages"][stage] and "eval" in before["stages"]:
            test = mcnemar_exact(before["stages"]["eval"]["verdicts"], after["stages"][stage]["verdicts"])
            lines += ["", f"Greedy EX, {before['label']} `eval` against {after['label']} `{stage}` on the same {test['questions']} "
                      f"dev questions: {test['before_right']} → {test['after_right']} right ({test['gained']} gained, "
                      f"{test['lost']} lost), exact McNemar p = {test['p_value']:.3g}."]
    text = "\n".join(lines)
    print(text)
    if results:
        sys.path.insert(0, str(Path(__file__).parent))
        from training_throughput import update_section
        update_section(Path(results), "## The three CPU stages, before and after (`benchmarks/stage_speed.py`)\n\n" + text + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="this tree", help="name of this measurement in the comparison")
    parser.add_argument("--stages", nargs="+", default=["eval", "sample", "train"],
                        help="eval, sample, train, phases (training's forward/backward/optimizer split); STAGE:DTYPE forces a compute type (e.g. eval:float32)")
    parser.add_argument("--dev-subset", type=int, default=None, help="eval: a seeded sample of dev (default: all usable)")
    parser.add_argument("--train-questions", type=int, default=96, help="sample: the study's train questions (default 96)")
    parser.add_argument("--train-steps", type=int, default=6, help="train: optimizer steps (default 6; the first is not counted)")
    parser.add_argument("--spider-dir", default=None, help="Spider folder (default: $REASONFORGE_SPIDER_DIR)")
    parser.add_argument("--keep", default=None, help="eval: copy predict's output folder (predictions, report) here")
    parser.add_argument("--json", default=None, help="write the figures here (written after every stage)")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), help="compare two --json files instead")
    parser.add_argument("--results", default=None, help="with --compare: update this RESULTS.md section")
    args = parser.parse_args()
    if args.compare: return compare(args.compare, args.results)
    measure(args)


if __name__ == "__main__":
    main()
