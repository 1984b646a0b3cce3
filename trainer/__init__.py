"""A small MoE trainer fed by corpusforge's shard manifests.

- `trainer.config`: typed config (model keys follow Hugging Face Qwen3-MoE's / DeepSeek-V3's `config.json`).
- `trainer.model`: the model, top to bottom.
- `trainer.data`: manifest reader, checks, deterministic resumable sampler.
- `trainer.train`: `train_from_manifest(manifest, steps, config, out_dir)`.
- `trainer.optim`: AdamW (+ lazy Adam for a sparse embedding), the learning-rate schedule, gradient clipping.
- `trainer.metrics`: a step's numbers, tokens/s and MFU, the log line and the live progress line.
- `trainer.checkpoint`: the checkpoint file (save, safe load, RNG), the previous stage's weights.
- `trainer.export_hf`: checkpoint -> Hugging Face Qwen3-MoE (GQA) or DeepSeek-V3 (MLA) folder.

torch is imported by those modules, not here, so `import trainer` stays cheap.
"""
