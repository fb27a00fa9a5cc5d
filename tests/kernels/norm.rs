//! Layer normalization and batch normalization (inference and training) against the f64
//! references: forward on both kernel paths, running statistics, argument errors, and every
//! gradient against finite differences.

use crate::common;

use common::{assert_close, ctx, f64s, fd_vjp, Rng, RngExt};
use kiln::autograd::grad;
use kiln::reference::norm as reference;
use kiln::{Error, Tensor};

const ATOL: f64 = 1e-5;
const RTOL: f64 = 1e-4;

fn upload(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(ctx(), v, shape).unwrap()
}

fn resolve(axis: isize, rank: usize) -> usize {
    if axis < 0 {
        (axis + rank as isize) as usize
    } else {
        axis as usize
    }
}

fn layer_norm_case(shape: &[usize], axis: isize, scale: bool, bias: bool, eps: f32, seed: u64) {
    let mut rng = Rng::new(seed);
    let n: usize = shape.iter().product();
    let a = resolve(axis, shape.len());
    let k: usize = shape[a..].iter().product();
    let x = rng.vec(n, -3.0, 3.0);
    let s = rng.uniform_vec(k, 0.5, 1.5);
    let b = rng.uniform_vec(k, -1.0, 1.0);
    let st = upload(&s, &shape[a..]);
    let bt = upload(&b, &shape[a..]);
    let y = upload(&x, shape)
        .layer_norm(axis, scale.then_some(&st), bias.then_some(&bt), eps)
        .unwrap();
    let s64 = f64s(&s);
    let b64 = f64s(&b);
    let want = reference::layer_norm(
        &f64s(&x),
        shape,
        a,
        scale.then_some(&s64[..]),
        bias.then_some(&b64[..]),
        f64::from(eps),
    );
    assert_close(
        &format!("layer_norm {shape:?} axis {axis} scale={scale} bias={bias}"),
        &y.to_vec::<f32>().unwrap(),
        &want,
        ATOL,
        RTOL,
    );
}

#[test]
fn layer_norm_matches_reference_on_both_kernel_paths() {
    let cases: [(&[usize], isize); 9] = [
        (&[2, 3, 8], -1),
        (&[2, 3, 4, 5], 2),
        (&[3, 10], 1),
        (&[2, 3, 4], 0),
        (&[1, 1], 1),
        (&[5, 300], 1),
        (&[3, 2, 700], 1),
        (&[4100, 7], -1),
        (&[4097, 3, 40], 1),
    ];
    for (k, (shape, axis)) in cases.into_iter().enumerate() {
        layer_norm_case(shape, axis, true, true, 1e-5, k as u64 + 1);
    }
}

#[test]
fn layer_norm_takes_optional_scale_and_bias_and_any_eps() {
    layer_norm_case(&[4, 16], -1, true, false, 1e-5, 20);
    layer_norm_case(&[4, 16], -1, false, true, 1e-5, 21);
    layer_norm_case(&[3, 300], 1, false, false, 1e-5, 22);
    layer_norm_case(&[3, 10], 1, true, true, 1e-3, 23);
    layer_norm_case(&[3, 10], 1, true, true, 0.0, 24);
}

#[test]
fn layer_norm_keeps_the_variance_of_offset_rows() {
    // Rows around 1000 with spread ~1: one-pass Σx² − (Σx)²/n would lose it in f32.
    let mut rng = Rng::new(30);
    for shape in [[6usize, 50], [3, 500]] {
        let x: Vec<f32> = rng
            .uniform_vec(shape[0] * shape[1], -1.0, 1.0)
            .into_iter()
            .map(|v| v + 1000.0)
            .collect();
        let y = upload(&x, &shape).layer_norm(-1, None, None, 1e-5).unwrap();
        let want = reference::layer_norm(&f64s(&x), &shape, 1, None, None, 1e-5);
        assert_close(
            &format!("layer_norm offset rows {shape:?}"),
            &y.to_vec::<f32>().unwrap(),
            &want,
            1e-4,
            1e-3,
        );
    }
}

#[test]
fn layer_norm_refuses_bad_arguments() {
    let x = upload(&[1.0f32; 24], &[2, 3, 4]);
    let s = upload(&[1.0f32; 4], &[4]);
    match x.layer_norm(1, Some(&s), None, 1e-5) {
        Err(Error::ShapeMismatch { op, .. }) => assert_eq!(op, "layer_norm"),
        other => panic!("expected a shape error, got {other:?}"),
    }
    assert!(x.layer_norm(3, None, None, 1e-5).is_err());
    assert!(x.layer_norm(-1, None, None, -1.0).is_err());
    assert!(x.layer_norm(-1, None, None, f32::NAN).is_err());
}

