//! 2-D convolution and transposed convolution (ONNX semantics) against the f64 reference:
//! forward over strides, symmetric and asymmetric pads, dilation, groups, depthwise, no bias,
//! odd sizes and batches; gradients of input, weight and bias against finite differences;
//! error messages.

use crate::common;

use common::{assert_close, ctx, f64s, fd_vjp, Rng, RngExt};
use kiln::autograd::grad;
use kiln::kernels::conv::{Conv2dParams, ConvTranspose2dParams};
use kiln::reference::conv as reference;
use kiln::testing::{with_conv_variant, ConvVariant};
use kiln::Tensor;

fn numel(s: [usize; 4]) -> usize {
    s.iter().product()
}

fn conv(
    stride: [usize; 2],
    padding: [usize; 4],
    dilation: [usize; 2],
    groups: usize,
) -> Conv2dParams {
    Conv2dParams {
        stride,
        padding,
        dilation,
        groups,
    }
}

fn convt(
    stride: [usize; 2],
    padding: [usize; 4],
    output_padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
) -> ConvTranspose2dParams {
    ConvTranspose2dParams {
        stride,
        padding,
        output_padding,
        dilation,
        groups,
    }
}

/// Random input (with x100 outliers), weight and optional bias for these shapes.
fn data(xs: [usize; 4], ws: [usize; 4], m: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(seed);
    (
        rng.vec(numel(xs), -1.0, 1.0),
        rng.uniform_vec(numel(ws), -1.0, 1.0),
        rng.uniform_vec(m, -1.0, 1.0),
    )
}

/// Tolerance for a sum of `k` products of inputs up to 100 (outliers) and weights up to 1.
fn atol(k: usize) -> f64 {
    2e-5 * 100.0 * (k.max(1) as f64).sqrt()
}

fn check_conv(xs: [usize; 4], ws: [usize; 4], with_bias: bool, p: &Conv2dParams, seed: u64) {
    let ctx = ctx();
    let (x, w, b) = data(xs, ws, ws[0], seed);
    let xt = Tensor::from_slice(ctx, &x, &xs).unwrap();
    let wt = Tensor::from_slice(ctx, &w, &ws).unwrap();
    let bt = Tensor::from_slice(ctx, &b, &[ws[0]]).unwrap();
    let y = xt
        .conv2d(&wt, with_bias.then_some(&bt), p)
        .unwrap_or_else(|e| panic!("conv2d {xs:?} {ws:?} {p:?}: {e}"));
    let bf = f64s(&b);
    let (want, shape) = reference::conv2d(
        &f64s(&x),
        xs,
        &f64s(&w),
        ws,
        with_bias.then_some(bf.as_slice()),
        p,
    );
    let what = format!("conv2d x {xs:?} w {ws:?} bias {with_bias} {p:?}");
    assert_eq!(y.shape(), shape.as_slice(), "{what}: shape");
    let got = y.to_vec::<f32>().unwrap();
    assert_close(&what, &got, &want, atol(ws[1] * ws[2] * ws[3]), 1e-4);
}

fn check_convt(
    xs: [usize; 4],
    ws: [usize; 4],
    with_bias: bool,
    p: &ConvTranspose2dParams,
    seed: u64,
) {
    let ctx = ctx();
    let m = ws[1] * p.groups;
    let (x, w, b) = data(xs, ws, m, seed);
    let xt = Tensor::from_slice(ctx, &x, &xs).unwrap();
    let wt = Tensor::from_slice(ctx, &w, &ws).unwrap();
    let bt = Tensor::from_slice(ctx, &b, &[m]).unwrap();
    let y = xt
        .conv_transpose2d(&wt, with_bias.then_some(&bt), p)
        .unwrap_or_else(|e| panic!("conv_transpose2d {xs:?} {ws:?} {p:?}: {e}"));
    let bf = f64s(&b);
    let (want, shape) = reference::conv_transpose2d(
        &f64s(&x),
        xs,
        &f64s(&w),
        ws,
        with_bias.then_some(bf.as_slice()),
        p,
    );
    let what = format!("conv_transpose2d x {xs:?} w {ws:?} bias {with_bias} {p:?}");
    assert_eq!(y.shape(), shape.as_slice(), "{what}: shape");
    let got = y.to_vec::<f32>().unwrap();
    assert_close(&what, &got, &want, atol(xs[1] * ws[2] * ws[3]), 1e-4);
}

