//! GFLOP/s of the GEMM kernels on ResNet-50 convolution shapes, 1 and 2 threads: the `gemm`
//! crate (0.19, `x86-v4`) and the packed micro-kernel this CPU runs ([`packed_gemm`]: AVX-512F,
//! else AVX2 + FMA), interleaved round by round so that a noisy machine slows both alike; each
//! figure is the fastest of `ROUNDS` rounds of `ITERS` calls. `cargo run --release -p
//! excite-cpu --example gemm_bench [THREADS]`.

use std::time::Instant;

use excite_cpu::jit::{Isa, PackedWeight, Par, Rhs, packed_gemm, sgemm};

const ROUNDS: usize = 15;
const ITERS: usize = 4;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // (M, N, K): output channels, output pixels, C·kH·kW — ResNet-50 layers at 224.
    let shapes = [
        (64, 3136, 64),
        (64, 3136, 576),
        (256, 3136, 64),
        (64, 3136, 256),
        (128, 784, 1152),
        (512, 784, 128),
        (128, 784, 512),
        (256, 196, 2304),
        (1024, 196, 256),
        (256, 196, 1024),
        (512, 49, 4608),
        (2048, 49, 512),
        (512, 49, 2048),
        // Winograd F(2x2, 3x3): per image 16 products of M x tiles x C.
        (64, 784, 64),
        (128, 196, 128),
        (256, 49, 256),
    ];
    let threads: Vec<usize> = match std::env::args().nth(1) {
        Some(t) => vec![t.parse()?],
        None => vec![1, 2],
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;
    for threads in threads {
        print!("threads {threads:<3} {:>16} {:>8}", "M x N x K", "gemm");
        if let Some(isa) = Isa::detect() {
            print!(" {:>8}", format!("{isa:?}"));
        }
        println!("  (GFLOP/s)");
        for &(m, n, k) in &shapes {
            let a: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.1).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.1).collect();
            let packed: Vec<PackedWeight> = PackedWeight::new(&a, m, k).into_iter().collect();
            let mut c = vec![0f32; m * n];
            let mut best = vec![f64::INFINITY; 1 + packed.len()];
            for _ in 0..ROUNDS {
                for (kind, best) in best.iter_mut().enumerate() {
                    let t = pool.install(|| -> Result<f64, excite_cpu::KernelError> {
                        let t = Instant::now();
                        for _ in 0..ITERS {
                            match kind {
                                0 => sgemm((m, n, k), &mut c, n, &a, k, &b, n, false, threads)?,
                                p => packed_gemm(
                                    &packed[p - 1],
                                    0..m.div_ceil(packed[p - 1].panel()),
                                    n,
                                    &mut c,
                                    n,
                                    Rhs::Rows { data: &b, rs: n },
                                    false,
                                    Par::from(threads),
                                )?,
                            }
                        }
                        Ok(t.elapsed().as_secs_f64() / ITERS as f64)
                    })?;
                    *best = best.min(t);
                }
            }
            let f = 2.0 * (m * n * k) as f64;
            print!("threads {threads:<3} {:>16} ", format!("{m}x{n}x{k}"));
            for s in best {
                print!(" {:>8.0}", f / s / 1e9);
            }
            println!();
        }
    }
    Ok(())
}
