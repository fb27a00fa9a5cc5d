//! argmax / argmin along one axis (shaders/arg_reduce.wgsl), as i32 indices: ONNX ArgMax and
//! ArgMin with `select_last_index = 0` (ties pick the first index). No gradient.

use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::axis::split_at_axis;
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, ArgReduceParams};
use crate::shape;
use crate::{DType, Tensor};

#[derive(Debug)]
struct ArgReduce {
    axis: usize,
    /// argmax (true) or argmin (false).
    max: bool,
}

impl Kernel for ArgReduce {
    fn name(&self) -> &'static str {
        if self.max {
            "argmax"
        } else {
            "argmin"
        }
    }

    fn launch(&self, inputs: &[&[usize]], _out: &[usize]) -> Launch {
        let (outer, n, inner) = split_at_axis(inputs[0], self.axis);
        let p = ArgReduceParams {
            n_out: (outer * inner) as u32,
            n: n as u32,
            inner: inner as u32,
            _pad: 0,
        };
        let spec = if self.max {
            &registry::ARGMAX
        } else {
            &registry::ARGMIN
        };
        launch(spec, vec![], &p, groups(outer * inner, 256))
    }
}

impl Tensor {
    fn arg_reduce(&self, max: bool, axis: isize, keepdim: bool) -> Result<Tensor> {
        let op = if max { "argmax" } else { "argmin" };
        self.check_dtype(op, DType::F32)?;
        let rank = self.rank().max(1);
        let d = shape::axis(op, axis, rank)?;
        let full: Vec<usize> = if self.rank() == 0 {
            vec![1]
        } else {
            self.shape.clone()
        };
        if full[d] == 0 {
            return Err(Error::invalid(
                op,
                format!("axis {axis} of shape {:?} is empty", self.shape),
            ));
        }
        let mut out = full.clone();
        if keepdim {
            out[d] = 1;
        } else {
            out.remove(d);
        }
        let x = if self.rank() == 0 {
            self.reshape(&full)?
        } else {
            self.clone()
        };
        Tensor::from_op(
            &self.ctx,
            ArgReduce { axis: d, max },
            vec![x.detach()],
            out,
            DType::I32,
        )
    }

    /// The index of the largest element along `axis` (negative counts from the end), as i32;
    /// ties pick the first index and a NaN wins (ONNX ArgMax, NumPy argmax). With `keepdim`
    /// the axis stays as size 1. An empty axis is an error. No gradient flows through it.
    pub fn argmax(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.arg_reduce(true, axis, keepdim)
    }

    /// The index of the smallest element along `axis`, as [`Tensor::argmax`] does for the
    /// largest (ONNX ArgMin).
    pub fn argmin(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.arg_reduce(false, axis, keepdim)
    }
}
