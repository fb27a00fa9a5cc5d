//! Batch normalization, inference and training (shaders/batch_norm.wgsl), with its backward
//! kernels.

use crate::autograd::{record1, Backward};
use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::registry::{self, launch, BatchNormParams, Spec};
use crate::kernels::softmax::softmax_uses_small_path;
use crate::kernels::{check_eps, groups, outputs};
use crate::shape::numel;
use crate::{DType, Tensor};

/// x viewed as (N, C, S).
#[derive(Clone, Copy, Debug)]
struct BnDims {
    numel: usize,
    channels: usize,
    spatial: usize,
    eps: f32,
    momentum: f32,
}

impl BnDims {
    fn count(&self) -> usize {
        self.numel.checked_div(self.channels).unwrap_or(0)
    }

    fn params(&self) -> BatchNormParams {
        BatchNormParams {
            numel: self.numel as u32,
            channels: self.channels as u32,
            spatial: self.spatial as u32,
            count: self.count() as u32,
            eps: self.eps,
            momentum: self.momentum,
            ..Default::default()
        }
    }

    fn elementwise(
        &self,
        spec: &'static Spec<BatchNormParams>,
        constants: Vec<(&'static str, u32)>,
    ) -> Launch {
        launch(spec, constants, &self.params(), groups(self.numel, 256))
    }

    /// `entry` (one workgroup per channel) or `small` (one invocation per channel).
    fn channel_launch(
        &self,
        entry: &'static Spec<BatchNormParams>,
        small: &'static Spec<BatchNormParams>,
        constants: Vec<(&'static str, u32)>,
    ) -> Launch {
        let (c, count) = (self.channels, self.count());
        let (entry, workgroups) = if c == 0 || count == 0 {
            (small, 0)
        } else if softmax_uses_small_path(c, count) {
            (small, groups(c, 256))
        } else {
            (entry, c as u64)
        };
        launch(entry, constants, &self.params(), workgroups)
    }
}

/// y from x, scale, bias, mean and the variance (inference) or rstd (training).
#[derive(Debug)]
struct BatchNorm {
    dims: BnDims,
    stat_is_rstd: bool,
}

impl Kernel for BatchNorm {
    fn name(&self) -> &'static str {
        "batch_norm"
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        self.dims.elementwise(
            &registry::BATCH_NORM,
            vec![("STAT_IS_RSTD", u32::from(self.stat_is_rstd))],
        )
    }
}

/// Batch mean, rstd and updated running statistics from x, running mean, running var.
#[derive(Debug)]
struct BatchNormStats(BnDims);

impl Kernel for BatchNormStats {
    fn name(&self) -> &'static str {
        "batch_norm_train"
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        self.0.channel_launch(
            &registry::BATCH_NORM_STATS,
            &registry::BATCH_NORM_STATS_SMALL,
            vec![],
        )
    }
}

/// (Σ dy·xhat, Σ dy) per channel from x, dy, mean and the variance or rstd.
#[derive(Debug)]
struct BatchNormGradReduce {
    dims: BnDims,
    stat_is_rstd: bool,
}

impl Kernel for BatchNormGradReduce {
    fn name(&self) -> &'static str {
        "batch_norm_backward_reduce"
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        self.dims.channel_launch(
            &registry::BATCH_NORM_BACKWARD_REDUCE,
            &registry::BATCH_NORM_BACKWARD_REDUCE_SMALL,
            vec![("STAT_IS_RSTD", u32::from(self.stat_is_rstd))],
        )
    }
}

/// Training dx from x, dy, mean, rstd, scale, Σ dy·xhat, Σ dy.
#[derive(Debug)]
struct BatchNormGradInput(BnDims);

impl Kernel for BatchNormGradInput {
    fn name(&self) -> &'static str {
        "batch_norm_backward_input"
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        self.0
            .elementwise(&registry::BATCH_NORM_BACKWARD_INPUT, vec![])
    }
}

/// Inference dx from dy, scale, var.
#[derive(Debug)]
struct BatchNormGradInference(BnDims);

