//! References for the comparison, selection and indexing primitives: compare, where, clamp,
//! argmax/argmin, concat, slice, gather, gather_elements, scatter_add and cumsum. Inputs are
//! f64 (so finite differences can run through them), indices i32, shapes row-major.

use crate::shape::{broadcast_strides, numel, strides};

/// The coordinates of flat index `i` in `shape`.
fn coords(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut c = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        c[d] = i % shape[d];
        i /= shape[d];
    }
    c
}

/// The flat index of coordinates `c` read through `strides`.
fn at(c: &[usize], strides: &[usize]) -> usize {
    c.iter().zip(strides).map(|(a, b)| a * b).sum()
}

/// 1.0 where `holds(a, b)`, else 0.0, with NumPy broadcasting to `out`.
pub fn compare(
    holds: impl Fn(f64, f64) -> bool,
    a: &[f64],
    a_shape: &[usize],
    b: &[f64],
    b_shape: &[usize],
    out: &[usize],
) -> Vec<f64> {
    let (sa, sb) = (
        broadcast_strides(a_shape, out),
        broadcast_strides(b_shape, out),
    );
    (0..numel(out))
        .map(|i| {
            let c = coords(i, out);
            f64::from(u8::from(holds(a[at(&c, &sa)], b[at(&c, &sb)])))
        })
        .collect()
}

/// `a` where `cond` is nonzero, else `b`; all three broadcast to `out`.
pub fn where_select(
    cond: (&[f64], &[usize]),
    a: (&[f64], &[usize]),
    b: (&[f64], &[usize]),
    out: &[usize],
) -> Vec<f64> {
    let sc = broadcast_strides(cond.1, out);
    let sa = broadcast_strides(a.1, out);
    let sb = broadcast_strides(b.1, out);
    (0..numel(out))
        .map(|i| {
            let c = coords(i, out);
            if cond.0[at(&c, &sc)] != 0.0 {
                a.0[at(&c, &sa)]
            } else {
                b.0[at(&c, &sb)]
            }
        })
        .collect()
}

/// Each value limited to `[lo, hi]`; NaN stays NaN.
pub fn clamp(x: &[f64], lo: f64, hi: f64) -> Vec<f64> {
    x.iter()
        .map(|&v| {
            if v < lo {
                lo
            } else if v > hi {
                hi
            } else {
                v
            }
        })
        .collect()
}

/// The index of the largest (`max`) or smallest value along `axis`, for every position of the
/// other axes (row-major, the axis removed). Ties pick the first index; the first NaN wins.
pub fn arg_reduce(x: &[f64], shape: &[usize], axis: usize, max: bool) -> Vec<i32> {
    let outer: usize = shape[..axis].iter().product();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for r in 0..inner {
            let v = |k: usize| x[(o * n + k) * inner + r];
            let mut best = 0;
            for k in 1..n {
                if v(best).is_nan() {
                    break;
                }
                let better = if max { v(k) > v(best) } else { v(k) < v(best) };
                if better || v(k).is_nan() {
                    best = k;
                }
            }
            out.push(best as i32);
        }
    }
    out
}

/// `parts` (values, shape) joined along `axis`; returns the values and the joined shape.
pub fn concat(parts: &[(&[f64], &[usize])], axis: usize) -> (Vec<f64>, Vec<usize>) {
    let mut shape = parts[0].1.to_vec();
    shape[axis] = parts.iter().map(|p| p.1[axis]).sum();
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out = Vec::with_capacity(numel(&shape));
    for o in 0..outer {
        for (values, s) in parts {
            let block = s[axis] * inner;
            out.extend_from_slice(&values[o * block..(o + 1) * block]);
        }
    }
    (out, shape)
}

/// The indices ONNX Slice takes from an axis of size `dim` for (start, end, step): negative
/// start and end count from the end, then they are clamped; the walk stops before `end`.
pub fn slice_indices(dim: usize, start: i64, end: i64, step: i64) -> Vec<usize> {
    let d = dim as i64;
    let wrap = |v: i64| if v < 0 { v + d } else { v };
    let (mut i, end) = (wrap(start), wrap(end));
    let mut out = Vec::new();
    if step > 0 {
        i = i.clamp(0, d);
        while i < end.min(d) {
            out.push(i as usize);
            i += step;
        }
    } else if d > 0 {
        i = i.clamp(0, d - 1);
        while i > end.max(-1) {
            out.push(i as usize);
            i += step;
        }
    }
    out
}

