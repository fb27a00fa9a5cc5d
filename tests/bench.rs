//! The benchmark's own kernels and arithmetic: the ceiling kernels compute what their f64
//! models say (so the peak they measure is real work), the roofline fraction follows its
//! definition, and result lines carry the new fields.

mod common;

use common::{assert_close, ctx, Rng, RngExt};
use kiln::bench::{self, Ceilings, Timing};
use kiln::Tensor;

#[test]
fn ceiling_fma_matches_its_reference_for_every_chain_count() {
    let seed = [0.25f32, 0.75, 0.125, 0.0];
    let s = Tensor::from_slice(ctx(), &seed, &[4]).unwrap();
    // 1,000 invocations: not a multiple of the workgroup size; trips that stop short of the
    // fixed point, so every FMA shows in the sum.
    for (chains, trips) in [(1u32, 3u32), (2, 5), (4, 1), (7, 4), (8, 6)] {
        let got = bench::ceiling_fma(&s, 1000, trips, chains)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let want = bench::ceiling_fma_reference(&seed, 1000, trips, chains);
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
    let got = bench::ceiling_copy(&x).unwrap().to_vec::<f32>().unwrap();
    let want: Vec<f64> = data.iter().map(|&v| f64::from(v)).collect();
    assert_close("ceiling_copy", &got, &want, 0.0, 0.0);
}

#[test]
fn ceiling_kernels_reject_bad_arguments() {
    let x = Tensor::from_slice(ctx(), &[1.0f32, 2.0, 3.0], &[3]).unwrap();
    assert!(
        bench::ceiling_copy(&x).is_err(),
        "3 elements are not whole vec4s"
    );
    assert!(
        bench::ceiling_fma(&x, 10, 1, 1).is_err(),
        "seed needs 4 values"
    );
    let s = Tensor::from_slice(ctx(), &[0.5f32, 0.5, 0.5, 0.0], &[4]).unwrap();
    assert!(bench::ceiling_fma(&s, 10, 1, 0).is_err());
    assert!(bench::ceiling_fma(&s, 10, 1, 9).is_err());
    assert!(bench::ceiling_fma(&s, 0, 1, 1).is_err());
}

#[test]
fn roofline_fraction_takes_the_slower_roof() {
    let c = Ceilings {
        gflops: 100.0,
        gbps: 10.0,
    };
    // 1 GFLOP over 1 GB: memory takes 0.1 s, compute 0.01 s; run in 0.2 s -> half the roof.
    let (f, b) = c.fraction(1e9, 1e9, 0.2);
    assert!((f - 0.5).abs() < 1e-12 && b == "memory", "{f} {b}");
    // 10 GFLOP over 1 MB: compute bound, 0.1 s at best; run in 0.4 s.
    let (f, b) = c.fraction(1e10, 1e6, 0.4);
    assert!((f - 0.25).abs() < 1e-12 && b == "compute", "{f} {b}");
    // No FLOPs at all (a copy): the bandwidth alone.
    let (f, b) = c.fraction(0.0, 2e9, 0.2);
    assert!((f - 1.0).abs() < 1e-12 && b == "memory", "{f} {b}");
}

#[test]
fn timing_modes_parse_and_reject_unknown_names() {
    assert_eq!("gpu".parse::<Timing>().unwrap(), Timing::Gpu);
    assert_eq!("wall".parse::<Timing>().unwrap(), Timing::Wall);
    assert!("cpu".parse::<Timing>().is_err());
    assert_eq!(Timing::default(), Timing::Gpu);
}

#[test]
fn cold_start_report_lines_round_trip() {
    let r = bench::ColdStartRun {
        total_ms: 1234.5,
        context_ms: 70.25,
        build_ms: 3.0,
        compile_ms: 350.0,
        step_ms: 800.5,
        cache_bytes: 96,
    };
    let back = bench::ColdStartRun::parse(&r.line()).unwrap();
    assert!((back.total_ms - r.total_ms).abs() < 0.1 && (back.step_ms - r.step_ms).abs() < 0.1);
    assert_eq!(back.cache_bytes, 96);
    assert!(bench::ColdStartRun::parse("case=x median_ms=1").is_none());
}
