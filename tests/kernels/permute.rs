//! Permute, transpose and t() against the reference.
// Tests unwrap freely: a failure should panic with the error.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{assert_close, ctx, Rng, RngExt};
use kiln::reference::permute as reference;
use kiln::Tensor;

/// A seeded random permutation of 0..rank (Fisher-Yates).
fn random_permutation(rng: &mut Rng, rank: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..rank).collect();
    for i in (1..rank).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        p.swap(i, j);
    }
    p
}

/// Permutes a seeded random tensor of `shape` by `dims`; checks values (exactly) and shape.
fn check(shape: &[usize], dims: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let x = rng.vec(shape.iter().product(), -5.0, 5.0);
    let t = Tensor::from_slice(ctx(), &x, shape).unwrap();
    let out = t.permute(dims).unwrap();
    let (want, want_shape) = reference::permute(&x, shape, dims).unwrap();
    let what = format!("permute {shape:?} by {dims:?}");
    assert_eq!(out.shape(), want_shape.as_slice(), "{what}: shape");
    assert_close(&what, &out.to_vec::<f32>().unwrap(), &want, 0.0, 0.0);
    out
}

#[test]
fn permute_matches_reference_for_random_permutations_of_ranks_2_to_6() {
    let sizes = [1usize, 2, 3, 5, 7, 4, 1, 6];
    let mut rng = Rng::new(1);
    let mut seed = 100;
    for rank in 2..=6 {
        for _ in 0..12 {
            let shape: Vec<usize> = (0..rank)
                .map(|_| sizes[(rng.next_u64() % sizes.len() as u64) as usize])
                .collect();
            let dims = random_permutation(&mut rng, rank);
            seed += 1;
            check(&shape, &dims, seed);
        }
    }
}

#[test]
fn permute_handles_ranks_7_and_8() {
    let mut rng = Rng::new(2);
    for (shape, seed) in [
        (&[2usize, 3, 1, 2, 3, 2, 2][..], 200),
        (&[2, 1, 3, 2, 2, 3, 1, 2], 201),
    ] {
        for _ in 0..4 {
            let dims = random_permutation(&mut rng, shape.len());
            check(shape, &dims, seed);
        }
        let reversed: Vec<usize> = (0..shape.len()).rev().collect();
        check(shape, &reversed, seed);
    }
}

#[test]
fn permute_matches_reference_on_sizes_past_the_workgroup() {
    check(&[257, 129], &[1, 0], 300);
    check(&[3, 1000, 7], &[2, 0, 1], 301);
    check(&[13, 17, 19], &[1, 2, 0], 302);
    // Blocks that stay in order merge: (a, b, c, d) -> (c, d, a, b) is one 2-D transpose.
    check(&[5, 6, 7, 11], &[2, 3, 0, 1], 303);
    check(&[2, 3, 5, 7, 11, 2], &[3, 4, 5, 0, 1, 2], 304);
}

#[test]
fn transpose_swaps_two_dims_given_positive_or_negative() {
    let shape = [2usize, 3, 5, 7];
    for (d0, d1, dims) in [
        (0isize, 1isize, [1usize, 0, 2, 3]),
        (1, 3, [0, 3, 2, 1]),
        (-1, 0, [3, 1, 2, 0]),
        (-3, -2, [0, 2, 1, 3]),
    ] {
        let mut rng = Rng::new(400 + d0.unsigned_abs() as u64);
        let x = rng.vec(210, -5.0, 5.0);
        let t = Tensor::from_slice(ctx(), &x, &shape).unwrap();
        let out = t.transpose(d0, d1).unwrap();
        let (want, want_shape) = reference::permute(&x, &shape, &dims).unwrap();
        assert_eq!(out.shape(), want_shape.as_slice());
        assert_close(
            &format!("transpose({d0}, {d1})"),
            &out.to_vec::<f32>().unwrap(),
            &want,
            0.0,
            0.0,
        );
    }
}

#[test]
fn t_swaps_the_last_two_dims() {
    let mut rng = Rng::new(500);
    for shape in [&[7usize, 3][..], &[4, 5, 3], &[2, 3, 1, 6]] {
        let x = rng.vec(shape.iter().product(), -5.0, 5.0);
        let t = Tensor::from_slice(ctx(), &x, shape).unwrap();
        let r = shape.len();
        let mut dims: Vec<usize> = (0..r).collect();
        dims.swap(r - 2, r - 1);
        let (want, want_shape) = reference::permute(&x, shape, &dims).unwrap();
        let out = t.t().unwrap();
        assert_eq!(out.shape(), want_shape.as_slice());
        assert_close(
            &format!("t() of {shape:?}"),
            &out.to_vec::<f32>().unwrap(),
            &want,
            0.0,
            0.0,
        );
        // Transposing twice gives the input back.
        assert_eq!(out.t().unwrap().to_vec::<f32>().unwrap(), x);
    }
}

