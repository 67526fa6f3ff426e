#!/usr/bin/env python3
"""Kiln on TensorRT FP16 against sentence-transformers encode (fp16), all-MiniLM-L6-v2 on the GPU:
embed-gpu.{md,json,png} from embed-gpu-kiln.json (EmbedGpuBench) and embed-gpu-st.json
(st_peer.py), with the issue's goal: Kiln at least 2x the peer's texts/s at its best batch size.

    embed_gpu_report.py OUT_DIR
"""
import json
import os
import sys

GOAL = 2.0
# The device command that ran: embed-gpu.sh passes its arguments on (EMBED_ARGS of device-job.sh).
ARGS = os.environ.get("EMBED_GPU_ARGS", "").strip()
COMMAND = ("EMBED_ARGS=\"" + ARGS + "\" " if ARGS else "") + \
    "bash .gpu/bin/run.sh bash .devrun/bench/gpu/device-job.sh start embed"


def rows(result, name):
    """(label, median, per-round) for each batch size of one side."""
    return [(f"{name} b={b}", r["median"], r["texts_per_second"])
            for b, r in result["batches"].items()]


def cosine_line(st):
    parts = []
    for key, label in (("kiln_vs_st_fp16", "Kiln vs ST fp16"), ("kiln_vs_st_fp32", "Kiln vs ST fp32"),
                       ("fp16_vs_fp32", "ST fp16 vs ST fp32"), ("gate_vs_onnxruntime",
                                                               "ST fp32 vs ONNX Runtime (gate)")):
        if key in st:
            parts.append(f"{label} mean {st[key]['mean']:.6f}, min {st[key]['min']:.6f}")
    return "; ".join(parts)


def main():
    out = sys.argv[1]
    with open(os.path.join(out, "embed-gpu-kiln.json")) as f:
        kiln = json.load(f)
    with open(os.path.join(out, "embed-gpu-st.json")) as f:
        st = json.load(f)
    if kiln["texts"] != st["texts"]:
        sys.exit(f"the two sides embedded different texts ({kiln['texts']} vs {st['texts']})")
    ratio = kiln["median_texts_per_second"] / st["median_texts_per_second"]
    verdict = "MEETS" if ratio >= GOAL else "MISSES"
    summary = {
        "date": kiln["date"],
        "device": kiln["device"],
        "peer_device": st["device"],
        "texts": kiln["texts"],
        "kiln_median_texts_per_second": kiln["median_texts_per_second"],
        "kiln_batch": kiln["batch_size"],
        "kiln_build_seconds": kiln["build_seconds"],
        "st_median_texts_per_second": st["median_texts_per_second"],
        "st_best_batch": st["best_batch"],
        "ratio": ratio,
        "goal": GOAL,
        "verdict": verdict,
        "command": COMMAND,
        "kiln": kiln,
        "st": st,
    }
    with open(os.path.join(out, "embed-gpu.json"), "w") as f:
        json.dump(summary, f, indent=2)

    table = rows(kiln, "Kiln TensorRT FP16") + rows(st, "sentence-transformers fp16")
    md = [
        "# Sentence embedding on the GPU: Kiln TensorRT FP16 against sentence-transformers",
        "",
        f"- date: {kiln['date']}",
        f"- device: {kiln['device']} (peer: {st['device']})",
        f"- {kiln['texts']} mixed-length texts (EmbedCpuBench.mixedTexts, seed 42), all-MiniLM-L6-v2,"
        " both sides truncating at 128 tokens; the peer's weights are read from the same ONNX file",
        f"- {kiln['rounds']} timed rounds after a warm-up pass, per batch size; each side's best"
        " batch size by median is its figure; Kiln builds one engine per batch size"
        f" (batch {kiln['batch_size']}: {kiln['build_seconds']:.1f} s)",
        "- peer: " + ", ".join(f"{k.replace('_', '-')} {v}" for k, v in st["versions"].items()),
        f"- command: `{COMMAND}`",
        "",
        f"**Kiln {kiln['median_texts_per_second']:.0f} texts/s (batch {kiln['batch_size']}) vs"
        f" sentence-transformers {st['median_texts_per_second']:.0f} texts/s (batch"
        f" {st['best_batch']}): {ratio:.2f}x. {verdict} the goal of >= {GOAL:.0f}x.**",
        "",
        f"Cosines: {cosine_line(st)}",
        "",
        "| system | median texts/s | per round |",
        "|---|---|---|",
    ]
    md += [f"| {label} | {median:.1f} | {', '.join(f'{v:.1f}' for v in per)} |"
           for label, median, per in table]
    with open(os.path.join(out, "embed-gpu.md"), "w") as f:
        f.write("\n".join(md) + "\n")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    colors = ["tab:blue" if label.startswith("Kiln") else "tab:gray" for label, _, _ in table]
    short = {"Kiln TensorRT FP16": "Kiln TRT FP16", "sentence-transformers fp16": "ST fp16"}
    labels = [label.rsplit(" b=", 1) for label, _, _ in table]
    bars = ax.bar([f"{short[name]}\nb={b}" for name, b in labels],
                  [median for _, median, _ in table], color=colors)
    ax.bar_label(bars, fmt="%.0f")
    ax.set_ylabel("texts/s (median)")
    ax.set_title(f"all-MiniLM-L6-v2 on {kiln['device']}: Kiln/ST best = {ratio:.2f}x ({verdict} 2x)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "embed-gpu.png"), dpi=120)
    print("\n".join(md))


if __name__ == "__main__":
    main()
