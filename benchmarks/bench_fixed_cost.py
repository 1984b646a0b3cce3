"""The fixed cost of a stage run: `python -m flows.stage general` on one English web document, as a whole process
(interpreter, imports, the private Prefect server, every step, the report, exit), wall and CPU (user + sys of the
process and the children it waited for: the server), median of `--repeats`.

`--baseline DIR` also runs another checkout of this repository (e.g. `git worktree add /tmp/base HEAD~3`, with
its `models/built` and `tokenizers/built` linked to this one's), alternating A and B so that a shared machine's
load hits both alike. One warm-up run of each goes first, uncounted: caches (`$CORPUSFORGE_CACHE`, the Prefect
database, the page cache) are warm in the figures, as they are on a user's second run.

    .venv/bin/python benchmarks/bench_fixed_cost.py --repeats 5 [--baseline /tmp/base]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Written for this benchmark; English prose that every filter keeps, so that every step has its document.
TEXT = (
    "Learning to play the piano takes patience more than talent. Most teachers ask their students to practise "
    "scales every day, slowly at first and then a little faster each week. It is better to play a short piece "
    "well than a long piece badly, and recording yourself is a simple way to hear mistakes that you miss while "
    "you are playing. After a few months the hands begin to move on their own, and the music becomes a pleasure "
    "instead of a task. Many visitors say that this is what they remember best about the place. Some of them "
    "come back every year, and a few of them even decide to stay for good. There is always something new to "
    "notice when you look closely."
)
SOURCES = """
[[source]]
name = "web-blog"
domain = "web"
format = "jsonl"
path = "web/*.jsonl"
url_field = "url"
license = "CC-BY-4.0"
"""


def write_sources(root: Path) -> Path:
    """A sources file with one JSONL document under `root`."""
    (root / "web").mkdir(parents=True, exist_ok=True)
    (root / "web" / "part-1.jsonl").write_text(
        json.dumps({"text": TEXT, "url": "https://blog.example.net/p/1"}) + "\n"
    )
    (root / "sources.toml").write_text(SOURCES)
    return root / "sources.toml"


def run_once(checkout: Path, sources: Path, out: Path) -> dict[str, float]:
    """One stage run in `checkout` into a fresh `out`: wall and CPU seconds (raises if it fails)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cmd = [sys.executable, "-m", "flows.stage", "general", "--sources", str(sources), "--out", str(out)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=checkout, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{checkout}: the stage failed: {proc.stderr.read().decode()[-2000:]}")
    proc.stderr.close()
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="counted runs of each checkout (default: 3)")
    parser.add_argument("--baseline", type=Path, help="another checkout, run in alternation with this one")
    args = parser.parse_args(argv)
    sides = {"this": REPO, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    with tempfile.TemporaryDirectory(prefix="cf-fixed-cost-") as tmp:
        sources = write_sources(Path(tmp))
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
        for i in range(args.repeats + 1):
            for name, checkout in sides.items():
                row = run_once(checkout, sources, Path(tmp) / f"run-{name}-{i}")
                if i:  # the first round warms the caches
                    rows[name].append(row)
                    load = os.getloadavg()[0]  # the machine may be shared: the load beside the run, as measured
                    print(
                        f"{name:<9} run {i}: wall {row['wall_s']:.2f} s, cpu {row['cpu_s']:.2f} s, load {load:.1f}",
                        flush=True,
                    )
    for name, runs in rows.items():
        wall = statistics.median(r["wall_s"] for r in runs)
        cpu = statistics.median(r["cpu_s"] for r in runs)
        print(f"{name:<9} median of {len(runs)}: wall {wall:.2f} s, cpu (user+sys) {cpu:.2f} s  [{sides[name]}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
