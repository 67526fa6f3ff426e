# Builds each shape's model in transformers on the meta device and compares its parameter names and
# shapes with what make-random-model writes (shapes.json from WriteShapes.java).
import json, torch
from transformers import AutoModelForCausalLM, LlamaConfig
r = json.load(open("shapes.json"))
for name, e in r.items():
    cfg = LlamaConfig(**{k: v for k, v in e["config"].items() if k not in ("architectures", "model_type")})
    with torch.device("meta"):
        m = AutoModelForCausalLM.from_config(cfg)
    hf = {k: list(v.shape) for k, v in m.state_dict().items()}
    if cfg.tie_word_embeddings:
        hf.pop("lm_head.weight", None)
    kiln = e["tensors"]
    missing = sorted(set(hf) - set(kiln)); extra = sorted(set(kiln) - set(hf))
    bad = [k for k in hf if k in kiln and hf[k] != kiln[k]]
    n = sum(torch.Size(v).numel() for v in kiln.values())
    print(name, "params %.3fB" % (n / 1e9), "tensors", len(kiln), "missing", missing[:3], "extra", extra[:3], "shape mismatches", bad[:3],
          "rope", cfg.rope_parameters if hasattr(cfg, "rope_parameters") else cfg.rope_scaling)
