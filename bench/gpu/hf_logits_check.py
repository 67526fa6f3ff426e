#!/usr/bin/env python3
"""Cross-checks Kiln's CUDA runner on a real model shape against Hugging Face on the device:
the prompt's last logits from Kiln (LogitsDump, fp16 storage) against transformers in float32
and float16 on the same weights (relative L2 and max abs error; HF fp16 vs fp32 is the noise
floor), and Kiln's greedy tokens against HF fp32 greedy tokens with their top-2 gaps.

Usage: hf_logits_check.py --model DIR --prompt ID,ID,... --kiln LOGITS.bin --out FILE.json
"""
import argparse
import json

import numpy as np
import torch
from transformers import AutoModelForCausalLM


def load(path, dtype):
    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype).cuda().eval()
    except TypeError:
        return AutoModelForCausalLM.from_pretrained(path, torch_dtype=dtype).cuda().eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt", required=True)
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    prompt = [int(t) for t in args.prompt.split(",")]
    kiln = np.fromfile(args.kiln, dtype="<f4").astype(np.float64)
    kiln_tokens = [int(t) for t in open(args.kiln + ".tokens").read().strip().split(",")]
    ids = torch.tensor([prompt]).cuda()
    result = {"prompt_len": len(prompt)}
    with torch.inference_mode():
        ref = {}
        for name, dtype in [("fp32", torch.float32), ("fp16", torch.float16)]:
            model = load(args.model, dtype)
            ref[name] = model(ids).logits[0, -1].double().cpu().numpy()
            if name == "fp32":
                out = model.generate(ids, attention_mask=torch.ones_like(ids),
                                     max_new_tokens=len(kiln_tokens), min_new_tokens=len(kiln_tokens),
                                     do_sample=False, pad_token_id=0, output_scores=True,
                                     return_dict_in_generate=True)
                hf_tokens = out.sequences[0, len(prompt):].tolist()
                gaps = []
                for s in out.scores:
                    top = torch.topk(s[0].double(), 2).values
                    gaps.append(float(top[0] - top[1]))
            del model
            torch.cuda.empty_cache()

    def rel_l2(a, b):
        return float(np.linalg.norm(a - b) / np.linalg.norm(b))

    result["kiln_f16_vs_hf_fp32_rel_l2"] = rel_l2(kiln, ref["fp32"])
    result["kiln_f16_vs_hf_fp32_max_abs"] = float(np.abs(kiln - ref["fp32"]).max())
    result["hf_fp16_vs_hf_fp32_rel_l2"] = rel_l2(ref["fp16"], ref["fp32"])
    result["kiln_tokens"] = kiln_tokens
    result["hf_fp32_tokens"] = hf_tokens
    result["hf_fp32_top2_gaps"] = gaps
    agree = 0
    for k, h in zip(kiln_tokens, hf_tokens):
        if k != h:
            break
        agree += 1
    result["tokens_agreeing_from_start"] = agree
    result["first_near_tie_step"] = next((i for i, g in enumerate(gaps) if g < 0.05), None)
    print(json.dumps({k: v for k, v in result.items() if k != "hf_fp32_top2_gaps"}))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
