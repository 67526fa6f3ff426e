"""Device-side half of the TensorRT benchmark.

Builds a BERT-base-shaped encoder (12 layers, hidden 768, 12 heads) with random weights, exports
it to ONNX (FP32; Kiln makes the FP16 and INT8 graphs from it), writes a fixed batch-8 input with
its FP32 reference output, and measures the peers on the same GPU: PyTorch eager and PyTorch CUDA
graphs (FP16, same weights) and ONNX Runtime on the CPU (FP32). Rows go to WORK/peers.json in
the schema the Java report reads.

usage: python3 bench/gpu/bert_base_peers.py WORK [--seconds 1.5] [--batches 1,8,32,64] [--seq 128]
"""
import argparse
import json
import os
import statistics
import sys
import threading
import time

import numpy as np
import torch

p = argparse.ArgumentParser()
p.add_argument("work")
p.add_argument("--seconds", type=float, default=1.5)
p.add_argument("--batches", default="1,8,32,64")
p.add_argument("--seq", type=int, default=128)
p.add_argument("--skip-ort", action="store_true")
args = p.parse_args()
WORK = args.work
BATCHES = [int(b) for b in args.batches.split(",")]
SEQ = args.seq
os.makedirs(WORK, exist_ok=True)
dev = torch.device("cuda")
t_start = time.time()


def log(*a):
    print(f"[peers {time.time() - t_start:6.1f}s]", *a, flush=True)


# ---------------------------------------------------------------- model
from transformers import BertConfig, BertModel

torch.manual_seed(0)
cfg = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, max_position_embeddings=512)
try:
    model = BertModel(cfg, add_pooling_layer=False, attn_implementation="sdpa").eval()
except TypeError:
    cfg._attn_implementation = "sdpa"
    model = BertModel(cfg, add_pooling_layer=False).eval()


class Encoder(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask):
        return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def export(module, path, dtype_note):
    ids = torch.randint(1, 30000, (2, 16), dtype=torch.long)
    mask = torch.ones(2, 16, dtype=torch.long)
    if next(module.parameters()).is_cuda:
        ids, mask = ids.to(dev), mask.to(dev)
    kw = dict(input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"], opset_version=17)
    try:
        torch.onnx.export(module, (ids, mask), path, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                        "attention_mask": {0: "batch", 1: "sequence"},
                                        "last_hidden_state": {0: "batch", 1: "sequence"}}, **kw)
    except Exception as e:  # the TorchScript exporter may be gone: use the dynamo one
        log("legacy exporter failed (", repr(e)[:200], "); trying dynamo")
        b = torch.export.Dim("batch", min=1, max=256)
        s = torch.export.Dim("sequence", min=2, max=512)
        torch.onnx.export(module, (ids, mask), path, dynamo=True, external_data=False,
                          dynamic_shapes={"input_ids": {0: b, 1: s}, "attention_mask": {0: b, 1: s}}, **kw)
    log(f"exported {path} ({dtype_note}, {os.path.getsize(path) / 2**20:.0f} MiB)")


enc32 = Encoder(model).eval()
with torch.no_grad():
    export(enc32, f"{WORK}/bert_base_fp32.onnx", "fp32")

# Fixed batch-8 input and its FP32 reference (PyTorch on the GPU, TF32 off) for accuracy columns.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
g = torch.Generator().manual_seed(123)
ref_ids = torch.randint(1, 30000, (8, SEQ), generator=g, dtype=torch.long)
ref_mask = torch.ones(8, SEQ, dtype=torch.long)
for r in range(8):
    ref_mask[r, 32 + 12 * r:] = 0  # lengths 32..116: padding inside the sequence is exercised too
with torch.no_grad():
    ref_out = enc32.to(dev)(ref_ids.to(dev), ref_mask.to(dev)).float().cpu()
ref_ids.numpy().astype("<i8").tofile(f"{WORK}/ref_b8_input_ids.bin")
ref_mask.numpy().astype("<i8").tofile(f"{WORK}/ref_b8_attention_mask.bin")
ref_out.numpy().astype("<f4").tofile(f"{WORK}/ref_b8_fp32.bin")
enc32 = enc32.cpu()

enc16 = Encoder(BertModel(cfg, add_pooling_layer=False)).eval()
enc16.load_state_dict(enc32.state_dict())
enc16 = enc16.half().to(dev)
with torch.no_grad():
    out16 = enc16(ref_ids.to(dev), ref_mask.to(dev)).float().cpu()
m = ref_mask.bool().unsqueeze(-1).expand_as(ref_out)
torch_fp16_err = float(torch.linalg.norm((out16 - ref_out)[m]) / torch.linalg.norm(ref_out[m]))
log(f"torch fp16 vs fp32 rel err (valid tokens) {torch_fp16_err:.3g}")

# ---------------------------------------------------------------- measurement helpers
try:
    import pynvml
    pynvml.nvmlInit()
    NV = pynvml.nvmlDeviceGetHandleByIndex(0)
except Exception:
    NV = None


