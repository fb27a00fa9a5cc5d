//! The comparison, selection and indexing primitives (compare, where, clamp, argmax/argmin,
//! concat, slice, gather, gather_elements, scatter_add, cumsum) against the f64 references in
//! `kiln::reference::indexing`: seeded random inputs, sizes that are not multiples of the
//! workgroup size, outputs poisoned before every run, gradients against finite differences,
//! and errors that name the op and the shapes.

use crate::common;

use common::{assert_close, ctx, f64s, fd_vjp, Rng, RngExt};
use kiln::autograd::grad;
use kiln::kernels::CompareOp;
use kiln::reference::indexing as reference;
use kiln::shape::broadcast_shape;
use kiln::{Error, Tensor};

fn upload(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(ctx(), v, shape).expect("upload")
}

fn upload_i32(v: &[i32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(ctx(), v, shape).expect("upload")
}

/// Values on a coarse grid, so comparisons and arg-reductions meet many ties.
fn coarse(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| (rng.uniform(-3.0, 3.0) * 2.0).round() / 2.0)
        .collect()
}

/// The gradients of `Σ up ⊙ y` with respect to `wrt`, read back.
fn vjp(y: &Tensor, up: &[f32], wrt: &[&Tensor]) -> Vec<Vec<f32>> {
    let up = upload(up, y.shape());
    grad(&[y], &[&up], wrt)
        .expect("grad")
        .into_iter()
        .map(|g| g.expect("a gradient").to_vec::<f32>().expect("readback"))
        .collect()
}

fn idx_i32(rng: &mut Rng, n: usize, lo: i32, hi: i32) -> Vec<i32> {
    (0..n)
        .map(|_| lo + (rng.next_u64() % (hi - lo) as u64) as i32)
        .collect()
}

#[test]
fn comparisons_match_reference_with_broadcasting_and_ties() {
    let mut rng = Rng::new(11);
    for (a_shape, b_shape) in [
        (vec![3usize, 5, 67], vec![3usize, 5, 67]),
        (vec![3, 1, 67], vec![5, 1]),
        (vec![259], vec![]),
    ] {
        let out = broadcast_shape("test", &a_shape, &b_shape).expect("broadcast");
        let a = coarse(&mut rng, a_shape.iter().product());
        let b = coarse(&mut rng, b_shape.iter().product());
        let (ta, tb) = (upload(&a, &a_shape), upload(&b, &b_shape));
        for op in CompareOp::ALL {
            let y = ta.compare(op, &tb).expect("compare");
            assert_eq!(y.shape(), &out[..]);
            let want = reference::compare(
                |u, v| op.holds(u, v),
                &f64s(&a),
                &a_shape,
                &f64s(&b),
                &b_shape,
                &out,
            );
            let got = y.to_vec::<f32>().expect("readback");
            assert_close(
                &format!("{op:?} {a_shape:?} {b_shape:?}"),
                &got,
                &want,
                0.0,
                0.0,
            );
            assert!(
                want.contains(&0.0) && want.contains(&1.0),
                "{op:?}: both outcomes occur"
            );
        }
    }
    let (x, y) = (upload(&[1.0, 2.0], &[2]), upload(&[2.0, 2.0], &[2]));
    let masks: Vec<Vec<f32>> = [x.eq(&y), x.ne(&y), x.lt(&y), x.le(&y), x.gt(&y), x.ge(&y)]
        .into_iter()
        .map(|m| m.expect("compare").to_vec::<f32>().expect("readback"))
        .collect();
    assert_eq!(
        masks,
        vec![
            vec![0.0, 1.0],
            vec![1.0, 0.0],
            vec![1.0, 0.0],
            vec![1.0, 1.0],
            vec![0.0, 0.0],
            vec![0.0, 1.0]
        ]
    );
}

#[test]
fn comparisons_and_where_treat_nan_as_ieee_754_does() {
    let x = upload(&[f32::NAN, 1.0, f32::NAN], &[3]);
    let y = upload(&[1.0, f32::NAN, f32::NAN], &[3]);
    for op in CompareOp::ALL {
        let got = x.compare(op, &y).expect("compare").to_vec::<f32>().unwrap();
        let want = if op == CompareOp::Ne { 1.0 } else { 0.0 };
        assert_eq!(got, vec![want; 3], "{op:?}");
    }
    let cond = upload(&[f32::NAN, 0.0, -0.0, 2.0], &[4]);
    let a = upload(&[1.0, 2.0, 3.0, 4.0], &[4]);
    let b = upload(&[-1.0, -2.0, -3.0, -4.0], &[4]);
    let got = cond
        .where_select(&a, &b)
        .expect("where")
        .to_vec::<f32>()
        .unwrap();
    assert_eq!(got, vec![1.0, -2.0, -3.0, 4.0]);
}

