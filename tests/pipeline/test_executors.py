"""The local pool: workers replaced after a step that loads models, so that their memory leaves with them."""

from __future__ import annotations

import os

from filters.score_cut import ScoreCutStep
from filters.step import FilterStep
from pipeline.executors import LocalExecutor
from pipeline.step import Step


def test_release_workers_replaces_the_pool_workers() -> None:
    with LocalExecutor(2) as ex:
        before = set(ex.map(os.getpid, [()] * 4))
        ex.release_workers()
        after = set(ex.map(os.getpid, [()] * 4))
    assert before and after and not before & after, (before, after)
    assert os.getpid() not in before | after


def test_only_the_steps_that_load_models_release_workers() -> None:
    assert FilterStep.loads_models and ScoreCutStep.loads_models and not Step.loads_models
