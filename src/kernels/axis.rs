//! Small helpers shared by the indexing kernels (compare, where, slice, gather, scatter_add,
//! cumsum, arg_reduce, concat): dims padded into a uniform's 8 slots, and the
//! (outer, n, inner) view of a contiguous tensor around one axis.

use crate::error::{Error, Result};
use crate::shape::MAX_RANK;

/// `values` in the 8 slots of an `array<vec4<u32>, 2>` field (unused slots 0).
pub(crate) fn dims8(values: &[usize]) -> [u32; MAX_RANK] {
    let mut out = [0u32; MAX_RANK];
    for (o, &v) in out.iter_mut().zip(values) {
        *o = v as u32;
    }
    out
}

/// `values` in the 8 slots of an `array<vec4<i32>, 2>` field (unused slots 0).
pub(crate) fn idims8(values: &[i64]) -> [i32; MAX_RANK] {
    let mut out = [0i32; MAX_RANK];
    for (o, &v) in out.iter_mut().zip(values) {
        *o = v as i32;
    }
    out
}

/// The (outer, n, inner) view of a contiguous `shape` around `axis`: the product of the dims
/// before it, its size, and the product of the dims after it.
pub(crate) fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

/// The parameter words of a `#[repr(C)]` plain-data params struct, as `launch` takes them.
pub(crate) fn words<T: bytemuck::Pod>(params: &T) -> Vec<u32> {
    bytemuck::cast_slice(std::slice::from_ref(params)).to_vec()
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
