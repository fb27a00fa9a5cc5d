//! References for shaders/activation.wgsl: leaky ReLU, GELU and erf, in f64.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// Where `erf` switches from its power series to the erfc continued fraction.
const SERIES_LIMIT: f64 = 2.5;

/// erf(x) to about 1e-15: the everywhere-positive series
/// `erf x = 2/√π · e^{-x²} · Σ_k 2^k x^{2k+1} / (1·3·…·(2k+1))` for |x| < 2.5, and
/// `1 - erfc(|x|)` (continued fraction) beyond.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    if a >= SERIES_LIMIT {
        return (1.0 - erfc_cf(a)).copysign(x);
    }
    let mut term = a;
    let mut sum = a;
    let mut k = 0.0;
    while term > sum * 1e-17 {
        k += 1.0;
        term *= 2.0 * a * a / (2.0 * k + 1.0);
        sum += term;
    }
    (2.0 / PI.sqrt() * (-a * a).exp() * sum).copysign(x)
}

/// erfc(x) = 1 - erf(x), accurate in relative terms in the upper tail.
pub fn erfc(x: f64) -> f64 {
    if x >= SERIES_LIMIT {
        erfc_cf(x)
    } else {
        1.0 - erf(x)
    }
}

/// erfc(x) for x >= 2.5 by the continued fraction
/// `e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …))))`, evaluated from the back.
fn erfc_cf(x: f64) -> f64 {
    let mut f = x;
    for n in (1..=200).rev() {
        f = x + f64::from(n) / 2.0 / f;
    }
    (-x * x).exp() / PI.sqrt() / f
}

/// Φ(x), the standard normal CDF, without cancellation for negative x.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x * FRAC_1_SQRT_2)
}

/// Leaky ReLU: `x` for `x >= 0`, `alpha · x` below.
pub fn leaky_relu(x: &[f64], alpha: f64) -> Vec<f64> {
    x.iter()
        .map(|&v| if v < 0.0 { alpha * v } else { v })
        .collect()
}

/// GELU: exact `x·Φ(x)`, or the tanh form `0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))`.
pub fn gelu(x: &[f64], approximate_tanh: bool) -> Vec<f64> {
    x.iter()
        .map(|&v| {
            if approximate_tanh {
                let u = (2.0 / PI).sqrt() * (v + 0.044715 * v * v * v);
                0.5 * v * (1.0 + u.tanh())
            } else {
                v * normal_cdf(v)
            }
        })
        .collect()
}

/// erf, elementwise.
pub fn erf_all(x: &[f64]) -> Vec<f64> {
    x.iter().map(|&v| erf(v)).collect()
}
