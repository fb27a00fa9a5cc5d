//! Fused optimizer updates against their f64 references (ONNX training-domain and PyTorch
//! semantics), step after step, plus argument errors and loss-decreases checks.

use crate::common;

use common::{assert_close, ctx, f64s, Rng, RngExt};
use kiln::autograd::grad;
use kiln::kernels::optim::{
    adagrad_onnx, adam, adam_onnx, momentum_onnx, sgd, sgd_momentum, AdamConfig, MomentumMode,
};
use kiln::reference::optim as reference;
use kiln::{Error, Tensor};

/// Shapes of parameter and state: 1, primes and non-multiples of the 256-wide workgroup.
const SHAPES: [&[usize]; 4] = [&[1], &[7], &[257], &[3, 5, 67]];

/// The conformance tolerance of the optimizer cases: rtol 1e-5, atol 1e-6 · max|want|.
fn close(what: &str, got: &Tensor, want: &[f64]) {
    let max = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert_close(what, &got.to_vec::<f32>().unwrap(), want, 1e-6 * max, 1e-5);
}

fn tensor(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(ctx(), v, shape).unwrap()
}

fn host(t: &Tensor) -> Vec<f64> {
    f64s(&t.to_vec::<f32>().unwrap())
}

/// A fresh gradient for step `k`: random, with outliers.
fn gradient(rng: &mut Rng, n: usize, shape: &[usize]) -> (Tensor, Vec<f64>) {
    let g = rng.vec(n, -1.0, 1.0);
    (tensor(&g, shape), f64s(&g))
}

#[test]
fn onnx_adam_matches_reference_over_steps_from_t0() {
    // (alpha, beta, epsilon, norm_coefficient, norm_coefficient_post)
    let settings = [
        (0.9f32, 0.999f32, 1e-6f32, 0.0f32, 0.0f32),
        (0.8, 0.99, 1e-8, 0.01, 0.0),
        (0.9, 0.999, 1e-6, 0.001, 0.01),
    ];
    let mut rng = Rng::new(1);
    for (a, b, eps, nc, ncp) in settings {
        for shape in SHAPES {
            let n: usize = shape.iter().product();
            let mut x = tensor(&rng.vec(n, -2.0, 2.0), shape);
            let mut v = tensor(&rng.uniform_vec(n, -0.1, 0.1), shape);
            let h0: Vec<f32> = rng.uniform_vec(n, 0.0, 0.1);
            let mut h = tensor(&h0, shape);
            for t in 0..4i64 {
                let r = 0.01f32 * (1.0 + t as f32);
                let (g, gh) = gradient(&mut rng, n, shape);
                let (hx, hv, hh) = (host(&x), host(&v), host(&h));
                let (x2, v2, h2) = adam_onnx(r, t, &x, &g, &v, &h, a, b, eps, nc, ncp).unwrap();
                let (wx, wv, wh) = reference::adam_onnx(
                    r.into(),
                    t,
                    &hx,
                    &gh,
                    &hv,
                    &hh,
                    a.into(),
                    b.into(),
                    eps.into(),
                    nc.into(),
                    ncp.into(),
                );
                let what = format!("adam_onnx {shape:?} t={t} a={a} nc={nc} ncp={ncp}");
                close(&format!("{what} X'"), &x2, &wx);
                close(&format!("{what} V'"), &v2, &wv);
                close(&format!("{what} H'"), &h2, &wh);
                assert_eq!(x2.shape(), shape);
                (x, v, h) = (x2, v2, h2);
            }
        }
    }
}

#[test]
fn onnx_adam_bias_correction_is_off_at_t0_and_in_the_rate_after() {
    // One element, G = 1, V = H = 0: V' = 1 - a, H' = 1 - b, so X' = X - r' (1-a) / (sqrt(1-b)
    // + eps). At T = 0, r' = R; at T = 1, r' = R sqrt(1-b) / (1-a), so the step is ~R.
    let x = tensor(&[0.0], &[1]);
    let g = tensor(&[1.0], &[1]);
    let z = tensor(&[0.0], &[1]);
    let (x0, _, _) = adam_onnx(0.1, 0, &x, &g, &z, &z, 0.9, 0.999, 0.0, 0.0, 0.0).unwrap();
    let want0 = -0.1 * 0.1 / 0.001f64.sqrt();
    close("t=0 step", &x0, &[want0]);
    let (x1, _, _) = adam_onnx(0.1, 1, &x, &g, &z, &z, 0.9, 0.999, 0.0, 0.0, 0.0).unwrap();
    close("t=1 step", &x1, &[-0.1]);
}