/// ONNX Slice of `x` (`shape`) along `axes` (non-negative); returns values and shape.
pub fn slice(
    x: &[f64],
    shape: &[usize],
    axes: &[usize],
    starts: &[i64],
    ends: &[i64],
    steps: &[i64],
) -> (Vec<f64>, Vec<usize>) {
    let mut taken: Vec<Vec<usize>> = shape.iter().map(|&n| (0..n).collect()).collect();
    for (k, &a) in axes.iter().enumerate() {
        taken[a] = slice_indices(shape[a], starts[k], ends[k], steps[k]);
    }
    let out_shape: Vec<usize> = taken.iter().map(Vec::len).collect();
    let st = strides(shape);
    let values = (0..numel(&out_shape))
        .map(|i| {
            let c = coords(i, &out_shape);
            let src: Vec<usize> = c.iter().enumerate().map(|(d, &k)| taken[d][k]).collect();
            x[at(&src, &st)]
        })
        .collect();
    (values, out_shape)
}

/// `j` counted from the end when negative; `None` outside `[-n, n)`.
fn resolve(j: i32, n: usize) -> Option<usize> {
    let j = i64::from(j);
    let j = if j < 0 { j + n as i64 } else { j };
    (0..n as i64).contains(&j).then_some(j as usize)
}

/// ONNX Gather along `axis`: shape `shape[..axis] + idx_shape + shape[axis + 1..]`.
/// Out-of-range indices read 0 (as the kernel does).
pub fn gather(x: &[f64], shape: &[usize], idx: &[i32], axis: usize) -> Vec<f64> {
    let outer: usize = shape[..axis].iter().product();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &j in idx {
            for r in 0..inner {
                out.push(resolve(j, n).map_or(0.0, |j| x[(o * n + j) * inner + r]));
            }
        }
    }
    out
}

/// ONNX GatherElements along `axis`: the output has `idx_shape`. Out-of-range indices read 0.
pub fn gather_elements(
    x: &[f64],
    shape: &[usize],
    idx: &[i32],
    idx_shape: &[usize],
    axis: usize,
) -> Vec<f64> {
    let st = strides(shape);
    (0..numel(idx_shape))
        .map(|i| {
            let mut c = coords(i, idx_shape);
            match resolve(idx[i], shape[axis]) {
                Some(j) => {
                    c[axis] = j;
                    x[at(&c, &st)]
                }
                None => 0.0,
            }
        })
        .collect()
}

/// ONNX ScatterElements with reduction "add": a copy of `x` with `upd[c]` added at `c` with
/// `c[axis] = idx[c]`, for every position `c` of `upd_shape`. Out-of-range indices add nothing.
pub fn scatter_add(
    x: &[f64],
    shape: &[usize],
    idx: &[i32],
    upd: &[f64],
    upd_shape: &[usize],
    axis: usize,
) -> Vec<f64> {
    let st = strides(shape);
    let mut out = x.to_vec();
    for (i, &u) in upd.iter().enumerate() {
        let mut c = coords(i, upd_shape);
        if let Some(j) = resolve(idx[i], shape[axis]) {
            c[axis] = j;
            out[at(&c, &st)] += u;
        }
    }
    out
}

/// ONNX CumSum along `axis` with its `exclusive` and `reverse` attributes.
pub fn cumsum(x: &[f64], shape: &[usize], axis: usize, exclusive: bool, reverse: bool) -> Vec<f64> {
    let outer: usize = shape[..axis].iter().product();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out = vec![0.0; x.len()];
    for o in 0..outer {
        for r in 0..inner {
            let mut acc = 0.0;
            for t in 0..n {
                let k = if reverse { n - 1 - t } else { t };
                let i = (o * n + k) * inner + r;
                if exclusive {
                    out[i] = acc;
                    acc += x[i];
                } else {
                    acc += x[i];
                    out[i] = acc;
                }
            }
        }
    }
    out
}
