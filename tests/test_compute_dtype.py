"""`dtype: auto` on machines with and without BF16 (the CPU flags simulated): what each part computes in, and that
candidates sampled in one type never answer for the other."""
from unittest import mock

import pytest

import reasonforge.models
from reasonforge.config import config_from_dict
from reasonforge.core import ReasonForgeError
from reasonforge.engines import VLLMBackend, _vllm_engine_options
from reasonforge.generate import SamplingSettings, TransformersBackend, prompt_key
from reasonforge.models import compute_dtype
from reasonforge.train import TrainSettings
from reasonforge.train_job import _torch_dtype
from test_generate import model_dir  # noqa: F401  (the fixture: a model folder with stand-in weights)

WITH_BF16, WITHOUT_BF16 = {"sse4_2", "avx2", "avx512f", "avx512_bf16"}, {"sse4_2", "avx", "avx2", "fma"}


def on_cpu(flags):
    "A CPU with these flags, as `compute_dtype` sees it."
    return mock.patch.object(reasonforge.models, "cpu_flags", lambda: set(flags))


def test_auto_follows_the_cpu_flags():
    assert compute_dtype("auto", "cpu", WITH_BF16) == "bfloat16"
    assert compute_dtype("auto", "cpu", {"amx_bf16"}) == "bfloat16"
    assert compute_dtype("auto", "cpu", WITHOUT_BF16) == "float32"
    assert compute_dtype("auto", "cpu", set()) == "float32"  # flags unreadable: the portable type
    assert compute_dtype(None, "cpu", WITH_BF16) == "float32"  # no request: float32 on any CPU
    assert compute_dtype("float16", "cpu", WITHOUT_BF16) == "float16"  # an explicit type is kept
    assert compute_dtype("auto", "cuda") == compute_dtype(None, "cuda") == "bfloat16"
    with pytest.raises(ReasonForgeError, match="dtype 'bf16': choose one of auto, float32, bfloat16, float16"):
        compute_dtype("bf16")


def test_vllm_candidates_of_the_two_types_never_mix(model_dir, tmp_path):
    settings = SamplingSettings(k=4)
    with on_cpu(WITH_BF16): bf16 = VLLMBackend(model_dir, cache_folder=tmp_path/"cache", dtype="auto")
    with on_cpu(WITHOUT_BF16): fp32 = VLLMBackend(model_dir, cache_folder=tmp_path/"cache", dtype="auto")
    assert (bf16.options["dtype"], fp32.options["dtype"]) == ("bfloat16", "float32")
    assert _vllm_engine_options("cpu", bf16.options)["dtype"] == "bfloat16"  # what the engine is started with
    assert prompt_key(bf16.sampler_identity(), settings, "p") != prompt_key(fp32.sampler_identity(), settings, "p")
    bf16_cache, fp32_cache = bf16._cache_for(settings)[0], fp32._cache_for(settings)[0]
    assert bf16_cache.folder != fp32_cache.folder  # one shared cache root, two folders
    with on_cpu(WITH_BF16):  # the same request on the same machine finds the same candidates
        assert VLLMBackend(model_dir, cache_folder=tmp_path/"cache", dtype="auto").sampler_identity() == bf16.sampler_identity()
        assert VLLMBackend(model_dir, dtype="bfloat16").sampler_identity() == bf16.sampler_identity()


def test_transformers_backend_resolves_auto(model_dir):
    with on_cpu(WITH_BF16): assert TransformersBackend(model_dir, dtype="auto", device="cpu").sampler_identity()["dtype"] == "bfloat16"
    with on_cpu(WITHOUT_BF16): assert TransformersBackend(model_dir, dtype="auto", device="cpu").sampler_identity()["dtype"] == "float32"
    assert TransformersBackend(model_dir, device="cpu").sampler_identity()["dtype"] is None  # float32 on a CPU, as before


def test_training_dtype_follows_the_cpu_flags():
    with on_cpu(WITH_BF16):
        assert str(_torch_dtype(TrainSettings(dtype="auto"))) == "torch.bfloat16"
        assert str(_torch_dtype(TrainSettings())) == "torch.float32"
    with on_cpu(WITHOUT_BF16): assert str(_torch_dtype(TrainSettings(dtype="auto"))) == "torch.float32"


def test_config_rejects_an_unknown_dtype():
    base = {"model": "pypi:qwen2.5-coder-0.5b-instruct", "name": "t"}
    for section in ("engine", "training"):
        with pytest.raises(ReasonForgeError, match=f"{section}.dtype: must be one of auto, float32, bfloat16, float16 or null"):
            config_from_dict({**base, section: {"dtype": "bf16"}})
        assert getattr(config_from_dict({**base, section: {"dtype": "auto"}}), section).dtype == "auto"
