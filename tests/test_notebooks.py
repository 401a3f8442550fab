"Every notebook in nbs/ is a test: run each one (cells flagged in settings.ini's tst_flags are skipped)."
import configparser, os
from pathlib import Path

import pytest
from nbdev.test import test_nb as run_notebook

ROOT = Path(__file__).resolve().parents[1]
_config = configparser.ConfigParser(delimiters=["="])
_config.read(ROOT/"settings.ini")
SKIP_FLAGS = _config["DEFAULT"].get("tst_flags", "").split()
FORCE_FLAGS = os.environ.get("REASONFORGE_TEST_FLAGS", "").split()  # e.g. "gpu" on a GPU machine
NOTEBOOKS = sorted(p for p in (ROOT/"nbs").glob("*.ipynb") if not p.name.startswith("_"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook(notebook):
    ok, _ = run_notebook(notebook, skip_flags=SKIP_FLAGS, force_flags=FORCE_FLAGS, showerr=True)
    assert ok, f"{notebook.name} failed: its traceback is printed above"
