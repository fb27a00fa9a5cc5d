//! Shared test support: one context per test binary, seeded random data, and the comparison
//! rule |got - want| <= atol + rtol * |want| with a report of the worst element.
#![allow(dead_code)]

use std::sync::OnceLock;

use kiln::Context;

/// The context every test in this binary uses. Fails loudly (never skips) without an adapter.
/// Output poisoning is on: buffers handed to kernels start as NaN.
pub fn ctx() -> &'static Context {
    static CTX: OnceLock<Context> = OnceLock::new();
    CTX.get_or_init(|| {
        let ctx = Context::new().unwrap_or_else(|e| {
            panic!("\n\n*** NO GPU ADAPTER: these tests need one and are NOT skipped. ***\n{e}\n\n")
        });
        let info = ctx.adapter_info();
        eprintln!(
            "kiln tests on adapter {:?} ({:?}, {:?})",
            info.name, info.backend, info.device_type
        );
        kiln::testing::set_poison_outputs(&ctx, true);
        ctx
    })
}

/// SplitMix64: a small seeded generator for test inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }

    /// `n` values uniform in [lo, hi), with a few outliers (x 100) mixed in.
    pub fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let v = self.uniform(lo, hi);
                if i % 97 == 13 {
                    v * 100.0
                } else {
                    v
                }
            })
            .collect()
    }

    /// `n` values uniform in [lo, hi), no outliers.
    pub fn plain(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
}

/// Asserts |got - want| <= atol + rtol * |want| everywhere; on failure names the worst index and
/// both values. NaN in `got` where `want` is finite always fails.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: got {} values, want {}",
        got.len(),
        want.len()
    );
    let mut worst: Option<(usize, f64)> = None;
    let mut bad = 0usize;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let g = f64::from(g);
        let same_special = (g.is_nan() && w.is_nan()) || (g.is_infinite() && g == w);
        if same_special {
            continue;
        }
        let err = (g - w).abs();
        let tol = atol + rtol * w.abs();
        if err.is_nan() || err > tol {
            bad += 1;
            let excess = if err.is_nan() {
                f64::INFINITY
            } else {
                err / tol
            };
            if worst.is_none_or(|(_, e)| excess > e) {
                worst = Some((i, excess));
            }
        }
    }
    if let Some((i, _)) = worst {
        panic!(
            "{what}: {bad} of {} elements out of tolerance (atol {atol}, rtol {rtol}); worst at index {i}: got {}, want {}",
            got.len(),
            got[i],
            want[i]
        );
    }
}

/// Widens f32 test data for f64 references.
pub fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

/// Vector-Jacobian products by central finite differences of an f64 reference:
/// for `L(inputs) = Σ upstream ⊙ reference(inputs)`, returns `∂L/∂inputs[i]` for every input
/// (step `h · max(1, |x|)`). Costs two reference evaluations per input element: keep it small.
pub fn fd_vjp(
    reference: impl Fn(&[Vec<f64>]) -> Vec<f64>,
    inputs: &[Vec<f64>],
    upstream: &[f64],
    h: f64,
) -> Vec<Vec<f64>> {
    let loss = |xs: &[Vec<f64>]| -> f64 {
        let y = reference(xs);
        assert_eq!(
            y.len(),
            upstream.len(),
            "reference output vs upstream length"
        );
        y.iter().zip(upstream).map(|(a, b)| a * b).sum()
    };
    let mut xs: Vec<Vec<f64>> = inputs.to_vec();
    let mut grads = Vec::with_capacity(inputs.len());
    for i in 0..inputs.len() {
        let mut g = vec![0.0; inputs[i].len()];
        for j in 0..inputs[i].len() {
            let x0 = xs[i][j];
            let step = h * x0.abs().max(1.0);
            xs[i][j] = x0 + step;
            let up = loss(&xs);
            xs[i][j] = x0 - step;
            let down = loss(&xs);
            xs[i][j] = x0;
            g[j] = (up - down) / (2.0 * step);
        }
        grads.push(g);
    }
    grads
}
