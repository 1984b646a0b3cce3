"""Write filters/data/language_thresholds.json from FineWeb-2's per-language filter configurations.

FineWeb-2 (Penedo et al. 2025, arXiv 2506.20920) publishes, for each language and script, the thresholds and stop
words its Gopher repetition, Gopher quality and FineWeb quality filters used, in `configs/{iso3}_{script}.yml` of the
huggingface/fineweb-2 repository (Apache-2.0). This script reads a checkout of that repository and keeps the
configurations of the languages our language ID can name (`filters.lid_models.LABELS`), mapped to FineWeb-2's
names through datatrove's tokenizer assignment table (ISO 639-1 -> ISO 639-3 and the language's default script).
The values are copied as published; `OVERRIDES` below changes the few that do not fit our segmenters, each with
its reason, and both are recorded in the output.

Usage: .venv/bin/python scripts/fineweb2_thresholds.py FINEWEB2_CHECKOUT [--commit SHA]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import yaml

from core.paths import REPO_ROOT

OUT = REPO_ROOT / "filters" / "data" / "language_thresholds.json"
# FineWeb-2 config keys we use (`language_score` is GlotLID's calibration, not our cascade's: left out).
KEYS = (
    "dup_line_frac",
    "top_n_grams",
    "dup_n_grams",
    "line_punct_thr",
    "new_line_ratio",
    "min_avg_word_length",
    "max_avg_word_length",
    "max_non_alpha_words_ratio",
    "stopwords",
)
# Labels whose FineWeb-2 configuration is not the one datatrove's table gives for their ISO 639-1 code.
CONFIG_NAMES = {
    "zh-Hans": "cmn_Hani",
    "zh-Hant": "cmn_Hani",  # FineWeb-2 has one Chinese config for both scripts
    "sr-Cyrl": "srp_Cyrl",
    "sr-Latn": "srp_Latn",
    "uz-Latn": "uzn_Latn",
    "uz-Cyrl": "uzn_Cyrl",
    "fa": "fas_Arab",
    "ar": "arb_Arab",
    "ms": "zsm_Latn",
    "sw": "swh_Latn",
    "et": "ekk_Latn",
    "lv": "lvs_Latn",
    "ku": "kmr_Latn",
    "mn": "khk_Cyrl",
    "ne": "npi_Deva",
    "om": "gaz_Latn",
    "sq": "als_Latn",
    "uzs": "uzs_Arab",
    "qu": "quy_Latn",
    "gug": "gug_Latn",
    "tl": "fil_Latn",
}
# (label, key) -> (value, reason): where a published value does not fit the words our segmenters give. (Korean's stop
# words, Kiwi morphemes such as 의, 는, 을, are kept: mecab-ko gives the same morphemes, filters/segmenters.py.)
OVERRIDES: dict[tuple[str, str], tuple[object, str]] = {
    ("te", "stopwords"): (
        [],
        "FineWeb-2's Telugu list is not function words but the template of Wikipedia's village articles "
        "(కేంద్రం 'centre', గ్రామం 'village', దూరంలో 'at a distance'); clean Telugu prose such as the UDHR "
        "holds one of them",
    ),
}


def _datatrove_config_names() -> dict[str, str]:
    """ISO 639-1 or -3 code -> `{iso3}_{script}` of the language's default script, from datatrove's table."""
    import datatrove.utils._import_utils as iu

    names: dict[str, str] = {}
    with open(Path(iu.ASSETS_PATH) / "tokenizer_assignment.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["default_script"] != "TRUE":
                continue
            name = f"{row['code_3']}_{row['script']}"
            names.setdefault(row["code_3"], name)
            if row["code_1"] and row["default_code_1"] == "TRUE":
                names.setdefault(row["code_1"], name)
    return names


def build(checkout: Path, commit: str) -> dict:
    from filters.lid_models import LABELS

    table_names = _datatrove_config_names()
    languages, missing = {}, []
    for label in sorted(LABELS):
        if label == "en":
            continue  # English keeps FineWeb's (datatrove's) defaults: no eng_Latn config is published
        name = CONFIG_NAMES.get(label) or table_names.get(label)
        path = checkout / "configs" / f"{name}.yml"
        if name is None or not path.is_file():
            missing.append(label)
            continue
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        row = {"config": name, **{k: config[k] for k in KEYS}}
        for (lang, key), (value, _) in OVERRIDES.items():
            if lang == label:
                row[key] = value
        languages[label] = row
    return {
        "source": {
            "repository": "huggingface/fineweb-2",
            "commit": commit,
            "path": "configs/{iso3}_{script}.yml",
            "licence": "Apache-2.0",
            "paper": "Penedo et al. 2025, FineWeb2, arXiv 2506.20920",
            "keys": list(KEYS),
        },
        # Set for every language in fineweb-2-pipeline.py (its FineWebQualityFilter call), not in the configs.
        "pipeline": {
            "path": "fineweb-2-pipeline.py",
            "char_duplicates_ratio": 0.1,  # "we changed this from 0.01 in fineweb english"
            "short_line_thr": None,  # short_line_thr=999: "we disable this filter"
        },
        "overrides": [
            {"language": lang, "key": key, "value": v, "reason": r} for (lang, key), (v, r) in OVERRIDES.items()
        ],
        "no_config": missing,
        "languages": languages,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkout", type=Path, help="a checkout of huggingface/fineweb-2 (its configs/ folder)")
    ap.add_argument("--commit", required=True, help="the checkout's commit, recorded as provenance")
    args = ap.parse_args()
    if not (args.checkout / "configs").is_dir():
        sys.exit(f"{args.checkout}/configs does not exist: give a checkout of huggingface/fineweb-2")
    data = build(args.checkout, args.commit)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # One line per language, so that a diff shows which language changed.
    head = json.dumps({k: v for k, v in data.items() if k != "languages"}, ensure_ascii=False, indent=1)
    rows = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in data["languages"].items())
    OUT.write_text(head[:-2] + ',\n "languages": {\n' + rows + "\n }\n}\n", encoding="utf-8")
    print(f"{OUT}: {len(data['languages'])} languages; no FineWeb-2 config for {data['no_config']}")


if __name__ == "__main__":
    main()