fn check_layer_norm_gradient(shape: &[usize], axis: isize, scale: bool, bias: bool, seed: u64) {
    let mut rng = Rng::new(seed);
    let n: usize = shape.iter().product();
    let a = resolve(axis, shape.len());
    let k: usize = shape[a..].iter().product();
    let x = rng.uniform_vec(n, -2.0, 2.0);
    let s = rng.uniform_vec(k, 0.5, 1.5);
    let b = rng.uniform_vec(k, -1.0, 1.0);
    let dy = rng.uniform_vec(n, -1.0, 1.0);
    let xt = upload(&x, shape).with_grad();
    let st = upload(&s, &shape[a..]).with_grad();
    let bt = upload(&b, &shape[a..]).with_grad();
    let y = xt
        .layer_norm(axis, scale.then_some(&st), bias.then_some(&bt), 1e-5)
        .unwrap();
    let mut wrt = vec![&xt];
    let mut inputs = vec![f64s(&x)];
    if scale {
        wrt.push(&st);
        inputs.push(f64s(&s));
    }
    if bias {
        wrt.push(&bt);
        inputs.push(f64s(&b));
    }
    let u = upload(&dy, shape);
    let got = grad(&[&y], &[&u], &wrt).unwrap();
    let want = fd_vjp(
        |xs| {
            let sc = scale.then(|| &xs[1][..]);
            let bi = bias.then(|| &xs[1 + usize::from(scale)][..]);
            reference::layer_norm(&xs[0], shape, a, sc, bi, 1e-5)
        },
        &inputs,
        &f64s(&dy),
        1e-6,
    );
    let names = ["dx", "dscale", "dbias"];
    let names: Vec<&str> = [true, scale, bias]
        .iter()
        .zip(names)
        .filter(|(on, _)| **on)
        .map(|(_, n)| n)
        .collect();
    for ((g, w), name) in got.iter().zip(&want).zip(names) {
        let g = g.clone().expect("gradient reaches the input");
        assert_close(
            &format!("layer_norm {name} {shape:?} axis {axis}"),
            &g.to_vec::<f32>().unwrap(),
            w,
            1e-4,
            1e-3,
        );
    }
}

#[test]
fn layer_norm_gradients_match_finite_differences() {
    check_layer_norm_gradient(&[2, 3, 6], -1, true, true, 40);
    check_layer_norm_gradient(&[2, 3, 4], 1, true, true, 41);
    // Workgroup path (rows of 70), and dscale/dbias over more rows than lanes and more
    // columns than one workgroup holds.
    check_layer_norm_gradient(&[2, 70], 1, true, true, 42);
    check_layer_norm_gradient(&[20, 40], 1, true, true, 43);
    check_layer_norm_gradient(&[3, 5], 1, true, false, 44);
    check_layer_norm_gradient(&[3, 5], 1, false, true, 45);
    check_layer_norm_gradient(&[3, 5], 1, false, false, 46);
}

// ---- batch norm --------------------------------------------------------------------------

struct Bn {
    shape: Vec<usize>,
    x: Vec<f32>,
    scale: Vec<f32>,
    bias: Vec<f32>,
    mean: Vec<f32>,
    var: Vec<f32>,
}

fn bn(shape: &[usize], seed: u64) -> Bn {
    let mut rng = Rng::new(seed);
    let n: usize = shape.iter().product();
    let c = shape[1];
    Bn {
        shape: shape.to_vec(),
        x: rng.vec(n, -3.0, 3.0),
        scale: rng.uniform_vec(c, 0.5, 1.5),
        bias: rng.uniform_vec(c, -1.0, 1.0),
        mean: rng.uniform_vec(c, -1.0, 1.0),
        var: rng.uniform_vec(c, 0.2, 2.0),
    }
}

impl Bn {
    fn c(&self) -> usize {
        self.shape[1]
    }
    fn per_channel(&self, v: &[f32]) -> Tensor {
        upload(v, &[self.c()])
    }
}

