//! Elementwise fusion: chains of unary, binary and scalar ops (and their backward kernels) run
//! as generated kernels that give the f64 reference's values and the unfused values, split where
//! WebGPU's limits or the per-kernel op cap require, keep held intermediates, and cut dispatches.
//!
//! Tests that read counters open their own context so parallel tests cannot disturb them.

use crate::common;

use common::{assert_close, f64s, fd_vjp, Rng, RngExt};
use kiln::executor::FUSION_MAX_OPS;
use kiln::reference::elementwise::{binary_value, unary_value};
use kiln::{BinaryOp, Context, Tensor, UnaryOp};

fn own_ctx(fusion: bool) -> Context {
    let ctx =
        Context::new().unwrap_or_else(|e| panic!("*** NO GPU ADAPTER (not skipped) ***: {e}"));
    kiln::testing::set_poison_outputs(&ctx, true);
    kiln::testing::set_fusion(&ctx, fusion);
    ctx
}

/// One step of a random chain: how it changes the accumulator, on the GPU and in f64.
#[derive(Clone, Copy, Debug)]
enum Op {
    Unary(UnaryOp),
    /// `acc OP s`, or `s OP acc` when the flag is set.
    Scalar(BinaryOp, f32, bool),
    /// `acc OP input[k]`, or `input[k] OP acc` when the flag is set.
    Binary(BinaryOp, usize, bool),
}

fn random_chain(rng: &mut Rng, len: usize, inputs: usize) -> Vec<Op> {
    use BinaryOp as B;
    use UnaryOp as U;
    let mut ops = Vec::with_capacity(len);
    for k in 0..len {
        // Every fourth op squashes the accumulator so exp, square and pow stay finite.
        if k % 4 == 3 {
            ops.push(Op::Unary(if rng.next_u64().is_multiple_of(2) {
                U::Tanh
            } else {
                U::Sin
            }));
            continue;
        }
        let r = rng.next_u64() % 16;
        let s = rng.uniform(-1.5, 1.5);
        let first = rng.next_u64().is_multiple_of(2);
        let input = (rng.next_u64() % inputs as u64) as usize;
        ops.push(match r {
            0 => Op::Unary(U::Sigmoid),
            1 => Op::Unary(U::Cos),
            2 => Op::Unary(U::Abs),
            3 => Op::Unary(U::Neg),
            4 => Op::Unary(U::Relu),
            5 => Op::Unary(U::Square),
            6 => Op::Unary(U::Exp),
            7 => Op::Scalar(B::Mul, s, first),
            8 => Op::Scalar(B::Add, s, first),
            9 => Op::Scalar(B::Sub, s, first),
            10 => Op::Scalar(B::Max, s, first),
            11 => Op::Binary(B::Add, input, first),
            12 => Op::Binary(B::Sub, input, first),
            13 => Op::Binary(B::Mul, input, first),
            14 => Op::Binary(B::Min, input, first),
            _ => Op::Binary(B::Max, input, first),
        });
    }
    ops
}

fn run_chain(x: &Tensor, inputs: &[Tensor], ops: &[Op]) -> Tensor {
    let mut acc = x.clone();
    for op in ops {
        acc = match *op {
            Op::Unary(u) => acc.unary(u),
            Op::Scalar(b, s, first) => acc.scalar_op(b, s, first),
            Op::Binary(b, k, false) => acc.binary(b, &inputs[k]),
            Op::Binary(b, k, true) => inputs[k].binary(b, &acc),
        }
        .unwrap();
    }
    acc
}

fn reference_chain(x: &[f32], inputs: &[Vec<f32>], ops: &[Op]) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let mut acc = f64::from(x[i]);
            for op in ops {
                acc = match *op {
                    Op::Unary(u) => unary_value(u, acc),
                    Op::Scalar(b, s, false) => binary_value(b, acc, f64::from(s)),
                    Op::Scalar(b, s, true) => binary_value(b, f64::from(s), acc),
                    Op::Binary(b, k, false) => binary_value(b, acc, f64::from(inputs[k][i])),
                    Op::Binary(b, k, true) => binary_value(b, f64::from(inputs[k][i]), acc),
                };
            }
            acc
        })
        .collect()
}

