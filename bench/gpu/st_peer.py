#!/usr/bin/env python3
"""The sentence-transformers peer of EmbedGpuBench: the same all-MiniLM-L6-v2 weights, taken from
the ONNX file Kiln runs (the device has no hub access), as a SentenceTransformer (BertModel, mean
pooling, normalize), timed with `encode` in fp16 on CUDA at several batch sizes.

    st_peer.py MODEL_DIR OUT_DIR [--texts FILE] [--device cuda] [--batches 32,64,128]
               [--rounds 5] [--skip-timing]

MODEL_DIR holds model.onnx and tokenizer.json; the texts are OUT_DIR/texts.jsonl (one JSON string
a line, as EmbedGpuBench wrote them). Before anything is timed, fp32 embeddings of the first 64
texts must match ONNX Runtime on model.onnx (min cosine >= 0.9999), which proves the weight
mapping. Writes OUT_DIR/embed-gpu-st.json, with the cosines of Kiln's embeddings
(OUT_DIR/kiln-embeddings.npy, if there) to these fp16 and fp32 ones.
"""
import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np
import onnx
from onnx import numpy_helper

warnings.filterwarnings("ignore", category=DeprecationWarning)
MAX_TOKENS = 128  # Kiln truncates at tokenizer.json's 128 tokens; so does this peer
GATE_TEXTS = 64
GATE_MIN_COSINE = 0.9999


def die(msg):
    sys.exit(f"st_peer: {msg}")


def bert_weights(onnx_path):
    """The ONNX initializers as a BertModel state dict, plus the config they imply. Named
    initializers keep their torch names; the anonymous MatMul weights (onnx::MatMul_N, stored
    [in, out]) are named by the bias their MatMul's output is added to, and transposed."""
    graph = onnx.load(onnx_path).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    state = {}
    for name, value in inits.items():
        if name == "embeddings.position_ids":
            continue  # a buffer torch makes itself
        if not name.startswith("onnx::"):
            state[name] = value
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in inits:
            continue
        weight = node.input[1]
        biases = [i for c in consumers.get(node.output[0], []) if c.op_type == "Add"
                  for i in c.input if i in inits and i.endswith(".bias")]
        if len(biases) != 1:
            die(f"cannot tell which Linear {weight} belongs to (bias adds: {biases})")
        target = biases[0][: -len(".bias")] + ".weight"
        if target in state:
            die(f"{target} assigned twice ({weight})")
        state[target] = inits[weight].T.copy()
    unused = [n for n in inits if n.startswith("onnx::") and
              not any(n == node.input[1] for node in graph.node if node.op_type == "MatMul")]
    if unused:
        die(f"initializers left unassigned: {unused}")
    words = state["embeddings.word_embeddings.weight"]
    layers = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"encoder\.layer\.(\d+)\.", k)))
    hidden = words.shape[1]
    head_dim = attention_head_dim(graph, inits)
    config = dict(
        vocab_size=words.shape[0], hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=hidden // head_dim,
        intermediate_size=state["encoder.layer.0.intermediate.dense.bias"].shape[0],
        max_position_embeddings=state["embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=state["embeddings.token_type_embeddings.weight"].shape[0],
        hidden_act="gelu", layer_norm_eps=1e-12)
    return state, config


def attention_head_dim(graph, inits):
    """The head size from the attention scores' scale: Div(QK^T, sqrt(head_dim))."""
    constants = {n.output[0]: numpy_helper.to_array(n.attribute[0].t)
                 for n in graph.node if n.op_type == "Constant" and n.attribute}
    constants.update(inits)
    for node in graph.node:
        if node.op_type == "Div" and node.input[1] in constants:
            c = constants[node.input[1]]
            if c.size == 1 and float(c) > 1:
                return int(round(float(c) ** 2))
    die("no attention scale (Div by sqrt(head_dim)) in the graph")


def build_model(model_dir, device):
    import torch
    from sentence_transformers import SentenceTransformer, models
    from tokenizers import Tokenizer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    state, config = bert_weights(os.path.join(model_dir, "model.onnx"))
    bert = BertModel(BertConfig(**config), add_pooling_layer=False)
    expected = {k: v.shape for k, v in bert.state_dict().items() if not k.endswith("position_ids")}
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k])]
    if missing or extra or wrong:
        die(f"weights do not fit BertModel{config}: missing {missing}, unassigned {extra},"
            f" shape mismatch {[(k, state[k].shape, tuple(expected[k])) for k in wrong]}")
    bert.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()}, strict=False)
    # Padding and truncation stay per call: the file's fixed padding to 128 would make every
    # batch full length, which Kiln does not do either.
    backend = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    backend.no_padding()
    backend.no_truncation()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, model_max_length=MAX_TOKENS, unk_token="[UNK]",
        sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"])
    local = tempfile.mkdtemp(prefix="st-minilm-")
    bert.save_pretrained(local)
    tokenizer.save_pretrained(local)
    # No pooler: the ONNX export has none and mean pooling never reads it.
    transformer = models.Transformer(local, max_seq_length=MAX_TOKENS,
                                     model_kwargs={"add_pooling_layer": False})
    pooling = models.Pooling(config["hidden_size"], pooling_mode="mean")
    return SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device=device), config


