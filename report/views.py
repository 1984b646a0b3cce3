"""The DuckDB views of a run folder, read-only and confined to it: what `python -m flows.query` and the report ask.

Views: `docs` (the final corpus, Hive-partitioned by domain and source; `scores` maps each `[scorers.<name>]` to the
document's score, null where no scorer ran), `lineage` (every drop, change and keep decision; once a stage has
tokenized, each document's `final` row also says in which shard and at which token offset it landed), `quarantine`
(records that could not be read, with their reason), `ingested` (every document that entered the stage, kept or not:
`lineage` joins to the text and source of a dropped document), `shards` (one row per document piece per packed
sequence: stage, shard, offset, num_tokens, ...) once a stage has tokenized, and `synthetic` (one row per synthetic
generation: doc_id, seed_doc_id, template, template_version, model, model_sha256, finish_reason, fate = `kept` or
the reason it was rejected or dropped, and the rest of its provenance; empty when no `[synth]` ran), and
`score_thirds` (one row per kept document and scorer: id, domain, source, lang, scorer, score, and `bucket`: CCNet's
head / middle / tail, the thirds of the document's language within the run, as `scoring.perplexity.ccnet_buckets`
cuts them; Wenzek et al. 2020, arXiv 1911.00359, sec. 3.3).

`docs` and `lineage` have a `lang_script` column: the language label with the script of the text, FineWeb-2's way
of naming a subset (`ru_Cyrl`, `fa_Arab`, `sr_Latn`, `ja_Jpan`, `ko_Hang`). The script is the Unicode script
(ISO 15924 code) with the most letters in the text's first 1,000 characters (RE2's Unicode script classes: the same
text always gives the same label); Japanese is `Jpan` when kana are at least a tenth of its Han and kana letters, and
`Zyyy` marks a text with no letter. A label that names its script already (language ID's `zh-Hans`, `zh-Hant`,
`uz-Latn`) keeps it (Han letters do not tell Simplified from Traditional). A lineage row reads the text of the
document as it entered the stage (`ingested`); `und` stands for a missing language.

An ablation folder (`python -m flows.ablate --out DIR`, it holds `ablation.json`) has two views instead:
`ablations` (one row per candidate, seed and evaluation set: tokens, bpb, acc, acc_norm, wall times, config hashes)
and `ablation_curves` (the proxies' logged training steps: candidate, seed, step, loss, lr, tok_s).

An annotation folder (`python -m flows.annotate --out DIR`, it holds `annotate.json`) has one view instead:
`annotations` (one row per sampled document and rubric: doc_id, rubric, rubric_version, rubric_sha256, label,
model, model_sha256, sampling, finish_reason, fate = `labelled` or why there is no label, and the document's domain,
lang and source, the answer, token counts and seconds; annotate/table.py).

The query path is read-only and confined to the run folder: the views are built first, then DuckDB's external
access is turned off (only the run's own Parquet files stay readable, through `allowed_paths`), extensions are
never installed or loaded, spilling to a temporary directory is off, and the configuration is locked. One
statement per call (`check_query`), and only a query (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN): `COPY`, `ATTACH`,
`INSTALL`/`LOAD`, `SET` and several statements are refused with a one-line error (exit 2). An operator who needs
files (`read_csv` of a list to join, `COPY ... TO` a result) passes `--allow-file-access`: DuckDB may then read and
write any file the user can, and run any statement except `INSTALL`/`LOAD` and `SET` (configuration stays locked).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from core.paths import STAGES
from pipeline.layout import RunLayout

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection


NULL_SCORES = ", NULL::MAP(VARCHAR, DOUBLE) AS scores"

# Every generation's fate: `kept` when it reached the final corpus, else the reason it was dropped (a document is
# dropped once: by the synth step itself, synth_truncated, synth_schema_violation, ...; or a filter, dedup, decontam).
SYNTHETIC_VIEW = """CREATE VIEW synthetic AS
SELECT g.doc_id, g.seed_doc_id, g.template, g.template_version, g.model, g.model_sha256, g.finish_reason,
       coalesce(f.fate, 'lost') AS fate, g.* EXCLUDE (doc_id, seed_doc_id, template, template_version, model,
                                                     model_sha256, finish_reason)
