//! Layer normalization (shaders/layer_norm.wgsl) and batch normalization, inference and
//! training (shaders/batch_norm.wgsl), with their backward kernels.

use crate::autograd::{record1, Backward};
use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::softmax::softmax_uses_small_path;
use crate::kernels::{groups, launch, launch_multi};
use crate::shape::{self, numel};
use crate::{DType, Tensor};

/// Columns of dscale/dbias per `layer_norm_backward_params` workgroup (its x size).
const PARAM_COLS: usize = 32;

fn check_eps(op: &'static str, eps: f32) -> Result<()> {
    if eps.is_finite() && eps >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            op,
            format!("eps must be finite and >= 0, got {eps}"),
        ))
    }
}

/// Takes the `K` outputs of a multi-output op in order.
fn outputs<const K: usize>(op: &'static str, v: Vec<Tensor>) -> Result<[Tensor; K]> {
    v.try_into()
        .map_err(|_| Error::invalid(op, "the kernel returned the wrong number of outputs"))
}

// ---- layer normalization -----------------------------------------------------------------

/// x viewed as (rows, len) with len = the normalized dims' element count.
#[derive(Clone, Copy, Debug)]
struct LnDims {
    rows: usize,
    len: usize,
    has_scale: bool,
    has_bias: bool,
    eps: f32,
}

impl LnDims {
    fn params(&self) -> Vec<u32> {
        vec![
            self.rows as u32,
            self.len as u32,
            u32::from(self.has_scale),
            u32::from(self.has_bias),
            self.eps.to_bits(),
            0,
            0,
            0,
        ]
    }

    /// `entry` (one workgroup per row) or `small` (one invocation per row).
    fn row_launch(
        &self,
        entry: &'static str,
        small: &'static str,
        reads: usize,
        writes: usize,
    ) -> Launch {
        let (entry, workgroups) = if self.rows == 0 || self.len == 0 {
            (small, 0)
        } else if softmax_uses_small_path(self.rows, self.len) {
            (small, groups(self.rows, 256))
        } else {
            (entry, self.rows as u64)
        };
        launch_multi(
            "layer_norm",
            entry,
            vec![],
            reads,
            writes,
            self.params(),
            workgroups,
        )
    }
}

/// y, mean, rstd from x, scale, bias.
#[derive(Debug)]
struct LayerNorm(LnDims);

impl Kernel for LayerNorm {
    fn name(&self) -> &'static str {
        "layer_norm"
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        self.0.row_launch("layer_norm", "layer_norm_small", 3, 3)
    }
}

/// dx from x, scale, dy, mean, rstd.
#[derive(Debug)]
struct LayerNormGradInput(LnDims);

impl Kernel for LayerNormGradInput {
    fn name(&self) -> &'static str {
        "layer_norm_backward_input"
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        self.0.row_launch(
            "layer_norm_backward_input",
            "layer_norm_backward_input_small",
            5,
            1,
        )
    }
}

/// dscale, dbias from x, dy, mean, rstd.
#[derive(Debug)]
struct LayerNormGradParams(LnDims);

impl Kernel for LayerNormGradParams {
    fn name(&self) -> &'static str {
        "layer_norm_backward_params"
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        launch_multi(
            "layer_norm",
            "layer_norm_backward_params",
            vec![],
            4,
            2,
            self.0.params(),
            groups(self.0.len, PARAM_COLS),
        )
    }
}

#[derive(Debug)]
struct LayerNormBackward {
    dims: LnDims,
    /// The normalized dims, the shape of scale and bias.
    norm_shape: Vec<usize>,
    /// Scale, or a stand-in (never read) without one.
    scale: Tensor,
    mean: Tensor,
    rstd: Tensor,
}

impl Backward for LayerNormBackward {
    fn name(&self) -> &'static str {
        "layer_norm"
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let n_inputs = 1 + usize::from(self.dims.has_scale) + usize::from(self.dims.has_bias);
        let Some(g) = &grads[0] else {
            return Ok(vec![None; n_inputs]);
        };
        let x = &inputs[0];
        let g = g.reshape(&x.shape)?;
        let need = |i: usize| needs.get(i).copied().unwrap_or(false);
        let mut out = Vec::with_capacity(n_inputs);
        out.push(if need(0) {
            Some(Tensor::from_op(
                &x.ctx,
                LayerNormGradInput(self.dims),
                vec![
                    x.clone(),
                    self.scale.clone(),
                    g.clone(),
                    self.mean.clone(),
                    self.rstd.clone(),
                ],
                x.shape.clone(),
                DType::F32,
            )?)
        } else {
            None
        });
        let scale_slot = self.dims.has_scale.then_some(1);
        let bias_slot = self
            .dims
            .has_bias
            .then_some(1 + usize::from(self.dims.has_scale));
        let want_params = scale_slot.is_some_and(need) || bias_slot.is_some_and(need);
        if want_params {
            let [dscale, dbias] = outputs(
                "layer_norm",
                Tensor::from_op_multi(
                    &x.ctx,
                    LayerNormGradParams(self.dims),
                    vec![x.clone(), g, self.mean.clone(), self.rstd.clone()],
                    vec![
                        (self.norm_shape.clone(), DType::F32),
                        (self.norm_shape.clone(), DType::F32),
                    ],
                )?,
            )?;
            if let Some(i) = scale_slot {
                out.push(need(i).then_some(dscale));
            }
            if let Some(i) = bias_slot {
                out.push(need(i).then_some(dbias));
            }
        } else {
            out.resize(n_inputs, None);
        }
        Ok(out)
    }
}

