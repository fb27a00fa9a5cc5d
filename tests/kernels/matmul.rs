//! Matrix multiplication (NumPy `matmul` semantics, transposes, broadcasting) against the f64
//! reference.
// Tests unwrap: a failure should stop the test with the error, which is what unwrap does.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{assert_close, ctx, f64s, fd_vjp, Rng, RngExt};
use kiln::reference::matmul as reference;
use kiln::testing::{matmul_variant, with_matmul_variant, MatmulVariant};
use kiln::{Error, Tensor};

/// Stored shape of an operand whose logical last two dims are (rows, cols), transposed or not.
fn stored(batch: &[usize], rows: usize, cols: usize, transposed: bool) -> Vec<usize> {
    let mut s = batch.to_vec();
    if transposed {
        s.extend([cols, rows]);
    } else {
        s.extend([rows, cols]);
    }
    s
}

/// Multiplies random operands of these stored shapes on the GPU and checks values and shape
/// against the reference. Inputs lie in [-1, 1) with x100 outliers (`Rng::vec`) unless `plain`.
fn check(a_shape: &[usize], b_shape: &[usize], ta: bool, tb: bool, plain: bool, seed: u64) {
    let ctx = ctx();
    let mut rng = Rng::new(seed);
    let (an, bn) = (
        a_shape.iter().product::<usize>(),
        b_shape.iter().product::<usize>(),
    );
    let (a, b) = if plain {
        (
            rng.uniform_vec(an, -1.0, 1.0),
            rng.uniform_vec(bn, -1.0, 1.0),
        )
    } else {
        (rng.vec(an, -1.0, 1.0), rng.vec(bn, -1.0, 1.0))
    };
    let at = Tensor::from_slice(ctx, &a, a_shape).unwrap();
    let bt = Tensor::from_slice(ctx, &b, b_shape).unwrap();
    let out = if ta || tb {
        at.matmul_t(&bt, ta, tb).unwrap()
    } else {
        at.matmul(&bt).unwrap()
    };
    let (want, want_shape) = reference::matmul(&a, a_shape, &b, b_shape, ta, tb);
    let what = format!("{a_shape:?} (T={ta}) @ {b_shape:?} (T={tb})");
    assert_eq!(out.shape(), want_shape.as_slice(), "{what}: shape");
    let got = out.to_vec::<f32>().unwrap();
    // f32 accumulation error grows like sqrt(K) times the size of the terms, measured here by
    // the inputs' root mean squares (outliers raise them).
    let k = if a_shape.len() == 1 {
        a_shape[0]
    } else if ta {
        a_shape[a_shape.len() - 2]
    } else {
        a_shape[a_shape.len() - 1]
    };
    let atol = 1e-4 * (k.max(1) as f64).sqrt() * rms(&a) * rms(&b);
    assert_close(&what, &got, &want, atol, 1e-4);
}

fn rms(v: &[f32]) -> f64 {
    let sum: f64 = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    (sum / v.len().max(1) as f64).sqrt()
}

fn mnk(m: usize, n: usize, k: usize, ta: bool, tb: bool, seed: u64) {
    check(
        &stored(&[], m, k, ta),
        &stored(&[], k, n, tb),
        ta,
        tb,
        false,
        seed,
    );
}

#[test]
fn matmul_matches_reference_on_square_and_rectangular_sizes() {
    let sizes = [
        (1, 1, 1),
        (1, 5, 3),
        (4, 1, 9),
        (7, 13, 5),
        (33, 17, 65),
        (32, 32, 32),
        (64, 31, 33),
        (127, 129, 31),
        (3, 200, 2),
        (200, 3, 40),
    ];
    for (i, (m, n, k)) in sizes.into_iter().enumerate() {
        mnk(m, n, k, false, false, 100 + i as u64);
    }
}

#[test]
fn matmul_matches_reference_at_256_cubed() {
    check(&[256, 256], &[256, 256], false, false, true, 7);
}

#[test]
fn matmul_matches_reference_with_transposed_operands() {
    for (i, (m, n, k)) in [(1, 1, 1), (7, 13, 5), (33, 17, 65), (70, 45, 97)]
        .into_iter()
        .enumerate()
    {
        for (j, (ta, tb)) in [(false, true), (true, false), (true, true)]
            .into_iter()
            .enumerate()
        {
            mnk(m, n, k, ta, tb, 200 + 10 * i as u64 + j as u64);
        }
    }
}

#[test]
fn matmul_spans_many_workgroup_tiles_in_every_direction() {
    // A workgroup owns a 64 x 96 tile of C (32 rows per invocation): cover several tiles along
    // M, N and the batch, with ragged edges, and a long K.
    check(&[3, 131, 300], &[3, 300, 197], false, false, false, 11);
    check(&[2, 300, 131], &[197, 300], true, true, false, 12);
}

