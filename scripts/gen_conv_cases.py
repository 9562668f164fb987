#!/usr/bin/env python3
"""excite's own single-node conformance cases: the conv and pool corners that SE networks use
and that ONNX's node tests barely cover (grouped, depthwise, dilated and rectangular convs,
asymmetric pads, strided and ceil-mode pools, count_include_pad).

Each case is one node built with onnx.helper; weights are initializers, inputs are seeded
normal noise (never all zeros), and the expected outputs come from ONNX Runtime. Imported by
scripts/gen_node_tests.py, which writes them beside ONNX's cases as tests/data/node/excite_*.
"""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
ort.set_default_logger_severity(3)


def _model(node, x_shape, inits, opset=OPSET):
    graph = helper.make_graph(
        [node],
        node.name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(a, n) for n, a in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _run_ort(model, x):
    """Runs ONNX Runtime, then records the output shape it produced in the model and checks the
    model. (No `full_check`: ONNX's shape inference keeps the ceil-mode window that starts in the
    padding, which ONNX Runtime and PyTorch drop; see excite_maxpool_ceil_drop_last.)"""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"x": x})
    vi = model.graph.output[0]
    for d in outs[0].shape:
        vi.type.tensor_type.shape.dim.add().dim_value = d
    onnx.checker.check_model(model)
    return outs


# name: (x shape [N,C,H,W], out channels, kernel [kh,kw], conv attributes, with bias)
CONVS = {
    "grouped": ([2, 8, 9, 9], 12, [3, 3], dict(group=4, pads=[1, 1, 1, 1]), True),
    "grouped_strided": ([1, 16, 14, 14], 16, [3, 3], dict(group=8, strides=[2, 2], pads=[1, 1, 1, 1]), True),
    "depthwise": ([1, 6, 10, 10], 6, [3, 3], dict(group=6, pads=[1, 1, 1, 1]), True),
    "depthwise_stride2": ([2, 8, 11, 11], 8, [3, 3], dict(group=8, strides=[2, 2], pads=[1, 1, 1, 1]), False),
    "depthwise_5x5": ([1, 4, 12, 12], 4, [5, 5], dict(group=4, pads=[2, 2, 2, 2], strides=[2, 2]), True),
    "depthwise_multiplier2": ([1, 4, 8, 8], 8, [3, 3], dict(group=4, pads=[1, 1, 1, 1]), True),
    "dilated": ([1, 3, 13, 13], 5, [3, 3], dict(dilations=[2, 2], pads=[2, 2, 2, 2]), True),
    "dilated_rect": ([1, 4, 12, 10], 6, [3, 3], dict(dilations=[2, 1], strides=[2, 1], pads=[1, 0, 2, 1]), False),
    "grouped_dilated": ([2, 6, 11, 11], 6, [3, 3], dict(group=2, dilations=[2, 2], pads=[2, 2, 2, 2]), True),
    "asym_pads": ([1, 3, 7, 9], 4, [3, 3], dict(pads=[0, 1, 2, 0]), False),
    "rect_kernel_1x3": ([1, 5, 8, 8], 5, [1, 3], dict(pads=[0, 1, 0, 1]), True),
    "rect_kernel_3x1_stride": ([1, 5, 9, 8], 3, [3, 1], dict(strides=[2, 3], pads=[1, 0, 1, 0]), True),
    "pointwise_stride2": ([2, 8, 7, 7], 16, [1, 1], dict(strides=[2, 2]), False),
    "stride2_no_pad_odd": ([1, 3, 9, 9], 4, [3, 3], dict(strides=[2, 2]), True),
    "stem_7x7": ([1, 3, 20, 20], 8, [7, 7], dict(strides=[2, 2], pads=[3, 3, 3, 3]), False),
}

# name: (op, x shape, pool attributes)
POOLS = {
    "maxpool_ceil": ("MaxPool", [1, 3, 14, 14], dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    "maxpool_ceil_drop_last": ("MaxPool", [1, 2, 5, 5], dict(kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)),
    "maxpool_asym_pads": ("MaxPool", [2, 3, 7, 8], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 1, 0])),
    "maxpool_stride1_pad1": ("MaxPool", [1, 4, 6, 6], dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
    "maxpool_dilated": ("MaxPool", [1, 2, 9, 9], dict(kernel_shape=[2, 2], dilations=[2, 2], strides=[1, 1])),
    "maxpool_rect_stride": ("MaxPool", [1, 2, 10, 9], dict(kernel_shape=[3, 2], strides=[3, 2], pads=[1, 0, 1, 1])),
    "avgpool_exclude_pad": ("AveragePool", [1, 4, 7, 7], dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=0)),
    "avgpool_include_pad": ("AveragePool", [1, 4, 7, 7], dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1)),
    "avgpool_ceil_exclude_pad": ("AveragePool", [1, 3, 8, 8], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)),
    "avgpool_ceil_include_pad": ("AveragePool", [1, 3, 8, 8], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1)),
    "avgpool_asym_pads_stride": ("AveragePool", [2, 3, 9, 7], dict(kernel_shape=[2, 3], strides=[2, 2], pads=[1, 0, 0, 2])),
    "avgpool_2x2_stride2": ("AveragePool", [1, 4, 8, 8], dict(kernel_shape=[2, 2], strides=[2, 2])),
}


def cases():
    """Yields (name, model, {input name: array}, [expected outputs])."""
    rng = np.random.default_rng(20170723)
    for name, (xs, m, k, attrs, bias) in CONVS.items():
        group = attrs.get("group", 1)
        w = rng.standard_normal([m, xs[1] // group, *k]).astype(np.float32) * 0.5
        inits = {"w": w}
        ins = ["x", "w"]
        if bias:
            inits["b"] = rng.standard_normal([m]).astype(np.float32)
            ins.append("b")
        node = helper.make_node("Conv", ins, ["y"], name=f"conv_{name}", kernel_shape=k, **attrs)
        model = _model(node, xs, inits)
        x = rng.standard_normal(xs).astype(np.float32)
        yield f"excite_conv_{name}", model, {"x": x}, _run_ort(model, x)

    for name, (op, xs, attrs) in POOLS.items():
        node = helper.make_node(op, ["x"], ["y"], name=name, **attrs)
        opset = 19 if "dilations" in attrs and op == "AveragePool" else OPSET
        model = _model(node, xs, {}, opset)
        x = rng.standard_normal(xs).astype(np.float32)
        yield f"excite_{name}", model, {"x": x}, _run_ort(model, x)

    node = helper.make_node("GlobalAveragePool", ["x"], ["y"], name="gap_rect")
    model = _model(node, [2, 5, 7, 3], {})
    x = rng.standard_normal([2, 5, 7, 3]).astype(np.float32)
    yield "excite_globalaveragepool_rect", model, {"x": x}, _run_ort(model, x)