FROM synthetic_generations g LEFT JOIN (
    SELECT doc_id, CASE WHEN bool_or(action = 'kept' AND step = 'final') THEN 'kept'
                        ELSE min(reason) FILTER (WHERE action = 'dropped') END AS fate
    FROM lineage_steps GROUP BY doc_id
) f ON f.doc_id = g.doc_id"""


# ISO 15924 code -> RE2 script name, for `lang_script` (module docstring). Han and kana are counted apart (Jpan).
SCRIPTS = {
    "Latn": "Latin",
    "Cyrl": "Cyrillic",
    "Grek": "Greek",
    "Armn": "Armenian",
    "Geor": "Georgian",
    "Hebr": "Hebrew",
    "Arab": "Arabic",
    "Syrc": "Syriac",
    "Thaa": "Thaana",
    "Deva": "Devanagari",
    "Beng": "Bengali",
    "Guru": "Gurmukhi",
    "Gujr": "Gujarati",
    "Orya": "Oriya",
    "Taml": "Tamil",
    "Telu": "Telugu",
    "Knda": "Kannada",
    "Mlym": "Malayalam",
    "Sinh": "Sinhala",
    "Thai": "Thai",
    "Laoo": "Lao",
    "Tibt": "Tibetan",
    "Mymr": "Myanmar",
    "Khmr": "Khmer",
    "Ethi": "Ethiopic",
    "Cher": "Cherokee",
    "Mong": "Mongolian",
    "Tfng": "Tifinagh",
    "Cans": "Canadian_Aboriginal",
    "Hang": "Hangul",
}
SCRIPT_PREFIX_CHARS = 1000
SCRIPT_CLASS = r"\p{%s}"  # RE2's class of a Unicode script


def _script_macros() -> list[str]:
    """`text_script(t)`: the ISO 15924 code of the script with most letters in `t`'s prefix; `lang_script(lang, t)`."""

    def letters(classes: str) -> str:
        return f"length(regexp_replace(p, '[^{classes}]', '', 'g'))"

    han, kana = letters(r"\p{Han}"), letters(r"\p{Hiragana}\p{Katakana}")
    japanese = f"({kana}) * 10 >= ({han}) + ({kana})"
    counts = [f"{{'n': {letters(SCRIPT_CLASS % name)}, 's': '{code}'}}" for code, name in SCRIPTS.items()]
    counts += [
        f"{{'n': CASE WHEN {japanese} THEN ({han}) + ({kana}) ELSE 0 END, 's': 'Jpan'}}",
        f"{{'n': CASE WHEN {japanese} THEN 0 ELSE {han} END, 's': 'Hani'}}",
    ]
    top = f"list_sort([{', '.join(counts)}], 'DESC')[1]"
    return [
        f"CREATE MACRO prefix_script(p) AS (SELECT CASE WHEN top.n > 0 THEN top.s ELSE 'Zyyy' END "
        f"FROM (SELECT {top} AS top))",
        f"CREATE MACRO text_script(t) AS prefix_script(left(t, {SCRIPT_PREFIX_CHARS}))",
        r"""CREATE MACRO lang_script(lang, t) AS CASE
            WHEN regexp_matches(lang, '^[a-z]{2,3}-[A-Z][a-z]{3}$') THEN replace(lang, '-', '_')
            WHEN t IS NULL THEN NULL
            ELSE coalesce(lang, 'und') || '_' || text_script(t) END""",
    ]


# An ablation folder (`python -m flows.ablate`) holds this file; its views are `ablations` and `ablation_curves`.
ABLATION_MARKER = "ablation.json"
# An annotation folder (`python -m flows.annotate`) holds this file; its view is `annotations`.
ANNOTATION_MARKER = "annotate.json"


