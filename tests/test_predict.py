"`reasonforge predict` as a user runs it: argument errors without engines, the file formats, and one real run on the embedded model."
import json, subprocess, sys, time
from pathlib import Path

import pytest

from reasonforge.core import ReasonForgeError
from reasonforge.data import find_spider_dir, load_spider
from reasonforge.evaluate import read_gold_file
from reasonforge.generate import Candidate
from reasonforge.decoding import NO_PREDICTION
from reasonforge.predict import predict, write_predictions
from reasonforge.subsets import choose_questions
from reasonforge.score import score_answers
from conftest import needs_engines

SPIDER = find_spider_dir()


def run(*args, cwd=None):
    command = Path(sys.executable).parent/"reasonforge"  # the console script pip installed next to this Python
    return subprocess.run([str(command), *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def dev():
    return load_spider(SPIDER, "dev", check_schemas=False)


def one_line_error(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reasonforge predict: error:"), result.stderr
    for fragment in fragments: assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("args, fragments", [
    (["--split", "test"], ["unknown split 'test'"]),
    (["--subset", "0"], ["--subset 0", "less than 1"]),
    (["--subset", "999999"], ["--subset 999999", "1034 questions"]),
    (["--model", "/nonexistent/model-folder", "--subset", "2"], ["model source not found", "/nonexistent/model-folder"]),
    (["--adapter", "/nonexistent/adapter", "--subset", "2"], ["--adapter /nonexistent/adapter", "adapter_config.json"]),
    (["--k", "0"], ["--k 0"]),
    (["--k", "4", "--temperature", "0"], ["--temperature 0.0 with --k 4"]),
    (["--backend", "llama"], ["unknown backend 'llama'"]),
])
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, args, fragments):
    result = run("predict", "--spider-dir", SPIDER, "--out", tmp_path/"out", *args)
    one_line_error(result, *fragments)
    assert not (tmp_path/"out").exists()  # nothing is written before the arguments are checked


def test_out_that_is_a_file_is_refused_and_kept(tmp_path):
    out = tmp_path/"notes.txt"
    out.write_text("my notes\n")
    one_line_error(run("predict", "--spider-dir", SPIDER, "--out", out, "--subset", "2"), str(out), "is a file")
    assert out.read_text() == "my notes\n"


def test_subset_picks_what_a_runs_dev_subset_picks(dev, tmp_path):
    from reasonforge.config import config_from_dict
    from reasonforge.run_folder import Run
    for size, seed in [(3, 3), (45, 0), (200, 7)]:
        run = Run(tmp_path, config_from_dict({"model": "m", "name": "n", "dev_subset": {"size": size, "seed": seed}}))
        assert choose_questions(dev.questions, size, seed) == run.questions("dev")
    assert choose_questions(dev.questions) == dev.questions


def answers(texts):
    return [Candidate.from_text(text, 0, 0) for text in texts]


def test_files_one_line_per_question_in_split_order(tmp_path, dev):
    questions = choose_questions(dev.questions, 3, seed=3)  # 267, 487 (wta_1: its database is missing), 757
    assert [q.excluded for q in questions] == [False, True, False]
    first, _, last = questions
    greedy = {first.index: answers([first.gold_sql])[0], last.index: answers(["SELECT Name\nFROM country\n"])[0]}
    samples = {first.index: answers(["SELECT 1", first.gold_sql, first.gold_sql, "no query here"]),
               last.index: answers([last.gold_sql, "SELECT Name FROM country", "SELECT Name FROM country", "SELECT 1"])}
    report = write_predictions(tmp_path, score_answers(questions, greedy, samples))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candidates.jsonl", "gold.sql", "greedy.sql", "predictions.jsonl", "report.json",
                                                         "sc@4.sql"]
    greedy_lines = (tmp_path/"greedy.sql").read_text().splitlines()
    assert greedy_lines == [first.gold_sql, NO_PREDICTION, "SELECT Name FROM country"]
    # the vote: two equal right results win for the first question; two equal wrong ones win for the last
    assert (tmp_path/"sc@4.sql").read_text().splitlines() == [first.gold_sql, NO_PREDICTION, "SELECT Name FROM country"]
    assert read_gold_file(tmp_path/"gold.sql") == [(q.gold_sql, q.db_id) for q in questions]
    summary = report["summary"]
    assert (summary["total"], summary["evaluated"], summary["excluded"], summary["k"]) == (3, 2, 1, 4)
    assert summary["exec_accuracy"] == 0.5 and summary["self_consistency_accuracy"] == 0.5
    assert summary["pass_at_k"] == 1.0 and summary["pass_at_k_curve"]["1"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert [e["question_index"] for e in report["examples"]] == [q.index for q in questions]
    assert [e["excluded"] for e in report["examples"]] == [False, True, False]
    assert [e["self_consistency_match"] for e in report["examples"]] == [True, None, False]
    assert [e["samples_correct"] for e in report["examples"]] == [2, None, 1]
    on_disk = json.loads((tmp_path/"report.json").read_text())
    assert on_disk["summary"] == summary and on_disk["examples"] == report["examples"]
    rows = [json.loads(line) for line in (tmp_path/"candidates.jsonl").read_text().splitlines()]
    assert [r["question_index"] for r in rows] == [q.index for q in questions]
    assert rows[1]["excluded"] and rows[1]["greedy"] is None and "samples" not in rows[1]
    assert [s["exec_match"] for s in rows[0]["samples"]] == [False, True, True, False]
    assert rows[0]["samples"][3]["line"] == NO_PREDICTION and rows[0]["vote"]["votes"] == 2
    assert rows[2]["greedy"]["sql"] == "SELECT Name\nFROM country" and rows[2]["greedy"]["line"] == "SELECT Name FROM country"


def test_greedy_only_writes_no_vote_file(tmp_path, dev):
    questions = choose_questions(dev.questions, 2, seed=1)
    report = write_predictions(tmp_path, score_answers(questions, {q.index: answers([q.gold_sql])[0] for q in questions if not q.excluded}))
    assert not list(tmp_path.glob("sc@*.sql"))
    assert report["summary"]["k"] == 1 and report["summary"]["self_consistency_accuracy"] is None
    assert report["summary"]["pass_at_k"] is None


def test_unequal_sample_counts_are_refused(tmp_path, dev):
    first, second = [q for q in dev.questions if not q.excluded][:2]
    with pytest.raises(ReasonForgeError, match="different numbers of samples"):
        write_predictions(tmp_path, score_answers([first, second], {}, {first.index: answers(["SELECT 1"]), second.index: answers(["SELECT 1"] * 2)}))


def test_predict_on_the_embedded_model_then_resumes_from_its_cache(tmp_path):
    "The real vLLM CPU engine on 3 dev questions (one excluded), k=2; a second run reuses every answer; evaluate agrees."
    out = tmp_path/"out"
    started = time.time()
    first = run("predict", "--spider-dir", SPIDER, "--subset", "3", "--seed", "3", "--k", "2", "--out", out)
    first_seconds = time.time() - started
    assert first.returncode == 0, first.stderr[-3000:]
    assert "self-consistency@2:" in first.stdout and "execution" in first.stdout
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["candidates.jsonl", "gold.sql", "greedy.sql", "predictions.jsonl",
                                                                     "report.json", "sc@2.sql"]
    report = json.loads((out/"report.json").read_text())
    summary = report["summary"]
    assert (summary["total"], summary["excluded"], summary["k"]) == (3, 1, 2)
    assert [e["question_index"] for e in report["examples"]] == [267, 487, 757]
    assert report["settings"]["resumed_prompts"] == 0 and report["settings"]["engine"]["engine_start_seconds"] is not None
    for name in ("greedy.sql", "sc@2.sql", "gold.sql"): assert len((out/name).read_text().splitlines()) == 3
    assert (out/"greedy.sql").read_text().splitlines()[1] == NO_PREDICTION
    rows = [json.loads(line) for line in (out/"candidates.jsonl").read_text().splitlines()]
    assert [len(r.get("samples", [])) for r in rows] == [2, 0, 2] and all(r["greedy"]["text"] for r in rows if not r["excluded"])

    greedy_before = (out/"greedy.sql").read_text()
    started = time.time()
    second = run("predict", "--spider-dir", SPIDER, "--subset", "3", "--seed", "3", "--k", "2", "--out", out)
    second_seconds = time.time() - started
    assert second.returncode == 0, second.stderr[-3000:]
    again = json.loads((out/"report.json").read_text())
    assert again["settings"]["resumed_prompts"] == 4  # 2 greedy + 2 sampled prompts, all from the cache
    assert again["settings"]["engine"]["engine_start_seconds"] is None  # no engine was started
    assert (out/"greedy.sql").read_text() == greedy_before and again["summary"] == summary
    assert second_seconds < first_seconds

    for predictions, accuracy in (("greedy.sql", summary["exec_accuracy"]), ("sc@2.sql", summary["self_consistency_accuracy"])):
        evaluated = run("evaluate", "--gold", out/"gold.sql", "--pred", out/predictions, "--db", SPIDER/"database",
                        "--table", SPIDER/"tables.json", "--lenient", "--out", tmp_path/f"{predictions}.json")
        assert evaluated.returncode == 0, evaluated.stderr
        official = json.loads((tmp_path/f"{predictions}.json").read_text())
        assert official["summary"]["exec_accuracy"] == accuracy
    assert official["summary"]["excluded"] == 1
    greedy_report = json.loads((tmp_path/"greedy.sql.json").read_text())
    assert [e["exec_match"] for e in greedy_report["examples"]] == [e["exec_match"] for e in report["examples"]]
    assert greedy_report["summary"]["lenient_accuracy"] == summary["lenient_accuracy"]


def test_adapter_is_merged_once_and_predicted(tmp_path, monkeypatch, dev):
    "--adapter on a tiny random model with the transformers backend: merged into the cache once, then sampled like any model."
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    from reasonforge.models import MERGED_MARKER
    from reasonforge.train import build_tiny_model
    monkeypatch.setenv("REASONFORGE_CACHE", str(tmp_path/"cache"))
    texts = [q.question for q in dev.questions[:50]] + [q.gold_sql for q in dev.questions[:50]]
    tiny = build_tiny_model(tmp_path/"tiny", texts)
    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny), LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path/"adapter")
    arguments = dict(model=tiny, out_dir=tmp_path/"out", spider_dir=SPIDER, subset=2, seed=0, k=2, max_tokens=8, adapter=tmp_path/"adapter",
                     engine="transformers")
    report = predict(**arguments)
    merged = Path(report["settings"]["model_dir"])
    assert merged.parent == tmp_path/"cache"/"merged" and (merged/MERGED_MARKER).is_file()
    assert report["summary"]["total"] == 2 and report["summary"]["k"] == 2 and report["settings"]["adapter"] == str(tmp_path/"adapter")
    assert len((tmp_path/"out"/"sc@2.sql").read_text().splitlines()) == 2
    stamp = (merged/MERGED_MARKER).stat().st_mtime_ns
    again = predict(**arguments)
    assert (merged/MERGED_MARKER).stat().st_mtime_ns == stamp and again["settings"]["resumed_prompts"] == 4
    assert again["examples"] == report["examples"]


