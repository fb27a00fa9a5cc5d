//! Layer normalization (shaders/layer_norm.wgsl) with its backward kernels.

use crate::autograd::{record1, Backward};
use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::registry::{self, launch, LayerNormParams, Spec};
use crate::kernels::softmax::softmax_uses_small_path;
use crate::kernels::{check_eps, groups, outputs};
use crate::shape::{self, numel};
use crate::{DType, Tensor};

/// Columns of dscale/dbias per `layer_norm_backward_params` workgroup (its x size).
const PARAM_COLS: usize = 32;

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
    fn params(&self) -> LayerNormParams {
        LayerNormParams {
            rows: self.rows as u32,
            len: self.len as u32,
            has_scale: u32::from(self.has_scale),
            has_bias: u32::from(self.has_bias),
            eps: self.eps,
            ..Default::default()
        }
    }

    /// `entry` (one workgroup per row) or `small` (one invocation per row).
    fn row_launch(
        &self,
        entry: &'static Spec<LayerNormParams>,
        small: &'static Spec<LayerNormParams>,
    ) -> Launch {
        let (entry, workgroups) = if self.rows == 0 || self.len == 0 {
            (small, 0)
        } else if softmax_uses_small_path(self.rows, self.len) {
            (small, groups(self.rows, 256))
        } else {
            (entry, self.rows as u64)
        };
        launch(entry, vec![], &self.params(), workgroups)
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
        self.0
            .row_launch(&registry::LAYER_NORM, &registry::LAYER_NORM_SMALL)
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
            &registry::LAYER_NORM_BACKWARD_INPUT,
            &registry::LAYER_NORM_BACKWARD_INPUT_SMALL,
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
        launch(
            &registry::LAYER_NORM_BACKWARD_PARAMS,
            vec![],
            &self.0.params(),
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
        // A missing scale or bias is bound to a stand-in; the kernels never read it.
        let scale_in = match scale {
            Some(t) => t.detach(),
            None => crate::kernels::stand_in(&self.ctx)?,
        };
        let bias_in = match bias {
            Some(t) => t.detach(),
            None => crate::kernels::stand_in(&self.ctx)?,
        };
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
}
