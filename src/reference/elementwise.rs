//! References for shaders/unary.wgsl, shaders/binary.wgsl and shaders/fill.wgsl.

use crate::ir::{BinaryOp, UnaryOp};
use crate::shape::{broadcast_strides, numel};

/// `op` applied to one value.
pub fn unary_value(op: UnaryOp, x: f64) -> f64 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Relu => x.max(0.0),
        UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Square => x * x,
        UnaryOp::Recip => 1.0 / x,
        UnaryOp::Sin => x.sin(),
        UnaryOp::Cos => x.cos(),
    }
}

/// `a op b` for one pair of values.
pub fn binary_value(op: BinaryOp, a: f64, b: f64) -> f64 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Max => a.max(b),
        BinaryOp::Min => a.min(b),
        BinaryOp::Pow => a.powf(b),
    }
}

/// Elementwise `op` over `x`.
pub fn unary(op: UnaryOp, x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| unary_value(op, f64::from(v))).collect()
}

/// `a op b` with NumPy broadcasting to `out` (the broadcast of `a_shape` and `b_shape`).
pub fn binary(
    op: BinaryOp,
    a: &[f32],
    a_shape: &[usize],
    b: &[f32],
    b_shape: &[usize],
    out: &[usize],
) -> Vec<f64> {
    let sa = broadcast_strides(a_shape, out);
    let sb = broadcast_strides(b_shape, out);
    (0..numel(out))
        .map(|i| {
            let (mut rem, mut ia, mut ib) = (i, 0, 0);
            for d in (0..out.len()).rev() {
                let c = rem % out[d];
                rem /= out[d];
                ia += c * sa[d];
                ib += c * sb[d];
            }
            binary_value(op, f64::from(a[ia]), f64::from(b[ib]))
        })
        .collect()
}
