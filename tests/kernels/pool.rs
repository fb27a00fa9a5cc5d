//! 2-D pooling (shaders/pool.wgsl): max pooling bit-exact against the reference (values and
//! arg-max indices), average and global average pooling within the pool tolerance class, every
//! gradient against central finite differences of the f64 reference, the tie rule, padding-only
//! windows, and argument errors.

use crate::common;

use common::{assert_close, ctx, f64s, fd_vjp, Rng, RngExt};
use kiln::autograd::grad;
use kiln::kernels::pool::Pool2dParams;
use kiln::reference::pool as reference;
use kiln::{Error, Tensor};

/// Pool-class tolerance (ONNX conformance: rtol 1e-5, atol 1e-5 * max|want|).
fn pool_tol(want: &[f64]) -> (f64, f64) {
    let max = want
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    (1e-5 * max.max(1e-3), 1e-5)
}

fn params(
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 4],
    dilation: [usize; 2],
    ceil_mode: bool,
) -> Pool2dParams {
    Pool2dParams {
        kernel,
        stride,
        padding,
        dilation,
        count_include_pad: false,
        ceil_mode,
    }
}

/// Window configurations covering kernel 2/3 and rectangular kernels, stride 1/2 (overlapping
/// and not), symmetric and asymmetric padding, dilation, and ceil mode.
fn configs() -> Vec<Pool2dParams> {
    vec![
        Pool2dParams::new([2, 2]),
        params([3, 3], [2, 2], [1, 1, 1, 1], [1, 1], false),
        params([3, 3], [1, 1], [1, 1, 1, 1], [1, 1], false),
        params([2, 2], [1, 1], [0; 4], [1, 1], false),
        params([3, 3], [1, 1], [0; 4], [2, 2], false),
        params([3, 3], [2, 2], [0, 1, 1, 0], [1, 1], false),
        params([3, 2], [1, 2], [2, 0, 1, 1], [1, 2], false),
        params([2, 3], [2, 1], [0, 2, 0, 1], [1, 1], false),
        params([1, 1], [1, 1], [0; 4], [1, 1], false),
        params([2, 2], [2, 2], [0; 4], [1, 1], true),
        params([3, 3], [2, 2], [1, 1, 1, 1], [1, 1], true),
        params([3, 3], [3, 3], [1, 0, 1, 2], [1, 1], true),
        params([2, 3], [3, 2], [1, 1, 0, 0], [2, 1], true),
    ]
}

/// Shapes: odd and prime sizes, a 1-pixel image, and more than 256 planes.
const SHAPES: [[usize; 4]; 4] = [[2, 3, 7, 5], [1, 2, 8, 8], [3, 100, 5, 6], [1, 1, 11, 13]];

fn upload(x: &[f32], shape: [usize; 4]) -> Tensor {
    Tensor::from_slice(ctx(), x, &shape).unwrap()
}

fn fits(shape: [usize; 4], p: &Pool2dParams) -> bool {
    (0..2).all(|a| {
        let padded = shape[2 + a] + p.padding[a] + p.padding[a + 2];
        p.dilation[a] * (p.kernel[a] - 1) < padded
    })
}

fn check_max(x: &[f32], shape: [usize; 4], p: &Pool2dParams) {
    let (y, idx) = upload(x, shape).max_pool2d_with_indices(p).unwrap();
    let (want, want_idx, out) = reference::max_pool2d_with_indices(&f64s(x), shape, p);
    let what = format!("max_pool2d {shape:?} {p:?}");
    assert_eq!(y.shape(), out, "{what}: shape");
    assert_eq!(idx.shape(), out, "{what}: index shape");
    let got = y.to_vec::<f32>().unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            g.to_bits(),
            (*w as f32).to_bits(),
            "{what}: element {i}: got {g}, want {w} (bit-exact)"
        );
    }
    let got_idx = idx.to_vec::<u32>().unwrap();
    let want_idx: Vec<u32> = want_idx
        .iter()
        .map(|i| i.map_or(u32::MAX, |i| i as u32))
        .collect();
    assert_eq!(got_idx, want_idx, "{what}: arg-max indices");
}

