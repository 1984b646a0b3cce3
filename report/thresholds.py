"""The threshold behind each drop reason, as the run's filters applied it: the stage file's value, else the filter's
constructor default (`threshold`), and for a document of another language the value of that language
(`LanguageThresholds`: FineWeb-2's per-language rows of the prose filters, language ID's per-language minimum
scores), so that the report does not show English's bar beside a Thai document's score.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
from typing import Any

log = logging.getLogger(__name__)

# A drop reason -> (filter table, constructor argument holding its threshold). `top_{n}_gram` and
# `duplicated_{n}_n_grams` thresholds live in GopherRepetition's (n, ratio) tuples, see `threshold`.
THRESHOLDS: dict[str, tuple[str, str]] = {
    "langid_low_score": ("langid", "min_score"),
    "gopher_quality_short_doc": ("gopher_quality", "min_doc_words"),
    "gopher_quality_long_doc": ("gopher_quality", "max_doc_words"),
    "gopher_quality_below_avg_threshold": ("gopher_quality", "min_avg_word_length"),
    "gopher_quality_above_avg_threshold": ("gopher_quality", "max_avg_word_length"),
    "gopher_quality_too_many_hashes": ("gopher_quality", "max_symbol_word_ratio"),
    "gopher_quality_too_many_ellipsis": ("gopher_quality", "max_symbol_word_ratio"),
    "gopher_quality_too_many_bullets": ("gopher_quality", "max_bullet_lines_ratio"),
    "gopher_quality_too_many_end_ellipsis": ("gopher_quality", "max_ellipsis_lines_ratio"),
    "gopher_quality_below_alpha_threshold": ("gopher_quality", "min_alpha_words_ratio"),
    "gopher_quality_single_char_words": ("gopher_quality", "max_single_char_word_ratio"),  # per language only
    "gopher_repetition_dup_para_frac": ("gopher_repetition", "max_dup_para_ratio"),
    "gopher_repetition_dup_para_char_frac": ("gopher_repetition", "max_dup_para_char_ratio"),
    "gopher_repetition_dup_line_frac": ("gopher_repetition", "max_dup_line_ratio"),
    "gopher_repetition_dup_line_char_frac": ("gopher_repetition", "max_dup_line_char_ratio"),
    "fineweb_line_punct_ratio": ("fineweb", "min_line_punct_ratio"),
    "fineweb_short_line_ratio": ("fineweb", "max_short_line_ratio"),
    "fineweb_char_dup_ratio": ("fineweb", "max_char_dup_ratio"),
    "fineweb_list_ratio": ("fineweb", "max_newline_ratio"),
}
_NGRAM_REASON = re.compile(r"gopher_repetition_(?:top_(\d+)_gram|duplicated_(\d+)_n_grams)$")


def filter_tables(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The run's `[filters.*]` tables (from the config the summary names, else the stage's default)."""
    from core.stage_files import ConfigError
    from stage.config import load_stage_config

    try:
        return load_stage_config(summary["stage"], summary.get("config")).filters
    except (ConfigError, OSError, ValueError) as e:
        log.warning("report: stage config not readable (%s); thresholds shown are the filters' defaults", e)
        return {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _where(reason: str) -> tuple[str, str, int | None] | None:
    """(filter, argument, n of an n-gram rule or None) holding the threshold of `reason`, or None."""
    m = _NGRAM_REASON.match(reason)
    if m:
        return (
            ("gopher_repetition", "top_n_grams", int(m.group(1)))
            if m.group(1)
            else (
                "gopher_repetition",
                "dup_n_grams",
                int(m.group(2)),
            )
        )
    return (*THRESHOLDS[reason], None) if reason in THRESHOLDS else None


def _value(value: Any, n: int | None) -> float | None:
    if n is not None:
        return next((float(r) for k, r in value or () if int(k) == n), None)
    return _number(value)


def threshold(reason: str, tables: dict[str, dict[str, Any]]) -> float | None:
    """The threshold behind a drop reason: the stage config's value, else the filter's constructor default."""
    where = _where(reason)
    return None if where is None else _value(_param(where[0], where[1], tables), where[2])


def _param(filter_name: str, arg: str, tables: dict[str, dict[str, Any]]) -> Any:
    from filters.chain import FILTERS

    table = tables.get(filter_name) or {}
    if arg in table:
        return table[arg]
    module, cls_name = FILTERS[filter_name]
    param = inspect.signature(getattr(importlib.import_module(module), cls_name).__init__).parameters.get(arg)
    return None if param is None or param.default is inspect.Parameter.empty else param.default


class LanguageThresholds:
    """The threshold each drop reason had for a document of a given language, from the run's filters as built
    from its stage tables (each filter built once, no model loaded).

    Args:
        tables: the run's `[filters.*]` tables.
    """

    def __init__(self, tables: dict[str, dict[str, Any]]) -> None:
        self.tables = tables
        self._filters: dict[str, Any] = {}

    def _filter(self, name: str) -> Any:
        if name not in self._filters:
            from filters.chain import FILTERS

            module, cls_name = FILTERS[name]
            kwargs = {k: v for k, v in (self.tables.get(name) or {}).items() if k not in ("enabled", "domains")}
            self._filters[name] = getattr(importlib.import_module(module), cls_name)(**kwargs)
        return self._filters[name]

    def of(self, reason: str, lang: str | None) -> float | None:
        """The threshold `reason` had for a document labelled `lang` (None or "unknown": the default)."""
        where = _where(reason)
        if where is None:
            return None
        name, arg, n = where
        if not lang or lang == "unknown":
            return threshold(reason, self.tables)
        try:
            filt = self._filter(name)
        except (TypeError, ValueError) as e:  # a table the filter refuses: the run did not use it as it reads now
            log.warning("report: [filters.%s] not buildable (%s); its default threshold is shown", name, e)
            return threshold(reason, self.tables)
        if name == "langid":
            return _number(filt.threshold(lang))
        params = filt.params_for(lang) if hasattr(filt, "params_for") else filt
        value = getattr(params, arg)
        if arg == "max_single_char_word_ratio":
            from filters.lang_codes import normalize_lang

            return _number(value.get(normalize_lang(lang) or ""))
        return _value(value, n)