#[test]
fn matmul_broadcasts_batch_dimensions() {
    let cases: [(&[usize], &[usize]); 7] = [
        (&[2, 5, 3], &[2, 3, 4]),       // same batch
        (&[2, 5, 3], &[3, 4]),          // B shared by every batch
        (&[5, 3], &[4, 3, 6]),          // A shared
        (&[2, 1, 5, 3], &[3, 3, 7]),    // [2, 1] with [3] -> [2, 3]
        (&[1, 4, 5, 3], &[2, 1, 3, 7]), // both sides broadcast -> [2, 4]
        (&[2, 3, 4, 9, 10], &[4, 10, 11]),
        (&[2, 1, 3, 1, 6, 5], &[1, 2, 1, 2, 5, 3]),
    ];
    for (i, (a, b)) in cases.into_iter().enumerate() {
        check(a, b, false, false, false, 300 + i as u64);
    }
    // Broadcasting together with transposes: A stored (.., K, M), B stored (.., N, K).
    check(&[2, 1, 7, 5], &[3, 6, 7], true, true, false, 320);
    check(&[1, 4, 7, 5], &[2, 1, 7, 6], true, false, false, 321);
}

#[test]
fn matmul_promotes_vectors_like_numpy() {
    let cases: [(&[usize], &[usize]); 6] = [
        (&[7], &[7]),          // dot product -> []
        (&[7], &[7, 5]),       // -> [5]
        (&[5, 7], &[7]),       // -> [5]
        (&[7], &[3, 7, 5]),    // -> [3, 5]
        (&[2, 3, 5, 7], &[7]), // -> [2, 3, 5]
        (&[70], &[70, 33]),
    ];
    for (i, (a, b)) in cases.into_iter().enumerate() {
        check(a, b, false, false, false, 400 + i as u64);
    }
    // A vector has nothing to transpose; the other operand still is.
    check(&[7], &[5, 7], true, true, false, 410);
    check(&[7, 5], &[7], true, true, false, 411);
}

#[test]
fn matmul_with_zero_depth_gives_zeros() {
    let ctx = ctx();
    for (a_shape, b_shape, out) in [
        (vec![3, 0], vec![0, 4], vec![3, 4]),
        (vec![2, 33, 0], vec![0, 40], vec![2, 33, 40]),
        (vec![0], vec![0], vec![]),
    ] {
        let a = Tensor::from_slice(ctx, &[] as &[f32], &a_shape).unwrap();
        let b = Tensor::from_slice(ctx, &[] as &[f32], &b_shape).unwrap();
        let c = a.matmul(&b).unwrap();
        assert_eq!(c.shape(), out.as_slice());
        let got = c.to_vec::<f32>().unwrap();
        let n: usize = out.iter().product();
        assert_close(
            &format!("{a_shape:?} @ {b_shape:?}"),
            &got,
            &vec![0.0; n],
            0.0,
            0.0,
        );
    }
}

#[test]
fn matmul_with_empty_rows_columns_or_batch_is_empty() {
    let ctx = ctx();
    let mut rng = Rng::new(500);
    for (a_shape, b_shape, out) in [
        (vec![0, 5], vec![5, 4], vec![0, 4]),
        (vec![3, 5], vec![5, 0], vec![3, 0]),
        (vec![0, 3, 5], vec![5, 4], vec![0, 3, 4]),
    ] {
        let a = rng.vec(a_shape.iter().product(), -1.0, 1.0);
        let b = rng.vec(b_shape.iter().product(), -1.0, 1.0);
        let a = Tensor::from_slice(ctx, &a, &a_shape).unwrap();
        let b = Tensor::from_slice(ctx, &b, &b_shape).unwrap();
        let c = a.matmul(&b).unwrap();
        assert_eq!(c.shape(), out.as_slice());
        assert!(c.to_vec::<f32>().unwrap().is_empty());
    }
}

#[test]
fn matmul_result_feeds_further_ops() {
    // A product used as an input of another product and of an elementwise op in one graph.
    let ctx = ctx();
    let mut rng = Rng::new(600);
    let (a, b, d) = (
        rng.uniform_vec(9 * 20, -1.0, 1.0),
        rng.uniform_vec(20 * 11, -1.0, 1.0),
        rng.uniform_vec(11 * 6, -1.0, 1.0),
    );
    let ta = Tensor::from_slice(ctx, &a, &[9, 20]).unwrap();
    let tb = Tensor::from_slice(ctx, &b, &[20, 11]).unwrap();
    let td = Tensor::from_slice(ctx, &d, &[11, 6]).unwrap();
    let ab = ta.matmul(&tb).unwrap();
    let abd = ab.matmul(&td).unwrap().relu().unwrap();
    let (want_ab, _) = reference::matmul(&a, &[9, 20], &b, &[20, 11], false, false);
    let ab32: Vec<f32> = want_ab.iter().map(|&v| v as f32).collect();
    let (want, _) = reference::matmul(&ab32, &[9, 11], &d, &[11, 6], false, false);
    let want: Vec<f64> = want.into_iter().map(|v| v.max(0.0)).collect();
    assert_close(
        "relu((a @ b) @ d)",
        &abd.to_vec::<f32>().unwrap(),
        &want,
        1e-4,
        1e-4,
    );
}

