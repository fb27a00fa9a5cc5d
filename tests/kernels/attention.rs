//! Fused attention (forward and backward) against the f64 reference and finite differences.

use crate::common;

use common::{assert_close, ctx, f64s, fd_vjp, Rng, RngExt};
use kiln::kernels::attention::AttentionParams;
use kiln::reference::attention as reference;
use kiln::testing::{attention_variant, with_attention_variant, AttentionVariant};
use kiln::{Error, Tensor};

/// One attention call: shapes, mask and options.
#[derive(Clone, Debug)]
struct Case {
    b: usize,
    hq: usize,
    hkv: usize,
    sq: usize,
    skv: usize,
    d: usize,
    dv: usize,
    /// Mask shape (broadcasting to (b, hq, sq, skv)), if any.
    mask: Option<Vec<usize>>,
    /// Put -inf into the mask (never at key 0, so no row is fully masked).
    neg_inf: bool,
    scale: Option<f32>,
    causal: bool,
    /// Multiplies q and k: large values give large-magnitude scores.
    magnitude: f32,
}

impl Case {
    fn new(b: usize, hq: usize, hkv: usize, sq: usize, skv: usize, d: usize, dv: usize) -> Case {
        Case {
            b,
            hq,
            hkv,
            sq,
            skv,
            d,
            dv,
            mask: None,
            neg_inf: false,
            scale: None,
            causal: false,
            magnitude: 1.0,
        }
    }
    fn mask(mut self, shape: &[usize], neg_inf: bool) -> Case {
        self.mask = Some(shape.to_vec());
        self.neg_inf = neg_inf;
        self
    }
    fn causal(mut self) -> Case {
        self.causal = true;
        self
    }
    fn scale(mut self, s: f32) -> Case {
        self.scale = Some(s);
        self
    }
    fn magnitude(mut self, m: f32) -> Case {
        self.magnitude = m;
        self
    }
    fn params(&self) -> AttentionParams {
        AttentionParams {
            scale: self.scale,
            causal: self.causal,
        }
    }
    fn q_shape(&self) -> [usize; 4] {
        [self.b, self.hq, self.sq, self.d]
    }
    fn k_shape(&self) -> [usize; 4] {
        [self.b, self.hkv, self.skv, self.d]
    }
    fn v_shape(&self) -> [usize; 4] {
        [self.b, self.hkv, self.skv, self.dv]
    }
}

/// Seeded inputs of a case: q, k, v and the mask.
struct Data {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    mask: Option<Vec<f32>>,
}

/// Seeded data; `outliers` mixes in a few values x100 (`Rng::vec`). Gradient checks go without:
/// scores of ±50 make f32 probabilities too coarse for a tight comparison with f64.
fn data(c: &Case, seed: u64, outliers: bool) -> Data {
    let mut rng = Rng::new(seed);
    let n = |s: [usize; 4]| s.iter().product::<usize>();
    let m = c.magnitude;
    let mut draw = |count: usize| {
        if outliers {
            rng.vec(count, -1.0, 1.0)
        } else {
            rng.uniform_vec(count, -1.0, 1.0)
        }
    };
    let q: Vec<f32> = draw(n(c.q_shape())).iter().map(|x| x * m).collect();
    let k: Vec<f32> = draw(n(c.k_shape())).iter().map(|x| x * m).collect();
    let v = draw(n(c.v_shape()));
    let mask = c.mask.as_ref().map(|shape| {
        let skv = shape.last().copied().unwrap_or(1);
        let count: usize = shape.iter().product();
        (0..count)
            .map(|e| {
                let j = e % skv;
                if c.neg_inf && j > 0 && rng.uniform(0.0, 1.0) < 0.3 {
                    f32::NEG_INFINITY
                } else {
                    rng.uniform(-2.0, 2.0)
                }
            })
            .collect()
    });
    Data { q, k, v, mask }
}

fn reference_of(c: &Case, x: &[Vec<f64>], mask: Option<&[f64]>) -> Vec<f64> {
    let mask_shape = c.mask.clone().unwrap_or_default();
    reference::attention(
        &reference::Inputs {
            q: &x[0],
            q_shape: &c.q_shape(),
            k: &x[1],
            k_shape: &c.k_shape(),
            v: &x[2],
            v_shape: &c.v_shape(),
            mask: mask.map(|m| (m, &mask_shape[..])),
        },
        c.scale.map(f64::from),
        c.causal,
    )
}