#[test]
fn batch_norm_inference_matches_reference() {
    for (k, (shape, eps)) in [
        (vec![2usize, 4, 5, 5], 1e-5f32),
        (vec![6, 5], 1e-5),
        (vec![1, 3, 4, 4], 1e-3),
        (vec![3, 300], 1e-5),
        (vec![2, 3, 17, 19], 1e-5),
        (vec![2, 2, 3, 4, 5], 1e-5),
    ]
    .into_iter()
    .enumerate()
    {
        let b = bn(&shape, k as u64 + 60);
        let y = upload(&b.x, &shape)
            .batch_norm_inference(
                &b.per_channel(&b.scale),
                &b.per_channel(&b.bias),
                &b.per_channel(&b.mean),
                &b.per_channel(&b.var),
                eps,
            )
            .unwrap();
        let want = reference::batch_norm_inference(
            &f64s(&b.x),
            &shape,
            &f64s(&b.scale),
            &f64s(&b.bias),
            &f64s(&b.mean),
            &f64s(&b.var),
            f64::from(eps),
        );
        assert_close(
            &format!("batch_norm_inference {shape:?}"),
            &y.to_vec::<f32>().unwrap(),
            &want,
            ATOL,
            1e-5,
        );
    }
}

#[test]
fn batch_norm_train_normalizes_with_batch_statistics_and_updates_running_ones() {
    for (k, shape) in [
        vec![4usize, 3],
        vec![2, 4, 5, 5],
        vec![3, 5, 20, 20],
        vec![16, 2, 7],
        vec![70, 5000],
    ]
    .into_iter()
    .enumerate()
    {
        let b = bn(&shape, k as u64 + 70);
        let momentum = 0.1f32 + 0.2 * k as f32;
        let out = upload(&b.x, &shape)
            .batch_norm_train(
                &b.per_channel(&b.scale),
                &b.per_channel(&b.bias),
                &b.per_channel(&b.mean),
                &b.per_channel(&b.var),
                momentum,
                1e-5,
            )
            .unwrap();
        let (y, rm, rv) = reference::batch_norm_train(
            &f64s(&b.x),
            &shape,
            &f64s(&b.scale),
            &f64s(&b.bias),
            &f64s(&b.mean),
            &f64s(&b.var),
            f64::from(momentum),
            1e-5,
        );
        let what = format!("batch_norm_train {shape:?}");
        assert_close(
            &format!("{what} y"),
            &out.y.to_vec::<f32>().unwrap(),
            &y,
            ATOL,
            RTOL,
        );
        assert_close(
            &format!("{what} running_mean"),
            &out.running_mean.to_vec::<f32>().unwrap(),
            &rm,
            ATOL,
            RTOL,
        );
        assert_close(
            &format!("{what} running_var"),
            &out.running_var.to_vec::<f32>().unwrap(),
            &rv,
            ATOL,
            RTOL,
        );
        assert!(!out.running_mean.requires_grad());
    }
}

#[test]
fn batch_norm_running_variance_is_unbiased() {
    // One channel, values 1 and 3: batch var 1 (biased), 2 (unbiased); momentum 1 keeps only
    // the batch.
    let x = upload(&[1.0f32, 3.0], &[2, 1]);
    let one = upload(&[1.0f32], &[1]);
    let zero = upload(&[0.0f32], &[1]);
    let out = x
        .batch_norm_train(&one, &zero, &zero, &one, 1.0, 0.0)
        .unwrap();
    assert_eq!(out.running_mean.to_vec::<f32>().unwrap(), vec![2.0]);
    assert_eq!(out.running_var.to_vec::<f32>().unwrap(), vec![2.0]);
    assert_eq!(out.y.to_vec::<f32>().unwrap(), vec![-1.0, 1.0]);
}

#[test]
fn batch_norm_train_keeps_the_variance_of_offset_channels() {
    let mut rng = Rng::new(75);
    for shape in [[8usize, 2, 6], [4, 3, 100]] {
        let n: usize = shape.iter().product();
        let x: Vec<f32> = rng
            .uniform_vec(n, -1.0, 1.0)
            .into_iter()
            .map(|v| v + 1000.0)
            .collect();
        let c = shape[1];
        let (ones, zeros) = (vec![1.0f32; c], vec![0.0f32; c]);
        let out = upload(&x, &shape)
            .batch_norm_train(
                &upload(&ones, &[c]),
                &upload(&zeros, &[c]),
                &upload(&zeros, &[c]),
                &upload(&ones, &[c]),
                0.5,
                1e-5,
            )
            .unwrap();
        let (y, rm, rv) = reference::batch_norm_train(
            &f64s(&x),
            &shape,
            &f64s(&ones),
            &f64s(&zeros),
            &f64s(&zeros),
            &f64s(&ones),
            0.5,
            1e-5,
        );
        let what = format!("batch_norm_train offset {shape:?}");
        assert_close(
            &format!("{what} y"),
            &out.y.to_vec::<f32>().unwrap(),
            &y,
            1e-4,
            1e-3,
        );
        assert_close(
            &format!("{what} running_mean"),
            &out.running_mean.to_vec::<f32>().unwrap(),
            &rm,
            1e-4,
            1e-6,
        );
        assert_close(
            &format!("{what} running_var"),
            &out.running_var.to_vec::<f32>().unwrap(),
            &rv,
            1e-4,
            1e-3,
        );
    }
}

