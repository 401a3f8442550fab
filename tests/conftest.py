"Shared test settings: which tests start the real engines (vLLM, Unsloth, the real model), and a switch to skip them."
import os

import pytest

# The engine tests are part of the suite and run by default (CI included; most of the suite's time on a 2-core CPU).
# REASONFORGE_ENGINE_TESTS=0 skips them for a quick local pass over everything else.
ENGINE_TESTS = os.environ.get("REASONFORGE_ENGINE_TESTS", "1") != "0"
ENGINE_TEST_FILES = {"test_train.py"}  # Unsloth and PEFT on a tiny random model
ENGINE_TESTS_BY_NAME = {"test_default_model_folder_is_complete", "test_transformers_greedy_answers_a_real_question",
                        "test_vllm_seeded_group_longer_than_one_engine_step",
                        "test_real_tiny_run_killed_in_every_stage_ends_like_an_uninterrupted_run"}
ENGINE_NOTEBOOKS = {"04_models.ipynb", "05_generate.ipynb", "09_train.ipynb", "walkthrough.ipynb"}

needs_engines = pytest.mark.skipif(not ENGINE_TESTS, reason="starts vLLM/Unsloth/the real model: REASONFORGE_ENGINE_TESTS=0")


def pytest_collection_modifyitems(config, items):
    for item in items:
        notebook = getattr(item, "callspec", None) and item.callspec.params.get("notebook")
        if item.path.name in ENGINE_TEST_FILES or item.originalname in ENGINE_TESTS_BY_NAME or (notebook is not None and notebook.name in ENGINE_NOTEBOOKS):
            item.add_marker(needs_engines)