#[test]
fn comparisons_record_no_gradient() {
    let x = upload(&[1.0, 2.0, 3.0], &[3]).with_grad();
    let m = x.gt(&upload(&[2.0], &[1])).expect("gt");
    assert!(!m.requires_grad());
}

#[test]
fn where_selects_with_broadcasting_and_routes_gradients_to_both_branches() {
    let mut rng = Rng::new(12);
    let (c_shape, a_shape, b_shape) = (vec![4usize, 5, 37], vec![5usize, 1], vec![37usize]);
    let out = vec![4usize, 5, 37];
    let cond: Vec<f32> = rng
        .uniform_vec(4 * 5 * 37, -1.0, 1.0)
        .iter()
        .map(|&v| if v > 0.0 { 1.0 } else { 0.0 })
        .collect();
    let a = rng.vec(5, -2.0, 2.0);
    let b = rng.vec(37, -2.0, 2.0);
    let tc = upload(&cond, &c_shape);
    let ta = upload(&a, &a_shape).with_grad();
    let tb = upload(&b, &b_shape).with_grad();
    let y = tc.where_select(&ta, &tb).expect("where");
    assert_eq!(y.shape(), &out[..]);
    let f = |xs: &[Vec<f64>]| {
        reference::where_select(
            (&f64s(&cond), &c_shape),
            (&xs[0], &a_shape),
            (&xs[1], &b_shape),
            &out,
        )
    };
    let want = f(&[f64s(&a), f64s(&b)]);
    assert_close(
        "where",
        &y.to_vec::<f32>().expect("readback"),
        &want,
        0.0,
        0.0,
    );
    let up = rng.uniform_vec(y.numel(), -1.0, 1.0);
    let got = vjp(&y, &up, &[&ta, &tb]);
    let fd = fd_vjp(f, &[f64s(&a), f64s(&b)], &f64s(&up), 1e-6);
    assert_close("where da", &got[0], &fd[0], 1e-4, 1e-4);
    assert_close("where db", &got[1], &fd[1], 1e-4, 1e-4);
}

#[test]
fn clamp_matches_reference_and_passes_gradient_inside_the_bounds() {
    let mut rng = Rng::new(13);
    let x = rng.vec(1000, -3.0, 3.0);
    let t = upload(&x, &[8, 125]).with_grad();
    for (lo, hi) in [
        (-1.0f32, 0.5f32),
        (f32::NEG_INFINITY, 0.0),
        (0.25, f32::INFINITY),
    ] {
        let y = t.clamp(lo, hi).expect("clamp");
        let f = |xs: &[Vec<f64>]| reference::clamp(&xs[0], f64::from(lo), f64::from(hi));
        let want = f(&[f64s(&x)]);
        assert_close(
            "clamp",
            &y.to_vec::<f32>().expect("readback"),
            &want,
            0.0,
            0.0,
        );
        let up = rng.uniform_vec(1000, -1.0, 1.0);
        let got = vjp(&y, &up, &[&t]);
        let fd = fd_vjp(f, &[f64s(&x)], &f64s(&up), 1e-6);
        assert_close("clamp dx", &got[0], &fd[0], 1e-4, 1e-4);
    }
    let nan = upload(&[f32::NAN, 5.0], &[2])
        .clamp(0.0, 1.0)
        .expect("clamp");
    let v = nan.to_vec::<f32>().expect("readback");
    assert!(v[0].is_nan() && v[1] == 1.0, "{v:?}");
}