class RunFolderError(ValueError):
    """A run folder that is not what a stage writes (an unknown stage name, a link out of it, a missing table)."""


class QueryRefused(ValueError):
    """A statement the read-only query path does not run (a write, an attach, an extension, a setting, several)."""


# What a query may be. DuckDB parses DESCRIBE, SHOW, SUMMARIZE, VALUES and WITH ... SELECT as SELECT statements.
READ_ONLY_STATEMENTS = ("SELECT", "EXPLAIN")
# Refused even with --allow-file-access (no network at run time, and the configuration stays locked), with why.
NEVER_STATEMENTS = {
    "LOAD": "INSTALL and LOAD statements are refused: extensions are never installed or loaded",
    "SET": "SET and RESET statements are refused: the configuration is locked",
}


def connect(run_dir: Path, *, allow_file_access: bool = False) -> DuckDBPyConnection:
    """An in-memory DuckDB connection with the run's tables as views over its Parquet files, locked down.

    Args:
        run_dir: a run folder a stage finished (it holds `corpus/_SUCCESS.json`).
        allow_file_access: leave DuckDB's external access on (any file the user can read or write); off by default,
            when only the run's own Parquet files are readable.

    Raises:
        FileNotFoundError: no finished corpus under `run_dir`.
        RunFolderError: the run folder names an unknown stage, links outside itself, or lacks a table's files.
    """
    import duckdb

    layout = RunLayout(Path(run_dir))
    run_dir = layout.root
    other_kind = _other_folder_views(run_dir)
    if other_kind is None and not layout.corpus_marker.is_file():
        raise FileNotFoundError(
            f"no finished corpus under {run_dir}; run `python -m flows.stage general --out {run_dir}` first"
        )
    # Set when the connection opens: a query must never download or load an extension behind the user's back.
    config: dict[str, str | bool] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "python_enable_replacements": False,
    }
    if not allow_file_access:
        config["temp_directory"] = ""  # no spill files: nothing is written, in the run folder or anywhere else
    con = duckdb.connect(config=config)
    if other_kind is not None:
        return _lock(con, other_kind(con, run_dir), allow_file_access)
    readable = _table_views(con, layout)
    con.execute(SYNTHETIC_VIEW)
    stage = _run_stage_name(layout)
    placements = _parquet_files(run_dir, layout.placements(stage), recursive=False) if stage else []
    if not placements:  # not tokenized yet (or nothing survived): an empty `shards`, so queries still run
        from sharding.steps import PLACEMENT_SCHEMA

        _empty_view(con, "shards", [("stage", "string")] + [(f.name, str(f.type)) for f in PLACEMENT_SCHEMA])
        con.execute("CREATE VIEW lineage AS SELECT * FROM lineage_labelled")
        return _lock(con, readable, allow_file_access)
    readable += placements
    # One row per document piece per packed sequence, for this run's stage only.
    con.execute(
        f"CREATE VIEW shards AS SELECT {_sql_literal(stage)} AS stage, * FROM read_parquet("
        f"{_list_literal(placements)})"
    )
    # The lineage gains, on each document's `final` row, where its tokens first landed.
    con.execute(
        """CREATE VIEW lineage AS
        SELECT l.*, s.shard, s."offset" AS shard_offset
        FROM lineage_labelled l LEFT JOIN (
            SELECT DISTINCT ON (doc_id) doc_id, shard, "offset" FROM shards ORDER BY doc_id, shard, "offset"
        ) s ON l.doc_id = s.doc_id AND l.step = 'final'"""
    )
    return _lock(con, readable, allow_file_access)


