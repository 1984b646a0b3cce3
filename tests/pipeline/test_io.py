"""Work units: atomic outputs, completion markers, stale temporaries, the run lock, byte-bounded sinks."""

import os
import socket
import subprocess
import sys

import pytest

from core.io import ParquetSink, read_rows, run_lock
from pipeline.layout import RunLayout
from pipeline.runner import run_step
from pipeline.step import Step, Unit, UnitWriter, finished, run_unit, unit_fingerprint
from schemas import DOCUMENT_SCHEMA, QUARANTINE_SCHEMA, QuarantineRecord


class Rows(Step):
    """A step whose units quarantine `n` rows each; `fail_on` makes one unit raise."""

    name = "rows"

    def __init__(self, sizes: dict[str, int], fail_on: str | None = None) -> None:
        self.sizes = sizes
        self.fail_on = fail_on

    def config(self):
        return {"sizes": self.sizes}

    def units(self):
        return [Unit(k, str(n), {"n": n}) for k, n in self.sizes.items()]

    def run(self, unit: Unit, out: UnitWriter) -> None:
        for i in range(unit.payload["n"]):
            out.quarantine(QuarantineRecord("s", f"{unit.key}:{i}", "r"))
        if unit.key == self.fail_on:
            raise RuntimeError("killed")


def test_units_commit_atomically_and_a_rerun_redoes_only_changed_units(tmp_path):
    layout = RunLayout(tmp_path)
    first = run_step(Rows({"a": 3, "b": 2}), layout)
    assert first.units_run == 2 and first.stats.quarantined["r"] == 5
    again = run_step(Rows({"a": 3, "b": 2}), layout)
    assert again.units_run == 0 and again.output == first.output
    changed = run_step(Rows({"a": 3, "b": 4, "c": 1}), layout)
    assert changed.units_run == 3  # the step's config changed: every unit's fingerprint did
    assert len(list(read_rows(layout.unit("rows", "b") / "quarantine"))) == 4
    assert sorted(p.name for p in layout.units("rows").iterdir()) == ["a", "b", "c"]  # no tmp or old dirs


def test_a_failing_unit_leaves_no_output_and_keeps_its_siblings(tmp_path):
    layout = RunLayout(tmp_path)
    with pytest.raises(RuntimeError, match="killed"):
        run_step(Rows({"a": 1, "b": 1}, fail_on="b"), layout)
    assert (layout.unit("rows", "a") / "_SUCCESS.json").is_file()
    assert sorted(p.name for p in layout.units("rows").iterdir()) == ["a"]
    resumed = run_step(Rows({"a": 1, "b": 1}), layout)
    assert resumed.units_run == 1  # only b


def test_removed_units_are_deleted_so_they_never_reach_the_corpus(tmp_path):
    layout = RunLayout(tmp_path)
    run_step(Rows({"a": 1, "b": 1}), layout)
    run_step(Rows({"a": 1}), layout)
    assert not layout.unit("rows", "b").exists()


def test_stale_tmp_dirs_are_removed_but_a_live_runs_is_kept(tmp_path):
    host = socket.gethostname()
    units = tmp_path / "steps" / "rows" / "units"
    units.mkdir(parents=True)
    dead = units / f"a.tmp-{host}-999999999"
    dead.mkdir()
    live_proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live = units / f"a.tmp-{host}-{live_proc.pid}"
        live.mkdir()
        other_host = units / "a.tmp-another-node-1"
        other_host.mkdir()
        step = Rows({"a": 1})
        run_unit(step, step.units()[0], units / "a", step.fingerprint())
        assert not dead.exists() and live.exists() and other_host.exists()
    finally:
        live_proc.kill()
        live_proc.wait()


def test_a_marker_with_another_fingerprint_is_not_reused(tmp_path):
    step = Rows({"a": 2})
    unit = step.units()[0]
    run_unit(step, unit, tmp_path / "a", "fp1")
    assert finished(tmp_path / "a", unit_fingerprint("fp1", unit)) is not None
    assert finished(tmp_path / "a", unit_fingerprint("fp2", unit)) is None


def test_missing_table_directory_is_damage_not_an_empty_table(tmp_path):
    with pytest.raises(FileNotFoundError, match="damaged"):
        list(read_rows(tmp_path / "nothing"))
    empty = ParquetSink(tmp_path / "empty", QUARANTINE_SCHEMA)
    empty.close()
    assert list(read_rows(tmp_path / "empty")) == []


def test_sink_flushes_by_bytes_so_memory_stays_flat_for_huge_documents(tmp_path):
    sink = ParquetSink(tmp_path / "d", DOCUMENT_SCHEMA, max_bytes=3 << 20)
    big = "x" * (1 << 20)
    for i in range(7):
        sink.add({"id": str(i), "text": big, "source": "s", "domain": "web", "metadata": "{}"})
        assert sink._bytes < (3 << 20) + (1 << 20)  # never more than the bound plus one document
    sink.close()
    assert len(list((tmp_path / "d").glob("*.parquet"))) == 3 and sink.rows_written == 7


def test_run_lock_refuses_a_second_run_on_the_same_directory(tmp_path):
    code = (
        "import sys, pathlib; from core.io import run_lock\n"
        "try:\n    with run_lock(pathlib.Path(sys.argv[1])): pass\n"
        "except RuntimeError as e:\n    print(e); sys.exit(3)\n"
    )
    with run_lock(tmp_path):
        other = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=os.getcwd()
        )
    assert other.returncode == 3 and "another corpusforge run is using" in other.stdout
    free = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert free.returncode == 0, free.stdout + free.stderr
