//! Softmax and log-softmax along any axis, numerically stable, forward and backward
//! (shaders/softmax.wgsl).
//!
//! The input is viewed as (outer, len, inner) around the axis; each of the outer·inner rows is
//! normalized by one 256-invocation workgroup, or by one invocation when rows are short (or
//! many), see [`softmax_uses_small_path`].

use crate::autograd::{record1, Backward};
use crate::error::Result;
use crate::graph::{Kernel, Launch};
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, SoftmaxParams, Spec};
use crate::shape::{self, numel};
use crate::{DType, Tensor};

/// Rows of at most this many elements are always handled by one invocation each.
pub const SMALL_ROW: usize = 64;

/// With at least this many rows, one invocation per row already fills a GPU, so rows up to
/// [`MANY_ROWS_MAX_LEN`] elements use one invocation each as well.
pub const MANY_ROWS: usize = 4096;

/// The longest row handled by one invocation when there are [`MANY_ROWS`] rows.
pub const MANY_ROWS_MAX_LEN: usize = 1024;

/// Whether `rows` rows of `len` elements are normalized one invocation per row
/// (`softmax_small`) rather than one workgroup per row (`softmax`).
pub fn softmax_uses_small_path(rows: usize, len: usize) -> bool {
    len <= SMALL_ROW || (rows >= MANY_ROWS && len <= MANY_ROWS_MAX_LEN)
}

/// A tensor viewed around one axis: (outer, len, inner).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AxisView {
    pub outer: usize,
    pub len: usize,
    pub inner: usize,
}

impl AxisView {
    /// `shape` around dim `axis` (which must be in range).
    pub(crate) fn new(shape: &[usize], axis: usize) -> AxisView {
        AxisView {
            outer: numel(&shape[..axis]),
            len: shape[axis],
            inner: numel(&shape[axis + 1..]),
        }
    }

    fn rows(&self) -> usize {
        self.outer * self.inner
    }

    /// The launch of `entry` (or its `_small` twin) over every row.
    fn launch(
        &self,
        entry: &'static Spec<SoftmaxParams>,
        small_entry: &'static Spec<SoftmaxParams>,
        log: bool,
    ) -> Launch {
        let rows = self.rows();
        let params = SoftmaxParams {
            rows: rows as u32,
            len: self.len as u32,
            inner: self.inner as u32,
            _pad: 0,
        };
        let (spec, workgroups) = if rows == 0 || self.len == 0 {
            (small_entry, 0)
        } else if softmax_uses_small_path(rows, self.len) {
            (small_entry, groups(rows, 256))
        } else {
            (entry, rows as u64)
        };
        launch(spec, vec![("LOG", u32::from(log))], &params, workgroups)
    }
}

#[derive(Debug)]
struct Softmax {
    log: bool,
    view: AxisView,
}

impl Kernel for Softmax {
    fn name(&self) -> &'static str {
        if self.log {
            "log_softmax"
        } else {
            "softmax"
        }
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        self.view
            .launch(&registry::SOFTMAX, &registry::SOFTMAX_SMALL, self.log)
    }
}

#[derive(Debug)]
struct SoftmaxGrad {
    log: bool,
    view: AxisView,
}

impl Kernel for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "softmax_backward"
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        self.view.launch(
            &registry::SOFTMAX_BACKWARD,
            &registry::SOFTMAX_BACKWARD_SMALL,
            self.log,
        )
    }
}

/// The gradient of softmax (or, with `log`, log-softmax) along `axis` of `y`, the forward
/// output, for the upstream gradient `dy` (reshaped to `y`'s shape). Not recorded for autograd.
pub(crate) fn softmax_grad(log: bool, y: &Tensor, dy: &Tensor, axis: usize) -> Result<Tensor> {
    let view = AxisView::new(&y.shape, axis);
    Tensor::from_op(
        &y.ctx,
        SoftmaxGrad { log, view },
        vec![y.clone(), dy.reshape(&y.shape)?],
        y.shape.clone(),
        DType::F32,
    )
}

#[derive(Debug)]
struct SoftmaxBackward {
    log: bool,
    axis: usize,
    y: Tensor,
}

impl Backward for SoftmaxBackward {
    fn name(&self) -> &'static str {
        if self.log {
            "log_softmax"
        } else {
            "softmax"
        }
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        _inputs: &[Tensor],
        _needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let Some(g) = &grads[0] else {
            return Ok(vec![None]);
        };
        Ok(vec![Some(softmax_grad(self.log, &self.y, g, self.axis)?)])
    }
}

impl Tensor {
    fn softmax_impl(&self, axis: isize, log: bool) -> Result<Tensor> {
        let name = if log { "log_softmax" } else { "softmax" };
        self.check_dtype(name, DType::F32)?;
        let axis = shape::axis(name, axis, self.rank())?;
        let view = AxisView::new(&self.shape, axis);
        let y = Tensor::from_op(
            &self.ctx,
            Softmax { log, view },
            vec![self.clone()],
            self.shape.clone(),
            DType::F32,
        )?;
        let rule = SoftmaxBackward {
            log,
            axis,
            y: y.detach(),
        };
        Ok(record1(y, &[self], rule))
    }

    /// Softmax along `axis` (negative counts from the end): `exp(x − max) / Σ exp(x − max)`
    /// over each line of the axis (ONNX `Softmax`, opset 13). Stable for any finite input;
    /// `-inf` entries get 0, a NaN makes its whole line NaN.
    pub fn softmax(&self, axis: isize) -> Result<Tensor> {
        self.softmax_impl(axis, false)
    }

    /// Log-softmax along `axis` (negative counts from the end): `(x − max) − log Σ exp(x − max)`
    /// (ONNX `LogSoftmax`, opset 13), computed without forming the softmax.
    pub fn log_softmax(&self, axis: isize) -> Result<Tensor> {
        self.softmax_impl(axis, true)
    }
}