fn check_avg(x: &[f32], shape: [usize; 4], p: &Pool2dParams) {
    let y = upload(x, shape).avg_pool2d(p).unwrap();
    let (want, out) = reference::avg_pool2d(&f64s(x), shape, p);
    assert_eq!(y.shape(), out, "avg_pool2d {shape:?} {p:?}: shape");
    let (atol, rtol) = pool_tol(&want);
    assert_close(
        &format!("avg_pool2d {shape:?} {p:?}"),
        &y.to_vec::<f32>().unwrap(),
        &want,
        atol,
        rtol,
    );
}

#[test]
fn max_pool_matches_reference_bit_for_bit_over_many_windows() {
    let mut rng = Rng::new(1);
    for shape in SHAPES {
        let x = rng.vec(shape.iter().product(), -3.0, 3.0);
        for p in configs().iter().filter(|p| fits(shape, p)) {
            check_max(&x, shape, p);
        }
    }
}

#[test]
fn avg_pool_matches_reference_with_and_without_counting_padding() {
    let mut rng = Rng::new(2);
    for shape in SHAPES {
        let x = rng.vec(shape.iter().product(), -3.0, 3.0);
        for mut p in configs().into_iter().filter(|p| fits(shape, p)) {
            for include in [false, true] {
                p.count_include_pad = include;
                check_avg(&x, shape, &p);
            }
        }
    }
}

#[test]
fn one_pixel_images_pool_over_their_padding() {
    let mut rng = Rng::new(3);
    let shape = [2, 3, 1, 1];
    let x = rng.vec(6, -2.0, 2.0);
    for mut p in [
        params([1, 1], [1, 1], [0; 4], [1, 1], false),
        params([3, 3], [1, 1], [1, 1, 1, 1], [1, 1], false),
        params([2, 2], [1, 1], [1, 1, 1, 1], [1, 1], false),
        params([2, 2], [2, 2], [1, 0, 0, 1], [1, 1], true),
        params([2, 3], [1, 1], [0, 1, 1, 1], [1, 1], false),
    ] {
        check_max(&x, shape, &p);
        for include in [false, true] {
            p.count_include_pad = include;
            check_avg(&x, shape, &p);
        }
    }
}

#[test]
fn ceil_mode_drops_a_last_window_that_starts_in_the_trailing_padding() {
    // size 5, pads 1/1, k 2, s 2: ceil((7 - 2) / 2) + 1 = 4 windows, but the 4th starts at 6 in
    // padded coordinates (>= 5 + 1), inside the bottom padding, so 3 remain.
    let p = params([2, 2], [2, 2], [1, 1, 1, 1], [1, 1], true);
    let shape = [1, 1, 5, 5];
    let x = Rng::new(4).vec(25, -1.0, 1.0);
    let y = upload(&x, shape).max_pool2d(&p).unwrap();
    assert_eq!(y.shape(), [1, 1, 3, 3]);
    check_max(&x, shape, &p);
    // Without the rule's trigger: size 6 gives ceil((8 - 2) / 2) + 1 = 4 windows.
    let y = upload(&[0.5; 36], [1, 1, 6, 6]).max_pool2d(&p).unwrap();
    assert_eq!(y.shape(), [1, 1, 4, 4]);
}

#[test]
fn ceil_mode_windows_past_the_padded_edge_do_not_count_in_the_average() {
    // 1x1x4x4, k 3, s 2, no padding, ceil: the second window along each axis covers rows (or
    // columns) 2, 3 and 4, and 4 is past the padded edge, so even with count_include_pad the
    // bottom-right window divides by 2 * 2 = 4, not 9.
    let x: Vec<f32> = (0..16).map(|i| 0.25 + i as f32 * 0.5).collect();
    let mut p = params([3, 3], [2, 2], [0; 4], [1, 1], true);
    p.count_include_pad = true;
    let y = upload(&x, [1, 1, 4, 4]).avg_pool2d(&p).unwrap();
    assert_eq!(y.shape(), [1, 1, 2, 2]);
    let got = y.to_vec::<f32>().unwrap();
    let corner: f64 = [10, 11, 14, 15]
        .iter()
        .map(|&i| f64::from(x[i]))
        .sum::<f64>()
        / 4.0;
    assert!(
        (f64::from(got[3]) - corner).abs() < 1e-5,
        "got {}, want {corner}",
        got[3]
    );
    check_avg(&x, [1, 1, 4, 4], &p);
}

