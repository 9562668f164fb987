//! Property tests of SE fusion: random SE-family graphs, built through the IR API in the
//! unfused forms exporters write (every squeeze, FC, activation, gate and scale variant of
//! SPEC.md, with or without biases and residual), must optimise, compute the same as before in
//! the interpreter (`|err| <= 1e-5 + 1e-5 * |ref|`), and fuse into exactly as many SE blocks as
//! were built. Graphs that only look like SE blocks (the pool of another tensor, a per-pixel
//! gate, a reduction over the wrong axes) must not fuse, and must still compute the same.

use std::cell::Cell;
use std::sync::Arc;

use excite_ir::op::{Conv, Gemm};
use excite_ir::{Dim, Graph, IrError, Op, Shape, Tensor, TensorType, ValueId};
use excite_passes::metrics::se_blocks;
use excite_passes::{Options, optimize};
use excite_tests::filetest::{SplitMix, compare_graphs};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// How the block squeezes `x` to one value per channel.
#[derive(Clone, Copy, Debug)]
enum Squeeze {
    Gap,
    /// `ReduceMean(axes=[2,3], keepdims=1)`.
    ReduceKeep,
    /// `ReduceMean(axes=[2,3], keepdims=0)`: straight to `[N,C]`.
    ReduceFlat,
}

/// How the two FCs are written.
#[derive(Clone, Copy, Debug)]
enum Fc {
    /// 1x1 convolutions on `[N,C,1,1]`.
    Conv,
    /// `Gemm` on `[N,C]`, B `[Cr,C]` when `trans_b`, scaled by `alpha`; bias as Gemm's C.
    Gemm { trans_b: bool, alpha: f32 },
    /// `MatMul` with B `[C,Cr]`, bias as a following `Add` of a `[Cr]` constant.
    MatMul,
}

#[derive(Clone, Copy, Debug)]
enum Act {
    Relu,
    Silu,
    /// `x * Sigmoid(x)`, in either operand order.
    SiluMul {
        sig_first: bool,
    },
    HardSwish,
    /// `x * HardSigmoid(1/6, 1/2)(x)`.
    HardSwishMul {
        sig_first: bool,
    },
}

#[derive(Clone, Copy, Debug)]
enum Scale {
    XG,
    GX,
    /// `Mul(x, Expand(g, [1,C,H,W]))`.
    Expand,
}

/// One SE block in exporter form.
#[derive(Clone, Debug)]
struct Block {
    /// Reduced width `max(1, C / r)`.
    r: usize,
    squeeze: Squeeze,
    fc: Fc,
    /// 2-D entry as `Flatten` (else `Reshape [0,-1]`); reshape back as `[0,-1,1,1]` (else
    /// `[0,C,1,1]`), placed before the gate (else after it).
    flatten_in: bool,
    back_minus_one: bool,
    back_before_gate: bool,
    act: Act,
    /// `HardSigmoid{alpha, 0.5}` gate when set, else `Sigmoid`.
    hard_gate: Option<f32>,
    scale: Scale,
    bias1: bool,
    bias2: bool,
    /// `Add` of a shortcut after the scale: `(swapped, relu after, shortcut is x itself)`.
    residual: Option<(bool, bool, bool)>,
    /// Reads the graph input (shared with the first block) instead of the previous block.
    shared_input: bool,
}

/// A graph of 1 to 3 blocks over one `[N,C,H,W]` input.
#[derive(Clone, Debug)]
struct Spec {
    n: usize,
    symbolic_batch: bool,
    c: usize,
    h: usize,
    w: usize,
    blocks: Vec<Block>,
    seed: u64,
}

fn act_strategy() -> impl Strategy<Value = Act> {
    prop_oneof![
        Just(Act::Relu),
        Just(Act::Silu),
        any::<bool>().prop_map(|sig_first| Act::SiluMul { sig_first }),
        Just(Act::HardSwish),
        any::<bool>().prop_map(|sig_first| Act::HardSwishMul { sig_first }),
    ]
}

fn gate_strategy() -> impl Strategy<Value = Option<f32>> {
    prop_oneof![Just(None), Just(Some(1.0 / 6.0)), Just(Some(0.2))]
}

