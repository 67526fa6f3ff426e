#!/usr/bin/env python3
"""A strong PyTorch peer for Kiln's CUDA Llama runner: a Llama decoder written for decoding, not
HF `generate`. It reads the same safetensors, fuses the QKV and gate/up weights, keeps a static
KV cache, and captures the whole decode step (all layers, the LM head and the greedy argmax) in one
CUDA graph per batch size, optionally through `torch.compile`. Before timing, its first-step
logits are checked against transformers on the same weights.

Usage: torch_llama_peer.py --model DIR --out FILE.json [--batches 1,32,64] [--prompt-len 128]
       [--gen-len 128] [--dtype float16] [--compile]
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file


def load_weights(model_dir, dtype, device):
    """Every tensor of the checkpoint (one file or an index of shards), in `dtype`."""
    import glob
    import os

    tensors = {}
    for path in sorted(glob.glob(os.path.join(model_dir, "*.safetensors"))):
        for name, t in load_file(path).items():
            tensors[name] = t.to(device=device, dtype=dtype)
    return tensors


def rope_tables(config, max_len, device):
    """cos/sin of Llama's rotary embedding, including llama3 frequency scaling."""
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    theta = config.get("rope_theta", 10000.0)
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    scaling = config.get("rope_scaling") or {}
    if scaling.get("rope_type", scaling.get("type")) == "llama3":
        factor = scaling["factor"]
        low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        smooth = (old / wavelen - low) / (high - low)
        scaled = torch.where(wavelen > old / low, inv / factor, inv)
        mid = (wavelen <= old / low) & (wavelen >= old / high)
        inv = torch.where(mid, (1 - smooth) * inv / factor + smooth * inv, scaled)
    positions = torch.arange(max_len, dtype=torch.float64)
    angles = torch.outer(positions, inv)
    cos = torch.cat([angles.cos(), angles.cos()], dim=-1).float().to(device)
    sin = torch.cat([angles.sin(), angles.sin()], dim=-1).float().to(device)
    return cos, sin, head_dim


class Decoder:
    """The forward pass over a static cache [layers, 2, batch, kv_heads, max_len, head_dim]."""

    def __init__(self, config, weights, batch, max_len, dtype, device):
        self.c = config
        self.layers = config["num_hidden_layers"]
        self.heads = config["num_attention_heads"]
        self.kv_heads = config.get("num_key_value_heads", self.heads)
        self.eps = config.get("rms_norm_eps", 1e-6)
        self.cos, self.sin, self.head_dim = rope_tables(config, max_len, device)
        self.embed = weights["model.embed_tokens.weight"]
        self.head = weights.get("lm_head.weight", self.embed)
        self.final_norm = weights["model.norm.weight"]
        self.qkv, self.o, self.gate_up, self.down, self.norm1, self.norm2 = [], [], [], [], [], []
        for i in range(self.layers):
            p = f"model.layers.{i}."
            self.qkv.append(torch.cat([weights[p + f"self_attn.{n}_proj.weight"] for n in "qkv"]))
            self.o.append(weights[p + "self_attn.o_proj.weight"])
            self.gate_up.append(
                torch.cat([weights[p + "mlp.gate_proj.weight"], weights[p + "mlp.up_proj.weight"]]))
            self.down.append(weights[p + "mlp.down_proj.weight"])
            self.norm1.append(weights[p + "input_layernorm.weight"])
            self.norm2.append(weights[p + "post_attention_layernorm.weight"])
        self.cache = torch.zeros(
            (self.layers, 2, batch, self.kv_heads, max_len, self.head_dim), dtype=dtype, device=device)

    def rmsnorm(self, x, w):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * w

    def rotate(self, x, positions):
        cos = self.cos[positions].unsqueeze(1).to(x.dtype)  # [b, 1, t, d]
        sin = self.sin[positions].unsqueeze(1).to(x.dtype)
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin

    def forward(self, tokens, start):
        """Logits of the last position of `tokens` [b, t], placed at positions start.. in the
        cache. `start` is an int (prefill) or a 0-d device tensor (decode: the same captured graph
        then serves every step, the caller advancing `start` in place)."""
        b, t = tokens.shape
        device = tokens.device
        offsets = torch.arange(t, device=device)
        positions = (start + offsets).unsqueeze(0).expand(b, t)
        h = F.embedding(tokens, self.embed)
        q_dim = self.heads * self.head_dim
        kv_dim = self.kv_heads * self.head_dim
        max_len = self.cache.shape[4]
        keys = torch.arange(max_len, device=device)
        # Causal over the whole static cache: the query at position p sees keys 0..p.
        mask = keys.view(1, 1, 1, max_len) <= positions.view(b, 1, t, 1)
        slots = start + offsets
        for i in range(self.layers):
            x = self.rmsnorm(h, self.norm1[i])
            qkv = x @ self.qkv[i].T
            q = qkv[..., :q_dim].view(b, t, self.heads, self.head_dim).transpose(1, 2)
            k = qkv[..., q_dim:q_dim + kv_dim].view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
            v = qkv[..., q_dim + kv_dim:].view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
            q, k = self.rotate(q, positions), self.rotate(k, positions)
            self.cache[i, 0].index_copy_(2, slots, k)
            self.cache[i, 1].index_copy_(2, slots, v)
            attn = F.scaled_dot_product_attention(
                q, self.cache[i, 0], self.cache[i, 1], attn_mask=mask,
                enable_gqa=self.heads != self.kv_heads)
            h = h + attn.transpose(1, 2).reshape(b, t, q_dim) @ self.o[i].T
            x = self.rmsnorm(h, self.norm2[i])
            gate, up = (x @ self.gate_up[i].T).chunk(2, dim=-1)
            h = h + (F.silu(gate) * up) @ self.down[i].T
        return self.rmsnorm(h[:, -1], self.final_norm) @ self.head.T


