"`reasonforge.core.quiet_engine_noise` on a real import: bitsandbytes' message about an optional CPU kernel is dropped."
import subprocess, sys

import pytest

# bitsandbytes prints it at import on a CPU with AVX-512 BF16 when the `kernels` package is missing; on any other CPU
# this makes it believe it has one, so the real import path runs here too
PROBE = """
import importlib.abc, sys
class AsIfAVX512BF16(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "bitsandbytes.backends.cpu.ops":
            import bitsandbytes.functional as functional
            functional.has_avx512bf16 = lambda: True
        return None
sys.meta_path.insert(0, AsIfAVX512BF16())
if sys.argv[1] == "quiet":
    from reasonforge.core import quiet_engine_noise
    quiet_engine_noise()
import bitsandbytes
"""


@pytest.mark.parametrize("mode, shown", [("as-is", True), ("quiet", False)])
def test_bitsandbytes_kernel_message_is_dropped(mode, shown):
    import importlib.util
    pytest.importorskip("bitsandbytes")
    if importlib.util.find_spec("kernels"): pytest.skip("the `kernels` package is installed: there is no message")
    stderr = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=300).stderr
    assert ("Failed to load CPU gemm_4bit_forward" in stderr) == shown, stderr[-2000:]
