//! Reverse-mode autodiff: every differentiable op's gradient against central finite
//! differences of an f64 reference, broadcasting reductions, accumulation, no-grad mode, and
//! the whole forward + backward realized in one submission.

use crate::common;

use common::{assert_close, ctx, f64s, fd_vjp, Rng};
use kiln::autograd::{grad, no_grad};
use kiln::reference::elementwise::{binary_value, unary_value};
use kiln::shape::{broadcast_shape, broadcast_strides, numel, strides};
use kiln::{BinaryOp, Tensor, UnaryOp};

const ATOL: f64 = 2e-4;
const RTOL: f64 = 2e-3;

fn leaf(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(ctx(), v, shape).unwrap().with_grad()
}

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

fn bcast_f64(op: BinaryOp, a: &[f64], sa: &[usize], b: &[f64], sb: &[usize]) -> Vec<f64> {
    let out = broadcast_shape("test", sa, sb).unwrap();
    let (ta, tb) = (broadcast_strides(sa, &out), broadcast_strides(sb, &out));
    (0..numel(&out))
        .map(|i| {
            let (mut rem, mut ia, mut ib) = (i, 0, 0);
            for d in (0..out.len()).rev() {
                let c = rem % out[d];
                rem /= out[d];
                ia += c * ta[d];
                ib += c * tb[d];
            }
            binary_value(op, a[ia], b[ib])
        })
        .collect()
}

#[test]
fn unary_gradients_match_finite_differences() {
    let mut rng = Rng::new(11);
    for op in UnaryOp::ALL {
        let (lo, hi) = match op {
            UnaryOp::Log | UnaryOp::Sqrt => (0.2, 3.0),
            UnaryOp::Recip => (0.5, 2.0),
            _ => (-2.5, 2.5),
        };
        // Keep away from the kinks of abs and relu.
        let x: Vec<f32> = rng
            .uniform_vec(37, lo, hi)
            .into_iter()
            .map(|v| if v.abs() < 0.05 { v + 0.1 } else { v })
            .collect();
        let dy = rng.uniform_vec(37, -1.0, 1.0);
        let t = leaf(&x, &[37]);
        let got = &vjp(&t.unary(op).unwrap(), &dy, &[&t])[0];
        let want = &fd_vjp(
            |xs| xs[0].iter().map(|&v| unary_value(op, v)).collect(),
            &[f64s(&x)],
            &f64s(&dy),
            1e-6,
        )[0];
        assert_close(&format!("d{op:?}"), got, want, ATOL, RTOL);
    }
}

#[test]
fn binary_gradients_reduce_over_broadcast_dims() {
    let mut rng = Rng::new(12);
    let (sa, sb) = ([3usize, 1, 5], [4usize, 1]);
    let out = broadcast_shape("test", &sa, &sb).unwrap();
    for op in BinaryOp::ALL {
        let (a, b) = match op {
            BinaryOp::Pow => (rng.uniform_vec(15, 0.5, 2.0), rng.uniform_vec(4, -1.5, 1.5)),
            BinaryOp::Div => (rng.uniform_vec(15, -2.0, 2.0), rng.uniform_vec(4, 0.5, 2.0)),
            _ => (
                rng.uniform_vec(15, -2.0, 2.0),
                rng.uniform_vec(4, -2.0, 2.0),
            ),
        };
        let dy = rng.uniform_vec(numel(&out), -1.0, 1.0);
        let (ta, tb) = (leaf(&a, &sa), leaf(&b, &sb));
        let got = vjp(&ta.binary(op, &tb).unwrap(), &dy, &[&ta, &tb]);
        let want = fd_vjp(
            |xs| bcast_f64(op, &xs[0], &sa, &xs[1], &sb),
            &[f64s(&a), f64s(&b)],
            &f64s(&dy),
            1e-6,
        );
        assert_close(&format!("d{op:?}/da"), &got[0], &want[0], ATOL, RTOL);
        assert_close(&format!("d{op:?}/db"), &got[1], &want[1], ATOL, RTOL);
    }
}

