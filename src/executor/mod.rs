//! The executor: turns the pending part of the graph into one command buffer.
//!
//! A realization runs these steps:
//! 1. Collect: walk back from the targets through pending nodes (iteratively, post-order), so
//!    every node comes after its inputs. Realized nodes are leaves.
//! 2. Decide what to keep: a node is kept (its buffer becomes its storage) if it is a target or
//!    if a handle outside the pending graph still points at it; every other node is an
//!    intermediate.
//! 3. Fuse (unless turned off): elementwise intermediates with a single consumer join that
//!    consumer's group, and each group of two or more ops runs as one generated kernel (see
//!    [`fusion`]). From here on the unit of work is a dispatch: a step's own kernel, or a group.
//! 4. Plan buffers by liveness: each unit's last use is the position of its last consumer.
//!    Walking the order, a node takes a buffer from the realization's free list (an
//!    intermediate the smallest one of its size class up to twice it, so a dead activation's
//!    buffer can hold a smaller tensor; a kept output only its own class, so no waste outlives
//!    the realization), else from the context's pool (which creates one only when it has none). After a
//!    node is placed, the intermediates whose last use it was go to the free list, so a later
//!    node can reuse them (never the node's own inputs, which it is still reading).
//! 5. Encode: all parameter blocks go into one uniform buffer (one 256-byte slot per dispatch,
//!    bound with a dynamic offset); every dispatch is recorded into one compute pass of one
//!    command encoder, with cached pipelines and bind groups.
//! 6. Submit once, inside a validation error scope. Kept nodes become realized and drop their
//!    inputs; intermediates' buffers go back to the pool (queue order makes that safe).
//!
//! The work is split into several submissions only if the parameter blocks would pass the
//! device's `max_buffer_size`.

pub mod fusion;

pub use fusion::MAX_OPS as FUSION_MAX_OPS;

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};

use crate::context::{lock, Context};
use crate::context::{BufKind, GpuBuffer, PlanStats};
use crate::error::{Error, Result};
use crate::graph::{Kernel, Node, NodeState, Storage, Value};

/// Bytes of one kernel's parameter block (64 u32 words).
pub(crate) const PARAMS_BYTES: u64 = 256;

/// GPU timestamps around a realization's compute passes (needs `TIMESTAMP_QUERY`).
pub struct GpuTimer {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
    period_ns: f64,
}

impl GpuTimer {
    /// A timer, or `None` when the device has no timestamp queries.
    pub fn new(ctx: &Context) -> Option<GpuTimer> {
        if !ctx.has_timestamps() {
            return None;
        }
        let device = ctx.device();
        Some(GpuTimer {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("kiln timer"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            }),
            resolve: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("kiln timer resolve"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            read: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("kiln timer read"),
                size: 16,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            period_ns: f64::from(ctx.queue().get_timestamp_period()),
        })
    }

    /// Seconds between the first pass's start and the last pass's end of the last realization
    /// timed with this timer. Blocks until the GPU is done.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_seconds(&self, ctx: &Context) -> Result<f64> {
        pollster::block_on(self.read_seconds_async(ctx))
    }

    /// [`GpuTimer::read_seconds`] without blocking a thread.
    pub async fn read_seconds_async(&self, ctx: &Context) -> Result<f64> {
        let (tx, rx) = futures::channel::oneshot::channel();
        self.read
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        #[cfg(not(target_arch = "wasm32"))]
        ctx.poll_wait()?;
        #[cfg(target_arch = "wasm32")]
        let _ = ctx;
        rx.await
            .map_err(|_| Error::Readback("timer map callback dropped".into()))?
            .map_err(|e| Error::Readback(e.to_string()))?;
        let ticks: [u64; 2] = {
            let view = self
                .read
                .slice(..)
                .get_mapped_range()
                .map_err(|e| Error::Readback(e.to_string()))?;
            let mut t = [0u64; 2];
            bytemuck::cast_slice_mut::<u64, u8>(&mut t).copy_from_slice(&view[..16]);
            t
        };
        self.read.unmap();
        Ok(ticks[1].wrapping_sub(ticks[0]) as f64 * self.period_ns * 1e-9)
    }
}

