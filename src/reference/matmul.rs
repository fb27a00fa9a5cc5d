//! Reference for shaders/matmul.wgsl: NumPy `matmul` with optional transposes, in f64.

use crate::shape::{broadcast_shape, broadcast_strides, numel};

/// `op(a) @ op(b)` with NumPy `matmul` semantics, where `op` transposes the last two dimensions
/// of a rank >= 2 operand when its flag is set (1-D operands ignore the flag). Returns the values
/// (accumulated in f64) and the output shape.
///
/// A 1-D `a` of length K is the row `[1, K]` and a 1-D `b` the column `[K, 1]`; the promoted
/// dimension is dropped from the output shape. Batch dimensions broadcast.
///
/// Panics if the shapes do not fit together (tests pass only valid ones).
pub fn matmul(
    a: &[f32],
    a_shape: &[usize],
    b: &[f32],
    b_shape: &[usize],
    transpose_a: bool,
    transpose_b: bool,
) -> (Vec<f64>, Vec<usize>) {
    assert!(!a_shape.is_empty() && !b_shape.is_empty(), "0-D operand");
    assert_eq!(a.len(), numel(a_shape), "a does not fill {a_shape:?}");
    assert_eq!(b.len(), numel(b_shape), "b does not fill {b_shape:?}");
    let a_vector = a_shape.len() == 1;
    let b_vector = b_shape.len() == 1;
    let a_full: Vec<usize> = if a_vector {
        vec![1, a_shape[0]]
    } else {
        a_shape.to_vec()
    };
    let b_full: Vec<usize> = if b_vector {
        vec![b_shape[0], 1]
    } else {
        b_shape.to_vec()
    };
    let (ar, ac) = (a_full[a_full.len() - 2], a_full[a_full.len() - 1]);
    let (br, bc) = (b_full[b_full.len() - 2], b_full[b_full.len() - 1]);
    let ta = transpose_a && !a_vector;
    let tb = transpose_b && !b_vector;
    // Element (m, k) of op(A) within one matrix, and (k, n) of op(B).
    let (m_dim, k_dim) = if ta { (ac, ar) } else { (ar, ac) };
    let (kb, n_dim) = if tb { (bc, br) } else { (br, bc) };
    assert_eq!(
        k_dim, kb,
        "inner dimensions differ: {a_shape:?} @ {b_shape:?}"
    );
    let at = |m: usize, k: usize| if ta { k * ac + m } else { m * ac + k };
    let bt = |k: usize, n: usize| if tb { n * bc + k } else { k * bc + n };

    let a_batch = &a_full[..a_full.len() - 2];
    let b_batch = &b_full[..b_full.len() - 2];
    let batch = broadcast_shape("matmul", a_batch, b_batch)
        .unwrap_or_else(|_| panic!("batch dims do not broadcast: {a_shape:?} @ {b_shape:?}"));
    let sa = broadcast_strides(a_batch, &batch);
    let sb = broadcast_strides(b_batch, &batch);

    let mut out = Vec::with_capacity(numel(&batch) * m_dim * n_dim);
    for i in 0..numel(&batch) {
        let (mut rem, mut ia, mut ib) = (i, 0, 0);
        for d in (0..batch.len()).rev() {
            let c = rem % batch[d];
            rem /= batch[d];
            ia += c * sa[d];
            ib += c * sb[d];
        }
        let a_mat = &a[ia * ar * ac..];
        let b_mat = &b[ib * br * bc..];
        for m in 0..m_dim {
            for n in 0..n_dim {
                let s: f64 = (0..k_dim)
                    .map(|k| f64::from(a_mat[at(m, k)]) * f64::from(b_mat[bt(k, n)]))
                    .sum();
                out.push(s);
            }
        }
    }

    let mut shape = batch;
    if !a_vector {
        shape.push(m_dim);
    }
    if !b_vector {
        shape.push(n_dim);
    }
    (out, shape)
}
