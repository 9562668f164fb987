//! Executing a [`CpuProgram`]: binds the inputs into their planned buffers, runs each step with
//! its output buffer taken out of the arena (so inputs are borrowed immutably beside it), and
//! copies the outputs into tensors. The work runs inside the program's thread pool: GEMMs split
//! across its threads, SE blocks split by channel range when there are fewer images than
//! threads ([`super::se_split`]), the other generated kernels run on the calling worker. Each
//! multi-threaded run starts by timing a few round trips between two pool threads
//! ([`with_spinning_workers`]): when they do not share a cache, the GEMMs read their operands
//! in memory order first ([`excite_cpu::jit::Par::far`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use excite_cpu::Arg;
use excite_cpu::conv::{ConvKernel, ConvKernels, Reads};
use excite_cpu::jit::{Par, sgemm};
use excite_ir::Tensor;
use rayon::prelude::*;

use super::lower::{ConvKs, Kind, Src, Step};
use super::plan::StepUse;
use super::{CpuError, CpuProgram, NamedTensors, Placement, StepTime};

/// Runs `work` on the current pool thread while the pool's other threads spin for work instead
/// of going to sleep between the (hundreds of, each short) parallel sections of an inference:
/// waking a sleeping thread costs tens of microseconds on a VM, and with an even split of each
/// kernel the wake-up of the last thread delays the whole section. Each spinner executes
/// pending pool jobs (`rayon::yield_now`) until `work` is done. A spinner that ends up on the
/// thread running `work` (it popped its own queued spinner while waiting inside a join)
/// returns at once, so it can never block `work`. Every 64 idle checks a spinner also yields its
/// core to the OS: on a core shared with another process, spinning through the whole inference
/// made two threads slower than one (SE-ResNet-50 batch 1 with a busy loop on the second core:
/// 51-70 ms, 40 ms with the yield, 36 ms on one thread; no change on a quiet machine).
///
/// First the calling thread and the first spinner to start time a few round trips through
/// one atomic ([`probe_round_trip`]); `work` gets the round trip (none on one thread, or
/// when no spinner came in time), see [`is_far`].
fn with_spinning_workers<T: Send>(
    threads: usize,
    work: impl FnOnce(Option<Duration>) -> T + Send,
) -> T {
    if threads < 2 {
        return work(None);
    }
    let done = AtomicBool::new(false);
    let home = rayon::current_thread_index();
    let (probe, claimed) = (AtomicU32::new(0), AtomicBool::new(false));
    let spin = |_: &rayon::Scope<'_>| {
        if rayon::current_thread_index() == home {
            return;
        }
        if !claimed.swap(true, Ordering::AcqRel) {
            answer_probe(&probe);
        }
        let mut idle = 0u32;
        while !done.load(Ordering::Acquire) {
            if rayon::yield_now() == Some(rayon::Yield::Executed) {
                idle = 0;
            } else {
                idle += 1;
                if idle.is_multiple_of(64) {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
        }
    };
    // Sets `done` however `work` ends (a panic included), so no spinner outlives it.
    struct Done<'a>(&'a AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    rayon::scope(|s| {
        for _ in 1..threads {
            s.spawn(spin);
        }
        let _done = Done(&done);
        let rtt = probe_round_trip(&probe, &claimed);
        work(rtt)
    })
}

/// Round trips per batch of [`probe_round_trip`].
const PROBE_ROUNDS: u32 = 8;
/// Batches [`probe_round_trip`] times; the fastest counts, because a VM's hiccups (a vCPU
/// descheduled for a moment) only ever make a batch slower, never faster.
const PROBE_BATCHES: u32 = 3;
/// Round trips above this are "far": on the Zen 5 VM 65-130 ns while its two vCPUs share an
/// L3, 380-440 ns while they do not (BENCHMARKS.md).
const FAR_NS: u128 = 250;
/// How long either side of the probe waits for the other before giving up (a spinner that
/// never starts, or one delayed by another process on its core): then "not far".
const PROBE_WAIT: Duration = Duration::from_micros(200);

/// Spins until `cond` holds or [`PROBE_WAIT`] passes; whether it held. The clock is read
/// only every 64 polls (first after 64), so that a change is seen within a few nanoseconds:
/// reading it on every poll added ~100-200 ns to each measured round trip on a Zen 3 VM
/// (200-320 ns measured against 66-103 ns by `scripts/core_latency.c`), and put half of its
/// runs in the "far" mode.
fn wait_for(cond: impl Fn() -> bool) -> bool {
    let mut start = None;
    let mut polls = 0u32;
    while !cond() {
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(64) && start.get_or_insert_with(Instant::now).elapsed() > PROBE_WAIT
        {
            return false;
        }
        std::hint::spin_loop();
    }
    true
}

/// Whether a measured round trip means the pool's threads do not share a cache.
fn is_far(rtt: Option<Duration>) -> bool {
    rtt.is_some_and(|d| d.as_nanos() > FAR_NS)
}

/// The value the prober writes for round trip `i` of batch `b` (odd); the answer is one more.
fn probe_value(b: u32, i: u32) -> u32 {
    2 * (b * PROBE_ROUNDS + i) + 1
}

/// The calling thread's side of the probe: once a spinner has claimed it, writes odd values
/// to `probe` and waits for the spinner's even reply, [`PROBE_ROUNDS`] times per batch; the
/// mean round trip of the fastest of [`PROBE_BATCHES`] batches. Costs ~2-10 us per run.
fn probe_round_trip(probe: &AtomicU32, claimed: &AtomicBool) -> Option<Duration> {
    // No spinner yet: claim the probe ourselves (so a late spinner does not wait for it)
    // unless one claimed it in the meantime.
    if !wait_for(|| claimed.load(Ordering::Acquire)) && !claimed.swap(true, Ordering::AcqRel) {
        return None;
    }
    let mut best: Option<Duration> = None;
    for b in 0..PROBE_BATCHES {
        let start = Instant::now();
        for i in 0..PROBE_ROUNDS {
            let v = probe_value(b, i);
            probe.store(v, Ordering::Release);
            if !wait_for(|| probe.load(Ordering::Acquire) == v + 1) {
                return None;
            }
        }
        let mean = start.elapsed() / PROBE_ROUNDS;
        best = Some(best.map_or(mean, |d| d.min(mean)));
    }
    best
}

/// The spinner's side of [`probe_round_trip`]: answers each odd value with the next even one.
fn answer_probe(probe: &AtomicU32) {
    for b in 0..PROBE_BATCHES {
        for i in 0..PROBE_ROUNDS {
            let v = probe_value(b, i);
            if !wait_for(|| probe.load(Ordering::Acquire) == v) {
                return;
            }
            probe.store(v + 1, Ordering::Release);
        }
    }
}

/// The root values a step reads and writes, for the memory planner.
pub fn step_use(s: &Step) -> StepUse {
    let srcs: Vec<&Src> = match &s.kind {
        Kind::Conv { x, r, gate, .. } => std::iter::once(x)
            .chain(r)
            .chain(gate.iter().flat_map(|g| g.w.iter().flatten()))
            .collect(),
        Kind::Se { ins, .. } => ins.iter().flatten().collect(),
        Kind::Unary { x, .. } | Kind::Mean { x, .. } | Kind::Pool { x, .. } => vec![x],
        Kind::Binary { a, b, .. } => vec![a, b],
        Kind::Gemm { a, .. } => vec![a],
        Kind::Concat { ins, .. } => ins.iter().collect(),
        Kind::Map { ins, .. } => ins.iter().collect(),
        Kind::MatMul { a, b, .. } => vec![a, b],
        Kind::GemmGeneral { a, b, c, .. } => [a, b].into_iter().chain(c).collect(),
        Kind::ConvDyn { x, w, b, r, .. } => [x, w].into_iter().chain(b).chain(r).collect(),
    };
    let reads = srcs
        .into_iter()
        .filter_map(|s| match s {
            Src::Slot(v) => Some(*v),
            Src::Weight(_) => None,
        })
        .collect();
    StepUse {
        reads,
        writes: (s.out, s.out_len),
    }
}

/// Scratch elements a step needs on `threads` threads (im2col columns, SE vectors).
pub fn scratch_len(s: &Step, threads: usize) -> usize {
    match &s.kind {
        Kind::Conv { conv, gate, .. } => {
            conv.shape.scratch_len_on(threads)
                + gate
                    .as_ref()
                    .map_or(0, |g| conv.shape.n * conv.shape.m + g.scratch)
        }
        Kind::Se { scratch, .. } => *scratch,
        Kind::GemmGeneral {
            ta, mnk: (m, n, k), ..
        } => k * n + if ta.is_some() { m * k } else { 0 },
        Kind::ConvDyn { shape, .. } => shape.scratch_len_on(threads),
        _ => 0,
    }
}

impl CpuProgram {
    /// Runs the program; `install`: on its own thread pool (else on the current thread, which
    /// is a worker of the per-image program's pool).
    pub(super) fn execute(
        &self,
        inputs: &HashMap<String, Tensor>,
        mut times: Option<&mut Vec<StepTime>>,
        install: bool,
    ) -> Result<Vec<(String, Tensor)>, CpuError> {
        if let Some(inner) = &self.per_image {
            return self.execute_per_image(inner, inputs, times);
        }
        // One set of buffers per concurrent run (the per-image mode runs one per thread).
        let mut bufs = self
            .arena
            .lock()
            .ok()
            .and_then(|mut a| a.pop())
            .unwrap_or_default();
        bufs.resize_with(self.plan.slot_len.len() + 2, Vec::new);
        for (b, &len) in bufs.iter_mut().zip(&self.plan.slot_len) {
            b.resize(len, 0.0);
        }
        let scratch_slot = self.plan.slot_len.len();
        bufs[scratch_slot].resize(self.scratch_len, 0.0);
        let mut means = std::mem::take(&mut bufs[scratch_slot + 1]);
        means.resize(self.means_len, 0.0);
        self.check_inputs(inputs)?;
        for (name, root, _) in &self.inputs {
            let t = inputs.get(name).map(Tensor::data).unwrap_or_default();
            let slot = self.slot(*root, name)?;
            bufs[slot][..t.len()].copy_from_slice(t);
        }
        let mut steps = |far: bool| -> Result<(), CpuError> {
            for s in &self.steps {
                let t0 = Instant::now();
                let slot = self.slot(s.out, &s.node)?;
                let mut out = std::mem::take(&mut bufs[slot]);
                let mut scratch = std::mem::take(&mut bufs[scratch_slot]);
                let par = Par {
                    threads: self.threads,
                    far,
                };
                let r = self.step(
                    s,
                    &bufs,
                    &mut out[..s.out_len],
                    &mut scratch,
                    &mut means,
                    par,
                );
                bufs[slot] = out;
                bufs[scratch_slot] = scratch;
                r?;
                if let Some(t) = times.as_deref_mut() {
                    t.push(StepTime {
                        node: s.node.clone(),
                        op: s.op,
                        kernel: s.kernel.clone(),
                        seconds: t0.elapsed().as_secs_f64(),
                    });
                }
            }
            Ok(())
        };
        if install {
            self.pool.install(|| {
                with_spinning_workers(self.threads, |rtt| {
                    steps(match self.placement {
                        Placement::Probe => is_far(rtt),
                        Placement::Shared => false,
                        Placement::Far => true,
                    })
                })
            })?;
        } else {
            steps(false)?;
        }
        let mut outs = Vec::with_capacity(self.outputs.len());
        for (name, root, shape) in &self.outputs {
            let slot = self.slot(*root, name)?;
            let n: usize = shape.iter().product();
            let t = Tensor::new(shape.clone(), bufs[slot][..n].to_vec()).map_err(|e| {
                CpuError::Exec {
                    node: name.clone(),
                    source: e,
                }
            })?;
            outs.push((name.clone(), t));
        }
        for (pos, name, t) in &self.const_outputs {
            outs.insert((*pos).min(outs.len()), (name.clone(), t.clone()));
        }
        if let Ok(mut a) = self.arena.lock() {
            bufs[self.plan.slot_len.len() + 1] = means;
            a.push(bufs);
        }
        Ok(outs)
    }

    /// Every input present with the compiled shape, and no other.
    fn check_inputs(&self, inputs: &HashMap<String, Tensor>) -> Result<(), CpuError> {
        for (name, _, shape) in &self.inputs {
            let t = inputs.get(name).ok_or_else(|| CpuError::Input {
                input: name.clone(),
                msg: "missing".into(),
            })?;
            if t.shape() != shape.as_slice() {
                return Err(CpuError::Input {
                    input: name.clone(),
                    msg: format!("shape {:?} differs from the compiled {shape:?}", t.shape()),
                });
            }
        }
        match inputs
            .keys()
            .find(|k| !self.inputs.iter().any(|(n, _, _)| n == *k))
        {
            Some(extra) => Err(CpuError::Input {
                input: extra.clone(),
                msg: "the model has no such input".into(),
            }),
            None => Ok(()),
        }
    }

    /// The per-image mode ([`super::image_separable`]): every image of the batch runs the
    /// batch-1 program `inner` on one thread of the pool, images taken in turn by whichever
    /// thread is free, so no tensor is ever shared between threads and each image's
    /// activations stay in its core's cache from layer to layer. With `times`, each step's time
    /// summed over the images and divided by the threads (the wall time it accounts for).
    fn execute_per_image(
        &self,
        inner: &CpuProgram,
        inputs: &HashMap<String, Tensor>,
        times: Option<&mut Vec<StepTime>>,
    ) -> Result<Vec<(String, Tensor)>, CpuError> {
        self.check_inputs(inputs)?;
        let batch = self.batch.max(1);
        let profiled = times.is_some();
        let image = |i: usize| -> Result<(NamedTensors, Vec<StepTime>), CpuError> {
            let mut feed = HashMap::with_capacity(inner.inputs.len());
            for (name, _, shape) in &inner.inputs {
                let data = inputs.get(name).map(Tensor::data).unwrap_or_default();
                let per = data.len() / batch;
                let t = Tensor::new(shape.clone(), data[i * per..(i + 1) * per].to_vec()).map_err(
                    |e| CpuError::Exec {
                        node: name.clone(),
                        source: e,
                    },
                )?;
                feed.insert(name.clone(), t);
            }
            let mut t = Vec::new();
            let out = inner.execute(&feed, profiled.then_some(&mut t), false)?;
            Ok((out, t))
        };
        let per_image: Vec<(NamedTensors, Vec<StepTime>)> = self.pool.install(|| {
            (0..batch)
                .into_par_iter()
                .map(image)
                .collect::<Result<Vec<_>, CpuError>>()
        })?;
        let mut outs = Vec::with_capacity(self.outputs.len());
        for (k, (name, _, shape)) in self.outputs.iter().enumerate() {
            let mut data = Vec::with_capacity(shape.iter().product());
            for (o, _) in &per_image {
                let (_, t) = o.get(k).ok_or_else(|| CpuError::Unsupported {
                    node: name.clone(),
                    msg: "an image's run lacks this output".into(),
                })?;
                data.extend_from_slice(t.data());
            }
            let t = Tensor::new(shape.clone(), data).map_err(|e| CpuError::Exec {
                node: name.clone(),
                source: e,
            })?;
            outs.push((name.clone(), t));
        }
        if let Some(times) = times {
            let mut sum: Vec<StepTime> = per_image
                .first()
                .map(|(_, t)| t.clone())
                .unwrap_or_default();
            for (_, t) in per_image.iter().skip(1) {
                for (a, b) in sum.iter_mut().zip(t) {
                    a.seconds += b.seconds;
                }
            }
            let threads = self.threads.clamp(1, batch) as f64;
            for s in &mut sum {
                s.seconds /= threads;
            }
            times.extend(sum);
        }
        Ok(outs)
    }

    /// Runs the SE kernel on all images at once, or on one image per task across the pool's
    /// threads (each with its own scratch) when there are several of both. With
    /// `pre_squeezed`, the channel means (`C` per image, from the conv epilogue) are copied
    /// behind the `Cr` values of `z` in the kernel's scratch.
    #[allow(clippy::too_many_arguments)]
    fn se_images(
        &self,
        k: &excite_cpu::Kernel,
        srcs: &[&[f32]],
        (imgs, c, cr): (usize, usize, usize),
        pre_squeezed: Option<&[f32]>,
        scratch_len: usize,
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), CpuError> {
        let fill = |scr: &mut [f32], means: &[f32]| -> Result<(), CpuError> {
            let dst = scr.get_mut(cr..cr + means.len());
            match dst {
                Some(d) => {
                    d.copy_from_slice(means);
                    Ok(())
                }
                None => Err(CpuError::Unsupported {
                    node: k.name().to_string(),
                    msg: "SE scratch too small for the channel means".into(),
                }),
            }
        };
        let call = |n: usize, srcs: [&[f32]; 6], out: &mut [f32], scratch: &mut [f32]| {
            let mut args: Vec<Arg<'_>> = srcs.into_iter().map(Arg::In).collect();
            args.push(Arg::Out(out));
            args.push(Arg::Out(scratch));
            k.call(n, &mut args)
        };
        let &[x, w1, b1, w2, b2, r] = srcs else {
            return Err(CpuError::Unsupported {
                node: k.name().to_string(),
                msg: format!("SE block with {} operands", srcs.len()),
            });
        };
        if self.threads < 2 || imgs < 2 {
            if let Some(m) = pre_squeezed {
                fill(scratch, m.get(..imgs * c).unwrap_or(m))?;
            }
            return Ok(call(imgs, [x, w1, b1, w2, b2, r], out, scratch)?);
        }
        let chw = out.len() / imgs;
        out.par_chunks_mut(chw.max(1))
            .enumerate()
            .try_for_each(|(i, y)| {
                let mut scr = vec![
                    0f32;
                    if pre_squeezed.is_some() {
                        cr + c
                    } else {
                        scratch_len
                    }
                ];
                if let Some(m) = pre_squeezed {
                    fill(&mut scr, m.get(i * c..(i + 1) * c).unwrap_or(&[]))?;
                }
                let srcs = [image(x, i, chw), w1, b1, w2, b2, image(r, i, chw)];
                Ok(call(1, srcs, y, &mut scr)?)
            })
    }

    /// A convolution step's kernels, borrowed from the program.
    fn conv_kernels(&self, epi: usize, ks: &ConvKs) -> ConvKernels<'_> {
        ConvKernels {
            epilogue: &self.kernels[epi],
            im2col: ks.im2col.map(|k| &self.kernels[k]),
            taps: ks.taps.map(|k| &self.kernels[k]),
            winograd: ks.wino.map(|(i, o)| (&self.kernels[i], &self.kernels[o])),
            depthwise: ks.depthwise.map(|k| &self.kernels[k]),
        }
    }

    fn slot(&self, root: usize, node: &str) -> Result<usize, CpuError> {
        self.plan
            .slot_of
            .get(root)
            .copied()
            .flatten()
            .ok_or_else(|| CpuError::Unsupported {
                node: node.to_string(),
                msg: "value has no planned buffer".into(),
            })
    }

    fn read<'a>(
        &self,
        bufs: &'a [Vec<f32>],
        s: &'a Src,
        node: &str,
    ) -> Result<&'a [f32], CpuError> {
        match s {
            Src::Weight(t) => Ok(t.data()),
            Src::Slot(v) => Ok(&bufs[self.slot(*v, node)?]),
        }
    }

    fn step<'s>(
        &'s self,
        s: &'s Step,
        bufs: &'s [Vec<f32>],
        out: &mut [f32],
        scratch: &mut [f32],
        means: &mut [f32],
        par: Par,
    ) -> Result<(), CpuError> {
        let rd = |src: &'s Src| -> Result<&'s [f32], CpuError> { self.read(bufs, src, &s.node) };
        let n = out.len();
        match &s.kind {
            Kind::Conv {
                conv,
                epi,
                ks,
                epi_spec,
                x,
                r,
                gate,
                means_at,
            } => {
                let r = r.as_ref().map(rd).transpose()?.unwrap_or(&[]);
                let x = rd(x)?;
                let conv_len = conv.shape.scratch_len_on(self.threads);
                if scratch.len() < conv_len {
                    return Err(CpuError::Unsupported {
                        node: s.node.clone(),
                        msg: "conv scratch too small".into(),
                    });
                }
                // Without an SE gate the conv gets the whole scratch buffer: then a Winograd
                // conv on threads far apart gives each thread the same region in every conv of
                // the run (`winograd::run_image`), so its lines stay in that thread's cache.
                let split = if gate.is_some() {
                    conv_len
                } else {
                    scratch.len()
                };
                let (conv_scr, rest) = scratch.split_at_mut(split);
                let g: &[f32] = match gate {
                    None => &[],
                    Some(gt) => {
                        let nm = conv.shape.n * conv.shape.m;
                        if rest.len() < nm {
                            return Err(CpuError::Unsupported {
                                node: s.node.clone(),
                                msg: "SE gate scratch too small".into(),
                            });
                        }
                        let (g, gscr) = rest.split_at_mut(nm);
                        let get = |w: &'s Option<Src>| -> Result<&'s [f32], CpuError> {
                            Ok(w.as_ref().map(rd).transpose()?.unwrap_or(&[]))
                        };
                        let [w13, b13, w2, b2] = &gt.w;
                        // The conv input's channel means, when its producer computed them.
                        let (src, presq) = match gt.presq_at {
                            Some(at) => {
                                let len = conv.shape.n * gt.c_in;
                                let m = means.get(at..at + len).ok_or_else(|| {
                                    CpuError::Unsupported {
                                        node: s.node.clone(),
                                        msg: "channel means outside the means buffer".into(),
                                    }
                                })?;
                                (m, true)
                            }
                            None => (x, false),
                        };
                        let ws = [src, get(w13)?, get(b13)?, get(w2)?, get(b2)?];
                        let ks = gt.split.map(|k| &self.kernels[k]);
                        let dims = (conv.shape.n, gt.c_in, gt.sh, presq);
                        let full = &self.kernels[gt.k];
                        super::se_split::gates(full, ks, ws, dims, self.threads, g, gscr)?;
                        &*g
                    }
                };
                let means: &mut [f32] = if epi_spec.means {
                    means.get_mut(*means_at..).unwrap_or_default()
                } else {
                    &mut []
                };
                let reads = Reads { r, g };
                let k = self.conv_kernels(*epi, ks);
                conv.run(k, x, reads, out, means, conv_scr, par)?;
            }
            Kind::Se {
                k,
                split,
                ins,
                n: imgs,
                scratch: sl,
                sh,
                pre_squeezed,
                ..
            } => {
                let mut srcs: Vec<&[f32]> = Vec::with_capacity(6);
                for i in ins {
                    srcs.push(i.as_ref().map(rd).transpose()?.unwrap_or(&[]));
                }
                let pre = pre_squeezed.then_some(&*means);
                if self.threads >= 2 && *imgs < self.threads && sh.c >= 2 && sh.hw > 0 {
                    let ks = split.map(|i| &self.kernels[i]);
                    super::se_split::run(ks, &srcs, (*imgs, *sh), pre, self.threads, out, scratch)?;
                } else {
                    let dims = (*imgs, sh.c, sh.cr);
                    self.se_images(&self.kernels[*k], &srcs, dims, pre, *sl, out, scratch)?;
                }
            }
            Kind::Unary { k, x } => {
                self.kernels[*k].call(n, &mut [Arg::In(rd(x)?), Arg::Out(out)])?;
            }
            Kind::Binary { k, a, b } => {
                let args = &mut [Arg::In(rd(a)?), Arg::In(rd(b)?), Arg::Out(out)];
                self.kernels[*k].call(n, args)?;
            }
            Kind::Mean { k, x, planes } => {
                self.kernels[*k].call(*planes, &mut [Arg::In(rd(x)?), Arg::Out(out)])?;
            }
            Kind::Pool {
                k,
                x,
                dims,
                rdiv,
                cdiv,
                row,
            } => {
                let [planes, h, w, oh, ow] = *dims;
                let (hw, ohw) = ((h * w).max(1), (oh * ow).max(1));
                let x = rd(x)?;
                // Far apart, one chunk per thread: the first (on this thread) and the second
                // (stolen by the other) then match how the conv before split its output
                // channels, so each thread pools planes it wrote itself.
                let chunks = self.threads.max(1) * if par.far { 1 } else { 4 };
                let per = planes.div_ceil(chunks).max(1);
                let k = &self.kernels[*k];
                let out = out.get_mut(..planes * oh * ow).unwrap_or_default();
                out.par_chunks_mut(per * ohw)
                    .enumerate()
                    .try_for_each(|(i, yc)| {
                        let xc = x.get(i * per * hw..).unwrap_or_default();
                        let mut buf = vec![0f32; *row];
                        let count = yc.len() / ohw;
                        let args = &mut [
                            Arg::In(xc),
                            Arg::In(rdiv),
                            Arg::In(cdiv),
                            Arg::Out(yc),
                            Arg::Out(&mut buf),
                        ];
                        k.call(count, args)
                    })?;
            }
            Kind::Gemm { a, mnk, b, bias } => {
                let (m, nn, k) = *mnk;
                if bias.is_empty() {
                    out.fill(0.0);
                } else {
                    out.chunks_exact_mut(nn)
                        .for_each(|row| row.copy_from_slice(bias));
                }
                sgemm((m, nn, k), out, nn, rd(a)?, k, b, nn, true, self.threads)?;
            }
            Kind::Concat { ins, outer, inner } => {
                let outer = *outer;
                let row: usize = inner.iter().sum();
                if outer * row != n {
                    return Err(CpuError::Unsupported {
                        node: s.node.clone(),
                        msg: format!("concat of {outer} x {row} into {n} elements"),
                    });
                }
                let mut at = 0;
                for (src, &len) in ins.iter().zip(inner) {
                    let x = rd(src)?;
                    if x.len() < outer * len {
                        return Err(CpuError::Unsupported {
                            node: s.node.clone(),
                            msg: "concat input shorter than its shape".into(),
                        });
                    }
                    for o in 0..outer {
                        let dst = &mut out[o * row + at..o * row + at + len];
                        dst.copy_from_slice(&x[o * len..(o + 1) * len]);
                    }
                    at += len;
                }
            }
            Kind::Map { k, ins } => {
                let mut args: Vec<Arg<'_>> = Vec::with_capacity(ins.len() + 1);
                for src in ins {
                    args.push(Arg::In(rd(src)?));
                }
                args.push(Arg::Out(out));
                self.kernels[*k].call(1, &mut args)?;
            }
            Kind::MatMul { a, b, mnk, batches } => {
                let (m, nn, k) = *mnk;
                let (a, b) = (rd(a)?, rd(b)?);
                let short = || CpuError::Unsupported {
                    node: s.node.clone(),
                    msg: "MatMul operand shorter than its shape".into(),
                };
                for (i, &(oa, ob)) in batches.iter().enumerate() {
                    let y = out.get_mut(i * m * nn..).ok_or_else(short)?;
                    let (a, b) = (
                        a.get(oa..).ok_or_else(short)?,
                        b.get(ob..).ok_or_else(short)?,
                    );
                    sgemm((m, nn, k), y, nn, a, k, b, nn, false, self.threads)?;
                }
            }
            Kind::GemmGeneral {
                a,
                b,
                c,
                ta,
                tb,
                tc,
                mnk,
            } => {
                let (m, nn, k) = *mnk;
                let (bt, rest) = scratch.split_at_mut((k * nn).min(scratch.len()));
                self.kernels[*tb].call(1, &mut [Arg::In(rd(b)?), Arg::Out(bt)])?;
                let a: &[f32] = match ta {
                    Some(t) => {
                        let at = rest.get_mut(..m * k).ok_or_else(|| CpuError::Unsupported {
                            node: s.node.clone(),
                            msg: "Gemm scratch too small".into(),
                        })?;
                        self.kernels[*t].call(1, &mut [Arg::In(rd(a)?), Arg::Out(at)])?;
                        at
                    }
                    None => rd(a)?,
                };
                match (c, tc) {
                    (Some(c), Some(t)) => {
                        self.kernels[*t].call(1, &mut [Arg::In(rd(c)?), Arg::Out(out)])?;
                    }
                    _ => out.fill(0.0),
                }
                sgemm((m, nn, k), out, nn, a, k, bt, nn, true, self.threads)?;
            }
            Kind::ConvDyn {
                shape,
                epi,
                ks,
                x,
                w,
                b,
                r,
            } => {
                let bias = b.as_ref().map(rd).transpose()?.unwrap_or(&[]).to_vec();
                let conv = ConvKernel::new(shape.clone(), rd(w)?.to_vec(), bias);
                let r = r.as_ref().map(rd).transpose()?.unwrap_or(&[]);
                let reads = Reads { r, g: &[] };
                let k = self.conv_kernels(*epi, ks);
                conv.run(k, rd(x)?, reads, out, &mut [], scratch, par)?;
            }
        }
        Ok(())
    }
}

