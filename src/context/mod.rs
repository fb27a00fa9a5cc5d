//! The GPU context: instance, adapter, device and queue, with the caches every realization uses
//! (shader modules, pipelines, bind-group layouts, bind groups, the buffer pool).
//!
//! The runtime layer: it knows shaders by name (`crate::shaders`) and buffers by size
//! ([`pool`]), and nothing of graphs, kernels or tensors.

pub mod pool;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::shaders::{self, PipelineKey};
pub(crate) use pool::{BufKind, BufferPool, GpuBuffer, MemoryStats, PlanStats};

/// How to pick an adapter. [`ContextOptions::from_env`] reads `KILN_BACKEND`, `KILN_ADAPTER`
/// and `KILN_PIPELINE_CACHE`.
#[derive(Clone, Debug, Default)]
pub struct ContextOptions {
    /// Restrict to one backend (`vulkan`, `gl`, `metal`, `dx12`, `webgpu`); `None` tries all.
    pub backend: Option<String>,
    /// Pick the first adapter whose name contains this (case-insensitive).
    pub adapter_name: Option<String>,
    /// A folder for the persisted pipeline cache (adapters with `PIPELINE_CACHE`, i.e. Vulkan):
    /// the file in it is named by adapter ([`wgpu::util::pipeline_cache_key`]), read when the
    /// context opens and written by [`Context::save_pipeline_cache`]. `None`: no cache.
    pub pipeline_cache: Option<PathBuf>,
    /// Also request wgpu's experimental cooperative-matrix feature (tensor cores) where the
    /// adapter offers it. Off by default: wgpu marks the feature experimental. Env:
    /// `KILN_EXPERIMENTAL_COOP=1`.
    pub experimental_cooperative_matrix: bool,
}

impl ContextOptions {
    /// Options from the environment: `KILN_BACKEND=vulkan|gl|metal|dx12` and
    /// `KILN_ADAPTER=<name substring>`.
    pub fn from_env() -> Self {
        let get = |k: &str| {
            std::env::var(k)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        ContextOptions {
            backend: get("KILN_BACKEND"),
            adapter_name: get("KILN_ADAPTER"),
            pipeline_cache: get("KILN_PIPELINE_CACHE").map(PathBuf::from),
            experimental_cooperative_matrix: get("KILN_EXPERIMENTAL_COOP")
                .is_some_and(|v| v != "0"),
        }
    }

    fn backends(&self) -> Result<wgpu::Backends> {
        let Some(name) = &self.backend else {
            return Ok(wgpu::Backends::all());
        };
        Ok(match name.to_ascii_lowercase().as_str() {
            "vulkan" | "vk" => wgpu::Backends::VULKAN,
            "gl" | "gles" | "opengl" => wgpu::Backends::GL,
            "metal" => wgpu::Backends::METAL,
            "dx12" | "d3d12" => wgpu::Backends::DX12,
            "webgpu" | "browser" => wgpu::Backends::BROWSER_WEBGPU,
            other => {
                return Err(Error::invalid(
                    "Context::new",
                    format!("unknown backend {other:?} in KILN_BACKEND (use vulkan, gl, metal, dx12 or webgpu)"),
                ))
            }
        })
    }
}

/// One adapter as `kiln info` prints it.
#[derive(Clone, Debug)]
pub struct AdapterReport {
    /// Name, backend, device type, driver.
    pub info: wgpu::AdapterInfo,
    /// The adapter's own limits.
    pub limits: wgpu::Limits,
    /// Every feature it offers.
    pub features: wgpu::Features,
}

const NATIVE_OPTIONAL_FEATURES: wgpu::Features = wgpu::Features::TIMESTAMP_QUERY
    .union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS)
    .union(wgpu::Features::SHADER_F16)
    .union(wgpu::Features::SUBGROUP)
    .union(wgpu::Features::PIPELINE_CACHE);

/// Optional features kiln asks for when the adapter has them.
#[cfg(not(target_arch = "wasm32"))]
pub const OPTIONAL_FEATURES: wgpu::Features = NATIVE_OPTIONAL_FEATURES;