#[test]
fn matmul_rejects_mismatched_and_scalar_operands() {
    let ctx = ctx();
    let t = |shape: &[usize]| {
        let n = shape.iter().product();
        Tensor::from_slice(ctx, &Rng::new(700).vec(n, -1.0, 1.0), shape).unwrap()
    };
    let msg = t(&[2, 3]).matmul(&t(&[4, 5])).unwrap_err().to_string();
    assert!(
        msg.contains("matmul") && msg.contains("[2, 3]") && msg.contains("[4, 5]"),
        "{msg}"
    );
    let err = t(&[2, 3, 4]).matmul(&t(&[3, 5, 6])).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
    let msg = t(&[2, 3, 4])
        .matmul(&t(&[3, 4, 6]))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("matmul") && msg.contains("[2, 3, 4]") && msg.contains("[3, 4, 6]"),
        "batch dims 2 and 3 do not broadcast: {msg}"
    );
    let msg = t(&[3, 4])
        .matmul_t(&t(&[3, 5]), false, true)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("[3, 4]") && msg.contains("[3, 5]"), "{msg}");
    let msg = t(&[3]).matmul(&t(&[4])).unwrap_err().to_string();
    assert!(msg.contains("[3]") && msg.contains("[4]"), "{msg}");
    let err = t(&[]).matmul(&t(&[3])).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { op: "matmul", .. }),
        "{err}"
    );
    let err = t(&[3, 3]).matmul(&t(&[])).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { op: "matmul", .. }),
        "{err}"
    );
}

/// Every kernel a matmul can run, forced one at a time.
const VARIANTS: [MatmulVariant; 4] = [
    MatmulVariant::Scalar,
    MatmulVariant::Subgroup,
    MatmulVariant::SubgroupNarrow,
    MatmulVariant::Tiled,
];

/// Whether this adapter can run the subgroup kernels (8-wide subgroups), so forcing one of
/// them must actually run it on operands with vec4-aligned rows.
fn has_subgroups_of_8() -> bool {
    let ctx = ctx();
    let info = ctx.adapter_info();
    ctx.features().contains(wgpu::Features::SUBGROUP)
        && info.subgroup_min_size == 8
        && info.subgroup_max_size == 8
}

/// `check` under a forced variant, first asserting that the variant really runs (or that the
/// scalar kernel stands in where the adapter or the operands' alignment rule it out).
fn check_forced(
    variant: MatmulVariant,
    a_shape: &[usize],
    b_shape: &[usize],
    ta: bool,
    tb: bool,
    seed: u64,
) {
    with_matmul_variant(variant, || {
        let ctx = ctx();
        let a = Tensor::from_slice(ctx, &vec![0.0f32; a_shape.iter().product()], a_shape).unwrap();
        let b = Tensor::from_slice(ctx, &vec![0.0f32; b_shape.iter().product()], b_shape).unwrap();
        // The scalar and tiled kernels run anywhere; the subgroup ones need the adapter.
        let want = match variant {
            MatmulVariant::Subgroup | MatmulVariant::SubgroupNarrow if !has_subgroups_of_8() => {
                MatmulVariant::Scalar
            }
            v => v,
        };
        assert_eq!(
            matmul_variant(&a, &b, ta, tb).unwrap(),
            want,
            "{a_shape:?} @ {b_shape:?}"
        );
        check(a_shape, b_shape, ta, tb, false, seed);
    });
}

#[test]
fn every_matmul_variant_matches_reference_on_ragged_vec4_aligned_shapes() {
    // M, N, K multiples of 4 (what the subgroup kernels need) but not of any tile: 32 rows,
    // 64 or 96 columns; also single rows, and several tiles in every direction.
    let sizes = [(1, 4, 4), (5, 8, 12), (37, 100, 44), (68, 196, 132)];
    for (v, variant) in VARIANTS.into_iter().enumerate() {
        for (i, &(m, n, k)) in sizes.iter().enumerate() {
            let seed = 800 + 10 * v as u64 + i as u64;
            check_forced(variant, &[m, k], &[k, n], false, false, seed);
        }
    }
}

