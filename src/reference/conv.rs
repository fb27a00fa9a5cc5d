//! References for shaders/conv2d.wgsl: ONNX `Conv` and `ConvTranspose` in f64, NCHW.
//!
//! Written as plain loops over f64 data (so tests can take finite differences of them). The
//! transposed convolution scatters each input pixel into the output, the opposite order of the
//! GPU kernel, which gathers.

use crate::ir::{Conv2dParams, ConvTranspose2dParams};

/// ONNX `Conv`: `x` (N, C, H, W) = `xs`, `w` (M, C / groups, kH, kW) = `ws`, optional `b` (M).
/// Returns the output (N, M, Ho, Wo) and its shape. Panics on inconsistent shapes or an empty
/// output (the kernel is larger than the padded input).
pub fn conv2d(
    x: &[f64],
    xs: [usize; 4],
    w: &[f64],
    ws: [usize; 4],
    b: Option<&[f64]>,
    p: &Conv2dParams,
) -> (Vec<f64>, [usize; 4]) {
    let [n, c, h, wd] = xs;
    let [m, cg, kh, kw] = ws;
    let g = p.groups;
    assert!(
        g > 0 && c % g == 0 && m % g == 0 && cg * g == c,
        "conv2d shapes"
    );
    assert_eq!(x.len(), n * c * h * wd, "conv2d input length");
    assert_eq!(w.len(), m * cg * kh * kw, "conv2d weight length");
    let [pt, pl, pb, pr] = p.padding;
    let [sh, sw] = p.stride;
    let [dh, dw] = p.dilation;
    let span_h = dh * (kh - 1) + 1;
    let span_w = dw * (kw - 1) + 1;
    assert!(
        h + pt + pb >= span_h && wd + pl + pr >= span_w,
        "conv2d: empty output"
    );
    let ho = (h + pt + pb - span_h) / sh + 1;
    let wo = (wd + pl + pr - span_w) / sw + 1;
    let mg = m / g;
    let mut y = vec![0.0; n * m * ho * wo];
    for ni in 0..n {
        for mi in 0..m {
            let gi = mi / mg;
            let bias = b.map_or(0.0, |b| b[mi]);
            for oh in 0..ho {
                for ow in 0..wo {
                    let mut acc = bias;
                    for ci in 0..cg {
                        let cin = gi * cg + ci;
                        for a in 0..kh {
                            let ih = (oh * sh + a * dh) as isize - pt as isize;
                            if ih < 0 || ih >= h as isize {
                                continue;
                            }
                            for bb in 0..kw {
                                let iw = (ow * sw + bb * dw) as isize - pl as isize;
                                if iw < 0 || iw >= wd as isize {
                                    continue;
                                }
                                let xv = x[((ni * c + cin) * h + ih as usize) * wd + iw as usize];
                                let wv = w[((mi * cg + ci) * kh + a) * kw + bb];
                                acc += xv * wv;
                            }
                        }
                    }
                    y[((ni * m + mi) * ho + oh) * wo + ow] = acc;
                }
            }
        }
    }
    (y, [n, m, ho, wo])
}

/// ONNX `ConvTranspose`: `x` (N, C, H, W) = `xs`, `w` (C, M / groups, kH, kW) = `ws`, optional
/// `b` (M). Returns the output (N, M, Ho, Wo) with
/// `Ho = stride (H - 1) + output_padding + dilation (kH - 1) + 1 - pad_top - pad_bottom`, and its
/// shape. Panics on inconsistent shapes or an empty output.
pub fn conv_transpose2d(
    x: &[f64],
    xs: [usize; 4],
    w: &[f64],
    ws: [usize; 4],
    b: Option<&[f64]>,
    p: &ConvTranspose2dParams,
) -> (Vec<f64>, [usize; 4]) {
    let [n, c, h, wd] = xs;
    let [wc, mg, kh, kw] = ws;
    let g = p.groups;
    assert!(g > 0 && c % g == 0 && wc == c, "conv_transpose2d shapes");
    assert_eq!(x.len(), n * c * h * wd, "conv_transpose2d input length");
    assert_eq!(w.len(), c * mg * kh * kw, "conv_transpose2d weight length");
    let m = mg * g;
    let cg = c / g;
    let [pt, pl, pb, pr] = p.padding;
    let [sh, sw] = p.stride;
    let [dh, dw] = p.dilation;
    let full_h = sh * (h - 1) + p.output_padding[0] + dh * (kh - 1) + 1;
    let full_w = sw * (wd - 1) + p.output_padding[1] + dw * (kw - 1) + 1;
    assert!(
        full_h > pt + pb && full_w > pl + pr,
        "conv_transpose2d: empty output"
    );
    let ho = full_h - pt - pb;
    let wo = full_w - pl - pr;
    let mut y = vec![0.0; n * m * ho * wo];
    for ni in 0..n {
        for mi in 0..m {
            let bias = b.map_or(0.0, |b| b[mi]);
            for v in &mut y[(ni * m + mi) * ho * wo..][..ho * wo] {
                *v = bias;
            }
        }
        for ci in 0..c {
            let gi = ci / cg;
            for ih in 0..h {
                for iw in 0..wd {
                    let xv = x[((ni * c + ci) * h + ih) * wd + iw];
                    for mo in 0..mg {
                        let mi = gi * mg + mo;
                        for a in 0..kh {
                            let oh = (ih * sh + a * dh) as isize - pt as isize;
                            if oh < 0 || oh >= ho as isize {
                                continue;
                            }
                            for bb in 0..kw {
                                let ow = (iw * sw + bb * dw) as isize - pl as isize;
                                if ow < 0 || ow >= wo as isize {
                                    continue;
                                }
                                let wv = w[((ci * mg + mo) * kh + a) * kw + bb];
                                y[((ni * m + mi) * ho + oh as usize) * wo + ow as usize] += xv * wv;
                            }
                        }
                    }
                }
            }
        }
    }
    (y, [n, m, ho, wo])
}