#[test]
fn random_mixed_chains_match_the_f64_reference_and_the_unfused_result() {
    let fused = own_ctx(true);
    let unfused = own_ctx(false);
    for (seed, n, len) in [
        (1u64, 1000usize, 60usize),
        (2, 1, 25),
        (3, 257, 120),
        (4, 4099, 9),
    ] {
        let mut rng = Rng::new(seed);
        let xv = rng.vec(n, -1.0, 1.0);
        let inv: Vec<Vec<f32>> = (0..3).map(|_| rng.uniform_vec(n, -1.0, 1.0)).collect();
        let ops = random_chain(&mut rng, len, inv.len());
        let want = reference_chain(&xv, &inv, &ops);
        let mut results = Vec::new();
        for ctx in [&fused, &unfused] {
            let x = Tensor::from_slice(ctx, &xv, &[n]).unwrap();
            let inputs: Vec<Tensor> = inv
                .iter()
                .map(|v| Tensor::from_slice(ctx, v, &[n]).unwrap())
                .collect();
            let before = ctx.memory_stats();
            let y = run_chain(&x, &inputs, &ops);
            y.realize().unwrap();
            let dispatches = ctx.memory_stats().dispatches - before.dispatches;
            let got = y.to_vec::<f32>().unwrap();
            assert_close(
                &format!("chain seed {seed} n {n} fusion {}", ctx.fusion()),
                &got,
                &want,
                1e-4,
                1e-4,
            );
            results.push((got, dispatches));
        }
        let (f, u) = (&results[0], &results[1]);
        assert_eq!(u.1, len as u64, "unfused runs one dispatch per op");
        assert_eq!(
            f.1,
            len.div_ceil(FUSION_MAX_OPS) as u64,
            "a chain of {len} ops"
        );
        assert_close("fused vs unfused", &f.0, &f64s(&u.0), 1e-6, 1e-5);
    }
}

#[test]
fn a_chain_longer_than_the_per_kernel_cap_is_split_and_still_correct() {
    let ctx = own_ctx(true);
    let n = 1031;
    let ops = 2 * FUSION_MAX_OPS + 5;
    let mut rng = Rng::new(10);
    let xv = rng.uniform_vec(n, -1.0, 1.0);
    let yv = rng.uniform_vec(n, -1e-2, 1e-2);
    let x = Tensor::from_slice(&ctx, &xv, &[n]).unwrap();
    let y = Tensor::from_slice(&ctx, &yv, &[n]).unwrap();
    ctx.synchronize().unwrap();
    let before = ctx.memory_stats();
    let mut acc = x.clone();
    for _ in 0..ops {
        acc = acc.add(&y).unwrap();
    }
    acc.realize().unwrap();
    let after = ctx.memory_stats();
    assert_eq!(after.dispatches - before.dispatches, 3);
    assert_eq!(after.last_dispatches, 3);
    assert_eq!(after.fused_kernels - before.fused_kernels, 3);
    assert_eq!(after.fused_ops - before.fused_ops, ops as u64);
    let want: Vec<f64> = xv
        .iter()
        .zip(&yv)
        .map(|(&a, &b)| {
            let mut acc = f64::from(a);
            for _ in 0..ops {
                acc += f64::from(b);
            }
            acc
        })
        .collect();
    assert_close(
        "long chain",
        &acc.to_vec::<f32>().unwrap(),
        &want,
        1e-4,
        1e-5,
    );
}

