//! Dropout: keep-rate statistics, scaling, per-seed determinism, the mask as a pure function of
//! (seed, index), inference identity, and the gradient (same mask) against the reference and
//! finite differences.

use crate::common;

use common::{assert_close, ctx, f64s, fd_vjp, Rng, RngExt};
use kiln::autograd::grad;
use kiln::reference::dropout as reference;
use kiln::{Error, Tensor};

fn tensor(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(ctx(), v, shape).unwrap()
}

#[test]
fn keep_rate_on_100k_elements_is_within_one_percent_of_one_minus_p() {
    let n = 100_000;
    let x = Tensor::ones(ctx(), &[n]).unwrap();
    for (k, p) in [0.1f32, 0.3, 0.5, 0.9].into_iter().enumerate() {
        let y = x
            .dropout(p, true, 1000 + k as u64)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let kept = y.iter().filter(|&&v| v != 0.0).count();
        let rate = kept as f64 / n as f64;
        let want = 1.0 - f64::from(p);
        assert!(
            (rate - want).abs() < 0.01,
            "p={p}: kept {rate}, want {want} ± 0.01"
        );
        // The mean is preserved in expectation.
        let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 0.03, "p={p}: mean {mean}");
    }
}

#[test]
fn kept_elements_are_scaled_and_dropped_ones_are_zero_matching_the_reference() {
    let mut rng = Rng::new(1);
    for n in [1usize, 3, 4, 5, 1023, 1025, 4099] {
        for p in [0.2f32, 0.5, 0.75] {
            let x = rng.vec(n, -3.0, 3.0);
            let y = tensor(&x, &[n]).dropout(p, true, 77).unwrap();
            let got = y.to_vec::<f32>().unwrap();
            let mask = reference::mask(n, p, 77);
            let scale = 1.0 / (1.0 - f64::from(p));
            for i in 0..n {
                if mask[i] {
                    let want = f64::from(x[i]) * scale;
                    assert!(
                        (f64::from(got[i]) - want).abs() <= 1e-6 * want.abs(),
                        "n={n} p={p} i={i}: got {}, want {want}",
                        got[i]
                    );
                } else {
                    assert_eq!(got[i], 0.0, "n={n} p={p} i={i}: dropped element");
                }
            }
            let want = reference::dropout(&f64s(&x), p, 77);
            assert_close(&format!("dropout n={n} p={p}"), &got, &want, 0.0, 1e-6);
        }
    }
}

#[test]
fn the_mask_is_rand_of_the_same_seed_at_least_p() {
    let n = 5000;
    let p = 0.4f32;
    let u = Tensor::rand(ctx(), &[n], 9)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let y = Tensor::ones(ctx(), &[n])
        .unwrap()
        .dropout(p, true, 9)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    for i in 0..n {
        assert_eq!(y[i] != 0.0, u[i] >= p, "element {i}: u = {}", u[i]);
    }
}

#[test]
fn the_same_seed_gives_the_same_mask_whatever_the_shape_and_other_seeds_differ() {
    let mut rng = Rng::new(2);
    let x = rng.vec(3 * 5 * 7, -1.0, 1.0);
    let flat = tensor(&x, &[105]);
    let cube = tensor(&x, &[3, 5, 7]);
    let a = flat
        .dropout(0.5, true, 42)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let b = flat
        .dropout(0.5, true, 42)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let c = cube
        .dropout(0.5, true, 42)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert_eq!(a, b, "same seed, same tensor");
    assert_eq!(a, c, "same seed, another shape");
    for other in [43u64, 42 + (1 << 32), 0] {
        let d = flat
            .dropout(0.5, true, other)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let differ = a.iter().zip(&d).filter(|(u, v)| u != v).count();
        assert!(differ > 20, "seed {other}: only {differ} of 105 differ");
    }
}

#[test]
fn inference_and_p_zero_return_the_input_itself() {
    let mut rng = Rng::new(3);
    let x = rng.vec(37, -2.0, 2.0);
    let t = tensor(&x, &[37]);
    for (p, training) in [(0.5f32, false), (0.0, true), (0.0, false), (0.3, false)] {
        let y = t.dropout(p, training, 5).unwrap();
        // A view of the uploaded tensor: realized already, no kernel recorded.
        assert!(y.is_realized(), "p={p} training={training}");
        assert_eq!(y.to_vec::<f32>().unwrap(), x);
    }
    // Gradients pass straight through.
    let leaf = t.with_grad();
    let y = leaf.dropout(0.5, false, 5).unwrap();
    let dy: Vec<f32> = rng.vec(37, -1.0, 1.0);
    let g = grad(&[&y], &[&tensor(&dy, &[37])], &[&leaf]).unwrap();
    assert_eq!(g[0].as_ref().unwrap().to_vec::<f32>().unwrap(), dy);
}

#[test]
fn probabilities_outside_zero_to_one_and_non_f32_input_are_rejected() {
    let t = Tensor::ones(ctx(), &[4]).unwrap();
    for p in [-0.1f32, 1.0, 1.5, f32::NAN, f32::INFINITY] {
        for training in [true, false] {
            let e = t.dropout(p, training, 0);
            assert!(
                matches!(e, Err(Error::InvalidArgument { op: "dropout", .. })),
                "p={p}: {e:?}"
            );
        }
    }
    let i = Tensor::from_slice(ctx(), &[1i32, 2], &[2]).unwrap();
    assert!(matches!(
        i.dropout(0.5, true, 0),
        Err(Error::UnsupportedDType { op: "dropout", .. })
    ));
}

#[test]
fn gradient_is_the_same_mask_times_scale_times_upstream() {
    let mut rng = Rng::new(4);
    for (n, shape) in [
        (1usize, vec![1usize]),
        (6, vec![2, 3]),
        (60, vec![3, 4, 5]),
        (1031, vec![1031]),
    ] {
        let p = 0.35f32;
        let x = rng.vec(n, -2.0, 2.0);
        let dy = rng.vec(n, -1.0, 1.0);
        let leaf = tensor(&x, &shape).with_grad();
        let y = leaf.dropout(p, true, 123).unwrap();
        let g = grad(&[&y], &[&tensor(&dy, &shape)], &[&leaf]).unwrap();
        let got = g[0].as_ref().unwrap().to_vec::<f32>().unwrap();
        // dx = mask · scale · dy, i.e. dropout of dy with the same seed.
        let want = reference::dropout(&f64s(&dy), p, 123);
        assert_close(&format!("dropout grad n={n}"), &got, &want, 0.0, 1e-6);
        // The gradient flows exactly where the forward kept its input.
        let fwd = y.to_vec::<f32>().unwrap();
        for i in 0..n {
            assert_eq!(got[i] != 0.0, fwd[i] != 0.0, "element {i}");
        }
        if n <= 64 {
            let fd = fd_vjp(
                |xs: &[Vec<f64>]| reference::dropout(&xs[0], p, 123),
                &[f64s(&x)],
                &f64s(&dy),
                1e-6,
            );
            assert_close(&format!("dropout fd n={n}"), &got, &fd[0], 1e-6, 1e-5);
        }
    }
}