#[test]
fn conv2d_matches_reference_for_stride_padding_and_dilation() {
    #[rustfmt::skip]
    let cases: [([usize; 4], [usize; 4], Conv2dParams); 9] = [
        ([1, 1, 5, 5], [1, 1, 3, 3], Conv2dParams::default()),
        ([2, 3, 7, 6], [4, 3, 3, 3], Conv2dParams::same([3, 3])),
        ([1, 2, 9, 8], [3, 2, 3, 3], conv([2, 2], [1, 1, 1, 1], [1, 1], 1)),
        ([1, 2, 8, 11], [5, 2, 3, 2], conv([2, 3], [0, 1, 2, 0], [1, 1], 1)),
        ([2, 3, 10, 9], [2, 3, 3, 3], conv([1, 1], [2, 2, 2, 2], [2, 2], 1)),
        ([1, 2, 13, 11], [3, 2, 5, 5], conv([2, 2], [1, 2, 2, 1], [1, 1], 1)),
        ([1, 3, 12, 7], [2, 3, 3, 2], conv([3, 1], [0, 1, 1, 0], [2, 3], 1)),
        ([1, 4, 6, 6], [9, 4, 1, 1], Conv2dParams::default()),
        // Padding wider than the kernel: border outputs see only padding.
        ([1, 1, 4, 4], [1, 1, 4, 4], conv([1, 1], [3, 3, 3, 3], [1, 1], 1)),
    ];
    for (k, (xs, ws, p)) in cases.iter().enumerate() {
        check_conv(*xs, *ws, true, p, 10 + k as u64);
        check_conv(*xs, *ws, false, p, 30 + k as u64);
    }
}

#[test]
fn conv2d_matches_reference_with_groups_and_depthwise() {
    #[rustfmt::skip]
    let cases: [([usize; 4], [usize; 4], Conv2dParams); 8] = [
        ([1, 4, 7, 7], [6, 2, 3, 3], conv([2, 2], [1, 1, 1, 1], [1, 1], 2)),
        ([2, 6, 8, 9], [6, 1, 3, 3], conv([1, 1], [1, 1, 1, 1], [1, 1], 6)),
        ([1, 6, 9, 9], [12, 1, 3, 3], conv([1, 1], [2, 2, 2, 2], [2, 2], 6)),
        ([1, 9, 5, 7], [21, 3, 3, 1], conv([1, 2], [1, 0, 0, 1], [1, 1], 3)),
        ([1, 3, 6, 6], [3, 1, 2, 2], conv([2, 2], [0, 0, 0, 0], [1, 1], 3)),
        // Groups of 12 and 9 output channels: wide 16-channel tiles, partly idle.
        ([1, 4, 6, 5], [24, 2, 3, 3], conv([1, 1], [1, 1, 1, 1], [1, 1], 2)),
        ([1, 6, 9, 8], [27, 2, 3, 3], conv([1, 1], [1, 0, 1, 2], [1, 1], 3)),
        // Depthwise over more than one workgroup of pixels (1,024 per narrow tile).
        ([2, 3, 23, 29], [3, 1, 3, 3], conv([1, 1], [1, 1, 1, 1], [1, 1], 3)),
    ];
    for (k, (xs, ws, p)) in cases.iter().enumerate() {
        check_conv(*xs, *ws, true, p, 50 + k as u64);
        check_conv(*xs, *ws, false, p, 70 + k as u64);
    }
}

#[test]
fn conv2d_matches_reference_on_odd_sizes_and_batches() {
    #[rustfmt::skip]
    let cases: [([usize; 4], [usize; 4], Conv2dParams); 6] = [
        // 1x1 images, with and without padding.
        ([3, 2, 1, 1], [5, 2, 1, 1], Conv2dParams::default()),
        ([2, 3, 1, 1], [4, 3, 3, 3], Conv2dParams::same([3, 3])),
        // Primes; more than one tile of pixels (768) and of channels (16).
        ([3, 5, 17, 19], [19, 5, 3, 3], Conv2dParams::same([3, 3])),
        ([2, 7, 23, 13], [11, 7, 5, 3], conv([2, 1], [2, 1, 1, 1], [1, 2], 1)),
        // Even "same" kernel: the extra padding goes at the bottom and right.
        ([2, 3, 7, 5], [2, 3, 2, 4], Conv2dParams::same([2, 4])),
        // One output pixel.
        ([1, 3, 4, 5], [2, 3, 4, 5], Conv2dParams::default()),
    ];
    for (k, (xs, ws, p)) in cases.iter().enumerate() {
        check_conv(*xs, *ws, true, p, 90 + k as u64);
    }
}

