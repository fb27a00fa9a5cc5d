//! Reductions (sum, mean, max, min) over axes against the f64 reference.
// Tests unwrap freely: a failure should panic with the error.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{assert_close, ctx, Rng, RngExt};
use kiln::kernels::reduce::{uses_small_path, ReduceOp, SMALL_REDUCTION};
use kiln::reference::reduce as reference;
use kiln::Tensor;

/// Tolerance for `op` over `n_red` elements: sums may drift with the count, max/min are exact.
fn tolerance(op: ReduceOp, n_red: usize) -> (f64, f64) {
    match op {
        ReduceOp::Sum => (1e-5 * n_red.max(1) as f64, 1e-5),
        ReduceOp::Mean => (1e-5, 1e-5),
        ReduceOp::Max | ReduceOp::Min => (0.0, 0.0),
    }
}

/// Number of elements each output folds.
fn reduced_count(shape: &[usize], axes: &[isize]) -> usize {
    let rank = shape.len() as isize;
    axes.iter()
        .map(|&a| shape[a.rem_euclid(rank.max(1)) as usize])
        .product()
}

/// Runs `op` over `axes` of a seeded random tensor of `shape` and checks values and shape.
fn check(op: ReduceOp, shape: &[usize], axes: &[isize], keepdim: bool, seed: u64) {
    let mut rng = Rng::new(seed);
    let n: usize = shape.iter().product();
    let x = rng.vec(n, -5.0, 5.0);
    check_data(op, &x, shape, axes, keepdim);
}

fn check_data(op: ReduceOp, x: &[f32], shape: &[usize], axes: &[isize], keepdim: bool) {
    let t = Tensor::from_slice(ctx(), x, shape).unwrap();
    let out = t.reduce(op, axes, keepdim).unwrap();
    let (want, want_shape) = reference::reduce(op, x, shape, axes, keepdim).unwrap();
    let what = format!("{op:?} over {axes:?} of {shape:?} keepdim={keepdim}");
    assert_eq!(out.shape(), want_shape.as_slice(), "{what}: shape");
    let (atol, rtol) = tolerance(op, reduced_count(shape, axes));
    assert_close(&what, &out.to_vec::<f32>().unwrap(), &want, atol, rtol);
}

#[test]
fn every_op_matches_reference_over_each_single_axis_for_ranks_1_to_5() {
    let shapes: [&[usize]; 9] = [
        &[7],
        &[1],
        &[3, 5],
        &[1, 7],
        &[2, 3, 5],
        &[4, 1, 6],
        &[2, 3, 1, 5],
        &[3, 2, 5, 1, 7],
        &[1, 13, 1, 2, 1],
    ];
    let mut seed = 0;
    for op in ReduceOp::ALL {
        for shape in shapes {
            let rank = shape.len() as isize;
            for axis in 0..rank {
                // Alternate the positive and negative spelling of each axis.
                let a = if axis % 2 == 0 { axis } else { axis - rank };
                for keepdim in [false, true] {
                    seed += 1;
                    check(op, shape, &[a], keepdim, seed);
                }
            }
        }
    }
}

#[test]
fn every_op_matches_reference_over_several_non_adjacent_axes() {
    let cases: [(&[usize], &[isize]); 9] = [
        (&[3, 4, 5, 6], &[0, 2]),
        (&[3, 4, 5, 6], &[1, 3]),
        (&[3, 4, 5, 6], &[-1, -3]),
        (&[3, 4, 5, 6], &[3, 0, 1]),
        (&[2, 3, 2, 5, 3], &[0, 2, 4]),
        (&[2, 3, 2, 5, 3], &[-4, 3]),
        (&[2, 1, 3, 2, 1, 2, 3, 2], &[0, 3, 5, 7]),
        (&[2, 1, 3, 2, 1, 2, 3, 2], &[1, 2, 6]),
        (&[3, 2, 2, 1, 2, 2, 3, 2], &[-1, -2, -5, -8]),
    ];
    let mut seed = 1000;
    for op in ReduceOp::ALL {
        for (shape, axes) in cases {
            for keepdim in [false, true] {
                seed += 1;
                check(op, shape, axes, keepdim, seed);
            }
        }
    }
}

