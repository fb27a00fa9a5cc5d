//! The executor: turns the pending part of the graph into one command buffer.
//!
//! A realization ([`realize_with`]) runs these phases, each a function of its own, passing
//! plain data to the next:
//! 1. [`collect`]: walk back from the targets through pending nodes (iteratively, post-order),
//!    so every node comes after its inputs. Realized nodes are leaves.
//! 2. [`decide_kept`]: a node is kept (its buffer becomes its storage) if it is a target or if
//!    a handle outside the pending graph still points at it; every other node is an
//!    intermediate, recycled when the realization ends.
//! 3. [`fuse`] (unless turned off): elementwise intermediates with a single consumer join that
//!    consumer's group, and each group of two or more ops runs as one generated kernel (see
//!    [`fusion`]). From here on the unit of work is a dispatch: a step's own kernel, or a group.
//! 4. [`donations`]: which kept outputs are computed in place, over an input no one can
//!    observe again.
//! 5. [`plan`]: the [`planner`] places every output over plain data: kept outputs in pooled
//!    buffers of their own, intermediates at offsets inside arenas, sharing bytes with
//!    intermediates whose lifetimes do not meet theirs.
//! 6. [`encode`]: each dispatch's launch, checked against the device's limits, and its cached
//!    pipeline.
//! 7. [`submit`] once, inside a validation error scope, then [`publish`]: kept nodes become
//!    realized and drop their inputs; arenas go back to the pool (queue order makes that safe).
//!
pub mod fusion;
mod planner;

pub use fusion::MAX_OPS as FUSION_MAX_OPS;

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};

use crate::context::pool::{Binding, BufferSlice};
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
    /// Whether it reads one buffer through two bindings (`x.mul(&x)`, a view and its source).
    /// WebGPU forbids a writable binding that overlaps another binding of the same dispatch, so
    /// such a unit binds its inputs read-only (see [`Unit::aliased_srcs`]).
    aliased: bool,
}

