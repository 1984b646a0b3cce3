"""Offline tokenizers built from vocabularies that ship in pip packages, sha256-checked before use.

Specs live in `tokenizers/<name>.toml` (the top-level folder holds no Python). Two kinds:
- `tiktoken_builtin`: tiktoken's own encoding definition (`o200k_harmony`), with the ranks file placed
  in tiktoken's cache under the key it looks up, so tiktoken reads it from disk and never downloads.
- `tiktoken_file`: a `tiktoken.Encoding` built from a ranks file, a split pattern and special tokens
  (Qwen's BPE, whose reference is the Hugging Face tokenizer.json).

Corpus text is encoded with `encode_ordinary`: special-token look-alikes inside a document stay text.

    tok = load_tokenizer("o200k_harmony")
    tok.encode_ordinary("hello world")  # [24912, 2375]

`python -m sharding.tokenizer --check` verifies every spec's files (scripts/bootstrap.sh can call it).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import sys
import threading
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.assets import ASSETS, Asset, AssetError, asset_path
from core.paths import REPO_ROOT

SPECS_DIR = REPO_ROOT / "tokenizers"
BUILT_DIR = SPECS_DIR / "built"


class TokenizerError(ValueError):
    """Unknown tokenizer name or a spec that does not match the files it names."""


@dataclass(frozen=True)
class TokenizerSpec:
    """One `tokenizers/<name>.toml`, parsed.

    Args:
        name: tokenizer name (the file stem).
        kind: "tiktoken_builtin" or "tiktoken_file".
        vocab_size: number of ids (ranks + special tokens), checked against the built encoding.
        eot_token: end-of-text token appended after each document.
        normalization: "none" or "NFC" (applied before encoding, as the reference tokenizer does).
        vocab: the `[vocab]` table (package, relpath, compression, file_sha256, sha256, num_ranks, install).
        special_tokens: known ids to check (name -> id).
        raw: the whole TOML table.
    """

    name: str
    kind: str
    vocab_size: int
    eot_token: str
    normalization: str
    vocab: dict[str, Any]
    special_tokens: dict[str, int]
    raw: dict[str, Any] = field(repr=False)

    @property
    def vocab_sha256(self) -> str:
        return self.vocab["sha256"]


def available_tokenizers() -> list[str]:
    return sorted(p.stem for p in SPECS_DIR.glob("*.toml"))


def load_spec(name: str) -> TokenizerSpec:
    """Parse `tokenizers/<name>.toml` and register its files as offline assets."""
    path = SPECS_DIR / f"{name}.toml"
    if not path.is_file():
        raise TokenizerError(f"unknown tokenizer {name!r}: no spec {path}; available: {available_tokenizers()}")
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    if raw.get("kind") not in ("tiktoken_builtin", "tiktoken_file"):
        raise TokenizerError(f"{path}: kind must be tiktoken_builtin or tiktoken_file, got {raw.get('kind')!r}")
    if raw.get("normalization", "none") not in ("none", "NFC"):
        raise TokenizerError(f"{path}: normalization must be 'none' or 'NFC', got {raw['normalization']!r}")
    spec = TokenizerSpec(
        name=raw["name"],
        kind=raw["kind"],
        vocab_size=int(raw["vocab_size"]),
        eot_token=raw["eot_token"],
        normalization=raw.get("normalization", "none"),
        vocab=raw["vocab"],
        special_tokens=dict(raw.get("special_tokens", {})),
        raw=raw,
    )
    _register(spec)
    return spec


def _register(spec: TokenizerSpec) -> None:
    v = spec.vocab
    ASSETS.setdefault(
        f"tokenizer.{spec.name}.vocab",
        Asset(
            f"tokenizer.{spec.name}.vocab",
            v["package"],
            v["relpath"],
            v["file_sha256"],
            v["install"],
            v.get("distribution"),
        ),
    )
    hf = spec.raw.get("hf_tokenizer")
    if hf:
        ASSETS.setdefault(
            f"tokenizer.{spec.name}.hf",
            Asset(
                f"tokenizer.{spec.name}.hf",
                hf["package"],
                hf["relpath"],
                hf["file_sha256"],
                hf["install"],
                hf.get("distribution"),
            ),
        )


def vocab_bytes(spec: TokenizerSpec) -> bytes:
    """The ranks file's (decompressed) bytes, after checking the shipped file's and the content's sha256."""
    path = asset_path(f"tokenizer.{spec.name}.vocab")  # AssetError names the install command
    data = path.read_bytes()
    if spec.vocab.get("compression") == "gzip":
        data = gzip.decompress(data)
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.vocab_sha256:
        raise AssetError(
            f"tokenizer {spec.name!r}: vocabulary {path} decodes to sha256 {digest}, expected {spec.vocab_sha256}; "
            f"reinstall it with `{spec.vocab['install']}`"
        )
    return data


