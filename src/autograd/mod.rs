//! Reverse-mode automatic differentiation.
//!
//! Ops on tensors that require gradients record a `GradFn` beside the executor's graph: the
//! op's backward rule and its input tensors. [`grad`] (or [`Tensor::backward`]) walks those
//! records from the outputs back to the inputs in reverse topological order, asks each rule for
//! its inputs' vector-Jacobian products, and sums contributions. Backward rules are written with
//! kiln ops (mostly dedicated backward kernels), so the whole backward pass is itself a lazy
//! graph: it is realized, with the forward pass if that is still pending, in one submission.
//!
//! Saved tensors are always detached (they carry no autograd record), so a rule that saves its
//! own output creates no reference cycle.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::context::lock;
use crate::error::{Error, Result};
use crate::Tensor;

/// The backward rule of one recorded op.
pub(crate) trait Backward: Send + Sync + fmt::Debug {
    /// The op's name, for errors.
    fn name(&self) -> &'static str;

    /// Given the gradients of the op's outputs (`None` where an output got no gradient, i.e.
    /// zero), returns one entry per input: its gradient, or `None` if the input gets none
    /// (not differentiable, or `needs[i]` is false). `inputs` are the op's inputs (detached).
    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>>;
}

/// One recorded differentiable op.
pub(crate) struct GradFn {
    id: u64,
    rule: Box<dyn Backward>,
    /// The op's inputs with their own autograd records.
    inputs: Vec<Tensor>,
    /// Shapes of the op's outputs (a missing output gradient is zero of this shape).
    out_shapes: Vec<Vec<usize>>,
}

impl fmt::Debug for GradFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GradFn({})", self.rule.name())
    }
}

/// What a tensor knows about its place in the autograd graph.
pub(crate) enum Meta {
    /// A leaf that requires gradients; `backward` accumulates into `grad`.
    Leaf {
        id: u64,
        grad: Mutex<Option<Tensor>>,
    },
    /// Output `out` of a recorded op.
    Op { f: Arc<GradFn>, out: usize },
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Meta::Leaf { id, .. } => write!(f, "Leaf({id})"),
            Meta::Op { f: g, out } => write!(f, "{g:?}[{out}]"),
        }
    }
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops on this thread record gradients.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(Cell::get)
}

/// Runs `f` with gradient recording off on this thread (inference, optimizer updates).
pub fn no_grad<T>(f: impl FnOnce() -> T) -> T {
    let prev = GRAD_ENABLED.with(|g| g.replace(false));
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            GRAD_ENABLED.with(|g| g.set(self.0));
        }
    }
    let _restore = Restore(prev);
    f()
}

fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Attaches a backward rule to freshly made `outputs` if any input requires gradients and
/// recording is on. Returns the outputs, tagged.
pub(crate) fn record(
    outputs: Vec<Tensor>,
    inputs: &[&Tensor],
    rule: impl Backward + 'static,
) -> Vec<Tensor> {
    if !is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
        return outputs;
    }
    let f = Arc::new(GradFn {
        id: next_id(),
        rule: Box::new(rule),
        inputs: inputs.iter().map(|t| (*t).clone()).collect(),
        out_shapes: outputs.iter().map(|t| t.shape.clone()).collect(),
    });
    outputs
        .into_iter()
        .enumerate()
        .map(|(out, mut t)| {
            t.grad = Some(Arc::new(Meta::Op { f: f.clone(), out }));
            t
        })
        .collect()
}

/// [`record`] for a single-output op.
pub(crate) fn record1(output: Tensor, inputs: &[&Tensor], rule: impl Backward + 'static) -> Tensor {
    let mut v = record(vec![output], inputs, rule);
    v.remove(0)
}

impl Tensor {
    /// Whether gradients flow back to (or through) this tensor.
    pub fn requires_grad(&self) -> bool {
        self.grad.is_some()
    }

    /// This tensor as a leaf that requires gradients (a parameter, or an input whose gradient
    /// you want). Shares the data; gradients accumulate in the returned handle and its clones.
    pub fn with_grad(&self) -> Tensor {
        let mut t = self.detach();
        t.grad = Some(Arc::new(Meta::Leaf {
            id: next_id(),
            grad: Mutex::new(None),
        }));
        t
    }

