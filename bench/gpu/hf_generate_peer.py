#!/usr/bin/env python3
"""Hugging Face transformers `generate` on the same weights as Kiln's bench-llm: the peer of
bench/gpu/llm-gpu.sh. Static batches of `concurrency` random prompts (HF has no continuous
batching), greedy, exactly gen-len new tokens each. Per-step timestamps come from a logits
processor (generate synchronizes every step anyway), giving TTFT and inter-token latency.

Usage: hf_generate_peer.py --model DIR --out FILE.json [--concurrency 1,8,32,64]
       [--prompt-len 128] [--gen-len 128] [--compile]
"""
import argparse
import json
import math
import time

import torch
import transformers
from transformers import AutoModelForCausalLM, LogitsProcessor, LogitsProcessorList


class StepClock(LogitsProcessor):
    """Records the wall time at which each generation step's logits exist."""

    def __init__(self):
        self.times = []

    def __call__(self, input_ids, scores):
        torch.cuda.synchronize()
        self.times.append(time.perf_counter())
        return scores


def percentile(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    rank = math.ceil(q * len(s))
    return s[max(0, min(len(s) - 1, rank - 1))]


def run_level(model, vocab, concurrency, requests, prompt_len, gen_len, seed, generate_kwargs):
    g = torch.Generator().manual_seed(seed)
    prompts = torch.randint(0, vocab, (requests, prompt_len), generator=g)
    ttft, itl, generated = [], [], 0
    torch.cuda.synchronize()
    start = time.perf_counter()
    for b in range(0, requests, concurrency):
        ids = prompts[b:b + concurrency].cuda()
        clock = StepClock()
        t0 = time.perf_counter()
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=gen_len,
            min_new_tokens=gen_len,
            do_sample=False,
            pad_token_id=0,
            logits_processor=LogitsProcessorList([clock]),
            **generate_kwargs,
        )
        torch.cuda.synchronize()
        generated += (out.shape[1] - prompt_len) * out.shape[0]
        steps = clock.times
        for _ in range(ids.shape[0]):
            ttft.append((steps[0] - t0) * 1e3)
            itl.extend((steps[i] - steps[i - 1]) * 1e3 for i in range(1, len(steps)))
    seconds = time.perf_counter() - start
    return {
        "concurrency": concurrency,
        "requests": requests,
        "generated_tokens": generated,
        "seconds": seconds,
        "output_tokens_per_second": generated / seconds,
        "ttft_p50_ms": percentile(ttft, 0.5),
        "ttft_p99_ms": percentile(ttft, 0.99),
        "itl_p50_ms": percentile(itl, 0.5),
        "itl_p99_ms": percentile(itl, 0.99),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--concurrency", default="1,8,32,64")
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--gen-len", type=int, default=128)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--compile", action="store_true",
                    help="also run static cache + torch.compile (slow to compile)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    try:
        model = AutoModelForCausalLM.from_pretrained(
            args.model, dtype=torch.float16, attn_implementation="sdpa")
    except TypeError:  # transformers before 4.56 names it torch_dtype
        model = AutoModelForCausalLM.from_pretrained(
            args.model, torch_dtype=torch.float16, attn_implementation="sdpa")
    model = model.cuda().eval()
    load_s = time.perf_counter() - t0
    vocab = model.config.vocab_size
    levels = [int(c) for c in args.concurrency.split(",")]
    modes = [("eager", {})]
    if args.compile:
        modes.append(("static+compile", {"cache_implementation": "static"}))
    report = {
        "peer": "transformers generate",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0),
        "dtype": "float16",
        "attention": "sdpa",
        "model": args.model,
        "prompt_len": args.prompt_len,
        "gen_len": args.gen_len,
        "load_seconds": load_s,
        "modes": {},
    }
    with torch.inference_mode():
        for name, kwargs in modes:
            if name != "eager":
                model.forward = torch.compile(model.forward, mode="reduce-overhead")
            # Untimed warm-up (cuBLAS, allocator, compilation).
            run_level(model, vocab, 1, 1, args.prompt_len, 8, args.seed + 1, kwargs)
            rows = []
            for c in levels:
                requests = max(4, 2 * c)
                row = run_level(model, vocab, c, requests, args.prompt_len, args.gen_len,
                                args.seed, kwargs)
                print(f"[hf {name}] concurrency {c}: {row['output_tokens_per_second']:.1f} tok/s, "
                      f"ITL p50 {row['itl_p50_ms']:.2f} ms", flush=True)
                rows.append(row)
            report["modes"][name] = rows
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
