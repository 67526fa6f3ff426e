"""Turns a float32 graph with INT8 Q/DQ (from `kiln quantize`) into the FP16 + Q/DQ graph that a
strongly typed TensorRT build takes: float initializers, constants, casts, Q/DQ scales and the
output become float16; int8 weights stay int8.

usage: python3 bench/gpu/qdq_to_fp16.py IN.onnx OUT.onnx
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16


def half(arr):
    return np.clip(arr, -65504, 65504).astype(np.float16)


def to_fp16(m):
    g = m.graph
    for i, init in enumerate(list(g.initializer)):
        if init.data_type == F32:
            g.initializer[i].CopyFrom(numpy_helper.from_array(half(numpy_helper.to_array(init)), init.name))
    for node in g.node:
        for a in node.attribute:
            if node.op_type == "Cast" and a.name == "to" and a.i == F32:
                a.i = F16
            if a.name == "value" and a.t.data_type == F32:
                a.t.CopyFrom(numpy_helper.from_array(half(numpy_helper.to_array(a.t)), a.t.name))
    for o in g.output:
        if o.type.tensor_type.elem_type == F32:
            o.type.tensor_type.elem_type = F16
    del g.value_info[:]
    for op in m.opset_import:
        if op.domain in ("", "ai.onnx") and op.version < 19:
            op.version = 19  # float16 Q/DQ scales
    return m


if __name__ == "__main__":
    src, dst = sys.argv[1], sys.argv[2]
    onnx.save(to_fp16(onnx.load(src)), dst)
    print(f"wrote {dst}", flush=True)