fn block_strategy() -> impl Strategy<Value = Block> {
    let squeeze = prop_oneof![
        Just(Squeeze::Gap),
        Just(Squeeze::ReduceKeep),
        Just(Squeeze::ReduceFlat)
    ];
    let fc = prop_oneof![
        Just(Fc::Conv),
        (any::<bool>(), prop_oneof![Just(1.0f32), Just(0.5)])
            .prop_map(|(trans_b, alpha)| Fc::Gemm { trans_b, alpha }),
        Just(Fc::MatMul),
    ];
    let scale = prop_oneof![Just(Scale::XG), Just(Scale::GX), Just(Scale::Expand)];
    let residual = proptest::option::of((any::<bool>(), any::<bool>(), any::<bool>()));
    (
        (prop::sample::select(vec![1usize, 2, 3, 4, 16]), squeeze, fc),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        (act_strategy(), gate_strategy(), scale),
        (any::<bool>(), any::<bool>(), residual, any::<bool>()),
    )
        .prop_map(
            |((r, squeeze, fc), (flatten_in, back_minus_one, back_before_gate), x, y)| Block {
                r,
                squeeze,
                fc,
                flatten_in,
                back_minus_one,
                back_before_gate,
                act: x.0,
                hard_gate: x.1,
                scale: x.2,
                bias1: y.0,
                bias2: y.1,
                residual: y.2,
                shared_input: y.3,
            },
        )
}

fn spec_strategy() -> impl Strategy<Value = Spec> {
    (
        (1usize..=3, any::<bool>()),
        prop_oneof![
            1usize..=40,
            prop::sample::select(vec![1usize, 3, 7, 13, 17, 33, 40])
        ],
        (1usize..=9, 1usize..=9),
        prop::collection::vec(block_strategy(), 1..=3),
        any::<u64>(),
    )
        .prop_map(|((n, symbolic_batch), c, (h, w), blocks, seed)| Spec {
            n,
            symbolic_batch,
            c,
            h,
            w,
            blocks,
            seed,
        })
}

/// Builds graphs node by node with seeded weights; value names equal node names.
struct Builder {
    g: Graph,
    rng: SplitMix,
    n_dim: Dim,
}

impl Builder {
    fn new(symbolic_batch: bool, n: usize, seed: u64) -> Builder {
        let n_dim = if symbolic_batch {
            Dim::Batch
        } else {
            Dim::Fixed(n)
        };
        Builder {
            g: Graph::new("se_prop"),
            rng: SplitMix(seed),
            n_dim,
        }
    }

    fn input(&mut self, name: &str, c: usize, h: usize, w: usize) -> Result<ValueId, IrError> {
        let dims = vec![self.n_dim, Dim::Fixed(c), Dim::Fixed(h), Dim::Fixed(w)];
        self.g.add_input(name, TensorType::f32(Shape(dims)))
    }

    /// A weight uniform in `±1/sqrt(fan_in)` (`[-0.5, 0.5)` for rank < 2).
    fn weight(&mut self, name: &str, shape: &[usize], fan_in: usize) -> Result<ValueId, IrError> {
        let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
        let numel = shape.iter().product();
        let data = (0..numel)
            .map(|_| self.rng.uniform(-bound, bound))
            .collect();
        let t = Tensor::new(shape.to_vec(), data)?;
        self.g.add_weight(name, Arc::new(t))
    }

    fn node(&mut self, name: &str, op: Op, inputs: &[ValueId]) -> Result<ValueId, IrError> {
        let id = self.g.add_node(name, op, inputs, &[name])?;
        Ok(self.g.node(id).outputs[0])
    }

