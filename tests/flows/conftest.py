"""`finished_run`: a run folder the real stage wrote, once per session, for tests that only read a run."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """The `general` stage run to the end on the flow fixture corpus (corpus, lineage, quarantine, shards and
    funnel.json), through `run_stage` and the local step runner: no Prefect server, so it stays cheap. Read it,
    never write it: copy it (`shutil.copytree`) to craft a bad one."""
    from ingest.sources import load_sources
    from pipeline.layout import RunLayout
    from pipeline.runner import run_step
    from stage.config import load_stage_config
    from stage.run import run_stage
    from tests.flows.corpus_fixture import write_corpus, write_stage_config

    root = tmp_path_factory.mktemp("finished")
    sources = write_corpus(root)
    layout = RunLayout(root / "run")
    cfg = load_stage_config("general", write_stage_config(root, sources))
    run_stage(cfg, load_sources(str(sources)), layout, lambda step: run_step(step, layout))
    return layout.root