/// Optional features kiln asks for when the adapter has them. In the browser, without
/// SUBGROUP: the subgroup kernels (`*_sg`) are written for naga, and browsers' WGSL compilers
/// also want an `enable subgroups;` directive, which naga does not take; the plain kernels run.
#[cfg(target_arch = "wasm32")]
pub const OPTIONAL_FEATURES: wgpu::Features =
    NATIVE_OPTIONAL_FEATURES.difference(wgpu::Features::SUBGROUP);

/// wgpu's consent token for experimental features, asked for only when the user opted in
/// ([`ContextOptions::experimental_cooperative_matrix`]).
#[allow(unsafe_code)]
fn experimental_token() -> wgpu::ExperimentalFeatures {
    // SAFETY: `enabled()` is unsafe because wgpu's experimental features may still have bugs
    // that cause undefined behaviour; kiln uses one (cooperative matrices, in
    // shaders/matmul_coop.wgsl) only after the user opted in, and only through that one kernel.
    unsafe { wgpu::ExperimentalFeatures::enabled() }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct BindKey {
    pub reads: usize,
    pub writes: usize,
    /// Inputs bound read-only (see [`Context::layouts`]).
    pub read_only_inputs: bool,
    pub params: u64,
    /// Each storage binding's buffer id, offset and size (`u64::MAX` for the whole buffer).
    pub buffers: Vec<(u64, u64, u64)>,
}

/// A kernel's bind group layout and the pipeline layout around it.
type Layouts = (wgpu::BindGroupLayout, wgpu::PipelineLayout);

pub(crate) struct ContextInner {
    pub instance: wgpu::Instance,
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    pub pool: Mutex<BufferPool>,
    /// Keyed by shader and whether inputs are read-only (else the source is rewritten so that
    /// every storage binding is read_write).
    modules: Mutex<HashMap<(&'static str, bool), wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
    /// Pipelines whose inputs are bound read-only (a dispatch that reads one buffer twice).
    pipelines_read_only: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
    /// Keyed by (reads, writes, inputs read-only).
    layouts: Mutex<HashMap<(usize, usize, bool), Layouts>>,
    bind_groups: Mutex<HashMap<BindKey, wgpu::BindGroup>>,
    /// Pipelines of generated (fused elementwise) kernels, keyed by their compact program.
    fused: Mutex<HashMap<Vec<u32>, wgpu::ComputePipeline>>,
    /// Fused pipelines whose inputs are bound read-only (a unit that reads one buffer twice).
    fused_read_only: Mutex<HashMap<Vec<u32>, wgpu::ComputePipeline>>,
    /// Whether realizations fuse chains of elementwise ops (`KILN_FUSION=0` turns it off).
    pub fusion: AtomicBool,
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    poll_lock: Mutex<()>,
    pub realize_lock: Mutex<()>,
    uncaptured: Arc<Mutex<Vec<String>>>,
    pipeline_cache: Option<PipelineCacheFile>,
    compile_ns: AtomicU64,
    next_node: AtomicU64,
    pub poison: AtomicBool,
    pub last_plan: Mutex<PlanStats>,
}

/// A handle to one GPU device. Cheap to clone; every tensor keeps one.
///
/// ```no_run
/// let ctx = kiln::Context::new()?;
/// println!("{}", ctx.adapter_info().name);
/// # Ok::<(), kiln::Error>(())
/// ```
#[derive(Clone)]
pub struct Context {
    pub(crate) inner: Arc<ContextInner>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("adapter", &self.inner.info.name)
            .field("backend", &self.inner.info.backend)
            .finish()
    }
}

/// Locks a mutex, recovering the data if another thread panicked while holding it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn device_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

fn backend_rank(b: wgpu::Backend) -> u32 {
    match b {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        wgpu::Backend::BrowserWebGpu => 1,
        _ => 2,
    }
}

const NO_ADAPTER_HINT: &str = "On Linux without a GPU, install a software adapter: \
     `apt-get install mesa-vulkan-drivers` (lavapipe); or set KILN_BACKEND=gl to use llvmpipe";

impl Context {
    /// Opens the best adapter (discrete > integrated > virtual > CPU), honouring `KILN_BACKEND`
    /// and `KILN_ADAPTER`. Blocking; see [`Context::new_async`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<Self> {
        pollster::block_on(Self::new_async(ContextOptions::from_env()))
    }

    /// Opens an adapter chosen by `options`. Blocking; see [`Context::new_async`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_options(options: ContextOptions) -> Result<Self> {
        pollster::block_on(Self::new_async(options))
    }

    /// Lists every adapter the given backend selection can see (`kiln info`).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn list_adapters(options: &ContextOptions) -> Result<Vec<AdapterReport>> {
        let backends = options.backends()?;
        let instance = make_instance(backends);
        let adapters = pollster::block_on(instance.enumerate_adapters(backends));
        Ok(adapters
            .iter()
            .map(|a| AdapterReport {
                info: a.get_info(),
                limits: a.limits(),
                features: a.features(),
            })
            .collect())
    }

    /// Opens an adapter chosen by `options`, requesting the adapter's own limits and the
    /// optional features in [`OPTIONAL_FEATURES`] that it has.
    pub async fn new_async(options: ContextOptions) -> Result<Self> {
        // Without an explicit backend, try the native APIs first and OpenGL only if they offer
        // nothing: probing GL is slow and noisy where a Vulkan adapter exists.
        let attempts = match &options.backend {
            Some(_) => vec![options.backends()?],
            None => vec![
                wgpu::Backends::PRIMARY | wgpu::Backends::BROWSER_WEBGPU,
                wgpu::Backends::SECONDARY,
            ],
        };
        let mut tried = Vec::new();
        let mut found = None;
        for backends in attempts {
            let instance = make_instance(backends);
            match pick_adapter(&instance, backends, &options).await {
                Ok(adapter) => {
                    found = Some((instance, adapter));
                    break;
                }
                Err(Error::NoAdapter { tried: t, .. }) => tried.push(t),
                Err(e) => return Err(e),
            }
        }
        let Some((instance, adapter)) = found else {
            return Err(Error::NoAdapter {
                tried: tried.join("; then "),
                hint: NO_ADAPTER_HINT.into(),
            });
        };
        let info = adapter.get_info();
        let limits = adapter.limits();
        let mut features = adapter.features() & OPTIONAL_FEATURES;
        let coop = wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        let experimental_features =
            if options.experimental_cooperative_matrix && adapter.features().contains(coop) {
                features |= coop;
                experimental_token()
            } else {
                wgpu::ExperimentalFeatures::disabled()
            };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("kiln device"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::RequestDevice {
                adapter: info.name.clone(),
                reason: e.to_string(),
            })?;
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            lock(&sink).push(e.to_string());
        }));
        let pipeline_cache = open_pipeline_cache(&device, &info, features, &options).await;
        let max_buffer = limits
            .max_buffer_size
            .min(limits.max_storage_buffer_binding_size);
        Ok(Context {
            inner: Arc::new(ContextInner {
                instance,
                adapter,
                device,
                queue,
                info,
                limits,
                features,
                pool: Mutex::new(BufferPool::new(max_buffer)),
                modules: Mutex::new(HashMap::new()),
                pipelines: Mutex::new(HashMap::new()),
                pipelines_read_only: Mutex::new(HashMap::new()),
                layouts: Mutex::new(HashMap::new()),
                bind_groups: Mutex::new(HashMap::new()),
                fused: Mutex::new(HashMap::new()),
                fused_read_only: Mutex::new(HashMap::new()),
                fusion: AtomicBool::new(fusion_from_env()),
                poll_lock: Mutex::new(()),
                realize_lock: Mutex::new(()),
                uncaptured,
                pipeline_cache,
                compile_ns: AtomicU64::new(0),
                next_node: AtomicU64::new(1),
                poison: AtomicBool::new(false),
                last_plan: Mutex::new(Default::default()),
            }),
        })
    }

    /// Name, backend, device type and driver of the open adapter.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.inner.info
    }

    /// The limits the device was opened with (the adapter's own).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.limits
    }

    /// The optional features the device was opened with.
    pub fn features(&self) -> wgpu::Features {
        self.inner.features
    }

    /// Whether GPU timestamp queries can time compute passes.
    pub fn has_timestamps(&self) -> bool {
        self.inner
            .features
            .contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// The wgpu device, for users who want to add their own work.
    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    /// The wgpu instance this context was made from.
    pub fn instance(&self) -> &wgpu::Instance {
        &self.inner.instance
    }

    /// The wgpu adapter.
    pub fn adapter(&self) -> &wgpu::Adapter {
        &self.inner.adapter
    }

    /// Live, pooled and peak bytes, and how many buffers, pipelines and bind groups were made.
    pub fn memory_stats(&self) -> MemoryStats {
        lock(&self.inner.pool).stats
    }

    /// What the last realization's buffer plan needed: exact live-set peak of intermediates,
    /// kept and input bytes, and the pool bytes it took.
    pub fn last_plan(&self) -> PlanStats {
        *lock(&self.inner.last_plan)
    }

    /// Restarts the peak counters of [`Context::memory_stats`] from the current live and pooled
    /// bytes, so the next peaks are those of the work that follows (e.g. one training step).
    pub fn reset_peak_memory(&self) {
        lock(&self.inner.pool).reset_peaks();
    }

    /// Testing aid: when on, every buffer a realization hands to a kernel for its output is
    /// first filled with NaN, so an element the kernel forgets to write shows up as NaN.
    pub(crate) fn set_poison_outputs(&self, on: bool) {
        self.inner.poison.store(on, Ordering::Relaxed);
    }

    /// Turns elementwise fusion on or off for later realizations (on by default unless the
    /// environment says `KILN_FUSION=0`). Off runs every recorded op as its own kernel, which
    /// is useful for comparisons.
    pub(crate) fn set_fusion(&self, on: bool) {
        self.inner.fusion.store(on, Ordering::Relaxed);
    }

    /// Whether realizations fuse chains of elementwise ops into generated kernels.
    pub fn fusion(&self) -> bool {
        self.inner.fusion.load(Ordering::Relaxed)
    }

    /// Frees every pooled (unused) buffer, and the cached bind groups that refer to them.
    pub fn trim_pool(&self) {
        let ids = lock(&self.inner.pool).trim();
        if !ids.is_empty() {
            let ids: std::collections::HashSet<u64> = ids.into_iter().collect();
            lock(&self.inner.bind_groups).retain(|k, _| {
                !ids.contains(&k.params) && !k.buffers.iter().any(|b| ids.contains(&b.0))
            });
        }
    }

    /// Blocks until all submitted work has finished. Only one thread polls the device at a
    /// time (wgpu-core 30.0.2 can panic when two threads poll at once).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn synchronize(&self) -> Result<()> {
        pollster::block_on(self.synchronize_async())
    }

    /// Resolves when all work submitted so far has finished, without blocking a thread.
    pub async fn synchronize_async(&self) -> Result<()> {
        let (tx, rx) = futures::channel::oneshot::channel();
        self.inner.queue.on_submitted_work_done(move || {
            let _ = tx.send(());
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.poll_wait()?;
        rx.await.map_err(|_| Error::Gpu {
            during: "synchronize".into(),
            message: "the device was lost before the work finished".into(),
        })?;
        self.take_uncaptured("synchronize")
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn poll_wait(&self) -> Result<()> {
        let _guard = lock(&self.inner.poll_lock);
        self.inner
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Gpu {
                during: "poll".into(),
                message: e.to_string(),
            })
    }

    /// Turns errors that reached the uncaptured-error handler into an `Err`.
    pub(crate) fn take_uncaptured(&self, during: &str) -> Result<()> {
        let mut errs = lock(&self.inner.uncaptured);
        if errs.is_empty() {
            return Ok(());
        }
        let message = errs.join("; ");
        errs.clear();
        Err(Error::Gpu {
            during: during.to_string(),
            message,
        })
    }

    pub(crate) fn next_node_id(&self) -> u64 {
        self.inner.next_node.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn acquire(&self, kind: BufKind, bytes: u64) -> GpuBuffer {
        lock(&self.inner.pool).acquire(&self.inner.device, kind, bytes)
    }

    pub(crate) fn release(&self, buf: GpuBuffer) {
        lock(&self.inner.pool).release(buf);
    }

    /// Runs `f` inside a validation error scope and returns what the scope caught.
    pub(crate) fn scoped<T>(&self, f: impl FnOnce() -> T) -> (T, Option<String>) {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let guard = self
                .inner
                .device
                .push_error_scope(wgpu::ErrorFilter::Validation);
            let out = f();
            let err = pollster::block_on(guard.pop());
            (out, err.map(|e| e.to_string()))
        }
        #[cfg(target_arch = "wasm32")]
        {
            // In the browser a scope resolves asynchronously; errors reach the uncaptured
            // handler instead and are reported by the next realization.
            (f(), None)
        }
    }

    /// The layouts of a kernel with `reads` inputs and `writes` outputs. Storage bindings are
    /// read_write, inputs too: the executor binds slices of one arena as inputs and outputs of
    /// one dispatch, and WebGPU checks read-only against writable use per buffer, not per range
    /// (the shaders are rewritten to match). With `read_only_inputs` the inputs are read-only
    /// instead, for a dispatch that binds one buffer range twice: WebGPU forbids a writable
    /// binding that overlaps another binding, and the executor gives such a dispatch's outputs
    /// buffers of their own.
    fn layouts(
        &self,
        reads: usize,
        writes: usize,
        read_only_inputs: bool,
    ) -> (wgpu::BindGroupLayout, wgpu::PipelineLayout) {
        let mut layouts = lock(&self.inner.layouts);
        if let Some(l) = layouts.get(&(reads, writes, read_only_inputs)) {
            return l.clone();
        }
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: None,
            },
            count: None,
        }];
        for i in 0..reads + writes {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: i as u32 + 1,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: read_only_inputs && i < reads,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            });
        }
        let label = format!(
            "kiln layout {reads} in{} {writes} out",
            if read_only_inputs { " (read-only)" } else { "" }
        );
        let bgl = self
            .inner
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(&label),
                entries: &entries,
            });
        let pl = self
            .inner
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(&label),
                bind_group_layouts: &[Some(&bgl)],
                immediate_size: 0,
            });
        layouts.insert((reads, writes, read_only_inputs), (bgl.clone(), pl.clone()));
        (bgl, pl)
    }

    /// Compiles WGSL `source` as a shader module named `name`, turning validation errors into
    /// [`Error::Shader`] with that name (for users who add kernels of their own).
    pub fn compile_shader(&self, name: &'static str, source: &str) -> Result<wgpu::ShaderModule> {
        let (module, err) = self.scoped(|| {
            self.inner
                .device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(name),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                })
        });
        match err {
            Some(message) => Err(Error::Shader {
                shader: name,
                entry: "(module)",
                message,
            }),
            None => Ok(module),
        }
    }

    fn module(
        &self,
        shader: &'static str,
        entry: &'static str,
        read_only_inputs: bool,
    ) -> Result<wgpu::ShaderModule> {
        let mut modules = lock(&self.inner.modules);
        if let Some(m) = modules.get(&(shader, read_only_inputs)) {
            return Ok(m.clone());
        }
        let started = web_time::Instant::now();
        let source = shaders::shader_source(shader).ok_or_else(|| Error::Shader {
            shader,
            entry,
            message: "no such shader in the registry".into(),
        })?;
        let source = if read_only_inputs {
            std::borrow::Cow::Borrowed(source)
        } else {
            storage_read_write(source)
        };
        let module = self.compile_shader(shader, &source).map_err(|e| match e {
            Error::Shader { message, .. } => Error::Shader {
                shader,
                entry,
                message,
            },
            other => other,
        })?;
        modules.insert((shader, read_only_inputs), module.clone());
        self.count_compile(started);
        Ok(module)
    }

    /// The pipeline for `key`, built once and cached; `read_only_inputs` as in
    /// [`Context::layouts`].
    pub(crate) fn pipeline(
        &self,
        key: &PipelineKey,
        read_only_inputs: bool,
    ) -> Result<wgpu::ComputePipeline> {
        let cache = if read_only_inputs {
            &self.inner.pipelines_read_only
        } else {
            &self.inner.pipelines
        };
        if let Some(p) = lock(cache).get(key) {
            return Ok(p.clone());
        }
        let module = self.module(key.shader, key.entry, read_only_inputs)?;
        let started = web_time::Instant::now();
        let (_, layout) = self.layouts(key.reads, key.writes, read_only_inputs);
        let constants: Vec<(&str, f64)> = key
            .constants
            .iter()
            .map(|&(name, v)| (name, f64::from(v)))
            .collect();
        let label = format!("{}::{} {:?}", key.shader, key.entry, key.constants);
        let (pipeline, err) = self.scoped(|| {
            self.inner
                .device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&label),
                    layout: Some(&layout),
                    module: &module,
                    entry_point: Some(key.entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants: &constants,
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: self.inner.pipeline_cache.as_ref().map(|c| &c.cache),
                })
        });
        self.count_compile(started);
        if let Some(message) = err {
            return Err(Error::Shader {
                shader: key.shader,
                entry: key.entry,
                message,
            });
        }
        lock(&self.inner.pool).stats.pipelines_created += 1;
        lock(cache).insert(key.clone(), pipeline.clone());
        Ok(pipeline)
    }

    fn count_compile(&self, started: web_time::Instant) {
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.inner.compile_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Seconds this context has spent creating shader modules and compute pipelines (cache
    /// misses only): the shader-compile share of a cold start.
    pub fn compile_seconds(&self) -> f64 {
        self.inner.compile_ns.load(Ordering::Relaxed) as f64 * 1e-9
    }

    /// Where this context's pipeline cache lives and how many bytes were loaded from it when
    /// the context opened (0 when there was no usable file); `None` without a cache (no
    /// folder configured, or an adapter without `PIPELINE_CACHE`).
    pub fn pipeline_cache_file(&self) -> Option<(&std::path::Path, usize)> {
        self.inner
            .pipeline_cache
            .as_ref()
            .map(|c| (c.path.as_path(), c.loaded_bytes))
    }

    /// Writes the pipeline cache's current data to its file (atomically: a torn or partial file
    /// is never left behind) and returns the path; `Ok(None)` when this context has no cache or
    /// the driver has nothing to save. Call it after the pipelines of interest were compiled
    /// (`kiln bench` and `kiln train` do at the end). A folder or file that cannot be written
    /// is an [`Error::Io`] naming it.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save_pipeline_cache(&self) -> Result<Option<PathBuf>> {
        let Some(c) = &self.inner.pipeline_cache else {
            return Ok(None);
        };
        let Some(data) = c.cache.get_data() else {
            return Ok(None);
        };
        if let Some(dir) = c.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create folder", dir, e))?;
        }
        crate::fsio::write_atomically(&c.path, &seal_cache(&data))
            .map_err(|e| Error::io("cannot write", &c.path, e))?;
        Ok(Some(c.path.clone()))
    }

    /// The pipeline of a generated kernel with `reads` inputs and one output, keyed by its
    /// compact program description; `source` writes its WGSL, called only on a cache miss.
    pub(crate) fn fused_pipeline(
        &self,
        program: &[u32],
        reads: usize,
        read_only_inputs: bool,
        source: impl FnOnce() -> String,
    ) -> Result<wgpu::ComputePipeline> {
        let cache = if read_only_inputs {
            &self.inner.fused_read_only
        } else {
            &self.inner.fused
        };
        if let Some(p) = lock(cache).get(program) {
            return Ok(p.clone());
        }
        let started = web_time::Instant::now();
        let source = source();
        let source = if read_only_inputs {
            std::borrow::Cow::Borrowed(source.as_str())
        } else {
            storage_read_write(&source)
        };
        let module = self.compile_shader("fused", &source)?;
        let (_, layout) = self.layouts(reads, 1, read_only_inputs);
        let (pipeline, err) = self.scoped(|| {
            self.inner
                .device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some("kiln fused elementwise"),
                    layout: Some(&layout),
                    module: &module,
                    entry_point: Some("fused"),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants: &[],
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: self.inner.pipeline_cache.as_ref().map(|c| &c.cache),
                })
        });
        self.count_compile(started);
        if let Some(message) = err {
            return Err(Error::Shader {
                shader: "fused",
                entry: "fused",
                message,
            });
        }
        lock(&self.inner.pool).stats.pipelines_created += 1;
        lock(cache).insert(program.to_vec(), pipeline.clone());
        Ok(pipeline)
    }

    /// The bind group binding `params` (dynamic offset) then `buffers` (reads, then writes),
    /// built once per distinct set of buffer ranges and cached.
    pub(crate) fn bind_group(
        &self,
        reads: usize,
        writes: usize,
        read_only_inputs: bool,
        params: &GpuBuffer,
        params_size: u64,
        buffers: &[pool::Binding<'_>],
    ) -> wgpu::BindGroup {
        let key = BindKey {
            reads,
            writes,
            read_only_inputs,
            params: params.id,
            buffers: buffers
                .iter()
                .map(|b| (b.buf.id, b.offset, b.size.unwrap_or(u64::MAX)))
                .collect(),
        };
        if let Some(bg) = lock(&self.inner.bind_groups).get(&key) {
            return bg.clone();
        }
        let (bgl, _) = self.layouts(reads, writes, read_only_inputs);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &params.buffer,
                offset: 0,
                size: wgpu::BufferSize::new(params_size),
            }),
        }];
        for (i, b) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &b.buf.buffer,
                    offset: b.offset,
                    size: b.size.and_then(wgpu::BufferSize::new),
                }),
            });
        }
        let bg = self
            .inner
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("kiln bind group"),
                layout: &bgl,
                entries: &entries,
            });
        lock(&self.inner.pool).stats.bind_groups_created += 1;
        let mut cache = lock(&self.inner.bind_groups);
        // Bound the cache: pooled buffers are reused, so a working set stays small, but a
        // program that keeps making new shapes should not grow it forever.
        if cache.len() >= 8192 {
            cache.clear();
        }
        cache.insert(key, bg.clone());
        bg
    }
}