    /// The activation `act` of `v`.
    fn act(&mut self, p: &str, act: Act, v: ValueId) -> Result<ValueId, IrError> {
        let hsig = Op::HardSigmoid {
            alpha: 1.0 / 6.0,
            beta: 0.5,
        };
        match act {
            Act::Relu => self.node(p, Op::Relu, &[v]),
            Act::Silu => self.node(p, Op::Silu, &[v]),
            Act::HardSwish => self.node(p, Op::HardSwish, &[v]),
            Act::SiluMul { sig_first } | Act::HardSwishMul { sig_first } => {
                let op = if matches!(act, Act::SiluMul { .. }) {
                    Op::Sigmoid
                } else {
                    hsig
                };
                let s = self.node(&format!("{p}.inner"), op, &[v])?;
                let ins = if sig_first { [s, v] } else { [v, s] };
                self.node(p, Op::Mul, &ins)
            }
        }
    }

    /// One FC from `cin` to `cout` channels on a 4-D (`Fc::Conv`) or 2-D value.
    fn fc(
        &mut self,
        p: &str,
        fc: Fc,
        v: ValueId,
        (cin, cout): (usize, usize),
        bias: bool,
    ) -> Result<ValueId, IrError> {
        match fc {
            Fc::Conv => {
                let mut ins = vec![
                    v,
                    self.weight(&format!("{p}.weight"), &[cout, cin, 1, 1], cin)?,
                ];
                if bias {
                    ins.push(self.weight(&format!("{p}.bias"), &[cout], cin)?);
                }
                self.node(p, Op::Conv(Conv::default()), &ins)
            }
            Fc::Gemm { trans_b, alpha } => {
                let b_shape = if trans_b { [cout, cin] } else { [cin, cout] };
                let mut ins = vec![v, self.weight(&format!("{p}.weight"), &b_shape, cin)?];
                if bias {
                    ins.push(self.weight(&format!("{p}.bias"), &[cout], cin)?);
                }
                let attrs = Gemm {
                    alpha,
                    trans_b,
                    ..Gemm::default()
                };
                self.node(p, Op::Gemm(attrs), &ins)
            }
            Fc::MatMul => {
                let b = self.weight(&format!("{p}.weight"), &[cin, cout], cin)?;
                let y = self.node(&format!("{p}.matmul"), Op::MatMul, &[v, b])?;
                if !bias {
                    return Ok(y);
                }
                let b = self.weight(&format!("{p}.bias"), &[cout], cin)?;
                self.node(p, Op::Add, &[y, b])
            }
        }
    }

    /// One SE block (plus its residual) on `x: [N,c,h,w]`; `shortcut` for a fresh residual.
    fn se_block(
        &mut self,
        p: &str,
        b: &Block,
        x: ValueId,
        dims: [usize; 3],
        shortcut: Option<ValueId>,
    ) -> Result<ValueId, IrError> {
        let [c, h, w] = dims;
        let cr = (c / b.r).max(1);
        let axes = vec![2, 3];
        let keepdims = !matches!(b.squeeze, Squeeze::ReduceFlat);
        let sq = match b.squeeze {
            Squeeze::Gap => Op::GlobalAveragePool,
            _ => Op::ReduceMean { axes, keepdims },
        };
        let mut s = self.node(&format!("{p}.squeeze"), sq, &[x])?;
        let to_4d = Op::Reshape {
            shape: vec![0, if b.back_minus_one { -1 } else { c as i64 }, 1, 1],
            allowzero: false,
        };
        let two_d = !matches!(b.fc, Fc::Conv);
        if two_d && keepdims {
            let op = if b.flatten_in {
                Op::Flatten { axis: 1 }
            } else {
                Op::Reshape {
                    shape: vec![0, -1],
                    allowzero: false,
                }
            };
            s = self.node(&format!("{p}.flatten"), op, &[s])?;
        } else if !two_d && !keepdims {
            s = self.node(&format!("{p}.unflatten"), to_4d.clone(), &[s])?;
        }
        let z = self.fc(&format!("{p}.fc1"), b.fc, s, (c, cr), b.bias1)?;
        let za = self.act(&format!("{p}.act"), b.act, z)?;
        let mut e = self.fc(&format!("{p}.fc2"), b.fc, za, (cr, c), b.bias2)?;
        let back = format!("{p}.view");
        if two_d && b.back_before_gate {
            e = self.node(&back, to_4d.clone(), &[e])?;
        }
        let gate = match b.hard_gate {
            Some(alpha) => Op::HardSigmoid { alpha, beta: 0.5 },
            None => Op::Sigmoid,
        };
        let mut g = self.node(&format!("{p}.gate"), gate, &[e])?;
        if two_d && !b.back_before_gate {
            g = self.node(&back, to_4d, &[g])?;
        }
        let mul = format!("{p}.mul");
        let mut y = match b.scale {
            Scale::XG => self.node(&mul, Op::Mul, &[x, g])?,
            Scale::GX => self.node(&mul, Op::Mul, &[g, x])?,
            Scale::Expand => {
                let shape = vec![1, c as i64, h as i64, w as i64];
                let gx = self.node(&format!("{p}.expand"), Op::Expand { shape }, &[g])?;
                self.node(&mul, Op::Mul, &[x, gx])?
            }
        };
        if let Some((swapped, relu, _)) = b.residual {
            let r = shortcut.unwrap_or(x);
            let ins = if swapped { [r, y] } else { [y, r] };
            y = self.node(&format!("{p}.add"), Op::Add, &ins)?;
            if relu {
                y = self.node(&format!("{p}.relu"), Op::Relu, &[y])?;
            }
        }
        Ok(y)
    }
}

