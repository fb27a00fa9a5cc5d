//! The recorded graph: every tensor points at a node, and a node is either pending (an op and
//! its input tensors) or realized (a GPU buffer).

use std::fmt;
use std::sync::{Arc, Mutex, Weak};

use crate::context::ContextInner;
use crate::context::GpuBuffer;
use crate::shaders::PipelineKey;
use crate::DType;

/// What one kernel dispatch needs: the pipeline, the parameter words, and how many workgroups.
///
/// The executor spreads `workgroups` over the x and y grid dimensions so that neither passes
/// the per-dimension limit (65,535 in WebGPU). Shaders therefore compute a linear workgroup
/// index as `wid.y * nwg.x + wid.x`, and must return early when that index (or the element it
/// maps to) is past their logical extent, since the grid can be slightly larger than asked.
#[derive(Clone, Debug)]
pub(crate) struct Launch {
    pub key: PipelineKey,
    /// The bytes of the kernel's `#[repr(C)]` parameter struct as u32 words (at most 64),
    /// copied into its uniform `Params` (see `kernels::registry`, which builds every launch).
    pub params: Vec<u32>,
    pub workgroups: u64,
}

/// The Rust side of one recorded op: turns input and output shapes into a [`Launch`].
pub(crate) trait Kernel: Send + Sync + fmt::Debug {
    /// Op name, for errors and labels.
    fn name(&self) -> &'static str;
    /// The dispatch for these shapes. `inputs` are the input tensors' shapes in order; `out` is
    /// the first output's shape (kernels with more outputs know the others from their fields).
    fn launch(&self, inputs: &[&[usize]], out: &[usize]) -> Launch;
    /// The elementwise op this kernel computes, if it is one the executor may fuse with its
    /// neighbours into one generated kernel (see the executor's fusion). A kernel that answers
    /// `Some` must compute exactly that op on f32 inputs and write one f32 output.
    fn elementwise(&self) -> Option<crate::ir::Elementwise> {
        None
    }
    /// `(input, output)` pairs this kernel can compute in place: output `output` written over
    /// input `input`'s buffer, each element read before it is written by the same invocation
    /// (optimizer updates). The executor donates all of them or none, and only when nothing
    /// else can observe the inputs' old values (see `executor`).
    fn donations(&self) -> &'static [(usize, usize)] {
        &[]
    }
    /// The dispatch when every pair of [`Kernel::donations`] is donated: the donated inputs are
    /// not bound (the reads are the other inputs, in order), and the outputs, bound
    /// read_write, hold the donated inputs' values when the kernel starts.
    fn launch_in_place(&self, _inputs: &[&[usize]], _out: &[usize]) -> Option<Launch> {
        None
    }
}

/// GPU memory owned by a realized node. Returns its buffer to the pool when dropped, unless it
/// was donated to a later node (an in-place update), which owns the buffer from then on.
pub(crate) struct Storage {
    pub buf: GpuBuffer,
    pub ctx: Weak<ContextInner>,
    pub donated: std::sync::atomic::AtomicBool,
}

impl Storage {
    pub fn new(buf: GpuBuffer, ctx: Weak<ContextInner>) -> Storage {
        Storage {
            buf,
            ctx,
            donated: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        if self.donated.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        if let Some(inner) = self.ctx.upgrade() {
            crate::context::lock(&inner.pool).release(self.buf.clone());
        }
    }
}

pub(crate) enum NodeState {
    /// Recorded, not yet computed.
    Pending {
        kernel: Arc<dyn Kernel>,
        inputs: Vec<Value>,
    },
    /// Computed; output k lives in buffer k (contiguous, row-major).
    Realized(Vec<Arc<Storage>>),
    /// An intermediate whose buffer was recycled during a realization that no handle could
    /// observe. Only reachable if a handle was cloned from another thread mid-realization.
    Consumed,
}

/// The shape and type of one output of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OutSpec {
    /// The shape the producing kernel writes (views may reshape it).
    pub shape: Vec<usize>,
    pub dtype: DType,
}

impl OutSpec {
    pub fn bytes(&self) -> u64 {
        (crate::shape::numel(&self.shape) * self.dtype.size()) as u64
    }
}

/// What a pending node reads, and what a realization targets: output `out` of `node`, viewed
/// with `shape` (a view may reshape the output the kernel writes). Unlike a tensor it carries
/// no context handle and no gradient record: the graph is plain data.
#[derive(Clone)]
pub(crate) struct Value {
    pub node: Arc<Node>,
    pub out: usize,
    pub shape: Vec<usize>,
}

impl Value {
    /// The element type of the output.
    pub fn dtype(&self) -> DType {
        self.node.outs[self.out].dtype
    }

    /// The buffer of a realized output.
    pub fn storage(&self) -> crate::error::Result<Arc<Storage>> {
        let missing = |message: &str| crate::error::Error::Gpu {
            during: "readback".into(),
            message: message.into(),
        };
        match &*crate::context::lock(&self.node.state) {
            NodeState::Realized(s) => s
                .get(self.out)
                .cloned()
                .ok_or_else(|| missing("missing output buffer")),
            _ => Err(missing("tensor is not realized")),
        }
    }
}

/// One op in the graph, with one or more outputs (a tensor names a node and an output index).
pub(crate) struct Node {
    pub id: u64,
    pub outs: Vec<OutSpec>,
    pub state: Mutex<NodeState>,
}

impl Drop for Node {
    /// Dismantles long chains of pending nodes iteratively, so dropping a graph of a million
    /// recorded ops cannot overflow the stack.
    fn drop(&mut self) {
        let mut stack = take_inputs(self.state.get_mut().unwrap_or_else(|e| e.into_inner()));
        while let Some(t) = stack.pop() {
            if let Some(mut node) = Arc::into_inner(t.node) {
                let state = node.state.get_mut().unwrap_or_else(|e| e.into_inner());
                stack.extend(take_inputs(state));
            }
        }
    }
}

fn take_inputs(state: &mut NodeState) -> Vec<Value> {
    match state {
        NodeState::Pending { inputs, .. } => std::mem::take(inputs),
        _ => Vec::new(),
    }
}
