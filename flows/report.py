"""`python -m flows.report RUN_DIR`: (re)build the HTML report of a finished run, `RUN_DIR/report/index.html`.

The stage writes the same page at its end; this rebuilds it (after a report change, or for a run made before
reports existed) from what the run left on disk, without running anything else.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.report", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a run directory the stage finished (it holds funnel.json)")
    args = parser.parse_args(argv)
    from report.html import build_report
    from report.views import RunFolderError

    try:
        path = build_report(Path(args.run_dir))
    except (FileNotFoundError, RunFolderError) as e:  # RunFolderError: a crafted funnel.json or a link out
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