#[test]
fn every_matmul_variant_matches_reference_with_transposes_and_batches() {
    for (v, variant) in VARIANTS.into_iter().enumerate() {
        let seed = 900 + 20 * v as u64;
        for (j, (ta, tb)) in [(false, true), (true, false), (true, true)]
            .into_iter()
            .enumerate()
        {
            // op(A) (36, 44), op(B) (44, 100), stored transposed where asked.
            let (a, b) = (stored(&[], 36, 44, ta), stored(&[], 44, 100, tb));
            check_forced(variant, &a, &b, ta, tb, seed + j as u64);
        }
        // Batched, with broadcasting, transposed and not.
        check_forced(variant, &[3, 37, 44], &[44, 100], false, false, seed + 5);
        check_forced(
            variant,
            &[2, 1, 20, 36],
            &[3, 100, 20],
            true,
            true,
            seed + 6,
        );
    }
}

#[test]
fn tiled_matmul_matches_reference_on_any_shape_and_transpose() {
    // The workgroup-tiled kernel takes any shape and strides: sizes off its 64 x 64 x 16 tiles,
    // single rows and columns, transposes, batches with broadcasting.
    let t = MatmulVariant::Tiled;
    for (i, &(m, n, k)) in [(1, 1, 1), (7, 13, 5), (65, 17, 33), (130, 67, 100)]
        .iter()
        .enumerate()
    {
        for (j, (ta, tb)) in [(false, false), (false, true), (true, false), (true, true)]
            .into_iter()
            .enumerate()
        {
            let (a, b) = (stored(&[], m, k, ta), stored(&[], k, n, tb));
            check_forced(t, &a, &b, ta, tb, 1100 + 10 * i as u64 + j as u64);
        }
    }
    check_forced(t, &[2, 1, 7, 5], &[3, 6, 7], true, true, 1150);
    check_forced(t, &[3, 131, 30], &[30, 97], false, false, 1151);
}

#[test]
fn every_matmul_variant_has_the_reference_gradients() {
    // L = sum(G * op(A) op(B)) for small aligned shapes, every transpose combination, against
    // central differences of the f64 reference.
    let (m, n, k) = (8, 12, 4);
    for (v, variant) in VARIANTS.into_iter().enumerate() {
        for (j, (ta, tb)) in [(false, false), (false, true), (true, false), (true, true)]
            .into_iter()
            .enumerate()
        {
            let ctx = ctx();
            let mut rng = Rng::new(1000 + 10 * v as u64 + j as u64);
            let (a_shape, b_shape) = (stored(&[2], m, k, ta), stored(&[], k, n, tb));
            let a = rng.uniform_vec(2 * m * k, -1.0, 1.0);
            let b = rng.uniform_vec(k * n, -1.0, 1.0);
            let g = rng.uniform_vec(2 * m * n, -1.0, 1.0);
            let (ga, gb) = with_matmul_variant(variant, || {
                let at = Tensor::from_slice(ctx, &a, &a_shape).unwrap().with_grad();
                let bt = Tensor::from_slice(ctx, &b, &b_shape).unwrap().with_grad();
                let gt = Tensor::from_slice(ctx, &g, &[2, m, n]).unwrap();
                let c = at.matmul_t(&bt, ta, tb).unwrap();
                let grads = kiln::autograd::grad(&[&c], &[&gt], &[&at, &bt]).unwrap();
                let [Some(ga), Some(gb)] = &grads[..] else {
                    panic!("missing gradients")
                };
                (ga.to_vec::<f32>().unwrap(), gb.to_vec::<f32>().unwrap())
            });
            // op(A) is (2, m, k) stored (2, m, k) or (2, k, m); op(B) (k, n) stored (k, n) or
            // (n, k).
            let reference = |xs: &[Vec<f64>]| -> Vec<f64> {
                let mut c = vec![0.0; 2 * m * n];
                for bi in 0..2 {
                    for i in 0..m {
                        for jn in 0..n {
                            c[(bi * m + i) * n + jn] = (0..k)
                                .map(|kk| {
                                    let ai = if ta { kk * m + i } else { i * k + kk };
                                    let bj = if tb { jn * k + kk } else { kk * n + jn };
                                    xs[0][bi * m * k + ai] * xs[1][bj]
                                })
                                .sum();
                        }
                    }
                }
                c
            };
            let want = fd_vjp(reference, &[f64s(&a), f64s(&b)], &f64s(&g), 1e-6);
            let what = format!("{variant:?} T=({ta}, {tb})");
            assert_close(&format!("{what}: dA"), &ga, &want[0], 1e-4, 1e-4);
            assert_close(&format!("{what}: dB"), &gb, &want[1], 1e-4, 1e-4);
        }
    }
}
