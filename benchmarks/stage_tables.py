"""The whole-stage benchmark's tables (benchmarks/bench_stage.py), built from every row of its results file:
ours vs datatrove, the speed-up from 1 to 2 workers, input doubling, where our time goes step by step, peak RSS
by process, datatrove's stage times and the failed runs. Each table is the median run of its configuration.
"""

from __future__ import annotations

import statistics
from typing import Any

Key = tuple[str, int, int, str]  # (filters, docs, workers, side label)


def _median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median time (the lower middle one for an even count), plus median figures."""
    rows = sorted(rows, key=lambda r: r["measured"]["seconds"])
    mid = rows[(len(rows) - 1) // 2]
    med = {
        k: statistics.median(r["measured"][k] for r in rows)
        for k in ("seconds", "tree_mib", "largest_mib", "worker_mib", "main_mib")
    }
    return {**mid, "median": med, "n": len(rows)}


def _label(r: dict[str, Any]) -> str:
    return "datatrove" if r["side"] == "datatrove" else f"ours ({r['executor']})"


def whole_stage(med: dict[Key, dict[str, Any]], groups: dict[Key, list[dict[str, Any]]]) -> list[str]:
    out = ["### Whole stage, ours vs datatrove (medians)\n"]
    out.append(
        "| filters | docs | MB | workers | side | runs | s | docs/s | vs datatrove | tree peak MiB "
        "| largest process MiB | worker peak MiB | docs out | ours w/o tokenize+shards s |"
    )
    out.append("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key in sorted(med, key=lambda k: (k[0], k[1], k[2], k[3] != "datatrove", k[3])):
        filters, docs, workers, label = key
        r = med[key]
        m = r["median"]
        dt = med.get((filters, docs, workers, "datatrove"))
        ratio = f"{dt['median']['seconds'] / m['seconds']:.2f}x" if dt and label != "datatrove" else ""
        noshard = ""
        if label != "datatrove":
            noshard = f"{statistics.median(x['measured']['seconds'] - x['shards_seconds'] for x in groups[key]):.1f}"
        out.append(
            f"| {filters} | {docs:,} | {r['mb']:.1f} | {workers} | {label} | {r['n']} | {m['seconds']:.1f} "
            f"| {docs / m['seconds']:,.0f} | {ratio} | {m['tree_mib']:,.0f} | {m['largest_mib']:,.0f} "
            f"| {m['worker_mib']:,.0f} | {r.get('docs_out', '')} | {noshard} |"
        )
    return out


def worker_speedup(med: dict[Key, dict[str, Any]]) -> list[str]:
    out = ["\n### Workers: speed-up from 1 to 2 (goal >= 1.7x)\n"]
    out.append("| filters | docs | side | 1 worker s | 2 workers s | speed-up |")
    out.append("|---|---:|---|---:|---:|---:|")
    for (filters, docs, workers, label), r in sorted(med.items()):
        two = med.get((filters, docs, 2, label))
        if workers == 1 and two:
            s1, s2 = r["median"]["seconds"], two["median"]["seconds"]
            out.append(f"| {filters} | {docs:,} | {label} | {s1:.1f} | {s2:.1f} | {s1 / s2:.2f}x |")
    return out


def input_doubling(med: dict[Key, dict[str, Any]]) -> list[str]:
    out = ["\n### Input doubling (goal <= 2.1x time per doubling, flat worker RSS)\n"]
    out.append("| filters | workers | side | docs | s | x previous | worker peak MiB | tree peak MiB |")
    out.append("|---|---:|---|---:|---:|---:|---:|---:|")
    series: dict[tuple, list[tuple[int, dict[str, Any]]]] = {}
    for (filters, docs, workers, label), r in med.items():
        series.setdefault((filters, workers, label), []).append((docs, r))
    for (filters, workers, label), pts in sorted(series.items()):
        if len(pts) < 2:
            continue
        prev = None
        for docs, r in sorted(pts, key=lambda x: x[0]):
            m = r["median"]
            growth = f"{m['seconds'] / prev:.2f}x" if prev else ""
            out.append(
                f"| {filters} | {workers} | {label} | {docs:,} | {m['seconds']:.1f} | {growth} "
                f"| {m['worker_mib']:,.0f} | {m['tree_mib']:,.0f} |"
            )
            prev = m["seconds"]
    return out


def where_our_time_goes(med: dict[Key, dict[str, Any]]) -> list[str]:
    out = []
    for key in sorted(k for k in med if k[3].startswith("ours")):
        r = med[key]
        filters, docs, workers, label = key
        out.append(
            f"\n### Where our time goes: filters={filters}, {docs:,} docs, {workers} worker(s), {label} "
            f"(the median run, {r['measured']['seconds']:.1f} s)\n"
        )
        out.append("| step | s | share | units | docs in | docs out | of which reduce s | note |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---|")
        total = r["measured"]["seconds"]
        for s in r["steps"]:
            red = f"{s['reduce_seconds']:.2f}" if "reduce_seconds" in s else ""
            out.append(
                f"| {s['step']} | {s['seconds']:.2f} | {100 * s['seconds'] / total:.0f}% | {s.get('units', '')} "
                f"| {s.get('docs_in', '')} | {s.get('docs_out', '')} | {red} | {s.get('note', '')} |"
            )
        out.append(f"| **without tokenize + shards** | {total - r['shards_seconds']:.2f} | | | | | | |")
    return out


def rss_by_process(med: dict[Key, dict[str, Any]]) -> list[str]:
    out = ["\n### Peak RSS by process (MiB, the median runs; tree = the summed peak)\n"]
    roles = ("main", "worker", "forkserver", "prefect-server", "ray-system", "other")
    out.append("| filters | docs | workers | side | processes | " + " | ".join(roles) + " | tree |")
    out.append("|---|---:|---:|---|---:|" + "---:|" * (len(roles) + 1))
    for key in sorted(med):
        r = med[key]["measured"]
        cells = " | ".join(f"{r['roles'][x]:,.0f}" if x in r["roles"] else "" for x in roles)
        out.append(
            f"| {key[0]} | {key[1]:,} | {key[2]} | {key[3]} | {r['processes']} | {cells} | {r['tree_mib']:,.0f} |"
        )
    return out


def datatrove_stages(med: dict[Key, dict[str, Any]]) -> list[str]:
    out = []
    for key in sorted(k for k in med if k[3] == "datatrove"):
        r = med[key]
        out.append(
            f"\ndatatrove stages (filters={key[0]}, {key[1]:,} docs, {key[2]} worker(s), median run): "
            + ", ".join(f"{k} {v:.1f} s" for k, v in r["stages"].items())
        )
    return out


def failed_runs(all_rows: list[dict[str, Any]]) -> list[str]:
    errors = [r for r in all_rows if "error" in r]
    if not errors:
        return []
    return [
        f"\n{len(errors)} run(s) failed; first: {errors[0]['side']} {errors[0].get('executor', '')} "
        f"workers={errors[0]['workers']}: ...{errors[0]['error'][-300:]}"
    ]


def tables(all_rows: list[dict[str, Any]]) -> str:
    """Every table of the rows measured so far (failed runs are counted, not tabled), as markdown."""
    groups: dict[Key, list[dict[str, Any]]] = {}
    for r in all_rows:
        if "error" not in r:
            groups.setdefault((r["filters"], r["docs"], r["workers"], _label(r)), []).append(r)
    med = {k: _median_row(v) for k, v in groups.items()}
    out = whole_stage(med, groups) + worker_speedup(med) + input_doubling(med) + where_our_time_goes(med)
    out += rss_by_process(med) + datatrove_stages(med) + failed_runs(all_rows)
    return "\n".join(out)