def hf_tokenizer_path(name: str) -> Path:
    """The sha256-checked Hugging Face tokenizer.json of a spec that names one (`[hf_tokenizer]`)."""
    spec = load_spec(name)
    if "hf_tokenizer" not in spec.raw:
        raise TokenizerError(f"tokenizer {name!r} names no [hf_tokenizer] file")
    return asset_path(f"tokenizer.{name}.hf")


def _parse_ranks(data: bytes) -> dict[bytes, int]:
    import base64

    return {base64.b64decode(tok): int(rank) for tok, rank in (line.split() for line in data.splitlines() if line)}


def _build_builtin(spec: TokenizerSpec, data: bytes) -> Any:
    """tiktoken's own definition, fed from a verified file in a project-local cache (no network)."""
    import tiktoken
    from tiktoken_ext import openai_public

    cache_dir = BUILT_DIR / "tiktoken_cache"
    cache_path = cache_dir / hashlib.sha1(spec.raw["tiktoken_blobpath"].encode()).hexdigest()
    if not cache_path.is_file() or hashlib.sha256(cache_path.read_bytes()).hexdigest() != spec.vocab_sha256:
        from core.io import atomic_write_bytes

        atomic_write_bytes(cache_path, data)
    constructor = openai_public.ENCODING_CONSTRUCTORS.get(spec.raw["tiktoken_encoding"])
    if constructor is None:
        raise TokenizerError(f"tiktoken {tiktoken.__version__} has no encoding {spec.raw['tiktoken_encoding']!r}")
    # NOTE: tiktoken reads TIKTOKEN_CACHE_DIR at call time; the file is there and its hash matches, so
    # read_file_cached returns it without reaching its download branch.
    old = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    try:
        params = constructor()
    finally:
        if old is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR", None)
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = old
    return tiktoken.Encoding(**params)


def _build_file(spec: TokenizerSpec, data: bytes) -> Any:
    import tiktoken

    ranks = _parse_ranks(data)
    start = int(spec.raw["special_start_id"])
    specials = {tok: start + i for i, tok in enumerate(spec.raw["special_tokens_list"])}
    return tiktoken.Encoding(
        spec.name,
        pat_str=spec.raw["pat_str"],
        mergeable_ranks=ranks,
        special_tokens=specials,
        explicit_n_vocab=spec.vocab_size,
    )


class Tokenizer:
    """A loaded tokenizer: `encode_ordinary` for corpus text, `decode` for checks.

    Attributes:
        name, vocab_size, vocab_sha256, eot_id: what the shard manifest records.
        encoding: the underlying `tiktoken.Encoding`.
    """

    def __init__(self, spec: TokenizerSpec, encoding: Any) -> None:
        self.spec = spec
        self.name = spec.name
        self.encoding = encoding
        self.vocab_size = int(encoding.n_vocab)
        self.vocab_sha256 = spec.vocab_sha256
        self.eot_id = int(encoding.encode_single_token(spec.eot_token))
        self.nfc = spec.normalization == "NFC"
        self._core = encoding._core_bpe  # NOTE: private, but skips a Python frame per document
        self._no_specials: set[str] = set()
        self._local = threading.local()  # .core: the CoreBPE this thread encodes with (see _thread_core)
        self._claim_lock = threading.Lock()
        self._shared_claimed = False

    def normalize(self, text: str) -> str:
        if self.nfc and not unicodedata.is_normalized("NFC", text):
            return unicodedata.normalize("NFC", text)
        return text

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of `text` as plain text (special-token strings inside it are not special)."""
        self._thread_core(build=False)  # the shared core's first user owns its fast path: record who
        return self.encoding.encode_ordinary(self.normalize(text))

    def encode_np(self, text: str) -> np.ndarray:
        """Same ids as `encode_ordinary`, as a uint32 array straight from tiktoken's buffer (no list).

        With no special token allowed, tiktoken's `encode` treats special-token strings as text, exactly
        like `encode_ordinary`.
        """
        text = self.normalize(text)
        core = self._thread_core(build=False)
        try:
            buf = core.encode_to_tiktoken_buffer(text, self._no_specials)
        except UnicodeEncodeError:  # lone surrogates: tiktoken's own fallback
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            buf = core.encode_to_tiktoken_buffer(text, self._no_specials)
        return np.frombuffer(buf, dtype=np.uint32)

    def _thread_core(self, build: bool = True) -> Any:
        """The tiktoken CoreBPE this thread encodes with: the shared one for the first thread that asks,
        a private one (built on first use, ~0.1 s for o200k, under the GIL) for each later thread.

        NOTE: all of a CoreBPE's regex matchers share the regex crate's cache pools, whose lock-free slot
        belongs to the first thread that encodes; every other thread takes a mutex per regex call and
        encodes ~20% slower (o200k_harmony, same texts: 1.60 s in the first thread, 1.86-1.95 s in later
        ones, 1.49-1.58 s in a later one with its own CoreBPE).

        Args:
            build: False for one-off calls, which take the shared core even when slower.
        """
        core = getattr(self._local, "core", None)
        if core is not None:
            return core
        with self._claim_lock:
            claimed, self._shared_claimed = self._shared_claimed, True
        if claimed and not build:
            return self._core
        if claimed:
            enc = self.encoding
            core = type(self._core)(enc._mergeable_ranks, enc._special_tokens, enc._pat_str)
        else:
            core = self._core
        self._local.core = core
        return core

    def encode_batch_np(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """`encode_np` of every text: (uint32 ids back to back, int64 ids per text).

        tiktoken releases the GIL while it encodes, so threads calling this scale with cores (each with
        its own CoreBPE, see `_thread_core`); the Python part is what they contend on, hence one BytesIO
        append per text (a quarter of the cost of an array per text and a concatenate).
        """
        core, none, nfc = self._thread_core().encode_to_tiktoken_buffer, self._no_specials, self.nfc
        out = io.BytesIO()
        write = out.write
        sizes = []
        for text in texts:
            if nfc and not unicodedata.is_normalized("NFC", text):
                text = unicodedata.normalize("NFC", text)
            try:
                sizes.append(write(core(text, none)))
            except UnicodeEncodeError:
                sizes.append(write(self.encode_np(text)))
        return np.frombuffer(out.getbuffer(), dtype=np.uint32), np.array(sizes, dtype=np.int64) >> 2

    def decode(self, ids: list[int] | np.ndarray) -> str:
        return self.encoding.decode([int(i) for i in ids])

    def describe(self) -> dict[str, Any]:
        """The manifest's `tokenizer` object."""
        return {
            "name": self.name,
            "vocab_size": self.vocab_size,
            "vocab_sha256": self.vocab_sha256,
            "eot_id": self.eot_id,
            "normalization": self.spec.normalization,
        }


