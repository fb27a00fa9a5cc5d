//! Reference for shaders/attention.wgsl: `softmax(Q·Kᵀ·scale + mask)·V`, straightforwardly, in
//! f64 over f64 inputs (so finite differences of it are accurate).

use crate::shape::broadcast_strides;

/// The inputs of one attention call, contiguous row-major: q `(B, Hq, Sq, D)`, k
/// `(B, Hkv, Skv, D)`, v `(B, Hkv, Skv, Dv)`, and an optional additive mask with its shape, which
/// broadcasts to `(B, Hq, Sq, Skv)`.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// Queries.
    pub q: &'a [f64],
    /// Shape of `q`.
    pub q_shape: &'a [usize],
    /// Keys.
    pub k: &'a [f64],
    /// Shape of `k`.
    pub k_shape: &'a [usize],
    /// Values.
    pub v: &'a [f64],
    /// Shape of `v`.
    pub v_shape: &'a [usize],
    /// Additive mask and its shape.
    pub mask: Option<(&'a [f64], &'a [usize])>,
}

/// `softmax(Q·Kᵀ·scale + mask)·V` per (batch, query head), `(B, Hq, Sq, Dv)`. `scale` defaults to
/// `1/sqrt(D)`; kv head `h / (Hq / Hkv)` serves query head `h`; `causal` masks keys `j > i`. A
/// row whose every score is `-inf` gives zeros.
pub fn attention(x: &Inputs, scale: Option<f64>, causal: bool) -> Vec<f64> {
    let (b_n, hq, sq, d) = (x.q_shape[0], x.q_shape[1], x.q_shape[2], x.q_shape[3]);
    let (hkv, skv) = (x.k_shape[1], x.k_shape[2]);
    let dv = x.v_shape[3];
    let r = hq / hkv;
    let scale = scale.unwrap_or(1.0 / (d.max(1) as f64).sqrt());
    let full = [b_n, hq, sq, skv];
    let mstrides = x.mask.map(|(_, s)| broadcast_strides(s, &full));
    let mut y = vec![0.0; b_n * hq * sq * dv];
    let mut scores = vec![0.0; skv];
    for b in 0..b_n {
        for h in 0..hq {
            let kvh = h / r;
            let kbase = (b * hkv + kvh) * skv;
            for i in 0..sq {
                let qrow = &x.q[((b * hq + h) * sq + i) * d..][..d];
                for (j, s) in scores.iter_mut().enumerate() {
                    let krow = &x.k[(kbase + j) * d..][..d];
                    let mut dot: f64 = qrow.iter().zip(krow).map(|(a, c)| a * c).sum();
                    dot *= scale;
                    if let (Some((m, _)), Some(st)) = (x.mask, &mstrides) {
                        dot += m[b * st[0] + h * st[1] + i * st[2] + j * st[3]];
                    }
                    if causal && j > i {
                        dot = f64::NEG_INFINITY;
                    }
                    *s = dot;
                }
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if max == f64::NEG_INFINITY {
                    continue;
                }
                let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = weights.iter().sum();
                let out = &mut y[((b * hq + h) * sq + i) * dv..][..dv];
                for (j, w) in weights.iter().enumerate() {
                    let vrow = &x.v[(kbase + j) * dv..][..dv];
                    for (o, vv) in out.iter_mut().zip(vrow) {
                        *o += w / total * vv;
                    }
                }
            }
        }
    }
    y
}