impl Kernel for BatchNormGradInference {
    fn name(&self) -> &'static str {
        "batch_norm_backward_inference"
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        self.0
            .elementwise(&registry::BATCH_NORM_BACKWARD_INFERENCE, vec![])
    }
}

/// (Σ dy·xhat, Σ dy) per channel, shaped (C).
fn bn_grad_sums(
    dims: BnDims,
    stat_is_rstd: bool,
    x: &Tensor,
    g: &Tensor,
    mean: &Tensor,
    stat: &Tensor,
) -> Result<[Tensor; 2]> {
    let c = vec![dims.channels];
    outputs(
        "batch_norm",
        Tensor::from_op_multi(
            &x.ctx,
            BatchNormGradReduce { dims, stat_is_rstd },
            vec![x.clone(), g.clone(), mean.clone(), stat.clone()],
            vec![(c.clone(), DType::F32), (c, DType::F32)],
        )?,
    )
}

/// Inputs: x, scale, bias. Mean and variance are constants (no gradient).
#[derive(Debug)]
struct BatchNormInferenceBackward {
    dims: BnDims,
    scale: Tensor,
    mean: Tensor,
    var: Tensor,
}

impl Backward for BatchNormInferenceBackward {
    fn name(&self) -> &'static str {
        "batch_norm_inference"
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let Some(g) = &grads[0] else {
            return Ok(vec![None, None, None]);
        };
        let x = &inputs[0];
        let g = g.reshape(&x.shape)?;
        let dx = if needs[0] {
            Some(Tensor::from_op(
                &x.ctx,
                BatchNormGradInference(self.dims),
                vec![g.clone(), self.scale.clone(), self.var.clone()],
                x.shape.clone(),
                DType::F32,
            )?)
        } else {
            None
        };
        let (dscale, dbias) = if needs[1] || needs[2] {
            let [ds, db] = bn_grad_sums(self.dims, false, x, &g, &self.mean, &self.var)?;
            (needs[1].then_some(ds), needs[2].then_some(db))
        } else {
            (None, None)
        };
        Ok(vec![dx, dscale, dbias])
    }
}

/// Inputs: x, scale, bias. The gradient flows through the batch statistics too.
#[derive(Debug)]
struct BatchNormTrainBackward {
    dims: BnDims,
    scale: Tensor,
    mean: Tensor,
    rstd: Tensor,
}

impl Backward for BatchNormTrainBackward {
    fn name(&self) -> &'static str {
        "batch_norm_train"
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let Some(g) = &grads[0] else {
            return Ok(vec![None, None, None]);
        };
        let x = &inputs[0];
        let g = g.reshape(&x.shape)?;
        let [sum_dyx, sum_dy] = bn_grad_sums(self.dims, true, x, &g, &self.mean, &self.rstd)?;
        let dx = if needs[0] {
            Some(Tensor::from_op(
                &x.ctx,
                BatchNormGradInput(self.dims),
                vec![
                    x.clone(),
                    g,
                    self.mean.clone(),
                    self.rstd.clone(),
                    self.scale.clone(),
                    sum_dyx.clone(),
                    sum_dy.clone(),
                ],
                x.shape.clone(),
                DType::F32,
            )?)
        } else {
            None
        };
        Ok(vec![
            dx,
            needs[1].then_some(sum_dyx),
            needs[2].then_some(sum_dy),
        ])
    }
}

/// The outputs of [`Tensor::batch_norm_train`].
#[derive(Clone, Debug)]
pub struct BatchNormTrain {
    /// The normalized output, differentiable with respect to x, scale and bias.
    pub y: Tensor,
    /// `(1 − momentum)·running_mean + momentum·batch_mean`, per channel (no gradient).
    pub running_mean: Tensor,
    /// `(1 − momentum)·running_var + momentum·batch_var_unbiased`, per channel (no gradient).
    pub running_var: Tensor,
}