// ---- batch normalization -----------------------------------------------------------------

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

    fn params(&self) -> Vec<u32> {
        vec![
            self.numel as u32,
            self.channels as u32,
            self.spatial as u32,
            self.count() as u32,
            self.eps.to_bits(),
            self.momentum.to_bits(),
            0,
            0,
        ]
    }

    fn elementwise(
        &self,
        entry: &'static str,
        constants: Vec<(&'static str, u32)>,
        reads: usize,
    ) -> Launch {
        launch(
            "batch_norm",
            entry,
            constants,
            reads,
            self.params(),
            groups(self.numel, 256),
        )
    }

    /// `entry` (one workgroup per channel) or `small` (one invocation per channel).
    fn channel_launch(
        &self,
        entry: &'static str,
        small: &'static str,
        constants: Vec<(&'static str, u32)>,
        reads: usize,
        writes: usize,
    ) -> Launch {
        let (c, count) = (self.channels, self.count());
        let (entry, workgroups) = if c == 0 || count == 0 {
            (small, 0)
        } else if softmax_uses_small_path(c, count) {
            (small, groups(c, 256))
        } else {
            (entry, c as u64)
        };
        launch_multi(
            "batch_norm",
            entry,
            constants,
            reads,
            writes,
            self.params(),
            workgroups,
        )
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
            "batch_norm",
            vec![("STAT_IS_RSTD", u32::from(self.stat_is_rstd))],
            5,
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
        self.0
            .channel_launch("batch_norm_stats", "batch_norm_stats_small", vec![], 3, 4)
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
            "batch_norm_backward_reduce",
            "batch_norm_backward_reduce_small",
            vec![("STAT_IS_RSTD", u32::from(self.stat_is_rstd))],
            4,
            2,
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
        self.0.elementwise("batch_norm_backward_input", vec![], 7)
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
            .elementwise("batch_norm_backward_inference", vec![], 3)
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
    /// Layer normalization (ONNX `LayerNormalization`): each row of the dims `[axis, rank)`
    /// (negative `axis` counts from the end) is normalized to zero mean and unit (biased)
    /// variance, `(x − mean)/√(var + eps)`, then multiplied by `scale` and shifted by `bias`,
    /// both of shape `X.shape[axis..]` and optional. Differentiable with respect to x, scale
    /// and bias.
    pub fn layer_norm(
        &self,
        axis: isize,
        scale: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
    ) -> Result<Tensor> {
        const OP: &str = "layer_norm";
        self.check_dtype(OP, DType::F32)?;
        check_eps(OP, eps)?;
        let axis = shape::axis(OP, axis, self.rank())?;
        let norm_shape = self.shape[axis..].to_vec();
        for t in [scale, bias].into_iter().flatten() {
            t.check_dtype(OP, DType::F32)?;
            if t.shape != norm_shape {
                return Err(Error::shape(OP, &self.shape, &t.shape));
            }
        }
        let len = numel(&norm_shape);
        let rows = numel(&self.shape[..axis]);
        let dims = LnDims {
            rows,
            len,
            has_scale: scale.is_some(),
            has_bias: bias.is_some(),
            eps,
        };
        // A missing scale or bias is bound to x as a stand-in; the kernels never read it.
        let scale_in = scale.unwrap_or(self).detach();
        let bias_in = bias.unwrap_or(self).detach();
        let [y, mean, rstd] = outputs(
            OP,
            Tensor::from_op_multi(
                &self.ctx,
                LayerNorm(dims),
                vec![self.clone(), scale_in.clone(), bias_in],
                vec![
                    (self.shape.clone(), DType::F32),
                    (vec![rows], DType::F32),
                    (vec![rows], DType::F32),
                ],
            )?,
        )?;
        let rule = LayerNormBackward {
            dims,
            norm_shape,
            scale: scale_in,
            mean,
            rstd,
        };
        let mut inputs = vec![self];
        inputs.extend(scale);
        inputs.extend(bias);
        Ok(record1(y, &inputs, rule))
    }

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