fn tensors(c: &Case, x: &Data) -> (Tensor, Tensor, Tensor, Option<Tensor>) {
    let ctx = ctx();
    let t = |v: &[f32], s: &[usize]| Tensor::from_slice(ctx, v, s).unwrap();
    (
        t(&x.q, &c.q_shape()),
        t(&x.k, &c.k_shape()),
        t(&x.v, &c.v_shape()),
        x.mask
            .as_ref()
            .map(|m| t(m, c.mask.as_deref().unwrap_or(&[]))),
    )
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

/// Runs the forward on the GPU and compares it with the reference.
fn check_forward(c: &Case, seed: u64) {
    let x = data(c, seed, true);
    let (q, k, v, mask) = tensors(c, &x);
    let y = q.attention(&k, &v, mask.as_ref(), &c.params()).unwrap();
    assert_eq!(y.shape(), &[c.b, c.hq, c.sq, c.dv]);
    let got = y.to_vec::<f32>().unwrap();
    let m64 = x.mask.as_ref().map(|m| f64s(m));
    let want = reference_of(c, &[f64s(&x.q), f64s(&x.k), f64s(&x.v)], m64.as_deref());
    let atol = 2e-5 * max_abs(&want).max(1.0);
    assert_close(&format!("{c:?}"), &got, &want, atol, 1e-4);
}

#[test]
fn attention_matches_reference_without_a_mask() {
    check_forward(&Case::new(2, 3, 3, 5, 7, 8, 8), 1);
    check_forward(&Case::new(1, 2, 2, 1, 1, 8, 8), 2);
}

#[test]
fn attention_matches_reference_for_sequence_lengths_off_the_tiles() {
    for (k, &s) in [1usize, 7, 33, 65, 130].iter().enumerate() {
        check_forward(&Case::new(1, 2, 2, s, s, 8, 8), 10 + k as u64);
    }
    // Several query blocks of 256 rows and key tiles of 16, with different lengths.
    check_forward(&Case::new(1, 1, 1, 300, 17, 8, 8), 16);
    check_forward(&Case::new(1, 1, 1, 3, 529, 8, 8), 17);
}

#[test]
fn attention_matches_reference_for_head_dims_8_64_100() {
    for (k, &d) in [8usize, 64, 100].iter().enumerate() {
        check_forward(&Case::new(2, 2, 2, 33, 40, d, d), 20 + k as u64);
    }
}

#[test]
fn attention_matches_reference_when_value_and_key_dims_differ() {
    check_forward(&Case::new(2, 3, 3, 5, 7, 8, 6), 30);
    check_forward(&Case::new(1, 2, 2, 9, 4, 5, 6), 31);
    check_forward(&Case::new(1, 2, 2, 9, 12, 3, 13), 32);
}

#[test]
fn attention_adds_a_2d_mask() {
    check_forward(&Case::new(2, 3, 3, 5, 7, 8, 8).mask(&[5, 7], false), 40);
}

#[test]
fn attention_adds_a_4d_mask_holding_neg_inf() {
    check_forward(
        &Case::new(2, 3, 3, 5, 7, 8, 8).mask(&[2, 1, 5, 7], true),
        41,
    );
    // 140 rows: the kernels keep 8 rows per invocation (4 below 129).
    check_forward(
        &Case::new(1, 2, 2, 140, 37, 8, 8).mask(&[1, 2, 140, 37], true),
        42,
    );
}

#[test]
fn attention_with_causal_masking_sees_only_earlier_keys() {
    check_forward(&Case::new(2, 3, 3, 6, 6, 8, 8).causal(), 50);
    check_forward(&Case::new(1, 2, 2, 130, 130, 8, 8).causal(), 51);
    // Query and key lengths differ: aligned to the top-left (key j <= query i).
    check_forward(&Case::new(1, 2, 2, 9, 5, 8, 8).causal(), 52);
    check_forward(&Case::new(1, 2, 2, 5, 9, 8, 8).causal(), 53);
    check_forward(
        &Case::new(1, 2, 2, 7, 7, 8, 8).causal().mask(&[7, 7], true),
        54,
    );
}

#[test]
fn attention_groups_query_heads_over_shared_kv_heads() {
    check_forward(&Case::new(2, 4, 2, 5, 5, 8, 8), 60);
    check_forward(&Case::new(1, 8, 1, 7, 9, 8, 8), 61);
    check_forward(&Case::new(2, 4, 2, 6, 6, 8, 8).causal(), 62);
}

#[test]
fn attention_uses_an_explicit_scale() {
    check_forward(&Case::new(1, 2, 2, 4, 6, 8, 8).scale(0.25), 70);
    check_forward(&Case::new(1, 2, 2, 4, 6, 8, 8).scale(-1.5), 71);
}

#[test]
fn attention_is_stable_for_large_magnitude_scores() {
    // Scores reach thousands: exp would overflow without the running max.
    check_forward(&Case::new(1, 2, 2, 7, 33, 8, 8).magnitude(30.0), 80);
    check_forward(
        &Case::new(1, 2, 2, 7, 33, 8, 8)
            .magnitude(30.0)
            .mask(&[7, 33], true),
        81,
    );
}

/// Gradients of `Σ dy ⊙ attention(q, k, v)` w.r.t. q, k and v against finite differences.
fn check_backward(c: &Case, seed: u64) {
    let x = data(c, seed, false);
    let (q, k, v, mask) = tensors(c, &x);
    let (q, k, v) = (q.with_grad(), k.with_grad(), v.with_grad());
    let y = q.attention(&k, &v, mask.as_ref(), &c.params()).unwrap();
    let mut rng = Rng::new(seed + 1000);
    let dy = rng.uniform_vec(y.numel(), -1.0, 1.0);
    let dyt = Tensor::from_slice(ctx(), &dy, y.shape()).unwrap();
    let grads = kiln::autograd::grad(&[&y], &[&dyt], &[&q, &k, &v]).unwrap();
    let m64 = x.mask.as_ref().map(|m| f64s(m));
    let inputs = [f64s(&x.q), f64s(&x.k), f64s(&x.v)];
    let want = fd_vjp(
        |xs: &[Vec<f64>]| reference_of(c, xs, m64.as_deref()),
        &inputs,
        &f64s(&dy),
        1e-6,
    );
    for (name, (g, w)) in ["dq", "dk", "dv"].iter().zip(grads.iter().zip(&want)) {
        let got = g
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no gradient"))
            .to_vec::<f32>()
            .unwrap();
        let atol = 1e-4 * max_abs(w).max(1e-2);
        assert_close(&format!("{name} of {c:?}"), &got, w, atol, 1e-3);
    }
}

#[test]
fn attention_gradients_match_finite_differences() {
    check_backward(&Case::new(1, 2, 2, 4, 5, 8, 8), 100);
    check_backward(&Case::new(2, 1, 1, 3, 4, 5, 6), 101);
    check_backward(&Case::new(1, 1, 1, 5, 3, 7, 5).scale(0.7), 102);
}

#[test]
fn attention_gradients_match_finite_differences_with_grouped_heads() {
    check_backward(&Case::new(1, 4, 2, 3, 4, 8, 8), 110);
    check_backward(&Case::new(1, 3, 1, 3, 4, 8, 8).causal(), 111);
}

#[test]
fn attention_gradients_match_finite_differences_with_causal_and_masks() {
    check_backward(&Case::new(1, 2, 2, 5, 5, 8, 8).causal(), 120);
    check_backward(&Case::new(1, 2, 2, 6, 4, 8, 8).causal(), 121);
    check_backward(
        &Case::new(1, 2, 2, 4, 5, 8, 8).mask(&[1, 2, 4, 5], true),
        122,
    );
    check_backward(&Case::new(2, 2, 2, 3, 5, 8, 8).mask(&[5], false), 123);
}

#[test]
fn attention_gradients_cover_many_key_and_query_blocks() {
    // Longer sequences (over 128) make the kernels keep 8 rows (keys) per invocation, in blocks
    // of 256; shorter ones 4, in blocks of 128.
    check_backward(&Case::new(1, 1, 1, 260, 3, 8, 8), 130);
    check_backward(&Case::new(1, 1, 1, 3, 260, 8, 8), 131);
    check_backward(
        &Case::new(1, 1, 1, 130, 9, 4, 4)
            .causal()
            .mask(&[130, 9], true),
        132,
    );
    check_backward(
        &Case::new(1, 2, 1, 9, 130, 4, 4)
            .causal()
            .mask(&[9, 130], true),
        133,
    );
}

#[test]
fn every_attention_variant_matches_the_reference_forward_and_backward() {
    // Whatever the adapter picks by default, force each build: plain row loads, and loads
    // shared across 8-wide subgroups (which runs wherever the adapter has them).
    let ctx = ctx();
    let info = ctx.adapter_info();
    let sg8 = ctx.features().contains(wgpu::Features::SUBGROUP)
        && info.subgroup_min_size == 8
        && info.subgroup_max_size == 8;
    for (i, variant) in [AttentionVariant::Plain, AttentionVariant::Subgroup]
        .into_iter()
        .enumerate()
    {
        with_attention_variant(variant, || {
            let want = if sg8 {
                variant
            } else {
                AttentionVariant::Plain
            };
            assert_eq!(attention_variant(ctx), want);
            let seed = 200 + 10 * i as u64;
            // Head dim 100: 25 vec4 chunks, so the last lane group loads one real chunk.
            check_forward(&Case::new(1, 2, 2, 33, 40, 100, 100), seed);
            // 8 rows per invocation, grouped heads, a -inf mask. (Shapes whose pipelines other
            // tests build too, to keep this binary's compile time down.)
            check_forward(
                &Case::new(1, 2, 1, 140, 37, 8, 8).mask(&[1, 2, 140, 37], true),
                seed + 1,
            );
            check_backward(&Case::new(1, 4, 2, 3, 4, 8, 6), seed + 2);
        });
    }
}

#[test]
fn attention_only_computes_the_gradients_asked_for() {
    let c = Case::new(1, 2, 2, 3, 4, 8, 8);
    let x = data(&c, 140, false);
    let (q, k, v, _) = tensors(&c, &x);
    let v = v.with_grad();
    let y = q.attention(&k, &v, None, &c.params()).unwrap();
    let dy = Tensor::from_slice(ctx(), &vec![1.0f32; y.numel()], y.shape()).unwrap();
    let g = kiln::autograd::grad(&[&y], &[&dy], &[&v]).unwrap();
    let dv = g[0].as_ref().unwrap().to_vec::<f32>().unwrap();
    // With dy = 1, every element of row j of dv is Σ_i P(i, j), and every probability row sums
    // to 1: dv sums, per head, to Dv · Sq.
    let per_head: Vec<f32> = dv.chunks(4 * 8).map(|h| h.iter().sum::<f32>()).collect();
    assert_eq!(per_head.len(), 2);
    for s in per_head {
        assert!((s - 8.0 * 3.0).abs() < 1e-4, "sum of dv per head {s}");
    }
}

fn expect_shape_error(r: kiln::Result<Tensor>, lhs: &[usize], rhs: &[usize]) {
    match r {
        Err(Error::ShapeMismatch { op, lhs: l, rhs: r }) => {
            assert_eq!(op, "attention");
            assert_eq!((l.0.as_slice(), r.0.as_slice()), (lhs, rhs));
        }
        other => panic!("expected a shape mismatch {lhs:?} vs {rhs:?}, got {other:?}"),
    }
}

#[test]
fn attention_rejects_mismatched_shapes_naming_both() {
    let ctx = ctx();
    let z = |s: &[usize]| Tensor::from_slice(ctx, &vec![0.5f32; s.iter().product()], s).unwrap();
    let p = AttentionParams::default();
    let (q, k, v) = (z(&[2, 4, 5, 8]), z(&[2, 2, 7, 8]), z(&[2, 2, 7, 6]));
    expect_shape_error(
        q.attention(&z(&[3, 2, 7, 8]), &v, None, &p),
        &[2, 4, 5, 8],
        &[3, 2, 7, 8],
    );
    expect_shape_error(
        q.attention(&z(&[2, 2, 7, 4]), &v, None, &p),
        &[2, 4, 5, 8],
        &[2, 2, 7, 4],
    );
    expect_shape_error(
        z(&[2, 3, 5, 8]).attention(&k, &v, None, &p),
        &[2, 3, 5, 8],
        &[2, 2, 7, 8],
    );
    expect_shape_error(
        q.attention(&k, &z(&[2, 2, 6, 6]), None, &p),
        &[2, 2, 7, 8],
        &[2, 2, 6, 6],
    );
    expect_shape_error(
        q.attention(&k, &v, Some(&z(&[5, 6])), &p),
        &[5, 6],
        &[2, 4, 5, 7],
    );
    expect_shape_error(
        q.attention(&k, &v, Some(&z(&[3, 1, 5, 7])), &p),
        &[3, 1, 5, 7],
        &[2, 4, 5, 7],
    );
    let msg = q
        .attention(&z(&[3, 2, 7, 8]), &v, None, &p)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("attention") && msg.contains("[2, 4, 5, 8]") && msg.contains("[3, 2, 7, 8]")
    );
}

