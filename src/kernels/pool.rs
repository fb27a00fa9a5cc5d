//! 2-D max, average and global average pooling over NCHW images (shaders/pool.wgsl), with
//! ONNX semantics (MaxPool, AveragePool, GlobalAveragePool).

use crate::autograd::{record1, Backward};
use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
pub use crate::ir::Pool2dParams;
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, PoolParams};
use crate::{DType, Tensor};

/// The largest padded extent and stride the shader's i32 window arithmetic handles.
const MAX_EXTENT: usize = i32::MAX as usize;

/// Everything a pooling launch needs, checked and resolved at call time.
#[derive(Clone, Debug, PartialEq)]
struct Geom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
    p: Pool2dParams,
}

impl Geom {
    fn output_shape(&self) -> Vec<usize> {
        vec![self.n, self.c, self.ho, self.wo]
    }

    /// Whether windows cannot overlap along either axis (stride >= the dilated kernel extent),
    /// so the backward can find each input's one window without a loop.
    fn disjoint(&self) -> bool {
        (0..2).all(|a| self.p.stride[a] > (self.p.kernel[a] - 1) * self.p.dilation[a])
    }

    /// The shader's parameters, with `total` elements (or planes) to cover.
    fn params(&self, total: usize) -> PoolParams {
        let p = &self.p;
        let [pt, pl, pb, pr] = p.padding;
        PoolParams {
            total: total as u32,
            h: self.h as u32,
            w: self.w as u32,
            ho: self.ho as u32,
            wo: self.wo as u32,
            kh: p.kernel[0] as u32,
            kw: p.kernel[1] as u32,
            sh: p.stride[0] as u32,
            sw: p.stride[1] as u32,
            dh: p.dilation[0] as u32,
            dw: p.dilation[1] as u32,
            pt: pt as u32,
            pl: pl as u32,
            h_end: (self.h + pb) as u32,
            w_end: (self.w + pr) as u32,
            include_pad: u32::from(p.count_include_pad),
        }
    }
}

/// Checks an (N, C, H, W) input shape and returns N, C, H, W.
fn image_dims(op: &'static str, shape: &[usize]) -> Result<[usize; 4]> {
    let &[n, c, h, w] = shape else {
        return Err(Error::invalid(
            op,
            format!("needs an (N, C, H, W) input, got shape {shape:?}"),
        ));
    };
    if h == 0 || w == 0 {
        return Err(Error::invalid(
            op,
            format!("needs a non-empty image, got shape {shape:?}"),
        ));
    }
    Ok([n, c, h, w])
}

/// The number of windows along `axis` (0: height, 1: width) of an input `size` long.
fn output_len(op: &'static str, axis: usize, size: usize, p: &Pool2dParams) -> Result<usize> {
    let name = ["height", "width"][axis];
    let (kernel, stride, dilation) = (p.kernel[axis], p.stride[axis], p.dilation[axis]);
    let pads = [p.padding[axis], p.padding[axis + 2]];
    if kernel == 0 || stride == 0 || dilation == 0 {
        return Err(Error::invalid(
            op,
            format!(
                "kernel, stride and dilation must be at least 1, got kernel {kernel}, stride \
                 {stride}, dilation {dilation} along the {name}"
            ),
        ));
    }
    let padded = size
        .checked_add(pads[0])
        .and_then(|v| v.checked_add(pads[1]))
        .filter(|&v| v <= MAX_EXTENT && stride <= MAX_EXTENT);
    let Some(padded) = padded else {
        return Err(Error::invalid(
            op,
            format!(
                "padding {pads:?} and stride {stride} along the {name} are out of range \
                 (padded size and stride must stay under 2^31)"
            ),
        ));
    };
    let extent = (kernel - 1)
        .checked_mul(dilation)
        .and_then(|v| v.checked_add(1));
    let extent = match extent {
        Some(e) if e <= padded => e,
        _ => {
            return Err(Error::invalid(
                op,
                format!(
                    "kernel {kernel} with dilation {dilation} spans more than the padded \
                     input ({padded} = {size} + padding {pads:?}) along the {name}"
                ),
            ))
        }
    };
    let span = padded - extent;
    if !p.ceil_mode {
        return Ok(span / stride + 1);
    }
    let mut out = span.div_ceil(stride) + 1;
    // The last window must start inside the input or its leading padding.
    if (out - 1) * stride >= size + pads[0] {
        out -= 1;
    }
    Ok(out)
}

