//! The convolution paths chosen by shape — Winograd F(2x2, 3x3), implicit, im2col and 1x1
//! GEMMs split by output-channel blocks on several threads, on the `gemm` crate or the packed
//! AVX-512 or AVX2 micro-kernel — against the reference interpreter, with a
//! fused epilogue (bias, ReLU, residual add, channel means) so that every block's channel
//! offset is exercised; on 1 thread and on a 2-thread pool.

use excite_cpu::conv::{ConvKernel, ConvKernelSet, ConvShape, Reads};
use excite_cpu::jit::{Isa, PackedWeight, Par};
use excite_cpu::kernels::Epilogue;
use excite_cpu::winograd;
use excite_ir::op::Conv;
use excite_ir::{Act, Op, Tensor, interp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rand_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    (num / den.max(1e-30)).sqrt()
}

/// Each case runs on 1 thread, on 2, and on 2 marked far apart (the right-hand side read once
/// in memory order before each GEMM; Winograd as one pipeline per thread).
const PARS: [Par; 3] = [
    Par {
        threads: 1,
        far: false,
    },
    Par {
        threads: 2,
        far: false,
    },
    Par {
        threads: 2,
        far: true,
    },
];

/// `(c, m, h, w, kernel, stride, pad, expect Winograd)`.
type Case = (usize, usize, usize, usize, usize, usize, usize, bool);

const CASES: [Case; 12] = [
    (3, 20, 23, 25, 3, 1, 1, true),
    (5, 40, 24, 24, 3, 1, 1, true),
    (4, 17, 16, 32, 3, 1, 1, true),
    (6, 40, 9, 9, 3, 1, 1, false),
    (6, 40, 15, 17, 3, 2, 1, false),
    (7, 37, 12, 11, 1, 1, 0, false),
    // Wide: at least 32 output columns per output channel (the stem's shape, and a 1x1).
    (3, 4, 24, 24, 7, 2, 3, false),
    (8, 4, 16, 16, 1, 1, 0, false),
    // K >= 256 and under 1024 pixels: the packed AVX-512 micro-kernel (where the CPU has it).
    // Partial 32-row panels, pixels not a multiple of the 7-column tile, K over one 512 block
    // (a right-hand side over 1 MiB),
    // and on 2 threads panels split 64 + 6 rows.
    (30, 40, 9, 9, 3, 1, 1, false),
    (600, 33, 23, 22, 1, 1, 0, false),
    (64, 70, 12, 12, 3, 2, 1, false),
    // An implicit GEMM whose phase-split input is over 1 MiB: K (2700) in 512 blocks.
    (300, 40, 40, 40, 3, 2, 1, false),
];