/// Image `i` of a batched buffer with `chw` elements per image; empty when absent (the kernel's
/// length check then refuses the call if the operand was required).
fn image(s: &[f32], i: usize, chw: usize) -> &[f32] {
    s.get(i * chw..(i + 1) * chw).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe's wait reads the clock only every 64 polls, yet still gives up after
    /// [`PROBE_WAIT`] (and not before), and returns at once when the condition holds.
    #[test]
    fn wait_for_gives_up_after_the_probe_wait() {
        let start = Instant::now();
        assert!(!wait_for(|| false));
        let waited = start.elapsed();
        assert!(
            waited >= PROBE_WAIT && waited < Duration::from_secs(1),
            "{waited:?}"
        );
        let polls = std::cell::Cell::new(0u32);
        assert!(wait_for(|| {
            polls.set(polls.get() + 1);
            polls.get() > 100
        }));
        assert_eq!(polls.get(), 101);
    }

    /// One thread: no probe, never far.
    #[test]
    fn one_thread_is_never_far() {
        assert_eq!(with_spinning_workers(1, |rtt| rtt), None);
    }

    /// The probe gives up when the pool's other thread never comes (here: blocked in a job of
    /// its own): `work` still runs, "not far", within a few probe waits, and the late spinner
    /// does not wait for a probe nobody answers.
    #[test]
    fn probe_gives_up_when_no_spinner_comes() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("pool");
        let (block_tx, block_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        pool.spawn(move || {
            started_tx.send(()).ok();
            block_rx.recv().ok();
        });
        started_rx.recv().expect("blocking job started");
        let start = Instant::now();
        let (rtt, ran) = pool.install(|| with_spinning_workers(2, |rtt| (rtt, true)));
        let waited = start.elapsed();
        block_tx.send(()).expect("unblock");
        assert!(ran && rtt.is_none() && !is_far(rtt));
        assert!(waited < Duration::from_secs(1), "{waited:?}");
    }

    /// With both threads free the probe measures a round trip: tried until one run has one
    /// (on a test machine busy with other tests a spinner can come too late, or the pool's
    /// second thread be asleep, in many runs in a row), for at most 5 s; every measurement is
    /// under the probe's give-up time. Whether it is "far" depends on where the OS put the
    /// threads.
    #[test]
    fn probe_with_two_free_threads_measures_a_round_trip() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("pool");
        let start = Instant::now();
        let mut rtts = Vec::new();
        while rtts.is_empty() && start.elapsed() < Duration::from_secs(5) {
            rtts.extend((0..20).filter_map(|_| pool.install(|| with_spinning_workers(2, |r| r))));
        }
        assert!(!rtts.is_empty());
        assert!(
            rtts.iter().all(|d| *d > Duration::ZERO && *d < PROBE_WAIT),
            "{rtts:?}"
        );
    }
}
