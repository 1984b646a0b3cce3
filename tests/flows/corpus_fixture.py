"""A small corpus written for the flow tests: good prose, duplicates, PII, bad records, code; the stage config
the flow tests run it with (an evaluation set to decontaminate against), and the same corpus split over many units.

All text here is written for this project (no third-party text).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

PARAGRAPHS = [
    "The river town woke slowly in the autumn mornings. Fishermen pulled their boats onto the gravel and "
    "sorted the night's catch while the bakery on the square filled the street with the smell of warm bread. "
    "Children walked to the school by the bridge, and the old clock on the church tower was always a few "
    "minutes late, which nobody in the town seemed to mind. In the afternoon the market opened and farmers "
    "from the hills sold apples, cheese and honey to anyone who would stop and talk for a while.",
    "A good recipe for vegetable soup starts with onions cooked gently in olive oil until they are soft. "
    "Add carrots, celery and a few potatoes cut into small pieces, then pour in enough water to cover them. "
    "Let the pot simmer for about forty minutes and season it with salt, pepper and a handful of fresh herbs. "
    "The soup keeps well for several days in a cold place, and many people think it tastes even better on "
    "the second day, when the flavours have had time to come together.",
    "Learning to play the piano takes patience more than talent. Most teachers ask their students to practise "
    "scales every day, slowly at first and then a little faster each week. It is better to play a short piece "
    "well than a long piece badly, and recording yourself is a simple way to hear mistakes that you miss while "
    "you are playing. After a few months the hands begin to move on their own, and the music becomes a "
    "pleasure instead of a task.",
    "The library in our district was rebuilt after the flood of the spring. The new building has large windows "
    "that face the park, a quiet reading room on the upper floor and a corner for children with low shelves "
    "and soft chairs. Volunteers helped to move thousands of books from the temporary rooms in the town hall, "
    "and the opening day was celebrated with music, coffee and a short speech by the oldest reader in town, "
    "who had borrowed her first book there seventy years ago.",
]

FRENCH = (
    "Le petit village se trouve au bord d'un lac entouré de montagnes. Chaque matin, les habitants se "
    "retrouvent au café de la place pour parler du temps qu'il fait et des nouvelles de la semaine. En été, "
    "les touristes viennent se baigner et marcher sur les sentiers de la forêt, et le soir on entend la "
    "musique des fêtes qui durent jusqu'à minuit. En hiver, le lac gèle parfois et les enfants y patinent "
    "pendant des heures sous le regard attentif de leurs parents."
)

MATH = [
    "A baker makes twenty four loaves of bread every morning. She sells each loaf for three dollars and gives "
    "four loaves to a shelter at the end of the day. How much money does she make in one week if she sells all "
    "the other loaves every day? She sells twenty loaves a day, which gives sixty dollars a day, so in one week "
    "she makes four hundred and twenty dollars. The answer is 420.",
    "A rectangle has a perimeter of thirty six centimetres and its length is twice its width. Let the width be "
    "w, so the length is two times w and the perimeter is six times w, which gives a width of six and a length "
    "of twelve. The area of the rectangle is therefore seventy two square centimetres. Its diagonal is the "
    "square root of one hundred and eighty, which is about thirteen and a half centimetres.",
]

CODE = '''"""Small helpers for reading settings files."""

import json
import random
from pathlib import Path


def load_settings(path: Path) -> dict:
    """Read a JSON settings file and fill in the defaults."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    data.setdefault("retries", 3)
    data.setdefault("timeout", 10.0)
    return data


def save_settings(path: Path, data: dict) -> None:
    """Write settings back, sorted, so that diffs stay small."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\\n", encoding="utf-8")
'''


# Each text gets a closing passage so that it has the five or more sentences C4's rule asks for.
CLOSING = (
    " Many visitors say that this is what they remember best about the place. Some of them come back every "
    "year, and a few of them even decide to stay for good. There is always something new to notice when you "
    "look closely."
)
PARAGRAPHS = [p + CLOSING for p in PARAGRAPHS]
FRENCH += (
    " Beaucoup de visiteurs disent que c'est ce dont ils se souviennent le mieux. Certains reviennent chaque "
    "année, et quelques-uns décident même de rester pour toujours."
)
MATH = [
    m + " We can check the result by working backwards from the answer, which is a good habit for every problem. "
    "Teachers often ask students to explain each step in words as well as in numbers."
    for m in MATH
]


def write_corpus(root: Path, contaminate_with: str | None = None) -> Path:
    """Write the fixture corpus under `root` and return its sources file.

    Web JSONL holds: 4 good English paragraphs, one French paragraph, an exact duplicate, a near
    duplicate (one word changed), a paragraph with an email and a phone number, a tiny document, and 4 bad
    records (malformed JSON, invalid UTF-8, missing field, empty text).
    """
    (root / "web").mkdir(parents=True, exist_ok=True)
    near_dup = PARAGRAPHS[1].replace("forty minutes", "thirty minutes")
    pii = (
        "Our reading club meets on the first Tuesday of every month in the back room of the old bookshop. This "
        "season we are reading novels about the sea, from short adventure stories to long family sagas. New "
        "members are always welcome, and nobody has to finish the book to join the conversation. Tea and cake "
        "are served at half past seven, and the discussion usually goes on until the shop closes. Write to the "
        "librarian at anna.berg@example.org or call +1 415-555-0132 for details."
    )
    texts = [*PARAGRAPHS, FRENCH, PARAGRAPHS[0], near_dup, pii, "Too short."]
    lines = [
        json.dumps({"text": t, "url": f"https://blog.example.net/post/{i}"}).encode() for i, t in enumerate(texts)
    ]
    lines += [b'{"text": "broken', b'{"text": "caf\xe9"}', json.dumps({"body": "x"}).encode(), b'{"text": ""}']
    (root / "web" / "part-1.jsonl").write_bytes(b"\n".join(lines) + b"\n")

    (root / "stem").mkdir(exist_ok=True)
    stem = list(MATH)
    if contaminate_with:
        stem.append(
            "Word problems about gardens are popular in primary school because children can picture them. "
            "Teachers like them as well, since the numbers stay small and the steps are easy to follow. Here is "
            "one that appeared on a worksheet last spring. It is copied here word for word, as it was printed. "
            + contaminate_with
        )
    with open(root / "stem" / "problems.jsonl", "w") as f:
        for i, t in enumerate(stem):
            f.write(json.dumps({"problem": t, "id": i}) + "\n")

    repo = root / "repo"
    repo.mkdir(exist_ok=True)
    (repo / "LICENSE").write_text("Permission is hereby granted, free of charge, to any person obtaining a copy")
    (repo / "settings.py").write_text(CODE)
    (repo / "blob.py").write_bytes(b"\x00\x01\x02 binary")

    sources = root / "sources.toml"
    sources.write_text(
        """
