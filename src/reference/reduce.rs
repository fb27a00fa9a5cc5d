//! Reference for shaders/reduce.wgsl: reductions over axes, accumulating in f64.

use crate::error::{Error, Result};
use crate::ir::ReduceOp;
use crate::shape::numel;

/// `op` over `values` (NumPy semantics): sum of none is 0, mean of none is NaN, max and min of
/// none are `None`; max and min are NaN if any value is NaN.
pub fn reduce_values(op: ReduceOp, values: &[f32]) -> Option<f64> {
    let v = values.iter().map(|&x| f64::from(x));
    match op {
        ReduceOp::Sum => Some(v.sum()),
        ReduceOp::Mean => Some(v.sum::<f64>() / values.len() as f64),
        ReduceOp::Max | ReduceOp::Min => v.reduce(|a, b| {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else if (op == ReduceOp::Max) == (b > a) {
                b
            } else {
                a
            }
        }),
    }
}

/// `op` over `axes` of `x` (contiguous, of `shape`), NumPy style: negative axes count from the
/// end; `keepdim` keeps reduced dims as size 1; empty `axes` reduce nothing. Returns the values
/// and the output shape. Repeated or out-of-range axes, and max or min over zero elements (with
/// a non-empty output), are errors.
pub fn reduce(
    op: ReduceOp,
    x: &[f32],
    shape: &[usize],
    axes: &[isize],
    keepdim: bool,
) -> Result<(Vec<f64>, Vec<usize>)> {
    let name = "reference::reduce";
    let rank = shape.len();
    if x.len() != numel(shape) {
        return Err(Error::invalid(name, "data does not fill the shape"));
    }
    let mut reduced = vec![false; rank];
    for &a in axes {
        let d = if a < 0 { a + rank as isize } else { a };
        if d < 0 || d >= rank as isize || reduced[d as usize] {
            return Err(Error::invalid(
                name,
                format!("bad axes {axes:?} for rank {rank}"),
            ));
        }
        reduced[d as usize] = true;
    }
    // Gather each output's values: the kept coordinates of an input element, in order, are the
    // row-major coordinates of its output element.
    let kept: Vec<usize> = (0..rank).filter(|&d| !reduced[d]).collect();
    let n_out: usize = kept.iter().map(|&d| shape[d]).product();
    let mut groups: Vec<Vec<f32>> = vec![Vec::new(); n_out];
    let mut coord = vec![0usize; rank];
    for &v in x {
        let o = kept.iter().fold(0, |acc, &d| acc * shape[d] + coord[d]);
        groups[o].push(v);
        for d in (0..rank).rev() {
            coord[d] += 1;
            if coord[d] < shape[d] {
                break;
            }
            coord[d] = 0;
        }
    }
    let values = groups
        .iter()
        .map(|g| {
            reduce_values(op, g).ok_or_else(|| {
                Error::invalid(name, format!("{op:?} over zero elements has no value"))
            })
        })
        .collect::<Result<Vec<f64>>>()?;
    let out_shape = (0..rank)
        .filter_map(|d| match (reduced[d], keepdim) {
            (false, _) => Some(shape[d]),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    Ok((values, out_shape))
}
