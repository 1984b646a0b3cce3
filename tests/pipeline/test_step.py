"""The code version that every step fingerprint hashes: which source edits redo which units."""

from __future__ import annotations

import shutil
from pathlib import Path

from core.paths import REPO_ROOT
from pipeline.step import DATA_PATH_PACKAGES, Step, code_version
from synth.step import SynthStep


def _copy_data_path_code(src: Path, dst: Path) -> None:
    for pkg in DATA_PATH_PACKAGES:
        for path in (src / pkg).rglob("*.py"):
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def test_editing_synth_run_invalidates_the_synth_units(tmp_path):
    """synth/run.py decides what the synth step writes (the requests, the parsing of generations), so an edit to it
    must change the synth step's fingerprint and redo its units (synth/ was left out of the code version)."""
    _copy_data_path_code(REPO_ROOT, tmp_path)
    code_version.cache_clear()
    before = code_version(tmp_path)
    assert before == code_version(REPO_ROOT)  # the copy holds every file the version reads
    run_py = tmp_path / "synth" / "run.py"
    run_py.write_text(run_py.read_text() + "\n# an edit to the request loop\n")
    code_version.cache_clear()
    assert code_version(tmp_path) != before
    assert SynthStep.fingerprint is Step.fingerprint  # the synth step's fingerprint hashes that code version


def test_editing_the_trainer_leaves_the_data_path_units_alone(tmp_path):
    """The trainer is not data-path code: an edit to it keeps every step's units."""
    _copy_data_path_code(REPO_ROOT, tmp_path)
    code_version.cache_clear()
    before = code_version(tmp_path)
    (tmp_path / "trainer").mkdir()
    (tmp_path / "trainer" / "train.py").write_text("# a new training loop\n")
    code_version.cache_clear()
    assert code_version(tmp_path) == before
