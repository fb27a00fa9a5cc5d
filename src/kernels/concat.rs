//! Concatenation along one axis (shaders/concat.wgsl, ONNX Concat). The kernel joins two
//! tensors; longer lists are joined pairwise as a balanced tree. The backward slices the
//! upstream gradient back into one piece per input.

use crate::autograd::{record1, Backward};
use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::axis::split_at_axis;
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, ConcatParams};
use crate::shape::{self, numel};
use crate::{DType, Tensor};

/// Inputs a (outer, ca, inner) and b (outer, cb, inner); output (outer, ca + cb, inner).
#[derive(Debug)]
struct Concat2 {
    axis: usize,
}

impl Kernel for Concat2 {
    fn name(&self) -> &'static str {
        "concat"
    }

    fn launch(&self, inputs: &[&[usize]], out: &[usize]) -> Launch {
        let (_, ca, inner) = split_at_axis(inputs[0], self.axis);
        let cb = inputs[1][self.axis];
        let n = numel(out);
        let p = ConcatParams {
            numel: n as u32,
            inner: inner as u32,
            ca: ca as u32,
            cb: cb as u32,
        };
        launch(&registry::CONCAT, vec![], &p, groups(n, 256))
    }
}

/// Slices the gradient back into one piece per input, along the joined axis.
#[derive(Debug)]
struct ConcatBackward {
    axis: usize,
}

impl Backward for ConcatBackward {
    fn name(&self) -> &'static str {
        "concat"
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let Some(g) = &grads[0] else {
            return Ok(vec![None; inputs.len()]);
        };
        let mut start = 0usize;
        let mut out = Vec::with_capacity(inputs.len());
        for (t, &need) in inputs.iter().zip(needs) {
            let len = t.shape[self.axis];
            out.push(if need {
                Some(g.narrow(self.axis as isize, start, len)?)
            } else {
                None
            });
            start += len;
        }
        Ok(out)
    }
}

/// Joins `parts` (at least one) with the kernel, halves first so each element is copied
/// about log2(len) times.
fn join(parts: &[Tensor], axis: usize) -> Result<Tensor> {
    match parts {
        [] => Err(Error::invalid("concat", "needs at least one tensor")),
        [one] => Ok(one.clone()),
        _ => {
            let (l, r) = parts.split_at(parts.len() / 2);
            let (a, b) = (join(l, axis)?, join(r, axis)?);
            let mut out = a.shape.clone();
            out[axis] += b.shape[axis];
            Tensor::from_op(
                &a.ctx,
                Concat2 { axis },
                vec![a.clone(), b.clone()],
                out,
                DType::F32,
            )
        }
    }
}

impl Tensor {
    /// Joins `tensors` along `axis` (negative counts from the end), like ONNX Concat: every
    /// tensor must have the same rank and the same dims off the axis. Gradients flow back to
    /// each input's part.
    pub fn concat(tensors: &[&Tensor], axis: isize) -> Result<Tensor> {
        let Some(first) = tensors.first() else {
            return Err(Error::invalid("concat", "needs at least one tensor"));
        };
        for t in tensors {
            t.check_dtype("concat", DType::F32)?;
        }
        if first.rank() == 0 {
            return Err(Error::invalid("concat", "cannot join scalars (rank 0)"));
        }
        let d = shape::axis("concat", axis, first.rank())?;
        for t in &tensors[1..] {
            let same = t.rank() == first.rank()
                && t.shape
                    .iter()
                    .zip(&first.shape)
                    .enumerate()
                    .all(|(k, (a, b))| k == d || a == b);
            if !same {
                return Err(Error::shape("concat", &first.shape, &t.shape));
            }
        }
        let parts: Vec<Tensor> = tensors
            .iter()
            .filter(|t| t.shape[d] > 0)
            .map(|t| t.detach())
            .collect();
        let y = if parts.is_empty() {
            let mut out = first.shape.clone();
            out[d] = 0;
            Tensor::zeros(&first.ctx, &out)?
        } else {
            join(&parts, d)?
        };
        Ok(record1(y, tensors, ConcatBackward { axis: d }))
    }
}
