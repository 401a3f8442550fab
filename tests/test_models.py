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


def test_converting_the_default_model_prints_nothing(tmp_path):
    "A fresh cache: the embedded model is reassembled and converted in this process with nothing on the console (no torchao, torch or transformers messages, no bars)."
    import os
    code = "from reasonforge.models import resolve_model; print(resolve_model())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "REASONFORGE_CACHE": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path/"models"/"qwen2.5-coder-0.5b-instruct"/"hf") and done.stderr == "", done.stderr