def onnx_reference(model_dir, st, texts):
    """Mean-pooled, normalized ONNX Runtime (CPU) embeddings on the peer's own tokenization."""
    import onnxruntime as ort

    sess = ort.InferenceSession(os.path.join(model_dir, "model.onnx"),
                                providers=["CPUExecutionProvider"])
    enc = st.tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS,
                       return_tensors="np")
    longest = max(len(st.tokenizer(t, truncation=True, max_length=MAX_TOKENS)["input_ids"])
                  for t in texts)
    if enc["input_ids"].shape[1] != longest:
        die(f"tokenizer pads to {enc['input_ids'].shape[1]}, not the longest text ({longest})")
    feed = {i.name: enc[i.name].astype(np.int64) for i in sess.get_inputs()}
    hidden = sess.run(None, feed)[0]
    mask = enc["attention_mask"][..., None].astype(np.float32)
    pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def cosines(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)  # fp16 input: no fp16 rounding
    c = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"mean": float(c.mean()), "min": float(c.min())}


def timed_rounds(st, texts, batch, rounds, sync):
    st.encode(texts, batch_size=batch, convert_to_numpy=True)  # warm-up: kernels, allocator
    per_round, vectors = [], None
    for _ in range(rounds):
        sync()
        start = time.perf_counter()
        vectors = st.encode(texts, batch_size=batch, convert_to_numpy=True)
        sync()
        per_round.append(len(texts) / (time.perf_counter() - start))
    return per_round, vectors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--texts", help="JSON-lines texts (default OUT_DIR/texts.jsonl)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batches", default="32,64,128")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--skip-timing", action="store_true", help="the correctness gate only")
    args = ap.parse_args()
    import torch
    import sentence_transformers
    import transformers

    with open(args.texts or os.path.join(args.out_dir, "texts.jsonl")) as f:
        texts = [json.loads(line) for line in f if line.strip()]
    st, config = build_model(args.model_dir, args.device)
    st.eval()
    fp32 = st.encode(texts, batch_size=64, convert_to_numpy=True)
    gate = cosines(fp32[:GATE_TEXTS], onnx_reference(args.model_dir, st, texts[:GATE_TEXTS]))
    print(f"gate: fp32 {args.device} vs ONNX Runtime CPU on {min(GATE_TEXTS, len(texts))} texts,"
          f" min cosine {gate['min']:.7f}, mean {gate['mean']:.7f}", flush=True)
    if gate["min"] < GATE_MIN_COSINE:
        die(f"correctness gate failed: min cosine {gate['min']:.7f} < {GATE_MIN_COSINE};"
            " the weight mapping or tokenization is wrong, nothing timed")
    result = {
        "system": "sentence-transformers encode (fp16)",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "sentence_transformers": sentence_transformers.__version__},
        "config": config, "max_seq_length": st.max_seq_length, "texts": len(texts),
        "gate_vs_onnxruntime": gate,
    }
    if not args.skip_timing:
        sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
        st.half()
        per_batch, fp16 = {}, None
        for batch in [int(b) for b in args.batches.split(",")]:
            per_round, vectors = timed_rounds(st, texts, batch, args.rounds, sync)
            per_batch[str(batch)] = {"texts_per_second": per_round,
                                     "median": statistics.median(per_round)}
            print(f"batch {batch}: median {statistics.median(per_round):.1f} texts/s"
                  f" ({', '.join(f'{v:.1f}' for v in per_round)})", flush=True)
            if fp16 is None:
                fp16 = vectors
        best = max(per_batch, key=lambda b: per_batch[b]["median"])
        result.update(rounds=args.rounds, batches=per_batch, best_batch=int(best),
                      median_texts_per_second=per_batch[best]["median"],
                      fp16_vs_fp32=cosines(fp16, fp32))
        kiln_file = os.path.join(args.out_dir, "kiln-embeddings.npy")
        if os.path.exists(kiln_file):
            kiln = np.load(kiln_file)
            result["kiln_vs_st_fp16"] = cosines(kiln, fp16)
            result["kiln_vs_st_fp32"] = cosines(kiln, fp32)
            print(f"kiln vs st fp16 {result['kiln_vs_st_fp16']}, fp32 {result['kiln_vs_st_fp32']}")
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "embed-gpu-st.json"), "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