impl Tensor {
    /// Checks an (N, C, ...) batch-norm input and per-channel (C) parameters; returns the dims.
    fn batch_norm_dims(
        &self,
        op: &'static str,
        per_channel: &[&Tensor],
        eps: f32,
        momentum: f32,
    ) -> Result<BnDims> {
        self.check_dtype(op, DType::F32)?;
        check_eps(op, eps)?;
        if self.rank() < 2 {
            return Err(Error::invalid(
                op,
                format!("input must be (N, C, ...), got shape {:?}", self.shape),
            ));
        }
        let channels = self.shape[1];
        for t in per_channel {
            t.check_dtype(op, DType::F32)?;
            if t.shape != [channels] {
                return Err(Error::shape(op, &self.shape, &t.shape));
            }
        }
        Ok(BnDims {
            numel: self.numel(),
            channels,
            spatial: numel(&self.shape[2..]),
            eps,
            momentum,
        })
    }

    /// Batch normalization with given statistics (ONNX `BatchNormalization`, inference):
    /// `(x − mean)/√(var + eps)·scale + bias` per channel of an (N, C, ...) input; `scale`,
    /// `bias`, `mean` and `var` are (C). Differentiable with respect to x, scale and bias
    /// (mean and var are treated as constants).
    pub fn batch_norm_inference(
        &self,
        scale: &Tensor,
        bias: &Tensor,
        mean: &Tensor,
        var: &Tensor,
        eps: f32,
    ) -> Result<Tensor> {
        const OP: &str = "batch_norm_inference";
        let dims = self.batch_norm_dims(OP, &[scale, bias, mean, var], eps, 0.0)?;
        let y = Tensor::from_op(
            &self.ctx,
            BatchNorm {
                dims,
                stat_is_rstd: false,
            },
            vec![
                self.clone(),
                scale.clone(),
                bias.clone(),
                mean.clone(),
                var.clone(),
            ],
            self.shape.clone(),
            DType::F32,
        )?;
        let rule = BatchNormInferenceBackward {
            dims,
            scale: scale.detach(),
            mean: mean.detach(),
            var: var.detach(),
        };
        Ok(record1(y, &[self, scale, bias], rule))
    }

    /// Batch normalization in training mode on an (N, C, ...) input: each channel is
    /// normalized with the batch's mean and biased variance over N and the spatial dims,
    /// then scaled and shifted by `scale` and `bias` (C). Also returns the updated running
    /// statistics (PyTorch convention): `(1 − momentum)·old + momentum·batch`, with the
    /// unbiased batch variance for `running_var`. `y` is differentiable with respect to x
    /// (through the batch statistics), scale and bias. Needs more than one element per channel.
    pub fn batch_norm_train(
        &self,
        scale: &Tensor,
        bias: &Tensor,
        running_mean: &Tensor,
        running_var: &Tensor,
        momentum: f32,
        eps: f32,
    ) -> Result<BatchNormTrain> {
        const OP: &str = "batch_norm_train";
        if !momentum.is_finite() {
            return Err(Error::invalid(
                OP,
                format!("momentum must be finite, got {momentum}"),
            ));
        }
        let dims =
            self.batch_norm_dims(OP, &[scale, bias, running_mean, running_var], eps, momentum)?;
        if dims.count() < 2 {
            return Err(Error::invalid(
                OP,
                format!(
                    "needs more than one value per channel to train, got shape {:?}",
                    self.shape
                ),
            ));
        }
        let c = vec![dims.channels];
        let [mean, rstd, new_mean, new_var] = outputs(
            OP,
            Tensor::from_op_multi(
                &self.ctx,
                BatchNormStats(dims),
                vec![self.clone(), running_mean.clone(), running_var.clone()],
                vec![
                    (c.clone(), DType::F32),
                    (c.clone(), DType::F32),
                    (c.clone(), DType::F32),
                    (c, DType::F32),
                ],
            )?,
        )?;
        let y = Tensor::from_op(
            &self.ctx,
            BatchNorm {
                dims,
                stat_is_rstd: true,
            },
            vec![
                self.clone(),
                scale.clone(),
                bias.clone(),
                mean.clone(),
                rstd.clone(),
            ],
            self.shape.clone(),
            DType::F32,
        )?;
        let rule = BatchNormTrainBackward {
            dims,
            scale: scale.detach(),
            mean,
            rstd,
        };
        Ok(BatchNormTrain {
            y: record1(y, &[self, scale, bias], rule),
            running_mean: new_mean,
            running_var: new_var,
        })
    }
}