#[test]
fn every_op_matches_reference_over_all_axes_for_ranks_1_to_5_and_8() {
    let shapes: [&[usize]; 7] = [
        &[11],
        &[5, 3],
        &[2, 7, 3],
        &[3, 1, 4, 5],
        &[2, 3, 2, 1, 5],
        &[2, 1, 3, 2, 2, 1, 3, 2],
        &[1],
    ];
    let mut seed = 2000;
    for op in ReduceOp::ALL {
        for shape in shapes {
            let all: Vec<isize> = (0..shape.len() as isize).collect();
            for keepdim in [false, true] {
                seed += 1;
                check(op, shape, &all, keepdim, seed);
            }
        }
    }
}

#[test]
fn sum_all_and_mean_all_give_scalars() {
    let mut rng = Rng::new(3000);
    for shape in [&[1usize][..], &[6, 7], &[2, 3, 1, 5, 2, 3, 1, 2], &[]] {
        let n: usize = shape.iter().product();
        let x = rng.vec(n, -5.0, 5.0);
        let t = Tensor::from_slice(ctx(), &x, shape).unwrap();
        let all: Vec<isize> = (0..shape.len() as isize).collect();
        for (op, out) in [
            (ReduceOp::Sum, t.sum_all().unwrap()),
            (ReduceOp::Mean, t.mean_all().unwrap()),
        ] {
            assert_eq!(out.shape(), &[] as &[usize], "{op:?} all of {shape:?}");
            let (want, _) = reference::reduce(op, &x, shape, &all, false).unwrap();
            let (atol, rtol) = tolerance(op, n);
            assert_close(
                &format!("{op:?} all of {shape:?}"),
                &[out.item().unwrap()],
                &want,
                atol,
                rtol,
            );
        }
    }
}

#[test]
fn negative_axes_give_the_same_result_as_positive_ones() {
    let mut rng = Rng::new(3100);
    let shape = [3, 4, 5, 6];
    let x = rng.vec(360, -5.0, 5.0);
    let t = Tensor::from_slice(ctx(), &x, &shape).unwrap();
    for op in ReduceOp::ALL {
        for (neg, pos) in [
            (&[-1isize][..], &[3isize][..]),
            (&[-4, -2], &[0, 2]),
            (&[-3], &[1]),
        ] {
            let a = t.reduce(op, neg, false).unwrap();
            let b = t.reduce(op, pos, false).unwrap();
            assert_eq!(a.shape(), b.shape());
            assert_eq!(
                a.to_vec::<f32>().unwrap(),
                b.to_vec::<f32>().unwrap(),
                "{op:?} {neg:?}"
            );
        }
    }
}

#[test]
fn reduced_sizes_on_both_sides_of_the_small_path_threshold_and_past_256() {
    // (outputs, reduced size): the reduced dim is the last (contiguous) or the first (strided).
    let cases: [(usize, usize); 12] = [
        (3, 1),
        (5, 2),
        (7, SMALL_REDUCTION - 1),
        (7, SMALL_REDUCTION),
        (7, SMALL_REDUCTION + 1),
        (3, 255),
        (3, 256),
        (3, 257),
        (5, 1000),
        (2, 4099),
        (4099, 100),
        (4100, 67),
    ];
    let mut small = 0;
    let mut tree = 0;
    let mut seed = 4000;
    for (n_out, n_red) in cases {
        if uses_small_path(n_out, n_red) {
            small += 1;
        } else {
            tree += 1;
        }
        for op in ReduceOp::ALL {
            seed += 1;
            check(op, &[n_out, n_red], &[1], false, seed);
            if n_out * n_red <= 100_000 {
                check(op, &[n_red, n_out], &[0], true, seed);
            }
        }
    }
    assert!(
        small >= 4 && tree >= 4,
        "small path {small} cases, workgroup path {tree} cases"
    );
}

#[test]
fn reductions_over_middle_axes_use_strided_reads() {
    // [N, C, H, W]-style shapes: reduce C (strided) or H and W (merged, contiguous).
    let mut seed = 5000;
    for op in ReduceOp::ALL {
        for (shape, axes) in [
            (&[2usize, 300, 3, 5][..], &[1isize][..]),
            (&[3, 5, 17, 19][..], &[2, 3][..]),
            (&[2, 70, 3, 300][..], &[1, 3][..]),
        ] {
            seed += 1;
            check(op, shape, axes, true, seed);
        }
    }
}