#[test]
fn same_padding_keeps_the_image_size() {
    let ctx = ctx();
    for k in [[1, 1], [3, 3], [5, 3], [2, 2], [4, 1]] {
        let x = Tensor::ones(ctx, &[1, 2, 7, 6]).unwrap();
        let w = Tensor::ones(ctx, &[3, 2, k[0], k[1]]).unwrap();
        let y = x.conv2d(&w, None, &Conv2dParams::same(k)).unwrap();
        assert_eq!(y.shape(), &[1, 3, 7, 6], "kernel {k:?}");
    }
}

#[test]
fn conv_transpose2d_matches_reference() {
    #[rustfmt::skip]
    let cases: [([usize; 4], [usize; 4], ConvTranspose2dParams); 10] = [
        ([1, 1, 4, 4], [1, 1, 3, 3], ConvTranspose2dParams::default()),
        ([2, 3, 5, 4], [3, 2, 3, 3], convt([2, 2], [1, 1, 1, 1], [1, 1], [1, 1], 1)),
        ([1, 2, 4, 5], [2, 3, 4, 4], convt([2, 2], [1, 1, 1, 1], [0, 0], [1, 1], 1)),
        ([1, 2, 3, 3], [2, 2, 3, 3], convt([2, 2], [0, 0, 0, 0], [0, 0], [1, 1], 1)),
        ([2, 3, 4, 3], [3, 2, 2, 2], convt([2, 2], [0, 0, 0, 0], [0, 0], [1, 1], 1)),
        ([1, 2, 5, 4], [2, 3, 3, 3], convt([2, 2], [1, 0, 0, 1], [1, 1], [1, 1], 1)),
        ([1, 2, 5, 6], [2, 2, 3, 3], convt([1, 1], [1, 1, 1, 1], [0, 0], [2, 2], 1)),
        // Stride 3 by 2, dilation 2 by 3 (some phases get no taps), asymmetric pads.
        ([1, 3, 4, 5], [3, 2, 3, 2], convt([3, 2], [2, 0, 1, 3], [2, 1], [2, 3], 1)),
        // Groups and depthwise.
        ([2, 4, 5, 5], [4, 3, 3, 3], convt([2, 2], [1, 1, 1, 1], [1, 0], [1, 1], 2)),
        ([1, 6, 4, 7], [6, 1, 3, 3], convt([1, 2], [1, 1, 0, 0], [0, 1], [1, 1], 6)),
    ];
    for (k, (xs, ws, p)) in cases.iter().enumerate() {
        check_convt(*xs, *ws, true, p, 110 + k as u64);
        check_convt(*xs, *ws, false, p, 130 + k as u64);
    }
}

#[test]
fn conv_transpose2d_matches_reference_on_larger_odd_sizes() {
    #[rustfmt::skip]
    let cases: [([usize; 4], [usize; 4], ConvTranspose2dParams); 3] = [
        ([3, 5, 11, 13], [5, 11, 3, 3], convt([2, 2], [1, 1, 1, 1], [1, 1], [1, 1], 1)),
        // Wide tiles (9 output channels) over 800 pixels: more than one tile of 768.
        ([2, 4, 20, 20], [4, 9, 3, 3], convt([1, 1], [1, 1, 1, 1], [0, 0], [1, 1], 1)),
        ([2, 9, 19, 7], [9, 4, 5, 2], convt([1, 3], [2, 0, 2, 1], [0, 2], [1, 2], 3)),
    ];
    for (k, (xs, ws, p)) in cases.iter().enumerate() {
        check_convt(*xs, *ws, true, p, 150 + k as u64);
    }
}

