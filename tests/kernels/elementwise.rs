//! Unary, binary (broadcasting), scalar and fill kernels against the f64 reference.

use crate::common;

use common::{assert_close, ctx, Rng, RngExt};
use kiln::reference::elementwise as reference;
use kiln::{BinaryOp, Tensor, UnaryOp};

/// Sizes around the 256-wide workgroup: 1, primes, one less and one more than a multiple.
const SIZES: [usize; 6] = [1, 7, 255, 257, 1000, 4099];

fn domain(op: UnaryOp) -> (f32, f32) {
    match op {
        UnaryOp::Log | UnaryOp::Sqrt => (0.01, 10.0),
        UnaryOp::Recip => (0.5, 4.0),
        UnaryOp::Exp => (-10.0, 10.0),
        _ => (-6.0, 6.0),
    }
}

#[test]
fn unary_ops_match_reference_on_odd_sizes() {
    let ctx = ctx();
    let mut rng = Rng::new(1);
    for op in UnaryOp::ALL {
        for n in SIZES {
            let (lo, hi) = domain(op);
            let x = rng.uniform_vec(n, lo, hi);
            let t = Tensor::from_slice(ctx, &x, &[n]).unwrap();
            let got = t.unary(op).unwrap().to_vec::<f32>().unwrap();
            let want = reference::unary(op, &x);
            assert_close(&format!("{op:?} n={n}"), &got, &want, 1e-5, 1e-5);
        }
    }
}

#[test]
fn unary_ops_are_stable_at_extremes() {
    let ctx = ctx();
    let x = [-1000.0f32, -90.0, -20.0, 0.0, 20.0, 90.0, 1000.0];
    let t = Tensor::from_slice(ctx, &x, &[x.len()]).unwrap();
    for op in [UnaryOp::Tanh, UnaryOp::Sigmoid, UnaryOp::Relu] {
        let got = t.unary(op).unwrap().to_vec::<f32>().unwrap();
        assert_close(
            &format!("{op:?} extremes"),
            &got,
            &reference::unary(op, &x),
            1e-6,
            1e-6,
        );
    }
}

fn binary_case(op: BinaryOp, a_shape: &[usize], b_shape: &[usize], seed: u64) {
    let ctx = ctx();
    let mut rng = Rng::new(seed);
    let an: usize = a_shape.iter().product();
    let bn: usize = b_shape.iter().product();
    let (a, b) = match op {
        BinaryOp::Pow => (
            rng.uniform_vec(an, 0.1, 3.0),
            rng.uniform_vec(bn, -2.0, 2.0),
        ),
        BinaryOp::Div => (rng.vec(an, -5.0, 5.0), rng.uniform_vec(bn, 0.5, 3.0)),
        _ => (rng.vec(an, -5.0, 5.0), rng.vec(bn, -5.0, 5.0)),
    };
    let ta = Tensor::from_slice(ctx, &a, a_shape).unwrap();
    let tb = Tensor::from_slice(ctx, &b, b_shape).unwrap();
    let out = ta.binary(op, &tb).unwrap();
    let want = reference::binary(op, &a, a_shape, &b, b_shape, out.shape());
    let got = out.to_vec::<f32>().unwrap();
    assert_close(
        &format!("{op:?} {a_shape:?} with {b_shape:?}"),
        &got,
        &want,
        1e-5,
        1e-5,
    );
}

#[test]
fn binary_ops_match_reference_with_same_shapes() {
    for (k, op) in BinaryOp::ALL.into_iter().enumerate() {
        for n in SIZES {
            binary_case(op, &[n], &[n], 10 + k as u64);
        }
        binary_case(op, &[3, 5, 7], &[3, 5, 7], 20 + k as u64);
    }
}