/// Exact-size liveness over `order`: the most bytes live at once, of intermediates only
/// (`with_kept` false) or also of kept outputs, which live from their position to the end.
/// A node is live from its own position to its last use, inclusive.
fn live_peak(bytes: &[u64], keep: &[bool], last_use: &[usize], with_kept: bool) -> u64 {
    let mut dies_at = vec![0u64; bytes.len()];
    for j in 0..bytes.len() {
        if !keep[j] {
            dies_at[last_use[j]] += bytes[j];
        }
    }
    let (mut live, mut peak) = (0u64, 0u64);
    for i in 0..bytes.len() {
        if !keep[i] || with_kept {
            live += bytes[i];
        }
        peak = peak.max(live);
        live -= dies_at[i];
    }
    peak
}

/// Takes the smallest buffer of at least `class` and at most `most` bytes from a realization's
/// free list (keyed by buffer size).
fn best_fit(free: &mut HashMap<u64, Vec<GpuBuffer>>, class: u64, most: u64) -> Option<GpuBuffer> {
    let size = free
        .iter()
        .filter(|(&size, list)| size >= class && size <= most && !list.is_empty())
        .map(|(&size, _)| size)
        .min()?;
    free.get_mut(&size).and_then(Vec::pop)
}

/// Dispatches `Context::realize_profiled` times at most (two timestamps each; WebGPU allows
/// 4,096 queries per set).
pub const PROFILE_MAX_DISPATCHES: usize = 2048;

/// One dispatch's GPU time, from `Context::realize_profiled`.
#[derive(Clone, Debug)]
pub struct DispatchTime {
    /// The kernel's op name, or `fused[<ops>]` for a generated elementwise kernel.
    pub kernel: String,
    /// Seconds between the start and the end of its compute pass.
    pub seconds: f64,
}

/// The timestamp queries of a profiled realization and the buffers they are read through.
/// (Native only: reading them back blocks.)
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) struct ProfileQueries {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
    period_ns: f64,
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
impl ProfileQueries {
    fn new(ctx: &Context) -> ProfileQueries {
        let n = 2 * PROFILE_MAX_DISPATCHES as u64;
        let device = ctx.device();
        ProfileQueries {
            set: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("kiln profile"),
                ty: wgpu::QueryType::Timestamp,
                count: n as u32,
            }),
            resolve: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("kiln profile resolve"),
                size: 8 * n,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            read: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("kiln profile read"),
                size: 8 * n,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            period_ns: f64::from(ctx.queue().get_timestamp_period()),
        }
    }

    /// The first `2 * dispatches` timestamps, once the GPU is done.
    #[cfg(not(target_arch = "wasm32"))]
    fn read(&self, ctx: &Context, dispatches: usize) -> Result<Vec<u64>> {
        if dispatches == 0 {
            return Ok(Vec::new());
        }
        let bytes = 16 * dispatches as u64;
        let (tx, rx) = futures::channel::oneshot::channel();
        self.read
            .slice(..bytes)
            .map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        ctx.poll_wait()?;
        pollster::block_on(rx)
            .map_err(|_| Error::Readback("profile map callback dropped".into()))?
            .map_err(|e| Error::Readback(e.to_string()))?;
        let ticks = {
            let view = self
                .read
                .slice(..bytes)
                .get_mapped_range()
                .map_err(|e| Error::Readback(e.to_string()))?;
            // (The mapped bytes need not be 8-aligned, so no cast.)
            view.chunks_exact(8)
                .map(|c| {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(c);
                    u64::from_le_bytes(w)
                })
                .collect::<Vec<u64>>()
        };
        self.read.unmap();
        Ok(ticks)
    }
}

struct Step<'a> {
    node: &'a Node,
    kernel: &'a Arc<dyn Kernel>,
    inputs: &'a [Value],
}

