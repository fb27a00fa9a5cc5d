//! Materialized permutations of dims: `permute`, `transpose`, `t` (shaders/permute.wgsl).
//!
//! A permutation that only moves dims of size 1, or the identity, changes no element's
//! position in memory; it returns a view (a reshape of the same data) and runs no kernel.
//! Any other permutation runs a gather kernel that writes a new contiguous tensor.

use crate::autograd::{record1, sum_to_shape, Backward};
use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::groups;
use crate::kernels::registry::{launch, slots8, PermuteParams, PERMUTE};
use crate::shape::{self, numel};
use crate::{DType, Tensor};

/// A permutation after simplification: the output dims' sizes and, for each, the input element
/// stride of the block of input dims it comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MergedPermutation {
    /// Sizes of the merged output dims.
    pub(crate) shape: Vec<usize>,
    /// Input element stride of each merged output dim.
    pub(crate) strides: Vec<usize>,
}

impl MergedPermutation {
    /// Whether the permutation leaves every element where it is (so it is a reshape).
    pub(crate) fn is_identity(&self) -> bool {
        self.shape.len() <= 1
    }
}

/// Simplifies the permutation `dims` (output dim k is input dim `dims[k]`) of contiguous
/// `shape`: drops dims of size 1, then merges runs of output dims that are also adjacent and in
/// order in the input. `dims` must be a valid permutation of `0..shape.len()`.
pub(crate) fn merge_permutation(shape: &[usize], dims: &[usize]) -> MergedPermutation {
    // Input dims that are not of size 1, renumbered in order.
    let mut renumber = vec![usize::MAX; shape.len()];
    let mut sizes = Vec::new();
    for (d, &n) in shape.iter().enumerate() {
        if n != 1 {
            renumber[d] = sizes.len();
            sizes.push(n);
        }
    }
    let perm: Vec<usize> = dims
        .iter()
        .filter_map(|&d| renumber.get(d).copied().filter(|&r| r != usize::MAX))
        .collect();
    // Runs of consecutive input dims, in output order: (first, last) input dim.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &d in &perm {
        match runs.last_mut() {
            Some(run) if run.1 + 1 == d => run.1 = d,
            _ => runs.push((d, d)),
        }
    }
    // Each run is one dim of the merged input; number them in input order.
    let mut by_input: Vec<usize> = (0..runs.len()).collect();
    by_input.sort_by_key(|&r| runs[r].0);
    let run_size = |&(a, b): &(usize, usize)| -> usize { sizes[a..=b].iter().product() };
    let in_shape: Vec<usize> = by_input.iter().map(|&r| run_size(&runs[r])).collect();
    let in_strides = shape::strides(&in_shape);
    let mut stride_of_run = vec![0; runs.len()];
    for (pos, &r) in by_input.iter().enumerate() {
        stride_of_run[r] = in_strides[pos];
    }
    MergedPermutation {
        shape: runs.iter().map(run_size).collect(),
        strides: stride_of_run,
    }
}

#[derive(Debug)]
struct Permute {
    dims: Vec<usize>,
}

impl Kernel for Permute {
    fn name(&self) -> &'static str {
        "permute"
    }

    fn launch(&self, inputs: &[&[usize]], out: &[usize]) -> Launch {
        let input = inputs.first().copied().unwrap_or(&[]);
        let m = merge_permutation(input, &self.dims);
        let n = numel(out);
        let params = PermuteParams {
            numel: n as u32,
            rank: m.shape.len() as u32,
            shape: slots8(&m.shape),
            strides: slots8(&m.strides),
            ..Default::default()
        };
        launch(&PERMUTE, vec![], &params, groups(n, 256))
    }
}

/// Checks that `dims` is a permutation of `0..shape.len()`.
/// Broadcast to a larger shape: the same gather, reading with stride 0 along broadcast dims.
#[derive(Debug)]
struct Expand;

impl Kernel for Expand {
    fn name(&self) -> &'static str {
        "broadcast_to"
    }

    fn launch(&self, inputs: &[&[usize]], out: &[usize]) -> Launch {
        let input = inputs.first().copied().unwrap_or(&[]);
        let n = numel(out);
        let params = PermuteParams {
            numel: n as u32,
            rank: out.len() as u32,
            shape: slots8(out),
            strides: slots8(&shape::broadcast_strides(input, out)),
            ..Default::default()
        };
        launch(&PERMUTE, vec![], &params, groups(n, 256))
    }
}

#[derive(Debug)]
struct PermuteBackward(Vec<usize>);

impl Backward for PermuteBackward {
    fn name(&self) -> &'static str {
        "permute"
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
        let mut inverse = vec![0; self.0.len()];
        for (i, &d) in self.0.iter().enumerate() {
            inverse[d] = i;
        }
        Ok(vec![Some(g.permute(&inverse)?)])
    }
}

