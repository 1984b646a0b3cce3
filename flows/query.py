"""`python -m flows.query [--out DIR] "SQL"`: ask DuckDB about a run.

Views: `docs` (the final corpus, Hive-partitioned by domain and source), `lineage` (every drop,
change and keep decision; once a stage has tokenized, each document's `final` row also says in which
shard and at which token offset it landed), `quarantine` (records that could not be read, with their
reason), `ingested` (every document that entered the stage, kept or not: `lineage` joins to the text
and source of a dropped document), `shards` (one row per document piece per packed sequence: stage,
shard, offset, num_tokens, ...) once a stage has tokenized, and `synthetic` (one row per synthetic generation:
doc_id, seed_doc_id, template, template_version, model, model_sha256, finish_reason, fate = `kept` or the
reason it was rejected or dropped, and the rest of its provenance; empty when no `[synth]` ran).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXAMPLES = """examples:
  python -m flows.query "SELECT domain, lang, count(*) AS n FROM docs GROUP BY ALL ORDER BY n DESC"
  python -m flows.query "SELECT step, action, reason, score FROM lineage WHERE doc_id = '<id>'"
  python -m flows.query "SELECT l.reason, i.source, left(i.text, 80) FROM lineage l JOIN ingested i
                         ON i.id = l.doc_id WHERE l.action = 'dropped' LIMIT 20"
  python -m flows.query "SELECT dup_cluster_id, any_value(dup_cluster_size) AS size FROM lineage
                         WHERE dup_cluster_id IS NOT NULL GROUP BY 1 ORDER BY size DESC LIMIT 10"
  python -m flows.query "SELECT stage, domain, sum(num_tokens) AS tokens FROM shards GROUP BY ALL"
  python -m flows.query "SELECT template, fate, count(*) FROM synthetic GROUP BY ALL ORDER BY 1, 3 DESC"
"""

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


def connect(run_dir: Path):
    """An in-memory DuckDB connection with the run's tables as views over its Parquet files."""
    import duckdb

    corpus = run_dir / "corpus"
    if not (corpus / "_SUCCESS.json").is_file():
        raise FileNotFoundError(
            f"no finished corpus under {run_dir}; run `python -m flows.stage general --out {run_dir}` first"
        )
    con = duckdb.connect()
    views = {"docs": (corpus / "docs", True), "lineage_steps": (corpus / "lineage", False),
             "quarantine": (corpus / "quarantine", False), "ingested": (corpus / "ingested", False),
             "synthetic_generations": (corpus / "synthetic", False)}  # fmt: skip
    for name, (directory, hive) in views.items():
        if name == "synthetic_generations" and not directory.is_dir():  # a corpus from before synth existed
            from schemas import GENERATION_SCHEMA

            _empty_view(con, name, [(f.name, str(f.type)) for f in GENERATION_SCHEMA])
            continue
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({_glob(directory)}, "
                    f"hive_partitioning = {str(hive).lower()})")  # fmt: skip
    con.execute(SYNTHETIC_VIEW)
    stage = _run_stage_name(run_dir)
    placements = sorted((run_dir / "shards").glob(f"{stage}/placements/*.parquet"))
    if not placements:  # not tokenized yet (or nothing survived): an empty `shards`, so queries still run
        from sharding.steps import PLACEMENT_SCHEMA

        _empty_view(con, "shards", [("stage", "string")] + [(f.name, str(f.type)) for f in PLACEMENT_SCHEMA])
        con.execute("CREATE VIEW lineage AS SELECT * FROM lineage_steps")
        return con
    # One row per document piece per packed sequence, for this run's stage only.
    con.execute(
        f"CREATE VIEW shards AS SELECT '{stage}' AS stage, * FROM read_parquet("
        f"{_glob(run_dir / 'shards', f'{stage}/placements/*.parquet')})"
    )
    # The lineage gains, on each document's `final` row, where its tokens first landed.
    con.execute(
        """CREATE VIEW lineage AS
        SELECT l.*, s.shard, s."offset" AS shard_offset
        FROM lineage_steps l LEFT JOIN (
            SELECT DISTINCT ON (doc_id) doc_id, shard, "offset" FROM shards ORDER BY doc_id, shard, "offset"
        ) s ON l.doc_id = s.doc_id AND l.step = 'final'"""
    )
    return con


def _empty_view(con, name: str, columns: list[tuple[str, str]]) -> None:  # noqa: ANN001 - a DuckDB connection
    """A view with these (name, Arrow type) columns and no rows, so queries on a table not written yet still run."""
    sql_types = {"string": "VARCHAR", "int64": "BIGINT", "int32": "INTEGER", "double": "DOUBLE"}
    values = ", ".join(f"NULL::{sql_types[t]}" for _, t in columns)
    names = ", ".join(f'"{n}"' for n, _ in columns)
    con.execute(f"CREATE VIEW {name} AS SELECT * FROM (VALUES ({values})) t({names}) WHERE false")


def _run_stage_name(run_dir: Path) -> str:
    """The stage a run directory holds (its funnel.json says; else the only folder under shards/)."""
    import json

    try:
        return json.loads((run_dir / "funnel.json").read_text())["stage"]
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        stages = sorted(p.name for p in (run_dir / "shards").glob("*") if p.is_dir())
        return stages[0] if len(stages) == 1 else ""


def _glob(directory: Path, pattern: str = "**/*.parquet") -> str:
    """A quoted SQL string literal of a Parquet glob."""
    return "'" + str(directory / pattern).replace("'", "''") + "'"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.query",
        description="Run SQL over a corpusforge run with DuckDB. Views: docs, lineage, quarantine, ingested, shards "
        "(rows once a stage has tokenized) and synthetic (one row per synthetic generation with its provenance and "
        "fate).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sql", help="the query")
    parser.add_argument("--out", default="runs/general", help="run directory (default: runs/general)")
    parser.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    parser.add_argument("--max-rows", type=int, default=50, help="rows to show in table mode (default 50)")
    args = parser.parse_args(argv)
    import duckdb

    try:
        con = connect(Path(args.out))
        rel = con.sql(args.sql)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except duckdb.Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if rel is None:
        return 0
    if args.csv:
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(rel.columns)
        writer.writerows(rel.fetchall())
    else:
        rel.show(max_rows=args.max_rows, max_width=200)
    return 0


if __name__ == "__main__":
    sys.exit(main())