def check_against_transformers(model_dir, config, weights, prompt, max_len, dtype):
    """The peer's first-step logits against transformers' on the same weights (fp32 reference)."""
    from transformers import AutoModelForCausalLM

    decoder = Decoder(config, weights, prompt.shape[0], max_len, dtype, "cuda")
    ref = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).cuda().eval()
    with torch.no_grad():
        want = ref(prompt).logits[:, -1].float()
        got = decoder.forward(prompt, 0).float()
    del ref
    torch.cuda.empty_cache()
    rel = ((got - want).norm() / want.norm()).item()
    same_top = (got.argmax(-1) == want.argmax(-1)).float().mean().item()
    return rel, same_top


def run(args):
    config = json.load(open(f"{args.model}/config.json"))
    dtype = getattr(torch, args.dtype)
    weights = load_weights(args.model, dtype, "cuda")
    vocab = config["vocab_size"]
    max_len = args.prompt_len + args.gen_len
    results = {"peer": "torch static-cache decoder, one CUDA graph per decode step",
               "torch": torch.__version__, "compile": args.compile, "dtype": args.dtype,
               "gpu": torch.cuda.get_device_name(), "levels": []}
    for batch in [int(b) for b in args.batches.split(",")]:
        decoder = Decoder(config, weights, batch, max_len, dtype, "cuda")
        g = torch.Generator().manual_seed(batch)
        prompt = torch.randint(0, vocab, (batch, args.prompt_len), generator=g).cuda()
        if "check" not in results:
            rel, same = check_against_transformers(
                args.model, config, weights, prompt[:1], max_len, dtype)
            results["check"] = {"first_step_logits_rel_l2_vs_transformers_fp32": rel,
                                "same_argmax": same}
            print(f"check vs transformers: rel L2 {rel:.3e}, same argmax {same:.2f}", flush=True)
        step = decoder.forward
        if args.compile:
            step = torch.compile(decoder.forward, mode="max-autotune-no-cudagraphs", dynamic=False)
        token = torch.zeros((batch, 1), dtype=torch.long, device="cuda")
        position = torch.full((), args.prompt_len, dtype=torch.long, device="cuda")
        times = []
        with torch.no_grad():
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            token.copy_(decoder.forward(prompt, 0).argmax(-1, keepdim=True))
            torch.cuda.synchronize()
            ttft = time.perf_counter() - t0

            def decode_step():
                token.copy_(step(token, position).argmax(-1, keepdim=True))
                position.add_(1)

            # Warm-up outside the capture (compilation, cuBLAS handles), then the position is reset.
            # Only time is measured: the tokens from here on need not be the greedy continuation.
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(2):
                    decode_step()
            torch.cuda.current_stream().wait_stream(side)
            position.fill_(args.prompt_len)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                decode_step()
            position.fill_(args.prompt_len)  # the capture recorded, not ran, the step
            for _ in range(args.gen_len - 1):
                torch.cuda.synchronize()
                t = time.perf_counter()
                graph.replay()
                torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
        steady = sorted(times[len(times) // 4:])
        step_ms = 1e3 * steady[len(steady) // 2]
        results["levels"].append({
            "batch": batch, "ttft_ms": 1e3 * ttft, "decode_step_ms_p50": step_ms,
            "tokens_per_second": batch / (step_ms / 1e3)})
        print(f"batch {batch}: step {step_ms:.3f} ms, {batch / (step_ms / 1e3):.1f} tokens/s",
              flush=True)
        del decoder
        torch.cuda.empty_cache()
    json.dump(results, open(args.out, "w"), indent=2)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--batches", default="1,32,64")
    parser.add_argument("--prompt-len", type=int, default=128)
    parser.add_argument("--gen-len", type=int, default=128)
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--compile", action="store_true")
    run(parser.parse_args())