#[test]
fn conv_paths_with_fused_epilogue_match_the_interpreter() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("pool");
    let (mut cases, mut wide, mut packed, mut implicit) = (0, 0, 0, 0);
    for (c, m, h, w, k, stride, pad, wino) in CASES {
        // Three images: on two threads, two run side by side and the third on both threads.
        let n = 3;
        let attrs = Conv {
            strides: [stride; 2],
            pads: [pad; 4],
            dilations: [1, 1],
            group: 1,
        };
        let x = Tensor::new(vec![n, c, h, w], rand_vec(&mut rng, n * c * h * w)).expect("x");
        let wt = Tensor::new(vec![m, c, k, k], rand_vec(&mut rng, m * c * k * k)).expect("w");
        let b = Tensor::new(vec![m], rand_vec(&mut rng, m)).expect("b");
        let conv = interp::eval_op("conv", &Op::Conv(attrs.clone()), &[&x, &wt, &b]);
        let conv = conv.expect("interp");
        let (oh, ow) = (conv.shape()[2], conv.shape()[3]);
        let r = rand_vec(&mut rng, conv.numel());
        // Reference epilogue: relu(conv + bias) + r, then each plane's mean.
        let want: Vec<f32> = conv
            .data()
            .iter()
            .zip(&r)
            .map(|(v, r)| v.max(0.0) + r)
            .collect();
        let want_means: Vec<f32> = want
            .chunks(oh * ow)
            .map(|p| p.iter().sum::<f32>() / (oh * ow) as f32)
            .collect();
        let shape = ConvShape {
            n,
            c,
            h,
            w,
            m,
            oh,
            ow,
            kh: k,
            kw: k,
            attrs,
        };
        assert_eq!(winograd::eligible(&shape), wino, "{shape:?}");
        wide += usize::from(shape.is_wide());
        let ck = ConvKernel::new(shape, wt.data().to_vec(), b.data().to_vec());
        assert_eq!(ck.is_winograd(), wino);
        packed += usize::from(ck.is_packed());
        implicit += usize::from(ck.is_implicit());
        let e = Epilogue {
            bias: true,
            act: Some(Act::Relu),
            gate: false,
            residual: true,
            post_act: None,
            means: true,
        };
        let set = ConvKernelSet::compile(&ck.shape, e).expect("kernels");
        let ks = set.kernels();
        for par in PARS {
            let threads = par.threads;
            let mut col = vec![0f32; ck.shape.scratch_len_on(threads)];
            let mut y = vec![0f32; want.len()];
            let mut means = vec![0f32; n * m];
            let reads = Reads { r: &r, g: &[] };
            pool.install(|| ck.run(ks, x.data(), reads, &mut y, &mut means, &mut col, par))
                .expect("run");
            let err = rel_l2(&y, &want);
            assert!(err < 1e-5, "{:?} on {par:?}: {err:e}", ck.shape);
            let err = rel_l2(&means, &want_means);
            assert!(err < 1e-5, "means {:?} on {par:?}: {err:e}", ck.shape);
            cases += 1;
        }
    }
    // With a packed micro-kernel (AVX-512F, or AVX2 + FMA: every geometry here has at least
    // 16 output pixels) every non-Winograd kernel larger than 1x1 is an implicit GEMM (6
    // cases), plus one packed 1x1; without one, all run on im2col and the `gemm` crate.
    let (want_packed, want_implicit) = if avx512f() || avx2() { (7, 6) } else { (0, 0) };
    assert_eq!(
        (cases, wide, packed, implicit),
        (36, 2, want_packed, want_implicit)
    );
}

/// Implicit GEMMs ([`ConvShape::implicit_gemm`]) over random geometries: kernels 2-5 wide and
/// high (not square), strides 1-3, dilations 1-2, asymmetric pads, widths that are not a
/// multiple of the 7-pixel tile, one or two 32-row panels and K across a 512 block, on 1 and 2
/// threads, against the interpreter (relative L2 1e-5, bias and ReLU fused).
#[test]
fn implicit_gemm_convs_match_the_interpreter() {
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("pool");
    let mut compared = 0;
    while compared < 3 * 24 {
        let (kh, kw) = (rng.random_range(1..=5), rng.random_range(2..=5));
        let c = if rng.random_bool(0.2) {
            70
        } else {
            rng.random_range(1..=9)
        };
        let (m, h, w) = (
            rng.random_range(1..=70),
            rng.random_range(1..=19),
            rng.random_range(1..=23),
        );
        let attrs = Conv {
            strides: [rng.random_range(1..=3), rng.random_range(1..=3)],
            pads: [0; 4].map(|_| rng.random_range(0..=2)),
            dilations: [rng.random_range(1..=2), rng.random_range(1..=2)],
            group: 1,
        };
        let n = rng.random_range(1..=2);
        let x = Tensor::new(vec![n, c, h, w], rand_vec(&mut rng, n * c * h * w)).expect("x");
        let wt = Tensor::new(vec![m, c, kh, kw], rand_vec(&mut rng, m * c * kh * kw)).expect("w");
        let b = Tensor::new(vec![m], rand_vec(&mut rng, m)).expect("b");
        // Geometries whose kernel does not fit the padded input are skipped.
        let Ok(conv) = interp::eval_op("conv", &Op::Conv(attrs.clone()), &[&x, &wt, &b]) else {
            continue;
        };
        let (oh, ow) = (conv.shape()[2], conv.shape()[3]);
        let shape = ConvShape {
            n,
            c,
            h,
            w,
            m,
            oh,
            ow,
            kh,
            kw,
            attrs,
        };
        if oh * ow == 0 || !shape.implicit_gemm() {
            if Isa::detect().is_none() {
                return;
            }
            continue;
        }
        let want: Vec<f32> = conv.data().iter().map(|v| v.max(0.0)).collect();
        let ck = ConvKernel::new(shape, wt.data().to_vec(), b.data().to_vec());
        assert!(ck.is_implicit(), "{:?}", ck.shape);
        let e = Epilogue {
            bias: true,
            act: Some(Act::Relu),
            gate: false,
            residual: false,
            post_act: None,
            means: false,
        };
        let set = ConvKernelSet::compile(&ck.shape, e).expect("kernels");
        for par in PARS {
            let threads = par.threads;
            let mut col = vec![f32::NAN; ck.shape.scratch_len_on(threads)];
            let mut y = vec![f32::NAN; want.len()];
            let reads = Reads::default();
            pool.install(|| {
                ck.run(
                    set.kernels(),
                    x.data(),
                    reads,
                    &mut y,
                    &mut [],
                    &mut col,
                    par,
                )
            })
            .expect("run");
            let err = rel_l2(&y, &want);
            assert!(err < 1e-5, "{:?} on {par:?}: {err:e}", ck.shape);
            compared += 1;
        }
    }
    assert_eq!(compared, 72);
}