/// Builds a positive spec; every block output no later block reads is a graph output.
fn build(spec: &Spec) -> Result<Graph, IrError> {
    let mut bld = Builder::new(spec.symbolic_batch, spec.n, spec.seed);
    let dims = [spec.c, spec.h, spec.w];
    let x0 = bld.input("x", spec.c, spec.h, spec.w)?;
    let mut outs: Vec<ValueId> = Vec::new();
    let mut prev = x0;
    for (i, b) in spec.blocks.iter().enumerate() {
        let input = if b.shared_input { x0 } else { prev };
        let shortcut = match b.residual {
            Some((_, _, false)) => {
                Some(bld.input(&format!("shortcut{i}"), dims[0], dims[1], dims[2])?)
            }
            _ => None,
        };
        let y = bld.se_block(&format!("b{i}"), b, input, dims, shortcut)?;
        outs.retain(|&o| o != input);
        outs.push(y);
        prev = y;
    }
    for o in outs {
        bld.g.add_output(o)?;
    }
    Ok(bld.g)
}

/// What makes a negative case not an SE block.
#[derive(Clone, Copy, Debug)]
enum Flaw {
    /// Squeezes a second input `u`, scales `x`.
    PoolOther,
    /// Adds `x` to the pooled logits before the gate: the gate is `[N,C,H,W]`.
    PerPixelGate,
    /// The FC chain runs on the full map: no squeeze at all.
    NoSqueeze,
    /// `ReduceMean(axes=[axis], keepdims=1)` over H or W alone.
    WrongAxes { axis: usize },
}

fn negative_strategy() -> impl Strategy<Value = (Spec, Flaw)> {
    let flaw = prop_oneof![
        Just(Flaw::PoolOther),
        Just(Flaw::PerPixelGate),
        Just(Flaw::NoSqueeze),
        (2usize..=3).prop_map(|axis| Flaw::WrongAxes { axis }),
    ];
    (spec_strategy(), flaw, 2usize..=9).prop_map(|(mut spec, flaw, other)| {
        spec.blocks.truncate(1);
        // The dimension the wrong reduction keeps is at least 2, so it is truly per position.
        if let Flaw::WrongAxes { axis } = flaw {
            if axis == 2 {
                spec.w = spec.w.max(other);
            } else {
                spec.h = spec.h.max(other);
            }
        }
        (spec, flaw)
    })
}