/// The wide kernel has a plain build and a subgroup build (`conv2d_sg`, chosen on adapters with
/// 8-wide subgroups such as lavapipe; elsewhere both runs below use the plain one). Both match
/// the reference on tiles with partial channel blocks, ragged pixel tiles, strides, dilation,
/// groups and the transposed direction.
#[test]
fn both_builds_of_the_wide_kernel_match_the_reference() {
    #[rustfmt::skip]
    let direct: [([usize; 4], [usize; 4], Conv2dParams); 4] = [
        ([3, 5, 17, 19], [19, 5, 3, 3], Conv2dParams::same([3, 3])),
        ([2, 7, 23, 13], [11, 7, 5, 3], conv([2, 1], [2, 1, 1, 1], [1, 2], 1)),
        ([1, 6, 29, 31], [34, 3, 3, 3], conv([1, 1], [1, 1, 1, 1], [1, 1], 2)),
        ([2, 3, 9, 7], [8, 3, 1, 1], Conv2dParams::default()),
    ];
    for variant in [ConvVariant::Plain, ConvVariant::Auto] {
        with_conv_variant(variant, || {
            for (k, (xs, ws, p)) in direct.iter().enumerate() {
                check_conv(*xs, *ws, k % 2 == 0, p, 170 + k as u64);
            }
            check_convt(
                [2, 4, 20, 20],
                [4, 9, 3, 3],
                true,
                &convt([1, 1], [1, 1, 1, 1], [0, 0], [1, 1], 1),
                180,
            );
            check_convt(
                [1, 5, 7, 6],
                [5, 12, 3, 3],
                false,
                &convt([2, 2], [1, 1, 1, 1], [1, 1], [1, 1], 1),
                181,
            );
        });
    }
}

// ---- gradients -----------------------------------------------------------------------------

const GRAD_ATOL: f64 = 2e-4;
const GRAD_RTOL: f64 = 2e-3;

fn vjp(y: &Tensor, dy: &[f32], wrt: &[&Tensor]) -> Vec<Vec<f32>> {
    let u = Tensor::from_slice(ctx(), dy, y.shape()).unwrap();
    grad(&[y], &[&u], wrt)
        .unwrap()
        .into_iter()
        .map(|g| {
            g.expect("gradient reaches the input")
                .to_vec::<f32>()
                .unwrap()
        })
        .collect()
}

fn check_conv_grad(xs: [usize; 4], ws: [usize; 4], with_bias: bool, p: &Conv2dParams, seed: u64) {
    let ctx = ctx();
    let mut rng = Rng::new(seed);
    let m = ws[0];
    let (x, w, b) = (
        rng.uniform_vec(numel(xs), -1.0, 1.0),
        rng.uniform_vec(numel(ws), -1.0, 1.0),
        rng.uniform_vec(m, -1.0, 1.0),
    );
    let xt = Tensor::from_slice(ctx, &x, &xs).unwrap().with_grad();
    let wt = Tensor::from_slice(ctx, &w, &ws).unwrap().with_grad();
    let bt = Tensor::from_slice(ctx, &b, &[m]).unwrap().with_grad();
    let y = xt.conv2d(&wt, with_bias.then_some(&bt), p).unwrap();
    let dy = rng.uniform_vec(y.numel(), -1.0, 1.0);
    let mut wrt = vec![&xt, &wt];
    let mut inputs = vec![f64s(&x), f64s(&w)];
    if with_bias {
        wrt.push(&bt);
        inputs.push(f64s(&b));
    }
    let got = vjp(&y, &dy, &wrt);
    let want = fd_vjp(
        |v| reference::conv2d(&v[0], xs, &v[1], ws, v.get(2).map(Vec::as_slice), p).0,
        &inputs,
        &f64s(&dy),
        1e-6,
    );
    for (k, name) in ["dx", "dw", "db"].iter().enumerate().take(wrt.len()) {
        assert_close(
            &format!("conv2d {name} x {xs:?} w {ws:?} {p:?}"),
            &got[k],
            &want[k],
            GRAD_ATOL,
            GRAD_RTOL,
        );
    }
}