/// Validates `x` and `p` for a windowed pooling op.
fn geometry(op: &'static str, x: &Tensor, p: &Pool2dParams) -> Result<Geom> {
    x.check_dtype(op, DType::F32)?;
    let [n, c, h, w] = image_dims(op, &x.shape)?;
    let ho = output_len(op, 0, h, p)?;
    let wo = output_len(op, 1, w, p)?;
    Ok(Geom {
        n,
        c,
        h,
        w,
        ho,
        wo,
        p: p.clone(),
    })
}

/// Max pooling forward: writes the maxima and their flat in-plane indices.
#[derive(Debug)]
struct MaxPool(Geom);

impl Kernel for MaxPool {
    fn name(&self) -> &'static str {
        "max_pool2d"
    }

    fn launch(&self, _inputs: &[&[usize]], out: &[usize]) -> Launch {
        let total = crate::shape::numel(out);
        launch(
            &registry::MAX_POOL2D,
            vec![],
            &self.0.params(total),
            groups(total, 256),
        )
    }
}

/// Max pooling backward: each input element sums the upstream gradients of the windows that
/// chose it. Inputs: dy, arg-max indices.
#[derive(Debug)]
struct MaxPoolGrad(Geom);

impl Kernel for MaxPoolGrad {
    fn name(&self) -> &'static str {
        "max_pool2d_backward"
    }

    fn launch(&self, _inputs: &[&[usize]], out: &[usize]) -> Launch {
        let total = crate::shape::numel(out);
        launch(
            &registry::MAX_POOL2D_BACKWARD,
            vec![("DISJOINT", u32::from(self.0.disjoint()))],
            &self.0.params(total),
            groups(total, 256),
        )
    }
}

#[derive(Debug)]
struct MaxPoolBackward {
    geom: Geom,
    /// The forward's arg-max indices (detached).
    idx: Tensor,
}

impl Backward for MaxPoolBackward {
    fn name(&self) -> &'static str {
        "max_pool2d"
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let (Some(dy), true) = (&grads[0], needs[0]) else {
            return Ok(vec![None]);
        };
        let x = &inputs[0];
        let dx = Tensor::from_op(
            &x.ctx,
            MaxPoolGrad(self.geom.clone()),
            vec![dy.clone(), self.idx.clone()],
            x.shape.clone(),
            DType::F32,
        )?;
        Ok(vec![Some(dx)])
    }
}

/// Average pooling forward.
#[derive(Debug)]
struct AvgPool(Geom);

impl Kernel for AvgPool {
    fn name(&self) -> &'static str {
        "avg_pool2d"
    }

    fn launch(&self, _inputs: &[&[usize]], out: &[usize]) -> Launch {
        let total = crate::shape::numel(out);
        launch(
            &registry::AVG_POOL2D,
            vec![],
            &self.0.params(total),
            groups(total, 256),
        )
    }
}

/// Average pooling backward: each input element gathers dy / divisor from its windows.
#[derive(Debug)]
struct AvgPoolGrad(Geom);

impl Kernel for AvgPoolGrad {
    fn name(&self) -> &'static str {
        "avg_pool2d_backward"
    }

    fn launch(&self, _inputs: &[&[usize]], out: &[usize]) -> Launch {
        let total = crate::shape::numel(out);
        launch(
            &registry::AVG_POOL2D_BACKWARD,
            vec![("DISJOINT", u32::from(self.0.disjoint()))],
            &self.0.params(total),
            groups(total, 256),
        )
    }
}

#[derive(Debug)]
struct AvgPoolBackward(Geom);

impl Backward for AvgPoolBackward {
    fn name(&self) -> &'static str {
        "avg_pool2d"
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let (Some(dy), true) = (&grads[0], needs[0]) else {
            return Ok(vec![None]);
        };
        let x = &inputs[0];
        let dx = Tensor::from_op(
            &x.ctx,
            AvgPoolGrad(self.0.clone()),
            vec![dy.clone()],
            x.shape.clone(),
            DType::F32,
        )?;
        Ok(vec![Some(dx)])
    }
}

/// Global average pooling forward (one workgroup per plane) or backward.
#[derive(Debug)]
struct GlobalAvg {
    geom: Geom,
    backward: bool,
}