@needs_engines
def test_predict_scores_a_runs_model_exactly_as_the_run_did(finished_tiny_run, tmp_path):
    "One scorer: `predict` on a run's iteration-1 model, questions and settings writes the run's own dev predictions."
    from test_faults import TINY_CONFIG
    run_dir = finished_tiny_run.run_dir
    sampling, evaluation = TINY_CONFIG["sampling"], TINY_CONFIG["evaluation"]
    predict(run_dir/"iteration_1"/"train"/"merged", tmp_path/"out", "dev", spider_dir=SPIDER, indices=TINY_CONFIG["dev_subset"]["indices"],
            k=evaluation["k"], temperature=evaluation["temperature"], max_tokens=sampling["max_tokens"],
            engine_options=TINY_CONFIG["engine"])
    ours = (tmp_path/"out"/"predictions.jsonl").read_text().splitlines()
    theirs = (run_dir/"iteration_1"/"evaluate"/"predictions.jsonl").read_text().splitlines()
    assert len(ours) == 4 and [json.loads(line) for line in ours] == [json.loads(line) for line in theirs]
    metrics = json.loads((run_dir/"iteration_1"/"evaluate"/"metrics.json").read_text())
    report = json.loads((tmp_path/"out"/"report.json").read_text())
    assert report["summary"]["exec_accuracy"] == metrics["greedy"]["exec_accuracy"]
    assert report["summary"]["self_consistency_accuracy"] == metrics["self_consistency"]["exec_accuracy"]


