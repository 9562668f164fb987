#!/usr/bin/env python3
"""Writes the ONNX node-conformance cases that excite's runner (tests/tests/node_conformance.rs) reads.

Two sources, one layout (`tests/data/node/<case>/model.onnx` plus
`test_data_set_0/{input,output}_K.pb`, the layout of ONNX's own backend test data):

1. ONNX's node test cases (`onnx.backend.test.case.node.collect_testcases`), every case whose graph
   uses only ops that excite implements, whatever its dtype.
2. excite's own cases (scripts/gen_conv_cases.py): grouped, depthwise and dilated convs and pool
   corner cases, with outputs computed by ONNX Runtime.

excite folds some ONNX inputs into attributes (Reshape/Expand target shape, ReduceMean axes, Clip
bounds, Dropout ratio and training mode), so it needs them at compile time. ONNX's cases feed
them as graph inputs; this script freezes such inputs into initializers holding the test's own
value (recorded in the model's `excite.frozen_inputs` metadata), so the case tests the op rather
than the importer's refusal of run-time shapes.

Usage: python3 scripts/gen_node_tests.py [--out tests/data/node]
"""

import argparse
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_conv_cases  # noqa: E402

# Ops excite implements (keep in sync with ir/src/op.rs and the importer).
SUPPORTED_OPS = {
    "Conv", "BatchNormalization", "Relu", "Sigmoid", "HardSigmoid", "HardSwish", "Clip",
    "Add", "Sub", "Mul", "Div", "GlobalAveragePool", "ReduceMean", "AveragePool", "MaxPool",
    "Gemm", "MatMul", "Flatten", "Reshape", "Expand", "Concat", "Softmax", "Identity",
    "Dropout", "Constant",
}

# (op, input position) pairs that excite needs as compile-time constants.
FROZEN_INPUTS = {
    ("Reshape", 1), ("Expand", 1), ("ReduceMean", 1),
    ("Clip", 1), ("Clip", 2), ("Dropout", 1), ("Dropout", 2),
}

REPO = Path(__file__).resolve().parent.parent


def freeze_inputs(model, inputs):
    """Turns graph inputs that feed a FROZEN_INPUTS slot into initializers; returns the inputs
    that remain (name -> array), in graph order."""
    frozen = set()
    for node in model.graph.node:
        for pos, name in enumerate(node.input):
            if name and (node.op_type, pos) in FROZEN_INPUTS:
                frozen.add(name)
    graph_inputs = [i for i in model.graph.input]
    remaining = {}
    for vi, arr in zip(graph_inputs, inputs):
        if vi.name in frozen:
            model.graph.initializer.append(numpy_helper.from_array(np.asarray(arr), vi.name))
            model.graph.input.remove(vi)
        else:
            remaining[vi.name] = arr
    if frozen:
        entry = model.metadata_props.add()
        entry.key = "excite.frozen_inputs"
        entry.value = ",".join(sorted(frozen))
    return remaining


def to_proto(value, vi):
    """Serialises one data-set value as ONNX's own generator does: a TensorProto for tensors,
    SequenceProto / OptionalProto / MapProto for the other value types."""
    kind = vi.type.WhichOneof("value")
    if kind == "sequence_type":
        return numpy_helper.from_list(value, vi.name)
    if kind == "optional_type":
        return numpy_helper.from_optional(value, vi.name)
    if kind == "map_type":
        return numpy_helper.from_dict(value, vi.name)
    if isinstance(value, onnx.TensorProto):
        return value
    return numpy_helper.from_array(np.asarray(value), vi.name)


def write_case(root, name, model, inputs, outputs):
    """Writes one case in ONNX's backend-test layout. `inputs` maps graph input names to
    values; `outputs` lists the expected values in graph output order."""
    case = root / name
    data = case / "test_data_set_0"
    data.mkdir(parents=True, exist_ok=True)
    onnx.save(model, case / "model.onnx")
    input_info = {vi.name: vi for vi in model.graph.input}
    for k, (iname, value) in enumerate(inputs.items()):
        proto = to_proto(value, input_info[iname])
        (data / f"input_{k}.pb").write_bytes(proto.SerializeToString())
    for k, (vi, value) in enumerate(zip(model.graph.output, outputs)):
        (data / f"output_{k}.pb").write_bytes(to_proto(value, vi).SerializeToString())


def onnx_cases(root):
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    written = 0
    for case in cases:
        ops = {n.op_type for n in case.model.graph.node}
        if not ops or not ops <= SUPPORTED_OPS or not case.data_sets:
            continue
        model = onnx.ModelProto()
        model.CopyFrom(case.model)
        inputs, outputs = case.data_sets[0]
        remaining = freeze_inputs(model, inputs)
        write_case(root, case.name, model, remaining, outputs)
        written += 1
    return written


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "data" / "node")
    args = ap.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    n_onnx = onnx_cases(args.out)
    n_own = 0
    for name, model, inputs, outputs in gen_conv_cases.cases():
        write_case(args.out, name, model, inputs, outputs)
        n_own += 1
    print(f"wrote {n_onnx} ONNX node cases and {n_own} excite cases to {args.out}")


if __name__ == "__main__":
    main()
