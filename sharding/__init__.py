"""Tokenizers and curriculum shards: the trainer handoff (`shards/<stage>/manifest.json`).

Modules: `tokenizer` (offline, sha256-checked tokenizers), `mixture` (stage token budgets), `chunks` (chunk
tokenization, the token cache), `doc_table` (the tokenized documents), `pack` (document selection, sequence
packing), `writer` (atomic shard files), `manifest` (write/read/verify), `exports` (datatrove/nanotron `.ds`,
Megatron `.bin/.idx`), `config` (the `[shards]` table), `steps` (the tokenize, shard_plan and shards work units
and `build_shards`, the one entry point the stage calls), `plan_io` (the plan's files), `publish`
(`shards/<stage>/` and the checks before reuse), `budget` (budget rows and the build's summary), `build` (its
command line and `build_stage_shards`, the same build from a corpus folder).
"""