fn check_convt_grad(
    xs: [usize; 4],
    ws: [usize; 4],
    with_bias: bool,
    p: &ConvTranspose2dParams,
    seed: u64,
) {
    let ctx = ctx();
    let mut rng = Rng::new(seed);
    let m = ws[1] * p.groups;
    let (x, w, b) = (
        rng.uniform_vec(numel(xs), -1.0, 1.0),
        rng.uniform_vec(numel(ws), -1.0, 1.0),
        rng.uniform_vec(m, -1.0, 1.0),
    );
    let xt = Tensor::from_slice(ctx, &x, &xs).unwrap().with_grad();
    let wt = Tensor::from_slice(ctx, &w, &ws).unwrap().with_grad();
    let bt = Tensor::from_slice(ctx, &b, &[m]).unwrap().with_grad();
    let y = xt
        .conv_transpose2d(&wt, with_bias.then_some(&bt), p)
        .unwrap();
    let dy = rng.uniform_vec(y.numel(), -1.0, 1.0);
    let mut wrt = vec![&xt, &wt];
    let mut inputs = vec![f64s(&x), f64s(&w)];
    if with_bias {
        wrt.push(&bt);
        inputs.push(f64s(&b));
    }
    let got = vjp(&y, &dy, &wrt);
    let want = fd_vjp(
        |v| reference::conv_transpose2d(&v[0], xs, &v[1], ws, v.get(2).map(Vec::as_slice), p).0,
        &inputs,
        &f64s(&dy),
        1e-6,
    );
    for (k, name) in ["dx", "dw", "db"].iter().enumerate().take(wrt.len()) {
        assert_close(
            &format!("conv_transpose2d {name} x {xs:?} w {ws:?} {p:?}"),
            &got[k],
            &want[k],
            GRAD_ATOL,
            GRAD_RTOL,
        );
    }
}

#[test]
fn conv2d_gradients_match_finite_differences() {
    #[rustfmt::skip]
    let cases: [([usize; 4], [usize; 4], bool, Conv2dParams); 9] = [
        ([2, 2, 5, 5], [3, 2, 3, 3], true, Conv2dParams::same([3, 3])),
        ([1, 2, 7, 6], [3, 2, 3, 3], true, conv([2, 2], [1, 1, 1, 1], [1, 1], 1)),
        ([1, 2, 7, 7], [2, 2, 3, 3], true, conv([1, 1], [2, 2, 2, 2], [2, 2], 1)),
        ([1, 2, 6, 7], [3, 2, 3, 2], false, conv([2, 1], [0, 1, 2, 0], [1, 2], 1)),
        ([1, 4, 5, 5], [4, 2, 3, 3], true, conv([2, 2], [1, 1, 1, 1], [1, 1], 2)),
        ([2, 3, 5, 4], [3, 1, 3, 3], true, conv([1, 1], [2, 2, 2, 2], [2, 2], 3)),
        ([1, 3, 4, 4], [2, 3, 1, 1], false, Conv2dParams::default()),
        // Wide kernels everywhere (8 output and 4 input channels per group), grouped.
        ([1, 8, 4, 4], [16, 4, 3, 3], true, conv([1, 1], [1, 1, 1, 1], [1, 1], 2)),
        // Narrow weight gradient for want of input channels, wide forward tiles.
        ([2, 2, 5, 4], [9, 2, 3, 3], true, conv([2, 1], [1, 1, 0, 1], [1, 1], 1)),
    ];
    for (k, (xs, ws, bias, p)) in cases.iter().enumerate() {
        check_conv_grad(*xs, *ws, *bias, p, 200 + k as u64);
    }
}

#[test]
fn conv2d_weight_gradient_handles_long_reductions_and_many_tiles() {
    #[rustfmt::skip]
    let cases: [([usize; 4], [usize; 4], bool, Conv2dParams); 4] = [
        // A reduction over 2 x 13 x 12 output pixels split into slices; 18 output channels (two
        // tiles of 16); 5 input channels (one partly idle block of 16).
        ([2, 5, 13, 12], [18, 5, 3, 3], true, Conv2dParams::same([3, 3])),
        ([1, 30, 4, 3], [2, 30, 3, 3], true, conv([1, 1], [1, 0, 1, 0], [1, 1], 1)),
        // 25 taps x 3 blocks of 16 input channels (the last partly idle) = 75 units: two
        // column tiles of 64.
        ([1, 40, 3, 3], [8, 40, 5, 5], false, Conv2dParams::same([5, 5])),
        // Strided and dilated: output rows of 10 pixels, a block of 8 and a ragged one.
        ([2, 8, 9, 21], [9, 8, 3, 3], true, conv([2, 2], [1, 1, 1, 1], [1, 2], 1)),
    ];
    // Both builds of the wide forward kernel, which also computes the input gradient (plain, and
    // subgroup where the adapter has 8-wide subgroups, as lavapipe does).
    for variant in [ConvVariant::Plain, ConvVariant::Auto] {
        with_conv_variant(variant, || {
            for (k, (xs, ws, bias, p)) in cases.iter().enumerate() {
                check_conv_grad(*xs, *ws, *bias, p, 220 + k as u64);
            }
        });
    }
}