    /// The same data, cut off from the autograd graph.
    pub fn detach(&self) -> Tensor {
        Tensor {
            node: self.node.clone(),
            out: self.out,
            shape: self.shape.clone(),
            ctx: self.ctx.clone(),
            grad: None,
        }
    }

    /// The gradient accumulated in this leaf by [`Tensor::backward`], if any.
    pub fn grad(&self) -> Option<Tensor> {
        match self.grad.as_deref() {
            Some(Meta::Leaf { grad, .. }) => lock(grad).clone(),
            _ => None,
        }
    }

    /// Clears this leaf's accumulated gradient.
    pub fn zero_grad(&self) {
        if let Some(Meta::Leaf { grad, .. }) = self.grad.as_deref() {
            *lock(grad) = None;
        }
    }

    /// Back-propagates from this one-element tensor (a loss), accumulating gradients into every
    /// leaf that requires them. Records work only; reading a gradient realizes it.
    pub fn backward(&self) -> Result<()> {
        if self.numel() != 1 {
            return Err(Error::invalid(
                "backward",
                format!(
                    "needs a one-element tensor, got shape {:?}; use backward_with",
                    self.shape
                ),
            ));
        }
        let seed = Tensor::full(&self.ctx, &self.shape, 1.0)?;
        self.backward_with(&seed)
    }

    /// Back-propagates `upstream` (the gradient of some scalar with respect to this tensor)
    /// and accumulates into every leaf that requires gradients.
    pub fn backward_with(&self, upstream: &Tensor) -> Result<()> {
        let leaves = run(&[self], &[upstream])?;
        for (meta, g) in leaves {
            if let Meta::Leaf { grad, .. } = &*meta {
                let mut slot = lock(grad);
                *slot = Some(match slot.take() {
                    Some(prev) => no_grad(|| prev.add(&g))?,
                    None => g,
                });
            }
        }
        Ok(())
    }
}

/// Gradients of `Σ upstream_i ⊙ outputs_i` with respect to each of `wrt` (vector-Jacobian
/// products). An entry is `None` when that tensor does not influence the outputs. `wrt` may be
/// leaves or intermediate tensors that require gradients.
pub fn grad(
    outputs: &[&Tensor],
    upstream: &[&Tensor],
    wrt: &[&Tensor],
) -> Result<Vec<Option<Tensor>>> {
    let found = run_collect(outputs, upstream, wrt)?;
    Ok(found)
}

type Slot = (u64, usize);

/// Gradients by slot, and every leaf reached.
type Propagated = (HashMap<Slot, Tensor>, Vec<Arc<Meta>>);

fn key_of(meta: &Meta) -> Slot {
    match meta {
        Meta::Leaf { id, .. } => (*id, usize::MAX),
        Meta::Op { f, out } => (f.id, *out),
    }
}

fn accumulate(map: &mut HashMap<Slot, Tensor>, key: Slot, g: Tensor) -> Result<()> {
    let v = match map.remove(&key) {
        Some(prev) => prev.add(&g)?,
        None => g,
    };
    map.insert(key, v);
    Ok(())
}

/// Walks back from `outputs`; returns every leaf reached with its gradient.
fn run(outputs: &[&Tensor], upstream: &[&Tensor]) -> Result<Vec<(Arc<Meta>, Tensor)>> {
    let (grads, leaves) = propagate(outputs, upstream, &[])?;
    Ok(leaves
        .into_iter()
        .filter_map(|m| grads.get(&key_of(&m)).cloned().map(|g| (m, g)))
        .collect())
}

fn run_collect(
    outputs: &[&Tensor],
    upstream: &[&Tensor],
    wrt: &[&Tensor],
) -> Result<Vec<Option<Tensor>>> {
    let (grads, _) = propagate(outputs, upstream, wrt)?;
    Ok(wrt
        .iter()
        .map(|t| {
            t.grad
                .as_deref()
                .and_then(|m| grads.get(&key_of(m)).cloned())
        })
        .collect())
}