#[test]
fn argmax_and_argmin_pick_the_first_of_ties_along_any_axis() {
    let mut rng = Rng::new(14);
    let shape = [3usize, 259, 5];
    let x = coarse(&mut rng, shape.iter().product());
    let t = upload(&x, &shape);
    for axis in [0isize, 1, 2, -1] {
        let d = axis.rem_euclid(3) as usize;
        for max in [true, false] {
            for keepdim in [false, true] {
                let y = if max {
                    t.argmax(axis, keepdim)
                } else {
                    t.argmin(axis, keepdim)
                }
                .expect("arg reduce");
                let mut want_shape = shape.to_vec();
                if keepdim {
                    want_shape[d] = 1;
                } else {
                    want_shape.remove(d);
                }
                assert_eq!(y.shape(), &want_shape[..]);
                assert_eq!(y.dtype(), kiln::DType::I32);
                let want = reference::arg_reduce(&f64s(&x), &shape, d, max);
                assert_eq!(
                    y.to_vec::<i32>().expect("readback"),
                    want,
                    "axis {axis} max {max}"
                );
            }
        }
    }
    let nan = upload(&[1.0, f32::NAN, 3.0, f32::NAN], &[4]);
    assert_eq!(
        nan.argmax(0, false).unwrap().to_vec::<i32>().unwrap(),
        vec![1]
    );
    assert_eq!(
        nan.argmin(0, false).unwrap().to_vec::<i32>().unwrap(),
        vec![1]
    );
}

#[test]
fn concat_joins_along_an_axis_and_splits_the_gradient() {
    let mut rng = Rng::new(15);
    let shapes = [
        vec![3usize, 2, 37],
        vec![3, 5, 37],
        vec![3, 1, 37],
        vec![3, 4, 37],
    ];
    let data: Vec<Vec<f32>> = shapes
        .iter()
        .map(|s| rng.vec(s.iter().product(), -2.0, 2.0))
        .collect();
    let ts: Vec<Tensor> = data
        .iter()
        .zip(&shapes)
        .map(|(d, s)| upload(d, s).with_grad())
        .collect();
    let refs: Vec<&Tensor> = ts.iter().collect();
    let y = Tensor::concat(&refs, 1).expect("concat");
    let f = |xs: &[Vec<f64>]| {
        let parts: Vec<(&[f64], &[usize])> = xs
            .iter()
            .zip(&shapes)
            .map(|(x, s)| (&x[..], &s[..]))
            .collect();
        reference::concat(&parts, 1).0
    };
    let inputs: Vec<Vec<f64>> = data.iter().map(|d| f64s(d)).collect();
    assert_eq!(y.shape(), &[3, 12, 37]);
    assert_close(
        "concat",
        &y.to_vec::<f32>().expect("readback"),
        &f(&inputs),
        0.0,
        0.0,
    );
    let up = rng.uniform_vec(y.numel(), -1.0, 1.0);
    let got = vjp(&y, &up, &refs);
    let fd = fd_vjp(f, &inputs, &f64s(&up), 1e-6);
    for k in 0..4 {
        assert_close(&format!("concat d{k}"), &got[k], &fd[k], 1e-4, 1e-4);
    }
    let last = Tensor::concat(&[&ts[0], &ts[0]], -1).expect("concat");
    assert_eq!(last.shape(), &[3, 2, 74]);
}

/// axes, starts, ends, steps.
type SliceCase = (
    &'static [isize],
    &'static [i64],
    &'static [i64],
    &'static [i64],
);

#[test]
fn slice_follows_onnx_rules_for_negative_and_clamped_bounds_and_steps() {
    let mut rng = Rng::new(16);
    let shape = [7usize, 9, 11];
    let x = rng.vec(shape.iter().product(), -2.0, 2.0);
    let t = upload(&x, &shape).with_grad();
    let cases: [SliceCase; 5] = [
        (&[1], &[2], &[8], &[1]),
        (&[0, 2], &[-6, 1], &[100, -1], &[2, 3]),
        (&[-1, 1], &[9, -1], &[1, -100], &[-2, -3]),
        (&[0, 1, 2], &[-100, 0, 10], &[i64::MAX, 9, 0], &[4, 5, -1]),
        (&[2], &[5], &[5], &[1]),
    ];
    for (axes, starts, ends, steps) in cases {
        let y = t.slice(axes, starts, ends, steps).expect("slice");
        let ax: Vec<usize> = axes.iter().map(|&a| a.rem_euclid(3) as usize).collect();
        let (want, want_shape) = reference::slice(&f64s(&x), &shape, &ax, starts, ends, steps);
        assert_eq!(
            y.shape(),
            &want_shape[..],
            "{axes:?} {starts:?} {ends:?} {steps:?}"
        );
        assert_close(
            "slice",
            &y.to_vec::<f32>().expect("readback"),
            &want,
            0.0,
            0.0,
        );
        if y.numel() == 0 {
            continue;
        }
        let up = rng.uniform_vec(y.numel(), -1.0, 1.0);
        let got = vjp(&y, &up, &[&t]);
        let f = |xs: &[Vec<f64>]| reference::slice(&xs[0], &shape, &ax, starts, ends, steps).0;
        let fd = fd_vjp(f, &[f64s(&x)], &f64s(&up), 1e-6);
        assert_close("slice dx", &got[0], &fd[0], 1e-4, 1e-4);
    }
    let n = t.narrow(-1, 3, 4).expect("narrow");
    assert_eq!(n.shape(), &[7, 9, 4]);
}

