"""Where the repository is, which stages it knows, and the name of the marker that says a piece of work is done.

Every package reads these names from here; none spells them again.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
STAGES_DIR = REPO_ROOT / "configs" / "stages"
# The curriculum stages in training order: a stage's trainer resumes from the previous stage's checkpoint.
STAGES = ("general", "reasoning", "long_context")
# Written last into a finished unit, reduce or corpus folder: a folder without it is not done.
SUCCESS_MARKER = "_SUCCESS.json"
# A finished step's fingerprint, its units in order and its merged counts (steps/<step>/_STEP.json).
STEP_MARKER = "_STEP.json"
