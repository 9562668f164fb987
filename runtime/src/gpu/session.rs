//! [`GpuSession`]: device, buffers, pipelines and bind groups made once; one encoder per run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use excite_ir::{Graph, Tensor};
use excite_wgsl::{BufferKind, ENTRY_POINT, Limits, WgslProgram};
use pollster::block_on;

use super::GpuError;

/// Where a [`Timing`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimingSource {
    /// GPU timestamp queries around the compute pass.
    GpuTimestamps,
    /// Wall clock around submit and wait.
    WallClock,
}

/// Per-inference times of a timed run.
#[derive(Clone, Debug)]
pub struct Timing {
    pub source: TimingSource,
    /// Seconds per inference, one entry per timed iteration.
    pub seconds: Vec<f64>,
}

impl Timing {
    pub fn mean(&self) -> f64 {
        self.seconds.iter().sum::<f64>() / self.seconds.len().max(1) as f64
    }

    pub fn min(&self) -> f64 {
        self.seconds.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

struct Timestamps {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
    period_ns: f64,
}

/// Everything made once per session.
struct Resources {
    buffers: Vec<wgpu::Buffer>,
    pipelines: Vec<wgpu::ComputePipeline>,
    bind_groups: Vec<wgpu::BindGroup>,
    readback: Vec<wgpu::Buffer>,
    timestamps: Option<Timestamps>,
}

/// A compiled graph resident on a GPU.
pub struct GpuSession {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: String,
    program: WgslProgram,
    buffers: Vec<wgpu::Buffer>,
    pipelines: Vec<wgpu::ComputePipeline>,
    bind_groups: Vec<wgpu::BindGroup>,
    readback: Vec<wgpu::Buffer>,
    timestamps: Option<Timestamps>,
    lost: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for GpuSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuSession")
            .field("adapter", &self.adapter)
            .field("dispatches", &self.program.dispatches.len())
            .finish_non_exhaustive()
    }
}

fn bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

impl GpuSession {
    /// Compiles `g` (verified, normally optimised) for `batch` and makes it ready on the best
    /// adapter found.
    pub fn new(g: &Graph, batch: usize) -> Result<GpuSession, GpuError> {
        Self::new_tuned(g, batch, |_| {})
    }

