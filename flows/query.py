"""`python -m flows.query [--out DIR] "SQL"`: ask DuckDB about a run.

The views and the lock-down are `report/views.py`'s (the report reads the same views); this module is the command
line: `--allow-file-access` leaves DuckDB's external access on for an operator who needs files (`read_csv` of a
list to join, `COPY ... TO` a result), refusing only `INSTALL`/`LOAD` and `SET`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from report.views import QueryRefused, RunFolderError, check_query, connect

if TYPE_CHECKING:
    from duckdb import DuckDBPyRelation

__all__ = ["EXAMPLES", "QueryRefused", "RunFolderError", "check_query", "connect", "main"]

EXAMPLES = """examples:
  python -m flows.query "SELECT domain, lang, count(*) AS n FROM docs GROUP BY ALL ORDER BY n DESC"
  python -m flows.query "SELECT lang_script, count(*) AS n FROM docs GROUP BY ALL ORDER BY n DESC"
  python -m flows.query "SELECT step, action, reason, score FROM lineage WHERE doc_id = '<id>'"
  python -m flows.query "SELECT l.reason, i.source, left(i.text, 80) FROM lineage l JOIN ingested i
                         ON i.id = l.doc_id WHERE l.action = 'dropped' LIMIT 20"
  python -m flows.query "SELECT dup_cluster_id, any_value(dup_cluster_size) AS size FROM lineage
                         WHERE dup_cluster_id IS NOT NULL GROUP BY 1 ORDER BY size DESC LIMIT 10"
  python -m flows.query "SELECT stage, domain, sum(num_tokens) AS tokens FROM shards GROUP BY ALL"
  python -m flows.query "SELECT template, fate, count(*) FROM synthetic GROUP BY ALL ORDER BY 1, 3 DESC"
  python -m flows.query --out runs/ablations/latest "SELECT candidate, eval_set, avg(bpb) FROM ablations
                         GROUP BY ALL ORDER BY 2, 3"
  python -m flows.query "SELECT domain, count(*) FROM docs WHERE scores['edu'] >= 0.5 GROUP BY ALL"
  python -m flows.query --out runs/annotations "SELECT rubric, label, count(*) FROM annotations
                         WHERE fate = 'labelled' GROUP BY ALL ORDER BY 1, 2"
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.query",
        description="Run SQL over a corpusforge run with DuckDB. Views: docs, lineage, quarantine, ingested, shards "
        "(rows once a stage has tokenized) and synthetic (one row per synthetic generation with its provenance and "
        "fate), score_thirds (each scorer's score per kept document with CCNet's head/middle/tail: thirds of its "
        "language in the run). docs and lineage have lang_script: the language label with the Unicode script that has most letters "
        "in the text (ru_Cyrl, fa_Arab, sr_Latn, ja_Jpan; a label that names its script, zh-Hans, keeps it).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sql", help="the query")
    parser.add_argument("--out", default="runs/general", help="run directory (default: runs/general)")
    parser.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    parser.add_argument("--max-rows", type=int, default=50, help="rows to show in table mode (default 50)")
    parser.add_argument(
        "--allow-file-access",
        action="store_true",
        help="let DuckDB read and write any file you can (read_csv, COPY ... TO, ATTACH); off by default, when only "
        "the run's own Parquet files are readable and only queries run",
    )
    args = parser.parse_args(argv)
    import duckdb

    try:
        con = connect(Path(args.out), allow_file_access=args.allow_file_access)
        check_query(con, args.sql, allow_file_access=args.allow_file_access)
    except (FileNotFoundError, RunFolderError, QueryRefused) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except duckdb.Error as e:  # the SQL does not parse
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        _print_result(con.sql(args.sql), args.csv, args.max_rows)
    except duckdb.PermissionException as e:  # DuckDB's message ends with the query and a caret: one line is enough
        first_line = str(e).splitlines()[0]
        print(f"error: {first_line} (the query reads the run's views only; see --allow-file-access)", file=sys.stderr)
        return 1
    except duckdb.Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def _print_result(rel: DuckDBPyRelation | None, csv_out: bool, max_rows: int) -> None:
    """The rows on stdout, as CSV or as DuckDB's table; nothing for a statement without a result."""
    if rel is None:
        return
    if csv_out:
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(rel.columns)
        writer.writerows(rel.fetchall())
    else:
        rel.show(max_rows=max_rows, max_width=200)


if __name__ == "__main__":
    sys.exit(main())