#[test]
fn groups_needing_more_than_seven_inputs_are_split() {
    let ctx = own_ctx(true);
    let n = 300;
    let mut rng = Rng::new(20);
    let vals: Vec<Vec<f32>> = (0..16).map(|_| rng.uniform_vec(n, -1.0, 1.0)).collect();
    let xs: Vec<Tensor> = vals
        .iter()
        .map(|v| Tensor::from_slice(&ctx, v, &[n]).unwrap())
        .collect();
    ctx.synchronize().unwrap();

    // A chain reading 12 distinct buffers: 7 fit in the first kernel, the rest in a second.
    let before = ctx.memory_stats();
    let mut acc = xs[0].clone();
    for (k, x) in xs.iter().enumerate().take(12).skip(1) {
        acc = match k % 3 {
            0 => acc.add(x),
            1 => acc.mul(x),
            _ => acc.sub(x),
        }
        .unwrap()
        .tanh()
        .unwrap();
    }
    acc.realize().unwrap();
    assert_eq!(ctx.memory_stats().dispatches - before.dispatches, 2);
    let want: Vec<f64> = (0..n)
        .map(|i| {
            let mut acc = f64::from(vals[0][i]);
            for (k, v) in vals.iter().enumerate().take(12).skip(1) {
                let x = f64::from(v[i]);
                acc = match k % 3 {
                    0 => acc + x,
                    1 => acc * x,
                    _ => acc - x,
                }
                .tanh();
            }
            acc
        })
        .collect();
    assert_close(
        "12-input chain",
        &acc.to_vec::<f32>().unwrap(),
        &want,
        1e-5,
        1e-5,
    );

    // A balanced tree over 16 inputs, the same input read twice at each leaf pair's right.
    let before = ctx.memory_stats();
    let mut level: Vec<Tensor> = xs
        .iter()
        .map(|x| x.mul(x).unwrap().add(x).unwrap())
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| p[0].sub(&p[1]).unwrap().sin().unwrap())
            .collect();
    }
    let root = &level[0];
    root.realize().unwrap();
    let dispatches = ctx.memory_stats().dispatches - before.dispatches;
    assert!(
        (3..=8).contains(&dispatches),
        "{dispatches} dispatches for a 16-input tree of 62 ops"
    );
    let want: Vec<f64> = (0..n)
        .map(|i| {
            let mut level: Vec<f64> = vals
                .iter()
                .map(|v| {
                    let x = f64::from(v[i]);
                    x * x + x
                })
                .collect();
            while level.len() > 1 {
                level = level.chunks(2).map(|p| (p[0] - p[1]).sin()).collect();
            }
            level[0]
        })
        .collect();
    assert_close(
        "16-input tree",
        &root.to_vec::<f32>().unwrap(),
        &want,
        1e-5,
        1e-5,
    );
}

#[test]
fn more_scalars_than_the_parameter_block_holds_split_the_group() {
    let ctx = own_ctx(true);
    let n = 77;
    let xv = Rng::new(30).uniform_vec(n, -1.0, 1.0);
    let x = Tensor::from_slice(&ctx, &xv, &[n]).unwrap();
    ctx.synchronize().unwrap();
    let scales: Vec<f32> = (0..100).map(|k| 1.0 + (k as f32 - 50.0) * 1e-4).collect();
    let before = ctx.memory_stats();
    let mut y = x.clone();
    for &s in &scales {
        y = y.mul_scalar(s).unwrap();
    }
    y.realize().unwrap();
    // 64 words hold the element count and 63 distinct scalars.
    assert_eq!(ctx.memory_stats().dispatches - before.dispatches, 2);
    let want: Vec<f64> = xv
        .iter()
        .map(|&v| {
            scales
                .iter()
                .fold(f64::from(v), |acc, &s| acc * f64::from(s))
        })
        .collect();
    assert_close(
        "100 scalars",
        &y.to_vec::<f32>().unwrap(),
        &want,
        1e-6,
        1e-5,
    );
}