_LOADED: dict[str, Tokenizer] = {}


def load_tokenizer(name: str) -> Tokenizer:
    """Build (once per process) and check the tokenizer `name` ("o200k_harmony", "qwen").

    Raises:
        TokenizerError: unknown name, or the built encoding disagrees with its spec (size, special ids).
        AssetError: vocabulary file missing or with the wrong sha256; the message names the install command.
    """
    if name in _LOADED:
        return _LOADED[name]
    spec = load_spec(name)
    data = vocab_bytes(spec)
    enc = _build_builtin(spec, data) if spec.kind == "tiktoken_builtin" else _build_file(spec, data)
    if enc.n_vocab != spec.vocab_size:
        raise TokenizerError(
            f"tokenizer {name!r}: built vocabulary has {enc.n_vocab} ids, spec says {spec.vocab_size}"
        )
    if len(enc._mergeable_ranks) != spec.vocab["num_ranks"]:
        raise TokenizerError(
            f"tokenizer {name!r}: {len(enc._mergeable_ranks)} ranks, spec says {spec.vocab['num_ranks']}"
        )
    for tok, expected in spec.special_tokens.items():
        got = enc.encode_single_token(tok)
        if got != expected:
            raise TokenizerError(f"tokenizer {name!r}: special token {tok} has id {got}, spec says {expected}")
    _LOADED[name] = Tokenizer(spec, enc)
    return _LOADED[name]


def build_assets(name: str) -> Path:
    """Write `tokenizers/built/<name>.json` (the resolved spec, with file paths and hashes) and return it."""
    from core.io import atomic_write_json

    tok = load_tokenizer(name)
    out = BUILT_DIR / f"{name}.json"
    info = {
        **tok.describe(),
        "vocab_file": str(asset_path(f"tokenizer.{name}.vocab")),
        "special_tokens": dict(sorted(tok.encoding._special_tokens.items(), key=lambda kv: kv[1])[:64]),
    }
    if "hf_tokenizer" in tok.spec.raw:
        info["hf_tokenizer"] = str(hf_tokenizer_path(name))
    atomic_write_json(out, info)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sharding.tokenizer", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="load every tokenizer and verify its files")
    parser.add_argument("names", nargs="*", help=f"tokenizers (default: all of {available_tokenizers()})")
    args = parser.parse_args(argv)
    failures = 0
    for name in args.names or available_tokenizers():
        try:
            path = build_assets(name)
            tok = load_tokenizer(name)
            print(f"{name}\tvocab {tok.vocab_size}\teot {tok.eot_id}\tsha256 {tok.vocab_sha256[:16]}… ok\t{path}")
        except (AssetError, TokenizerError) as e:
            failures += 1
            print(f"{name}\tFAILED\t{e}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
