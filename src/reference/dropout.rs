//! Reference for shaders/dropout.wgsl: the dropout mask from the Philox stream of
//! `kiln::reference::random`, in f64.

use crate::reference::random;

/// The keep mask of `n` elements for drop probability `p` and `seed`: element `i` is kept iff
/// `random::unit(word i) >= p`, i.e. iff `Tensor::rand(seed)[i] >= p`.
pub fn mask(n: usize, p: f32, seed: u64) -> Vec<bool> {
    random::bits(seed, n)
        .into_iter()
        .map(|w| random::unit(w) >= f64::from(p))
        .collect()
}

/// Training-mode dropout: kept elements scaled by `1 / (1 - p)`, dropped ones 0.
pub fn dropout(x: &[f64], p: f32, seed: u64) -> Vec<f64> {
    let scale = 1.0 / (1.0 - f64::from(p));
    mask(x.len(), p, seed)
        .into_iter()
        .zip(x)
        .map(|(keep, &v)| if keep { v * scale } else { 0.0 })
        .collect()
}
