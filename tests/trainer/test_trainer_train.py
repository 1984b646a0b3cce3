"""The loop on a real corpus shard: loss falls, resume is exact, the curriculum chains stages, the CLI runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from trainer_shards import byte_tokens, gsm8k_texts, write_manifest

from trainer.config import Config, ModelConfig, TrainConfig, load_config
from trainer.train import load_checkpoint, lr_at, train_from_manifest

REPO = Path(__file__).resolve().parents[2]


def tiny_cfg(steps_warmup: int = 10, **train) -> Config:
    model = ModelConfig(
        vocab_size=512,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        num_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=64,
        max_position_embeddings=512,
    )
    t = {
        "batch_size": 8,
        "seq_len": 128,
        "lr": 3e-3,
        "warmup_steps": steps_warmup,
        "device": "cpu",
        "dtype": "fp32",
        # One thread: the suite's two xdist workers share the 2 cores, and a second torch thread only spins while
        # the other worker runs (test_loss_falls_on_a_real_corpus_shard: 19 s alone, 48 s beside the vLLM module).
        "threads": 1,
        "log_every": 50,
        "ce_chunk_tokens": 512,
        "init_from": "previous_stage",
    }
    t.update(train)
    return Config(model=model, train=TrainConfig(**t))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, corpora: Path) -> Path:
    """`runs/<stage>/shards/<stage>/manifest.json` for general (GSM8K) and long_context (longer rows)."""
    root = tmp_path_factory.mktemp("runs")
    texts = gsm8k_texts(corpora)
    tokens = byte_tokens(texts)
    write_manifest(root / "general" / "shards" / "general", tokens[:400_000], seq_len=256, seqs_per_shard=400)
    write_manifest(
        root / "long_context" / "shards" / "long_context", tokens[400_000:500_000], seq_len=512, stage="long_context"
    )
    return root


def test_loss_falls_on_a_real_corpus_shard(runs: Path, tmp_path: Path):
    lines: list[str] = []
    result = train_from_manifest(
        runs / "general" / "shards" / "general" / "manifest.json",
        200,
        tiny_cfg(batch_size=8, seq_len=64),
        tmp_path / "train",
        log=lines.append,
    )
    losses = result["losses"]
    assert len(losses) == 200
    assert losses[0] == pytest.approx(np.log(512), abs=0.3)  # uniform over the padded vocabulary at init
    assert np.mean(losses[-20:]) < 2.6 < losses[0] - 3  # bytes of English + arithmetic: well below log(512)
    assert any(
        line.startswith("step 00200/00200 | loss ") and "| tok/s " in line and "| load " in line for line in lines
    )
    assert "mfu" not in lines[-1]  # CPU: no peak to divide by
    assert result["checkpoint"] and Path(result["checkpoint"]).is_file()


def test_resume_continues_exactly(runs: Path, tmp_path: Path):
    manifest = runs / "general" / "shards" / "general" / "manifest.json"
    cfg = tiny_cfg(steps_warmup=2, batch_size=4, seq_len=64)
    straight = train_from_manifest(manifest, 6, cfg, tmp_path / "a", log=lambda s: None)
    train_from_manifest(manifest, 3, cfg, tmp_path / "b", log=lambda s: None)
    ckpt = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert ckpt["step"] == 3 and ckpt["data"]["sampler"]["index"] == 12
    assert set(ckpt) >= {"model", "optimizers", "data", "rng", "config"}
    resumed = train_from_manifest(manifest, 6, cfg, tmp_path / "b", log=lambda s: None)
    assert resumed["start_step"] == 3
    assert resumed["losses"] == straight["losses"][3:]
    a = load_checkpoint(tmp_path / "a" / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "b" / "checkpoint.pt")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_long_context_stage_continues_from_the_previous_checkpoint_with_abf_and_yarn(runs: Path):
    general = runs / "general" / "shards" / "general" / "manifest.json"
    # out_dir None: the default runs/general/train beside the shards.
    train_from_manifest(general, 30, tiny_cfg(batch_size=8, seq_len=64), None, log=lambda s: None)
    assert (runs / "general" / "train" / "checkpoint.pt").is_file()
    # No reasoning stage here: point long_context at general explicitly, as a config's init_from would.
    cfg = tiny_cfg(seq_len=0, batch_size=2, init_from=str(runs / "general" / "train" / "checkpoint.pt"))
    cfg.model = ModelConfig(
        **{
            **cfg.model.to_dict(),
            "rope_theta": 1e6,
            "max_position_embeddings": 2048,
            "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 512},
        }
    )
    lines: list[str] = []
    lc = runs / "long_context" / "shards" / "long_context" / "manifest.json"
    result = train_from_manifest(lc, 2, cfg, None, log=lines.append)
    assert result["init_from"]["stage"] == "general" and result["init_from"]["step"] == 30
    assert result["init_from"]["rope_theta"] == (10000.0, 1e6)
    assert any("continuing from" in line and "rope_theta 10000 -> 1e+06" in line for line in lines)
    # The trained weights carry over: far below a fresh init's log(512) = 6.24 on the first step.
    assert result["losses"][0] < 4.5
    saved = load_checkpoint(runs / "long_context" / "train" / "checkpoint.pt")
    assert saved["config"]["model"]["rope_scaling"]["factor"] == 4.0


def test_previous_stage_is_found_by_layout(runs: Path, tmp_path: Path):
    from trainer.train import previous_stage_checkpoint

    lc = runs / "long_context" / "shards" / "long_context" / "manifest.json"
    assert previous_stage_checkpoint(lc, "long_context") == runs / "reasoning" / "train" / "checkpoint.pt"
    assert previous_stage_checkpoint(lc, "general") is None


def test_schedule_warms_up_then_decays_to_the_floor():
    t = TrainConfig(lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, 100, t) == pytest.approx(0.1) and lr_at(9, 100, t) == pytest.approx(1.0)
    assert lr_at(55, 100, t) == pytest.approx(0.55) and lr_at(100, 100, t) == pytest.approx(0.1)


def test_shipped_configs_load():
    for name in ("tiny_cpu", "long_context", "gpu_100m"):
        cfg = load_config(REPO / "configs" / "trainer" / f"{name}.toml")
        assert cfg.model.num_experts >= cfg.model.num_experts_per_tok
    lc = load_config(REPO / "configs" / "trainer" / "long_context.toml").model
    assert lc.rope_theta == 1e6 and lc.rope_scaling["rope_type"] == "yarn"
    # The GPU model is DeepSeek-style (MLA, sigmoid router, aux-free bias, shared expert) and passes the export checks.
    from trainer.export_hf import check_exportable

    gpu = load_config(REPO / "configs" / "trainer" / "gpu_100m.toml").model
    assert gpu.model_type == "deepseek_v3" and gpu.moe_balancing == "aux_free" and gpu.shared_expert_intermediate_size
    check_exportable(gpu, {})


def test_cli_help_and_refusal(runs: Path, tmp_path: Path):
    out = subprocess.run(
        [sys.executable, "-m", "trainer", "--help"], cwd=REPO, check=False, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "--manifest" in out.stdout and "--steps" in out.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "trainer",
            "--manifest",
            str(tmp_path / "none.json"),
            "--steps",
            "1",
            "--config",
            str(REPO / "configs" / "trainer" / "tiny_cpu.toml"),
        ],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "not found" in bad.stderr


class _Stderr:
    """stderr as a person's terminal (`tty=True`) or a pipe: what they would see."""

    def __init__(self, tty: bool) -> None:
        self.text, self.tty = "", tty

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return self.tty