#[cfg(target_arch = "x86_64")]
fn avx512f() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

#[cfg(not(target_arch = "x86_64"))]
fn avx512f() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
fn avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

#[cfg(not(target_arch = "x86_64"))]
fn avx2() -> bool {
    false
}

/// Winograd with both kinds of transformed weights (plain for the `gemm` crate; packed, where
/// the CPU has AVX-512, for the crate's micro-kernel) on 1 thread, on 2, and on 2 far apart
/// (one whole pipeline per thread, 40 output channels: a 32-row panel and an 8-row one), scratch
/// poisoned with NaN, against the interpreter (relative L2 1e-5).
#[test]
fn winograd_weight_kinds_and_placements_match_the_interpreter() {
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("pool");
    let (c, m, h, w) = (5, 40, 18, 21);
    let attrs = Conv {
        strides: [1, 1],
        pads: [1; 4],
        dilations: [1, 1],
        group: 1,
    };
    let x = Tensor::new(vec![1, c, h, w], rand_vec(&mut rng, c * h * w)).expect("x");
    let wt = Tensor::new(vec![m, c, 3, 3], rand_vec(&mut rng, m * c * 9)).expect("w");
    let want = interp::eval_op("conv", &Op::Conv(attrs.clone()), &[&x, &wt]).expect("interp");
    let shape = ConvShape {
        n: 1,
        c,
        h,
        w,
        m,
        oh: h,
        ow: w,
        kh: 3,
        kw: 3,
        attrs,
    };
    assert!(winograd::eligible(&shape));
    let e = Epilogue {
        bias: false,
        act: None,
        gate: false,
        residual: false,
        post_act: None,
        means: false,
    };
    let set = ConvKernelSet::compile(&shape, e).expect("kernels");
    let wk = set.kernels().winograd.expect("Winograd kernels");
    let u = winograd::transform_weights(&shape, wt.data());
    let mut kinds = vec![winograd::Weights::Plain(u.clone())];
    match winograd::Weights::new(&shape, wt.data()) {
        winograd::Weights::Packed(p) => assert_eq!(p[0].isa(), Isa::Avx512, "40 rows"),
        winograd::Weights::Plain(_) => assert!(!avx512f(), "no packed weights with AVX-512F"),
    }
    // Packed for each micro-kernel this CPU has (AVX2 packs only from 256 rows by default).
    for isa in [Isa::Avx512, Isa::Avx2] {
        let packed: Vec<PackedWeight> = u
            .chunks_exact(m * c)
            .filter_map(|ux| PackedWeight::for_isa(ux, m, c, isa))
            .collect();
        if packed.len() == 16 {
            kinds.push(winograd::Weights::Packed(packed));
        }
    }
    let mut compared = 0;
    for u in &kinds {
        for par in PARS {
            let mut scratch = vec![f32::NAN; winograd::scratch_len_on(&shape, par.threads)];
            let mut y = vec![f32::NAN; m * h * w];
            let after = |_: usize, _: &mut [f32], _: &mut [f32]| Ok(());
            pool.install(|| {
                winograd::run_image(
                    &shape,
                    wk,
                    u,
                    x.data(),
                    &mut y,
                    &mut [],
                    &mut scratch,
                    par,
                    &after,
                )
            })
            .expect("run");
            let err = rel_l2(&y, want.data());
            let kind = match u {
                winograd::Weights::Plain(_) => "plain",
                winograd::Weights::Packed(_) => "packed",
            };
            assert!(err < 1e-5, "{kind} weights on {par:?}: {err:e}");
            compared += 1;
        }
    }
    assert_eq!(compared, 3 * kinds.len());
    assert_eq!(
        kinds.len(),
        1 + usize::from(avx512f()) + usize::from(avx2())
    );
}

