//! Leaky ReLU, GELU (exact and tanh form) and erf against the f64 reference, forward and
//! backward (central finite differences).

use crate::common;

use common::{assert_close, ctx, f64s, fd_vjp, Rng, RngExt};
use kiln::autograd::grad;
use kiln::reference::activation as reference;
use kiln::Tensor;

/// Sizes around the 256-wide workgroup: 1, primes, one less and one more than a multiple.
const SIZES: [usize; 5] = [1, 7, 255, 257, 4099];

fn upload(x: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(ctx(), x, shape).unwrap()
}

#[test]
fn leaky_relu_matches_reference_for_several_slopes() {
    let mut rng = Rng::new(1);
    for (k, alpha) in [0.01f32, 0.2, -0.5, 1.5].into_iter().enumerate() {
        let n = SIZES[k % SIZES.len()].max(37);
        let x = rng.vec(n, -4.0, 4.0);
        let got = upload(&x, &[n]).leaky_relu(alpha).unwrap();
        let want = reference::leaky_relu(&f64s(&x), f64::from(alpha));
        assert_close(
            &format!("leaky_relu alpha={alpha} n={n}"),
            &got.to_vec::<f32>().unwrap(),
            &want,
            0.0,
            1e-6,
        );
    }
}

#[test]
fn gelu_matches_reference_in_both_forms_on_odd_sizes() {
    let mut rng = Rng::new(2);
    for n in SIZES {
        for tanh in [false, true] {
            let x = rng.vec(n, -7.0, 7.0);
            let got = upload(&x, &[n]).gelu(tanh).unwrap();
            let want = reference::gelu(&f64s(&x), tanh);
            assert_close(
                &format!("gelu tanh={tanh} n={n}"),
                &got.to_vec::<f32>().unwrap(),
                &want,
                1e-6,
                1e-5,
            );
        }
    }
}

#[test]
fn gelu_exact_and_tanh_forms_are_distinct_ops() {
    // The tanh form differs from the exact one by up to ~5e-4 (near |x| = 2): each output must
    // match its own reference and visibly miss the other one.
    let x: Vec<f32> = (0..401).map(|i| -5.0 + 0.025 * i as f32).collect();
    let t = upload(&x, &[x.len()]);
    let exact = t.gelu(false).unwrap().to_vec::<f32>().unwrap();
    let approx = t.gelu(true).unwrap().to_vec::<f32>().unwrap();
    let want_exact = reference::gelu(&f64s(&x), false);
    let want_tanh = reference::gelu(&f64s(&x), true);
    assert_close("gelu exact", &exact, &want_exact, 3e-7, 1e-6);
    assert_close("gelu tanh", &approx, &want_tanh, 3e-7, 1e-6);
    let gap = exact
        .iter()
        .zip(&want_tanh)
        .map(|(&g, &w)| (f64::from(g) - w).abs())
        .fold(0.0, f64::max);
    assert!(
        gap > 1e-4,
        "exact gelu is within {gap} of the tanh form everywhere"
    );
}

#[test]
fn gelu_keeps_relative_accuracy_in_the_negative_tail() {
    let mut rng = Rng::new(3);
    let x = rng.uniform_vec(200, -12.0, -2.0);
    for tanh in [false, true] {
        let got = upload(&x, &[x.len()]).gelu(tanh).unwrap();
        let want: Vec<f64> = if tanh {
            // The tanh form as x·σ(2u), which f64 evaluates without cancellation.
            f64s(&x)
                .iter()
                .map(|&v| {
                    let u = (2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v * v * v);
                    v / (1.0 + (-2.0 * u).exp())
                })
                .collect()
        } else {
            reference::gelu(&f64s(&x), false)
        };
        assert_close(
            &format!("gelu tail tanh={tanh}"),
            &got.to_vec::<f32>().unwrap(),
            &want,
            1e-30,
            1e-4,
        );
    }
}