/// `source` with every read-only storage variable (`var<storage, read>`, or `var<storage>`,
/// whose access defaults to read) declared `read_write`, to match the pipeline layouts (see
/// `Context::layouts`). The kernels still only read those bindings.
fn storage_read_write(source: &str) -> std::borrow::Cow<'_, str> {
    const OPEN: &str = "var<storage";
    if !source.contains(OPEN) {
        return std::borrow::Cow::Borrowed(source);
    }
    let mut out = String::with_capacity(source.len() + 256);
    let mut rest = source;
    while let Some(at) = rest.find(OPEN) {
        let after = &rest[at + OPEN.len()..];
        let Some(close) = after.find('>') else {
            break;
        };
        out.push_str(&rest[..at]);
        let access: String = after[..close]
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ',')
            .collect();
        if access.is_empty() || access == "read" {
            out.push_str("var<storage, read_write>");
        } else {
            out.push_str(&rest[at..at + OPEN.len() + close + 1]);
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// A pipeline cache and the file it is persisted to.
struct PipelineCacheFile {
    cache: wgpu::PipelineCache,
    path: PathBuf,
    loaded_bytes: usize,
}

/// kiln's envelope around the driver's cache data: magic, length and an FNV-1a hash of the
/// data, so a torn, truncated or otherwise damaged file is recognised and never handed to the
/// driver (wgpu checks its own header, not the data behind it).
const CACHE_MAGIC: &[u8; 8] = b"KILNPLC1";

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Wraps cache data in kiln's envelope (the format [`unseal_cache`] reads).
pub fn seal_cache(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 24);
    out.extend_from_slice(CACHE_MAGIC);
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&fnv1a(data).to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// The cache data inside a file written by [`seal_cache`], or `None` when the file is not one
/// or is damaged.
pub fn unseal_cache(file: &[u8]) -> Option<&[u8]> {
    let magic = file.get(..8)?;
    let len = u64::from_le_bytes(file.get(8..16)?.try_into().ok()?);
    let hash = u64::from_le_bytes(file.get(16..24)?.try_into().ok()?);
    let data = file.get(24..)?;
    (magic == CACHE_MAGIC && data.len() as u64 == len && fnv1a(data) == hash).then_some(data)
}

/// Opens the pipeline cache for this adapter, seeded from its file when the file is intact and
/// wgpu accepts it (else empty: data made for another adapter, driver or wgpu version is a
/// validation error even with `fallback`, caught here so it never reaches a realization).
async fn open_pipeline_cache(
    device: &wgpu::Device,
    info: &wgpu::AdapterInfo,
    features: wgpu::Features,
    options: &ContextOptions,
) -> Option<PipelineCacheFile> {
    let dir = options.pipeline_cache.as_ref()?;
    if !features.contains(wgpu::Features::PIPELINE_CACHE) {
        return None;
    }
    let path = dir.join(format!("{}.bin", wgpu::util::pipeline_cache_key(info)?));
    #[cfg(not(target_arch = "wasm32"))]
    let file = std::fs::read(&path).ok();
    #[cfg(target_arch = "wasm32")]
    let file: Option<Vec<u8>> = None;
    let mut data = file.as_deref().and_then(unseal_cache);
    loop {
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let cache = create_pipeline_cache(device, data);
        if scope.pop().await.is_none() {
            return Some(PipelineCacheFile {
                cache,
                path,
                loaded_bytes: data.map_or(0, <[u8]>::len),
            });
        }
        // Rejected: retry once without data; give up on caching if even that fails.
        data.take()?;
    }
}

fn create_pipeline_cache(device: &wgpu::Device, data: Option<&[u8]>) -> wgpu::PipelineCache {
    // SAFETY: `data` is only ever bytes that `PipelineCache::get_data` returned (written by
    // `save_pipeline_cache` under kiln's checksum, which rejects damaged files), from a file
    // named by this adapter's `pipeline_cache_key`. wgpu validates its header (backend,
    // adapter, driver and wgpu version): with `fallback: true` stale data gives an empty
    // cache, and data for another device is a validation error that the caller catches (it
    // then retries without data).
    #[allow(unsafe_code)]
    unsafe {
        device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
            label: Some("kiln pipeline cache"),
            data,
            fallback: true,
        })
    }
}

