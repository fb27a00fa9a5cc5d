//! Cumulative sum along one axis (shaders/cumsum.wgsl, ONNX CumSum with `exclusive` and
//! `reverse`). The backward is the cumulative sum of the gradient in the other direction.

use crate::autograd::{record1, Backward};
use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::axis::split_at_axis;
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, CumsumParams};
use crate::shape;
use crate::{DType, Tensor};

#[derive(Clone, Copy, Debug)]
struct Cumsum {
    axis: usize,
    exclusive: bool,
    reverse: bool,
}

impl Kernel for Cumsum {
    fn name(&self) -> &'static str {
        "cumsum"
    }

    fn launch(&self, inputs: &[&[usize]], _out: &[usize]) -> Launch {
        let (outer, n, inner) = split_at_axis(inputs[0], self.axis);
        let p = CumsumParams {
            lines: (outer * inner) as u32,
            n: n as u32,
            inner: inner as u32,
            flags: u32::from(self.exclusive) | (u32::from(self.reverse) << 1),
        };
        launch(&registry::CUMSUM, vec![], &p, groups(outer * inner, 256))
    }
}

#[derive(Debug)]
struct CumsumBackward(Cumsum);

impl Backward for CumsumBackward {
    fn name(&self) -> &'static str {
        "cumsum"
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
        let c = self.0;
        Ok(vec![Some(g.cumsum(
            c.axis as isize,
            c.exclusive,
            !c.reverse,
        )?)])
    }
}

impl Tensor {
    /// Cumulative sum along `axis` (negative counts from the end), like ONNX CumSum:
    /// inclusive `y_k = Σ_{j <= k} x_j`, or with `exclusive` `Σ_{j < k}` (the first is 0);
    /// `reverse` sums from the end instead. Each line is summed in order, in f32, by one GPU
    /// invocation: many short lines run in parallel, one very long line runs serially.
    pub fn cumsum(&self, axis: isize, exclusive: bool, reverse: bool) -> Result<Tensor> {
        self.check_dtype("cumsum", DType::F32)?;
        if self.rank() == 0 {
            return Err(Error::invalid("cumsum", "needs an axis (rank 0 given)"));
        }
        let d = shape::axis("cumsum", axis, self.rank())?;
        let k = Cumsum {
            axis: d,
            exclusive,
            reverse,
        };
        let y = Tensor::from_op(
            &self.ctx,
            k,
            vec![self.detach()],
            self.shape.clone(),
            DType::F32,
        )?;
        Ok(record1(y, &[self], CumsumBackward(k)))
    }
}