#[test]
fn activations_are_finite_at_extremes() {
    let x = [
        -1000.0f32, -90.0, -20.0, -1e-3, 0.0, 1e-3, 20.0, 90.0, 1000.0,
    ];
    let t = upload(&x, &[x.len()]);
    for tanh in [false, true] {
        let got = t.gelu(tanh).unwrap().to_vec::<f32>().unwrap();
        assert_close(
            &format!("gelu tanh={tanh} extremes"),
            &got,
            &reference::gelu(&f64s(&x), tanh),
            1e-7,
            1e-6,
        );
    }
    let got = t.erf().unwrap().to_vec::<f32>().unwrap();
    assert_close(
        "erf extremes",
        &got,
        &reference::erf_all(&f64s(&x)),
        2e-7,
        0.0,
    );
}

#[test]
fn reference_erf_matches_known_values() {
    // Values from a 30-digit evaluation.
    let cases = [
        (0.5, 0.520_499_877_813_046_5),
        (1.0, 0.842_700_792_949_714_9),
        (2.0, 0.995_322_265_018_952_7),
        (-2.4, -0.999_311_486_103_354_9),
        (3.0, 0.999_977_909_503_001_4),
    ];
    for (x, want) in cases {
        let got = reference::erf(x);
        assert!((got - want).abs() < 1e-15, "erf({x}) = {got}, want {want}");
    }
    let tails = [
        (3.0, 2.209_049_699_858_544e-5),
        (5.0, 1.537_459_794_428_035e-12),
    ];
    for (x, want) in tails {
        let got = reference::erfc(x);
        assert!(
            ((got - want) / want).abs() < 1e-13,
            "erfc({x}) = {got}, want {want}"
        );
    }
}

#[test]
fn erf_is_accurate_to_2e_7_over_minus_6_to_6() {
    let n = 24_001;
    let x: Vec<f32> = (0..n)
        .map(|i| -6.0 + 12.0 * i as f32 / (n - 1) as f32)
        .collect();
    let got = upload(&x, &[n]).erf().unwrap().to_vec::<f32>().unwrap();
    assert_close("erf", &got, &reference::erf_all(&f64s(&x)), 2e-7, 0.0);
}

fn check_gradient(
    what: &str,
    x: &[f32],
    f: impl Fn(&Tensor) -> Tensor,
    r: impl Fn(&[f64]) -> Vec<f64>,
) {
    let mut rng = Rng::new(x.len() as u64);
    let dy = rng.uniform_vec(x.len(), -1.0, 1.0);
    let t = Tensor::from_slice(ctx(), x, &[x.len()])
        .unwrap()
        .with_grad();
    let y = f(&t);
    let u = Tensor::from_slice(ctx(), &dy, &[x.len()]).unwrap();
    let got = grad(&[&y], &[&u], &[&t]).unwrap()[0]
        .clone()
        .expect("gradient reaches x")
        .to_vec::<f32>()
        .unwrap();
    let want = &fd_vjp(|xs| r(&xs[0]), &[f64s(x)], &f64s(&dy), 1e-6)[0];
    assert_close(what, &got, want, 1e-5, 1e-4);
}

#[test]
fn activation_gradients_match_finite_differences() {
    let mut rng = Rng::new(4);
    // Away from the kink of leaky ReLU at 0.
    let x: Vec<f32> = rng
        .uniform_vec(41, -4.0, 4.0)
        .into_iter()
        .map(|v| if v.abs() < 0.05 { v + 0.1 } else { v })
        .collect();
    for alpha in [0.01f32, 0.3] {
        check_gradient(
            &format!("d leaky_relu alpha={alpha}"),
            &x,
            |t| t.leaky_relu(alpha).unwrap(),
            |v| reference::leaky_relu(v, f64::from(alpha)),
        );
    }
    for tanh in [false, true] {
        check_gradient(
            &format!("d gelu tanh={tanh}"),
            &x,
            |t| t.gelu(tanh).unwrap(),
            |v| reference::gelu(v, tanh),
        );
    }
    check_gradient("d erf", &x, |t| t.erf().unwrap(), reference::erf_all);
}
