//! Reference for shaders/embedding.wgsl, in f64.

/// Rows of `weight` (`vocab` × `dim`, row-major) picked by `indices`; an index outside
/// `[0, vocab)` gives zeros. Returns `indices.len()` rows of `dim`.
pub fn embedding(weight: &[f64], vocab: usize, dim: usize, indices: &[i64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(indices.len() * dim);
    for &v in indices {
        match usize::try_from(v) {
            Ok(v) if v < vocab => out.extend_from_slice(&weight[v * dim..(v + 1) * dim]),
            _ => out.extend(std::iter::repeat_n(0.0, dim)),
        }
    }
    out
}

/// The weight gradient: `dw[v] = Σ dy[n]` over `n` with `indices[n] == v` (out-of-range
/// indices contribute nothing). `dy` has `indices.len()` rows of `dim`.
pub fn embedding_backward(dy: &[f64], vocab: usize, dim: usize, indices: &[i64]) -> Vec<f64> {
    let mut dw = vec![0.0; vocab * dim];
    for (n, &v) in indices.iter().enumerate() {
        if let Ok(v) = usize::try_from(v) {
            if v < vocab {
                for d in 0..dim {
                    dw[v * dim + d] += dy[n * dim + d];
                }
            }
        }
    }
    dw
}
