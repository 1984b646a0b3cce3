"""Hugging Face tokenizer files for our tiktoken tokenizers, built from the pip-shipped vocabularies.

    python -m trainer.export_tokenizer o200k_harmony OUT_DIR     # writes tokenizer.json + tokenizer_config.json
    python -m trainer.export_tokenizer qwen OUT_DIR --chat-template chatml

`python -m trainer.export_hf CKPT OUT` writes this tokenizer for the checkpoint's own into OUT; the folder loads in
`transformers.AutoTokenizer` and in vLLM, and its ids equal `sharding.tokenizer.load_tokenizer(name)`'s.

How: a tiktoken encoding is byte-level BPE given by ranks only. The HF `tokenizers` BPE model needs a vocabulary
of GPT-2 byte-to-unicode strings and an ordered merge list; the merges are recovered from the ranks the way
transformers' `TikTokenConverter` does (every split of a token into two ranked pieces, ordered by the token's
rank). `ignore_merges` makes a pre-token that is itself in the vocabulary one token, as tiktoken does. The
split pattern is tiktoken's own regex, run by `tokenizers`' Oniguruma engine (it has the lookahead and
`(?i:...)` groups that o200k and Qwen use). Special tokens keep their tiktoken ids.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# Output formats a template may name (synth/templates/*.toml `format`), as Jinja chat templates for
# `tokenizer_config.json`. ChatML is Qwen's; harmony is GPT-OSS's message format (no tools, no channels beyond
# `final`, which is what a plain generation needs).
CHAT_TEMPLATES = {
    "chatml": (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    ),
    "harmony": (
        "{% for m in messages %}{% if m['role'] == 'assistant' %}"
        "{{ '<|start|>assistant<|channel|>final<|message|>' + m['content'] + '<|end|>' }}"
        "{% else %}{{ '<|start|>' + m['role'] + '<|message|>' + m['content'] + '<|end|>' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start|>assistant<|channel|>final<|message|>' }}{% endif %}"
    ),
}
DEFAULT_CHAT_TEMPLATE = {"o200k_harmony": "harmony", "qwen": "chatml"}


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (what HF byte-level BPE stores in its vocab)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def vocab_and_merges(ranks: dict[bytes, int]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """HF BPE vocabulary and ordered merges equivalent to tiktoken `ranks`.

    Args:
        ranks: tiktoken mergeable ranks (token bytes -> id); ids are the BPE merge priority.
    """
    b2u = _bytes_to_unicode()

    def s(b: bytes) -> str:
        return "".join(b2u[x] for x in b)

    vocab: dict[str, int] = {}
    merges: list[tuple[int, int, int, bytes, bytes]] = []
    for token, rank in ranks.items():
        vocab[s(token)] = rank
        for i in range(1, len(token)):
            left, right = token[:i], token[i:]
            rl, rr = ranks.get(left), ranks.get(right)
            # Only pieces that exist before the token itself can merge into it.
            if rl is not None and rr is not None and rl < rank and rr < rank:
                merges.append((rank, rl, rr, left, right))
    merges.sort()
    return vocab, [(s(left), s(right)) for _, _, _, left, right in merges]


def special_tokens(encoding: Any) -> list[tuple[int, str]]:
    """(id, string) of every special token in id order; where two names share an id (o200k_harmony's 200018 is
    both `<|endofprompt|>` and `<|reserved_200018|>`), the named one wins over the reserved placeholder."""
    by_id: dict[int, str] = {}
    for tok, i in encoding._special_tokens.items():
        if i not in by_id or by_id[i].startswith("<|reserved_"):
            by_id[i] = tok
    return sorted(by_id.items())


def build_hf_tokenizer(name: str) -> Any:
    """A `tokenizers.Tokenizer` with exactly the ids of our tiktoken tokenizer `name`.

    Args:
        name: a `tokenizers/<name>.toml` spec ("o200k_harmony", "qwen").
    """
    from sharding.tokenizer import load_tokenizer
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    tok = load_tokenizer(name)
    enc = tok.encoding
    vocab, merges = vocab_and_merges(enc._mergeable_ranks)
    hf = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, ignore_merges=True))
    if tok.nfc:
        hf.normalizer = normalizers.NFC()
    hf.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(enc._pat_str), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    hf.decoder = decoders.ByteLevel()
    specials = special_tokens(enc)
    expected = list(range(len(vocab), len(vocab) + len(specials)))
    if [i for i, _ in specials] != expected:
        raise ValueError(f"tokenizer {name!r}: special ids are not contiguous after the {len(vocab)} ranks")
    hf.add_special_tokens([AddedToken(t, special=True, normalized=False) for _, t in specials])
    for i, t in specials:
        assert hf.token_to_id(t) == i, (name, t, hf.token_to_id(t), i)
    return hf


def export_tokenizer(
    name: str, out_dir: Path | str, chat_template: str | None = None, model_max_length: int = 4096
) -> Path:
    """Write `tokenizer.json` and `tokenizer_config.json` for `name` into `out_dir`.

    Args:
        name: our tokenizer name, as the shard manifest records it.
        out_dir: folder to write (created); typically the folder `trainer.export_hf` wrote.
        chat_template: "chatml", "harmony" or None for the tokenizer's usual one (harmony for o200k_harmony,
            ChatML for Qwen).
        model_max_length: recorded in tokenizer_config.json.
    """
    from sharding.tokenizer import load_tokenizer

    tok = load_tokenizer(name)
    template = chat_template or DEFAULT_CHAT_TEMPLATE.get(name)
    if template is not None and template not in CHAT_TEMPLATES:
        raise ValueError(f"unknown chat template {template!r}; choose one of {sorted(CHAT_TEMPLATES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hf = build_hf_tokenizer(name)
    tmp = out / "tokenizer.json.tmp"
    hf.save(str(tmp))
    tmp.replace(out / "tokenizer.json")
    eot = tok.spec.eot_token
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": eot,
        "bos_token": None,
        "pad_token": eot,
        "model_max_length": model_max_length,
        "clean_up_tokenization_spaces": False,
        "add_bos_token": False,
        "corpusforge_tokenizer": name,
        "corpusforge_vocab_sha256": tok.vocab_sha256,
    }
    if template is not None:
        config["chat_template"] = CHAT_TEMPLATES[template]
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.export_tokenizer", description=__doc__.splitlines()[0])
    parser.add_argument("name", help="tokenizer (o200k_harmony, qwen)")
    parser.add_argument("out_dir", type=Path, help="folder to write tokenizer.json + tokenizer_config.json into")
    parser.add_argument("--chat-template", choices=sorted(CHAT_TEMPLATES), default=None)
    parser.add_argument("--model-max-length", type=int, default=4096)
    args = parser.parse_args(argv)
    try:
        path = export_tokenizer(args.name, args.out_dir, args.chat_template, args.model_max_length)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}/tokenizer.json (load with transformers.AutoTokenizer.from_pretrained)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
