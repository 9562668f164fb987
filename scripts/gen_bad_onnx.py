#!/usr/bin/env python3
"""Writes the bad-input corpus for excite-onnx: tests/corpus/onnx/<case>.onnx.

Each case is a tiny model (or byte string) that is wrong in one way; onnx/tests/corpus.rs holds
the table of the error each must produce. Output is deterministic: run it again and git shows
no change. Usage: python3 scripts/gen_bad_onnx.py [out_dir]
"""

import os
import random
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "tests", "corpus", "onnx")
F = TensorProto.FLOAT
I64 = TensorProto.INT64


def inp(name="x", shape=(1, 4, 8, 8), elem=F):
    return helper.make_tensor_value_info(name, elem, list(shape))


def out(name="y"):
    return helper.make_tensor_value_info(name, F, None)


def model(nodes, inputs=None, outputs=None, inits=(), opset=17, extra_opsets=()):
    g = helper.make_graph(nodes, "case", inputs if inputs is not None else [inp()],
                          outputs if outputs is not None else [out()], list(inits))
    ops = [helper.make_opsetid("", opset)] + list(extra_opsets)
    m = helper.make_model(g, opset_imports=ops, producer_name="gen_bad_onnx")
    m.ir_version = 8
    return m


def f32(name, shape, seed=0):
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def i64(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def raw_tensor(name, dims, data_type, raw):
    t = TensorProto()
    t.name = name
    t.dims.extend(dims)
    t.data_type = data_type
    t.raw_data = raw
    return t


def relu():
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu")])


def conv(**attrs):
    return model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)],
                 inits=[f32("w", (4, 4, 3, 3))])