#[derive(Debug)]
struct ExpandBackward;

impl Backward for ExpandBackward {
    fn name(&self) -> &'static str {
        "broadcast_to"
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        _needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![match &grads[0] {
            Some(g) => Some(sum_to_shape(g, &inputs[0].shape)?),
            None => None,
        }])
    }
}

fn check_permutation(op: &'static str, shape: &[usize], dims: &[usize]) -> Result<()> {
    let rank = shape.len();
    let bad = |why: String| {
        Err(Error::invalid(
            op,
            format!("dims {dims:?} are not a permutation of the dims of shape {shape:?}: {why}"),
        ))
    };
    if dims.len() != rank {
        return bad(format!("{} dims given for rank {rank}", dims.len()));
    }
    let mut seen = vec![false; rank];
    for &d in dims {
        match seen.get_mut(d) {
            None => return bad(format!("dim {d} is out of range")),
            Some(true) => return bad(format!("dim {d} appears more than once")),
            Some(s) => *s = true,
        }
    }
    Ok(())
}

impl Tensor {
    /// Reorders the dims: output dim k is input dim `dims[k]` (like NumPy's `transpose(axes)`),
    /// materialized as a new contiguous tensor. The identity, or a permutation that only moves
    /// dims of size 1, returns a view of the same data without running a kernel.
    pub fn permute(&self, dims: &[usize]) -> Result<Tensor> {
        self.check_dtype("permute", DType::F32)?;
        check_permutation("permute", &self.shape, dims)?;
        let out: Vec<usize> = dims
            .iter()
            .map(|&d| self.shape.get(d).copied().unwrap_or(1))
            .collect();
        if merge_permutation(&self.shape, dims).is_identity() {
            return self.reshape(&out);
        }
        let y = Tensor::from_op(
            &self.ctx,
            Permute {
                dims: dims.to_vec(),
            },
            vec![self.clone()],
            out,
            DType::F32,
        )?;
        Ok(record1(y, &[self], PermuteBackward(dims.to_vec())))
    }

    /// Broadcasts to `shape` (NumPy rules), materialized. Returns a view when the shape is
    /// unchanged.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        self.check_dtype("broadcast_to", DType::F32)?;
        let target = shape::broadcast_shape("broadcast_to", &self.shape, shape)?;
        if target != shape {
            return Err(Error::shape("broadcast_to", &self.shape, shape));
        }
        if self.shape == shape {
            return Ok(self.clone());
        }
        let y = Tensor::from_op(&self.ctx, Expand, vec![self.clone()], target, DType::F32)?;
        Ok(record1(y, &[self], ExpandBackward))
    }

    /// Swaps dims `d0` and `d1` (negative counts from the end). See [`Tensor::permute`].
    pub fn transpose(&self, d0: isize, d1: isize) -> Result<Tensor> {
        let rank = self.rank();
        let a = shape::axis("transpose", d0, rank)?;
        let b = shape::axis("transpose", d1, rank)?;
        let mut dims: Vec<usize> = (0..rank).collect();
        dims.swap(a, b);
        self.permute(&dims)
    }

    /// Swaps the last two dims (the matrix transpose of each matrix in a batch). Needs rank 2
    /// or more.
    pub fn t(&self) -> Result<Tensor> {
        if self.rank() < 2 {
            return Err(Error::invalid(
                "t",
                format!("needs rank 2 or more, got shape {:?}", self.shape),
            ));
        }
        self.transpose(-2, -1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_turns_a_block_swap_into_a_transpose() {
        // (a, b, c, d, e, f) -> (d, e, f, a, b, c)
        let m = merge_permutation(&[2, 3, 4, 5, 6, 7], &[3, 4, 5, 0, 1, 2]);
        assert_eq!(m.shape, vec![210, 24]);
        assert_eq!(m.strides, vec![1, 210]);
    }

    #[test]
    fn merging_drops_size_one_dims() {
        let m = merge_permutation(&[1, 4, 1, 5], &[3, 2, 0, 1]);
        assert_eq!(m.shape, vec![5, 4]);
        assert_eq!(m.strides, vec![1, 5]);
        assert!(merge_permutation(&[4, 1, 5], &[1, 0, 2]).is_identity());
        assert!(merge_permutation(&[3, 4], &[0, 1]).is_identity());
    }

    #[test]
    fn merging_keeps_runs_that_are_out_of_order() {
        // (a, b, c) -> (c, a, b): runs (c) and (a, b).
        let m = merge_permutation(&[2, 3, 4], &[2, 0, 1]);
        assert_eq!(m.shape, vec![4, 6]);
        assert_eq!(m.strides, vec![1, 4]);
    }
}