#[test]
fn attention_rejects_bad_arguments() {
    let ctx = ctx();
    let z = |s: &[usize]| Tensor::from_slice(ctx, &vec![0.5f32; s.iter().product()], s).unwrap();
    let p = AttentionParams::default();
    let invalid = |r: kiln::Result<Tensor>, what: &str| match r {
        Err(Error::InvalidArgument {
            op: "attention", ..
        }) => {}
        other => panic!("{what}: expected an invalid-argument error, got {other:?}"),
    };
    invalid(
        z(&[4, 5, 8]).attention(&z(&[4, 7, 8]), &z(&[4, 7, 8]), None, &p),
        "3-D inputs",
    );
    invalid(
        z(&[1, 1, 2, 132]).attention(&z(&[1, 1, 2, 132]), &z(&[1, 1, 2, 4]), None, &p),
        "head dim 132",
    );
    let nan = AttentionParams {
        scale: Some(f32::NAN),
        causal: false,
    };
    invalid(
        z(&[1, 1, 2, 4]).attention(&z(&[1, 1, 2, 4]), &z(&[1, 1, 2, 4]), None, &nan),
        "NaN scale",
    );
    let ints = Tensor::from_slice(ctx, &[1i32; 8], &[1, 1, 2, 4]).unwrap();
    assert!(matches!(
        ints.attention(&z(&[1, 1, 2, 4]), &z(&[1, 1, 2, 4]), None, &p),
        Err(Error::UnsupportedDType {
            op: "attention",
            ..
        })
    ));
}