#[test]
fn gather_picks_along_an_axis_with_negative_and_repeated_indices() {
    let mut rng = Rng::new(17);
    let shape = [4usize, 7, 5];
    let x = rng.vec(shape.iter().product(), -2.0, 2.0);
    let t = upload(&x, &shape).with_grad();
    for axis in [0usize, 1, 2] {
        let n = shape[axis] as i32;
        let idx = idx_i32(&mut rng, 6, -n, n);
        let ti = upload_i32(&idx, &[2, 3]);
        let y = t.gather(&ti, axis as isize).expect("gather");
        let mut want_shape = shape[..axis].to_vec();
        want_shape.extend([2, 3]);
        want_shape.extend(&shape[axis + 1..]);
        assert_eq!(y.shape(), &want_shape[..]);
        let f = |xs: &[Vec<f64>]| reference::gather(&xs[0], &shape, &idx, axis);
        let want = f(&[f64s(&x)]);
        assert_close(
            "gather",
            &y.to_vec::<f32>().expect("readback"),
            &want,
            0.0,
            0.0,
        );
        let up = rng.uniform_vec(y.numel(), -1.0, 1.0);
        let got = vjp(&y, &up, &[&t]);
        let fd = fd_vjp(f, &[f64s(&x)], &f64s(&up), 1e-6);
        assert_close("gather dx", &got[0], &fd[0], 1e-4, 1e-4);
    }
}

#[test]
fn gather_elements_and_scatter_add_match_reference_with_gradients() {
    let mut rng = Rng::new(18);
    let shape = [5usize, 6, 3];
    let x = rng.vec(shape.iter().product(), -2.0, 2.0);
    let t = upload(&x, &shape).with_grad();
    for (axis, idx_shape) in [(1usize, [5usize, 9, 3]), (0, [3, 6, 2]), (2, [4, 5, 7])] {
        let n = shape[axis] as i32;
        let m: usize = idx_shape.iter().product();
        let idx = idx_i32(&mut rng, m, -n, n);
        let ti = upload_i32(&idx, &idx_shape);

        let y = t
            .gather_elements(&ti, axis as isize)
            .expect("gather_elements");
        assert_eq!(y.shape(), &idx_shape[..]);
        let f =
            |xs: &[Vec<f64>]| reference::gather_elements(&xs[0], &shape, &idx, &idx_shape, axis);
        let want = f(&[f64s(&x)]);
        assert_close(
            "gather_elements",
            &y.to_vec::<f32>().unwrap(),
            &want,
            0.0,
            0.0,
        );
        let up = rng.uniform_vec(y.numel(), -1.0, 1.0);
        let got = vjp(&y, &up, &[&t]);
        let fd = fd_vjp(f, &[f64s(&x)], &f64s(&up), 1e-6);
        assert_close("gather_elements dx", &got[0], &fd[0], 1e-4, 1e-4);

        let u = rng.vec(m, -2.0, 2.0);
        let tu = upload(&u, &idx_shape).with_grad();
        let s = t.scatter_add(axis as isize, &ti, &tu).expect("scatter_add");
        assert_eq!(s.shape(), &shape[..]);
        let g = |xs: &[Vec<f64>]| {
            reference::scatter_add(&xs[0], &shape, &idx, &xs[1], &idx_shape, axis)
        };
        let want = g(&[f64s(&x), f64s(&u)]);
        assert_close(
            "scatter_add",
            &s.to_vec::<f32>().unwrap(),
            &want,
            1e-5,
            1e-6,
        );
        let up = rng.uniform_vec(s.numel(), -1.0, 1.0);
        let got = vjp(&s, &up, &[&t, &tu]);
        let fd = fd_vjp(g, &[f64s(&x), f64s(&u)], &f64s(&up), 1e-6);
        assert_close("scatter_add dx", &got[0], &fd[0], 1e-4, 1e-4);
        assert_close("scatter_add dupdates", &got[1], &fd[1], 1e-4, 1e-4);
    }
}

