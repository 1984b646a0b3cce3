"""The proxy model config the ablation tests train (shared by both test modules)."""

# Small enough to train in seconds on 2 shared cores; the same architecture family as proxy_cpu.toml.
TINY_PROXY = """
[model]
vocab_size = 0
hidden_size = 64
num_hidden_layers = 1
num_attention_heads = 2
num_key_value_heads = 1
head_dim = 32
num_experts = 4
num_experts_per_tok = 2
moe_intermediate_size = 64
max_position_embeddings = 128
[train]
batch_size = 8
seq_len = 128
lr = 1e-2
warmup_steps = 5
dtype = "fp32"
device = "cpu"
sparse_embedding = false
log_every = 5
[tokenizer]
name = "utf8_bytes"
"""