# issue 15's first piece: training questions from a file, dev questions refused

from reasonforge.question_files import questions_from_file


@pytest.fixture(scope="module")
def train():
    return load_spider(SPIDER, "train", check_schemas=False)


def evaluate_style_report(path, split, entries):
    "A report as `reasonforge evaluate --spider-dir` writes it: `index` is the split index."
    examples = [{"index": i, "db_id": split[i].db_id, "exec_match": match, "excluded": False} for i, match in entries]
    path.write_text(json.dumps({"summary": {}, "settings": {}, "examples": examples}))
    return path


def test_dev_questions_are_refused_naming_the_file(tmp_path, dev):
    report = evaluate_style_report(tmp_path/"dev_report.json", dev, [(0, False), (5, True)])
    with pytest.raises(ReasonForgeError, match=r"dev_report.json: 2 of its questions are Spider dev questions.*train_on_dev_questions"):
        questions_from_file(report, "wrong")
    allowed = questions_from_file(report, "wrong", train_on_dev_questions=True)
    assert (allowed.split, allowed.indices, allowed.kind) == ("dev", [0], "report")


def test_train_report_wrong_and_all(tmp_path, train):
    report = evaluate_style_report(tmp_path/"report.json", train, [(10, False), (3, True), (7000 - 1, False)])
    assert questions_from_file(report, "wrong").indices == [10, 6999]
    assert questions_from_file(report, "all").indices == [3, 10, 6999]
    with pytest.raises(ReasonForgeError, match="no per-question samples"):
        questions_from_file(report, "unsolved")
    with pytest.raises(ReasonForgeError, match="only: 'best'"):
        questions_from_file(report, "best")