def _table_views(con: DuckDBPyConnection, layout: RunLayout) -> list[str]:
    """The views over the corpus tables (`docs`, `lineage_steps`, `quarantine`, `ingested`, `synthetic_generations`)
    and `lineage_labelled` (the decisions with `lang_script`); returns the files they read.

    Raises:
        RunFolderError: a table has no Parquet files, or one links outside the run folder.
    """
    run_dir = layout.root
    readable: list[str] = []
    for macro in _script_macros():
        con.execute(macro)
    views = {
        "docs": (layout.corpus_docs, True),
        "lineage_steps": (layout.corpus_lineage, False),
        "quarantine": (layout.corpus_quarantine, False),
        "ingested": (layout.corpus_ingested, False),
        "synthetic_generations": (layout.corpus_synthetic, False),
    }
    for name, (directory, hive) in views.items():
        if name == "synthetic_generations" and not directory.is_dir():  # a corpus from before synth existed
            from schemas import GENERATION_SCHEMA

            _empty_view(con, name, [(f.name, str(f.type)) for f in GENERATION_SCHEMA])
            continue
        files = _parquet_files(run_dir, directory)
        if not files:
            raise RunFolderError(f"no Parquet files under {directory}; the stage writes every table, even empty")
        readable += files
        source = f"read_parquet({_list_literal(files)}, hive_partitioning = {str(hive).lower()})"
        # A run written before `[scorers]` existed has no scores column: it reads as null, so queries still run.
        columns = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        no_scores = name in ("docs", "ingested") and "scores" not in columns
        script = ", lang_script(lang, text) AS lang_script" if name == "docs" else ""
        con.execute(f"CREATE VIEW {name} AS SELECT *{NULL_SCORES if no_scores else ''}{script} FROM {source}")
    # Each decision with its document's language and script (the text as it entered: `ingested`).
    con.execute(
        """CREATE VIEW lineage_labelled AS SELECT l.*, lang_script(l.lang, i.text) AS lang_script
        FROM lineage_steps l LEFT JOIN ingested i ON i.id = l.doc_id"""
    )
    con.execute(SCORE_THIRDS_VIEW)
    return readable


# CCNet's buckets by SQL: cume_dist() is the share of the language's scores at or below the document's (ties alike),
# the rule `ccnet_buckets` applies in Python.
SCORE_THIRDS_VIEW = """CREATE VIEW score_thirds AS
SELECT id, domain, source, lang, scorer, score,
    CASE WHEN cume_dist() OVER w > 2 / 3 THEN 'head' WHEN cume_dist() OVER w > 1 / 3 THEN 'middle' ELSE 'tail' END
        AS bucket
FROM (
    SELECT id, domain, source, lang, unnest(map_keys(scores)) AS scorer, unnest(map_values(scores)) AS score
    FROM docs WHERE scores IS NOT NULL
)
WHERE score IS NOT NULL
WINDOW w AS (PARTITION BY scorer, lang ORDER BY score)"""


def _other_folder_views(run_dir: Path) -> Callable[[DuckDBPyConnection, Path], list[str]] | None:
    """What builds the views of a folder that is not a stage run (an ablation or an annotation folder, by the file
    that marks it), or None for a stage run."""
    if (run_dir / ABLATION_MARKER).is_file():
        return _ablation_views
    if (run_dir / ANNOTATION_MARKER).is_file():
        return _annotation_view
    return None


def _ablation_views(con: DuckDBPyConnection, run_dir: Path) -> list[str]:
    """`ablations` over an ablation folder's results.parquet and `ablation_curves` over its curves.parquet; returns
    the files the views read (the only ones that stay readable).

    Raises:
        RunFolderError: a table's file is missing or links outside the folder.
    """
    readable = []
    for name, file in (("ablations", "results.parquet"), ("ablation_curves", "curves.parquet")):
        files = [f for f in _parquet_files(run_dir, run_dir, recursive=False) if Path(f).name == file]
        if not files:
            raise RunFolderError(f"no {file} in the ablation folder {run_dir}; rerun `python -m flows.ablate`")
        readable += files
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({_list_literal(files)})")
    return readable


def _annotation_view(con: DuckDBPyConnection, run_dir: Path) -> list[str]:
    """`annotations` over an annotation folder's `annotations/*.parquet` (one file per rubric); returns the files.

    Raises:
        RunFolderError: no annotations file, or one that links outside the folder.
    """
    files = _parquet_files(run_dir, run_dir / "annotations", recursive=False)
    if not files:
        raise RunFolderError(f"no annotations/*.parquet in {run_dir}; rerun `python -m flows.annotate`")
    con.execute(f"CREATE VIEW annotations AS SELECT * FROM read_parquet({_list_literal(files)}, union_by_name = true)")
    return files


