//! Shape arithmetic: element counts, strides, NumPy broadcasting.

use crate::error::{Error, Result};

/// The most dimensions a kernel handles; shapes travel to the GPU in fixed-size uniform arrays.
pub const MAX_RANK: usize = 8;

/// Number of elements in `shape` (1 for a scalar).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major (C order) strides of a contiguous tensor.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// The broadcast shape of `a` and `b` under NumPy rules.
pub fn broadcast_shape(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(Error::shape(op, a, b)),
        };
    }
    Ok(out)
}

/// Strides that read `shape` (contiguous) as if broadcast to `out`: 0 along broadcast dims.
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let s = strides(shape);
    let offset = out.len() - shape.len();
    (0..out.len())
        .map(|i| {
            if i < offset || shape[i - offset] == 1 {
                0
            } else {
                s[i - offset]
            }
        })
        .collect()
}

/// Checks that `shape` fits the kernels' rank limit.
pub fn check_rank(op: &'static str, shape: &[usize]) -> Result<()> {
    if shape.len() > MAX_RANK {
        return Err(Error::invalid(
            op,
            format!(
                "rank {} of shape {shape:?} is over the supported {MAX_RANK}",
                shape.len()
            ),
        ));
    }
    Ok(())
}

/// Resolves a possibly negative axis against `rank`.
pub fn axis(op: &'static str, axis: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(Error::invalid(
            op,
            format!("axis {axis} is out of range for rank {rank}"),
        ));
    }
    Ok(a as usize)
}
