//! Scatter-add along one axis (shaders/scatter_add.wgsl): ONNX ScatterElements with
//! `reduction = "add"`, and the backward of the gathers. Deterministic: each output element
//! sums the updates that land on it in order, with no atomics.

use crate::autograd::{record1, Backward};
use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::axis::check_indices;
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, slots8, ScatterAddParams};
use crate::shape::{self, numel};
use crate::{DType, Tensor};

/// Inputs x, indices (i32), updates; output x's shape.
#[derive(Debug)]
struct ScatterAdd {
    axis: usize,
    /// Element strides of the indices over the updates' shape; `None`: the indices are
    /// contiguous in the updates' shape.
    idx_strides: Option<Vec<usize>>,
}

impl Kernel for ScatterAdd {
    fn name(&self) -> &'static str {
        "scatter_add"
    }

    fn launch(&self, inputs: &[&[usize]], out: &[usize]) -> Launch {
        let upd = inputs[2];
        let upd_strides = shape::strides(upd);
        let idx_strides = self.idx_strides.clone().unwrap_or(upd_strides.clone());
        let n = numel(out);
        let p = ScatterAddParams {
            numel: n as u32,
            rank: out.len() as u32,
            axis: self.axis as u32,
            k: upd[self.axis] as u32,
            shape: slots8(out),
            upd_shape: slots8(upd),
            upd_strides: slots8(&upd_strides),
            idx_strides: slots8(&idx_strides),
        };
        launch(&registry::SCATTER_ADD, vec![], &p, groups(n, 256))
    }
}

/// Records the kernel without autograd or checks (the gathers' backward uses it directly).
pub(crate) fn scatter_add_raw(
    x: &Tensor,
    axis: usize,
    indices: &Tensor,
    updates: &Tensor,
    idx_strides: Option<Vec<usize>>,
) -> Result<Tensor> {
    Tensor::from_op(
        &x.ctx,
        ScatterAdd { axis, idx_strides },
        vec![x.detach(), indices.detach(), updates.detach()],
        x.shape.clone(),
        DType::F32,
    )
}

/// d x = g; d updates = g gathered at the indices.
#[derive(Debug)]
struct ScatterAddBackward {
    axis: usize,
}

impl Backward for ScatterAddBackward {
    fn name(&self) -> &'static str {
        "scatter_add"
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
        let dx = needs[0].then(|| g.clone());
        let du = match needs[2] {
            true => Some(g.gather_elements(&inputs[1], self.axis as isize)?),
            false => None,
        };
        Ok(vec![dx, None, du])
    }
}

impl Tensor {
    /// ONNX ScatterElements with `reduction = "add"`: a copy of `self` where, for every
    /// position `c` of `updates`, `updates[c]` is added at `c` with `c[axis]` replaced by
    /// `indices[c]`. `indices` (i32) and `updates` share one shape, of the rank of `self` and no
    /// larger off the axis. Negative indices count from the end; an index outside `[-n, n)`
    /// adds nothing. Gradients flow to `self` and `updates`. Each output element scans the
    /// updates along the axis (no atomics, deterministic), so the work is
    /// `self.numel() * updates.shape[axis]`: meant for moderate axis lengths.
    pub fn scatter_add(&self, axis: isize, indices: &Tensor, updates: &Tensor) -> Result<Tensor> {
        self.check_dtype("scatter_add", DType::F32)?;
        updates.check_dtype("scatter_add", DType::F32)?;
        check_indices("scatter_add (indices must be i32)", indices.dtype())?;
        if self.rank() == 0 {
            return Err(Error::invalid(
                "scatter_add",
                "cannot index a scalar (rank 0)",
            ));
        }
        let d = shape::axis("scatter_add", axis, self.rank())?;
        if indices.shape != updates.shape {
            return Err(Error::shape("scatter_add", &indices.shape, &updates.shape));
        }
        let fits = updates.rank() == self.rank()
            && updates
                .shape
                .iter()
                .zip(&self.shape)
                .enumerate()
                .all(|(k, (&u, &x))| k == d || u <= x);
        if !fits {
            return Err(Error::shape("scatter_add", &self.shape, &updates.shape));
        }
        let y = scatter_add_raw(self, d, indices, updates, None)?;
        Ok(record1(
            y,
            &[self, &indices.detach(), updates],
            ScatterAddBackward { axis: d },
        ))
    }
}
