//! Reference for shaders/cross_entropy.wgsl: ONNX SoftmaxCrossEntropyLoss (mean reduction), in
//! f64.

use crate::shape::numel;

/// Softmax cross-entropy of `scores` (of `shape`, (N, C) or (N, C, d1, ...)) against `labels`
/// ((N) or (N, d1, ...)), with optional per-class `weights` (C), mean reduction:
/// `Σ w[l]·(−log_softmax(scores)[l]) / Σ w[l]` over positions. Labels outside [0, C) are
/// ignored (like ONNX `ignore_index`). Returns `(loss, log_prob)`, log_prob in the scores'
/// shape. Panics on inconsistent shapes.
pub fn softmax_cross_entropy(
    scores: &[f64],
    shape: &[usize],
    labels: &[i32],
    weights: Option<&[f64]>,
) -> (f64, Vec<f64>) {
    assert!(shape.len() >= 2, "scores need (N, C, ...), got {shape:?}");
    assert_eq!(scores.len(), numel(shape), "scores do not fill {shape:?}");
    let (n, classes) = (shape[0], shape[1]);
    let inner = numel(&shape[2..]);
    assert_eq!(labels.len(), n * inner, "labels do not fit {shape:?}");
    if let Some(w) = weights {
        assert_eq!(w.len(), classes, "weights are not (C)");
    }
    let log_prob = super::softmax::log_softmax(scores, &[n, classes, inner], 1);
    let (mut num, mut den) = (0.0, 0.0);
    for b in 0..n {
        for d in 0..inner {
            let l = labels[b * inner + d];
            if l < 0 || l as usize >= classes {
                continue;
            }
            let l = l as usize;
            let w = weights.map_or(1.0, |w| w[l]);
            num -= w * log_prob[(b * classes + l) * inner + d];
            den += w;
        }
    }
    (num / den, log_prob)
}