def test_on_a_terminal_a_live_line_replaces_the_step_lines(tmp_path: Path, monkeypatch):
    """A person at a terminal sees one live line (steps, loss, tok/s) and the last step's line, not a line every
    `log_every` steps; log.jsonl keeps every one. Elsewhere (a pipe, CI) the lines are logged as before."""
    import time

    import torch.nn.functional as F

    import trainer.train

    text = Path(F.__file__).read_text(encoding="utf-8")  # real text that ships with torch
    manifest = write_manifest(tmp_path / "shards", byte_tokens([text[:40_000]]), seq_len=64)
    clip = trainer.train.clip_grad_norm
    # Each step past tqdm's 0.1 s between redraws, so the live line shows every step's numbers.
    monkeypatch.setattr(trainer.train, "clip_grad_norm", lambda *a: (time.sleep(0.15), clip(*a))[1])
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("CORPUSFORGE_NO_PROGRESS", raising=False)
    cfg = tiny_cfg(seq_len=64, log_every=1)
    for tty in (True, False):
        stderr, lines = _Stderr(tty), []
        monkeypatch.setattr(sys, "stderr", stderr)
        train_from_manifest(manifest, 3, cfg, tmp_path / str(tty), log=lines.append)
        steps = [line[:16] for line in lines if line.startswith("step ")]
        assert len((tmp_path / str(tty) / "log.jsonl").read_text().splitlines()) == 3
        if tty:
            assert steps == ["step 00003/00003"], lines
            assert "train general" in stderr.text and "3/3" in stderr.text and "loss " in stderr.text, stderr.text
            assert " tok/s" in stderr.text and stderr.text.endswith("\r"), stderr.text  # cleared at the end
        else:
            assert steps == [f"step 0000{i}/00003" for i in range(1, 4)] and stderr.text == ""
