"""The classifiers corpusforge ships, built at set-up from reference text in installed pip packages: no binary is
committed and nothing is downloaded. `scripts/bootstrap.sh` runs

    python -m scoring.shipped build          # models/built/educational_value/{model.bin,card.json,reference/,data/}

`educational_value` follows DCLM's reference recipe (a fastText bigram classifier, explanation text against
fiction and news; `scoring/reference_text.py` lists the sources), trained with `scoring.train.train_fasttext`: one
thread, seed 0, each training in a fresh process, so the same package versions give the same `model.bin` bytes
(the build trains twice and records whether they matched). Its card adds `training_data` (each source, its side,
the distribution and version that shipped it, passages and sha256) and what was left out of it.

A rerun is a check: when the card's recipe version and package versions are the current ones and `model.bin` matches
its card's sha256, nothing is rebuilt (about a second). `configs/stages/general.toml` annotates every document with
it (`[scorers.educational_value]`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.io import file_sha256
from core.paths import REPO_ROOT
from scoring.card import CardError, read_card, write_card
from scoring.reference_text import EDUCATIONAL_VALUE, ReferenceSource, write_reference

SHIPPED_DIR = REPO_ROOT / "models" / "built"
RUBRIC = "educational_value"
# Bump when the recipe (sources, passages, parameters) changes: a built folder of another version is rebuilt.
RECIPE_VERSION = 1
SEED = 0
LEFT_OUT = (
    "every worked math solution (GSM8K and MATH ship here only as evaluation sets) and every LAMBADA novel passage: "
    "held out, so that ranking them is a check on text the classifier never saw"
)


def educational_value_dir(root: Path = SHIPPED_DIR) -> Path:
    return root / RUBRIC


def _recipe(sources: tuple[ReferenceSource, ...]) -> dict[str, Any]:
    """What decides the model's bytes besides the code: the recipe version and each source's package version."""
    return {"version": RECIPE_VERSION, "seed": SEED, "packages": {s.name: s.version() for s in sources}}


def is_current(out_dir: Path, sources: tuple[ReferenceSource, ...] = EDUCATIONAL_VALUE) -> bool:
    """Whether `out_dir` holds this recipe's classifier, its model file matching its card."""
    try:
        card = read_card(out_dir)
    except CardError:
        return False
    return card.get("rubric") == RUBRIC and card.get("recipe") == _recipe(sources)


def build_educational_value(
    out_dir: Path | None = None, sources: tuple[ReferenceSource, ...] = EDUCATIONAL_VALUE, force: bool = False
) -> tuple[dict[str, Any], bool]:
    """Write the reference text and train the `educational_value` classifier into `out_dir` (see the module
    docstring). Returns (its card, whether it was built now: False when the folder was current).

    Raises:
        FileNotFoundError: a package that ships reference text is not installed.
        ValueError: a source gave no passage.
    """
    from scoring.train import train_fasttext

    out_dir = Path(out_dir or educational_value_dir())
    if not force and is_current(out_dir, sources):
        return read_card(out_dir), False
    reference = out_dir / "reference"
    reference.mkdir(parents=True, exist_ok=True)
    written = {s.name: write_reference(s, reference) for s in sources}
    card = train_fasttext(
        [str(written[s.name][0]) for s in sources if s.positive],
        [str(written[s.name][0]) for s in sources if not s.positive],
        out_dir,
        RUBRIC,
        seed=SEED,
    )
    for side in card["inputs"].values():  # paths relative to the folder: the card reads the same in every checkout
        for entry in side:
            entry["source"] = Path(entry["source"]).relative_to(out_dir).as_posix()
    card["recipe"] = _recipe(sources)
    card["training_data"] = [
        {
            "name": s.name,
            "side": "positive" if s.positive else "negative",
            "what": s.what,
            "distribution": s.distribution,
            "version": s.version(),
            "passages": written[s.name][1],
            "sha256": file_sha256(reference / f"{s.name}.jsonl"),
        }
        for s in sources
    ]
    card["left_out"] = LEFT_OUT
    write_card(out_dir, card)
    return card, True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scoring.shipped", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build (or check) models/built/educational_value")
    build.add_argument("--out", type=Path, help="the classifier folder (default: models/built/educational_value)")
    build.add_argument("--force", action="store_true", help="rebuild even when the folder is current")
    args = parser.parse_args(argv)
    try:
        card, built = build_educational_value(args.out, force=args.force)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.out or educational_value_dir()
    held = card["heldout"]
    state = "built" if built else "up to date"
    same = card["reproducible"]["same_inputs_same_bytes"]
    print(
        f"{out}: {RUBRIC} classifier {state} (held-out accuracy {held['accuracy']}, AUC {held['auc']}; "
        f"a second training gave the same bytes: {same})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
