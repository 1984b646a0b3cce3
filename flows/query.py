"""`python -m flows.query [--out DIR] "SQL"`: ask DuckDB about a run.

Views: `docs` (the final corpus, Hive-partitioned by domain and source), `lineage` (every drop,
change and keep decision; once a stage has tokenized, each document's `final` row also says in which
shard and at which token offset it landed), `quarantine` (records that could not be read, with their
reason), `ingested` (every document that entered the stage, kept or not: `lineage` joins to the text
and source of a dropped document) and `shards` (one row per document piece per packed sequence: stage,
shard, offset, num_tokens, ...) once a stage has tokenized.
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
"""


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
             "quarantine": (corpus / "quarantine", False), "ingested": (corpus / "ingested", False)}  # fmt: skip
    for name, (directory, hive) in views.items():
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({_glob(directory)}, "
                    f"hive_partitioning = {str(hive).lower()})")  # fmt: skip
    stage = _run_stage_name(run_dir)
    placements = sorted((run_dir / "shards").glob(f"{stage}/placements/*.parquet"))
    if not placements:  # not tokenized yet (or nothing survived): an empty `shards`, so queries still run
        from sharding.steps import PLACEMENT_SCHEMA

        sql_types = {"string": "VARCHAR", "int64": "BIGINT", "int32": "INTEGER"}
        cols = [("stage", "VARCHAR")] + [(f.name, sql_types[str(f.type)]) for f in PLACEMENT_SCHEMA]
        values = ", ".join(f"NULL::{t}" for _, t in cols)
        names = ", ".join(f'"{n}"' for n, _ in cols)
        con.execute(f"CREATE VIEW shards AS SELECT * FROM (VALUES ({values})) t({names}) WHERE false")
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
        description="Run SQL over a corpusforge run with DuckDB. Views: docs, lineage, quarantine, shards "
        "(shards once a stage has tokenized).",
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