#[test]
fn binary_ops_broadcast_like_numpy() {
    let cases: [(&[usize], &[usize]); 7] = [
        (&[3, 1, 5], &[1, 4, 1]),
        (&[257], &[1]),
        (&[1], &[6, 7]),
        (&[2, 3, 4, 5], &[4, 1]),
        (&[7, 1], &[1, 9]),
        (&[2, 1, 3, 1, 2, 1, 2, 1], &[1, 2, 1, 3, 1, 2, 1, 3]),
        (&[], &[4, 3]),
    ];
    for op in BinaryOp::ALL {
        for (k, (a, b)) in cases.iter().enumerate() {
            binary_case(op, a, b, 100 + k as u64);
            binary_case(op, b, a, 200 + k as u64);
        }
    }
}

#[test]
fn incompatible_broadcast_names_op_and_shapes() {
    let ctx = ctx();
    let a = Tensor::zeros(ctx, &[2, 3]).unwrap();
    let b = Tensor::zeros(ctx, &[4]).unwrap();
    let err = a.add(&b).unwrap_err().to_string();
    assert!(
        err.contains("add") && err.contains("[2, 3]") && err.contains("[4]"),
        "{err}"
    );
}

#[test]
fn scalar_ops_match_reference_both_ways() {
    let ctx = ctx();
    let mut rng = Rng::new(7);
    for op in BinaryOp::ALL {
        for n in [1usize, 300, 1025] {
            let x = rng.uniform_vec(n, 0.2, 4.0);
            let t = Tensor::from_slice(ctx, &x, &[n]).unwrap();
            let s = 1.75f32;
            for first in [false, true] {
                let got = t.scalar_op(op, s, first).unwrap().to_vec::<f32>().unwrap();
                let want: Vec<f64> = x
                    .iter()
                    .map(|&v| {
                        let (a, b) = if first { (s, v) } else { (v, s) };
                        reference::binary_value(op, f64::from(a), f64::from(b))
                    })
                    .collect();
                assert_close(
                    &format!("{op:?} scalar first={first} n={n}"),
                    &got,
                    &want,
                    1e-5,
                    1e-5,
                );
            }
        }
    }
}

#[test]
fn pow_follows_numpy_for_negative_bases_and_zero() {
    let ctx = ctx();
    let a = [-2.0f32, -2.0, -2.0, 0.0, 0.0, 3.0];
    let b = [2.0f32, 3.0, -1.0, 2.0, 0.0, 0.5];
    let ta = Tensor::from_slice(ctx, &a, &[6]).unwrap();
    let tb = Tensor::from_slice(ctx, &b, &[6]).unwrap();
    let got = ta.pow(&tb).unwrap().to_vec::<f32>().unwrap();
    let want = reference::binary(BinaryOp::Pow, &a, &[6], &b, &[6], &[6]);
    assert_close("pow specials", &got, &want, 1e-6, 1e-5);
}

#[test]
fn full_zeros_and_ones_fill_every_element() {
    let ctx = ctx();
    for n in SIZES {
        let v = Tensor::full(ctx, &[n], -3.25)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        assert!(v.iter().all(|&x| x == -3.25), "full n={n}");
        let z = Tensor::zeros(ctx, &[n, 2])
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        assert!(z.iter().all(|&x| x == 0.0), "zeros n={n}");
        let o = Tensor::ones(ctx, &[2, n]).unwrap().to_vec::<f32>().unwrap();
        assert!(o.iter().all(|&x| x == 1.0), "ones n={n}");
    }
}

#[test]
fn a_large_dispatch_is_split_over_two_grid_dimensions() {
    // 65,535 workgroups of 256 cover 16,776,960 elements; go past that.
    let ctx = ctx();
    let n = 65_535 * 256 + 1000;
    let mut rng = Rng::new(3);
    let x = rng.uniform_vec(n, -1.0, 1.0);
    let t = Tensor::from_slice(ctx, &x, &[n]).unwrap();
    let got = t.mul_scalar(2.0).unwrap().to_vec::<f32>().unwrap();
    for i in [0, 1, 65_535 * 256 - 1, 65_535 * 256, n - 1] {
        assert_eq!(got[i], x[i] * 2.0, "index {i}");
    }
    assert!(got.iter().zip(&x).all(|(g, v)| *g == v * 2.0));
}