def test_predict_report_on_train_gives_unsolved(tmp_path, train):
    questions = [q for q in train.questions if not q.excluded][:3]
    samples = {q.index: answers([q.gold_sql if q is questions[0] else "SELECT 1"] * 2) for q in questions}
    write_predictions(tmp_path, score_answers(questions, {q.index: answers(["SELECT 1"])[0] for q in questions}, samples))
    chosen = questions_from_file(tmp_path/"report.json", "unsolved")
    assert (chosen.split, chosen.indices) == ("train", [q.index for q in questions[1:]])
    assert questions_from_file(tmp_path/"report.json", "wrong").indices == [q.index for q in questions]


def test_report_made_on_another_gold_file_is_caught(tmp_path, train):
    path = tmp_path/"report.json"
    path.write_text(json.dumps({"examples": [{"index": 0, "db_id": "concert_singer", "exec_match": False, "excluded": False}]}))
    with pytest.raises(ReasonForgeError, match="dev questions"):  # concert_singer is a dev database
        questions_from_file(path, "wrong")
    path.write_text(json.dumps({"examples": [{"index": 0, "db_id": train[5000].db_id, "exec_match": False, "excluded": False}]}))
    assert train[0].db_id != train[5000].db_id
    with pytest.raises(ReasonForgeError, match="report.json entry 0: train question 0 is on"):
        questions_from_file(path, "wrong")


def test_mixed_dev_and_train_is_refused(tmp_path, dev, train):
    path = tmp_path/"mixed.json"
    examples = [{"index": 0, "db_id": dev[0].db_id, "exec_match": False}, {"index": 0, "db_id": train[0].db_id, "exec_match": False}]
    path.write_text(json.dumps({"examples": examples}))
    with pytest.raises(ReasonForgeError, match="mixes dev and train"):
        questions_from_file(path, "all", train_on_dev_questions=True)


def test_run_verdicts_and_training_set_give_their_0_of_k_questions(tmp_path, train):
    verdicts = tmp_path/"verdicts.jsonl"
    rows = [{"index": 4, "db_id": train[4].db_id, "verdicts": [{"exec_match": False}, {"exec_match": True}]},
            {"index": 9, "db_id": train[9].db_id, "verdicts": [{"exec_match": False}, {"exec_match": False}]}]
    verdicts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert questions_from_file(verdicts, "unsolved").indices == [9]
    assert questions_from_file(verdicts, "all").indices == [4, 9]
    with pytest.raises(ReasonForgeError, match="only: wrong needs a report.json"):
        questions_from_file(verdicts, "wrong")
    training_set = tmp_path/"train.jsonl"
    rows = [{"question_index": 4, "db_id": train[4].db_id, "source": "self", "messages": []},
            {"question_index": 9, "db_id": train[9].db_id, "source": "gold", "messages": []}] * 2
    training_set.write_text("".join(json.dumps(r) + "\n" for r in rows))
    found = questions_from_file(training_set, "unsolved")
    assert (found.kind, found.indices) == ("training set", [9])


def test_plain_index_lists(tmp_path):
    (tmp_path/"a.txt").write_text("12\n7\n\n12\n")
    (tmp_path/"b.json").write_text("[3, 1]")
    assert questions_from_file(tmp_path/"a.txt").indices == [7, 12]
    listed = questions_from_file(tmp_path/"b.json")
    assert (listed.kind, listed.split, listed.indices) == ("indices", "train", [1, 3])
    (tmp_path/"c.txt").write_text("70000\n")
    with pytest.raises(ReasonForgeError, match="c.txt entry 0: question index 70000 is not in the train split"):
        questions_from_file(tmp_path/"c.txt")


@pytest.mark.parametrize("text, message", [("hello\n", "neither a report.json"), ('{"summary": {}}', "neither a report.json"),
                                           ("[]", "neither a report.json")])
def test_unreadable_question_files(tmp_path, text, message):
    (tmp_path/"q.json").write_text(text)
    with pytest.raises(ReasonForgeError, match=message):
        questions_from_file(tmp_path/"q.json")
    with pytest.raises(ReasonForgeError, match="cannot read questions file"):
        questions_from_file(tmp_path/"missing.json")