#[test]
fn held_intermediates_and_shared_producers_keep_their_values() {
    let ctx = own_ctx(true);
    let n = 333;
    let mut rng = Rng::new(40);
    let xv = rng.vec(n, -1.0, 1.0);
    let yv = rng.uniform_vec(n, -1.0, 1.0);
    let x = Tensor::from_slice(&ctx, &xv, &[n]).unwrap();
    let y = Tensor::from_slice(&ctx, &yv, &[n]).unwrap();
    ctx.synchronize().unwrap();
    let before = ctx.memory_stats();
    // `a` and `b` are held, so they are kept; `t` feeds two consumers, so it is materialized.
    let a = x.tanh().unwrap().mul_scalar(0.5).unwrap();
    let b = a.mul(&y).unwrap().sin().unwrap();
    let t = b.add_scalar(0.25).unwrap().abs().unwrap();
    let c = t
        .sqrt()
        .unwrap()
        .add(&t.cos().unwrap())
        .unwrap()
        .sub(&a)
        .unwrap();
    drop(t);
    c.realize().unwrap();
    let after = ctx.memory_stats();
    assert!(a.is_realized() && b.is_realized());
    // a: 2 ops; b: 2 ops; t: 2 ops; c: sqrt, cos, add, sub.
    assert_eq!(after.dispatches - before.dispatches, 4);
    assert_eq!(after.fused_ops - before.fused_ops, 10);
    let wa: Vec<f64> = xv.iter().map(|&v| f64::from(v).tanh() * 0.5).collect();
    let wb: Vec<f64> = wa
        .iter()
        .zip(&yv)
        .map(|(&a, &y)| (a * f64::from(y)).sin())
        .collect();
    let wc: Vec<f64> = wa
        .iter()
        .zip(&wb)
        .map(|(&a, &b)| {
            let t = (b + 0.25).abs();
            t.sqrt() + t.cos() - a
        })
        .collect();
    assert_close("a", &a.to_vec::<f32>().unwrap(), &wa, 1e-6, 1e-5);
    assert_close("b", &b.to_vec::<f32>().unwrap(), &wb, 1e-6, 1e-5);
    assert_close("c", &c.to_vec::<f32>().unwrap(), &wc, 1e-6, 1e-5);
}

#[test]
fn broadcast_inputs_and_reshaped_views_fuse_into_one_kernel() {
    let ctx = own_ctx(true);
    let (b, m, k) = (5usize, 6usize, 7usize);
    let n = b * m * k;
    let mut rng = Rng::new(50);
    let xv = rng.vec(n, -1.0, 1.0);
    let rowv = rng.uniform_vec(m, -1.0, 1.0); // (m, 1)
    let midv = rng.uniform_vec(b * k, -1.0, 1.0); // (b, 1, k)
    let biasv = rng.uniform_vec(k, -1.0, 1.0); // (k)
    let onev = rng.uniform_vec(1, -1.0, 1.0); // (1)
    let x = Tensor::from_slice(&ctx, &xv, &[b, m, k]).unwrap();
    let row = Tensor::from_slice(&ctx, &rowv, &[m, 1]).unwrap();
    let mid = Tensor::from_slice(&ctx, &midv, &[b, 1, k]).unwrap();
    let bias = Tensor::from_slice(&ctx, &biasv, &[k]).unwrap();
    let one = Tensor::from_slice(&ctx, &onev, &[1]).unwrap();
    ctx.synchronize().unwrap();
    let before = ctx.memory_stats();
    // Intermediate handles are dropped at the end of each block, so nothing is kept.
    let y = {
        let t = x
            .add(&bias)
            .unwrap()
            .mul(&row)
            .unwrap()
            .reshape(&[b * m, k])
            .unwrap()
            .relu()
            .unwrap()
            .reshape(&[b, m, k])
            .unwrap();
        let u = mid
            .sub(&t)
            .unwrap()
            .maximum(&one)
            .unwrap()
            .reshape(&[n])
            .unwrap();
        u.mul(&u).unwrap().add(&x.reshape(&[n]).unwrap()).unwrap()
    };
    y.realize().unwrap();
    assert_eq!(ctx.memory_stats().dispatches - before.dispatches, 1);
    let want: Vec<f64> = (0..n)
        .map(|i| {
            let (bi, mi, ki) = (i / (m * k), (i / k) % m, i % k);
            let x = f64::from(xv[i]);
            let t = ((x + f64::from(biasv[ki])) * f64::from(rowv[mi])).max(0.0);
            let u = (f64::from(midv[bi * k + ki]) - t).max(f64::from(onev[0]));
            u * u + x
        })
        .collect();
    assert_close(
        "broadcast chain",
        &y.to_vec::<f32>().unwrap(),
        &want,
        1e-6,
        1e-5,
    );
}

