# Exports the public llama with torch.onnx (Optimum input/output names) as a third-party peer graph.
import os, torch, json
from transformers import AutoModelForCausalLM, DynamicCache
m = AutoModelForCausalLM.from_pretrained("public-llama", dtype=torch.float32, attn_implementation="eager").eval()
L = m.config.num_hidden_layers
kvh = m.config.num_key_value_heads; hd = m.config.head_dim
class W(torch.nn.Module):
    def __init__(s, m):
        super().__init__(); s.m = m
    def forward(s, input_ids, attention_mask, position_ids, *past):
        cache = DynamicCache()
        for i in range(L):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = s.m(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, past_key_values=cache, use_cache=True)
        res = [out.logits]
        for i in range(L):
            layer = out.past_key_values.layers[i]
            res += [layer.keys, layer.values]
        return tuple(res)
B, S, P = 2, 3, 4
ids = torch.randint(0, 512, (B, S)); mask = torch.ones(B, P + S, dtype=torch.long)
pos = torch.arange(P, P + S).unsqueeze(0).repeat(B, 1)
past = [torch.randn(B, kvh, P, hd) for _ in range(2 * L)]
names_in = ["input_ids", "attention_mask", "position_ids"] + [f"past_key_values.{i}.{k}" for i in range(L) for k in ("key", "value")]
names_out = ["logits"] + [f"present.{i}.{k}" for i in range(L) for k in ("key", "value")]
dyn = {"input_ids": {0: "batch_size", 1: "sequence_length"}, "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
       "position_ids": {0: "batch_size", 1: "sequence_length"}, "logits": {0: "batch_size", 1: "sequence_length"}}
for n in names_in[3:]: dyn[n] = {0: "batch_size", 2: "past_sequence_length"}
for n in names_out[1:]: dyn[n] = {0: "batch_size", 2: "total_sequence_length"}
out = os.path.join(os.environ.get("OUT", "."), "peer.onnx")
torch.onnx.export(W(m), (ids, mask, pos, *past), out, input_names=names_in, output_names=names_out, dynamic_axes=dyn, opset_version=17, dynamo=False)
import onnxruntime as ort, numpy as np
s = ort.InferenceSession(out)
ref = json.load(open("public-llama/reference.json"))
for c in ref["cases"]:
    p = np.array([c["prompt"]], dtype=np.int64); n = p.shape[1]
    feeds = {"input_ids": p, "attention_mask": np.ones((1, n), np.int64), "position_ids": np.arange(n)[None].astype(np.int64)}
    for i in range(L):
        for k in ("key", "value"): feeds[f"past_key_values.{i}.{k}"] = np.zeros((1, kvh, 0, hd), np.float32)
    r = s.run(None, feeds)
    print("peer ORT case len", n, "max abs err", float(np.abs(r[0][0, -1] - np.array(c["last_logits"])).max()))
print("size", os.path.getsize(out))
