//! Reference for shaders/softmax.wgsl: softmax and log-softmax along one axis, in f64.

use crate::shape::numel;

/// Applies `f` to every line of `x` (contiguous, of `shape`) along dim `axis`: `f` gets the
/// line's values and returns the line's outputs.
fn along_axis(x: &[f64], shape: &[usize], axis: usize, f: impl Fn(&[f64]) -> Vec<f64>) -> Vec<f64> {
    assert_eq!(x.len(), numel(shape), "x does not fill {shape:?}");
    assert!(axis < shape.len(), "axis {axis} out of range for {shape:?}");
    let len = shape[axis];
    let inner = numel(&shape[axis + 1..]);
    let outer = numel(&shape[..axis]);
    let mut out = vec![0.0; x.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * len + k) * inner + i;
            let line: Vec<f64> = (0..len).map(|k| x[at(k)]).collect();
            for (k, v) in f(&line).into_iter().enumerate() {
                out[at(k)] = v;
            }
        }
    }
    out
}

/// log Σ exp(v), max-subtracted.
fn log_sum_exp(v: &[f64]) -> (f64, f64) {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = v.iter().map(|&e| (e - m).exp()).sum();
    (m, s.ln())
}

/// Softmax of `x` (of `shape`) along dim `axis` (non-negative). Panics on a bad shape or axis.
pub fn softmax(x: &[f64], shape: &[usize], axis: usize) -> Vec<f64> {
    along_axis(x, shape, axis, |v| {
        let (m, lse) = log_sum_exp(v);
        v.iter().map(|&e| (e - m - lse).exp()).collect()
    })
}

/// Log-softmax of `x` (of `shape`) along dim `axis` (non-negative). Panics on a bad shape or
/// axis.
pub fn log_softmax(x: &[f64], shape: &[usize], axis: usize) -> Vec<f64> {
    along_axis(x, shape, axis, |v| {
        let (m, lse) = log_sum_exp(v);
        v.iter().map(|&e| e - m - lse).collect()
    })
}