#[test]
fn onnx_momentum_matches_reference_in_both_modes_over_steps() {
    // (alpha, beta, norm_coefficient)
    let settings = [
        (0.9f32, 1.0f32, 0.0f32),
        (0.9, 0.9, 0.01),
        (0.8, 0.5, 0.001),
    ];
    let mut rng = Rng::new(2);
    for mode in [MomentumMode::Standard, MomentumMode::Nesterov] {
        for (a, b, nc) in settings {
            for shape in SHAPES {
                let n: usize = shape.iter().product();
                let mut x = tensor(&rng.vec(n, -2.0, 2.0), shape);
                let mut v = tensor(&rng.uniform_vec(n, -0.5, 0.5), shape);
                for t in 0..4i64 {
                    let r = 0.05f32;
                    let (g, gh) = gradient(&mut rng, n, shape);
                    let (hx, hv) = (host(&x), host(&v));
                    let (x2, v2) = momentum_onnx(r, t, &x, &g, &v, a, b, mode, nc).unwrap();
                    let (wx, wv) = reference::momentum_onnx(
                        r.into(),
                        t,
                        &hx,
                        &gh,
                        &hv,
                        a.into(),
                        b.into(),
                        mode == MomentumMode::Nesterov,
                        nc.into(),
                    );
                    let what = format!("momentum_onnx {mode:?} {shape:?} t={t} a={a} b={b}");
                    close(&format!("{what} X'"), &x2, &wx);
                    close(&format!("{what} V'"), &v2, &wv);
                    (x, v) = (x2, v2);
                }
            }
        }
    }
}

#[test]
fn onnx_adagrad_matches_reference_with_decay_over_steps() {
    // (decay_factor, epsilon, norm_coefficient)
    let settings = [(0.0f32, 1e-6f32, 0.0f32), (0.1, 1e-5, 0.01)];
    let mut rng = Rng::new(3);
    for (decay, eps, nc) in settings {
        for shape in SHAPES {
            let n: usize = shape.iter().product();
            let mut x = tensor(&rng.vec(n, -2.0, 2.0), shape);
            let mut h = tensor(&rng.uniform_vec(n, 0.0, 1.0), shape);
            for t in 0..4i64 {
                let r = 0.05f32;
                let (g, gh) = gradient(&mut rng, n, shape);
                let (hx, hh) = (host(&x), host(&h));
                let (x2, h2) = adagrad_onnx(r, t, &x, &g, &h, decay, eps, nc).unwrap();
                let (wx, wh) = reference::adagrad_onnx(
                    r.into(),
                    t,
                    &hx,
                    &gh,
                    &hh,
                    decay.into(),
                    eps.into(),
                    nc.into(),
                );
                let what = format!("adagrad_onnx {shape:?} t={t} decay={decay}");
                close(&format!("{what} X'"), &x2, &wx);
                close(&format!("{what} H'"), &h2, &wh);
                (x, h) = (x2, h2);
            }
        }
    }
}

#[test]
fn adam_matches_reference_with_coupled_and_decoupled_weight_decay() {
    let mut rng = Rng::new(4);
    for (decoupled, wd) in [(false, 0.0f32), (false, 0.05), (true, 0.05), (true, 0.0)] {
        let c = AdamConfig {
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: wd,
            decoupled,
            amsgrad: false,
        };
        for shape in SHAPES {
            let n: usize = shape.iter().product();
            let mut x = tensor(&rng.vec(n, -2.0, 2.0), shape);
            let mut m = Tensor::zeros(ctx(), shape).unwrap();
            let mut v = Tensor::zeros(ctx(), shape).unwrap();
            for step in 1..=4u64 {
                let (g, gh) = gradient(&mut rng, n, shape);
                let (hx, hm, hv) = (host(&x), host(&m), host(&v));
                let (x2, m2, v2) = adam(&x, &g, &m, &v, step, &c).unwrap();
                let (wx, wm, wv) = reference::adam(
                    &hx,
                    &gh,
                    &hm,
                    &hv,
                    step,
                    c.lr.into(),
                    c.beta1.into(),
                    c.beta2.into(),
                    c.eps.into(),
                    wd.into(),
                    decoupled,
                );
                let what = format!("adam decoupled={decoupled} wd={wd} {shape:?} step={step}");
                close(&format!("{what} x'"), &x2, &wx);
                close(&format!("{what} m'"), &m2, &wm);
                close(&format!("{what} v'"), &v2, &wv);
                (x, m, v) = (x2, m2, v2);
            }
        }
    }
}

