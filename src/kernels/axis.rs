//! Small helpers shared by the indexing kernels (gather, scatter_add, cumsum, arg_reduce,
//! concat): the (outer, n, inner) view of a contiguous tensor around one axis, and the index
//! dtype check.

use crate::error::{Error, Result};

/// The (outer, n, inner) view of a contiguous `shape` around `axis`: the product of the dims
/// before it, its size, and the product of the dims after it.
pub(crate) fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

/// Refuses a non-i32 index tensor; `what` names the op and the rule, e.g.
/// `"gather (indices must be i32)"`.
pub(crate) fn check_indices(what: &'static str, dtype: crate::DType) -> Result<()> {
    if dtype == crate::DType::I32 {
        Ok(())
    } else {
        Err(Error::UnsupportedDType { op: what, dtype })
    }
}
