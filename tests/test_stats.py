"Tests of reasonforge.stats: impossible inputs are user errors (`ReasonForgeError`), raised by the installed module."
import pytest

from reasonforge.core import ReasonForgeError
from reasonforge.stats import exact_mcnemar, paired_bootstrap, wilson_interval


def test_more_successes_than_questions_is_a_user_error():
    with pytest.raises(ReasonForgeError, match="between 0 and n=4"): wilson_interval(5, 4)
    with pytest.raises(ReasonForgeError, match="between 0 and n=4"): wilson_interval(-1, 4)


def test_stages_on_different_questions_are_a_user_error():
    with pytest.raises(ReasonForgeError, match="same questions: 1 against 2"): exact_mcnemar([True], [True, False])
    with pytest.raises(ReasonForgeError, match="same questions"): paired_bootstrap([True, False], [True])
