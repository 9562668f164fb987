//! Milliseconds and GFLOP/s of whole convolutions (`ConvKernel::run`: im2col / phase split /
//! Winograd transforms, GEMM, bias + ReLU epilogue) on ResNet-50's batch-1 shapes, 1 and 2
//! threads, minimum of 30 runs: `cargo run --release -p excite-cpu --example conv_bench
//! [NAME-FILTER]`; `NO_EPI=1` drops the epilogue's bias and ReLU.

use std::time::Instant;

use excite_cpu::conv::{ConvKernel, ConvKernelSet, ConvShape, Reads};
use excite_cpu::jit::Par;
use excite_cpu::kernels::Epilogue;
use excite_ir::Act;
use excite_ir::op::Conv;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // (name, c, m, h, kernel, stride, pad)
    let shapes = [
        ("stem 7x7/2", 3, 64, 224, 7, 2, 3),
        ("layer1 3x3 (Winograd)", 64, 64, 56, 3, 1, 1),
        ("layer1 1x1 64->256", 64, 256, 56, 1, 1, 0),
        ("layer2.0 1x1 256->128", 256, 128, 56, 1, 1, 0),
        ("layer1 1x1 256->64", 256, 64, 56, 1, 1, 0),
        ("layer2.0 3x3/2", 128, 128, 56, 3, 2, 1),
        ("layer3 3x3 (Winograd)", 256, 256, 14, 3, 1, 1),
        ("layer4 3x3", 512, 512, 7, 3, 1, 1),
    ];
    let filter = std::env::args().nth(1).unwrap_or_default();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;
    for (name, c, m, h, k, stride, pad) in shapes {
        if !name.contains(filter.as_str()) {
            continue;
        }
        let o = (h + 2 * pad - k) / stride + 1;
        let attrs = Conv {
            strides: [stride; 2],
            pads: [pad; 4],
            dilations: [1, 1],
            group: 1,
        };
        let s = ConvShape {
            n: 1,
            c,
            h,
            w: h,
            m,
            oh: o,
            ow: o,
            kh: k,
            kw: k,
            attrs,
        };
        let w: Vec<f32> = (0..m * c * k * k)
            .map(|i| (i % 13) as f32 * 0.01 - 0.06)
            .collect();
        let b: Vec<f32> = (0..m).map(|i| (i % 5) as f32 * 0.1).collect();
        let x: Vec<f32> = (0..c * h * h).map(|i| (i % 7) as f32 * 0.1 - 0.3).collect();
        let ck = ConvKernel::new(s, w, b);
        let none = std::env::var_os("NO_EPI").is_some();
        let e = Epilogue {
            bias: !none,
            act: (!none).then_some(Act::Relu),
            gate: false,
            residual: false,
            post_act: None,
            means: false,
        };
        let set = ConvKernelSet::compile(&ck.shape, e)?;
        let ks = set.kernels();
        let flops = 2.0 * (m * c * k * k * o * o) as f64;
        for threads in [1, 2] {
            let mut col = vec![0f32; ck.shape.scratch_len_on(threads)];
            let mut y = vec![0f32; m * o * o];
            let reads = Reads { r: &[], g: &[] };
            let par = Par {
                threads,
                far: false,
            };
            let mut best = f64::MAX;
            pool.install(|| -> Result<(), excite_cpu::KernelError> {
                for _ in 0..30 {
                    let t = Instant::now();
                    ck.run(ks, &x, reads, &mut y, &mut [], &mut col, par)?;
                    best = best.min(t.elapsed().as_secs_f64());
                }
                Ok(())
            })?;
            println!(
                "{name:24} {threads} thread(s): {:.3} ms, {:.0} GFLOP/s",
                best * 1e3,
                flops / best / 1e9
            );
        }
    }
    Ok(())
}
