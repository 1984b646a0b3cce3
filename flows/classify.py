"""`python -m flows.classify train --positives SOURCES --negatives SOURCES --rubric NAME --out CLS_DIR`: a document
classifier from reference text, with no LLM (DCLM's recipe: fastText with word bigrams; `scoring/train.py`).

SOURCES: a sources file (TOML with `[[source]]` tables) or a finished stage run folder, one or more per side. The
folder gets `model.bin`, `card.json` (label counts, held-out accuracy and AUC, per language, the sha256 of the
model and of the training data) and `data/` (the training and held-out files). A stage scores its documents with
it through a `[scorers.<name>]` table (`model = CLS_DIR`).

`python -m flows.classify train --labels OUT_DIR --rubric NAME --out CLS_DIR` learns an annotator's labels instead
(`flows.annotate`'s output; annotate/distil.py): the labelled documents of the annotated run, positive when their
ordinal label is >= `--min-label` (3: FineWeb-Edu's threshold for educational_value); the card adds the annotation
table's sha256, the label counts and the annotator's model sha256. A class rubric (`topic`, `format`, `safety`)
trains one multi-class fastText classifier (its card: the classes, held-out accuracy and macro-F1); a stage then
scores each class (`scores['<scorer>.<class>']`); with `--kind embedding`, a multinomial logistic-regression head.

`--kind embedding` trains FineWeb-Edu's recipe instead (`scoring/embedding.py`): frozen all-MiniLM-L6-v2 embeddings
of each document's first `--max-tokens` word pieces and a linear head, a logistic regression on reference text, a
regression of the ordinal label on an annotator's labels (the card then adds Spearman's rank correlation; the
fastText card of ordinal labels has it too). The folder gets `head.json` in place of `model.bin`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scoring.embedding import EmbeddingParams
    from scoring.train import FastTextParams

FASTTEXT_ARGS, EMBEDDING_ARGS = ("dim", "epoch", "bucket"), ("max_tokens", "threads")


def _parser() -> argparse.ArgumentParser:
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
    train.add_argument(
        "--kind",
        choices=["fasttext", "embedding"],
        default="fasttext",
        help="fastText with word bigrams (DCLM, default) or a head on MiniLM embeddings (FineWeb-Edu)",
    )
    train.add_argument("--seed", type=int, default=0, help="held-out split, training order and fastText seed")
    train.add_argument("--heldout-fraction", type=float, default=0.2, metavar="F", help="share held out (0.2)")
    train.add_argument("--dim", type=int, help="fastText vector size (64)")
    train.add_argument("--epoch", type=int, help="fastText epochs (5)")
    train.add_argument("--bucket", type=int, help="fastText hashed n-gram rows (200000)")
    train.add_argument("--max-tokens", type=int, help="embedding: word pieces embedded per document (256)")
    train.add_argument("--threads", type=int, help="embedding: torch CPU threads (1, reproducible)")
    train.add_argument(
        "--no-verify",
        action="store_true",
        help="skip the second training that checks the model bytes are reproducible",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.labels is not None and (args.positives or args.negatives):
        parser.error("give --labels OUT_DIR or --positives and --negatives, not both")
    if args.labels is None and not (args.positives and args.negatives):
        parser.error("give --positives and --negatives (reference text), or --labels OUT_DIR (an annotator's labels)")

    other = FASTTEXT_ARGS if args.kind == "embedding" else EMBEDDING_ARGS
    wrong = [f"--{k.replace('_', '-')}" for k in other if getattr(args, k) is not None]
    if wrong:
        parser.error(f"{', '.join(wrong)}: not a setting of --kind {args.kind}")

    from core.assets import AssetError
    from scoring.card import CardError
    from scoring.texts import SourcesArgumentError

    try:
        params = _params(args)
        if args.kind == "embedding":  # the encoder asset checked (and unpacked) before any document is read
            from scoring.encoder import unpack_encoder

            unpack_encoder()
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
    except (SourcesArgumentError, AssetError, CardError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    heldout = card["heldout"]
    spearman = f", Spearman {heldout['spearman']}" if "spearman" in heldout else ""
    second = f"macro-F1 {heldout['macro_f1']}" if "macro_f1" in heldout else f"AUC {heldout['auc']}{spearman}"
    print(
        f"{args.out}: held-out accuracy {heldout['accuracy']}, {second} "
        f"({heldout['count']} documents); card: {Path(args.out) / 'card.json'}"
    )
    print(json.dumps(card["label_counts"]))
    return 0


def _params(args: argparse.Namespace) -> FastTextParams | EmbeddingParams:
    """The kind's checked settings from the command line (defaults where an option is not given)."""
    keys = EMBEDDING_ARGS if args.kind == "embedding" else FASTTEXT_ARGS
    overrides = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    if args.kind == "embedding":
        from scoring.embedding import EmbeddingParams

        return EmbeddingParams(**overrides)
    from scoring.train import FastTextParams

    return FastTextParams(**overrides)


def _train_reference(args: argparse.Namespace, params: FastTextParams | EmbeddingParams) -> dict[str, Any]:
    """DCLM's recipe on reference text (or FineWeb-Edu's, `--kind embedding`): --positives and --negatives
    SOURCES, each checked before any reading."""
    from scoring.embedding import EmbeddingParams
    from scoring.texts import check_source
    from scoring.train import train_fasttext

    for source in [*args.positives, *args.negatives]:
        check_source(source)
    if isinstance(params, EmbeddingParams):
        from scoring.embedding import read_sides, train_embedding

        examples, inputs = read_sides(args.positives, args.negatives)
        return train_embedding(
            examples,
            Path(args.out),
            args.rubric,
            inputs=inputs,
            seed=args.seed,
            heldout_fraction=args.heldout_fraction,
            params=params,
            verify=not args.no_verify,
        )
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