/// One flawed block with 1x1-conv FCs; the act, gate and biases come from the spec.
fn build_negative(spec: &Spec, flaw: Flaw) -> Result<Graph, IrError> {
    let b = &spec.blocks[0];
    let (c, cr) = (spec.c, (spec.c / b.r).max(1));
    let mut bld = Builder::new(spec.symbolic_batch, spec.n, spec.seed);
    let x = bld.input("x", c, spec.h, spec.w)?;
    let s = match flaw {
        Flaw::PoolOther => {
            let u = bld.input("u", c, spec.h, spec.w)?;
            bld.node("squeeze", Op::GlobalAveragePool, &[u])?
        }
        Flaw::PerPixelGate => bld.node("squeeze", Op::GlobalAveragePool, &[x])?,
        Flaw::NoSqueeze => x,
        Flaw::WrongAxes { axis } => {
            let op = Op::ReduceMean {
                axes: vec![axis],
                keepdims: true,
            };
            bld.node("squeeze", op, &[x])?
        }
    };
    let z = bld.fc("fc1", Fc::Conv, s, (c, cr), b.bias1)?;
    let za = bld.act("act", b.act, z)?;
    let mut e = bld.fc("fc2", Fc::Conv, za, (cr, c), b.bias2)?;
    if let Flaw::PerPixelGate = flaw {
        e = bld.node("per_pixel", Op::Add, &[e, x])?;
    }
    let gate = match b.hard_gate {
        Some(alpha) => Op::HardSigmoid { alpha, beta: 0.5 },
        None => Op::Sigmoid,
    };
    let g = bld.node("gate", gate, &[e])?;
    let y = bld.node("mul", Op::Mul, &[x, g])?;
    bld.g.add_output(y)?;
    Ok(bld.g)
}

/// Optimises `g` and checks numerics and the fused count; returns elements compared.
fn check(mut g: Graph, n: usize, seed: u64, expect_se: usize) -> Result<usize, TestCaseError> {
    let fail = |what: &str, e: String| TestCaseError::fail(format!("{what}: {e}"));
    excite_ir::verify::verify(&mut g).map_err(|e| fail("the built graph", e.to_string()))?;
    let before = excite_ir::text::print(&g);
    let opt =
        optimize(g.clone(), &Options::default()).map_err(|e| fail("optimize", e.to_string()))?;
    let after = excite_ir::text::print(&opt.graph);
    let compared = compare_graphs(&g, &opt.graph, n, seed ^ 0xa5a5)
        .map_err(|e| fail("numerics", format!("{e}\nbefore:\n{before}after:\n{after}")))?;
    let fused = se_blocks(&opt.graph);
    prop_assert_eq!(
        fused,
        expect_se,
        "SeBlock nodes\nbefore:\n{}after:\n{}",
        before,
        after
    );
    Ok(compared)
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Runs `cases` cases of `strategy` through `test`, which returns (blocks fused, elements
/// compared); prints and checks the totals so that the suite proves it compared something.
fn run_cases<S: Strategy>(
    what: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(usize, usize), TestCaseError>,
) {
    let (passed, blocks, compared) = (Cell::new(0usize), Cell::new(0usize), Cell::new(0usize));
    let mut runner = TestRunner::new(config(cases));
    let result = runner.run(&strategy, |v| {
        let (b, c) = test(v)?;
        passed.set(passed.get() + 1);
        blocks.set(blocks.get() + b);
        compared.set(compared.get() + c);
        Ok(())
    });
    println!(
        "{what}: {} cases passed, {} SE blocks fused, {} output elements compared",
        passed.get(),
        blocks.get(),
        compared.get()
    );
    if let Err(e) = result {
        panic!("{what}: {e}");
    }
    assert!(
        passed.get() >= cases as usize,
        "only {} cases ran",
        passed.get()
    );
    assert!(compared.get() > 0);
}

#[test]
fn se_family_graphs_fuse_and_compute_the_same() {
    run_cases("SE-family graphs", 64, spec_strategy(), |spec| {
        let g = build(&spec).map_err(|e| TestCaseError::fail(format!("build: {e}")))?;
        let built = spec.blocks.len();
        let compared = check(g, spec.n, spec.seed, built)?;
        Ok((built, compared))
    });
}

#[test]
fn look_alikes_do_not_fuse_and_compute_the_same() {
    run_cases("look-alikes", 48, negative_strategy(), |(spec, flaw)| {
        let g =
            build_negative(&spec, flaw).map_err(|e| TestCaseError::fail(format!("build: {e}")))?;
        Ok((0, check(g, spec.n, spec.seed, 0)?))
    });
}