#[test]
fn conv_transpose2d_gradients_match_finite_differences() {
    #[rustfmt::skip]
    let cases: [([usize; 4], [usize; 4], bool, ConvTranspose2dParams); 7] = [
        ([1, 2, 3, 4], [2, 3, 3, 3], true, convt([2, 2], [1, 1, 1, 1], [1, 1], [1, 1], 1)),
        ([2, 2, 3, 3], [2, 2, 4, 4], true, convt([2, 2], [1, 1, 1, 1], [0, 0], [1, 1], 1)),
        ([1, 2, 4, 3], [2, 2, 3, 3], false, convt([2, 2], [1, 0, 0, 1], [1, 1], [1, 1], 1)),
        ([1, 2, 4, 4], [2, 2, 3, 3], true, convt([1, 1], [1, 1, 1, 1], [0, 0], [2, 2], 1)),
        ([1, 4, 3, 3], [4, 2, 3, 2], true, convt([2, 1], [1, 0, 0, 1], [1, 0], [1, 2], 2)),
        // Wide kernels in every direction: 9 output channels forward, 16 in the gradients.
        ([1, 16, 3, 3], [16, 9, 3, 3], true, convt([2, 2], [1, 1, 1, 1], [1, 1], [1, 1], 1)),
        ([1, 16, 3, 2], [16, 8, 3, 3], true, convt([1, 2], [1, 0, 1, 1], [0, 1], [1, 1], 2)),
    ];
    for (k, (xs, ws, bias, p)) in cases.iter().enumerate() {
        check_convt_grad(*xs, *ws, *bias, p, 300 + k as u64);
    }
}

#[test]
fn conv_transpose2d_gradient_handles_output_padding_past_the_stride() {
    // output_padding >= stride: the last output rows get only the bias, and the input gradient
    // (a direct convolution) must stop at the input's own size.
    check_convt_grad(
        [1, 2, 3, 3],
        [2, 2, 2, 2],
        true,
        &convt([1, 2], [0, 0, 0, 0], [2, 3], [1, 1], 1),
        310,
    );
}

#[test]
fn conv2d_gradients_reach_a_loss_through_backward() {
    let ctx = ctx();
    let mut rng = Rng::new(400);
    let (xs, ws) = ([1, 2, 4, 4], [2, 2, 3, 3]);
    let x = rng.uniform_vec(numel(xs), -1.0, 1.0);
    let w = rng.uniform_vec(numel(ws), -1.0, 1.0);
    let xt = Tensor::from_slice(ctx, &x, &xs).unwrap();
    let wt = Tensor::from_slice(ctx, &w, &ws).unwrap().with_grad();
    let p = Conv2dParams::same([3, 3]);
    let loss = xt.conv2d(&wt, None, &p).unwrap().sum_all().unwrap();
    loss.backward().unwrap();
    let want = fd_vjp(
        |v| {
            vec![reference::conv2d(&f64s(&x), xs, &v[0], ws, None, &p)
                .0
                .iter()
                .sum()]
        },
        &[f64s(&w)],
        &[1.0],
        1e-6,
    );
    let got = wt.grad().unwrap().to_vec::<f32>().unwrap();
    assert_close(
        "conv2d dw via backward",
        &got,
        &want[0],
        GRAD_ATOL,
        GRAD_RTOL,
    );
}

// ---- errors --------------------------------------------------------------------------------

