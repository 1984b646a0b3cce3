"""GPU check of the synth model path: the exported tiny model generates with transformers on CUDA, matches the CPU
greedy continuation, and reports generated tokens/s (and vLLM's, when `vllm` is importable).

    python benchmarks/gpu_synth.py HF_DIR [--requests 64] [--max-tokens 128]

Prints one JSON line per measurement; exits non-zero when CUDA is missing or CPU and GPU disagree.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device"}))
        return 2
    tok = AutoTokenizer.from_pretrained(args.model)
    tok.padding_side = "left"
    prompts = [f"Dataset description {i}: the iris dataset has" for i in range(args.requests)]
    cpu = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    gpu = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval().cuda()
    enc = tok(prompts[:4], return_tensors="pt", padding=True)
    with torch.no_grad():
        a = cpu.generate(**enc, max_new_tokens=16, do_sample=False, pad_token_id=tok.pad_token_id)
        b = gpu.generate(
            **{k: v.cuda() for k, v in enc.items()}, max_new_tokens=16, do_sample=False, pad_token_id=tok.pad_token_id
        ).cpu()
    same = a.tolist() == b.tolist()
    print(json.dumps({"check": "greedy cpu == gpu", "ok": same, "device": torch.cuda.get_device_name()}))
    for dtype in (torch.float32, torch.bfloat16):
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype).eval().cuda()
        tokens, t0 = 0, time.perf_counter()
        for i in range(0, len(prompts), args.batch):
            enc = tok(prompts[i : i + args.batch], return_tensors="pt", padding=True).to("cuda")
            with torch.no_grad():
                out = model.generate(
                    **enc,
                    max_new_tokens=args.max_tokens,
                    min_new_tokens=args.max_tokens,
                    do_sample=True,
                    temperature=0.8,
                    pad_token_id=tok.pad_token_id,
                )
            tokens += (out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0]
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        print(
            json.dumps(
                {
                    "path": f"transformers generate cuda {dtype}".replace("torch.", ""),
                    "tokens": tokens,
                    "seconds": round(dt, 3),
                    "tok_per_s": round(tokens / dt, 1),
                }
            )
        )
    try:
        from vllm import LLM, SamplingParams
    except ImportError:
        print(
            json.dumps(
                {"path": "vllm", "skipped": "vllm not installed (ENGINE_GPU=1 bash scripts/bootstrap_engine.sh)"}
            )
        )
        return 0 if same else 1
    llm = LLM(str(args.model), dtype="float32", enforce_eager=True, max_model_len=1024, gpu_memory_utilization=0.3)
    sp = SamplingParams(max_tokens=args.max_tokens, ignore_eos=True, temperature=0.8, seed=0)
    t0 = time.perf_counter()
    outs = llm.generate(prompts, sp)
    dt = time.perf_counter() - t0
    tokens = sum(len(o.outputs[0].token_ids) for o in outs)
    print(
        json.dumps(
            {
                "path": "vllm offline cuda",
                "tokens": tokens,
                "seconds": round(dt, 3),
                "tok_per_s": round(tokens / dt, 1),
            }
        )
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
