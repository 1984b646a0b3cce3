"""Atomic step outputs, completion markers and the run lock."""

import os
import subprocess
import sys

import pytest

from pipeline.io import ParquetSink, StepOutput, is_complete, read_rows, run_lock
from schemas import QUARANTINE_SCHEMA


def _write_step(final_dir, fp, rows):
    out = StepOutput(final_dir, fp)
    with out as tmp:
        sink = ParquetSink(tmp / "quarantine", QUARANTINE_SCHEMA)
        sink.extend({"source": "s", "location": f"f:{i}", "reason": "r"} for i in range(rows))
        sink.close()
        out.stats = {"rows": rows}


def test_step_output_replaces_atomically_and_marks_completion(tmp_path):
    step = tmp_path / "steps" / "x"
    _write_step(step, "fp1", 3)
    assert is_complete(step, "fp1") and not is_complete(step, "fp2")
    _write_step(step, "fp2", 5)
    assert is_complete(step, "fp2") and len(list(read_rows(step / "quarantine"))) == 5
    assert sorted(p.name for p in step.parent.iterdir()) == ["x"]  # no tmp or old directories left


def test_a_failing_step_leaves_the_previous_output_untouched(tmp_path):
    step = tmp_path / "x"
    _write_step(step, "fp1", 2)
    with pytest.raises(RuntimeError):
        with StepOutput(step, "fp2") as tmp:
            (tmp / "partial").write_text("half")
            raise RuntimeError("killed")
    assert is_complete(step, "fp1") and sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def test_stale_tmp_dirs_are_removed_but_a_live_runs_is_kept(tmp_path):
    step = tmp_path / "x"
    dead = tmp_path / "x.tmp-999999999"
    dead.mkdir()
    live_proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live = tmp_path / f"x.tmp-{live_proc.pid}"
        live.mkdir()
        _write_step(step, "fp", 1)
        assert not dead.exists() and live.exists()
    finally:
        live_proc.kill()
        live_proc.wait()


def test_missing_table_directory_is_damage_not_an_empty_table(tmp_path):
    with pytest.raises(FileNotFoundError, match="damaged"):
        list(read_rows(tmp_path / "nothing"))
    empty = ParquetSink(tmp_path / "empty", QUARANTINE_SCHEMA)
    empty.close()
    assert list(read_rows(tmp_path / "empty")) == []


def test_run_lock_refuses_a_second_run_on_the_same_directory(tmp_path):
    code = (
        "import sys, pathlib; from pipeline.io import run_lock\n"
        "try:\n    with run_lock(pathlib.Path(sys.argv[1])): pass\n"
        "except RuntimeError as e:\n    print(e); sys.exit(3)\n"
    )
    with run_lock(tmp_path):
        other = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                               cwd=os.getcwd())  # fmt: skip
    assert other.returncode == 3 and "another corpusforge run is using" in other.stdout
    free = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert free.returncode == 0, free.stdout + free.stderr
