"""The prose filters load spaCy without torch (filters/text_features.py): thinc's torch import is most of spaCy's
start-up, paid by every process and worker that filters. torch must still import afterwards (the trainer and the
perplexity scorer share processes with the filters in tests and flows)."""

from __future__ import annotations

import subprocess
import sys

from core.paths import REPO_ROOT

PROBE = """
import sys
from filters.text_features import tokenizer_for
words = tokenizer_for("en").words("Plants turn light into sugar. Animals eat plants.")
assert words[:3] == ["Plants", "turn", "light"], words
assert "torch" not in sys.modules, "spaCy's start-up imported torch"
import thinc.compat
assert thinc.compat.has_torch is False
import torch
assert torch.ones(2).sum().item() == 2.0
print("ok")
"""


def test_filters_load_spacy_without_torch_and_torch_still_imports_after():
    res = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]