impl Kernel for GlobalAvg {
    fn name(&self) -> &'static str {
        if self.backward {
            "global_avg_pool2d_backward"
        } else {
            "global_avg_pool2d"
        }
    }

    fn launch(&self, _inputs: &[&[usize]], out: &[usize]) -> Launch {
        let g = &self.geom;
        if self.backward {
            let total = crate::shape::numel(out);
            launch(
                &registry::GLOBAL_AVG_POOL2D_BACKWARD,
                vec![],
                &g.params(total),
                groups(total, 256),
            )
        } else {
            let planes = g.n * g.c;
            launch(
                &registry::GLOBAL_AVG_POOL2D,
                vec![],
                &g.params(planes),
                planes as u64,
            )
        }
    }
}

#[derive(Debug)]
struct GlobalAvgBackward(Geom);

impl Backward for GlobalAvgBackward {
    fn name(&self) -> &'static str {
        "global_avg_pool2d"
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let (Some(dy), true) = (&grads[0], needs[0]) else {
            return Ok(vec![None]);
        };
        let x = &inputs[0];
        let dx = Tensor::from_op(
            &x.ctx,
            GlobalAvg {
                geom: self.0.clone(),
                backward: true,
            },
            vec![dy.clone()],
            x.shape.clone(),
            DType::F32,
        )?;
        Ok(vec![Some(dx)])
    }
}

impl Tensor {
    /// Max pooling: (N, C, H, W) -> (N, C, Ho, Wo). Padded positions never win (they act as
    /// -inf); ties go to the first maximum in row-major window order; NaN propagates.
    /// Differentiable: the gradient goes to each window's arg-max, recorded by the forward.
    pub fn max_pool2d(&self, p: &Pool2dParams) -> Result<Tensor> {
        Ok(self.max_pool2d_with_indices(p)?.0)
    }

    /// [`Tensor::max_pool2d`] that also returns the arg-max of every window as a u32 tensor of
    /// the output's shape: the flat index `ih * W + iw` within the window's (n, c) plane, or
    /// `u32::MAX` for a window that holds no input position (its max is -inf). The indices are
    /// not differentiable.
    pub fn max_pool2d_with_indices(&self, p: &Pool2dParams) -> Result<(Tensor, Tensor)> {
        let geom = geometry("max_pool2d", self, p)?;
        let out = geom.output_shape();
        let mut outs = Tensor::from_op_multi(
            &self.ctx,
            MaxPool(geom.clone()),
            vec![self.clone()],
            vec![(out.clone(), DType::F32), (out, DType::U32)],
        )?;
        let (Some(idx), Some(y)) = (outs.pop(), outs.pop()) else {
            return Err(Error::invalid("max_pool2d", "the op lost an output"));
        };
        let rule = MaxPoolBackward {
            geom,
            idx: idx.detach(),
        };
        Ok((record1(y, &[self], rule), idx))
    }

    /// Average pooling: (N, C, H, W) -> (N, C, Ho, Wo). The divisor follows
    /// `count_include_pad` as in ONNX; with `ceil_mode`, taps past the padded edge never count.
    /// A window with no input position averages to NaN unless `count_include_pad` is set.
    /// Differentiable.
    pub fn avg_pool2d(&self, p: &Pool2dParams) -> Result<Tensor> {
        let geom = geometry("avg_pool2d", self, p)?;
        let y = Tensor::from_op(
            &self.ctx,
            AvgPool(geom.clone()),
            vec![self.clone()],
            geom.output_shape(),
            DType::F32,
        )?;
        Ok(record1(y, &[self], AvgPoolBackward(geom)))
    }

    /// Global average pooling: the mean of every (n, c) plane, (N, C, H, W) -> (N, C, 1, 1).
    /// Differentiable.
    pub fn global_avg_pool2d(&self) -> Result<Tensor> {
        const OP: &str = "global_avg_pool2d";
        self.check_dtype(OP, DType::F32)?;
        let [n, c, h, w] = image_dims(OP, &self.shape)?;
        let geom = Geom {
            n,
            c,
            h,
            w,
            ho: 1,
            wo: 1,
            p: Pool2dParams::new([h, w]),
        };
        let y = Tensor::from_op(
            &self.ctx,
            GlobalAvg {
                geom: geom.clone(),
                backward: false,
            },
            vec![self.clone()],
            geom.output_shape(),
            DType::F32,
        )?;
        Ok(record1(y, &[self], GlobalAvgBackward(geom)))
    }
}