#[test]
fn a_second_realization_of_the_same_structure_creates_no_pipelines() {
    let ctx = own_ctx(true);
    let build = |n: usize, seed: u64, s: f32| -> (Tensor, Vec<f64>) {
        let mut rng = Rng::new(seed);
        let xv = rng.uniform_vec(n, -1.0, 1.0);
        let wv = rng.uniform_vec(n, -1.0, 1.0);
        let x = Tensor::from_slice(&ctx, &xv, &[n]).unwrap();
        let w = Tensor::from_slice(&ctx, &wv, &[n]).unwrap();
        let y = x
            .mul(&w)
            .unwrap()
            .add_scalar(s)
            .unwrap()
            .sigmoid()
            .unwrap()
            .sub(&x)
            .unwrap()
            .pow_scalar(2.0)
            .unwrap();
        let want = xv
            .iter()
            .zip(&wv)
            .map(|(&a, &b)| {
                let (a, b) = (f64::from(a), f64::from(b));
                let sig = 1.0 / (1.0 + (-(a * b + f64::from(s))).exp());
                (sig - a).powi(2)
            })
            .collect();
        (y, want)
    };
    let (y, want) = build(1000, 60, 0.5);
    assert_close("first", &y.to_vec::<f32>().unwrap(), &want, 1e-6, 1e-5);
    let base = ctx.memory_stats();
    // Other values, another scalar and another size: the same program, the same pipeline.
    for (n, seed, s) in [(1000, 61, 0.5), (513, 62, -0.75), (70_001, 63, 2.0)] {
        let (y, want) = build(n, seed, s);
        assert_close("again", &y.to_vec::<f32>().unwrap(), &want, 1e-6, 1e-5);
    }
    let end = ctx.memory_stats();
    assert_eq!(end.pipelines_created, base.pipelines_created);
    assert_eq!(end.fused_kernels - base.fused_kernels, 3);
}

#[test]
fn gradients_through_a_fused_region_match_finite_differences() {
    let ctx = own_ctx(true);
    let (rows, cols) = (3usize, 11usize);
    let n = rows * cols;
    let mut rng = Rng::new(70);
    let xv = rng.uniform_vec(n, -1.0, 1.0);
    let wv = rng.uniform_vec(cols, -1.0, 1.0);
    let dyv = rng.uniform_vec(n, -1.0, 1.0);
    let x = Tensor::from_slice(&ctx, &xv, &[rows, cols])
        .unwrap()
        .with_grad();
    let w = Tensor::from_slice(&ctx, &wv, &[cols]).unwrap().with_grad();
    let dy = Tensor::from_slice(&ctx, &dyv, &[rows, cols]).unwrap();
    // y = (tanh(x * w + sin x) * 0.7 + 0.1)^2 - sigmoid(w) / (1 + x^2)
    let y = x
        .mul(&w)
        .unwrap()
        .add(&x.sin().unwrap())
        .unwrap()
        .tanh()
        .unwrap()
        .mul_scalar(0.7)
        .unwrap()
        .add_scalar(0.1)
        .unwrap()
        .square()
        .unwrap()
        .sub(
            &w.sigmoid()
                .unwrap()
                .div(&x.square().unwrap().add_scalar(1.0).unwrap())
                .unwrap(),
        )
        .unwrap();
    let reference = |xs: &[Vec<f64>]| -> Vec<f64> {
        (0..n)
            .map(|i| {
                let (x, w) = (xs[0][i], xs[1][i % cols]);
                let t = ((x * w + x.sin()).tanh() * 0.7 + 0.1).powi(2);
                t - 1.0 / (1.0 + (-w).exp()) / (1.0 + x * x)
            })
            .collect()
    };
    let before = ctx.memory_stats();
    let g = kiln::autograd::grad(&[&y], &[&dy], &[&x, &w]).unwrap();
    let gx = g[0].as_ref().unwrap();
    let gw = g[1].as_ref().unwrap();
    ctx.realize(&[gx, gw]).unwrap();
    let after = ctx.memory_stats();
    assert!(
        after.fused_kernels > before.fused_kernels,
        "the backward pass has elementwise chains to fuse"
    );
    let want = fd_vjp(reference, &[f64s(&xv), f64s(&wv)], &f64s(&dyv), 1e-6);
    assert_close("dx", &gx.to_vec::<f32>().unwrap(), &want[0], 1e-4, 1e-3);
    assert_close("dw", &gw.to_vec::<f32>().unwrap(), &want[1], 1e-4, 1e-3);
}

