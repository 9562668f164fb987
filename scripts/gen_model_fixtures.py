#!/usr/bin/env python3
"""Builds the small SE-network fixtures that tests/tests/ort_models.rs checks against ONNX Runtime.

Each model is written with onnx.helper, with seeded random weights (He-scaled convs, BatchNorm
statistics away from the identity), and exported the way PyTorch/timm exporters write them: SE
squeeze as GlobalAveragePool or ReduceMean, FCs as 1x1 convs or Flatten/Gemm/Reshape, SiLU as
x*Sigmoid(x), a shape subgraph computing a Reshape target at run time, and a symbolic batch
dimension `N` on every input. For each model the script writes, under
tests/fixtures/models/<name>/:

    model.onnx
    input.<name>.b1.npy   input.<name>.b3.npy     (seeded normal noise, batch 1 and 3)
    output.<name>.b1.npy  output.<name>.b3.npy    (ONNX Runtime's outputs, CPU provider)

Usage: python3 scripts/gen_model_fixtures.py [--out tests/fixtures/models]
"""

import argparse
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parent.parent
BATCHES = (1, 3)
BUDGET_BYTES = 2 * 1024 * 1024


class Builder:
    """Accumulates nodes and initializers; every helper returns its output's name."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.n = [], [], 0

    def _name(self, prefix):
        self.n += 1
        return f"{prefix}{self.n}"

    def const(self, arr, prefix="c"):
        name = self._name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(self, op, inputs, n_out=1, **attrs):
        name = self._name(op.lower() + "_")
        outs = [f"{name}_out{k}" if n_out > 1 else f"{name}_out" for k in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs if n_out > 1 else outs[0]

    def conv(self, x, cin, cout, k, stride=1, group=1, dilation=1, bias=False):
        fan_in = cin // group * k * k
        w = self.rng.standard_normal([cout, cin // group, k, k]) * np.sqrt(2.0 / fan_in)
        ins = [x, self.const(w.astype(np.float32), "w")]
        if bias:
            ins.append(self.const(self.rng.normal(0, 0.1, cout).astype(np.float32), "b"))
        pad = dilation * (k - 1) // 2
        return self.node("Conv", ins, kernel_shape=[k, k], strides=[stride, stride],
                         pads=[pad] * 4, group=group, dilations=[dilation, dilation])

    def bn(self, x, c):
        r = self.rng
        params = [r.uniform(0.5, 1.5, c), r.normal(0, 0.1, c), r.normal(0, 0.1, c),
                  r.uniform(0.5, 1.5, c)]
        ins = [x] + [self.const(p.astype(np.float32), "bn") for p in params]
        return self.node("BatchNormalization", ins, epsilon=1e-5)

    def gemm(self, x, cin, cout):
        w = self.rng.standard_normal([cout, cin]) * np.sqrt(2.0 / cin)
        b = self.rng.normal(0, 0.1, cout)
        return self.node("Gemm", [x, self.const(w.astype(np.float32), "fc"),
                                  self.const(b.astype(np.float32), "fcb")], transB=1)

    def silu(self, x):
        return self.node("Mul", [x, self.node("Sigmoid", [x])])

    def model(self, inputs, outputs, opset, output_shapes=None):
        """Finishes the model. Output shapes come from ONNX shape inference unless given (it
        cannot see through a run-time Reshape target)."""
        shapes = output_shapes or [None] * len(outputs)
        graph = helper.make_graph(
            self.nodes, "fixture",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
             for n, s in zip(outputs, shapes)],
            initializer=self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 8
        m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        onnx.checker.check_model(m, full_check=True)
        return m


def se_conv(b, x, c, cr):
    """SENet SE: GlobalAveragePool, 1x1 conv FCs with bias, ReLU, Sigmoid, Mul."""
    s = b.node("GlobalAveragePool", [x])
    z = b.node("Relu", [b.conv(s, c, cr, 1, bias=True)])
    g = b.node("Sigmoid", [b.conv(z, cr, c, 1, bias=True)])
    return b.node("Mul", [x, g])


def bottleneck(b, x, cin, width, cout, stride, group=1, reduction=16):
    y = b.node("Relu", [b.bn(b.conv(x, cin, width, 1), width)])
    y = b.node("Relu", [b.bn(b.conv(y, width, width, 3, stride, group), width)])
    y = se_conv(b, b.bn(b.conv(y, width, cout, 1), cout), cout, cout // reduction)
    if stride != 1 or cin != cout:
        x = b.bn(b.conv(x, cin, cout, 1, stride), cout)
    return b.node("Relu", [b.node("Add", [y, x])])


def se_resnet_stage():
    b = Builder(1)
    y = bottleneck(b, "x", 16, 8, 32, 2)
    y = bottleneck(b, y, 32, 8, 32, 1)
    return b.model([("x", ["N", 16, 16, 16])], [y], 13), {"x": [16, 16, 16]}


def se_resnext_block():
    b = Builder(2)
    y = bottleneck(b, "x", 32, 32, 32, 1, group=8, reduction=4)
    return b.model([("x", ["N", 32, 14, 14])], [y], 13), {"x": [32, 14, 14]}


def mobilenetv3_block():
    b = Builder(3)
    e = b.node("HardSwish", [b.bn(b.conv("x", 16, 48, 1), 48)])
    d = b.node("HardSwish", [b.bn(b.conv(e, 48, 48, 5, group=48), 48)])
    s = b.node("Flatten", [b.node("ReduceMean", [d], axes=[2, 3], keepdims=1)], axis=1)
    z = b.node("Relu", [b.gemm(s, 48, 16)])
    g = b.node("HardSigmoid", [b.gemm(z, 16, 48)], alpha=1.0 / 6.0, beta=0.5)
    g = b.node("Reshape", [g, b.const(np.array([-1, 48, 1, 1], np.int64), "shape")])
    y = b.bn(b.conv(b.node("Mul", [d, g]), 48, 16, 1), 16)
    y = b.node("Add", [y, "x"])
    return b.model([("x", ["N", 16, 14, 14])], [y], 17), {"x": [16, 14, 14]}


def mbconv(b, x, cin, cout, stride, hw):
    c = cin * 6
    e = b.silu(b.bn(b.conv(x, cin, c, 1), c))
    d = b.silu(b.bn(b.conv(e, c, c, 3, stride, group=c), c))
    s = b.node("ReduceMean", [d, b.const(np.array([2, 3], np.int64), "axes")], keepdims=1)
    z = b.silu(b.conv(s, c, cin // 4, 1, bias=True))
    g = b.node("Sigmoid", [b.conv(z, cin // 4, c, 1, bias=True)])
    g = b.node("Expand", [g, b.const(np.array([1, 1, hw, hw], np.int64), "shape")])
    y = b.bn(b.conv(b.node("Mul", [d, g]), c, cout, 1), cout)
    return b.node("Add", [y, x]) if stride == 1 and cin == cout else y


def efficientnet_mbconv():
    b = Builder(4)
    y = mbconv(b, "x", 16, 24, 2, 8)
    y = mbconv(b, y, 24, 24, 1, 8)
    return b.model([("x", ["N", 16, 16, 16])], [y], 18), {"x": [16, 16, 16]}


def inception_module():
    b = Builder(5)
    cbr = lambda x, ci, co, k: b.node("Relu", [b.bn(b.conv(x, ci, co, k), co)])  # noqa: E731
    b1 = cbr("x", 24, 16, 1)
    b2 = cbr(cbr("x", 24, 12, 1), 12, 16, 3)
    b3 = cbr(cbr(cbr("x", 24, 8, 1), 8, 12, 3), 12, 12, 3)
    p = b.node("AveragePool", ["x"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
               count_include_pad=0)
    b4 = cbr(p, 24, 8, 1)
    cat = b.node("Concat", [b1, b2, b3, b4], axis=1)
    y = se_conv(b, cat, 52, 4)
    pooled = b.node("MaxPool", [y], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    return b.model([("x", ["N", 24, 14, 14])], [y, pooled], 13), {"x": [24, 14, 14]}


def se_shape_subgraph():
    """SE whose FC flatten and reshape-back targets come from Shape->Gather->Unsqueeze->Concat,
    as torch.onnx exports `x.view(x.size(0), -1)` and `y.view(b, c, 1, 1)`."""
    b = Builder(6)
    x = b.node("Relu", [b.bn(b.conv("x", 8, 32, 3), 32)])
    n = b.node("Gather", [b.node("Shape", [x]), b.const(np.array(0, np.int64), "idx")], axis=0)
    n1 = b.node("Unsqueeze", [n, b.const(np.array([0], np.int64), "axes")])
    flat = b.node("Concat", [n1, b.const(np.array([-1], np.int64), "m1")], axis=0)
    back = b.node("Concat", [n1, b.const(np.array([32, 1, 1], np.int64), "c11")], axis=0)
    s = b.node("Reshape", [b.node("GlobalAveragePool", [x]), flat])
    z = b.node("Relu", [b.gemm(s, 32, 8)])
    g = b.node("Reshape", [b.node("Sigmoid", [b.gemm(z, 8, 32)]), back])
    y = b.node("Mul", [x, g])
    out_shape = [["N", 32, 12, 12]]
    return b.model([("x", ["N", 8, 12, 12])], [y], 13, out_shape), {"x": [8, 12, 12]}


MODELS = {
    "se_resnet_stage": se_resnet_stage,
    "se_resnext_block": se_resnext_block,
    "mobilenetv3_block": mobilenetv3_block,
    "efficientnet_mbconv": efficientnet_mbconv,
    "inception_module": inception_module,
    "se_shape_subgraph": se_shape_subgraph,
}


def write_model(root, name, build, seed):
    model, input_shapes = build()
    d = root / name
    d.mkdir(parents=True)
    onnx.save(model, d / "model.onnx")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    out_names = [o.name for o in sess.get_outputs()]
    rng = np.random.default_rng(seed)
    for batch in BATCHES:
        feeds = {k: rng.standard_normal([batch, *s]).astype(np.float32)
                 for k, s in input_shapes.items()}
        for k, v in feeds.items():
            np.save(d / f"input.{k}.b{batch}.npy", v)
        for k, v in zip(out_names, sess.run(None, feeds)):
            assert np.abs(v).max() > 0, f"{name}: output {k} is all zeros"
            np.save(d / f"output.{k}.b{batch}.npy", v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures" / "models")
    args = ap.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    for seed, (name, build) in enumerate(MODELS.items(), start=100):
        write_model(args.out, name, build, seed)
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {len(MODELS)} models to {args.out} ({total} bytes)")
    assert total < BUDGET_BYTES, f"fixtures take {total} bytes, over the {BUDGET_BYTES} budget"


if __name__ == "__main__":
    main()