fn err_conv(xs: &[usize], ws: &[usize], bs: Option<&[usize]>, p: &Conv2dParams) -> String {
    let ctx = ctx();
    let x = Tensor::zeros(ctx, xs).unwrap();
    let w = Tensor::zeros(ctx, ws).unwrap();
    let b = bs.map(|s| Tensor::zeros(ctx, s).unwrap());
    x.conv2d(&w, b.as_ref(), p).unwrap_err().to_string()
}

#[test]
fn conv2d_errors_name_the_op_and_both_shapes() {
    let d = Conv2dParams::default();
    let e = err_conv(&[1, 3, 5, 5], &[4, 2, 3, 3], None, &d);
    assert!(
        e.contains("conv2d") && e.contains("[1, 3, 5, 5]") && e.contains("[4, 2, 3, 3]"),
        "channel mismatch: {e}"
    );
    let e = err_conv(
        &[1, 4, 5, 5],
        &[3, 2, 3, 3],
        None,
        &conv([1, 1], [0; 4], [1, 1], 2),
    );
    assert!(
        e.contains("conv2d") && e.contains("groups") && e.contains("[3, 2, 3, 3]"),
        "groups not dividing M: {e}"
    );
    let e = err_conv(
        &[1, 3, 5, 5],
        &[3, 1, 3, 3],
        None,
        &conv([1, 1], [0; 4], [1, 1], 2),
    );
    assert!(
        e.contains("conv2d") && e.contains("groups") && e.contains("[1, 3, 5, 5]"),
        "groups not dividing C: {e}"
    );
    let e = err_conv(&[1, 1, 3, 3], &[1, 1, 4, 4], None, &d);
    assert!(
        e.contains("conv2d") && e.contains("[1, 1, 3, 3]") && e.contains("[1, 1, 4, 4]"),
        "kernel larger than the input: {e}"
    );
    let e = err_conv(
        &[1, 1, 5, 5],
        &[1, 1, 3, 3],
        None,
        &conv([1, 1], [0; 4], [3, 1], 1),
    );
    assert!(
        e.contains("conv2d") && e.contains("empty"),
        "dilated kernel too large: {e}"
    );
    let e = err_conv(&[3, 5, 5], &[1, 3, 3, 3], None, &d);
    assert!(e.contains("conv2d") && e.contains("[3, 5, 5]"), "rank: {e}");
    let e = err_conv(&[1, 3, 5, 5], &[1, 3, 3, 3], Some(&[2]), &d);
    assert!(e.contains("conv2d") && e.contains("bias"), "bias: {e}");
    let e = err_conv(
        &[1, 3, 5, 5],
        &[1, 3, 3, 3],
        None,
        &conv([0, 1], [0; 4], [1, 1], 1),
    );
    assert!(
        e.contains("conv2d") && e.contains("stride"),
        "stride 0: {e}"
    );
}

#[test]
fn conv_transpose2d_errors_name_the_op_and_both_shapes() {
    let ctx = ctx();
    let run = |xs: &[usize], ws: &[usize], p: &ConvTranspose2dParams| {
        let x = Tensor::zeros(ctx, xs).unwrap();
        let w = Tensor::zeros(ctx, ws).unwrap();
        x.conv_transpose2d(&w, None, p).unwrap_err().to_string()
    };
    let d = ConvTranspose2dParams::default();
    let e = run(&[1, 3, 4, 4], &[2, 2, 3, 3], &d);
    assert!(
        e.contains("conv_transpose2d") && e.contains("[1, 3, 4, 4]") && e.contains("[2, 2, 3, 3]"),
        "channel mismatch: {e}"
    );
    let e = run(
        &[1, 3, 4, 4],
        &[3, 2, 3, 3],
        &convt([1, 1], [0; 4], [0, 0], [1, 1], 2),
    );
    assert!(
        e.contains("conv_transpose2d") && e.contains("groups"),
        "groups: {e}"
    );
    let e = run(
        &[1, 1, 2, 2],
        &[1, 1, 2, 2],
        &convt([1, 1], [2, 0, 1, 0], [0, 0], [1, 1], 1),
    );
    assert!(
        e.contains("conv_transpose2d") && e.contains("[1, 1, 2, 2]"),
        "output size <= 0: {e}"
    );
    let e = run(&[1, 1, 2, 2], &[1, 1, 2], &d);
    assert!(
        e.contains("conv_transpose2d") && e.contains("[1, 1, 2]"),
        "rank: {e}"
    );
}
