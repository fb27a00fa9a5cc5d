//! Layers, models, losses and metrics for training on the GPU.
//!
//! A layer owns [`Parameter`]s: shared, swappable handles to tensors. During a training step the
//! trainer marks each parameter as a gradient leaf, runs the forward pass, asks
//! [`crate::autograd::grad`] for the gradients, and replaces every parameter with the
//! optimizer's updated tensor; all of it is recorded lazily and realized in one submission.

pub mod checkpoint;
pub mod init;
pub mod layers;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod zoo;

use crate::error::Result;
use crate::Tensor;

pub use crate::optim::Parameter;
pub use layers::*;
pub use loss::{cross_entropy_with_logits, Loss};
pub use metrics::Metric;
pub use model::{EvalResult, FitOptions, History, Sequential};

/// One layer of a model.
pub trait Layer: Send + Sync {
    /// The layer's kind and configuration, e.g. `Dense(784 -> 128)`.
    fn describe(&self) -> String;

    /// Applies the layer. `training` switches dropout masks and batch statistics on.
    fn forward(&self, x: &Tensor, training: bool) -> Result<Tensor>;

    /// Trainable parameters.
    fn parameters(&self) -> Vec<Parameter> {
        Vec::new()
    }

    /// Non-trainable state saved in checkpoints (batch-norm running statistics).
    fn buffers(&self) -> Vec<Parameter> {
        Vec::new()
    }

    /// For a layer whose output is a softmax: its output before the softmax (the logits), so
    /// that a model can compute a cross-entropy from logits ([`cross_entropy_with_logits`]),
    /// which is stable where the log of a probability is not. `None` for every other layer.
    fn softmax_logits(&self, _x: &Tensor, _training: bool) -> Option<Result<Tensor>> {
        None
    }
}
