//! Embedding: forward lookup with i32 and u32 indices of any shape, zeros for out-of-range
//! indices, the deterministic weight gradient (repeated indices accumulate) against the
//! reference and finite differences, and errors.

use crate::common;

use common::{assert_close, ctx, f64s, fd_vjp, Rng, RngExt};
use kiln::autograd::grad;
use kiln::reference::embedding as reference;
use kiln::{DType, Error, Tensor};

fn weight(rng: &mut Rng, vocab: usize, dim: usize) -> Vec<f32> {
    rng.vec(vocab * dim, -2.0, 2.0)
}

fn indices_i32(rng: &mut Rng, n: usize, vocab: usize) -> Vec<i32> {
    (0..n)
        .map(|_| (rng.next_u64() % vocab as u64) as i32)
        .collect()
}

fn upload_indices(ix: &[i32], shape: &[usize], dtype: DType) -> Tensor {
    match dtype {
        DType::U32 => {
            let u: Vec<u32> = ix.iter().map(|&v| v as u32).collect();
            Tensor::from_slice(ctx(), &u, shape).unwrap()
        }
        _ => Tensor::from_slice(ctx(), ix, shape).unwrap(),
    }
}

fn wide(ix: &[i32], dtype: DType) -> Vec<i64> {
    ix.iter()
        .map(|&v| match dtype {
            DType::U32 => i64::from(v as u32),
            _ => i64::from(v),
        })
        .collect()
}

#[test]
fn lookup_matches_reference_for_i32_and_u32_indices_of_any_shape() {
    let mut rng = Rng::new(1);
    // (vocab, dim, index shape): dims across the 64-column block, vocab across 16-row blocks.
    let cases: [(usize, usize, &[usize]); 5] = [
        (1, 1, &[1]),
        (5, 3, &[]),
        (37, 70, &[7]),
        (50, 64, &[3, 5]),
        (17, 129, &[2, 3, 4]),
    ];
    for dtype in [DType::I32, DType::U32] {
        for (vocab, dim, ishape) in cases {
            let n: usize = ishape.iter().product();
            let w = weight(&mut rng, vocab, dim);
            let ix = indices_i32(&mut rng, n, vocab);
            let wt = Tensor::from_slice(ctx(), &w, &[vocab, dim]).unwrap();
            let y = wt.embedding(&upload_indices(&ix, ishape, dtype)).unwrap();
            let mut want_shape = ishape.to_vec();
            want_shape.push(dim);
            assert_eq!(y.shape(), want_shape.as_slice());
            let want = reference::embedding(&f64s(&w), vocab, dim, &wide(&ix, dtype));
            let got = y.to_vec::<f32>().unwrap();
            assert_close(
                &format!("{dtype} V={vocab} D={dim} {ishape:?}"),
                &got,
                &want,
                0.0,
                0.0,
            );
        }
    }
}

#[test]
fn out_of_range_indices_give_zero_rows_and_no_gradient() {
    let mut rng = Rng::new(2);
    let (vocab, dim) = (6, 5);
    let w = weight(&mut rng, vocab, dim);
    let wt = Tensor::from_slice(ctx(), &w, &[vocab, dim])
        .unwrap()
        .with_grad();
    let ix = [0i32, -1, 6, 5, i32::MIN, i32::MAX, 2];
    for dtype in [DType::I32, DType::U32] {
        let it = upload_indices(&ix, &[ix.len()], dtype);
        let y = wt.embedding(&it).unwrap();
        let want = reference::embedding(&f64s(&w), vocab, dim, &wide(&ix, dtype));
        let got = y.to_vec::<f32>().unwrap();
        assert_close(&format!("{dtype} out of range"), &got, &want, 0.0, 0.0);
        for row in [1usize, 2, 4, 5] {
            assert!(got[row * dim..(row + 1) * dim].iter().all(|&v| v == 0.0));
        }
        let dy = rng.vec(ix.len() * dim, -1.0, 1.0);
        let u = Tensor::from_slice(ctx(), &dy, y.shape()).unwrap();
        let g = grad(&[&y], &[&u], &[&wt]).unwrap().remove(0).unwrap();
        let want = reference::embedding_backward(&f64s(&dy), vocab, dim, &wide(&ix, dtype));
        assert_close(
            &format!("{dtype} out-of-range grad"),
            &g.to_vec::<f32>().unwrap(),
            &want,
            1e-6,
            1e-6,
        );
    }
}

