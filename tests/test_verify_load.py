"""Load (issue 7): 100,000 candidates verified in one batch finish with bounded memory and the same verdicts as small
batches. The triples and the measurement come from `benchmarks/verify_load.py` (which prints the same figures)."""
import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("verify_load", Path(__file__).parents[1]/"benchmarks"/"verify_load.py")
verify_load = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(verify_load)

# The parent keeps the triples (built before the baseline is read), one small dict entry per distinct triple and one
# `Verdict` per triple (~0.5 KB each with its strings): ~50 MB for 100,000. Rows never reach the parent; if they did,
# 100,000 results of up to 100,000 rows each would take gigabytes. 512 MiB is ten times the expected growth.
PARENT_GROWTH_LIMIT_KIB = 512 * 1024
# A worker holds at most one task's results and 500,000 cached gold rows; its address space is capped at its start
# size plus 2048 MB anyway, so peak RSS above 1 GiB would mean a leak well before the cap is hit.
WORKER_PEAK_LIMIT_KIB = 1024 * 1024


@pytest.fixture(scope="module")
def figures():
    return verify_load.measure(count=100_000, small_batch=1_000)  # all 100,000 again, 1,000 at a time


def test_the_triples_mix_right_wrong_and_failing_candidates(figures):
    kinds = figures["verdicts"]
    assert figures["count"] == sum(kinds.values()) == 100_000
    assert kinds["match"] > 25_000 and kinds["wrong"] > 25_000, kinds
    assert kinds["syntax"] > 2_000 and kinds["schema"] > 5_000, kinds
    assert figures["distinct_triples"] < 100_000  # repeats, as k samples of one question have


def test_one_batch_gives_the_verdicts_of_small_batches(figures):
    assert figures["compared"] == 100_000
    assert figures["differing"] == [], figures["differing"][:5]


@pytest.mark.skipif(verify_load.memory_kib() is None, reason="reads /proc (Linux)")
def test_memory_stays_bounded(figures):
    if figures["peak_reset"]:  # otherwise the parent's peak may come from an earlier test in this process
        growth = figures["parent_peak_kib"] - figures["parent_before_kib"]
        assert 0 <= growth < PARENT_GROWTH_LIMIT_KIB, growth
    assert all(peak is not None and peak < WORKER_PEAK_LIMIT_KIB for peak in figures["worker_peak_kib"]), figures["worker_peak_kib"]
    assert figures["stats"]["replaced_workers"] in (None, 0)  # no worker died or had to be killed
