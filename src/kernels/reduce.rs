//! Reductions over axes: sum, mean, max, min (shaders/reduce.wgsl).
//!
//! Before dispatch the input's dims are split into kept and reduced ones, dims of size 1 are
//! dropped, and adjacent dims of the same kind are merged (see `merge_dims`), so the shader's
//! index arithmetic works on at most four dims per side however the axes were given.

use crate::autograd::{record1, Backward};
use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
pub use crate::ir::ReduceOp;
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, slots8, ReduceParams};
use crate::shape::{self, numel};
use crate::{DType, Tensor};

/// Reductions of at most this many elements per output always use `reduce_small` (one
/// invocation per output): a 256-wide workgroup would leave most of its invocations idle.
pub const SMALL_REDUCTION: usize = 64;

/// With at least this many outputs, one invocation per output already fills a GPU, so
/// `reduce_small` is used for reduced sizes up to [`MANY_OUTPUTS_MAX_REDUCTION`] as well.
pub const MANY_OUTPUTS: usize = 4096;

/// The largest reduced size `reduce_small` takes when there are [`MANY_OUTPUTS`] outputs;
/// beyond it the serial loop per invocation gets long, and the workgroup tree is used.
pub const MANY_OUTPUTS_MAX_REDUCTION: usize = 4096;

/// Whether a reduction of `n_red` elements into each of `n_out` outputs runs one invocation per
/// output (`reduce_small`) rather than one workgroup per output (`reduce`).
pub fn uses_small_path(n_out: usize, n_red: usize) -> bool {
    n_red <= SMALL_REDUCTION || (n_out >= MANY_OUTPUTS && n_red <= MANY_OUTPUTS_MAX_REDUCTION)
}

/// A reduction's dims after simplification: sizes and input element strides of the kept dims
/// (in order; they index the output) and of the reduced dims.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MergedDims {
    /// Sizes of the kept dims.
    pub(crate) kept_shape: Vec<usize>,
    /// Input element strides of the kept dims.
    pub(crate) kept_strides: Vec<usize>,
    /// Sizes of the reduced dims.
    pub(crate) red_shape: Vec<usize>,
    /// Input element strides of the reduced dims.
    pub(crate) red_strides: Vec<usize>,
}

/// Splits contiguous `shape` into kept and reduced dims (`reduced[d]` says which), drops dims
/// of size 1 and merges neighbours of the same kind: [N, C, H, W] reduced over H and W becomes
/// kept [N*C] and reduced [H*W]. Dims of size 0 are kept as they are.
pub(crate) fn merge_dims(shape: &[usize], reduced: &[bool]) -> MergedDims {
    let strides = shape::strides(shape);
    let mut m = MergedDims::default();
    // The kind of the last dim pushed (None before any), so neighbours can merge.
    let mut last: Option<bool> = None;
    for (d, (&n, &s)) in shape.iter().zip(&strides).enumerate() {
        if n == 1 {
            continue;
        }
        let red = reduced.get(d).copied().unwrap_or(false);
        let (sizes, strs) = if red {
            (&mut m.red_shape, &mut m.red_strides)
        } else {
            (&mut m.kept_shape, &mut m.kept_strides)
        };
        match (last == Some(red), sizes.last_mut(), strs.last_mut()) {
            // Row-major: the merged dim has the inner dim's stride.
            (true, Some(size), Some(stride)) => {
                *size *= n;
                *stride = s;
            }
            _ => {
                sizes.push(n);
                strs.push(s);
            }
        }
        last = Some(red);
    }
    m
}

#[derive(Debug)]
struct Reduce {
    op: ReduceOp,
    /// Per input dim: whether it is reduced.
    reduced: Vec<bool>,
}

impl Kernel for Reduce {
    fn name(&self) -> &'static str {
        self.op.name()
    }

    fn launch(&self, inputs: &[&[usize]], out: &[usize]) -> Launch {
        let input = inputs.first().copied().unwrap_or(&[]);
        let m = merge_dims(input, &self.reduced);
        let n_out = numel(out);
        let n_red = numel(&m.red_shape);
        let params = ReduceParams {
            n_out: n_out as u32,
            n_red: n_red as u32,
            kept_rank: m.kept_shape.len() as u32,
            red_rank: m.red_shape.len() as u32,
            kept_shape: slots8(&m.kept_shape),
            kept_strides: slots8(&m.kept_strides),
            red_shape: slots8(&m.red_shape),
            red_strides: slots8(&m.red_strides),
        };
        let (spec, workgroups) = if uses_small_path(n_out, n_red) {
            (&registry::REDUCE_SMALL, groups(n_out, 256))
        } else {
            (&registry::REDUCE, n_out as u64)
        };
        launch(spec, vec![("OP", self.op.code())], &params, workgroups)
    }
}

/// Resolves `axes` (negative counts from the end) against `rank` into a mask of reduced dims.
/// Out-of-range and repeated axes are refused, naming `op`.
fn reduced_mask(op: &'static str, axes: &[isize], rank: usize) -> Result<Vec<bool>> {
    let mut mask = vec![false; rank];
    for &a in axes {
        let d = shape::axis(op, a, rank)?;
        match mask.get_mut(d) {
            Some(m) if !*m => *m = true,
            _ => {
                return Err(Error::invalid(
                    op,
                    format!("axis {a} (dim {d}) is repeated in axes {axes:?}"),
                ))
            }
        }
    }
    Ok(mask)
}

