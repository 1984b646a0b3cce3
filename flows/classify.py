"""`python -m flows.classify train --positives SOURCES --negatives SOURCES --rubric NAME --out CLS_DIR`: a document
classifier from reference text, with no LLM (DCLM's recipe: fastText with word bigrams; `scoring/train.py`).

SOURCES: a sources file (TOML with `[[source]]` tables) or a finished stage run folder, one or more per side. The
folder gets `model.bin`, `card.json` (label counts, held-out accuracy and AUC, per language, the sha256 of the
model and of the training data) and `data/` (the training and held-out files). A stage scores its documents with
it through a `[scorers.<name>]` table (`model = CLS_DIR`).

`python -m flows.classify train --labels OUT_DIR --rubric NAME --out CLS_DIR` learns an annotator's labels instead
(`flows.annotate`'s output; annotate/distil.py): the labelled documents of the annotated run, positive when their
ordinal label is >= `--min-label` (3: FineWeb-Edu's threshold for educational_value); the card adds the annotation
table's sha256, the label counts and the annotator's model sha256.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scoring.train import FastTextParams


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.classify", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a classifier from reference text or from an annotator's labels")
    train.add_argument(
        "--positives",
        nargs="+",
        metavar="SOURCES",
        help="sources files (.toml) or finished run folders of the positive label",
    )
    train.add_argument(
        "--negatives",
        nargs="+",
        metavar="SOURCES",
        help="sources files (.toml) or finished run folders of the negative label",
    )
    train.add_argument("--labels", metavar="OUT_DIR", help="a flows.annotate output folder (instead of the SOURCES)")
    train.add_argument(
        "--from",
        dest="from_dir",
        metavar="RUN_DIR",
        help="with --labels: the annotated run (default: the one its annotate.json records)",
    )
    train.add_argument("--min-label", type=int, default=3, help="with --labels: the lowest positive label (3)")
    train.add_argument("--rubric", required=True, metavar="NAME", help="what the score means, e.g. educational_value")
    train.add_argument("--out", required=True, metavar="CLS_DIR", help="classifier folder to write")
    train.add_argument("--kind", choices=["fasttext"], default="fasttext", help="classifier kind (default fasttext)")
    train.add_argument("--seed", type=int, default=0, help="held-out split, training order and fastText seed")
    train.add_argument("--heldout-fraction", type=float, default=0.2, metavar="F", help="share held out (0.2)")
    train.add_argument("--dim", type=int, help="fastText vector size (64)")
    train.add_argument("--epoch", type=int, help="fastText epochs (5)")
    train.add_argument("--bucket", type=int, help="fastText hashed n-gram rows (200000)")
    train.add_argument(
        "--no-verify",
        action="store_true",
        help="skip the second training that checks the model bytes are reproducible",
    )
    args = parser.parse_args(argv)
    if args.labels is not None and (args.positives or args.negatives):
        parser.error("give --labels OUT_DIR or --positives and --negatives, not both")
    if args.labels is None and not (args.positives and args.negatives):
        parser.error("give --positives and --negatives (reference text), or --labels OUT_DIR (an annotator's labels)")

    from scoring.texts import SourcesArgumentError
    from scoring.train import FastTextParams

    overrides = {k: getattr(args, k) for k in ("dim", "epoch", "bucket") if getattr(args, k) is not None}
    try:
        params = FastTextParams(**overrides)
        if args.labels is not None:
            from annotate.distil import train_from_annotations

            card = train_from_annotations(
                args.labels,
                args.rubric,
                Path(args.out),
                run=args.from_dir,
                min_label=args.min_label,
                seed=args.seed,
                heldout_fraction=args.heldout_fraction,
                params=params,
                verify=not args.no_verify,
            )
        else:
            card = _train_reference(args, params)
    except (SourcesArgumentError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    heldout = card["heldout"]
    print(
        f"{args.out}: held-out accuracy {heldout['accuracy']}, AUC {heldout['auc']} "
        f"({heldout['count']} documents); card: {Path(args.out) / 'card.json'}"
    )
    print(json.dumps(card["label_counts"]))
    return 0


def _train_reference(args: argparse.Namespace, params: FastTextParams) -> dict[str, Any]:
    """DCLM's recipe on reference text: --positives and --negatives SOURCES, each checked before any reading."""
    from scoring.texts import check_source
    from scoring.train import train_fasttext

    for source in [*args.positives, *args.negatives]:
        check_source(source)
    return train_fasttext(
        args.positives,
        args.negatives,
        Path(args.out),
        args.rubric,
        seed=args.seed,
        heldout_fraction=args.heldout_fraction,
        params=params,
        verify=not args.no_verify,
    )


if __name__ == "__main__":
    sys.exit(main())