#[test]
fn a_reduction_of_100000_elements_to_one_matches_reference() {
    let mut seed = 6000;
    for op in ReduceOp::ALL {
        seed += 1;
        check(op, &[100_000], &[0], false, seed);
        check(op, &[100, 1000], &[0, 1], false, seed);
        check(op, &[1000, 1, 100], &[-1, 0], true, seed);
    }
}

#[test]
fn max_and_min_propagate_nan_like_numpy() {
    let mut rng = Rng::new(7000);
    // Rows of 5 (small path) and 1000 (workgroup path); NaN in some rows only.
    for n_red in [5usize, 1000] {
        let rows = 4;
        let mut x = rng.vec(rows * n_red, -5.0, 5.0);
        x[n_red + n_red / 2] = f32::NAN; // row 1, middle
        x[3 * n_red + n_red - 1] = f32::NAN; // row 3, last
        x[3 * n_red] = f32::NAN; // row 3, first
        for op in [ReduceOp::Max, ReduceOp::Min, ReduceOp::Sum, ReduceOp::Mean] {
            let t = Tensor::from_slice(ctx(), &x, &[rows, n_red]).unwrap();
            let got = t.reduce(op, &[1], false).unwrap().to_vec::<f32>().unwrap();
            assert!(
                got[1].is_nan() && got[3].is_nan(),
                "{op:?} n={n_red}: {got:?}"
            );
            assert!(
                !got[0].is_nan() && !got[2].is_nan(),
                "{op:?} n={n_red}: {got:?}"
            );
            check_data(op, &x, &[rows, n_red], &[1], false);
        }
    }
}

#[test]
fn infinities_survive_max_min_and_sum() {
    let x = [1.0f32, f32::INFINITY, -3.0, f32::NEG_INFINITY, 2.0, 5.0];
    for op in ReduceOp::ALL {
        check_data(op, &x, &[3, 2], &[0], false);
        check_data(op, &x, &[2, 3], &[1], false);
    }
}

#[test]
fn sum_of_zero_elements_is_zero_and_mean_is_nan() {
    let ctx = ctx();
    let t = Tensor::from_slice::<f32>(ctx, &[], &[3, 0]).unwrap();
    let s = t.sum(&[1], false).unwrap();
    assert_eq!(s.shape(), &[3]);
    assert_eq!(s.to_vec::<f32>().unwrap(), vec![0.0; 3]);
    let m = t.mean(&[-1], true).unwrap();
    assert_eq!(m.shape(), &[3, 1]);
    assert!(m.to_vec::<f32>().unwrap().iter().all(|v| v.is_nan()));
    assert!(t.mean_all().unwrap().item::<f32>().unwrap().is_nan());
    assert_eq!(t.sum_all().unwrap().item::<f32>().unwrap(), 0.0);
    // No outputs: nothing to fill, not an error even for max.
    let e = t.max(&[0], false).unwrap();
    assert_eq!(e.shape(), &[0]);
    assert!(e.to_vec::<f32>().unwrap().is_empty());
}

#[test]
fn max_and_min_over_zero_elements_are_refused() {
    let t = Tensor::from_slice::<f32>(ctx(), &[], &[3, 0]).unwrap();
    for (op, name) in [(ReduceOp::Max, "max"), (ReduceOp::Min, "min")] {
        let err = t.reduce(op, &[1], false).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains("zero elements"), "{err}");
        assert!(t.reduce(op, &[0, 1], false).is_err());
    }
}

#[test]
fn empty_axes_copy_the_input() {
    let mut rng = Rng::new(8000);
    let x = rng.vec(60, -5.0, 5.0);
    let t = Tensor::from_slice(ctx(), &x, &[3, 4, 5]).unwrap();
    for op in ReduceOp::ALL {
        for keepdim in [false, true] {
            let out = t.reduce(op, &[], keepdim).unwrap();
            assert_eq!(out.shape(), &[3, 4, 5]);
            assert_eq!(out.to_vec::<f32>().unwrap(), x, "{op:?}");
        }
    }
}

