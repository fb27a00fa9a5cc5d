//! Softmax cross-entropy loss with mean reduction and optional class weights (ONNX
//! `SoftmaxCrossEntropyLoss`), fused with its gradient (shaders/cross_entropy.wgsl).
//!
//! The forward pass is two kernels: one normalizes every (n, d…) position's class scores (one
//! workgroup or one invocation per position, as in softmax) and writes `log_prob` plus each
//! position's loss term and weight; one workgroup then sums those into the loss and the total
//! weight. The gradient with respect to the scores is one elementwise kernel that reads
//! `log_prob` (whose exponential is the softmax) and the total weight saved by the forward
//! pass, and folds in the upstream scalar: no softmax is recomputed and no separate scaling
//! pass is needed.

use crate::autograd::{record, Backward};
use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, CrossEntropyParams};
use crate::kernels::softmax::{softmax_grad, softmax_uses_small_path};
use crate::shape::numel;
use crate::{DType, Tensor};

const OP: &str = "softmax_cross_entropy";

/// Scores viewed as (N, C, D), with whether class weights are bound.
#[derive(Clone, Copy, Debug)]
struct CeDims {
    n: usize,
    classes: usize,
    inner: usize,
    has_weights: bool,
}

impl CeDims {
    fn rows(&self) -> usize {
        self.n * self.inner
    }

    fn params(&self) -> CrossEntropyParams {
        CrossEntropyParams {
            rows: self.rows() as u32,
            classes: self.classes as u32,
            inner: self.inner as u32,
            has_weights: u32::from(self.has_weights),
        }
    }
}

/// Step 1: log_prob and per-position (loss term, weight).
#[derive(Debug)]
struct CeRows(CeDims);

impl Kernel for CeRows {
    fn name(&self) -> &'static str {
        OP
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        let rows = self.0.rows();
        let (spec, workgroups) = if rows == 0 || self.0.classes == 0 {
            (&registry::CROSS_ENTROPY_SMALL, 0)
        } else if softmax_uses_small_path(rows, self.0.classes) {
            (&registry::CROSS_ENTROPY_SMALL, groups(rows, 256))
        } else {
            (&registry::CROSS_ENTROPY, rows as u64)
        };
        launch(spec, vec![], &self.0.params(), workgroups)
    }
}

/// Step 2: loss and total weight, one workgroup.
#[derive(Debug)]
struct CeTotal(CeDims);

impl Kernel for CeTotal {
    fn name(&self) -> &'static str {
        OP
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        launch(&registry::CROSS_ENTROPY_TOTAL, vec![], &self.0.params(), 1)
    }
}

/// dscores = (softmax − onehot)·w/Σw·upstream, elementwise.
#[derive(Debug)]
struct CeGrad(CeDims);

impl Kernel for CeGrad {
    fn name(&self) -> &'static str {
        "softmax_cross_entropy_backward"
    }

    fn launch(&self, _inputs: &[&[usize]], out: &[usize]) -> Launch {
        launch(
            &registry::CROSS_ENTROPY_BACKWARD,
            vec![],
            &self.0.params(),
            groups(numel(out), 256),
        )
    }
}

#[derive(Debug)]
struct CeBackward {
    dims: CeDims,
    labels: Tensor,
    /// The class weights, or a stand-in when there are none (never read then).
    weights: Tensor,
    log_prob: Tensor,
    total_weight: Tensor,
}

impl Backward for CeBackward {
    fn name(&self) -> &'static str {
        OP
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        _needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let scores = &inputs[0];
        let from_loss = match &grads[0] {
            Some(g) => Some(Tensor::from_op(
                &scores.ctx,
                CeGrad(self.dims),
                vec![
                    self.log_prob.clone(),
                    self.labels.clone(),
                    self.weights.clone(),
                    self.total_weight.clone(),
                    g.clone(),
                ],
                scores.shape.clone(),
                DType::F32,
            )?),
            None => None,
        };
        // A gradient arriving through log_prob goes back through log-softmax over the classes.
        let from_log_prob = match grads.get(1).and_then(Option::as_ref) {
            Some(g) => Some(softmax_grad(true, &self.log_prob, g, 1)?),
            None => None,
        };
        let d = match (from_loss, from_log_prob) {
            (Some(a), Some(b)) => Some(a.add(&b)?),
            (a, b) => a.or(b),
        };
        Ok(vec![d])
    }
}

