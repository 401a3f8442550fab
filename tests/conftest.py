"Shared test settings: tests that start the real engines (vLLM, Unsloth) run only when asked for."
import os

import pytest

# Tests and notebooks that start vLLM or train with Unsloth take minutes each on a 2-core CPU. They run when
# REASONFORGE_ENGINE_TESTS=1 (bash tools/test.sh with that variable set); CI does not set it yet: see README.
ENGINE_TESTS = os.environ.get("REASONFORGE_ENGINE_TESTS") == "1"
ENGINE_TEST_FILES = {"test_models.py", "test_generate.py", "test_train.py"}
ENGINE_TESTS_BY_NAME = {"test_real_tiny_run_survives_kills_and_resumes"}
ENGINE_NOTEBOOKS = {"04_models.ipynb", "05_generate.ipynb", "09_train.ipynb", "13_loop.ipynb", "iteration.ipynb"}

needs_engines = pytest.mark.skipif(not ENGINE_TESTS, reason="starts vLLM/Unsloth: set REASONFORGE_ENGINE_TESTS=1")


def pytest_collection_modifyitems(config, items):
    for item in items:
        notebook = getattr(item, "callspec", None) and item.callspec.params.get("notebook")
        if item.path.name in ENGINE_TEST_FILES or item.originalname in ENGINE_TESTS_BY_NAME or (notebook is not None and notebook.name in ENGINE_NOTEBOOKS):
            item.add_marker(needs_engines)