#[test]
fn fusion_can_be_turned_off_per_context() {
    let ctx = own_ctx(true);
    let x = Tensor::from_slice(&ctx, &Rng::new(80).uniform_vec(100, -1.0, 1.0), &[100]).unwrap();
    for (on, want) in [(true, 1), (false, 10)] {
        kiln::testing::set_fusion(&ctx, on);
        assert_eq!(ctx.fusion(), on);
        let mut y = x.clone();
        for _ in 0..10 {
            y = y.sin().unwrap();
        }
        y.realize().unwrap();
        assert_eq!(ctx.memory_stats().last_dispatches, want, "fusion {on}");
    }
}

#[test]
fn activation_chains_and_their_gradients_fuse_and_match_the_reference() {
    use kiln::reference::activation::{erf_all, gelu, leaky_relu};
    let ctx = own_ctx(true);
    let unfused = own_ctx(false);
    let n = 301;
    let mut rng = Rng::new(90);
    let xv = rng.uniform_vec(n, -3.0, 3.0);
    let yv = rng.uniform_vec(n, -1.0, 1.0);
    let dyv = rng.uniform_vec(n, -1.0, 1.0);
    let reference = |xs: &[Vec<f64>]| -> Vec<f64> {
        let a: Vec<f64> = gelu(&xs[0], false).iter().map(|v| v * 0.8).collect();
        let b: Vec<f64> = leaky_relu(&a, 0.1)
            .iter()
            .zip(&xs[1])
            .map(|(u, v)| u + v)
            .collect();
        erf_all(&gelu(&b, true))
    };
    let mut got = Vec::new();
    for c in [&ctx, &unfused] {
        let x = Tensor::from_slice(c, &xv, &[n]).unwrap().with_grad();
        let y = Tensor::from_slice(c, &yv, &[n]).unwrap().with_grad();
        let dy = Tensor::from_slice(c, &dyv, &[n]).unwrap();
        let out = x
            .gelu(false)
            .unwrap()
            .mul_scalar(0.8)
            .unwrap()
            .leaky_relu(0.1)
            .unwrap()
            .add(&y)
            .unwrap()
            .gelu(true)
            .unwrap()
            .erf()
            .unwrap();
        let before = c.memory_stats();
        let g = kiln::autograd::grad(&[&out], &[&dy], &[&x, &y]).unwrap();
        let (gx, gy) = (g[0].clone().unwrap(), g[1].clone().unwrap());
        c.realize(&[&out, &gx, &gy]).unwrap();
        let fused = c.memory_stats().fused_kernels - before.fused_kernels;
        assert_eq!(fused > 0, c.fusion(), "fused kernels: {fused}");
        got.push([&out, &gx, &gy].map(|t| t.to_vec::<f32>().unwrap()));
    }
    let inputs = [f64s(&xv), f64s(&yv)];
    let want = reference(&inputs);
    let fd = fd_vjp(reference, &inputs, &f64s(&dyv), 1e-6);
    assert_close("forward", &got[0][0], &want, 1e-6, 1e-5);
    assert_close("dx", &got[0][1], &fd[0], 1e-4, 1e-3);
    assert_close("dy", &got[0][2], &fd[1], 1e-4, 1e-3);
    for (f, u) in got[0].iter().zip(&got[1]) {
        assert_close("fused vs unfused", f, &f64s(u), 1e-6, 1e-5);
    }
}