impl Tensor {
    /// Softmax cross-entropy with mean reduction (ONNX `SoftmaxCrossEntropyLoss`,
    /// `reduction="mean"`). `self` holds the scores, (N, C) or (N, C, d1, …); `labels` are
    /// class indices of dtype I32 shaped (N) or (N, d1, …); `weights`, if given, are per-class
    /// weights of shape (C). With l the label of a position and w = `weights[l]` (or 1):
    ///
    /// `loss = Σ w·(−log_softmax(scores)[l]) / Σ w`
    ///
    /// Returns `(loss, log_prob)`: the loss of shape `[]` and the log-softmax over the classes,
    /// in the scores' shape. Differentiable with respect to the scores (through both outputs).
    ///
    /// Labels outside [0, C) are ignored, as ONNX's `ignore_index` would be: their positions
    /// add nothing to either sum and get a zero gradient (checking them on the host would cost
    /// a readback). If every position is ignored the loss is NaN (0/0).
    pub fn softmax_cross_entropy(
        &self,
        labels: &Tensor,
        weights: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        self.check_dtype(OP, DType::F32)?;
        labels.check_dtype(OP, DType::I32)?;
        if self.rank() < 2 {
            return Err(Error::invalid(
                OP,
                format!(
                    "scores must be (N, C) or (N, C, d1, ...), got shape {:?}",
                    self.shape
                ),
            ));
        }
        let (n, classes) = (self.shape[0], self.shape[1]);
        let label_shape: Vec<usize> = [n].iter().chain(&self.shape[2..]).copied().collect();
        if labels.shape != label_shape {
            return Err(Error::shape(OP, &self.shape, &labels.shape));
        }
        if let Some(w) = weights {
            w.check_dtype(OP, DType::F32)?;
            if w.shape != [classes] {
                return Err(Error::shape(OP, &self.shape, &w.shape));
            }
        }
        let dims = CeDims {
            n,
            classes,
            inner: numel(&self.shape[2..]),
            has_weights: weights.is_some(),
        };
        // Without weights a stand-in fills the weights binding; the kernels never read it.
        let weights = match weights {
            Some(w) => w.detach(),
            None => crate::kernels::stand_in(&self.ctx)?,
        };
        let mut step1 = Tensor::from_op_multi(
            &self.ctx,
            CeRows(dims),
            vec![self.clone(), labels.clone(), weights.clone()],
            vec![
                (self.shape.clone(), DType::F32),
                (vec![2 * dims.rows()], DType::F32),
            ],
        )?;
        let row_stats = step1.pop();
        let log_prob = step1.pop();
        let (Some(log_prob), Some(row_stats)) = (log_prob, row_stats) else {
            return Err(Error::invalid(OP, "missing kernel outputs"));
        };
        let mut step2 = Tensor::from_op_multi(
            &self.ctx,
            CeTotal(dims),
            vec![row_stats],
            vec![(vec![], DType::F32), (vec![1], DType::F32)],
        )?;
        let total_weight = step2.pop();
        let loss = step2.pop();
        let (Some(loss), Some(total_weight)) = (loss, total_weight) else {
            return Err(Error::invalid(OP, "missing kernel outputs"));
        };
        let rule = CeBackward {
            dims,
            labels: labels.detach(),
            weights,
            log_prob: log_prob.detach(),
            total_weight,
        };
        let mut out = record(vec![loss, log_prob], &[self], rule);
        let log_prob = out.pop();
        let loss = out.pop();
        match (loss, log_prob) {
            (Some(loss), Some(log_prob)) => Ok((loss, log_prob)),
            _ => Err(Error::invalid(OP, "missing kernel outputs")),
        }
    }
}