/// [`packed_gemm`] on each micro-kernel this CPU has (so AVX-512 machines test the AVX2 one
/// too) against a float64 product, over random sizes: rows across partial panels, K across the
/// AVX2 kernel's 256 blocks, pixels across its 256-pixel blocks and tails of 1-15 columns, a
/// panel sub-range, row strides longer than the rows, accumulation into random outputs, 1 and
/// 2 threads, and both right-hand sides (a matrix, and the tap table of an implicit GEMM).
/// Relative L2 1e-5 on the rows computed; every other output float must be left as it was.
#[test]
fn packed_gemm_matches_a_float64_product_on_each_micro_kernel() {
    use excite_cpu::jit::{Rhs, packed_gemm};
    let mut rng = ChaCha8Rng::seed_from_u64(41);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("pool");
    let mut compared = [0usize; 2];
    for (ii, isa) in [Isa::Avx512, Isa::Avx2].into_iter().enumerate() {
        for case in 0..40 {
            let (m, k) = (rng.random_range(1..=70), rng.random_range(1..=600));
            let n = rng.random_range(1..=300);
            let w = rand_vec(&mut rng, m * k);
            let Some(pw) = PackedWeight::for_isa(&w, m, k, isa) else {
                break;
            };
            let pr = pw.panel();
            let panels = m.div_ceil(pr);
            let p0 = rng.random_range(0..panels);
            let p1 = rng.random_range(p0 + 1..=panels);
            let (r0, r1) = (p0 * pr, (p1 * pr).min(m));
            // The right-hand side: a matrix with a longer row stride, or taps (even cases).
            let (data, rs, width, step, offs) = if case % 2 == 0 {
                let rs = n + rng.random_range(0..3);
                (rand_vec(&mut rng, k * rs), rs, 0, 0, Vec::new())
            } else {
                let divisors: Vec<usize> = (1..=n).filter(|d| n % d == 0).collect();
                let width = divisors[rng.random_range(0..divisors.len())];
                let step = width + rng.random_range(0..4);
                let offs: Vec<usize> = (0..k).map(|_| rng.random_range(0..50)).collect();
                let len = 50 + (n / width - 1) * step + width;
                (rand_vec(&mut rng, len), 0, width, step, offs)
            };
            let at = |kk: usize, j: usize| match j.checked_div(width) {
                None => data[kk * rs + j],
                Some(y) => data[offs[kk] + y * step + j % width],
            };
            let rhs = if width == 0 {
                Rhs::Rows { data: &data, rs }
            } else {
                Rhs::Taps {
                    data: &data,
                    offs: &offs,
                    width,
                    step,
                }
            };
            let dst_rs = n + rng.random_range(0..3);
            let accumulate = rng.random_bool(0.5);
            let before = rand_vec(&mut rng, (r1 - r0) * dst_rs);
            let mut dst = before.clone();
            let threads = 1 + case % 4 / 2;
            pool.install(|| {
                let par = Par::from(threads);
                packed_gemm(&pw, p0..p1, n, &mut dst, dst_rs, rhs, accumulate, par)
            })
            .expect("packed_gemm");
            let (mut got, mut want) = (Vec::new(), Vec::new());
            for i in 0..r1 - r0 {
                for j in 0..dst_rs {
                    let o = i * dst_rs + j;
                    if j >= n {
                        assert_eq!(dst[o].to_bits(), before[o].to_bits(), "{isa:?} pad");
                        continue;
                    }
                    let dot: f64 = (0..k)
                        .map(|kk| f64::from(w[(r0 + i) * k + kk]) * f64::from(at(kk, j)))
                        .sum();
                    let base = if accumulate {
                        f64::from(before[o])
                    } else {
                        0.0
                    };
                    got.push(dst[o]);
                    want.push((base + dot) as f32);
                }
            }
            let err = rel_l2(&got, &want);
            let what = format!("{isa:?} {m}x{n}x{k} panels {p0}..{p1} taps {width} {threads}t");
            assert!(err < 1e-5, "{what}: {err:e}");
            compared[ii] += 1;
        }
    }
    assert_eq!(
        compared,
        [40 * usize::from(avx512f()), 40 * usize::from(avx2())]
    );
}