def cases():
    c = {}
    good = relu().SerializeToString()
    c["truncated"] = good[: len(good) // 2]
    rng = random.Random(7)
    c["random_bytes"] = bytes([0xFF]) + bytes(rng.randrange(256) for _ in range(63))
    c["opset_too_old"] = relu_opset(9)
    c["opset_too_new"] = relu_opset(26)
    m = relu()
    del m.opset_import[:]
    m.opset_import.extend([helper.make_opsetid("com.example", 1)])
    c["no_default_opset"] = m
    c["no_graph"] = onnx.ModelProto(ir_version=8, opset_import=[helper.make_opsetid("", 17)])
    c["unsupported_op"] = model([helper.make_node("Tanh", ["x"], ["y"], name="tanh_1")])
    c["custom_domain_op"] = model(
        [helper.make_node("Relu", ["x"], ["y"], name="custom", domain="com.example")],
        extra_opsets=[helper.make_opsetid("com.example", 1)])
    c["negative_input_dim"] = model([helper.make_node("Relu", ["x"], ["y"])],
                                    inputs=[inp("x", (1, -3, 8, 8))])
    c["symbolic_inner_dim"] = model([helper.make_node("Relu", ["x"], ["y"])],
                                    inputs=[inp("x", ("N", "C", 8, 8))])
    c["int_input"] = model([helper.make_node("Relu", ["x"], ["y"])],
                           inputs=[inp("x", (1, 4), TensorProto.INT64)])
    c["input_over_budget"] = model([helper.make_node("Relu", ["x"], ["y"])],
                                   inputs=[inp("x", (1, 1 << 20, 1 << 20))])
    c["overflowing_dims"] = model([helper.make_node("Add", ["x", "big"], ["y"], name="add")],
                                  inits=[raw_tensor("big", [1 << 62, 1 << 62, 1 << 62], F, b"")])
    c["initializer_over_budget"] = model(
        [helper.make_node("Add", ["x", "big"], ["y"], name="add")],
        inits=[raw_tensor("big", [1 << 30, 2], F, b"")])
    c["initializer_short"] = model(
        [helper.make_node("Add", ["x", "b"], ["y"], name="add")],
        inits=[raw_tensor("b", [4, 1, 1], F, b"\x00\x00\x80\x3f" * 3)])
    c["initializer_long"] = model(
        [helper.make_node("Add", ["x", "b"], ["y"], name="add")],
        inits=[raw_tensor("b", [4, 1, 1], F, b"\x00\x00\x80\x3f" * 5)])
    t = TensorProto(name="b", dims=[4, 1, 1], data_type=F, float_data=[1.0, 2.0])
    c["float_data_short"] = model([helper.make_node("Add", ["x", "b"], ["y"], name="add")],
                                  inits=[t])
    t = helper.make_tensor("s", TensorProto.STRING, [1], [b"hi"])
    c["string_initializer"] = model([helper.make_node("Add", ["x", "s"], ["y"], name="add")],
                                    inits=[t])
    t = f32("w", (4, 4, 3, 3))
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="/etc/passwd")
    c["external_data"] = model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
                               inits=[t])
    c["zero_strides"] = conv(strides=[0, 0])
    c["negative_pads"] = conv(pads=[-1, 0, 0, 0])
    c["group_not_dividing"] = model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv_g", group=3)],
        inits=[f32("w", (3, 1, 3, 3))])
    c["kernel_shape_mismatch"] = conv(kernel_shape=[5, 5])
    c["conv_1d"] = model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv1d")],
                         inputs=[inp("x", (1, 4, 8))], inits=[f32("w", (4, 4, 3))])
    c["unknown_attribute"] = model(
        [helper.make_node("Relu", ["x"], ["y"], name="relu_attr", alpha=0.5)])
    c["cycle"] = model([helper.make_node("Add", ["x", "b"], ["a"], name="first"),
                        helper.make_node("Relu", ["a"], ["b"], name="second"),
                        helper.make_node("Relu", ["b"], ["y"], name="third")])
    c["undefined_input"] = model([helper.make_node("Add", ["x", "ghost"], ["y"], name="adder")])
    c["duplicate_output"] = model([helper.make_node("Relu", ["x"], ["y"])],
                                  outputs=[out("y"), out("y")])
    c["duplicate_value"] = model([helper.make_node("Relu", ["x"], ["y"], name="one"),
                                  helper.make_node("Sigmoid", ["x"], ["y"], name="two")])
    c["undefined_graph_output"] = model([helper.make_node("Relu", ["x"], ["y"])],
                                        outputs=[out("nowhere")])
    c["constant_of_shape_over_budget"] = model(
        [helper.make_node("ConstantOfShape", ["shape"], ["big"], name="fill"),
         helper.make_node("Add", ["x", "big"], ["y"])],
        inits=[i64("shape", [1 << 20, 1 << 20])])
    c["range_over_budget"] = model(
        [helper.make_node("Range", ["s", "l", "d"], ["r"], name="range"),
         helper.make_node("Reshape", ["x", "r"], ["y"])],
        inits=[i64("s", 0), i64("l", 1 << 40), i64("d", 1)])
    c["reshape_batch_moved"] = batch_reshape()
    c["gather_out_of_range"] = model(
        [helper.make_node("Shape", ["x"], ["s"]),
         helper.make_node("Gather", ["s", "i"], ["g"], name="gather_bad", axis=0),
         helper.make_node("Reshape", ["x", "g"], ["y"])],
        inits=[i64("i", [7])])
    c["slice_zero_step"] = model(
        [helper.make_node("Shape", ["x"], ["s"]),
         helper.make_node("Slice", ["s", "st", "en", "ax", "sp"], ["g"], name="slicer"),
         helper.make_node("Reshape", ["x", "g"], ["y"])],
        inits=[i64("st", [0]), i64("en", [2]), i64("ax", [0]), i64("sp", [0])])
    c["reshape_two_inferred"] = model(
        [helper.make_node("Reshape", ["x", "t"], ["y"], name="reshape_bad")],
        inits=[i64("t", [-1, -1])])
    c["reshape_runtime_shape"] = model(
        [helper.make_node("Relu", ["x"], ["r"]),
         helper.make_node("Reshape", ["x", "r"], ["y"], name="reshape_rt")])
    c["batchnorm_training"] = batchnorm(training_mode=1)
    c["batchnorm_extra_outputs"] = batchnorm(extra=True)
    c["maxpool_indices"] = model(
        [helper.make_node("MaxPool", ["x"], ["y", "idx"], name="pool_idx", kernel_shape=[2, 2])])
    c["maxpool_storage_order"] = model(
        [helper.make_node("MaxPool", ["x"], ["y"], name="pool_so", kernel_shape=[2, 2],
                          storage_order=1)])
    c["softmax_legacy_axis"] = model(
        [helper.make_node("Softmax", ["x"], ["y"], name="softmax_old", axis=1)], opset=11)
    c["clip_runtime_bound"] = model(
        [helper.make_node("Clip", ["x", "lo"], ["y"], name="clip_rt")],
        inputs=[inp(), inp("lo", (1,))])
    c["dropout_mask_used"] = model(
        [helper.make_node("Dropout", ["x"], ["d", "mask"], name="drop"),
         helper.make_node("Cast", ["mask"], ["y"], to=F)])
    c["reducemean_runtime_axes"] = model(
        [helper.make_node("Relu", ["x"], ["r"]),
         helper.make_node("ReduceMean", ["x", "r"], ["y"], name="mean_rt")], opset=18)
    c["gather_runtime_data"] = model(
        [helper.make_node("Gather", ["x", "i"], ["y"], name="gather_rt")],
        inits=[i64("i", [0])])
    c["wrong_attribute_type"] = model(
        [helper.make_node("Flatten", ["x"], ["y"], name="flat", axis=1.5)])
    c["pool_pads_too_big"] = model(
        [helper.make_node("MaxPool", ["x"], ["y"], name="pool_pad", kernel_shape=[2, 2],
                          pads=[3, 3, 3, 3])])
    c["matmul_mismatch"] = model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        inits=[f32("w", (5, 2))])
    c["symbolic_batch_squeezed"] = model(
        [helper.make_node("Squeeze", ["x", "ax"], ["y"], name="squeeze_n")],
        inputs=[inp("x", ("N", 4, 1, 1))], inits=[i64("ax", [0])])
    return c


