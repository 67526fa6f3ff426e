import json, os, sys, subprocess, torch
import transformers
from transformers import AutoModelForCausalLM
print("torch", torch.__version__, "transformers", transformers.__version__)
ref = json.load(open("kiln.json"))
report = {}
for name, c in ref.items():
    m = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32, attn_implementation="eager")
    m.eval()
    ids = torch.tensor([c["prompt"]])
    with torch.no_grad():
        logits = m(ids).logits[0, -1]
        err = (logits - torch.tensor(c["last_logits"])).abs().max().item()
        spread = (logits.max() - logits.min()).item()
        toks = []
        cur = ids
        for _ in range(16):
            nxt = int(m(cur).logits[0, -1].argmax())
            toks.append(nxt)
            cur = torch.cat([cur, torch.tensor([[nxt]])], dim=1)
    ok = toks == c["greedy"]
    report[name] = {"max_abs_err": err, "logit_range": spread, "greedy_equal": ok, "hf": toks, "kiln": c["greedy"]}
    print(name, type(m).__name__, "max_abs_err %.3g" % err, "range %.2f" % spread, "greedy_equal", ok)
out = os.environ.get("OUT", ".")
json.dump(report, open(os.path.join(out, "hf_check.json"), "w"), indent=1)
try:
    import optimum
    print("optimum present", getattr(optimum, "__version__", "?"))
except Exception as e:
    print("optimum absent:", e)
r = subprocess.run([sys.executable, "-m", "pip", "list"], capture_output=True, text=True)
print("\n".join(l for l in r.stdout.splitlines() if any(k in l.lower() for k in ["onnx", "optimum", "torch", "transformers"])))
