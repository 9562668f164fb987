//! Hand-written models in canonical form (as the printer writes them). Between them they use
//! every op and every attribute; the declared types were worked out by hand and are checked
//! against shape inference by the tests.

/// The SENet SE block: squeeze, two 1x1-conv FCs, ReLU, sigmoid gate, channel scale.
pub const SE_BLOCK: &str = r#"graph se_block {
  input x: f32[N,64,56,56]
  weight fc1.w: f32[4,64,1,1]
  weight fc1.b: f32[4]
  weight fc2.w: f32[64,4,1,1]
  weight fc2.b: f32[64]
  node squeeze = GlobalAveragePool(x) -> s: f32[N,64,1,1]
  node fc1 = Conv(s, fc1.w, fc1.b) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1} -> z: f32[N,4,1,1]
  node act = Relu(z) -> z.act: f32[N,4,1,1]
  node fc2 = Conv(z.act, fc2.w, fc2.b) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1} -> g: f32[N,64,1,1]
  node gate = Sigmoid(g) -> g.act: f32[N,64,1,1]
  node excite = Mul(x, g.act) -> y: f32[N,64,56,56]
  output y
}
"#;

/// A MobileNetV3-style block with ONNX-exported names: depthwise conv, batch norm, hard-swish,
/// SE with ReduceMean squeeze and hard-sigmoid gate, ReLU6 as Clip. One output type is left
/// out (types are optional).
pub const MBV3_BLOCK: &str = r#"graph "mobilenetv3 block" {
  input input.1: f32[N,16,8,8]
  weight /blocks/0/conv_dw/Conv.weight: f32[16,1,3,3]
  weight bn.scale: f32[16]
  weight bn.bias: f32[16]
  weight bn.mean: f32[16]
  weight bn.var: f32[16]
  weight se.w1: f32[8,16,1,1]
  weight se.b1: f32[8]
  weight se.w2: f32[16,8,1,1]
  weight se.b2: f32[16]
  node /blocks/0/conv_dw/Conv = Conv(input.1, /blocks/0/conv_dw/Conv.weight) {strides=[2,2], pads=[1,1,1,1], dilations=[1,1], group=16} -> /blocks/0/conv_dw/Conv_output_0: f32[N,16,4,4]
  node bn = BatchNormalization(/blocks/0/conv_dw/Conv_output_0, bn.scale, bn.bias, bn.mean, bn.var) {epsilon=0.001} -> bn.out: f32[N,16,4,4]
  node hswish = HardSwish(bn.out) -> h: f32[N,16,4,4]
  node "se squeeze" = ReduceMean(h) {axes=[2,3], keepdims=true} -> s: f32[N,16,1,1]
  node se.fc1 = Conv(s, se.w1, se.b1) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1} -> z: f32[N,8,1,1]
  node se.relu = Clip(z) {min=0.0, max=inf} -> z.act
  node se.fc2 = Conv(z.act, se.w2, se.b2) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1} -> g: f32[N,16,1,1]
  node se.gate = HardSigmoid(g) {alpha=0.16666667, beta=0.5} -> g.act: f32[N,16,1,1]
  node se.scale = Mul(h, g.act) -> y: f32[N,16,4,4]
  node relu6 = Clip(y) {min=-inf, max=6.0} -> y6: f32[N,16,4,4]
  output y6
}
"#;

/// A classifier head exercising the remaining ops: pooling (ceil mode, padded divisor),
/// SiLU, a Concat of four inputs reusing two values, Flatten, Gemm, MatMul, Dropout,
/// Identity, Sub, Div by a one-element weight, Add, Softmax, Reshape (with and without
/// allowzero), Expand; three graph outputs.
pub const HEAD: &str = r#"graph head {
  input x: f32[N,8,7,7]
  weight fc.w: f32[10,32]
  weight fc.b: f32[10]
  weight proj: f32[10,10]
  weight half: f32[1]
  node pool = MaxPool(x) {kernel_shape=[3,3], strides=[2,2], pads=[1,1,1,1], dilations=[1,1], ceil_mode=false, count_include_pad=false} -> p: f32[N,8,4,4]
  node avg = AveragePool(p) {kernel_shape=[3,3], strides=[2,2], pads=[1,1,0,0], dilations=[1,1], ceil_mode=true, count_include_pad=true} -> a: f32[N,8,2,2]
  node silu = Silu(a) -> a.silu: f32[N,8,2,2]
  node cat = Concat(a, a.silu, a, a.silu) {axis=1} -> c: f32[N,32,2,2]
  node gap = GlobalAveragePool(c) -> c.gap: f32[N,32,1,1]
  node flat = Flatten(c.gap) {axis=1} -> f: f32[N,32]
  node fc = Gemm(f, fc.w, fc.b) {alpha=1.0, beta=1.0, transA=false, transB=true} -> logits: f32[N,10]
  node mm = MatMul(logits, proj) -> m: f32[N,10]
  node drop = Dropout(m) -> m.d: f32[N,10]
  node id = Identity(m.d) -> m.id: f32[N,10]
  node sub = Sub(logits, m.id) -> diff: f32[N,10]
  node div = Div(diff, half) -> q: f32[N,10]
  node add = Add(q, logits) -> r: f32[N,10]
  node softmax = Softmax(r) {axis=1} -> prob: f32[N,10]
  node rs = Reshape(prob) {shape=[0,2,-1], allowzero=false} -> prob3: f32[N,2,5]
  node ex = Expand(half) {shape=[2,5]} -> e: f32[2,5]
  node rs2 = Reshape(e) {shape=[5,2], allowzero=true} -> e2: f32[5,2]
  output prob
  output prob3
  output e2
}
"#;

/// Names that need quoting (spaces, quotes, backslashes, control characters, `#`, a trailing
/// `:`, the empty name, non-ASCII), one value read by five nodes, and a graph output that is
/// also read by other nodes.
pub const ODD_NAMES: &str = r##"graph "" {
  input "x y": f32[2,3]
  input "say \"hi\"\\": f32[2,3]
  weight "w\tone\n": f32[3]
  node "" = Add("x y", "say \"hi\"\\") -> "#sum": f32[2,3]
  node "ünïcödé ✓" = Mul("#sum", "w\tone\n") -> "a:": f32[2,3]
  node "\u{7f}" = Sub("#sum", "a:") -> b: f32[2,3]
  node n3 = Div("#sum", b) -> "c d": f32[2,3]
  node n4 = Add("#sum", "#sum") -> d: f32[2,3]
  node n5 = Concat("#sum", "c d", d) {axis=0} -> e: f32[6,3]
  output "#sum"
  output e
}
"##;

pub const ALL: [(&str, &str); 4] = [
    ("se_block", SE_BLOCK),
    ("mbv3_block", MBV3_BLOCK),
    ("head", HEAD),
    ("odd_names", ODD_NAMES),
];
