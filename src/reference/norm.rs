//! References for shaders/layer_norm.wgsl and shaders/batch_norm.wgsl, in f64.

use crate::shape::numel;

/// Layer normalization of `x` (of `shape`) over the dims `[axis, rank)` (`axis` non-negative)
/// with the biased variance, then `· scale + bias` (each of shape `shape[axis..]`, optional).
/// Panics on inconsistent shapes.
pub fn layer_norm(
    x: &[f64],
    shape: &[usize],
    axis: usize,
    scale: Option<&[f64]>,
    bias: Option<&[f64]>,
    eps: f64,
) -> Vec<f64> {
    assert_eq!(x.len(), numel(shape), "x does not fill {shape:?}");
    assert!(axis < shape.len(), "axis {axis} out of range for {shape:?}");
    let len = numel(&shape[axis..]);
    for t in [scale, bias].into_iter().flatten() {
        assert_eq!(t.len(), len, "scale/bias do not match the normalized dims");
    }
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(len.max(1)) {
        let mean = row.iter().sum::<f64>() / len as f64;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / len as f64;
        let rstd = 1.0 / (var + eps).sqrt();
        for (k, &v) in row.iter().enumerate() {
            let s = scale.map_or(1.0, |s| s[k]);
            let b = bias.map_or(0.0, |b| b[k]);
            out.push((v - mean) * rstd * s + b);
        }
    }
    out
}

/// (C, S): the channel count and the spatial size of an (N, C, ...) shape.
fn channel_dims(x: &[f64], shape: &[usize]) -> (usize, usize) {
    assert!(
        shape.len() >= 2,
        "batch norm needs (N, C, ...), got {shape:?}"
    );
    assert_eq!(x.len(), numel(shape), "x does not fill {shape:?}");
    (shape[1], numel(&shape[2..]))
}

/// Applies `f(channel, value)` to every element of an (N, C, S) tensor.
fn per_channel(x: &[f64], shape: &[usize], f: impl Fn(usize, f64) -> f64) -> Vec<f64> {
    let (c, s) = channel_dims(x, shape);
    x.iter()
        .enumerate()
        .map(|(i, &v)| f((i / s.max(1)) % c.max(1), v))
        .collect()
}

/// Batch normalization with given statistics: `(x − mean)/√(var + eps)·scale + bias` per
/// channel of an (N, C, ...) `x`; the other arguments are (C). Panics on inconsistent shapes.
pub fn batch_norm_inference(
    x: &[f64],
    shape: &[usize],
    scale: &[f64],
    bias: &[f64],
    mean: &[f64],
    var: &[f64],
    eps: f64,
) -> Vec<f64> {
    per_channel(x, shape, |c, v| {
        (v - mean[c]) / (var[c] + eps).sqrt() * scale[c] + bias[c]
    })
}

/// Per-channel batch mean and biased variance of an (N, C, ...) `x`.
pub fn batch_stats(x: &[f64], shape: &[usize]) -> (Vec<f64>, Vec<f64>) {
    let (c, s) = channel_dims(x, shape);
    let n = shape[0];
    let count = (n * s) as f64;
    let at = |b: usize, ch: usize, k: usize| x[(b * c + ch) * s + k];
    let mut means = Vec::with_capacity(c);
    let mut vars = Vec::with_capacity(c);
    for ch in 0..c {
        let mut sum = 0.0;
        for b in 0..n {
            for k in 0..s {
                sum += at(b, ch, k);
            }
        }
        let mean = sum / count;
        let mut sq = 0.0;
        for b in 0..n {
            for k in 0..s {
                sq += (at(b, ch, k) - mean).powi(2);
            }
        }
        means.push(mean);
        vars.push(sq / count);
    }
    (means, vars)
}

/// Training-mode batch normalization of an (N, C, ...) `x`: normalized with the batch mean and
/// biased variance per channel, then `· scale + bias`. Returns `(y, running_mean',
/// running_var')` with `new = (1 − momentum)·old + momentum·batch` and the unbiased batch
/// variance for the running variance (PyTorch convention). Panics on inconsistent shapes.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train(
    x: &[f64],
    shape: &[usize],
    scale: &[f64],
    bias: &[f64],
    running_mean: &[f64],
    running_var: &[f64],
    momentum: f64,
    eps: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mean, var) = batch_stats(x, shape);
    let count = (x.len() / shape[1].max(1)) as f64;
    let y = batch_norm_inference(x, shape, scale, bias, &mean, &var, eps);
    let new_mean = running_mean
        .iter()
        .zip(&mean)
        .map(|(r, m)| (1.0 - momentum) * r + momentum * m)
        .collect();
    let new_var = running_var
        .iter()
        .zip(&var)
        .map(|(r, v)| (1.0 - momentum) * r + momentum * v * count / (count - 1.0))
        .collect();
    (y, new_mean, new_var)
}
