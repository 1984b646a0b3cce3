"""Per-language thresholds of the language-ID score, FineWeb-2 style, beside the prose filters' table.

`data/lid_thresholds.json` (written by `scripts/lid_thresholds.py`, which records its reference text, commit and
rule) holds, for each language the cascade names, the score a document must exceed to be kept: FineWeb-2's
max(0.3, min(0.9, median - std)) of the cascade's scores on held-out text of that language (Penedo et al. 2025,
arXiv 2506.20920, section 3). `filters.langid.LangId` uses it for the languages its `min_scores` does not name.
English has no row: it keeps FineWeb's 0.65, so English decisions stay datatrove's.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

TABLE_PATH = Path(__file__).parent / "data" / "lid_thresholds.json"


@functools.cache
def min_scores() -> dict[str, float]:
    """{label: threshold} of the table, checked (every value a number in [0, 1]) when first read."""
    rows = json.loads(TABLE_PATH.read_text(encoding="utf-8"))["languages"]
    table = {lang: row["min_score"] for lang, row in rows.items()}
    bad = {k: v for k, v in table.items() if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1}
    if bad:
        raise ValueError(f"{TABLE_PATH}: min_score must be a number in [0, 1]: {bad}")
    return table