impl Tensor {
    /// Reduces over `axes` with `op`. Negative axes count from the end; repeated or
    /// out-of-range axes are an error. With `keepdim` the reduced dims stay as size 1,
    /// otherwise they are removed (reducing every axis gives shape `[]`). Empty `axes` reduce
    /// nothing: the result is a copy of the input.
    ///
    /// Sum over zero elements is 0 and mean is NaN; max and min over zero elements are an error
    /// (when there is any output to fill). Max and min return NaN where an input is NaN.
    pub fn reduce(&self, op: ReduceOp, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        let name = op.name();
        self.check_dtype(name, DType::F32)?;
        let mask = reduced_mask(name, axes, self.rank())?;
        let out: Vec<usize> = self
            .shape
            .iter()
            .zip(&mask)
            .filter_map(|(&n, &red)| match (red, keepdim) {
                (false, _) => Some(n),
                (true, true) => Some(1),
                (true, false) => None,
            })
            .collect();
        let n_red: usize = self
            .shape
            .iter()
            .zip(&mask)
            .filter(|(_, &red)| red)
            .map(|(&n, _)| n)
            .product();
        if n_red == 0 && numel(&out) > 0 && matches!(op, ReduceOp::Max | ReduceOp::Min) {
            return Err(Error::invalid(
                name,
                format!(
                    "{name} over zero elements has no value (axes {axes:?} of shape {:?})",
                    self.shape
                ),
            ));
        }
        let keep_shape: Vec<usize> = self
            .shape
            .iter()
            .zip(&mask)
            .map(|(&n, &red)| if red { 1 } else { n })
            .collect();
        let y = Tensor::from_op(
            &self.ctx,
            Reduce {
                op,
                reduced: mask.clone(),
            },
            vec![self.clone()],
            out,
            DType::F32,
        )?;
        let rule = ReduceBackward {
            op,
            axes: axes.to_vec(),
            keep_shape,
            n_red,
            y: y.detach(),
        };
        Ok(record1(y, &[self], rule))
    }

    /// Sum over `axes` (see [`Tensor::reduce`]).
    pub fn sum(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Sum, axes, keepdim)
    }

    /// Mean over `axes` (see [`Tensor::reduce`]).
    pub fn mean(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Mean, axes, keepdim)
    }

    /// Maximum over `axes`, NaN-propagating (see [`Tensor::reduce`]).
    pub fn max(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Max, axes, keepdim)
    }

    /// Minimum over `axes`, NaN-propagating (see [`Tensor::reduce`]).
    pub fn min(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Min, axes, keepdim)
    }

    /// Sum of every element, as a tensor of shape `[]`.
    pub fn sum_all(&self) -> Result<Tensor> {
        self.reduce(ReduceOp::Sum, &all_axes(self.rank()), false)
    }

    /// Mean of every element, as a tensor of shape `[]` (NaN for an empty tensor).
    pub fn mean_all(&self) -> Result<Tensor> {
        self.reduce(ReduceOp::Mean, &all_axes(self.rank()), false)
    }
}

/// Gradient of a reduction: spread the (kept-dims) gradient back over the reduced elements;
/// for max/min, only to the elements equal to the result, split evenly between ties.
#[derive(Debug)]
struct ReduceBackward {
    op: ReduceOp,
    axes: Vec<isize>,
    keep_shape: Vec<usize>,
    n_red: usize,
    y: Tensor,
}

impl Backward for ReduceBackward {
    fn name(&self) -> &'static str {
        self.op.name()
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        _needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let Some(g) = &grads[0] else {
            return Ok(vec![None]);
        };
        let x = &inputs[0];
        let g = g.reshape(&self.keep_shape)?;
        let dx = match self.op {
            ReduceOp::Sum => g.broadcast_to(&x.shape)?,
            ReduceOp::Mean => g
                .mul_scalar(1.0 / self.n_red.max(1) as f32)?
                .broadcast_to(&x.shape)?,
            ReduceOp::Max | ReduceOp::Min => {
                let y = self.y.reshape(&self.keep_shape)?;
                // 1 where x equals the max (min), else 0.
                let hit = x.eq(&y)?;
                let ties = hit.sum(&self.axes, true)?;
                hit.mul(&g)?.div(&ties)?
            }
        };
        Ok(vec![Some(dx)])
    }
}

fn all_axes(rank: usize) -> Vec<isize> {
    (0..rank as isize).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_folds_neighbours_of_the_same_kind() {
        let m = merge_dims(&[2, 3, 4, 5], &[false, false, true, true]);
        assert_eq!(m.kept_shape, vec![6]);
        assert_eq!(m.kept_strides, vec![20]);
        assert_eq!(m.red_shape, vec![20]);
        assert_eq!(m.red_strides, vec![1]);
    }

    #[test]
    fn merging_drops_size_one_dims_between_same_kinds() {
        let m = merge_dims(
            &[2, 1, 3, 4, 1, 5],
            &[true, false, true, false, true, false],
        );
        assert_eq!(m.red_shape, vec![6]);
        assert_eq!(m.red_strides, vec![20]);
        assert_eq!(m.kept_shape, vec![20]);
        assert_eq!(m.kept_strides, vec![1]);
    }

    #[test]
    fn merging_keeps_alternating_dims_apart() {
        let m = merge_dims(&[2, 3, 4, 5], &[true, false, true, false]);
        assert_eq!(m.red_shape, vec![2, 4]);
        assert_eq!(m.red_strides, vec![60, 5]);
        assert_eq!(m.kept_shape, vec![3, 5]);
        assert_eq!(m.kept_strides, vec![20, 1]);
    }
}