    /// [`GpuSession::new`] with the compiler's tuning knobs (`Limits`, after the adapter's
    /// limits and the `EXCITE_GPU_*` environment) changed by `tune`: for tests and A/B runs of
    /// kernel variants.
    pub fn new_tuned(
        g: &Graph,
        batch: usize,
        tune: impl FnOnce(&mut Limits),
    ) -> Result<GpuSession, GpuError> {
        // WGPU_BACKEND (vulkan, metal, dx12, gl) and friends pick the backends, as in wgpu.
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        }))
        .map_err(|_| GpuError::NoAdapter)?;
        let limits = adapter.limits();
        let features = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        let (device, queue) = block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("excite"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| GpuError::RequestDevice(e.to_string()))?;
        let lost = Arc::new(Mutex::new(None));
        let sink = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut l) = sink.lock() {
                *l = Some(format!("{reason:?}: {msg}"));
            }
        });
        let sink = lost.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut l) = sink.lock() {
                l.get_or_insert_with(|| format!("uncaptured error: {e}"));
            }
        }));
        // The device's own limits, then the tuning knobs from the environment, then `tune`.
        let mut wl = Limits {
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
            max_buffer_size: limits.max_buffer_size,
            max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
            max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
            max_storage_buffers_per_shader_stage: limits.max_storage_buffers_per_shader_stage,
            ..Limits::default()
        }
        .with_env_knobs();
        tune(&mut wl);
        let program = excite_wgsl::compile(g, batch, &wl)?;
        let info = adapter.get_info();
        let adapter = format!("{} ({:?})", info.name, info.backend);
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let made = Self::build(&device, &queue, &program, features);
        let errs = [block_on(oom.pop()), block_on(scope.pop())];
        if let Some(e) = errs.into_iter().flatten().next() {
            return Err(GpuError::Device {
                during: "creating buffers and pipelines",
                msg: e.to_string(),
            });
        }
        let Resources {
            buffers,
            pipelines,
            bind_groups,
            readback,
            timestamps,
        } = made;
        Ok(GpuSession {
            device,
            queue,
            adapter,
            program,
            buffers,
            pipelines,
            bind_groups,
            readback,
            timestamps,
            lost,
        })
    }

    fn build(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        p: &WgslProgram,
        features: wgpu::Features,
    ) -> Resources {
        let usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC;
        let buffers: Vec<_> = p
            .buffers
            .iter()
            .map(|b| {
                let buf = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&b.label),
                    size: b.bytes,
                    usage,
                    mapped_at_creation: false,
                });
                if let BufferKind::Weight(data) = &b.kind {
                    queue.write_buffer(&buf, 0, &bytes(data));
                }
                buf
            })
            .collect();
        let pipelines: Vec<_> = p
            .modules
            .iter()
            .map(|m| {
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(&m.name),
                    source: wgpu::ShaderSource::Wgsl(m.source.as_str().into()),
                });
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&m.name),
                    layout: None,
                    module: &module,
                    entry_point: Some(ENTRY_POINT),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .collect();
        let bind_groups = p
            .dispatches
            .iter()
            .map(|d| {
                let entries: Vec<_> = d
                    .bindings
                    .iter()
                    .enumerate()
                    .map(|(i, &b)| wgpu::BindGroupEntry {
                        binding: i as u32,
                        resource: buffers[b].as_entire_binding(),
                    })
                    .collect();
                device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(&d.node),
                    layout: &pipelines[d.module].get_bind_group_layout(0),
                    entries: &entries,
                })
            })
            .collect();
        let readback = p
            .outputs
            .iter()
            .map(|o| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&o.name),
                    size: (o.shape.iter().product::<usize>().max(1) * 4) as u64,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .collect();
        let timestamps = features
            .contains(wgpu::Features::TIMESTAMP_QUERY)
            .then(|| Timestamps {
                set: device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("excite timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2,
                }),
                resolve: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("timestamps"),
                    size: 16,
                    usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                }),
                read: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("timestamps read"),
                    size: 16,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                period_ns: f64::from(queue.get_timestamp_period()),
            });
        Resources {
            buffers,
            pipelines,
            bind_groups,
            readback,
            timestamps,
        }
    }

    /// The adapter's name and backend.
    pub fn adapter(&self) -> &str {
        &self.adapter
    }

    /// The compiled program (modules, buffers, dispatches).
    pub fn program(&self) -> &WgslProgram {
        &self.program
    }

    /// Fills every scratch buffer with NaN, so an output element no kernel writes shows up.
    pub fn poison(&self) {
        for (b, desc) in self.buffers.iter().zip(&self.program.buffers) {
            if matches!(desc.kind, BufferKind::Scratch) {
                let n = (desc.bytes / 4) as usize;
                self.queue.write_buffer(b, 0, &bytes(&vec![f32::NAN; n]));
            }
        }
    }

    fn check_lost(&self) -> Result<(), GpuError> {
        match self.lost.lock().ok().and_then(|l| l.clone()) {
            Some(msg) => Err(GpuError::DeviceLost(msg)),
            None => Ok(()),
        }
    }

    /// Runs one inference; returns the graph outputs in order.
    pub fn run(&self, inputs: &HashMap<String, Tensor>) -> Result<Vec<(String, Tensor)>, GpuError> {
        self.submit(inputs, false)?;
        let mut out = Vec::new();
        for (o, rb) in self.program.outputs.iter().zip(&self.readback) {
            let mut data = self.read(rb)?;
            // Readback buffers hold at least one element; an empty output keeps none.
            data.truncate(o.shape.iter().product());
            let t = Tensor::new(o.shape.clone(), data).map_err(|e| GpuError::Device {
                during: "reading outputs",
                msg: e.to_string(),
            })?;
            out.push((o.name.clone(), t));
        }
        Ok(out)
    }

    /// Times `iters` inferences after `warmup` untimed ones.
    pub fn time(
        &self,
        inputs: &HashMap<String, Tensor>,
        warmup: usize,
        iters: usize,
    ) -> Result<Timing, GpuError> {
        for _ in 0..warmup {
            self.submit(inputs, false)?;
        }
        let mut seconds = Vec::with_capacity(iters);
        for _ in 0..iters {
            let t0 = Instant::now();
            let gpu = self.submit(inputs, true)?;
            seconds.push(gpu.unwrap_or_else(|| t0.elapsed().as_secs_f64()));
        }
        let source = if self.timestamps.is_some() {
            TimingSource::GpuTimestamps
        } else {
            TimingSource::WallClock
        };
        Ok(Timing { source, seconds })
    }

    /// Runs one inference with every dispatch in its own timed compute pass and returns
    /// `(node, module, seconds)` per dispatch, in execution order. Needs timestamp queries.
    /// Separate passes add a little synchronisation, so the sum exceeds [`GpuSession::time`].
    pub fn profile(
        &self,
        inputs: &HashMap<String, Tensor>,
    ) -> Result<Vec<(String, String, f64)>, GpuError> {
        let Some(period_ns) = self.timestamps.as_ref().map(|t| t.period_ns) else {
            return Err(GpuError::Device {
                during: "profiling",
                msg: format!(
                    "the adapter {} has no timestamp queries; per-kernel times need them",
                    self.adapter
                ),
            });
        };
        // One query set per chunk: wgpu caps a set at 4096 queries.
        const CHUNK: usize = 2048;
        let mut times = Vec::with_capacity(self.program.dispatches.len());
        for (ci, chunk) in self.program.dispatches.chunks(CHUNK).enumerate() {
            let count = (2 * chunk.len()) as u32;
            let set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("excite profile"),
                ty: wgpu::QueryType::Timestamp,
                count,
            });
            let size = u64::from(count) * 8;
            let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile"),
                size,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let read = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile read"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            self.upload(inputs)?;
            let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
            let mut enc = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("excite profile"),
                });
            // Earlier chunks' dispatches run untimed first, so every chunk sees real data.
            if ci > 0 {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("excite"),
                    timestamp_writes: None,
                });
                let done = &self.program.dispatches[..ci * CHUNK];
                for (d, bg) in done.iter().zip(&self.bind_groups) {
                    pass.set_pipeline(&self.pipelines[d.module]);
                    pass.set_bind_group(0, bg, &[]);
                    let [x, y, z] = d.workgroups;
                    pass.dispatch_workgroups(x, y, z);
                }
            }
            for (i, d) in chunk.iter().enumerate() {
                let bg = &self.bind_groups[ci * CHUNK + i];
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(&d.node),
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: &set,
                        beginning_of_pass_write_index: Some(2 * i as u32),
                        end_of_pass_write_index: Some(2 * i as u32 + 1),
                    }),
                });
                pass.set_pipeline(&self.pipelines[d.module]);
                pass.set_bind_group(0, bg, &[]);
                let [x, y, z] = d.workgroups;
                pass.dispatch_workgroups(x, y, z);
            }
            enc.resolve_query_set(&set, 0..count, &resolve, 0);
            enc.copy_buffer_to_buffer(&resolve, 0, &read, 0, size);
            self.queue.submit([enc.finish()]);
            if let Some(e) = block_on(scope.pop()) {
                return Err(GpuError::Device {
                    during: "recording a profiled inference",
                    msg: e.to_string(),
                });
            }
            let raw = self.read_raw(&read)?;
            self.check_lost()?;
            let tick = |i: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&raw[i * 8..i * 8 + 8]);
                u64::from_le_bytes(b)
            };
            for (i, d) in chunk.iter().enumerate() {
                let dt = tick(2 * i + 1).saturating_sub(tick(2 * i)) as f64 * period_ns * 1e-9;
                let module = self.program.modules[d.module].name.clone();
                times.push((d.node.clone(), module, dt));
            }
        }
        Ok(times)
    }

    /// Checks the inputs against the program's and writes them to their buffers.
    fn upload(&self, inputs: &HashMap<String, Tensor>) -> Result<(), GpuError> {
        for io in &self.program.inputs {
            let t = inputs.get(&io.name).ok_or_else(|| GpuError::Input {
                name: io.name.clone(),
                msg: format!("missing; expected shape {:?}", io.shape),
            })?;
            if t.shape() != io.shape.as_slice() {
                return Err(GpuError::Input {
                    name: io.name.clone(),
                    msg: format!(
                        "expected shape {:?} (batch {}), got {:?}",
                        io.shape,
                        self.program.batch,
                        t.shape()
                    ),
                });
            }
            self.queue
                .write_buffer(&self.buffers[io.buffer], 0, &bytes(t.data()));
        }
        if let Some(extra) = inputs
            .keys()
            .find(|k| !self.program.inputs.iter().any(|i| &i.name == *k))
        {
            return Err(GpuError::Input {
                name: extra.clone(),
                msg: "the model has no such input".into(),
            });
        }
        Ok(())
    }

    /// Uploads inputs, records and submits one encoder, waits; returns GPU seconds if timed.
    fn submit(
        &self,
        inputs: &HashMap<String, Tensor>,
        timed: bool,
    ) -> Result<Option<f64>, GpuError> {
        self.check_lost()?;
        self.upload(inputs)?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let ts = self.timestamps.as_ref().filter(|_| timed);
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("excite inference"),
            });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("excite"),
                timestamp_writes: ts.map(|t| wgpu::ComputePassTimestampWrites {
                    query_set: &t.set,
                    beginning_of_pass_write_index: Some(0),
                    end_of_pass_write_index: Some(1),
                }),
            });
            for (d, bg) in self.program.dispatches.iter().zip(&self.bind_groups) {
                pass.set_pipeline(&self.pipelines[d.module]);
                pass.set_bind_group(0, bg, &[]);
                let [x, y, z] = d.workgroups;
                pass.dispatch_workgroups(x, y, z);
            }
        }
        if let Some(t) = ts {
            enc.resolve_query_set(&t.set, 0..2, &t.resolve, 0);
            enc.copy_buffer_to_buffer(&t.resolve, 0, &t.read, 0, 16);
        }
        if !timed {
            for (o, rb) in self.program.outputs.iter().zip(&self.readback) {
                enc.copy_buffer_to_buffer(&self.buffers[o.buffer], 0, rb, 0, rb.size());
            }
        }
        self.queue.submit([enc.finish()]);
        let err = block_on(scope.pop());
        if let Some(e) = err {
            return Err(GpuError::Device {
                during: "recording an inference",
                msg: e.to_string(),
            });
        }
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Device {
                during: "waiting for an inference",
                msg: e.to_string(),
            })?;
        self.check_lost()?;
        match ts {
            Some(t) => {
                let raw = self.read_raw(&t.read)?;
                let tick = |i: usize| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&raw[i * 8..i * 8 + 8]);
                    u64::from_le_bytes(b)
                };
                Ok(Some(
                    tick(1).saturating_sub(tick(0)) as f64 * t.period_ns * 1e-9,
                ))
            }
            None => Ok(None),
        }
    }

    fn read(&self, buf: &wgpu::Buffer) -> Result<Vec<f32>, GpuError> {
        let raw = self.read_raw(buf)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    fn read_raw(&self, buf: &wgpu::Buffer) -> Result<Vec<u8>, GpuError> {
        let slice = buf.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        let fail = |msg: String| GpuError::Device {
            during: "reading back a buffer",
            msg,
        };
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| fail(e.to_string()))?;
        rx.recv()
            .map_err(|e| fail(e.to_string()))?
            .map_err(|e| fail(e.to_string()))?;
        let data = slice
            .get_mapped_range()
            .map_err(|e| fail(e.to_string()))?
            .to_vec();
        buf.unmap();
        Ok(data)
    }
}