#[test]
fn max_pool_ties_go_to_the_first_maximum_in_row_major_window_order() {
    let p = Pool2dParams::new([2, 2]);
    let cases: [([f32; 4], u32); 4] = [
        ([3.0, 5.0, 5.0, 1.0], 1),
        ([5.0, 5.0, 5.0, 5.0], 0),
        ([1.0, 2.0, 7.0, 7.0], 2),
        ([-0.0, 0.0, -1.0, 0.0], 0),
    ];
    for (x, want) in cases {
        let t = upload(&x, [1, 1, 2, 2]).with_grad();
        let (y, idx) = t.max_pool2d_with_indices(&p).unwrap();
        assert_eq!(idx.to_vec::<u32>().unwrap(), [want], "{x:?}");
        let got = y.to_vec::<f32>().unwrap()[0];
        assert_eq!(got.to_bits(), x[want as usize].to_bits(), "{x:?}");
        let dy = Tensor::from_slice(ctx(), &[1.5f32], &[1, 1, 1, 1]).unwrap();
        let dx = grad(&[&y], &[&dy], &[&t]).unwrap()[0]
            .clone()
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let mut want_dx = [0.0f32; 4];
        want_dx[want as usize] = 1.5;
        assert_eq!(dx, want_dx, "{x:?}");
    }
    // Many ties in overlapping, padded, dilated windows agree with the reference's indices.
    let mut rng = Rng::new(5);
    let shape = [2, 3, 9, 7];
    let x: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| (rng.uniform(0.0, 3.0).floor() - 1.0) * 0.5)
        .collect();
    for p in configs().iter().filter(|p| fits(shape, p)) {
        check_max(&x, shape, p);
    }
}

#[test]
fn max_pool_propagates_nan_and_keeps_negative_infinity() {
    let inf = f32::INFINITY;
    let x = [
        1.0,
        f32::NAN,
        2.0,
        -inf,
        -inf,
        -inf,
        -inf,
        -inf,
        f32::NAN,
        3.0,
        -inf,
        f32::NAN,
    ];
    let p = params([1, 2], [1, 2], [0; 4], [1, 1], false);
    let (y, idx) = upload(&x, [1, 1, 2, 6])
        .max_pool2d_with_indices(&p)
        .unwrap();
    let y = y.to_vec::<f32>().unwrap();
    assert!(y[0].is_nan(), "{y:?}");
    assert_eq!(y[1], 2.0);
    assert_eq!(y[2], -inf);
    assert_eq!(y[3], -inf);
    assert!(y[4].is_nan() && y[5].is_nan(), "{y:?}");
    assert_eq!(idx.to_vec::<u32>().unwrap(), [1, 2, 4, 6, 8, 11]);
}

