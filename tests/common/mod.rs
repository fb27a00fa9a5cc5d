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

/// The library's seeded generator: test inputs come from the same SplitMix64 as shuffling,
/// augmentation and the procedural digits.
pub use kiln::data::Rng;

/// Test inputs with outliers, on top of [`Rng`] (`Rng::uniform_vec` gives them without).
pub trait RngExt {
    /// `n` values uniform in [lo, hi), with a few outliers (x 100) mixed in.
    fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32>;
}

impl RngExt for Rng {
    fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
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
