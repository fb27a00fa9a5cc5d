//! Softmax and log-softmax along every kind of axis against the f64 reference: both kernel
//! paths (invocation per row, workgroup per row), contiguous and strided rows, extreme inputs,
//! and gradients against finite differences.

use crate::common;

use common::{assert_close, ctx, f64s, fd_vjp, Rng, RngExt};
use kiln::autograd::grad;
use kiln::kernels::softmax::softmax_uses_small_path;
use kiln::reference::softmax as reference;
use kiln::Tensor;

fn resolve(axis: isize, rank: usize) -> usize {
    if axis < 0 {
        (axis + rank as isize) as usize
    } else {
        axis as usize
    }
}

fn check_forward(shape: &[usize], axis: isize, seed: u64) {
    let mut rng = Rng::new(seed);
    let n: usize = shape.iter().product();
    let x = rng.vec(n, -5.0, 5.0);
    let t = Tensor::from_slice(ctx(), &x, shape).unwrap();
    let a = resolve(axis, shape.len());
    let want = reference::softmax(&f64s(&x), shape, a);
    let got = t.softmax(axis).unwrap();
    assert_eq!(got.shape(), shape);
    assert_close(
        &format!("softmax {shape:?} axis {axis}"),
        &got.to_vec::<f32>().unwrap(),
        &want,
        1e-6,
        1e-5,
    );
    let want = reference::log_softmax(&f64s(&x), shape, a);
    let got = t.log_softmax(axis).unwrap();
    assert_close(
        &format!("log_softmax {shape:?} axis {axis}"),
        &got.to_vec::<f32>().unwrap(),
        &want,
        1e-5,
        1e-5,
    );
}

#[test]
fn softmax_matches_reference_along_the_last_axis() {
    // Rows shorter and longer than the workgroup, on both kernel paths.
    for (k, shape) in [
        vec![1usize],
        vec![3, 7],
        vec![5, 65],
        vec![4, 300],
        vec![2, 3, 1031],
        vec![4100, 5],
        vec![4099, 70],
    ]
    .iter()
    .enumerate()
    {
        check_forward(shape, -1, k as u64 + 1);
    }
}

#[test]
fn softmax_matches_reference_along_the_first_and_middle_axes() {
    for (k, (shape, axis)) in [
        (vec![7usize, 3], 0isize),
        (vec![3, 4, 5], 0),
        (vec![3, 4, 5], 1),
        (vec![2, 3, 4, 5], 2),
        (vec![2, 3, 4, 5], -3),
        (vec![700, 3], 0),
        (vec![2, 1000, 3], 1),
        (vec![3, 65, 2, 2], 1),
        (vec![9, 5, 1000], 1),
    ]
    .iter()
    .enumerate()
    {
        check_forward(shape, *axis, k as u64 + 20);
    }
}

#[test]
fn the_shapes_under_test_cover_both_kernel_paths() {
    assert!(softmax_uses_small_path(3, 7));
    assert!(softmax_uses_small_path(9 * 1000, 5));
    assert!(softmax_uses_small_path(4099, 70));
    assert!(!softmax_uses_small_path(5, 65));
    assert!(!softmax_uses_small_path(6, 1000));
}

#[test]
fn softmax_is_stable_for_huge_and_infinite_inputs() {
    let x = [
        1000.0f32,
        999.0,
        -1000.0,
        1000.0, // row 0: huge
        -1000.0,
        -1001.0,
        -999.5,
        -1000.0, // row 1: hugely negative
        3.0,
        f32::NEG_INFINITY,
        1.0,
        f32::NEG_INFINITY, // row 2: masked entries
        88.0,
        89.0,
        90.0,
        -90.0, // row 3: exp would overflow without the shift
    ];
    let x64 = f64s(&x);
    for (shape, axis) in [([4usize, 4usize], 1usize), ([4, 4], 0)] {
        let t = Tensor::from_slice(ctx(), &x, &shape).unwrap();
        let got = t.softmax(axis as isize).unwrap().to_vec::<f32>().unwrap();
        let want = reference::softmax(&x64, &shape, axis);
        assert_close(
            &format!("softmax extremes axis {axis}"),
            &got,
            &want,
            1e-7,
            1e-5,
        );
        let got = t
            .log_softmax(axis as isize)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let want = reference::log_softmax(&x64, &shape, axis);
        assert_close(
            &format!("log_softmax extremes axis {axis}"),
            &got,
            &want,
            1e-5,
            1e-6,
        );
    }
    // The same on the workgroup path: a long row with one huge entry.
    let mut x = vec![-1000.0f32; 300];
    x[123] = 1000.0;
    x[7] = 999.0;
    let t = Tensor::from_slice(ctx(), &x, &[300]).unwrap();
    let got = t.softmax(0).unwrap().to_vec::<f32>().unwrap();
    assert_close(
        "softmax long row",
        &got,
        &reference::softmax(&f64s(&x), &[300], 0),
        1e-7,
        1e-5,
    );
}

#[test]
fn softmax_refuses_an_axis_out_of_range() {
    let t = Tensor::from_slice(ctx(), &[1.0f32, 2.0], &[2]).unwrap();
    assert!(t.softmax(1).is_err());
    assert!(t.log_softmax(-2).is_err());
}

fn check_gradient(shape: &[usize], axis: isize, log: bool, seed: u64) {
    let mut rng = Rng::new(seed);
    let n: usize = shape.iter().product();
    let x = rng.uniform_vec(n, -3.0, 3.0);
    let dy = rng.uniform_vec(n, -1.0, 1.0);
    let t = Tensor::from_slice(ctx(), &x, shape).unwrap().with_grad();
    let y = if log {
        t.log_softmax(axis).unwrap()
    } else {
        t.softmax(axis).unwrap()
    };
    let u = Tensor::from_slice(ctx(), &dy, shape).unwrap();
    let got = grad(&[&y], &[&u], &[&t]).unwrap()[0]
        .clone()
        .expect("gradient reaches x")
        .to_vec::<f32>()
        .unwrap();
    let a = resolve(axis, shape.len());
    let want = &fd_vjp(
        |xs| {
            if log {
                reference::log_softmax(&xs[0], shape, a)
            } else {
                reference::softmax(&xs[0], shape, a)
            }
        },
        &[f64s(&x)],
        &f64s(&dy),
        1e-6,
    )[0];
    let name = if log { "log_softmax" } else { "softmax" };
    assert_close(
        &format!("d{name} {shape:?} axis {axis}"),
        &got,
        want,
        1e-5,
        1e-4,
    );
}

#[test]
fn softmax_gradients_match_finite_differences_on_every_kind_of_axis() {
    for log in [false, true] {
        check_gradient(&[3, 6], -1, log, 40);
        check_gradient(&[3, 4, 5], 1, log, 41);
        check_gradient(&[4, 3, 2], 0, log, 42);
        // Workgroup path: rows of 80, strided (inner 2).
        check_gradient(&[80, 2], 0, log, 43);
        check_gradient(&[2, 100], 1, log, 44);
    }
}