#[test]
fn windows_of_padding_only_give_negative_infinity_or_nan_averages() {
    // A 1x1 image with one pixel of padding all round and a 1x1 kernel: eight windows see
    // only padding.
    let p = params([1, 1], [1, 1], [1, 1, 1, 1], [1, 1], false);
    let t = upload(&[0.75], [1, 1, 1, 1]);
    let (y, idx) = t.max_pool2d_with_indices(&p).unwrap();
    let ninf = f32::NEG_INFINITY;
    assert_eq!(
        y.to_vec::<f32>().unwrap(),
        [ninf, ninf, ninf, ninf, 0.75, ninf, ninf, ninf, ninf]
    );
    let m = u32::MAX;
    assert_eq!(idx.to_vec::<u32>().unwrap(), [m, m, m, m, 0, m, m, m, m]);
    let avg = t.avg_pool2d(&p).unwrap().to_vec::<f32>().unwrap();
    assert!(avg
        .iter()
        .enumerate()
        .all(|(i, v)| if i == 4 { *v == 0.75 } else { v.is_nan() }));
    let mut p = p;
    p.count_include_pad = true;
    let avg = t.avg_pool2d(&p).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(avg, [0.0, 0.0, 0.0, 0.0, 0.75, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn global_avg_pool_matches_reference_for_small_large_and_many_planes() {
    let mut rng = Rng::new(6);
    for shape in [
        [1, 4, 5, 5],
        [2, 8, 7, 7],
        [5, 60, 7, 7],
        [2, 3, 1, 1],
        [1, 2, 1, 67],
        [1, 3, 100, 101],
        [1, 70_000, 1, 1],
    ] {
        let x = rng.vec(shape.iter().product(), -2.0, 2.0);
        let y = upload(&x, shape).global_avg_pool2d().unwrap();
        let (want, out) = reference::global_avg_pool2d(&f64s(&x), shape);
        assert_eq!(y.shape(), out);
        let (atol, rtol) = pool_tol(&want);
        assert_close(
            &format!("global_avg_pool2d {shape:?}"),
            &y.to_vec::<f32>().unwrap(),
            &want,
            atol,
            rtol,
        );
    }
}

/// Distinct values, at least 0.01 apart, in shuffled order: no window holds a near-tie, so
/// max pooling is differentiable well beyond the finite-difference step.
fn distinct(rng: &mut Rng, n: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n).map(|i| (i as f32 - n as f32 / 2.0) * 0.01).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

fn vjp(y: &Tensor, dy: &[f32], x: &Tensor) -> Vec<f32> {
    let u = Tensor::from_slice(ctx(), dy, y.shape()).unwrap();
    grad(&[y], &[&u], &[x]).unwrap()[0]
        .clone()
        .expect("gradient reaches the input")
        .to_vec::<f32>()
        .unwrap()
}

fn grad_configs() -> Vec<Pool2dParams> {
    vec![
        Pool2dParams::new([2, 2]),
        params([3, 3], [1, 1], [1, 1, 1, 1], [1, 1], false),
        params([3, 3], [2, 2], [1, 1, 1, 1], [1, 1], false),
        params([2, 2], [1, 1], [0; 4], [2, 2], false),
        params([3, 2], [1, 2], [0, 1, 2, 0], [1, 1], false),
        params([3, 3], [2, 2], [1, 0, 0, 1], [2, 1], true),
        params([2, 2], [2, 2], [0; 4], [1, 1], true),
        // Disjoint windows with gaps between them and a dilated tap (the loop-free backward).
        params([2, 2], [3, 4], [1, 0, 0, 1], [2, 1], false),
    ]
}

/// The shaders divide flat indices in f32 (`div_u32`); millions of elements and divisors that
/// are not powers of two check that the quotients stay exact far from small numbers.
#[test]
fn max_pool_indexes_exactly_in_large_planes_forward_and_backward() {
    let mut rng = Rng::new(41);
    let shape = [1, 3, 1031, 1297];
    let p = params([3, 3], [2, 2], [1, 1, 1, 1], [1, 1], false);
    let x = distinct(&mut rng, shape.iter().product());
    check_max(&x, shape, &p);

    let xt = upload(&x, shape).with_grad();
    let y = xt.max_pool2d(&p).unwrap();
    let dy = rng.vec(y.shape().iter().product(), -1.0, 1.0);
    let got = vjp(&y, &dy, &xt);
    let (_, idx, out) = reference::max_pool2d_with_indices(&f64s(&x), shape, &p);
    let (plane_in, plane_out) = (shape[2] * shape[3], out[2] * out[3]);
    let mut want = vec![0.0f64; x.len()];
    for (o, i) in idx.iter().enumerate() {
        let i = i.expect("every window holds an input element");
        want[(o / plane_out) * plane_in + i] += f64::from(dy[o]);
    }
    assert_close("max_pool2d backward, large planes", &got, &want, 1e-6, 1e-6);
}

#[test]
fn global_avg_pool_gradient_spreads_exactly_over_large_planes() {
    let mut rng = Rng::new(43);
    let shape = [2, 3, 1013, 1499];
    let x = upload(&rng.vec(shape.iter().product(), -1.0, 1.0), shape).with_grad();
    let y = x.global_avg_pool2d().unwrap();
    let dy = rng.vec(6, -1.0, 1.0);
    let got = vjp(&y, &dy, &x);
    let plane = shape[2] * shape[3];
    let want: Vec<f64> = (0..got.len())
        .map(|i| f64::from(dy[i / plane]) / plane as f64)
        .collect();
    assert_close(
        "global_avg_pool2d backward, large planes",
        &got,
        &want,
        1e-9,
        1e-6,
    );
}

#[test]
fn max_pool_gradients_match_finite_differences_with_overlapping_windows() {
    let mut rng = Rng::new(7);
    let shape = [2, 2, 7, 5];
    let n: usize = shape.iter().product();
    for p in grad_configs() {
        let x = distinct(&mut rng, n);
        let t = upload(&x, shape).with_grad();
        let y = t.max_pool2d(&p).unwrap();
        let dy = rng.uniform_vec(y.numel(), -1.0, 1.0);
        let got = vjp(&y, &dy, &t);
        let want = &fd_vjp(
            |xs| reference::max_pool2d(&xs[0], shape, &p).0,
            &[f64s(&x)],
            &f64s(&dy),
            1e-6,
        )[0];
        assert_close(&format!("dx max_pool2d {p:?}"), &got, want, 1e-5, 1e-5);
    }
}

#[test]
fn avg_pool_gradients_match_finite_differences_for_both_divisors() {
    let mut rng = Rng::new(8);
    let shape = [2, 2, 7, 5];
    let n: usize = shape.iter().product();
    for mut p in grad_configs() {
        for include in [false, true] {
            p.count_include_pad = include;
            let x = rng.uniform_vec(n, -2.0, 2.0);
            let t = upload(&x, shape).with_grad();
            let y = t.avg_pool2d(&p).unwrap();
            let dy = rng.uniform_vec(y.numel(), -1.0, 1.0);
            let got = vjp(&y, &dy, &t);
            let want = &fd_vjp(
                |xs| reference::avg_pool2d(&xs[0], shape, &p).0,
                &[f64s(&x)],
                &f64s(&dy),
                1e-6,
            )[0];
            assert_close(&format!("dx avg_pool2d {p:?}"), &got, want, 1e-5, 1e-5);
        }
    }
}

#[test]
fn global_avg_pool_gradient_matches_finite_differences() {
    let mut rng = Rng::new(9);
    for shape in [[2, 3, 5, 7], [1, 2, 1, 1]] {
        let n: usize = shape.iter().product();
        let x = rng.uniform_vec(n, -2.0, 2.0);
        let t = upload(&x, shape).with_grad();
        let y = t.global_avg_pool2d().unwrap();
        let dy = rng.uniform_vec(y.numel(), -1.0, 1.0);
        let got = vjp(&y, &dy, &t);
        let want = &fd_vjp(
            |xs| reference::global_avg_pool2d(&xs[0], shape).0,
            &[f64s(&x)],
            &f64s(&dy),
            1e-6,
        )[0];
        assert_close(
            &format!("dx global_avg_pool2d {shape:?}"),
            &got,
            want,
            1e-5,
            1e-5,
        );
    }
}

#[test]
fn pooling_reads_pending_views_and_backward_accumulates_into_leaves() {
    let mut rng = Rng::new(10);
    let x = distinct(&mut rng, 2 * 3 * 6 * 6);
    let leaf = Tensor::from_slice(ctx(), &x, &[x.len()])
        .unwrap()
        .with_grad();
    // A pending op, viewed as NCHW.
    let img = leaf
        .mul_scalar(2.0)
        .unwrap()
        .reshape(&[2, 3, 6, 6])
        .unwrap();
    let p = params([3, 3], [1, 1], [1, 1, 1, 1], [1, 1], false);
    let a = img.max_pool2d(&p).unwrap();
    let b = img.avg_pool2d(&p).unwrap();
    let c = img.global_avg_pool2d().unwrap();
    let loss = a
        .sum_all()
        .unwrap()
        .add(&b.sum_all().unwrap())
        .unwrap()
        .add(&c.sum_all().unwrap())
        .unwrap();
    loss.backward().unwrap();
    let got = leaf.grad().unwrap().to_vec::<f32>().unwrap();
    let shape = [2, 3, 6, 6];
    let want = &fd_vjp(
        |xs| {
            let im: Vec<f64> = xs[0].iter().map(|v| v * 2.0).collect();
            let s = |v: Vec<f64>| v.iter().sum::<f64>();
            vec![
                s(reference::max_pool2d(&im, shape, &p).0)
                    + s(reference::avg_pool2d(&im, shape, &p).0)
                    + s(reference::global_avg_pool2d(&im, shape).0),
            ]
        },
        &[f64s(&x)],
        &[1.0],
        1e-6,
    )[0];
    assert_close("d(loss)/dx", &got, want, 1e-4, 1e-4);
}

#[test]
fn empty_batches_give_empty_outputs() {
    let t = Tensor::from_slice::<f32>(ctx(), &[], &[0, 3, 4, 4]).unwrap();
    let p = Pool2dParams::new([2, 2]);
    assert_eq!(t.max_pool2d(&p).unwrap().shape(), [0, 3, 2, 2]);
    assert_eq!(
        t.avg_pool2d(&p).unwrap().to_vec::<f32>().unwrap(),
        Vec::<f32>::new()
    );
    assert_eq!(t.global_avg_pool2d().unwrap().shape(), [0, 3, 1, 1]);
}

fn invalid_op(r: kiln::Result<Tensor>) -> (&'static str, String) {
    match r {
        Err(Error::InvalidArgument { op, reason }) => (op, reason),
        other => panic!("expected an invalid-argument error, got {other:?}"),
    }
}

#[test]
fn bad_ranks_windows_and_strides_are_refused_naming_the_op() {
    let x = upload(&[1.0; 18], [1, 2, 3, 3]);
    let rank3 = Tensor::from_slice(ctx(), &[1.0f32; 18], &[2, 3, 3]).unwrap();
    let k = Pool2dParams::new([2, 2]);
    assert_eq!(invalid_op(rank3.max_pool2d(&k)).0, "max_pool2d");
    assert_eq!(invalid_op(rank3.avg_pool2d(&k)).0, "avg_pool2d");
    assert_eq!(invalid_op(rank3.global_avg_pool2d()).0, "global_avg_pool2d");

    let big = Pool2dParams::new([4, 2]);
    let (op, reason) = invalid_op(x.max_pool2d(&big));
    assert_eq!(op, "max_pool2d");
    assert!(reason.contains("padded input"), "{reason}");
    assert_eq!(invalid_op(x.avg_pool2d(&big)).0, "avg_pool2d");
    // Padding makes room for it; dilation can take it away again.
    let mut padded = big.clone();
    padded.padding = [1, 0, 0, 0];
    assert_eq!(x.max_pool2d(&padded).unwrap().shape(), [1, 2, 1, 1]);
    padded.dilation = [2, 1];
    assert_eq!(invalid_op(x.max_pool2d(&padded)).0, "max_pool2d");

    let mut zero = k.clone();
    zero.stride = [1, 0];
    assert_eq!(invalid_op(x.max_pool2d(&zero)).0, "max_pool2d");
    assert_eq!(invalid_op(x.avg_pool2d(&zero)).0, "avg_pool2d");
    let mut zero = k.clone();
    zero.kernel = [0, 2];
    assert_eq!(invalid_op(x.avg_pool2d(&zero)).0, "avg_pool2d");
    let mut zero = k.clone();
    zero.dilation = [0, 1];
    assert_eq!(invalid_op(x.max_pool2d(&zero)).0, "max_pool2d");
    let mut huge = k.clone();
    huge.padding = [usize::MAX, 0, 1, 0];
    assert_eq!(invalid_op(x.max_pool2d(&huge)).0, "max_pool2d");

    let empty = Tensor::from_slice::<f32>(ctx(), &[], &[1, 1, 0, 4]).unwrap();
    assert_eq!(invalid_op(empty.global_avg_pool2d()).0, "global_avg_pool2d");
    let ints = Tensor::from_slice(ctx(), &[1u32; 4], &[1, 1, 2, 2]).unwrap();
    assert!(matches!(
        ints.max_pool2d(&k),
        Err(Error::UnsupportedDType {
            op: "max_pool2d",
            ..
        })
    ));
}
