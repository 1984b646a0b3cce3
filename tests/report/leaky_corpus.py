"""The flow tests' corpus plus a source that leaks a secret and an email in every way a report could show it.

All text here is written for this project. The secret is a made-up GitHub token (the right shape, no account).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.flows.corpus_fixture import write_corpus

EMAIL = "jane.doe.leak@corp-mail.com"
SECRET = "ghp_" + "Zq8Lr2Vw7Kd4Xm9Tb3Nc6Hy1Pf5Gs0Ja2Ue7Wx"  # 36 characters after ghp_

# A bullet list: Gopher quality drops it (too many bullet lines), after language ID kept it, so the raw text
# (email and token unredacted: the redactors come later in the chain) is what `ingested` holds for it.
BULLETS = "\n".join(
    f"- {line}"
    for line in [
        f"Please write to {EMAIL} before Monday if you want to join the walking group this spring.",
        f"The deploy token for the club website is {SECRET} and it must never be shared with anyone.",
        "We meet at the station at eight in the morning and walk along the river to the old mill.",
        "Bring water, a warm jacket and good shoes, because the path can be muddy after the rain.",
        "Lunch is at the farm cafe, where the owner makes soup and fresh bread for the walkers.",
        "In the afternoon we climb the hill behind the church and come back through the forest.",
        "Children are welcome if an adult comes with them and they can walk about ten kilometres.",
        "Dogs must stay on a lead near the sheep fields, and please close every gate behind you.",
    ]
)

KEPT = (
    "The walking club keeps a small library of maps in the back room of the community hall. Members can "
    "borrow a map for a week and return it at the next meeting, and the secretary keeps a list of who has "
    "which one. Most of the maps show the hills to the north of the town, where the paths are well marked "
    "and the views over the valley are wide. A few older maps show routes that no longer exist because the "
    f"forest has grown over them. Questions about the library go to {EMAIL} and the website is updated with "
    f"the token {SECRET} by the volunteers. The club also organises a clean-up day every autumn."
)


def write_leaky_corpus(root: Path) -> Path:
    """The flow fixture corpus plus source `leaky`: a dropped document, a kept document and a quarantined record
    that each hold EMAIL and SECRET. Returns the sources file."""
    sources = write_corpus(root)
    (root / "leaky").mkdir(exist_ok=True)
    lines = [
        json.dumps({"text": BULLETS}),
        json.dumps({"text": KEPT}),
        json.dumps({"body": f"contact {EMAIL} token {SECRET}"}),
    ]
    (root / "leaky" / "notes.jsonl").write_text("\n".join(lines) + "\n")
    with open(sources, "a") as f:
        f.write('\n[[source]]\nname = "leaky"\ndomain = "web"\nformat = "jsonl"\npath = "leaky/*.jsonl"\n')
    return sources


def write_stage_config(root: Path, sources: Path) -> Path:
    """A stage file for the fixture corpus: the default filters, small shards, no evaluation sets."""
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
enabled = false
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