#[test]
fn reductions_read_views_and_pending_results() {
    let mut rng = Rng::new(9000);
    let x = rng.vec(2 * 3 * 4 * 5, -5.0, 5.0);
    let t = Tensor::from_slice(ctx(), &x, &[2, 3, 4, 5]).unwrap();
    // A reshaped view of a realized tensor.
    let v = t.reshape(&[6, 20]).unwrap();
    let (want, _) = reference::reduce(ReduceOp::Sum, &x, &[6, 20], &[0], false).unwrap();
    assert_close(
        "sum of view",
        &v.sum(&[0], false).unwrap().to_vec::<f32>().unwrap(),
        &want,
        1e-4,
        1e-5,
    );
    // A pending op's result, reduced twice in one graph.
    let doubled: Vec<f32> = x.iter().map(|v| v * 2.0).collect();
    let d = t.mul_scalar(2.0).unwrap().reshape(&[4, 30]).unwrap();
    let out = d.max(&[1], true).unwrap().sum(&[0], false).unwrap();
    let (m, _) = reference::reduce(ReduceOp::Max, &doubled, &[4, 30], &[1], true).unwrap();
    let m32: Vec<f32> = m.iter().map(|&v| v as f32).collect();
    let (want, _) = reference::reduce(ReduceOp::Sum, &m32, &[4, 1], &[0], false).unwrap();
    assert_eq!(out.shape(), &[1]);
    assert_close(
        "sum of max of doubled",
        &out.to_vec::<f32>().unwrap(),
        &want,
        1e-4,
        1e-5,
    );
}

#[test]
fn invalid_axes_are_refused_naming_the_op() {
    let t = Tensor::from_slice(ctx(), &[1.0f32; 24], &[2, 3, 4]).unwrap();
    for (op, name) in [
        (ReduceOp::Sum, "sum"),
        (ReduceOp::Mean, "mean"),
        (ReduceOp::Max, "max"),
        (ReduceOp::Min, "min"),
    ] {
        for axes in [&[3isize][..], &[-4], &[0, 0], &[2, -1], &[0, 1, 2, 3]] {
            let err = t.reduce(op, axes, false).unwrap_err().to_string();
            assert!(err.contains(name), "{axes:?}: {err}");
        }
    }
    let err = t.sum(&[1, -2], false).unwrap_err().to_string();
    assert!(err.contains("repeated"), "{err}");
    let err = t.max(&[5], true).unwrap_err().to_string();
    assert!(err.contains("out of range"), "{err}");
    let scalar = Tensor::from_slice(ctx(), &[2.0f32], &[]).unwrap();
    assert!(scalar.sum(&[0], false).is_err());
    assert_eq!(scalar.sum_all().unwrap().item::<f32>().unwrap(), 2.0);
}

/// The shaders divide flat indices in f32 below 2^23 and in u32 above (`div_u32` in
/// shaders/lib/index.wgsl): a kept dim past 2^23 and a strided reduction over millions of
/// elements check both paths.
#[test]
fn reductions_index_exactly_past_the_f32_division_range() {
    let n = (1 << 23) + 5;
    check(ReduceOp::Max, &[3, n], &[0], false, 71);
    check(ReduceOp::Sum, &[37, 3, 40_009], &[0, 2], false, 72);
}

/// Bias-gradient-style reductions ([N, C, H, W] over N, H and W) keep C and reduce two merged
/// dims; when the innermost one is long, the workgroup path walks it row by row. Row lengths
/// below, at and past the 128-element switch, with partial last rows of lanes, for every op.
#[test]
fn reductions_over_outer_and_inner_axes_walk_rows_of_the_innermost_dim() {
    let mut seed = 6000;
    for op in ReduceOp::ALL {
        for (shape, axes) in [
            (&[9usize, 3, 11, 11][..], &[0isize, 2, 3][..]),
            (&[7, 2, 8, 16][..], &[0, 2, 3][..]),
            (&[5, 4, 13, 11][..], &[0, 2, 3][..]),
            (&[3, 2, 601][..], &[0, 2][..]),
            (&[4, 3, 5, 300][..], &[1, 3][..]),
        ] {
            let n_out = shape.iter().product::<usize>() / reduced_count(shape, axes);
            assert!(
                !uses_small_path(n_out, reduced_count(shape, axes)),
                "{shape:?} over {axes:?} should take the workgroup path"
            );
            seed += 1;
            check(op, shape, axes, false, seed);
        }
    }
}