#[test]
fn scalar_op_gradients_match_finite_differences_in_both_orders() {
    let mut rng = Rng::new(13);
    let s = 1.3f32;
    for op in BinaryOp::ALL {
        for first in [false, true] {
            let x = rng.uniform_vec(23, 0.4, 2.5);
            let dy = rng.uniform_vec(23, -1.0, 1.0);
            let t = leaf(&x, &[23]);
            let got = &vjp(&t.scalar_op(op, s, first).unwrap(), &dy, &[&t])[0];
            let want = &fd_vjp(
                |xs| {
                    xs[0]
                        .iter()
                        .map(|&v| {
                            if first {
                                binary_value(op, f64::from(s), v)
                            } else {
                                binary_value(op, v, f64::from(s))
                            }
                        })
                        .collect()
                },
                &[f64s(&x)],
                &f64s(&dy),
                1e-6,
            )[0];
            assert_close(
                &format!("d{op:?} scalar first={first}"),
                got,
                want,
                ATOL,
                RTOL,
            );
        }
    }
}

/// f64 batched matmul with NumPy broadcasting over batch dims and optional transposes.
fn matmul_f64(a: &[f64], sa: &[usize], b: &[f64], sb: &[usize], ta: bool, tb: bool) -> Vec<f64> {
    let (ra, rb) = (sa.len(), sb.len());
    let (m, k) = if ta {
        (sa[ra - 1], sa[ra - 2])
    } else {
        (sa[ra - 2], sa[ra - 1])
    };
    let n = if tb { sb[rb - 2] } else { sb[rb - 1] };
    let batch = broadcast_shape("test", &sa[..ra - 2], &sb[..rb - 2]).unwrap();
    let (ba, bb) = (
        broadcast_strides(&sa[..ra - 2], &batch),
        broadcast_strides(&sb[..rb - 2], &batch),
    );
    let (sza, szb) = (sa[ra - 2] * sa[ra - 1], sb[rb - 2] * sb[rb - 1]);
    let mut out = Vec::new();
    for bi in 0..numel(&batch) {
        let (mut rem, mut oa, mut ob) = (bi, 0, 0);
        for d in (0..batch.len()).rev() {
            let c = rem % batch[d];
            rem /= batch[d];
            oa += c * ba[d];
            ob += c * bb[d];
        }
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0;
                for p in 0..k {
                    let av = if ta {
                        a[oa * sza + p * m + i]
                    } else {
                        a[oa * sza + i * k + p]
                    };
                    let bv = if tb {
                        b[ob * szb + j * k + p]
                    } else {
                        b[ob * szb + p * n + j]
                    };
                    acc += av * bv;
                }
                out.push(acc);
            }
        }
    }
    out
}

#[test]
fn matmul_gradients_match_finite_differences_for_every_transpose_and_broadcast() {
    let mut rng = Rng::new(14);
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let (m, k, n) = (3, 5, 4);
        let sa = if ta {
            vec![2, 1, k, m]
        } else {
            vec![2, 1, m, k]
        };
        let sb = if tb { vec![3, n, k] } else { vec![3, k, n] };
        let a = rng.uniform_vec(numel(&sa), -1.0, 1.0);
        let b = rng.uniform_vec(numel(&sb), -1.0, 1.0);
        let dy = rng.uniform_vec(2 * 3 * m * n, -1.0, 1.0);
        let (ta_t, tb_t) = (leaf(&a, &sa), leaf(&b, &sb));
        let y = ta_t.matmul_t(&tb_t, ta, tb).unwrap();
        assert_eq!(y.shape(), &[2, 3, m, n]);
        let got = vjp(&y, &dy, &[&ta_t, &tb_t]);
        let want = fd_vjp(
            |xs| matmul_f64(&xs[0], &sa, &xs[1], &sb, ta, tb),
            &[f64s(&a), f64s(&b)],
            &f64s(&dy),
            1e-6,
        );
        assert_close(
            &format!("matmul dA ta={ta} tb={tb}"),
            &got[0],
            &want[0],
            ATOL,
            RTOL,
        );
        assert_close(
            &format!("matmul dB ta={ta} tb={tb}"),
            &got[1],
            &want[1],
            ATOL,
            RTOL,
        );
    }
}

#[test]
fn matmul_gradients_flow_through_vector_operands() {
    let mut rng = Rng::new(15);
    let a = rng.uniform_vec(6, -1.0, 1.0);
    let b = rng.uniform_vec(6 * 4, -1.0, 1.0);
    let dy = rng.uniform_vec(4, -1.0, 1.0);
    let (ta, tb) = (leaf(&a, &[6]), leaf(&b, &[6, 4]));
    let got = vjp(&ta.matmul(&tb).unwrap(), &dy, &[&ta, &tb]);
    let want = fd_vjp(
        |xs| matmul_f64(&xs[0], &[1, 6], &xs[1], &[6, 4], false, false),
        &[f64s(&a), f64s(&b)],
        &f64s(&dy),
        1e-6,
    );
    assert_close("vec dA", &got[0], &want[0], ATOL, RTOL);
    assert_close("vec dB", &got[1], &want[1], ATOL, RTOL);
}

