"""Tokenizers and curriculum shards: the trainer handoff (`shards/<stage>/manifest.json`).

Modules: `tokenizer` (offline, sha256-checked tokenizers), `mixture` (stage token budgets), `pack`
(resumable tokenization, document selection, sequence packing), `writer` (atomic shards, journal),
`manifest` (write/read/verify), `exports` (datatrove/nanotron `.ds`, Megatron `.bin/.idx`), `build`
(`build_stage_shards`, the one entry point the stage flow calls).
"""