#[test]
fn weight_gradient_accumulates_repeated_indices_and_matches_reference() {
    let mut rng = Rng::new(3);
    // Many indices (several 64-wide tiles) over a small vocabulary: every row repeats.
    let cases: [(usize, usize, &[usize]); 4] = [
        (1, 1, &[3]),
        (7, 3, &[300]),
        (40, 70, &[10, 29]),
        (33, 130, &[4, 65]),
    ];
    for dtype in [DType::I32, DType::U32] {
        for (vocab, dim, ishape) in cases {
            let n: usize = ishape.iter().product();
            let w = weight(&mut rng, vocab, dim);
            let ix = indices_i32(&mut rng, n, vocab);
            let wt = Tensor::from_slice(ctx(), &w, &[vocab, dim])
                .unwrap()
                .with_grad();
            let it = upload_indices(&ix, ishape, dtype);
            let y = wt.embedding(&it).unwrap();
            let dy = rng.vec(n * dim, -1.0, 1.0);
            let u = Tensor::from_slice(ctx(), &dy, y.shape()).unwrap();
            let g = grad(&[&y], &[&u], &[&wt]).unwrap().remove(0).unwrap();
            assert_eq!(g.shape(), &[vocab, dim]);
            let want = reference::embedding_backward(&f64s(&dy), vocab, dim, &wide(&ix, dtype));
            let got = g.to_vec::<f32>().unwrap();
            let what = format!("{dtype} grad V={vocab} D={dim} {ishape:?}");
            assert_close(&what, &got, &want, 1e-5, 1e-5);
            // Deterministic: the same bits on a second run.
            let again = grad(&[&y], &[&u], &[&wt]).unwrap().remove(0).unwrap();
            assert_eq!(got, again.to_vec::<f32>().unwrap(), "{what}: rerun");
        }
    }
}

#[test]
fn weight_gradient_matches_finite_differences() {
    let mut rng = Rng::new(4);
    let (vocab, dim) = (5, 3);
    let ix = [1i32, 3, 1, 0, 1, 4, 3];
    let w = weight(&mut rng, vocab, dim);
    let wt = Tensor::from_slice(ctx(), &w, &[vocab, dim])
        .unwrap()
        .with_grad();
    let it = Tensor::from_slice(ctx(), &ix, &[7]).unwrap();
    let y = wt.embedding(&it).unwrap();
    let dy = rng.vec(7 * dim, -1.0, 1.0);
    let u = Tensor::from_slice(ctx(), &dy, y.shape()).unwrap();
    let g = grad(&[&y], &[&u], &[&wt]).unwrap().remove(0).unwrap();
    let ix64 = wide(&ix, DType::I32);
    let fd = fd_vjp(
        |xs: &[Vec<f64>]| reference::embedding(&xs[0], vocab, dim, &ix64),
        &[f64s(&w)],
        &f64s(&dy),
        1e-6,
    );
    assert_close(
        "embedding fd",
        &g.to_vec::<f32>().unwrap(),
        &fd[0],
        1e-6,
        1e-5,
    );
    // Row 2 is never looked up: its gradient is exactly zero.
    assert!(g.to_vec::<f32>().unwrap()[2 * dim..3 * dim]
        .iter()
        .all(|&v| v == 0.0));
}

#[test]
fn indices_get_no_gradient() {
    let w = Tensor::ones(ctx(), &[4, 2]).unwrap().with_grad();
    let it = Tensor::from_slice(ctx(), &[0i32, 3], &[2])
        .unwrap()
        .with_grad();
    let y = w.embedding(&it).unwrap();
    let u = Tensor::ones(ctx(), y.shape()).unwrap();
    let g = grad(&[&y], &[&u], &[&w, &it]).unwrap();
    assert!(g[0].is_some());
    assert!(g[1].is_none());
}

#[test]
fn bad_weights_and_index_types_are_rejected() {
    let w = Tensor::ones(ctx(), &[4, 2]).unwrap();
    let ix = Tensor::from_slice(ctx(), &[0i32, 1], &[2]).unwrap();
    let flat = Tensor::ones(ctx(), &[8]).unwrap();
    assert!(matches!(
        flat.embedding(&ix),
        Err(Error::InvalidArgument {
            op: "embedding",
            ..
        })
    ));
    let cube = Tensor::ones(ctx(), &[2, 2, 2]).unwrap();
    assert!(matches!(
        cube.embedding(&ix),
        Err(Error::InvalidArgument {
            op: "embedding",
            ..
        })
    ));
    let float_ix = Tensor::from_slice(ctx(), &[0.0f32, 1.0], &[2]).unwrap();
    assert!(matches!(
        w.embedding(&float_ix),
        Err(Error::UnsupportedDType {
            op: "embedding",
            dtype: DType::F32
        })
    ));
    assert!(matches!(
        ix.embedding(&ix),
        Err(Error::UnsupportedDType {
            op: "embedding",
            dtype: DType::I32
        })
    ));
    // Index shapes of rank 8 leave no room for the embedding dimension.
    let deep = Tensor::from_slice(ctx(), &[0i32], &[1; 8]).unwrap();
    assert!(w.embedding(&deep).is_err());
}
