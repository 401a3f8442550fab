"Shared test settings: where Spider is, which tests start the real engines (vLLM, Unsloth, the real model), a switch."
import os
from pathlib import Path

import pytest

# Spider for every test and notebook: $REASONFORGE_SPIDER_DIR when set (tools/test.sh sets it), else a
# `shared/data/spider` beside the checkout if there is one. A convenience of this test harness only: the library never
# looks there (`reasonforge.data.find_spider_dir` reads the variable, then the downloaded copy).
_BESIDE = Path(__file__).resolve().parents[2]/"shared"/"data"/"spider"
if not os.environ.get("REASONFORGE_SPIDER_DIR") and (_BESIDE/"tables.json").is_file():
    os.environ["REASONFORGE_SPIDER_DIR"] = str(_BESIDE)

# The engine tests are part of the suite and run by default (CI included; most of the suite's time on a 2-core CPU).
# REASONFORGE_ENGINE_TESTS=0 skips them for a quick local pass over everything else.
ENGINE_TESTS = os.environ.get("REASONFORGE_ENGINE_TESTS", "1") != "0"
ENGINE_TEST_FILES = {"test_train.py"}  # Unsloth and PEFT on a tiny random model
ENGINE_TESTS_BY_NAME = {"test_transformers_greedy_answers_a_real_question",
                        "test_vllm_seeded_group_longer_than_one_engine_step",
                        "test_real_tiny_run_killed_in_every_stage_ends_like_an_uninterrupted_run",
                        "test_predict_on_the_embedded_model_then_resumes_from_its_cache",
                        "test_sharded_equals_unsharded_and_a_dead_replica_resumes", "test_replicas_must_sample_alike",
                        "test_torn_predictions_of_a_finished_iteration_are_redone",
                        "test_every_kind_of_damage_heals_like_the_undamaged_run", "test_retrain_chain_on_the_embedded_model",
                        "test_converting_the_default_model_prints_nothing"}
ENGINE_NOTEBOOKS = {"04_models.ipynb", "05_generate.ipynb", "05a_engines.ipynb", "09_train.ipynb", "walkthrough.ipynb"}

needs_engines = pytest.mark.skipif(not ENGINE_TESTS, reason="starts vLLM/Unsloth/the real model: REASONFORGE_ENGINE_TESTS=0")


def pytest_collection_modifyitems(config, items):
    for item in items:
        notebook = getattr(item, "callspec", None) and item.callspec.params.get("notebook")
        if item.path.name in ENGINE_TEST_FILES or item.originalname in ENGINE_TESTS_BY_NAME or (notebook is not None and notebook.name in ENGINE_NOTEBOOKS):
            item.add_marker(needs_engines)


@pytest.fixture(scope="session")
def finished_tiny_run(tmp_path_factory):
    "One real tiny run (baseline and one iteration, vLLM and Unsloth on CPU), never interrupted, made once per session: tests read it or copy it."
    from test_faults import TinyRun
    run = TinyRun(tmp_path_factory.mktemp("tiny-run")/"uninterrupted")
    run.finish(run.start())
    return run
