//! Gathers along one axis (shaders/gather.wgsl): ONNX Gather (`gather`) and GatherElements
//! (`gather_elements`). Indices are i32 tensors; negative indices count from the end of the
//! axis. The GPU cannot report an index outside `[-n, n)`: such a position reads 0 (and its
//! gradient is dropped). The backward of both is a scatter-add (see `scatter_add`).

use crate::autograd::{record1, Backward};
use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::axis::{check_indices, split_at_axis};
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, slots8, GatherElementsParams, GatherParams};
use crate::kernels::scatter_add::scatter_add_raw;
use crate::shape::{self, numel};
use crate::{DType, Tensor};

/// Inputs x and indices (i32); output x.shape[..axis] + indices.shape + x.shape[axis + 1..].
#[derive(Debug)]
struct Gather {
    axis: usize,
}

impl Kernel for Gather {
    fn name(&self) -> &'static str {
        "gather"
    }

    fn launch(&self, inputs: &[&[usize]], out: &[usize]) -> Launch {
        let (_, n, inner) = split_at_axis(inputs[0], self.axis);
        let total = numel(out);
        let p = GatherParams {
            numel: total as u32,
            n: n as u32,
            q: numel(inputs[1]) as u32,
            inner: inner as u32,
        };
        launch(&registry::GATHER, vec![], &p, groups(total, 256))
    }
}

/// Inputs x and indices (i32, the output's shape).
#[derive(Debug)]
struct GatherElements {
    axis: usize,
}

impl Kernel for GatherElements {
    fn name(&self) -> &'static str {
        "gather_elements"
    }

    fn launch(&self, inputs: &[&[usize]], out: &[usize]) -> Launch {
        let total = numel(out);
        let p = GatherElementsParams {
            numel: total as u32,
            rank: out.len() as u32,
            axis: self.axis as u32,
            n: inputs[0][self.axis] as u32,
            shape: slots8(out),
            x_strides: slots8(&shape::strides(inputs[0])),
        };
        launch(&registry::GATHER_ELEMENTS, vec![], &p, groups(total, 256))
    }
}

/// dx of `gather`: the upstream gradient, viewed as (outer, q, inner), scatter-added into
/// zeros of x's (outer, n, inner) at the indices (read with strides (0, 1, 0)).
#[derive(Debug)]
struct GatherBackward {
    axis: usize,
}

impl Backward for GatherBackward {
    fn name(&self) -> &'static str {
        "gather"
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        _needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let Some(g) = &grads[0] else {
            return Ok(vec![None, None]);
        };
        let (x, idx) = (&inputs[0], &inputs[1]);
        let (outer, n, inner) = split_at_axis(&x.shape, self.axis);
        let q = idx.numel();
        let zeros = Tensor::zeros(&x.ctx, &[outer, n, inner])?;
        let g = g.reshape(&[outer, q, inner])?;
        let idx = idx.reshape(&[q])?;
        let dx = scatter_add_raw(&zeros, 1, &idx, &g, Some(vec![0, 1, 0]))?;
        Ok(vec![Some(dx.reshape(&x.shape)?), None])
    }
}

/// dx of `gather_elements`: the upstream gradient scatter-added into zeros of x's shape.
#[derive(Debug)]
struct GatherElementsBackward {
    axis: usize,
}

impl Backward for GatherElementsBackward {
    fn name(&self) -> &'static str {
        "gather_elements"
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        _needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let Some(g) = &grads[0] else {
            return Ok(vec![None, None]);
        };
        let (x, idx) = (&inputs[0], &inputs[1]);
        let zeros = Tensor::zeros(&x.ctx, &x.shape)?;
        let dx = scatter_add_raw(&zeros, self.axis, idx, g, None)?;
        Ok(vec![Some(dx), None])
    }
}

impl Tensor {
    /// ONNX Gather: picks entries of `self` along `axis` by `indices` (i32, any shape; negative
    /// values count from the end). The result has shape
    /// `self.shape[..axis] + indices.shape + self.shape[axis + 1..]`. An index outside
    /// `[-n, n)` (n the axis size) cannot be reported by the GPU and reads 0. Gradients flow to
    /// `self` (summed over repeated indices; the backward scans every index for each element
    /// of `self`, see [`Tensor::scatter_add`]).
    pub fn gather(&self, indices: &Tensor, axis: isize) -> Result<Tensor> {
        self.check_dtype("gather", DType::F32)?;
        check_indices("gather (indices must be i32)", indices.dtype())?;
        if self.rank() == 0 {
            return Err(Error::invalid("gather", "cannot index a scalar (rank 0)"));
        }
        let d = shape::axis("gather", axis, self.rank())?;
        if self.shape[d] == 0 && indices.numel() > 0 {
            return Err(Error::shape("gather", &self.shape, &indices.shape));
        }
        let mut out = self.shape[..d].to_vec();
        out.extend_from_slice(&indices.shape);
        out.extend_from_slice(&self.shape[d + 1..]);
        let y = Tensor::from_op(
            &self.ctx,
            Gather { axis: d },
            vec![self.detach(), indices.detach()],
            out,
            DType::F32,
        )?;
        Ok(record1(
            y,
            &[self, &indices.detach()],
            GatherBackward { axis: d },
        ))
    }

    /// ONNX GatherElements: `out[c] = self[c with c[axis] replaced by indices[c]]`. `indices`
    /// (i32) has the rank of `self` and no dim larger than `self`'s off the axis; the result
    /// has its shape. Indices outside `[-n, n)` read 0. Gradients flow to `self`.
    pub fn gather_elements(&self, indices: &Tensor, axis: isize) -> Result<Tensor> {
        self.check_dtype("gather_elements", DType::F32)?;
        check_indices("gather_elements (indices must be i32)", indices.dtype())?;
        if self.rank() == 0 {
            return Err(Error::invalid(
                "gather_elements",
                "cannot index a scalar (rank 0)",
            ));
        }
        let d = shape::axis("gather_elements", axis, self.rank())?;
        let fits = indices.rank() == self.rank()
            && indices
                .shape
                .iter()
                .zip(&self.shape)
                .enumerate()
                .all(|(k, (&i, &x))| k == d || i <= x)
            && (self.shape[d] > 0 || indices.numel() == 0);
        if !fits {
            return Err(Error::shape("gather_elements", &self.shape, &indices.shape));
        }
        let y = Tensor::from_op(
            &self.ctx,
            GatherElements { axis: d },
            vec![self.detach(), indices.detach()],
            indices.shape.clone(),
            DType::F32,
        )?;
        Ok(record1(
            y,
            &[self, &indices.detach()],
            GatherElementsBackward { axis: d },
        ))
    }
}
