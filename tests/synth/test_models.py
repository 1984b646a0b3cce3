"""The SmolLM2 export that set-up makes (synth/models.py): complete and checked, a tampered copy is caught, and a
missing export is one line naming the set-up command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.assets import ASSETS
from synth import models
from synth.models import EXPORT_MANIFEST, SMOLLM2, check_export, exported_model


def test_setup_exported_smollm2_as_a_llama_folder_that_matches_its_manifest():
    folder = exported_model("smollm2")
    assert check_export(folder, ASSETS[SMOLLM2.asset].sha256) is None
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["vocab_size"] == 49152
    assert "quantization_config" not in config  # vLLM would look for GGUF weights
    assert config["dtype"] == "bfloat16"


def test_check_export_names_what_is_wrong(tmp_path: Path):
    src = exported_model("smollm2")
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("config.json", "tokenizer_config.json", EXPORT_MANIFEST):
        shutil.copy(src / name, copy / name)
    manifest = json.loads((copy / EXPORT_MANIFEST).read_text())
    manifest["files"] = {k: v for k, v in manifest["files"].items() if k in ("config.json", "tokenizer_config.json")}
    (copy / EXPORT_MANIFEST).write_text(json.dumps(manifest))
    want = ASSETS[SMOLLM2.asset].sha256
    assert check_export(copy, want) is None
    assert "another input" in check_export(copy, "0" * 64)
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("576", "577"))
    assert "config.json altered" in check_export(copy, want)
    (copy / "config.json").unlink()
    assert "config.json missing" in check_export(copy, want)
    (copy / EXPORT_MANIFEST).unlink()
    assert "missing or unreadable" in check_export(copy, want)


def test_a_missing_export_names_the_setup_command(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(models, "BUILT_MODELS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="run `bash scripts/bootstrap.sh`"):
        exported_model("smollm2")
    with pytest.raises(KeyError, match="unknown exported model"):
        exported_model("gpt-99")