/// f64 reduction over `axes` (kept as size 1), by op.
fn reduce_f64(op: &str, x: &[f64], shape: &[usize], axes: &[usize]) -> Vec<f64> {
    let keep: Vec<usize> = (0..shape.len())
        .map(|d| if axes.contains(&d) { 1 } else { shape[d] })
        .collect();
    let ks = strides(&keep);
    let mut acc: Vec<Vec<f64>> = vec![Vec::new(); numel(&keep)];
    for (i, &v) in x.iter().enumerate() {
        let (mut rem, mut o) = (i, 0);
        for d in (0..shape.len()).rev() {
            let c = rem % shape[d];
            rem /= shape[d];
            if !axes.contains(&d) {
                o += c * ks[d];
            }
        }
        acc[o].push(v);
    }
    acc.iter()
        .map(|vs| match op {
            "sum" => vs.iter().sum(),
            "mean" => vs.iter().sum::<f64>() / vs.len() as f64,
            "max" => vs.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            _ => vs.iter().cloned().fold(f64::INFINITY, f64::min),
        })
        .collect()
}

#[test]
fn reduction_gradients_match_finite_differences() {
    let mut rng = Rng::new(16);
    let shape = [3usize, 4, 5];
    for op in ["sum", "mean", "max", "min"] {
        for axes in [vec![1usize], vec![0, 2], vec![0, 1, 2]] {
            let x = rng.uniform_vec(60, -3.0, 3.0); // distinct values: no ties
            let out_n = numel(&shape) / axes.iter().map(|&a| shape[a]).product::<usize>();
            let dy = rng.uniform_vec(out_n, -1.0, 1.0);
            let t = leaf(&x, &shape);
            let ax: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
            let y = match op {
                "sum" => t.sum(&ax, false),
                "mean" => t.mean(&ax, false),
                "max" => t.max(&ax, false),
                _ => t.min(&ax, false),
            }
            .unwrap();
            let got = &vjp(&y, &dy, &[&t])[0];
            let want = &fd_vjp(
                |xs| reduce_f64(op, &xs[0], &shape, &axes),
                &[f64s(&x)],
                &f64s(&dy),
                1e-7,
            )[0];
            assert_close(&format!("d{op} over {axes:?}"), got, want, ATOL, RTOL);
        }
    }
}

#[test]
fn max_gradient_is_split_evenly_between_ties() {
    let t = leaf(&[1.0, 3.0, 3.0, 2.0], &[4]);
    let g = &vjp(&t.max(&[0], false).unwrap(), &[1.0], &[&t])[0];
    assert_eq!(g, &vec![0.0, 0.5, 0.5, 0.0]);
}

#[test]
fn permute_reshape_and_broadcast_gradients_route_values_back() {
    let mut rng = Rng::new(17);
    let x = rng.uniform_vec(24, -1.0, 1.0);
    let t = leaf(&x, &[2, 3, 4]);
    let y = t
        .permute(&[2, 0, 1])
        .unwrap()
        .reshape(&[4, 6])
        .unwrap()
        .reshape(&[4, 1, 6])
        .unwrap()
        .broadcast_to(&[4, 3, 6])
        .unwrap();
    let dy = rng.uniform_vec(72, -1.0, 1.0);
    let got = &vjp(&y, &dy, &[&t])[0];
    // y[a, r, b*3 + c] = x[b, c, a] for every r, so dx[b, c, a] = Σ_r dy[a, r, b*3 + c].
    let mut want = vec![0.0f64; 24];
    for a in 0..4 {
        for r in 0..3 {
            for b in 0..2 {
                for c in 0..3 {
                    want[b * 12 + c * 4 + a] += f64::from(dy[a * 18 + r * 6 + b * 3 + c]);
                }
            }
        }
    }
    assert_close("permute/reshape/broadcast", got, &want, 1e-6, 1e-6);
}