def _lock(con: DuckDBPyConnection, readable: list[str], allow_file_access: bool) -> DuckDBPyConnection:
    """Turn off every door the views do not need, after they are built (a view reads its files when queried, so
    they stay readable through `allowed_paths`), then lock the configuration so no statement can reopen one."""
    if not allow_file_access:
        con.execute("SET allowed_paths = ?", [readable])
        con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def check_query(con: DuckDBPyConnection, sql: str, *, allow_file_access: bool = False) -> None:
    """Refuse what the query path does not run: several statements, and anything but a query (unless the operator
    allowed file access, which still refuses extensions and settings).

    Raises:
        QueryRefused: with a one-line message that names the statement and what to do.
        duckdb.ParserException: the SQL does not parse.
    """
    statements = con.extract_statements(sql)
    if len(statements) != 1:
        raise QueryRefused(f"one statement per call, got {len(statements)}; run them one at a time")
    kind = statements[0].type.name
    if kind in NEVER_STATEMENTS:
        raise QueryRefused(NEVER_STATEMENTS[kind])
    if kind not in READ_ONLY_STATEMENTS and not allow_file_access:
        raise QueryRefused(
            f"{kind} statements are refused: the query path is read-only (SELECT, DESCRIBE, SHOW, SUMMARIZE, "
            "EXPLAIN); pass --allow-file-access to write or attach files"
        )


def _empty_view(con, name: str, columns: list[tuple[str, str]]) -> None:
    """A view with these (name, Arrow type) columns and no rows, so queries on a table not written yet still run."""
    sql_types = {"string": "VARCHAR", "int64": "BIGINT", "int32": "INTEGER", "double": "DOUBLE"}
    values = ", ".join(f"NULL::{sql_types[t]}" for _, t in columns)
    names = ", ".join(f'"{n}"' for n, _ in columns)
    con.execute(f"CREATE VIEW {name} AS SELECT * FROM (VALUES ({values})) t({names}) WHERE false")


def _run_stage_name(layout: RunLayout) -> str:
    """The stage a run directory holds (its funnel.json says; else the only stage folder under shards/), or "".

    Raises:
        RunFolderError: funnel.json names a stage that does not exist (the name goes into SQL and a path).
    """
    import json

    try:
        stage = json.loads(layout.funnel.read_text())["stage"]
    except (FileNotFoundError, KeyError, TypeError, json.JSONDecodeError):
        stages = sorted(p.name for p in layout.shards_root.glob("*") if p.is_dir() and p.name in STAGES)
        return stages[0] if len(stages) == 1 else ""
    if not isinstance(stage, str) or stage not in STAGES:
        raise RunFolderError(
            f"{layout.funnel}: stage {stage!r} is not one of {list(STAGES)}; not a run folder a stage wrote"
        )
    return stage


def _parquet_files(run_dir: Path, directory: Path, recursive: bool = True) -> list[str]:
    """The Parquet files under `directory`, resolved. A link under it that leads out of the run folder, to a file
    or a folder, is refused: the files DuckDB may read are the run's own.

    Raises:
        RunFolderError: an entry under `directory` resolves outside `run_dir`.
    """
    files = []
    for path in sorted(directory.rglob("*") if recursive else directory.glob("*")):
        real = path.resolve()
        if not real.is_relative_to(run_dir):
            raise RunFolderError(f"{path} leads outside the run folder {run_dir} (to {real}); refused")
        if path.suffix == ".parquet" and real.is_file():
            files.append(str(real))
    return files


def _sql_literal(text: str) -> str:
    """`text` as a quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _list_literal(items: list[str]) -> str:
    """A SQL list of string literals."""
    return "[" + ", ".join(_sql_literal(item) for item in items) + "]"