class Sampler:
    def __enter__(self):
        self.util, self.mem, self.run = [], [], True
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()
        return self

    def loop(self):
        while self.run and NV is not None:
            self.util.append(pynvml.nvmlDeviceGetUtilizationRates(NV).gpu)
            self.mem.append(pynvml.nvmlDeviceGetMemoryInfo(NV).used >> 20)
            time.sleep(0.02)

    def __exit__(self, *a):
        self.run = False
        self.t.join()


def row(variant, batch, graphs, lat_s, elapsed, device_only_us, s):
    lat = sorted(lat_s)
    return {"variant": variant, "batch": batch, "seq": SEQ, "graphs": graphs, "runs": len(lat),
            "p50_us": lat[len(lat) // 2] * 1e6, "p99_us": lat[min(len(lat) - 1, int(np.ceil(len(lat) * .99)) - 1)] * 1e6,
            "mean_us": statistics.mean(lat) * 1e6, "items_per_s": batch * len(lat) / elapsed,
            "device_only_us": device_only_us, "device_only_items_per_s": batch / (device_only_us / 1e6) if device_only_us > 0 else -1,
            "gpu_util": statistics.mean(s.util) if s.util else -1, "mem_mib": max(s.mem) if s.mem else -1}


def timed_loop(fn, seconds, min_runs=30):
    for _ in range(10):
        fn()
    lat, t0 = [], time.perf_counter()
    while time.perf_counter() - t0 < seconds or len(lat) < min_runs:
        a = time.perf_counter()
        fn()
        lat.append(time.perf_counter() - a)
    return lat, time.perf_counter() - t0


def device_only(fn, iters):
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    for _ in range(iters):
        fn()
    e1.record()
    torch.cuda.synchronize()
    return e0.elapsed_time(e1) * 1e3 / iters


rows = []
# ---------------------------------------------------------------- PyTorch eager and CUDA graphs (FP16)
for b in BATCHES:
    ids_h = torch.randint(1, 30000, (b, SEQ), dtype=torch.long).pin_memory()
    mask_h = torch.ones(b, SEQ, dtype=torch.long).pin_memory()
    ids_d, mask_d = ids_h.to(dev), mask_h.to(dev)
    out_h = torch.empty(b, SEQ, 768, dtype=torch.float16).pin_memory()
    with torch.no_grad():
        def eager_dev():
            return enc16(ids_d, mask_d)

        def eager_e2e():
            ids_d.copy_(ids_h, non_blocking=True)
            mask_d.copy_(mask_h, non_blocking=True)
            out_h.copy_(enc16(ids_d, mask_d), non_blocking=True)
            torch.cuda.synchronize()

        with Sampler() as s:
            lat, el = timed_loop(eager_e2e, args.seconds)
        rows.append(row("torch-eager-fp16", b, False, lat, el, device_only(eager_dev, 50), s))

        st = torch.cuda.Stream()
        st.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(st):
            for _ in range(3):
                enc16(ids_d, mask_d)
        torch.cuda.current_stream().wait_stream(st)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = enc16(ids_d, mask_d)

        def graph_e2e():
            ids_d.copy_(ids_h, non_blocking=True)
            mask_d.copy_(mask_h, non_blocking=True)
            graph.replay()
            out_h.copy_(static_out, non_blocking=True)
            torch.cuda.synchronize()

        with Sampler() as s:
            lat, el = timed_loop(graph_e2e, args.seconds)
        rows.append(row("torch-cudagraph-fp16", b, True, lat, el, device_only(graph.replay, 200), s))
        del graph, static_out
    torch.cuda.empty_cache()
    log(f"torch b={b}: eager {rows[-2]['mean_us']:.0f} us, graph {rows[-1]['mean_us']:.0f} us (host to host)")

# ---------------------------------------------------------------- ONNX Runtime CPU (FP32)
ort_env = {}
if not args.skip_ort:
    try:
        import onnxruntime as ort
        so = ort.SessionOptions()
        sess = ort.InferenceSession(f"{WORK}/bert_base_fp32.onnx", so, providers=["CPUExecutionProvider"])
        ort_env = {"onnxruntime": ort.__version__, "cpu_threads": os.cpu_count()}
        for b in BATCHES:
            feed = {"input_ids": np.random.randint(1, 30000, (b, SEQ)).astype(np.int64),
                    "attention_mask": np.ones((b, SEQ), np.int64)}
            sess.run(None, feed)
            lat, t0 = [], time.perf_counter()
            budget = 4.0 if b <= 8 else 6.0
            while (time.perf_counter() - t0 < budget and len(lat) < 50) or len(lat) < 2:
                a = time.perf_counter()
                sess.run(None, feed)
                lat.append(time.perf_counter() - a)
            el = time.perf_counter() - t0
            r = row("ort-cpu-fp32", b, False, lat, el, -1, argparse.Namespace(util=[], mem=[]))
            r["gpu_util"], r["mem_mib"] = -1, -1
            rows.append(r)
            log(f"ort cpu b={b}: {r['mean_us'] / 1e3:.1f} ms")
    except Exception as e:
        log("ORT CPU peer failed:", repr(e)[:300])

env = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0), "torch_fp16_rel_err_vs_fp32": torch_fp16_err, **ort_env}
with open(f"{WORK}/peers.json", "w") as f:
    json.dump({"environment": env, "rows": rows}, f, indent=1)
log("peers done:", json.dumps(env))
