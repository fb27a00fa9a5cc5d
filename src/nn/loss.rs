//! Losses.

use crate::error::{Error, Result};
use crate::{DType, Tensor};

/// A training loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Mean categorical cross-entropy against class indices. With `from_logits: false` the
    /// model's output are probabilities; when its last layer reports the logits of its softmax
    /// (`Layer::softmax_logits`), the model computes [`cross_entropy_with_logits`] instead.
    CategoricalCrossEntropy {
        /// Whether the model outputs logits.
        from_logits: bool,
    },
    /// Mean squared error against f32 targets of the output's shape.
    Mse,
}

impl Loss {
    /// The loss of `output` against `target` (i32 class indices of the output's shape without
    /// the class axis, or f32 values for MSE), as a tensor of shape [].
    ///
    /// Class scores may be (N, C) or (N, S, C); the latter is treated as N·S positions.
    pub fn compute(self, output: &Tensor, target: &Tensor) -> Result<Tensor> {
        match self {
            Loss::Mse => {
                if output.shape() != target.shape() {
                    return Err(Error::shape("mse", output.shape(), target.shape()));
                }
                output.sub(target)?.square()?.mean_all()
            }
            Loss::CategoricalCrossEntropy { from_logits } => {
                if target.dtype() != DType::I32 {
                    return Err(Error::UnsupportedDType {
                        op: "categorical_cross_entropy (targets must be i32 classes)",
                        dtype: target.dtype(),
                    });
                }
                let c = *output.shape().last().unwrap_or(&0);
                let positions = output.numel() / c.max(1);
                if target.numel() != positions {
                    return Err(Error::shape(
                        "categorical_cross_entropy",
                        output.shape(),
                        target.shape(),
                    ));
                }
                let scores = output.reshape(&[positions, c])?;
                let labels = target.reshape(&[positions])?;
                if from_logits {
                    Ok(scores.softmax_cross_entropy(&labels, None)?.0)
                } else {
                    // Probabilities: log clipped away from 0, as Keras does (eps 1e-7); the
                    // log-softmax inside is the identity on log-probabilities that sum to 1.
                    let logp = scores
                        .maximum(&Tensor::full(output.context(), &[], 1e-7)?)?
                        .log()?;
                    Ok(logp.softmax_cross_entropy(&labels, None)?.0)
                }
            }
        }
    }
}

/// Mean softmax cross-entropy of `logits` (N, C) or (N, S, C) against i32 class `labels` (the
/// logits' shape without the class axis), as a tensor of shape []: the loss a model with a
/// softmax output is trained on, computed from the softmax's input.
pub fn cross_entropy_with_logits(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    Loss::CategoricalCrossEntropy { from_logits: true }.compute(logits, labels)
}