/// Fusion is on unless `KILN_FUSION` is `0`, `off`, `false` or `no`.
fn fusion_from_env() -> bool {
    match std::env::var("KILN_FUSION") {
        Ok(v) => !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "0" | "off" | "false" | "no"
        ),
        Err(_) => true,
    }
}

fn make_instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

async fn pick_adapter(
    instance: &wgpu::Instance,
    backends: wgpu::Backends,
    options: &ContextOptions,
) -> Result<wgpu::Adapter> {
    let tried = format!("backends {backends:?}");
    #[cfg(target_arch = "wasm32")]
    let adapters: Vec<wgpu::Adapter> = instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        })
        .await
        .into_iter()
        .collect();
    #[cfg(not(target_arch = "wasm32"))]
    let adapters = instance.enumerate_adapters(backends).await;
    let seen: Vec<String> = adapters
        .iter()
        .map(|a| {
            let i = a.get_info();
            format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
        })
        .collect();
    let mut candidates: Vec<wgpu::Adapter> = adapters
        .into_iter()
        .filter(|a| match &options.adapter_name {
            Some(n) => a.get_info().name.to_lowercase().contains(&n.to_lowercase()),
            None => true,
        })
        .collect();
    candidates.sort_by_key(|a| {
        let i = a.get_info();
        (device_rank(i.device_type), backend_rank(i.backend))
    });
    candidates.into_iter().next().ok_or_else(|| {
        let filter = match &options.adapter_name {
            Some(n) => format!(", name containing {n:?}"),
            None => String::new(),
        };
        Error::NoAdapter {
            tried: format!(
                "{tried}{filter}; adapters seen: {}",
                if seen.is_empty() {
                    "none".to_string()
                } else {
                    seen.join(", ")
                }
            ),
            hint: NO_ADAPTER_HINT.into(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::storage_read_write;

    #[test]
    fn read_only_storage_variables_are_declared_read_write() {
        let src = "@group(0) @binding(1) var<storage, read> x: array<f32>;\n\
                   @group(0) @binding(2) var<storage,read> y: array<f32>;\n\
                   @group(0) @binding(3) var<storage> z: array<f32>;\n\
                   @group(0) @binding(4) var<storage, read_write> w: array<f32>;\n\
                   @group(0) @binding(0) var<uniform> p: P;";
        let want = "@group(0) @binding(1) var<storage, read_write> x: array<f32>;\n\
                    @group(0) @binding(2) var<storage, read_write> y: array<f32>;\n\
                    @group(0) @binding(3) var<storage, read_write> z: array<f32>;\n\
                    @group(0) @binding(4) var<storage, read_write> w: array<f32>;\n\
                    @group(0) @binding(0) var<uniform> p: P;";
        assert_eq!(storage_read_write(src), want);
        let plain = "fn f() -> f32 { return 1.0; }";
        assert!(matches!(
            storage_read_write(plain),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