#[test]
fn batch_norm_refuses_bad_arguments() {
    let x = upload(&[1.0f32; 12], &[2, 3, 2]);
    let c3 = upload(&[1.0f32; 3], &[3]);
    let c2 = upload(&[1.0f32; 2], &[2]);
    match x.batch_norm_inference(&c3, &c2, &c3, &c3, 1e-5) {
        Err(Error::ShapeMismatch { op, .. }) => assert_eq!(op, "batch_norm_inference"),
        other => panic!("expected a shape error, got {other:?}"),
    }
    match x.batch_norm_train(&c3, &c3, &c2, &c3, 0.1, 1e-5) {
        Err(Error::ShapeMismatch { op, .. }) => assert_eq!(op, "batch_norm_train"),
        other => panic!("expected a shape error, got {other:?}"),
    }
    let single = upload(&[1.0f32; 3], &[1, 3]);
    assert!(single
        .batch_norm_train(&c3, &c3, &c3, &c3, 0.1, 1e-5)
        .is_err());
    let vector = upload(&[1.0f32; 3], &[3]);
    assert!(vector
        .batch_norm_inference(&c3, &c3, &c3, &c3, 1e-5)
        .is_err());
}

fn check_batch_norm_gradient(shape: &[usize], train: bool, seed: u64) {
    let b = bn(shape, seed);
    let mut rng = Rng::new(seed + 1000);
    let x: Vec<f32> = rng.uniform_vec(b.x.len(), -2.0, 2.0);
    let dy = rng.uniform_vec(x.len(), -1.0, 1.0);
    let xt = upload(&x, shape).with_grad();
    let st = b.per_channel(&b.scale).with_grad();
    let bt = b.per_channel(&b.bias).with_grad();
    let (m, v) = (b.per_channel(&b.mean), b.per_channel(&b.var));
    let y = if train {
        xt.batch_norm_train(&st, &bt, &m, &v, 0.1, 1e-5).unwrap().y
    } else {
        xt.batch_norm_inference(&st, &bt, &m, &v, 1e-5).unwrap()
    };
    let u = upload(&dy, shape);
    let got = grad(&[&y], &[&u], &[&xt, &st, &bt]).unwrap();
    let (mean, var) = (f64s(&b.mean), f64s(&b.var));
    let want = fd_vjp(
        |xs| {
            if train {
                let (y, _, _) = reference::batch_norm_train(
                    &xs[0], shape, &xs[1], &xs[2], &mean, &var, 0.1, 1e-5,
                );
                y
            } else {
                reference::batch_norm_inference(&xs[0], shape, &xs[1], &xs[2], &mean, &var, 1e-5)
            }
        },
        &[f64s(&x), f64s(&b.scale), f64s(&b.bias)],
        &f64s(&dy),
        1e-6,
    );
    for ((g, w), name) in got.iter().zip(&want).zip(["dx", "dscale", "dbias"]) {
        let g = g.clone().expect("gradient reaches the input");
        assert_close(
            &format!("batch_norm train={train} {name} {shape:?}"),
            &g.to_vec::<f32>().unwrap(),
            w,
            1e-4,
            1e-3,
        );
    }
}

#[test]
fn batch_norm_train_gradients_match_finite_differences() {
    check_batch_norm_gradient(&[4, 3], true, 80);
    check_batch_norm_gradient(&[2, 3, 4, 5], true, 81);
    // Workgroup path: 140 elements per channel.
    check_batch_norm_gradient(&[2, 2, 70], true, 82);
}

#[test]
fn batch_norm_inference_gradients_match_finite_differences() {
    check_batch_norm_gradient(&[5, 3], false, 90);
    check_batch_norm_gradient(&[2, 3, 4, 5], false, 91);
    check_batch_norm_gradient(&[2, 2, 70], false, 92);
}
