//! GFLOP/s of the GEMM micro-kernel (`gemm` 0.19, `x86-v4`) on ResNet-50 convolution shapes, 1
//! and 2 threads: `cargo run --release -p excite-cpu --example gemm_bench`.

use std::time::Instant;

use excite_cpu::jit::sgemm;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // (M, N, K): output channels, output pixels, C·kH·kW — ResNet-50 layers at 224.
    let shapes = [
        (64, 3136, 64),
        (64, 3136, 576),
        (256, 3136, 64),
        (128, 784, 1152),
        (512, 784, 128),
        (256, 196, 2304),
        (1024, 196, 256),
        (512, 49, 4608),
        (2048, 49, 512),
    ];
    for threads in [1, 2] {
        let (mut flops, mut secs) = (0f64, 0f64);
        for &(m, n, k) in &shapes {
            let a: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.1).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.1).collect();
            let mut c = vec![0f32; m * n];
            for _ in 0..3 {
                sgemm((m, n, k), &mut c, n, &a, k, &b, n, false, threads)?;
            }
            let iters = 20;
            let t = Instant::now();
            for _ in 0..iters {
                sgemm((m, n, k), &mut c, n, &a, k, &b, n, false, threads)?;
            }
            let s = t.elapsed().as_secs_f64() / iters as f64;
            let f = 2.0 * (m * n * k) as f64;
            println!("threads {threads} {m}x{n}x{k}: {:.0} GFLOP/s", f / s / 1e9);
            flops += f;
            secs += s;
        }
        println!(
            "threads {threads} overall: {:.0} GFLOP/s",
            flops / secs / 1e9
        );
    }
    Ok(())
}
