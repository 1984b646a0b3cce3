"""Shared test fixtures: where the read-only public corpora live, and a skip when they don't."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("CORPUSFORGE_CORPORA", REPO_ROOT.parent / "shared" / "corpora"))


@pytest.fixture(scope="session")
def corpora() -> Path:
    if not CORPORA.is_dir():
        pytest.skip(f"shared corpora not found at {CORPORA} (set CORPUSFORGE_CORPORA)")
    return CORPORA
