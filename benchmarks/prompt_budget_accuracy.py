"""Zero-shot greedy accuracy with the full schema prompt against the budgeted one, on the dev questions the budget changes.

    python benchmarks/prompt_budget_accuracy.py --budget 896            # the embedded default model, all usable dev questions

Under a budget a question's prompt changes only when its full prompt is over the budget; everywhere else the two prompts,
and so the greedy answers, are identical. So both variants are sampled (one engine, greedy, cached) only on the questions
whose prompt changes; the dev-wide difference follows from them. Prints the accuracies with Wilson intervals, the exact
McNemar test between the two, and the levels of detail the budget chose.
"""
import argparse, json, time
from collections import Counter

from reasonforge.data import find_spider_dir, load_spider
from reasonforge.evaluate import score_predictions
from reasonforge.engines import VLLMBackend
from reasonforge.generate import GREEDY
from reasonforge.models import heavy_lock, resolve_model
from reasonforge.prompt import chat_token_counter, fit_schema
from reasonforge.stats import accuracy_of, exact_mcnemar

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pypi:qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--budget", type=int, default=896, help="prompt token budget (default 896 = 1024 - 128)")
    parser.add_argument("--cache", default="benchmarks/out/prompt-budget-cache", help="candidate cache (a rerun resumes)")
    args = parser.parse_args()

    dev = load_spider(find_spider_dir(), "dev")
    model = resolve_model(args.model)
    started = time.time()
    with VLLMBackend(model, cache_folder=args.cache, progress=True) as backend:
        count = chat_token_counter(backend.tokenizer)
        fits = {q.index: fit_schema(dev, q, count, args.budget) for q in dev.usable}
        changed = [q for q in dev.usable if fits[q.index].level > 0]
        full = [c[0].sql for c in backend.generate([backend.prompt(dev.schema_prompt(q.db_id), q.question) for q in changed], GREEDY)]
        budgeted = [c[0].sql for c in backend.generate([backend.prompt(fits[q.index].text, q.question) for q in changed], GREEDY)]
    gold = [(q.gold_sql, q.db_id) for q in changed]
    right_full = [s.exec_match for s in score_predictions(gold, full, dev.database_path)]
    right_budgeted = [s.exec_match for s in score_predictions(gold, budgeted, dev.database_path)]
    only_full, only_budgeted, p_value = exact_mcnemar(right_full, right_budgeted)
    figures = {"model": args.model, "budget": args.budget, "usable_dev_questions": len(dev.usable), "questions_changed": len(changed),
               "levels": dict(sorted(Counter(f.level for f in fits.values()).items())),
               "max_budgeted_tokens": max(f.tokens for f in fits.values()), "all_fit": all(f.fits for f in fits.values()),
               "changed_full": str(accuracy_of(right_full)), "changed_budgeted": str(accuracy_of(right_budgeted)),
               "right_only_full": only_full, "right_only_budgeted": only_budgeted, "mcnemar_p": round(p_value, 4),
               "dev_wide_difference_points": round(100 * (only_budgeted - only_full) / len(dev.usable), 2),
               "seconds": round(time.time() - started)}
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":  # vLLM starts its engine in a spawned child process
    main()
