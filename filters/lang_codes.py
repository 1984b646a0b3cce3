"""Language labels reduced to the ISO code a word list, table row or model is looked up by."""

from __future__ import annotations

import re

# Old or alternative codes -> the code our lists use (Norwegian Bokmål/Nynorsk share "no"; Hebrew, Indonesian and
# Filipino had other codes before ISO 639 changed them).
_LANG_ALIASES = {"nb": "no", "nn": "no", "iw": "he", "in": "id", "tl": "fil"}


def normalize_lang(lang: str | None) -> str | None:
    """ISO code used to look up a word list or model: lower case, region/script stripped ("zh-Hans" -> "zh")."""
    if not lang:
        return None
    base = re.split(r"[-_]", lang.strip().lower(), maxsplit=1)[0]
    return _LANG_ALIASES.get(base, base)
