//! [`Parameter`]: the trainable slot an optimizer updates and a layer reads.

use std::sync::{Arc, Mutex};

use crate::context::lock;
use crate::Tensor;

struct ParamState {
    name: String,
    value: Tensor,
    leaf: Option<Tensor>,
}

/// A named, shared, replaceable tensor: a layer's weight, bias, or running statistic.
/// Clones share the same slot, so the optimizer's update is seen by the layer.
#[derive(Clone)]
pub struct Parameter {
    inner: Arc<Mutex<ParamState>>,
}

impl std::fmt::Debug for Parameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = lock(&self.inner);
        write!(f, "Parameter({}, {:?})", s.name, s.value.shape())
    }
}

impl Parameter {
    /// A parameter holding `value`.
    pub fn new(name: impl Into<String>, value: Tensor) -> Self {
        Parameter {
            inner: Arc::new(Mutex::new(ParamState {
                name: name.into(),
                value: value.detach(),
                leaf: None,
            })),
        }
    }

    /// The parameter's name (unique within a model after [`Sequential::compile`](crate::nn::Sequential::compile)).
    pub fn name(&self) -> String {
        lock(&self.inner).name.clone()
    }

    pub(crate) fn set_name(&self, name: String) {
        lock(&self.inner).name = name;
    }

    /// The current value (no autograd record).
    pub fn value(&self) -> Tensor {
        lock(&self.inner).value.clone()
    }

    /// Replaces the value (an optimizer step, a checkpoint load).
    pub fn set(&self, value: Tensor) {
        lock(&self.inner).value = value.detach();
    }

    /// What a forward pass should use: the gradient leaf while a training step tracks this
    /// parameter, else the plain value.
    pub fn get(&self) -> Tensor {
        let s = lock(&self.inner);
        s.leaf.clone().unwrap_or_else(|| s.value.clone())
    }

    /// Starts tracking: the value becomes a fresh gradient leaf, returned.
    pub fn track(&self) -> Tensor {
        let mut s = lock(&self.inner);
        let leaf = s.value.with_grad();
        s.leaf = Some(leaf.clone());
        leaf
    }

    /// Stops tracking.
    pub fn untrack(&self) {
        lock(&self.inner).leaf = None;
    }

    /// The shape.
    pub fn shape(&self) -> Vec<usize> {
        lock(&self.inner).value.shape().to_vec()
    }

    /// Whether two handles share one slot.
    pub fn same(&self, other: &Parameter) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}