/// One dispatch of a realization: step `step`'s own kernel, or (`fused`) a generated kernel
/// computing a group of elementwise steps whose root is `step`.
struct Unit {
    step: usize,
    /// The buffers it reads, in binding order; `Src::Step` names a unit here.
    srcs: Vec<Src>,
    fused: Option<fusion::Fused>,
}

fn grid_error(op: &'static str, needed: u64, max_per_dim: u64) -> Error {
    Error::LimitExceeded {
        op,
        what: "the dispatch grid".into(),
        needed,
        limit_name: "max_compute_workgroups_per_dimension (squared)",
        limit: max_per_dim * max_per_dim,
    }
}

/// Hashes node ids (small sequential integers) with one multiplication, as FxHash does:
/// SipHash was a visible part of realizing long chains.
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

type IdMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<IdHasher>>;

/// Where a step's input lives during the realization.
#[derive(Clone)]
enum Src {
    Storage(Arc<Storage>),
    /// Output `k` of step `j`.
    Step(usize, usize),
}

/// An input buffer that a unit's output takes over (an in-place update).
struct Donation {
    /// Index of the donating input among the unit's inputs (= its step's inputs).
    input: usize,
    /// The output written over it.
    output: usize,
    storage: Arc<Storage>,
}

/// Which units compute in place. A unit gets all of its kernel's [`Kernel::donations`] or none,
/// and a donated input must be a realized buffer of the same size that:
/// - no handle outside this realization can reach (every handle to its node is an input of a
///   step here), so no one can observe its old value afterwards;
/// - no later unit reads, and the unit itself reads once (fusion moves a group to its root's
///   position, so this is decided over units, not steps).
///
/// Only kept outputs take donations (an intermediate's buffer would go back to the pool).
fn donations(
    steps: &[Step<'_>],
    units: &[Unit],
    unit_keep: &[bool],
    index: &IdMap<usize>,
) -> Vec<Vec<Donation>> {
    let mut out: Vec<Vec<Donation>> = units.iter().map(|_| Vec::new()).collect();
    if !units
        .iter()
        .any(|u| u.fused.is_none() && !steps[u.step].kernel.donations().is_empty())
    {
        return out;
    }
    let mut handles: IdMap<usize> = IdMap::default();
    for step in steps {
        for t in step.inputs {
            if !index.contains_key(&t.node.id) {
                *handles.entry(t.node.id).or_default() += 1;
            }
        }
    }
    let mut last_read: HashMap<u64, usize> = HashMap::new();
    for (u, unit) in units.iter().enumerate() {
        for src in &unit.srcs {
            if let Src::Storage(s) = src {
                last_read.insert(s.buf.id, u);
            }
        }
    }
    for (u, unit) in units.iter().enumerate() {
        let step = &steps[unit.step];
        let pairs = step.kernel.donations();
        if pairs.is_empty() || unit.fused.is_some() || !unit_keep[u] {
            continue;
        }
        let mut plan = Vec::with_capacity(pairs.len());
        for &(input, output) in pairs {
            let (Some(t), Some(Src::Storage(s)), Some(spec)) = (
                step.inputs.get(input),
                unit.srcs.get(input),
                step.node.outs.get(output),
            ) else {
                break;
            };
            let same_size = t
                .node
                .outs
                .get(t.out)
                .is_some_and(|o| o.bytes() == spec.bytes() && o.dtype == spec.dtype);
            let reads_here = unit
                .srcs
                .iter()
                .filter(|x| matches!(x, Src::Storage(o) if o.buf.id == s.buf.id))
                .count();
            let unobservable = handles.get(&t.node.id) == Some(&Arc::strong_count(&t.node));
            if !(same_size
                && reads_here == 1
                && last_read.get(&s.buf.id) == Some(&u)
                && unobservable)
            {
                break;
            }
            plan.push(Donation {
                input,
                output,
                storage: s.clone(),
            });
        }
        if plan.len() == pairs.len() {
            out[u] = plan;
        }
    }
    out
}

/// Computes every pending node the targets depend on, in one submission (see
/// `Context::realize`). Returns once the work is submitted, without waiting for the GPU.
pub(crate) fn realize(ctx: &Context, targets: &[Value]) -> Result<()> {
    realize_with(ctx, targets, None, None)
}

/// [`realize`], with GPU timestamps written around the work into `timer`.
pub(crate) fn realize_timed(ctx: &Context, targets: &[Value], timer: &GpuTimer) -> Result<()> {
    realize_with(ctx, targets, Some(timer), None)
}

/// [`realize`] with every dispatch in a compute pass of its own between two GPU timestamps;
/// returns each dispatch's kernel and GPU time, in order (see `Context::realize_profiled`).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn realize_profiled(ctx: &Context, targets: &[Value]) -> Result<Vec<DispatchTime>> {
    if !ctx.has_timestamps() {
        return Err(Error::invalid(
            "realize_profiled",
            "the adapter has no timestamp queries",
        ));
    }
    let queries = ProfileQueries::new(ctx);
    let mut names = Vec::new();
    realize_with(ctx, targets, None, Some((&queries, &mut names)))?;
    let ticks = queries.read(ctx, names.len())?;
    Ok(names
        .into_iter()
        .zip(ticks.chunks_exact(2))
        .map(|(kernel, t)| DispatchTime {
            kernel,
            seconds: t[1].wrapping_sub(t[0]) as f64 * queries.period_ns * 1e-9,
        })
        .collect())
}