#[test]
fn adam_first_step_moves_each_weight_by_lr_against_its_gradient() {
    // Bias correction at step 1 makes m̂ = g and v̂ = g², so the step is lr·g/(|g| + eps).
    let c = AdamConfig {
        lr: 0.1,
        eps: 0.0,
        ..AdamConfig::default()
    };
    let x = tensor(&[1.0, 1.0, 1.0], &[3]);
    let g = tensor(&[3.0, -0.25, 1e-3], &[3]);
    let z = Tensor::zeros(ctx(), &[3]).unwrap();
    let (x1, _, _) = adam(&x, &g, &z, &z, 1, &c).unwrap();
    close("adam step 1", &x1, &[0.9, 1.1, 0.9]);
}

#[test]
fn adamw_decays_weights_without_touching_the_moments() {
    let mut rng = Rng::new(5);
    let xs = rng.vec(300, -2.0, 2.0);
    let gs = rng.vec(300, -1.0, 1.0);
    let (x, g) = (tensor(&xs, &[300]), tensor(&gs, &[300]));
    let z = Tensor::zeros(ctx(), &[300]).unwrap();
    let base = AdamConfig {
        lr: 0.01,
        ..AdamConfig::default()
    };
    let w = AdamConfig {
        weight_decay: 0.1,
        decoupled: true,
        ..base.clone()
    };
    let l2 = AdamConfig {
        weight_decay: 0.1,
        ..base.clone()
    };
    let (_, m0, v0) = adam(&x, &g, &z, &z, 1, &base).unwrap();
    let (_, mw, vw) = adam(&x, &g, &z, &z, 1, &w).unwrap();
    let (_, ml, _) = adam(&x, &g, &z, &z, 1, &l2).unwrap();
    assert_eq!(m0.to_vec::<f32>().unwrap(), mw.to_vec::<f32>().unwrap());
    assert_eq!(v0.to_vec::<f32>().unwrap(), vw.to_vec::<f32>().unwrap());
    assert_ne!(m0.to_vec::<f32>().unwrap(), ml.to_vec::<f32>().unwrap());
}

#[test]
fn sgd_matches_reference_with_and_without_weight_decay() {
    let mut rng = Rng::new(6);
    for wd in [0.0f32, 0.01] {
        for shape in SHAPES {
            let n: usize = shape.iter().product();
            let mut x = tensor(&rng.vec(n, -2.0, 2.0), shape);
            for step in 0..3 {
                let (g, gh) = gradient(&mut rng, n, shape);
                let hx = host(&x);
                let x2 = sgd(&x, &g, 0.1, wd).unwrap();
                let want = reference::sgd(&hx, &gh, 0.1, wd.into());
                close(&format!("sgd wd={wd} {shape:?} step {step}"), &x2, &want);
                x = x2;
            }
        }
    }
}

#[test]
fn sgd_momentum_matches_reference_plain_and_nesterov_from_the_first_step() {
    let mut rng = Rng::new(7);
    for nesterov in [false, true] {
        for wd in [0.0f32, 0.01] {
            for shape in SHAPES {
                let n: usize = shape.iter().product();
                let mut x = tensor(&rng.vec(n, -2.0, 2.0), shape);
                // The first step must ignore the buffer: give it garbage.
                let mut buf = tensor(&rng.vec(n, -9.0, 9.0), shape);
                for step in 0..4 {
                    let first = step == 0;
                    let (g, gh) = gradient(&mut rng, n, shape);
                    let (hx, hb) = (host(&x), host(&buf));
                    let (x2, b2) =
                        sgd_momentum(&x, &g, &buf, 0.05, 0.9, wd, nesterov, first).unwrap();
                    let (wx, wb) = reference::sgd_momentum(
                        &hx,
                        &gh,
                        &hb,
                        0.05,
                        0.9f32.into(),
                        wd.into(),
                        nesterov,
                        first,
                    );
                    let what = format!("sgd_momentum nesterov={nesterov} wd={wd} {shape:?} {step}");
                    close(&format!("{what} x'"), &x2, &wx);
                    close(&format!("{what} buf'"), &b2, &wb);
                    (x, buf) = (x2, b2);
                }
            }
        }
    }
}