#[test]
fn attention_handles_empty_sequences_and_head_dims() {
    // No keys: every row sees nothing and gives zeros (as the reference does).
    check_forward(&Case::new(1, 2, 2, 3, 0, 8, 8), 150);
    // No queries: an empty result.
    check_forward(&Case::new(1, 2, 2, 0, 5, 8, 8), 151);
    // Head dim 0: all scores are 0, so each row is the mean of the values.
    check_forward(&Case::new(1, 2, 2, 3, 5, 0, 8), 152);
    let c = Case::new(1, 2, 2, 3, 0, 8, 8);
    let x = data(&c, 153, false);
    let (q, k, v, _) = tensors(&c, &x);
    let (q, k, v) = (q.with_grad(), k.with_grad(), v.with_grad());
    let y = q.attention(&k, &v, None, &c.params()).unwrap();
    let dy = Tensor::from_slice(ctx(), &vec![1.0f32; y.numel()], y.shape()).unwrap();
    let g = kiln::autograd::grad(&[&y], &[&dy], &[&q, &k, &v]).unwrap();
    let dq = g[0].as_ref().unwrap().to_vec::<f32>().unwrap();
    assert!(dq.iter().all(|&x| x == 0.0), "dq without keys: {dq:?}");
    assert_eq!(g[1].as_ref().unwrap().shape(), &[1, 2, 0, 8]);
}