/// One realization: the phases listed at the top of this module.
fn realize_with(
    ctx: &Context,
    targets: &[Value],
    timer: Option<&GpuTimer>,
    mut profile: Option<(&ProfileQueries, &mut Vec<String>)>,
) -> Result<()> {
    let _guard = lock(&ctx.inner.realize_lock);
    ctx.take_uncaptured("an earlier operation")?;

    // 1. Collect pending nodes in post-order.
    let mut order: Vec<Arc<Node>> = Vec::new();
    let mut index: IdMap<usize> = IdMap::default();
    let mut stack: Vec<(Arc<Node>, bool)> = Vec::new();
    // Pushed in reverse, so the first target's work is ordered first: callers can put what
    // should run early first (a training step lists the parameters from the first layer,
    // so the whole backward pass runs before the updates that overwrite the weights).
    for t in targets.iter().rev() {
        stack.push((t.node.clone(), false));
    }
    while let Some((node, expanded)) = stack.pop() {
        if index.contains_key(&node.id) {
            continue;
        }
        if expanded {
            index.insert(node.id, order.len());
            order.push(node);
            continue;
        }
        let state = lock(&node.state);
        match &*state {
            NodeState::Realized(_) => continue,
            NodeState::Consumed => {
                return Err(Error::invalid(
                    "realize",
                    "tensor was recycled by a concurrent realization on another thread",
                ))
            }
            NodeState::Pending { inputs, .. } => {
                stack.push((node.clone(), true));
                for t in inputs.iter().rev() {
                    if !index.contains_key(&t.node.id) {
                        stack.push((t.node.clone(), false));
                    }
                }
            }
        }
    }
    drop(stack);
    if order.is_empty() {
        return Ok(());
    }

    // 2. Lock every collected node until its result is published: steps borrow their
    //    kernels and inputs from the locked states instead of cloning them. (Realizations
    //    are serialized, and no other code locks two node states at once.)
    let mut states: Vec<MutexGuard<'_, NodeState>> = order.iter().map(|n| lock(&n.state)).collect();

    // 3. Count uses inside the pending graph; anything referenced beyond them is kept.
    let mut uses = vec![0usize; order.len()];
    for state in &states {
        if let NodeState::Pending { inputs, .. } = &**state {
            for t in inputs {
                if let Some(&j) = index.get(&t.node.id) {
                    uses[j] += 1;
                }
            }
        }
    }
    let mut keep: Vec<bool> = order
        .iter()
        .zip(&uses)
        .map(|(n, &u)| Arc::strong_count(n) > 1 + u)
        .collect();
    for t in targets {
        if let Some(&i) = index.get(&t.node.id) {
            keep[i] = true;
        }
    }

    let steps: Vec<Step<'_>> = order
        .iter()
        .zip(&states)
        .map(|(node, state)| match &**state {
            NodeState::Pending { kernel, inputs } => Ok(Step {
                node,
                kernel,
                inputs,
            }),
            _ => Err(Error::invalid(
                "realize",
                "graph changed during realization",
            )),
        })
        .collect::<Result<_>>()?;

    let mut srcs: Vec<Vec<Src>> = Vec::with_capacity(steps.len());
    for step in &steps {
        let mut s = Vec::with_capacity(step.inputs.len());
        for t in step.inputs {
            match index.get(&t.node.id) {
                Some(&j) => s.push(Src::Step(j, t.out)),
                None => s.push(Src::Storage(t.storage()?)),
            }
        }
        srcs.push(s);
    }

    // 4. Fuse elementwise chains: each unit is one dispatch, either a step's own kernel
    //    or a generated kernel computing a group of steps (see `fusion`).
    let fused_into = if ctx.fusion() {
        fusion::plan(&steps, &srcs, &keep, fusion::MAX_OPS)
    } else {
        vec![None; steps.len()]
    };
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    {
        let mut root_of: Vec<usize> = (0..steps.len()).collect();
        for j in (0..steps.len()).rev() {
            if let Some(i) = fused_into[j] {
                root_of[j] = root_of[i];
            }
        }
        for (j, into) in fused_into.iter().enumerate() {
            if into.is_some() {
                members[root_of[j]].push(j);
            }
        }
    }
    let mut unit_of = vec![usize::MAX; steps.len()];
    let mut units: Vec<Unit> = Vec::new();
    for (i, into) in fused_into.iter().enumerate() {
        if into.is_some() {
            continue;
        }
        unit_of[i] = units.len();
        let (inputs, fused) = if members[i].is_empty() {
            (std::mem::take(&mut srcs[i]), None)
        } else {
            members[i].push(i);
            let f = fusion::build(&steps, &srcs, &fused_into, &members[i]);
            (f.inputs.clone(), Some(f))
        };
        // Every step a unit reads is a unit of its own (a fused step's only reader is
        // inside its group).
        let inputs = inputs
            .into_iter()
            .map(|s| match s {
                Src::Step(j, k) => Src::Step(unit_of[j], k),
                other => other,
            })
            .collect();
        units.push(Unit {
            step: i,
            srcs: inputs,
            fused,
        });
    }
    drop(srcs);
    drop(members);
    let mut unit_last_use: Vec<usize> = (0..units.len()).collect();
    for (u, unit) in units.iter().enumerate() {
        for src in &unit.srcs {
            if let Src::Step(j, _) = *src {
                unit_last_use[j] = u;
            }
        }
    }
    let unit_keep: Vec<bool> = units.iter().map(|u| keep[u.step]).collect();
    let donated = donations(&steps, &units, &unit_keep, &index);

    // 5. Plan buffers by liveness.
    // `assigned[u][k]` is the buffer of unit u's output k; `acquired` holds each buffer
    // taken from the pool once, so it can be returned once.
    let mut assigned: Vec<Vec<GpuBuffer>> = Vec::with_capacity(units.len());
    let mut acquired: Vec<GpuBuffer> = Vec::new();
    {
        let mut free: HashMap<u64, Vec<GpuBuffer>> = HashMap::new();
        let mut recycled = vec![false; units.len()];
        let mut pool = lock(&ctx.inner.pool);
        for (u, unit) in units.iter().enumerate() {
            let node = &steps[unit.step].node;
            let mut outs = Vec::with_capacity(node.outs.len());
            for (k, spec) in node.outs.iter().enumerate() {
                if let Some(d) = donated[u].iter().find(|d| d.output == k) {
                    outs.push(d.storage.buf.clone());
                    continue;
                }
                let bytes = spec.bytes().div_ceil(4).max(1) * 4;
                let class = pool.class(bytes);
                // A kept output outlives the realization: only its own class fits it, so no
                // waste persists; an intermediate may take a free buffer up to twice its
                // class, so a dead activation's buffer holds a smaller one.
                let most = if unit_keep[u] { class } else { 2 * class };
                let buf = match best_fit(&mut free, class, most) {
                    Some(b) => b,
                    None => {
                        let b = pool.acquire(&ctx.inner.device, BufKind::Storage, bytes);
                        acquired.push(b.clone());
                        b
                    }
                };
                outs.push(buf);
            }
            assigned.push(outs);
            for src in &unit.srcs {
                if let Src::Step(j, _) = *src {
                    if !unit_keep[j] && unit_last_use[j] == u && !recycled[j] {
                        recycled[j] = true;
                        for b in &assigned[j] {
                            free.entry(b.size).or_default().push(b.clone());
                        }
                    }
                }
            }
        }
    }
    {
        // Over units: the outputs of fused-away steps never exist.
        let bytes: Vec<u64> = units
            .iter()
            .zip(&donated)
            .map(|(u, d)| {
                let outs = &steps[u.step].node.outs;
                let all: u64 = outs.iter().map(|o| o.bytes()).sum();
                // Outputs written over donated inputs take no new memory.
                all - d.iter().map(|d| outs[d.output].bytes()).sum::<u64>()
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        let input_bytes = steps
            .iter()
            .flat_map(|s| s.inputs.iter())
            .filter(|t| !index.contains_key(&t.node.id) && seen.insert((t.node.id, t.out)))
            .filter_map(|t| t.node.outs.get(t.out).map(|o| o.bytes()))
            .sum();
        *lock(&ctx.inner.last_plan) = PlanStats {
            steps: steps.len(),
            live_intermediate_peak_bytes: live_peak(&bytes, &unit_keep, &unit_last_use, false),
            live_peak_with_kept_bytes: live_peak(&bytes, &unit_keep, &unit_last_use, true),
            kept_bytes: (0..units.len())
                .filter(|&u| unit_keep[u])
                .map(|u| bytes[u])
                .sum(),
            input_bytes,
            planned_bytes: acquired.iter().map(|b| b.size).sum(),
        };
    }
    if ctx.inner.poison.load(std::sync::atomic::Ordering::Relaxed) {
        for ((unit, bufs), d) in units.iter().zip(&assigned).zip(&donated) {
            for (k, (spec, buf)) in steps[unit.step].node.outs.iter().zip(bufs).enumerate() {
                if d.iter().any(|d| d.output == k) {
                    continue; // holds the donated input's values, which the kernel reads
                }
                let words = spec.bytes().div_ceil(4) as usize;
                if words > 0 {
                    let nan = vec![f32::NAN; words];
                    ctx.queue()
                        .write_buffer(&buf.buffer, 0, bytemuck::cast_slice(&nan));
                }
            }
        }
    }
    let release = |ctx: &Context, bufs: Vec<GpuBuffer>| {
        let mut pool = lock(&ctx.inner.pool);
        for b in bufs {
            pool.release(b);
        }
    };

    // 6. Encode and submit.
    let unit_names: Vec<String> = if profile.is_some() {
        units
            .iter()
            .map(|u| match &u.fused {
                Some(f) => format!("fused[{}]", f.ops),
                None => steps[u.step].kernel.name().to_string(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut launches: Vec<(Vec<u32>, u64)> = Vec::with_capacity(units.len());
    let mut pipelines = Vec::with_capacity(units.len());
    let max_per_dim = u64::from(ctx.inner.limits.max_compute_workgroups_per_dimension);
    let (mut fused_kernels, mut fused_ops) = (0u64, 0u64);
    for (unit, d) in units.iter_mut().zip(&donated) {
        let step = &steps[unit.step];
        let (checked, launch) = match unit.fused.take() {
            Some(f) => {
                let workgroups = f.numel.div_ceil(256) as u64;
                let checked = if workgroups > max_per_dim * max_per_dim {
                    Err(grid_error(step.kernel.name(), workgroups, max_per_dim))
                } else if f.inputs.len() > fusion::MAX_READS || f.params.len() > fusion::MAX_WORDS {
                    // `fusion::plan` splits groups before this; a failure here is a bug.
                    Err(Error::invalid(
                        step.kernel.name(),
                        format!(
                            "fused kernel over limits: {} inputs, {} parameter words",
                            f.inputs.len(),
                            f.params.len()
                        ),
                    ))
                } else {
                    ctx.fused_pipeline(&f.program, f.inputs.len(), || fusion::wgsl(&f.program))
                };
                if workgroups > 0 {
                    fused_kernels += 1;
                    fused_ops += f.ops as u64;
                }
                (checked, (f.params, workgroups))
            }
            None => {
                let shapes: Vec<&[usize]> =
                    step.inputs.iter().map(|t| t.shape.as_slice()).collect();
                let out = &step.node.outs[0].shape;
                let launch = if d.is_empty() {
                    Some(step.kernel.launch(&shapes, out))
                } else {
                    step.kernel.launch_in_place(&shapes, out)
                };
                let Some(launch) = launch else {
                    release(ctx, acquired);
                    return Err(Error::invalid(
                        step.kernel.name(),
                        "kernel offers donations but no in-place launch",
                    ));
                };
                let reads = step.inputs.len() - d.len();
                let checked = if launch.params.len() * 4 > PARAMS_BYTES as usize {
                    Err(Error::invalid(
                        step.kernel.name(),
                        "parameter block over 256 bytes",
                    ))
                } else if launch.key.reads != reads || launch.key.writes != step.node.outs.len() {
                    Err(Error::invalid(
                        step.kernel.name(),
                        format!(
                            "kernel binds {} inputs and {} outputs, the op has {} and {}",
                            launch.key.reads,
                            launch.key.writes,
                            reads,
                            step.node.outs.len()
                        ),
                    ))
                } else if launch.workgroups > max_per_dim * max_per_dim {
                    Err(grid_error(
                        step.kernel.name(),
                        launch.workgroups,
                        max_per_dim,
                    ))
                } else {
                    ctx.pipeline(&launch.key)
                };
                (checked, (launch.params, launch.workgroups))
            }
        };
        match checked {
            Ok(p) => pipelines.push(p),
            Err(e) => {
                release(ctx, acquired);
                return Err(e);
            }
        }
        launches.push(launch);
    }
    let align = u64::from(ctx.inner.limits.min_uniform_buffer_offset_alignment);
    let stride = PARAMS_BYTES.div_ceil(align) * align;
    let active: Vec<usize> = (0..units.len()).filter(|&i| launches[i].1 > 0).collect();
    let per_submit = (ctx.inner.limits.max_buffer_size / stride).max(1) as usize;
    let chunks: Vec<&[usize]> = if active.is_empty() {
        vec![&[][..]]
    } else {
        active.chunks(per_submit).collect()
    };
    let n_chunks = chunks.len();
    let mut param_bufs = Vec::new();
    let ((), err) = ctx.scoped(|| {
        for (c, chunk) in chunks.iter().enumerate() {
            let mut arena = vec![0u8; (chunk.len().max(1) as u64 * stride) as usize];
            for (k, &i) in chunk.iter().enumerate() {
                let at = k * stride as usize;
                let words = bytemuck::cast_slice::<u32, u8>(&launches[i].0);
                arena[at..at + words.len()].copy_from_slice(words);
            }
            let params = ctx.acquire(BufKind::Uniform, arena.len() as u64);
            ctx.queue().write_buffer(&params.buffer, 0, &arena);
            let mut enc = ctx
                .device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("kiln realize"),
                });
            {
                let timestamp_writes = timer.map(|t| wgpu::ComputePassTimestampWrites {
                    query_set: &t.queries,
                    beginning_of_pass_write_index: (c == 0).then_some(0),
                    end_of_pass_write_index: (c + 1 == n_chunks).then_some(1),
                });
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("kiln realize"),
                    timestamp_writes,
                });
                for (k, &i) in chunk.iter().enumerate() {
                    if let Some((q, names)) = profile.as_mut() {
                        // A pass of its own per timed dispatch, between two timestamps.
                        if names.len() < PROFILE_MAX_DISPATCHES {
                            let at = 2 * names.len() as u32;
                            names.push(unit_names[i].clone());
                            drop(pass);
                            pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                                label: Some("kiln profiled dispatch"),
                                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                                    query_set: &q.set,
                                    beginning_of_pass_write_index: Some(at),
                                    end_of_pass_write_index: Some(at + 1),
                                }),
                            });
                        }
                    }
                    let mut bound: Vec<&GpuBuffer> =
                        Vec::with_capacity(units[i].srcs.len() + assigned[i].len());
                    for (j, src) in units[i].srcs.iter().enumerate() {
                        if donated[i].iter().any(|d| d.input == j) {
                            continue; // read through its output binding
                        }
                        bound.push(match src {
                            Src::Storage(s) => &s.buf,
                            Src::Step(j, k) => &assigned[*j][*k],
                        });
                    }
                    let reads = bound.len();
                    bound.extend(assigned[i].iter());
                    let bg =
                        ctx.bind_group(reads, assigned[i].len(), &params, PARAMS_BYTES, &bound);
                    pass.set_pipeline(&pipelines[i]);
                    pass.set_bind_group(0, &bg, &[(k as u64 * stride) as u32]);
                    let wg = launches[i].1;
                    let y = wg.div_ceil(max_per_dim);
                    let x = wg.div_ceil(y);
                    pass.dispatch_workgroups(x as u32, y as u32, 1);
                }
            }
            if let (Some(t), true) = (timer, c + 1 == n_chunks) {
                enc.resolve_query_set(&t.queries, 0..2, &t.resolve, 0);
                enc.copy_buffer_to_buffer(&t.resolve, 0, &t.read, 0, 16);
            }
            if let (Some((q, names)), true) = (profile.as_ref(), c + 1 == n_chunks) {
                let n = names.len() as u32;
                if n > 0 {
                    enc.resolve_query_set(&q.set, 0..2 * n, &q.resolve, 0);
                    enc.copy_buffer_to_buffer(&q.resolve, 0, &q.read, 0, 16 * u64::from(n));
                }
            }
            ctx.queue().submit([enc.finish()]);
            param_bufs.push(params);
        }
    });
    release(ctx, param_bufs);
    if let Some(message) = err {
        release(ctx, acquired);
        let names: Vec<&str> = steps.iter().map(|s| s.kernel.name()).collect();
        return Err(Error::Gpu {
            during: format!("realization of [{}]", names.join(", ")),
            message,
        });
    }
    {
        let mut pool = lock(&ctx.inner.pool);
        pool.stats.realizations += 1;
        pool.stats.submissions += n_chunks as u64;
        pool.stats.dispatches += active.len() as u64;
        pool.stats.fused_kernels += fused_kernels;
        pool.stats.fused_ops += fused_ops;
        pool.stats.last_dispatches = active.len() as u64;
    }

    // 7. Publish results; recycle intermediates.
    let weak = Arc::downgrade(&ctx.inner);
    let mut kept_ids = std::collections::HashSet::new();
    drop(steps);
    for (i, state) in states.iter_mut().enumerate() {
        if keep[i] {
            // Kept steps are never fused into a consumer, so each has its own unit.
            let storages = assigned[unit_of[i]]
                .iter()
                .map(|b| {
                    kept_ids.insert(b.id);
                    Arc::new(Storage::new(b.clone(), weak.clone()))
                })
                .collect();
            // The donors' buffers now belong to this node: their storages must not return
            // them to the pool when the (unobservable) old nodes drop.
            for d in &donated[unit_of[i]] {
                d.storage
                    .donated
                    .store(true, std::sync::atomic::Ordering::Release);
            }
            **state = NodeState::Realized(storages);
        } else {
            **state = NodeState::Consumed;
        }
    }
    drop(states);
    drop(units);
    release(
        ctx,
        acquired
            .into_iter()
            .filter(|b| !kept_ids.contains(&b.id))
            .collect(),
    );
    Ok(())
}