impl Unit {
    /// Whether two of `srcs` name the same buffer range: the same output of one unit, or the
    /// same realized storage.
    fn aliased_srcs(srcs: &[Src]) -> bool {
        srcs.iter().enumerate().any(|(i, a)| {
            srcs[..i].iter().any(|b| match (a, b) {
                (Src::Step(j, k), Src::Step(l, m)) => (j, k) == (l, m),
                (Src::Storage(x), Src::Storage(y)) => x.buf.id == y.buf.id,
                _ => false,
            })
        })
    }
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

/// Phase 4, donate: which units compute in place. A unit gets all of its kernel's
/// [`Kernel::donations`] or none, and a donated input must be a realized buffer of the same size
/// that:
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
        // (An aliased unit binds its inputs read-only, so none can become a writable output.)
        if pairs.is_empty() || unit.fused.is_some() || !unit_keep[u] || unit.aliased {
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

/// One realization: the phases listed at the top of this module, in order.
fn realize_with(
    ctx: &Context,
    targets: &[Value],
    timer: Option<&GpuTimer>,
    profile: Option<(&ProfileQueries, &mut Vec<String>)>,
) -> Result<()> {
    let _guard = lock(&ctx.inner.realize_lock);
    ctx.take_uncaptured("an earlier operation")?;
    let Collected { order, index } = collect(targets)?;
    if order.is_empty() {
        return Ok(());
    }
    // Every collected node stays locked until its result is published: steps borrow their
    // kernels and inputs from the locked states instead of cloning them. (Realizations are
    // serialized, and no other code locks two node states at once.)
    let mut states: Vec<MutexGuard<'_, NodeState>> = order.iter().map(|n| lock(&n.state)).collect();
    let keep = decide_kept(&order, &states, &index, targets);
    let steps = steps_of(&order, &states)?;
    let mut units = fuse(ctx, &steps, &index, &keep)?;
    let donated = donations(&steps, &units.units, &units.keep, &index);
    let buffers = plan(ctx, &steps, &units, &donated);
    record_plan(ctx, &steps, &units, &donated, &index, &buffers);
    poison_outputs(ctx, &steps, &units, &donated, &buffers);
    let encoded = match encode(ctx, &steps, &mut units, &donated) {
        Ok(e) => e,
        Err(e) => {
            release(ctx, buffers.acquired);
            return Err(e);
        }
    };
    if let Err(e) = submit(ctx, &units, &donated, &buffers, &encoded, timer, profile) {
        release(ctx, buffers.acquired);
        let names: Vec<&str> = steps.iter().map(|s| s.kernel.name()).collect();
        return Err(Error::Gpu {
            during: format!("realization of [{}]", names.join(", ")),
            message: e,
        });
    }
    drop(steps);
    publish(ctx, &mut states, &keep, &units, &donated, buffers);
    Ok(())
}

/// Phase 1's result: the pending nodes every target depends on, each after its inputs, and
/// each one's position in `order`.
struct Collected {
    order: Vec<Arc<Node>>,
    index: IdMap<usize>,
}

/// Phase 1, collect: walk back from the targets through pending nodes (iteratively, post-order).
/// Realized nodes are leaves.
fn collect(targets: &[Value]) -> Result<Collected> {
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
    Ok(Collected { order, index })
}

/// Phase 2, keep or recycle: a node is kept (its buffer becomes its storage) if it is a target or a
/// handle outside the pending graph still points at it; every other node is an intermediate.
fn decide_kept(
    order: &[Arc<Node>],
    states: &[MutexGuard<'_, NodeState>],
    index: &IdMap<usize>,
    targets: &[Value],
) -> Vec<bool> {
    let mut uses = vec![0usize; order.len()];
    for state in states {
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
    keep
}

/// The steps of the locked, pending nodes.
fn steps_of<'a>(
    order: &'a [Arc<Node>],
    states: &'a [MutexGuard<'_, NodeState>],
) -> Result<Vec<Step<'a>>> {
    order
        .iter()
        .zip(states)
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
        .collect()
}

/// Phase 3's result: the dispatches, in order.
struct Units {
    units: Vec<Unit>,
    /// The unit of each step (`usize::MAX` for a step fused into another's kernel).
    unit_of: Vec<usize>,
    /// Each unit's last reader (itself when no unit reads it).
    last_use: Vec<usize>,
    /// Whether each unit's outputs are kept.
    keep: Vec<bool>,
}

/// Phase 3, fuse (unless turned off): elementwise intermediates with a single consumer join that
/// consumer's group, and each group of two or more ops runs as one generated kernel (see
/// [`fusion`]). The result is the list of dispatches.
fn fuse(ctx: &Context, steps: &[Step<'_>], index: &IdMap<usize>, keep: &[bool]) -> Result<Units> {
    let mut srcs: Vec<Vec<Src>> = Vec::with_capacity(steps.len());
    for step in steps {
        let mut s = Vec::with_capacity(step.inputs.len());
        for t in step.inputs {
            match index.get(&t.node.id) {
                Some(&j) => s.push(Src::Step(j, t.out)),
                None => s.push(Src::Storage(t.storage()?)),
            }
        }
        srcs.push(s);
    }
    let fused_into = if ctx.fusion() {
        fusion::plan(steps, &srcs, keep, fusion::MAX_OPS)
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
            let f = fusion::build(steps, &srcs, &fused_into, &members[i]);
            (f.inputs.clone(), Some(f))
        };
        // Every step a unit reads is a unit of its own (a fused step's only reader is
        // inside its group).
        let inputs: Vec<Src> = inputs
            .into_iter()
            .map(|s| match s {
                Src::Step(j, k) => Src::Step(unit_of[j], k),
                other => other,
            })
            .collect();
        let aliased = Unit::aliased_srcs(&inputs);
        units.push(Unit {
            step: i,
            srcs: inputs,
            fused,
            aliased,
        });
    }
    let mut last_use: Vec<usize> = (0..units.len()).collect();
    for (u, unit) in units.iter().enumerate() {
        for src in &unit.srcs {
            if let Src::Step(j, _) = *src {
                last_use[j] = u;
            }
        }
    }
    let keep = units.iter().map(|u| keep[u.step]).collect();
    Ok(Units {
        units,
        unit_of,
        last_use,
        keep,
    })
}

/// Phase 5's result: where every unit's outputs live.
struct Buffers {
    /// `outs[u][k]`: unit u's output k.
    outs: Vec<Vec<BufferSlice>>,
    /// The buffers taken from the pool, each once (kept outputs' buffers, arenas and the own
    /// buffers of oversized intermediates), so each goes back once.
    acquired: Vec<GpuBuffer>,
    /// The planner's answer, kept for the plan statistics.
    plan: planner::Plan,
}

/// Phase 5, plan: the [`planner`] places every output over plain data (sizes, lifetimes over the
/// units, kept and donated flags, the device's limits); then the buffers it names are taken from
/// the context's pool (which creates one only when it has none of that size class).
fn plan(ctx: &Context, steps: &[Step<'_>], units: &Units, donated: &[Vec<Donation>]) -> Buffers {
    let mut requests = Vec::new();
    for (u, unit) in units.units.iter().enumerate() {
        for (k, spec) in steps[unit.step].node.outs.iter().enumerate() {
            let role = if donated[u].iter().any(|d| d.output == k) {
                planner::Role::Donated
            } else if units.keep[u] {
                planner::Role::Kept
            } else if unit.aliased {
                // Its inputs are bound read-only, so its output must not share their arena.
                planner::Role::Isolated
            } else {
                planner::Role::Intermediate
            };
            requests.push(planner::Request {
                bytes: spec.bytes().div_ceil(4).max(1) * 4,
                first: u,
                last: units.last_use[u],
                role,
            });
        }
    }
    let mut pool = lock(&ctx.inner.pool);
    let limits = planner::Limits {
        offset_alignment: u64::from(ctx.inner.limits.min_storage_buffer_offset_alignment),
        max_binding: ctx.inner.limits.max_storage_buffer_binding_size,
        max_buffer: pool.max_buffer_size(),
    };
    let plan = planner::plan(&requests, &limits);
    let mut acquired: Vec<GpuBuffer> = Vec::new();
    let arenas: Vec<GpuBuffer> = plan
        .arenas
        .iter()
        .map(|&bytes| {
            let b = pool.acquire(&ctx.inner.device, BufKind::Storage, bytes);
            acquired.push(b.clone());
            b
        })
        .collect();
    let mut places = plan.places.iter();
    let mut outs = Vec::with_capacity(units.units.len());
    for (u, unit) in units.units.iter().enumerate() {
        let node = &steps[unit.step].node;
        let mut bufs = Vec::with_capacity(node.outs.len());
        for (k, (spec, place)) in node.outs.iter().zip(places.by_ref()).enumerate() {
            if let Some(d) = donated[u].iter().find(|d| d.output == k) {
                bufs.push(BufferSlice::whole(d.storage.buf.clone()));
                continue;
            }
            bufs.push(match *place {
                // (`Donated` is planned only for the outputs handled above.)
                planner::Place::Own { .. } | planner::Place::Donated => {
                    let b = pool.acquire(&ctx.inner.device, BufKind::Storage, spec.bytes());
                    acquired.push(b.clone());
                    BufferSlice::whole(b)
                }
                planner::Place::Arena {
                    arena,
                    offset,
                    size,
                } => BufferSlice {
                    buf: arenas[arena].clone(),
                    offset,
                    size: Some(size),
                },
            });
        }
        outs.push(bufs);
    }
    Buffers {
        outs,
        acquired,
        plan,
    }
}

/// Records what the plan needed (exact liveness over the units, and what it took) as
/// `Context::last_plan` reports it.
fn record_plan(
    ctx: &Context,
    steps: &[Step<'_>],
    units: &Units,
    donated: &[Vec<Donation>],
    index: &IdMap<usize>,
    buffers: &Buffers,
) {
    // Over units: the outputs of fused-away steps never exist.
    let bytes: Vec<u64> = units
        .units
        .iter()
        .zip(donated)
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
    let (keep, last_use) = (&units.keep, &units.last_use);
    *lock(&ctx.inner.last_plan) = PlanStats {
        steps: steps.len(),
        live_intermediate_peak_bytes: planner::live_peak(&bytes, keep, last_use, false),
        live_peak_with_kept_bytes: planner::live_peak(&bytes, keep, last_use, true),
        kept_bytes: (0..bytes.len())
            .filter(|&u| keep[u])
            .map(|u| bytes[u])
            .sum(),
        input_bytes,
        planned_bytes: buffers.acquired.iter().map(|b| b.size).sum(),
        arenas: buffers.plan.arenas.len(),
        arena_bytes: buffers.plan.arenas.iter().sum(),
    };
}

/// With `Context::set_poison_outputs` on, fills every output with NaN before the kernels run,
/// so a kernel that leaves part of its output unwritten is caught.
fn poison_outputs(
    ctx: &Context,
    steps: &[Step<'_>],
    units: &Units,
    donated: &[Vec<Donation>],
    buffers: &Buffers,
) {
    if !ctx.inner.poison.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    for ((unit, bufs), d) in units.units.iter().zip(&buffers.outs).zip(donated) {
        for (k, (spec, slice)) in steps[unit.step].node.outs.iter().zip(bufs).enumerate() {
            if d.iter().any(|d| d.output == k) {
                continue; // holds the donated input's values, which the kernel reads
            }
            let words = spec.bytes().div_ceil(4) as usize;
            if words > 0 {
                let nan = vec![f32::NAN; words];
                ctx.queue().write_buffer(
                    &slice.buf.buffer,
                    slice.offset,
                    bytemuck::cast_slice(&nan),
                );
            }
        }
    }
}

/// Returns buffers to the pool.
fn release(ctx: &Context, bufs: Vec<GpuBuffer>) {
    let mut pool = lock(&ctx.inner.pool);
    for b in bufs {
        pool.release(b);
    }
}

/// What a profile calls a unit's kernel.
#[derive(Clone, Copy)]
enum UnitName {
    Kernel(&'static str),
    /// A generated kernel computing this many ops.
    Fused(usize),
}

impl std::fmt::Display for UnitName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnitName::Kernel(name) => f.write_str(name),
            UnitName::Fused(ops) => write!(f, "fused[{ops}]"),
        }
    }
}

/// Phase 6's result: each unit's pipeline and launch.
struct Encoded {
    pipelines: Vec<wgpu::ComputePipeline>,
    /// Each unit's parameter words and workgroup count.
    launches: Vec<(Vec<u32>, u64)>,
    /// Each unit's kernel: its op name, or the op count of a generated kernel (for profiles).
    names: Vec<UnitName>,
    fused_kernels: u64,
    fused_ops: u64,
}

/// Phase 6, encode: each unit's launch (a generated kernel for a fused group, else its kernel's own
/// launch, in place where it takes donations), checked against the device's limits, and its cached
/// pipeline.
fn encode(
    ctx: &Context,
    steps: &[Step<'_>],
    units: &mut Units,
    donated: &[Vec<Donation>],
) -> Result<Encoded> {
    let n = units.units.len();
    let mut launches: Vec<(Vec<u32>, u64)> = Vec::with_capacity(n);
    let mut pipelines = Vec::with_capacity(n);
    let mut names = Vec::new();
    let max_per_dim = u64::from(ctx.inner.limits.max_compute_workgroups_per_dimension);
    let (mut fused_kernels, mut fused_ops) = (0u64, 0u64);
    for (unit, d) in units.units.iter_mut().zip(donated) {
        let step = &steps[unit.step];
        let (pipeline, launch) = match unit.fused.take() {
            Some(f) => {
                names.push(UnitName::Fused(f.ops));
                let workgroups = f.numel.div_ceil(256) as u64;
                let pipeline = if workgroups > max_per_dim * max_per_dim {
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
                    ctx.fused_pipeline(&f.program, f.inputs.len(), unit.aliased, || {
                        fusion::wgsl(&f.program)
                    })
                };
                if workgroups > 0 {
                    fused_kernels += 1;
                    fused_ops += f.ops as u64;
                }
                (pipeline?, (f.params, workgroups))
            }
            None => {
                names.push(UnitName::Kernel(step.kernel.name()));
                let shapes: Vec<&[usize]> =
                    step.inputs.iter().map(|t| t.shape.as_slice()).collect();
                let out = &step.node.outs[0].shape;
                let launch = if d.is_empty() {
                    Some(step.kernel.launch(&shapes, out))
                } else {
                    step.kernel.launch_in_place(&shapes, out)
                };
                let Some(launch) = launch else {
                    return Err(Error::invalid(
                        step.kernel.name(),
                        "kernel offers donations but no in-place launch",
                    ));
                };
                let reads = step.inputs.len() - d.len();
                if launch.params.len() * 4 > PARAMS_BYTES as usize {
                    return Err(Error::invalid(
                        step.kernel.name(),
                        "parameter block over 256 bytes",
                    ));
                } else if launch.key.reads != reads || launch.key.writes != step.node.outs.len() {
                    return Err(Error::invalid(
                        step.kernel.name(),
                        format!(
                            "kernel binds {} inputs and {} outputs, the op has {} and {}",
                            launch.key.reads,
                            launch.key.writes,
                            reads,
                            step.node.outs.len()
                        ),
                    ));
                } else if launch.workgroups > max_per_dim * max_per_dim {
                    return Err(grid_error(
                        step.kernel.name(),
                        launch.workgroups,
                        max_per_dim,
                    ));
                }
                (
                    ctx.pipeline(&launch.key, unit.aliased)?,
                    (launch.params, launch.workgroups),
                )
            }
        };
        pipelines.push(pipeline);
        launches.push(launch);
    }
    Ok(Encoded {
        pipelines,
        launches,
        names,
        fused_kernels,
        fused_ops,
    })
}

/// Phase 7a, submit: all parameter blocks go into one uniform buffer (one 256-byte slot per
/// dispatch, bound with a dynamic offset); every dispatch is recorded into one compute pass of one
/// command encoder, with cached bind groups, and submitted once inside a validation error scope.
/// The work is split into several submissions only if the parameter blocks would pass the device's
/// `max_buffer_size`.
fn submit(
    ctx: &Context,
    units: &Units,
    donated: &[Vec<Donation>],
    buffers: &Buffers,
    encoded: &Encoded,
    timer: Option<&GpuTimer>,
    mut profile: Option<(&ProfileQueries, &mut Vec<String>)>,
) -> std::result::Result<(), String> {
    let launches = &encoded.launches;
    let max_per_dim = u64::from(ctx.inner.limits.max_compute_workgroups_per_dimension);
    let align = u64::from(ctx.inner.limits.min_uniform_buffer_offset_alignment);
    let stride = PARAMS_BYTES.div_ceil(align) * align;
    let active: Vec<usize> = (0..launches.len()).filter(|&i| launches[i].1 > 0).collect();
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
                            names.push(encoded.names[i].to_string());
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
                    let outs = &buffers.outs[i];
                    let mut bound: Vec<Binding<'_>> =
                        Vec::with_capacity(units.units[i].srcs.len() + outs.len());
                    for (j, src) in units.units[i].srcs.iter().enumerate() {
                        if donated[i].iter().any(|d| d.input == j) {
                            continue; // read through its output binding
                        }
                        bound.push(match src {
                            Src::Storage(s) => Binding::whole(&s.buf),
                            Src::Step(j, k) => buffers.outs[*j][*k].binding(),
                        });
                    }
                    let reads = bound.len();
                    bound.extend(outs.iter().map(BufferSlice::binding));
                    let bg = ctx.bind_group(
                        reads,
                        outs.len(),
                        units.units[i].aliased,
                        &params,
                        PARAMS_BYTES,
                        &bound,
                    );
                    pass.set_pipeline(&encoded.pipelines[i]);
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
        return Err(message);
    }
    let mut pool = lock(&ctx.inner.pool);
    pool.stats.realizations += 1;
    pool.stats.submissions += n_chunks as u64;
    pool.stats.dispatches += active.len() as u64;
    pool.stats.fused_kernels += encoded.fused_kernels;
    pool.stats.fused_ops += encoded.fused_ops;
    pool.stats.last_dispatches = active.len() as u64;
    Ok(())
}

/// Phase 7b, publish: kept nodes become realized (and drop their inputs), the rest are consumed;
/// arenas and intermediates' own buffers go back to the pool (queue order makes that safe).
fn publish(
    ctx: &Context,
    states: &mut [MutexGuard<'_, NodeState>],
    keep: &[bool],
    units: &Units,
    donated: &[Vec<Donation>],
    buffers: Buffers,
) {
    let weak = Arc::downgrade(&ctx.inner);
    let mut kept_ids = std::collections::HashSet::new();
    for (i, state) in states.iter_mut().enumerate() {
        if keep[i] {
            // Kept steps are never fused into a consumer, so each has its own unit, and the
            // planner gives kept outputs whole buffers of their own.
            let u = units.unit_of[i];
            let storages = buffers.outs[u]
                .iter()
                .map(|s| {
                    debug_assert!(s.offset == 0 && s.size.is_none());
                    kept_ids.insert(s.buf.id);
                    Arc::new(Storage::new(s.buf.clone(), weak.clone()))
                })
                .collect();
            // The donors' buffers now belong to this node: their storages must not return
            // them to the pool when the (unobservable) old nodes drop.
            for d in &donated[u] {
                d.storage
                    .donated
                    .store(true, std::sync::atomic::Ordering::Release);
            }
            **state = NodeState::Realized(storages);
        } else {
            **state = NodeState::Consumed;
        }
    }
    release(
        ctx,
        buffers
            .acquired
            .into_iter()
            .filter(|b| !kept_ids.contains(&b.id))
            .collect(),
    );
}