[[source]]
name = "web-blog"
domain = "web"
format = "jsonl"
path = "web/*.jsonl"
url_field = "url"
license = "CC-BY-4.0"

[[source]]
name = "math-problems"
domain = "stem"
format = "jsonl"
path = "stem/*.jsonl"
text_field = "problem"
metadata_fields = ["id"]
license = "MIT"

[[source]]
name = "settings-repo"
domain = "code"
format = "code"
path = "repo"
"""
    )
    return sources


# Records in the corpus above (without contamination): 9 web lines + 4 bad + 2 stem + 2 code files.
RECORDS = 17
QUARANTINED = 5  # malformed_json, invalid_utf8, missing_text_field, empty_text, binary_file


EVAL_QUESTION = (
    "A gardener plants seven rows of tulips with eleven bulbs in each row and then gives away nine bulbs to "
    "her neighbour, how many bulbs are left in the garden?"
)


def write_stage_config(root: Path, sources: Path) -> Path:
    evalset = root / "eval" / "mini_eval.jsonl"
    evalset.parent.mkdir(parents=True, exist_ok=True)
    evalset.write_text(json.dumps({"question": EVAL_QUESTION, "answer": "68"}) + "\n")
    cfg = root / "stage.toml"
    cfg.write_text(
        f"""
stage = "general"
sources = "{sources}"
[filters.langid]
min_score = 0.65
[dedup.minhash]
ngram = 5
[decontam]
ngram = 13
[[decontam.eval_sets]]
name = "mini_eval"
path = "{evalset}"
fields = ["question"]
[mixture]
seed = 7
[mixture.domains]
web = 0.6
stem = 0.2
code = 0.2
[shards]
tokenizer = "o200k_harmony"
seq_len = 64
"""
    )
    return cfg


# Near-duplicate of a document of web/part-1.jsonl, placed in another file, so in another work unit.
CROSS_UNIT_NEAR_DUP = PARAGRAPHS[2].replace("a few months", "several months")


def write_split_corpus(root: Path, extra_files: int = 4, docs_per_file: int = 12) -> tuple[Path, Path]:
    """The flow fixture corpus plus `extra_files` more web files (distinct documents, and one near-duplicate of
    a part-1 document in part-3): a stage with many units."""
    sources = write_corpus(root, contaminate_with=EVAL_QUESTION)
    rng = random.Random(7)
    words = " ".join(PARAGRAPHS).split()
    for f in range(2, 2 + extra_files):
        lines = []
        for i in range(docs_per_file):
            # Sentences of words drawn at random: distinct documents (no shared 5-gram to speak of).
            body = ". ".join(" ".join(rng.choice(words) for _ in range(12)).capitalize() for _ in range(8))
            lines.append(
                json.dumps({"text": f"Notebook {f}-{i}. {body}.", "url": f"https://notes.example.net/{f}/{i}"})
            )
        if f == 3:
            lines.append(json.dumps({"text": CROSS_UNIT_NEAR_DUP, "url": "https://copy.example.net/1"}))
        (root / "web" / f"part-{f}.jsonl").write_text("\n".join(lines) + "\n")
    return sources, write_stage_config(root, sources)


def outputs(run_dir: Path) -> dict[str, bytes]:
    """Every published byte: the corpus (docs, lineage, quarantine) and the shards with their manifest."""
    files = {}
    for top in ("corpus", "shards"):
        for p in sorted((run_dir / top).rglob("*")):
            if p.is_file():
                files[str(p.relative_to(run_dir))] = p.read_bytes()
    return files