#[test]
fn onnx_momentum_with_beta_one_equals_pytorch_sgd_momentum() {
    let mut rng = Rng::new(8);
    let xs = rng.vec(100, -2.0, 2.0);
    let mut x_onnx = tensor(&xs, &[100]);
    let mut x_torch = x_onnx.clone();
    let mut v = Tensor::zeros(ctx(), &[100]).unwrap();
    let mut buf = v.clone();
    for t in 0..3i64 {
        let g = tensor(&rng.vec(100, -1.0, 1.0), &[100]);
        let mode = MomentumMode::Nesterov;
        (x_onnx, v) = momentum_onnx(0.1, t, &x_onnx, &g, &v, 0.9, 1.0, mode, 0.0).unwrap();
        (x_torch, buf) = sgd_momentum(&x_torch, &g, &buf, 0.1, 0.9, 0.0, true, t == 0).unwrap();
    }
    close("x", &x_onnx, &host(&x_torch));
    close("v", &v, &host(&buf));
}

#[test]
fn every_update_names_itself_in_shape_mismatch_errors() {
    let a = Tensor::zeros(ctx(), &[2, 3]).unwrap();
    let b = Tensor::zeros(ctx(), &[3, 2]).unwrap();
    let c = AdamConfig::default();
    let mode = MomentumMode::Standard;
    let errors = [
        (
            "adam_onnx",
            adam_onnx(0.1, 1, &a, &a, &b, &a, 0.9, 0.999, 1e-6, 0.0, 0.0).err(),
        ),
        (
            "adam_onnx",
            adam_onnx(0.1, 1, &a, &a, &a, &b, 0.9, 0.999, 1e-6, 0.0, 0.0).err(),
        ),
        (
            "momentum_onnx",
            momentum_onnx(0.1, 1, &a, &b, &a, 0.9, 0.9, mode, 0.0).err(),
        ),
        (
            "adagrad_onnx",
            adagrad_onnx(0.1, 1, &a, &a, &b, 0.0, 1e-6, 0.0).err(),
        ),
        ("adam", adam(&a, &b, &a, &a, 1, &c).err()),
        ("adam", adam(&a, &a, &a, &b, 1, &c).err()),
        ("sgd", sgd(&a, &b, 0.1, 0.0).err()),
        (
            "sgd_momentum",
            sgd_momentum(&a, &a, &b, 0.1, 0.9, 0.0, false, false).err(),
        ),
    ];
    for (name, e) in errors {
        match e {
            Some(Error::ShapeMismatch { op, lhs, rhs }) => {
                assert_eq!(op, name);
                assert_eq!(lhs.0, vec![2, 3]);
                assert_eq!(rhs.0, vec![3, 2]);
            }
            other => panic!("{name}: expected a shape mismatch, got {other:?}"),
        }
    }
}

#[test]
fn invalid_settings_are_rejected() {
    let a = Tensor::zeros(ctx(), &[4]).unwrap();
    let c = AdamConfig::default();
    let bad = [
        adam(&a, &a, &a, &a, 0, &c).err(),
        adam(
            &a,
            &a,
            &a,
            &a,
            1,
            &AdamConfig {
                amsgrad: true,
                ..c.clone()
            },
        )
        .err(),
        adam(
            &a,
            &a,
            &a,
            &a,
            1,
            &AdamConfig {
                beta1: 1.0,
                ..c.clone()
            },
        )
        .err(),
        adam(
            &a,
            &a,
            &a,
            &a,
            1,
            &AdamConfig {
                lr: -1.0,
                ..c.clone()
            },
        )
        .err(),
        adam(
            &a,
            &a,
            &a,
            &a,
            1,
            &AdamConfig {
                eps: f32::NAN,
                ..c.clone()
            },
        )
        .err(),
        sgd(&a, &a, -0.1, 0.0).err(),
        sgd_momentum(&a, &a, &a, 0.1, -0.9, 0.0, false, false).err(),
    ];
    for (k, e) in bad.into_iter().enumerate() {
        assert!(
            matches!(e, Some(Error::InvalidArgument { .. })),
            "case {k}: expected InvalidArgument, got {e:?}"
        );
    }
    let i = Tensor::from_slice(ctx(), &[1i32, 2, 3, 4], &[4]).unwrap();
    assert!(matches!(
        sgd(&a, &i, 0.1, 0.0),
        Err(Error::UnsupportedDType { op: "sgd", .. })
    ));
}