#[test]
fn cumsum_matches_reference_for_every_flag_and_axis() {
    let mut rng = Rng::new(19);
    let shape = [3usize, 300, 2];
    let x = rng.uniform_vec(shape.iter().product(), -1.0, 1.0);
    let t = upload(&x, &shape).with_grad();
    for axis in [1isize, 0, -1] {
        let d = axis.rem_euclid(3) as usize;
        for (exclusive, reverse) in [(false, false), (true, false), (false, true), (true, true)] {
            let y = t.cumsum(axis, exclusive, reverse).expect("cumsum");
            let want = reference::cumsum(&f64s(&x), &shape, d, exclusive, reverse);
            assert_close("cumsum", &y.to_vec::<f32>().unwrap(), &want, 1e-5, 1e-5);
        }
    }
    let small = [4usize, 7];
    let xs = rng.uniform_vec(28, -1.0, 1.0);
    let ts = upload(&xs, &small).with_grad();
    for (exclusive, reverse) in [(false, false), (true, false), (false, true), (true, true)] {
        let y = ts.cumsum(1, exclusive, reverse).expect("cumsum");
        let up = rng.uniform_vec(28, -1.0, 1.0);
        let got = vjp(&y, &up, &[&ts]);
        let f = |v: &[Vec<f64>]| reference::cumsum(&v[0], &small, 1, exclusive, reverse);
        let fd = fd_vjp(f, &[f64s(&xs)], &f64s(&up), 1e-6);
        assert_close("cumsum dx", &got[0], &fd[0], 1e-4, 1e-4);
    }
}

fn message(r: kiln::Result<Tensor>) -> String {
    match r {
        Ok(t) => panic!("expected an error, got a tensor of shape {:?}", t.shape()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_arguments_are_errors_naming_the_op_and_shapes() {
    let a = upload(&[0.0; 6], &[2, 3]);
    let b = upload(&[0.0; 8], &[2, 4]);
    let i = upload_i32(&[0, 1], &[2]);
    let m = message(a.lt(&b));
    assert!(
        m.contains("lt") && m.contains("[2, 3]") && m.contains("[2, 4]"),
        "{m}"
    );
    let m = message(a.where_select(&a, &b));
    assert!(m.contains("where") && m.contains("[2, 4]"), "{m}");
    let m = message(Tensor::concat(&[&a, &b], 0));
    assert!(
        m.contains("concat") && m.contains("[2, 3]") && m.contains("[2, 4]"),
        "{m}"
    );
    let m = message(a.gather(&a, 0));
    assert!(m.contains("gather") && m.contains("i32"), "{m}");
    let m = message(a.gather_elements(&i, 1));
    assert!(
        m.contains("gather_elements") && m.contains("[2, 3]") && m.contains("[2]"),
        "{m}"
    );
    let m = message(a.scatter_add(0, &i, &b));
    assert!(
        m.contains("scatter_add") && m.contains("[2]") && m.contains("[2, 4]"),
        "{m}"
    );
    assert!(message(a.slice(&[0], &[0], &[1], &[0])).contains("slice"));
    assert!(message(a.slice(&[0, 0], &[0, 0], &[1, 1], &[1, 1])).contains("repeated"));
    assert!(message(a.narrow(1, 2, 2)).contains("narrow"));
    assert!(message(a.clamp(1.0, 0.0)).contains("clamp"));
    assert!(message(a.argmax(2, false)).contains("argmax"));
    let empty = upload(&[], &[2, 0]);
    assert!(message(empty.argmin(1, false)).contains("argmin"));
    assert!(message(a.cumsum(-3, false, false)).contains("cumsum"));
    assert!(matches!(a.eq(&i), Err(Error::UnsupportedDType { .. })));
}
