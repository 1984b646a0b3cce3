"""Fixtures of the filter tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def general_chain() -> list:
    """The general stage's real filter chain (configs/stages/general.toml), built once: language ID, URL blocklist,
    the prose filters, code and books rules, word blocklists, toxicity, PII and secrets."""
    from filters.chain import build_chain
    from stage.config import load_stage_config

    return build_chain(load_stage_config("general").filters)
