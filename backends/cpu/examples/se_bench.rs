//! Throughput of the generated SE-block kernel on SE-ResNet-50's block shapes (batch 1):
//! `cargo run --release -p excite-cpu --example se_bench`.

use std::time::Instant;

use excite_cpu::kernels::{self, SeShape};
use excite_cpu::{Arg, Jit};
use excite_ir::{Act, SeBlock};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let se = SeBlock {
        act: Act::Relu,
        gate: Act::Sigmoid,
        bias1: true,
        bias2: true,
        residual: true,
        post_act: Some(Act::Relu),
    };
    for (c, hw) in [(256, 3136), (512, 784), (1024, 196), (2048, 49)] {
        let cr = c / 16;
        let mut jit = Jit::new()?;
        let p = kernels::se_block(&jit, SeShape { c, cr, hw }, &se, false);
        jit.add(p)?;
        let k = jit.finish()?.remove(0);
        let x: Vec<f32> = (0..c * hw).map(|i| (i % 17) as f32 * 0.1 - 0.8).collect();
        let (w1, b1, w2, b2) = (
            vec![0.01f32; c * cr],
            vec![0.1f32; cr],
            vec![0.01f32; c * cr],
            vec![0.1f32; c],
        );
        let r = x.clone();
        let mut y = vec![0f32; c * hw];
        let mut scratch = vec![0f32; c + cr];
        let iters = 200;
        let mut best = f64::MAX;
        for _ in 0..iters {
            let t = Instant::now();
            let mut args = [
                Arg::In(&x),
                Arg::In(&w1),
                Arg::In(&b1),
                Arg::In(&w2),
                Arg::In(&b2),
                Arg::In(&r),
                Arg::Out(&mut y),
                Arg::Out(&mut scratch),
            ];
            k.call(1, &mut args)?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        let bytes = (c * hw * 4 * 4) as f64; // x twice, r, y
        println!(
            "c {c} hw {hw}: {:.1} us, {:.1} GB/s",
            best * 1e6,
            bytes / best / 1e9
        );
    }
    Ok(())
}
