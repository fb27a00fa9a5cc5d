//! Reference for shaders/permute.wgsl: reordering dims.

use crate::error::{Error, Result};
use crate::shape::{numel, strides};

/// `x` (contiguous, of `shape`) with its dims reordered: output dim k is input dim `dims[k]`.
/// Returns the values and the output shape; `dims` that are not a permutation are an error.
pub fn permute(x: &[f32], shape: &[usize], dims: &[usize]) -> Result<(Vec<f64>, Vec<usize>)> {
    let rank = shape.len();
    let mut sorted = dims.to_vec();
    sorted.sort_unstable();
    if sorted != (0..rank).collect::<Vec<_>>() || x.len() != numel(shape) {
        return Err(Error::invalid(
            "reference::permute",
            format!("dims {dims:?} do not permute shape {shape:?}"),
        ));
    }
    let in_strides = strides(shape);
    let out_shape: Vec<usize> = dims.iter().map(|&d| shape[d]).collect();
    let mut coord = vec![0usize; rank];
    let mut out = Vec::with_capacity(x.len());
    for _ in 0..x.len() {
        let src: usize = (0..rank).map(|k| coord[k] * in_strides[dims[k]]).sum();
        out.push(f64::from(x[src]));
        for k in (0..rank).rev() {
            coord[k] += 1;
            if coord[k] < out_shape[k] {
                break;
            }
            coord[k] = 0;
        }
    }
    Ok((out, out_shape))
}