def relu_opset(v):
    return model([helper.make_node("Relu", ["x"], ["y"])], opset=v)


def batch_reshape():
    # Reshape(x, Concat([-1], Gather(Shape(x), 0))): the batch lands at position 1 while
    # another dim is already inferred, so it cannot be expressed without a fixed batch.
    return model(
        [helper.make_node("Shape", ["x"], ["s"]),
         helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
         helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
         helper.make_node("Concat", ["m1", "n1"], ["t"], axis=0),
         helper.make_node("Reshape", ["x", "t"], ["y"], name="reshape_n")],
        inputs=[inp("x", ("N", 4, 2, 2))],
        inits=[i64("zero", 0), i64("ax0", [0]), i64("m1", [-1])])


def batchnorm(training_mode=0, extra=False):
    inits = [f32(n, (4,), i) for i, n in enumerate(["s", "b", "m"])]
    inits.append(numpy_helper.from_array(np.full(4, 0.5, np.float32), "v"))
    outs = ["y", "rm", "rv"] if extra else ["y"]
    attrs = {"training_mode": training_mode} if training_mode else {}
    return model([helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], outs,
                                   name="bn", **attrs)], inits=inits)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        if name.endswith(".onnx"):
            os.remove(os.path.join(OUT, name))
    total = 0
    for name, m in sorted(cases().items()):
        data = m if isinstance(m, bytes) else m.SerializeToString(deterministic=True)
        assert len(data) < 4096, f"{name} is {len(data)} bytes; keep corpus files tiny"
        with open(os.path.join(OUT, f"{name}.onnx"), "wb") as f:
            f.write(data)
        total += len(data)
    print(f"wrote {len(cases())} cases ({total} bytes) to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