#[test]
fn a_small_network_gets_the_gradients_of_its_f64_reference() {
    let mut rng = Rng::new(18);
    let (n, d, h) = (5, 4, 3);
    let x = rng.uniform_vec(n * d, -1.0, 1.0);
    let w = rng.uniform_vec(d * h, -1.0, 1.0);
    let b = rng.uniform_vec(h, -0.5, 0.5);
    let target = rng.uniform_vec(n * h, -1.0, 1.0);
    let (tx, tw, tb) = (leaf(&x, &[n, d]), leaf(&w, &[d, h]), leaf(&b, &[h]));
    let tt = Tensor::from_slice(ctx(), &target, &[n, h]).unwrap();
    let loss = tx
        .matmul(&tw)
        .unwrap()
        .add(&tb)
        .unwrap()
        .tanh()
        .unwrap()
        .sub(&tt)
        .unwrap()
        .square()
        .unwrap()
        .mean_all()
        .unwrap();
    let got = vjp(&loss, &[1.0], &[&tx, &tw, &tb]);
    let reference = |xs: &[Vec<f64>]| -> Vec<f64> {
        let z = matmul_f64(&xs[0], &[n, d], &xs[1], &[d, h], false, false);
        let mut total = 0.0;
        for i in 0..n {
            for j in 0..h {
                let v = (z[i * h + j] + xs[2][j]).tanh() - f64::from(target[i * h + j]);
                total += v * v;
            }
        }
        vec![total / (n * h) as f64]
    };
    let want = fd_vjp(reference, &[f64s(&x), f64s(&w), f64s(&b)], &[1.0], 1e-6);
    for (k, name) in ["dx", "dW", "db"].iter().enumerate() {
        assert_close(name, &got[k], &want[k], 1e-5, RTOL);
    }
}

#[test]
fn backward_accumulates_into_leaves_until_zeroed() {
    let w = leaf(&[1.0, 2.0, 3.0], &[3]);
    let loss = w.square().unwrap().sum_all().unwrap();
    loss.backward().unwrap();
    loss.backward().unwrap();
    assert_eq!(
        w.grad().unwrap().to_vec::<f32>().unwrap(),
        vec![4.0, 8.0, 12.0]
    );
    w.zero_grad();
    assert!(w.grad().is_none());
    let err = w.square().unwrap().backward().unwrap_err().to_string();
    assert!(err.contains("backward") && err.contains("[3]"), "{err}");
}

#[test]
fn no_grad_records_nothing_and_detach_cuts_the_graph() {
    let w = leaf(&[1.0, 2.0], &[2]);
    let y = no_grad(|| w.exp().unwrap());
    assert!(!y.requires_grad());
    assert!(w.exp().unwrap().requires_grad());
    assert!(!w.exp().unwrap().detach().requires_grad());
    assert!(kiln::autograd::is_grad_enabled());
}

#[test]
fn gradients_with_respect_to_an_intermediate_tensor() {
    let x = leaf(&[0.5, -1.0, 2.0], &[3]);
    let h = x.mul_scalar(3.0).unwrap();
    let y = h.square().unwrap();
    let u = Tensor::from_slice(ctx(), &[1.0f32, 1.0, 1.0], &[3]).unwrap();
    let g = grad(&[&y], &[&u], &[&h, &x]).unwrap();
    let gh = g[0].as_ref().unwrap().to_vec::<f32>().unwrap();
    let gx = g[1].as_ref().unwrap().to_vec::<f32>().unwrap();
    assert_eq!(gh, vec![3.0, -6.0, 12.0]);
    assert_eq!(gx, vec![9.0, -18.0, 36.0]);
}

#[test]
fn forward_and_backward_realize_in_one_submission() {
    // Its own context: other tests in this binary realize on the shared one concurrently.
    let own = kiln::Context::new().unwrap();
    let ctx = &own;
    let mut rng = Rng::new(19);
    let w = Tensor::from_slice(ctx, &rng.uniform_vec(64 * 32, -1.0, 1.0), &[64, 32])
        .unwrap()
        .with_grad();
    let x = Tensor::from_slice(ctx, &rng.uniform_vec(16 * 64, -1.0, 1.0), &[16, 64]).unwrap();
    let loss = x.matmul(&w).unwrap().relu().unwrap().mean_all().unwrap();
    let one = Tensor::ones(ctx, &[]).unwrap();
    let gw = grad(&[&loss], &[&one], &[&w]).unwrap().remove(0).unwrap();
    ctx.synchronize().unwrap();
    let before = ctx.memory_stats();
    ctx.realize(&[&loss, &gw]).unwrap();
    let after = ctx.memory_stats();
    assert_eq!(after.realizations - before.realizations, 1);
    assert_eq!(after.submissions - before.submissions, 1);
}