fn propagate(outputs: &[&Tensor], upstream: &[&Tensor], wrt: &[&Tensor]) -> Result<Propagated> {
    if outputs.len() != upstream.len() {
        return Err(Error::invalid(
            "grad",
            format!(
                "{} outputs but {} upstream gradients",
                outputs.len(),
                upstream.len()
            ),
        ));
    }
    for t in wrt {
        if !t.requires_grad() {
            return Err(Error::invalid(
                "grad",
                format!(
                    "a tensor of shape {:?} in wrt does not require grad",
                    t.shape
                ),
            ));
        }
    }
    no_grad(|| {
        // Topological order of the recorded ops (post-order DFS, iterative).
        let mut order: Vec<Arc<GradFn>> = Vec::new();
        let mut seen: HashMap<u64, ()> = HashMap::new();
        let mut leaves: Vec<Arc<Meta>> = Vec::new();
        let mut leaf_seen: HashMap<u64, ()> = HashMap::new();
        let mut stack: Vec<(Arc<Meta>, bool)> = Vec::new();
        for t in outputs {
            if let Some(m) = &t.grad {
                stack.push((m.clone(), false));
            }
        }
        while let Some((meta, expanded)) = stack.pop() {
            match &*meta {
                Meta::Leaf { id, .. } => {
                    if leaf_seen.insert(*id, ()).is_none() {
                        leaves.push(meta.clone());
                    }
                }
                Meta::Op { f, .. } => {
                    if seen.contains_key(&f.id) {
                        continue;
                    }
                    if expanded {
                        seen.insert(f.id, ());
                        order.push(f.clone());
                    } else {
                        stack.push((meta.clone(), true));
                        for inp in &f.inputs {
                            if let Some(m) = &inp.grad {
                                stack.push((m.clone(), false));
                            }
                        }
                    }
                }
            }
        }
        let mut grads: HashMap<Slot, Tensor> = HashMap::new();
        for (t, u) in outputs.iter().zip(upstream) {
            if u.shape != t.shape {
                return Err(Error::shape(
                    "grad (upstream vs output)",
                    &u.shape,
                    &t.shape,
                ));
            }
            if let Some(m) = &t.grad {
                accumulate(&mut grads, key_of(m), u.detach())?;
            }
        }
        let keep: std::collections::HashSet<Slot> = wrt
            .iter()
            .filter_map(|t| t.grad.as_deref().map(key_of))
            .collect();
        for f in order.iter().rev() {
            let outs: Vec<Option<Tensor>> = (0..f.out_shapes.len())
                .map(|k| {
                    if keep.contains(&(f.id, k)) {
                        grads.get(&(f.id, k)).cloned()
                    } else {
                        grads.remove(&(f.id, k))
                    }
                })
                .collect();
            if outs.iter().all(Option::is_none) {
                continue;
            }
            let inputs: Vec<Tensor> = f.inputs.iter().map(Tensor::detach).collect();
            let needs: Vec<bool> = f.inputs.iter().map(Tensor::requires_grad).collect();
            let gins = f.rule.backward(&outs, &inputs, &needs)?;
            if gins.len() != f.inputs.len() {
                return Err(Error::invalid(
                    f.rule.name(),
                    "backward rule returned the wrong number of gradients",
                ));
            }
            for ((inp, g), need) in f.inputs.iter().zip(gins).zip(&needs) {
                let (Some(g), true, Some(m)) = (g, *need, inp.grad.as_deref()) else {
                    continue;
                };
                if g.shape != inp.shape {
                    return Err(Error::shape(f.rule.name(), &g.shape, &inp.shape));
                }
                accumulate(&mut grads, key_of(m), g)?;
            }
        }
        Ok((grads, leaves))
    })
}

/// Backward of a reshape: reshape the gradient back.
#[derive(Debug)]
pub(crate) struct ReshapeBackward;

impl Backward for ReshapeBackward {
    fn name(&self) -> &'static str {
        "reshape"
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        _needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![match &grads[0] {
            Some(g) => Some(g.reshape(&inputs[0].shape)?),
            None => None,
        }])
    }
}

/// Sums a gradient computed in a broadcast shape down to `shape` (the operand's own shape):
/// over the leading dimensions the operand lacks and over dimensions where it has size 1.
pub(crate) fn sum_to_shape(g: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if g.shape == shape {
        return Ok(g.clone());
    }
    let lead = g.shape.len() - shape.len();
    let axes: Vec<isize> = (0..g.shape.len())
        .filter(|&i| i < lead || (shape[i - lead] == 1 && g.shape[i] != 1))
        .map(|i| i as isize)
        .collect();
    let summed = if axes.is_empty() {
        g.clone()
    } else {
        g.sum(&axes, true)?
    };
    summed.reshape(shape)
}
