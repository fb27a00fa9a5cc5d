//! References for shaders/pool.wgsl: max, average and global average pooling over NCHW f64
//! images, written as plain loops over windows (f64 inputs, so tests can finite-difference
//! them).

use crate::ir::Pool2dParams;

/// The number of windows along one axis. Without `ceil_mode` a window must fit inside the
/// padded input. With it, windows continue while the previous one ends before the padded end,
/// and then the last one is dropped if it starts past the input and its leading padding (the
/// ONNX and PyTorch rule).
fn window_count(
    size: usize,
    pad_begin: usize,
    pad_end: usize,
    k: usize,
    s: usize,
    d: usize,
    ceil: bool,
) -> usize {
    let padded = size + pad_begin + pad_end;
    let extent = d * (k - 1) + 1;
    let mut o = 0;
    if !ceil {
        while o * s + extent <= padded {
            o += 1;
        }
        return o;
    }
    while o == 0 || (o - 1) * s + extent < padded {
        o += 1;
    }
    if (o - 1) * s >= size + pad_begin {
        o -= 1;
    }
    o
}

/// One window's taps along an axis: `(position, in_input, in_padded_extent)` for each of the
/// `k` taps of window `o`, positions relative to the unpadded input.
fn taps(
    o: usize,
    size: usize,
    pad_begin: usize,
    pad_end: usize,
    k: usize,
    s: usize,
    d: usize,
) -> Vec<(i64, bool, bool)> {
    (0..k)
        .map(|a| {
            let pos = (o * s + a * d) as i64 - pad_begin as i64;
            let in_input = pos >= 0 && pos < size as i64;
            let in_padded = pos >= -(pad_begin as i64) && pos < (size + pad_end) as i64;
            (pos, in_input, in_padded)
        })
        .collect()
}

fn out_dims(shape: [usize; 4], p: &Pool2dParams) -> [usize; 4] {
    let [n, c, h, w] = shape;
    let [pt, pl, pb, pr] = p.padding;
    let ho = window_count(
        h,
        pt,
        pb,
        p.kernel[0],
        p.stride[0],
        p.dilation[0],
        p.ceil_mode,
    );
    let wo = window_count(
        w,
        pl,
        pr,
        p.kernel[1],
        p.stride[1],
        p.dilation[1],
        p.ceil_mode,
    );
    [n, c, ho, wo]
}

/// Max pooling with each window's arg-max (flat index `ih * W + iw` within the plane, `None`
/// when the window holds no input position; its max is then -inf). Ties go to the first
/// maximum in row-major window order; NaN propagates (the first NaN wins).
///
/// `x` must hold the `shape` (N, C, H, W) elements, and `p` must be valid for it.
pub fn max_pool2d_with_indices(
    x: &[f64],
    shape: [usize; 4],
    p: &Pool2dParams,
) -> (Vec<f64>, Vec<Option<usize>>, [usize; 4]) {
    let [n, c, h, w] = shape;
    let out = out_dims(shape, p);
    let [_, _, ho, wo] = out;
    let [pt, pl, pb, pr] = p.padding;
    let mut y = Vec::with_capacity(n * c * ho * wo);
    let mut idx = Vec::with_capacity(n * c * ho * wo);
    for plane in 0..n * c {
        let img = &x[plane * h * w..(plane + 1) * h * w];
        for oh in 0..ho {
            let rows = taps(oh, h, pt, pb, p.kernel[0], p.stride[0], p.dilation[0]);
            for ow in 0..wo {
                let cols = taps(ow, w, pl, pr, p.kernel[1], p.stride[1], p.dilation[1]);
                let mut best = f64::NEG_INFINITY;
                let mut arg: Option<usize> = None;
                for &(ih, row_in, _) in &rows {
                    for &(iw, col_in, _) in &cols {
                        if !(row_in && col_in) {
                            continue;
                        }
                        let k = ih as usize * w + iw as usize;
                        let v = img[k];
                        if arg.is_none() || v > best || (v.is_nan() && !best.is_nan()) {
                            best = v;
                            arg = Some(k);
                        }
                    }
                }
                y.push(best);
                idx.push(arg);
            }
        }
    }
    (y, idx, out)
}

/// Max pooling of an (N, C, H, W) image; returns the output and its shape. Padded positions
/// never win.
pub fn max_pool2d(x: &[f64], shape: [usize; 4], p: &Pool2dParams) -> (Vec<f64>, [usize; 4]) {
    let (y, _, out) = max_pool2d_with_indices(x, shape, p);
    (y, out)
}

/// Average pooling of an (N, C, H, W) image; returns the output and its shape. The divisor
/// counts the taps inside the padded extent with `count_include_pad` (taps past it, which
/// only `ceil_mode` creates, never count), else the taps inside the input (0 / 0 = NaN for a
/// window of padding only).
pub fn avg_pool2d(x: &[f64], shape: [usize; 4], p: &Pool2dParams) -> (Vec<f64>, [usize; 4]) {
    let [n, c, h, w] = shape;
    let out = out_dims(shape, p);
    let [_, _, ho, wo] = out;
    let [pt, pl, pb, pr] = p.padding;
    let mut y = Vec::with_capacity(n * c * ho * wo);
    for plane in 0..n * c {
        let img = &x[plane * h * w..(plane + 1) * h * w];
        for oh in 0..ho {
            let rows = taps(oh, h, pt, pb, p.kernel[0], p.stride[0], p.dilation[0]);
            for ow in 0..wo {
                let cols = taps(ow, w, pl, pr, p.kernel[1], p.stride[1], p.dilation[1]);
                let mut sum = 0.0;
                let mut count = 0usize;
                for &(ih, row_in, row_pad) in &rows {
                    for &(iw, col_in, col_pad) in &cols {
                        if row_in && col_in {
                            sum += img[ih as usize * w + iw as usize];
                        }
                        let counted = if p.count_include_pad {
                            row_pad && col_pad
                        } else {
                            row_in && col_in
                        };
                        count += usize::from(counted);
                    }
                }
                y.push(sum / count as f64);
            }
        }
    }
    (y, out)
}

/// Global average pooling: the mean of every (n, c) plane; returns the output and its shape
/// (N, C, 1, 1).
pub fn global_avg_pool2d(x: &[f64], shape: [usize; 4]) -> (Vec<f64>, [usize; 4]) {
    let [n, c, h, w] = shape;
    let y = (0..n * c)
        .map(|plane| x[plane * h * w..(plane + 1) * h * w].iter().sum::<f64>() / (h * w) as f64)
        .collect();
    (y, [n, c, 1, 1])
}
