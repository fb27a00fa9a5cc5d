//! The benchmark's own kernels: the ceiling kernels compute what their f64 models say (so the
//! peak `kiln bench` measures is real work). The runner's arithmetic (roofline fraction, timing
//! modes, report lines) is tested in its module, src/cli/bench.rs.

mod common;

use common::{assert_close, ctx, Rng, RngExt};
use kiln::kernels::ceiling::{ceiling_copy, ceiling_fma};
use kiln::Tensor;

#[test]
fn ceiling_fma_matches_its_reference_for_every_chain_count() {
    let seed = [0.25f32, 0.75, 0.125, 0.0];
    let s = Tensor::from_slice(ctx(), &seed, &[4]).unwrap();
    // 1,000 invocations: not a multiple of the workgroup size; trips that stop short of the
    // fixed point, so every FMA shows in the sum.
    for (chains, trips) in [(1u32, 3u32), (2, 5), (4, 1), (7, 4), (8, 6)] {
        let got = ceiling_fma(&s, 1000, trips, chains)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let want = kiln::reference::ceiling::ceiling_fma(&seed, 1000, trips, chains);
        assert_close(
            &format!("ceiling_fma chains={chains} trips={trips}"),
            &got,
            &want,
            1e-4,
            1e-5,
        );
    }
}

#[test]
fn ceiling_copy_copies_every_element() {
    // 4 * 1,031 elements: the last invocations' second and later trips fall off the end.
    let n = 4 * 1031;
    let data = Rng::new(5).vec(n, -2.0, 2.0);
    let x = Tensor::from_slice(ctx(), &data, &[n]).unwrap();
    let got = ceiling_copy(&x).unwrap().to_vec::<f32>().unwrap();
    let want: Vec<f64> = data.iter().map(|&v| f64::from(v)).collect();
    assert_close("ceiling_copy", &got, &want, 0.0, 0.0);
}

#[test]
fn ceiling_kernels_reject_bad_arguments() {
    let x = Tensor::from_slice(ctx(), &[1.0f32, 2.0, 3.0], &[3]).unwrap();
    assert!(ceiling_copy(&x).is_err(), "3 elements are not whole vec4s");
    assert!(ceiling_fma(&x, 10, 1, 1).is_err(), "seed needs 4 values");
    let s = Tensor::from_slice(ctx(), &[0.5f32, 0.5, 0.5, 0.0], &[4]).unwrap();
    assert!(ceiling_fma(&s, 10, 1, 0).is_err());
    assert!(ceiling_fma(&s, 10, 1, 9).is_err());
    assert!(ceiling_fma(&s, 0, 1, 1).is_err());
}