#[test]
fn t_needs_rank_two() {
    for shape in [&[][..], &[5][..]] {
        let t = Tensor::zeros(ctx(), shape).unwrap();
        let err = t.t().unwrap_err().to_string();
        assert!(err.contains("t") && err.contains("rank"), "{err}");
    }
}

#[test]
fn identity_and_size_one_moves_are_views_without_a_kernel() {
    let mut rng = Rng::new(600);
    let x = rng.vec(35, -5.0, 5.0);
    // Realized input: a view of it is realized at once, so no kernel was recorded.
    let t = Tensor::from_slice(ctx(), &x, &[1, 5, 1, 7]).unwrap();
    // (dims, whether it moves a dim of size > 1 past another).
    for (dims, moves) in [
        ([0usize, 1, 2, 3], false),
        ([2, 1, 0, 3], false),
        ([1, 0, 2, 3], false),
        ([0, 1, 3, 2], false),
        ([1, 3, 2, 0], false),
        ([3, 2, 1, 0], true),
        ([0, 3, 2, 1], true),
    ] {
        let out = t.permute(&dims).unwrap();
        assert_eq!(
            out.is_realized(),
            !moves,
            "{dims:?}: a view exactly when nothing moves"
        );
        let (want, want_shape) = reference::permute(&x, &[1, 5, 1, 7], &dims).unwrap();
        assert_eq!(out.shape(), want_shape.as_slice());
        assert_close(
            &format!("{dims:?}"),
            &out.to_vec::<f32>().unwrap(),
            &want,
            0.0,
            0.0,
        );
    }
    let same = t.transpose(2, -2).unwrap();
    assert!(same.is_realized());
    assert_eq!(same.shape(), &[1, 5, 1, 7]);
}

#[test]
fn size_one_dims_anywhere_are_moved_correctly() {
    check(&[1, 3, 1, 4, 1], &[4, 3, 2, 1, 0], 700);
    check(&[3, 1, 4, 1, 2], &[2, 0, 4, 1, 3], 701);
    check(&[1, 1, 1], &[2, 0, 1], 702);
    check(&[6, 1], &[1, 0], 703);
}

#[test]
fn permute_reads_views_and_pending_results() {
    let mut rng = Rng::new(800);
    let x = rng.vec(60, -5.0, 5.0);
    let t = Tensor::from_slice(ctx(), &x, &[60]).unwrap();
    let v = t.reshape(&[3, 4, 5]).unwrap();
    let (want, _) = reference::permute(&x, &[3, 4, 5], &[2, 0, 1]).unwrap();
    assert_close(
        "view",
        &v.permute(&[2, 0, 1]).unwrap().to_vec::<f32>().unwrap(),
        &want,
        0.0,
        0.0,
    );
    // A pending result, permuted, then permuted back within one graph.
    let neg: Vec<f32> = x.iter().map(|v| -v).collect();
    let p = t.neg().unwrap().reshape(&[4, 15]).unwrap().t().unwrap();
    let back = p.reshape(&[3, 5, 4]).unwrap().permute(&[2, 0, 1]).unwrap();
    let (a, _) = reference::permute(&neg, &[4, 15], &[1, 0]).unwrap();
    let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
    let (want, want_shape) = reference::permute(&a32, &[3, 5, 4], &[2, 0, 1]).unwrap();
    assert_eq!(back.shape(), want_shape.as_slice());
    assert_close("pending", &back.to_vec::<f32>().unwrap(), &want, 0.0, 0.0);
}

#[test]
fn empty_tensors_permute_to_empty_tensors() {
    let t = Tensor::from_slice::<f32>(ctx(), &[], &[3, 0, 2]).unwrap();
    let out = t.permute(&[2, 1, 0]).unwrap();
    assert_eq!(out.shape(), &[2, 0, 3]);
    assert!(out.to_vec::<f32>().unwrap().is_empty());
}

#[test]
fn invalid_permutations_are_refused_naming_permute_and_the_dims() {
    let t = Tensor::zeros(ctx(), &[2, 3, 4]).unwrap();
    for dims in [&[0usize, 1][..], &[0, 1, 2, 3], &[0, 0, 2], &[0, 1, 3], &[]] {
        let err = t.permute(dims).unwrap_err().to_string();
        assert!(
            err.contains("permute") && err.contains(&format!("{dims:?}")),
            "{err}"
        );
    }
    let err = t.transpose(0, 3).unwrap_err().to_string();
    assert!(
        err.contains("transpose") && err.contains("out of range"),
        "{err}"
    );
    assert!(t.transpose(-4, 0).is_err());
}