#[test]
fn updates_record_no_gradient() {
    let x = Tensor::zeros(ctx(), &[4]).unwrap().with_grad();
    let g = Tensor::ones(ctx(), &[4]).unwrap();
    let x2 = sgd(&x, &g, 0.1, 0.0).unwrap();
    assert!(!x2.requires_grad());
    let (x3, m, v) = adam(&x, &g, &g, &g, 1, &AdamConfig::default()).unwrap();
    assert!(!x3.requires_grad() && !m.requires_grad() && !v.requires_grad());
}

/// 0.5 Σ a_i (x_i - c_i)², an ill-conditioned quadratic, and its gradient through autograd.
struct Quadratic {
    a: Tensor,
    c: Tensor,
}

impl Quadratic {
    fn new(n: usize) -> Self {
        let a: Vec<f32> = (0..n).map(|i| 0.5 + 4.0 * i as f32 / n as f32).collect();
        let c: Vec<f32> = (0..n).map(|i| (i as f32 * 0.7).sin()).collect();
        Quadratic {
            a: tensor(&a, &[n]),
            c: tensor(&c, &[n]),
        }
    }

    fn loss_and_grad(&self, x: &Tensor) -> (f32, Tensor) {
        let x = x.with_grad();
        let d = x.sub(&self.c).unwrap();
        let loss = d.square().unwrap().mul(&self.a).unwrap().sum_all().unwrap();
        let loss = loss.mul_scalar(0.5).unwrap();
        let one = Tensor::ones(ctx(), loss.shape()).unwrap();
        let g = grad(&[&loss], &[&one], &[&x]).unwrap().remove(0).unwrap();
        (loss.to_vec::<f32>().unwrap()[0], g)
    }
}

/// The loss ends under 1% of where it started; with `steady`, it also rarely rises (Adam's
/// momentum makes it oscillate on the way down, so it is not held to that).
fn assert_converges(name: &str, losses: &[f32], steady: bool) {
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    assert!(
        last < 0.01 * first,
        "{name}: loss went from {first} to {last} ({losses:?})"
    );
    let rises = losses.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(
        !steady || rises <= losses.len() / 4,
        "{name}: loss rose {rises} times ({losses:?})"
    );
}

#[test]
fn sgd_momentum_and_adam_decrease_a_quadratic_loss() {
    let n = 50;
    let q = Quadratic::new(n);
    let x0 = Tensor::zeros(ctx(), &[n]).unwrap();

    let mut x = x0.clone();
    let mut losses = Vec::new();
    for _ in 0..40 {
        let (l, g) = q.loss_and_grad(&x);
        losses.push(l);
        x = sgd(&x, &g, 0.2, 0.0).unwrap();
    }
    assert_converges("sgd", &losses, true);

    let mut x = x0.clone();
    let mut buf = Tensor::zeros(ctx(), &[n]).unwrap();
    let mut losses = Vec::new();
    for step in 0..40 {
        let (l, g) = q.loss_and_grad(&x);
        losses.push(l);
        (x, buf) = sgd_momentum(&x, &g, &buf, 0.1, 0.5, 0.0, true, step == 0).unwrap();
    }
    assert_converges("sgd momentum", &losses, true);

    let c = AdamConfig {
        lr: 0.1,
        ..AdamConfig::default()
    };
    let mut x = x0;
    let mut m = Tensor::zeros(ctx(), &[n]).unwrap();
    let mut v = Tensor::zeros(ctx(), &[n]).unwrap();
    let mut losses = Vec::new();
    for step in 1..=80u64 {
        let (l, g) = q.loss_and_grad(&x);
        losses.push(l);
        (x, m, v) = adam(&x, &g, &m, &v, step, &c).unwrap();
        ctx().realize(&[&x, &m, &v]).unwrap();
    }
    assert_converges("adam", &losses, false);
}
