"Model sources (`reasonforge.models`): what the lessons of 04_models leave out (folders that hold no model, a plain HF folder, no engine imports)."
import subprocess, sys

import pytest

from reasonforge.core import ReasonForgeError
from reasonforge.models import resolve_model


def test_folder_without_model(tmp_path):
    with pytest.raises(ReasonForgeError, match="no config.json"):
        resolve_model(tmp_path)
    (tmp_path/"a.gguf").write_bytes(b"x"); (tmp_path/"b.gguf").write_bytes(b"y")
    with pytest.raises(ReasonForgeError, match="2 .gguf files"):
        resolve_model(tmp_path)


def test_hf_folder_is_taken_as_is(tmp_path):
    (tmp_path/"config.json").write_text("{}")
    assert resolve_model(tmp_path) == tmp_path


def test_engines_are_not_imported():
    code = "import sys, reasonforge.models, reasonforge.prompt; print([m for m in ('torch', 'vllm', 'transformers') if m in sys.modules])"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
