//! Philox4x32-10 random tensors: known-answer vectors for the host Philox, the GPU against the
//! host reference, reproducibility, and the statistics of large samples.

use crate::common;

use common::{assert_close, ctx};
use kiln::reference::random as reference;
use kiln::{Error, Result, Tensor};

/// 1, sizes around a Philox block (4) and a workgroup (256 blocks = 1,024 elements), a prime.
const SIZES: [usize; 9] = [1, 3, 4, 5, 255, 257, 1023, 1025, 10_007];

/// Seeds exercising both key words.
const SEEDS: [u64; 4] = [0, 42, 0x1234_5678_9ABC_DEF0, u64::MAX];

/// Samples for the statistics tests (prime, so the last block is partial).
const BIG: usize = 1_000_003;

fn words(text: &str) -> Vec<u32> {
    text.split_whitespace()
        .map(|w| u32::from_str_radix(w, 16).expect("a hex word"))
        .collect()
}

/// Random123 `tests/kat_vectors`, the `philox4x32 10` lines: counter words, key words, output.
#[test]
fn philox_matches_random123_known_answer_vectors() {
    let kat = [
        (
            "00000000 00000000 00000000 00000000",
            "00000000 00000000",
            "6627e8d5 e169c58d bc57ac4c 9b00dbd8",
        ),
        (
            "ffffffff ffffffff ffffffff ffffffff",
            "ffffffff ffffffff",
            "408f276d 41c83b0e a20bc7c6 6d5451fd",
        ),
        (
            "243f6a88 85a308d3 13198a2e 03707344",
            "a4093822 299f31d0",
            "d16cfe09 94fdcceb 5001e420 24126ea1",
        ),
    ];
    for (ctr, key, want) in kat {
        let c = words(ctr);
        let k = words(key);
        let got = reference::philox4x32_10([c[0], c[1], c[2], c[3]], [k[0], k[1]]);
        assert_eq!(got.to_vec(), words(want), "counter {ctr}, key {key}");
    }
}

/// The shader's mulhilo (16-bit halves, no 64-bit type), transcribed, against the u64 one.
fn mulhilo_16bit_halves(a: u32, b: u32) -> (u32, u32) {
    let (a0, a1, b0, b1) = (a & 0xFFFF, a >> 16, b & 0xFFFF, b >> 16);
    let (p00, p01, p10, p11) = (a0 * b0, a0 * b1, a1 * b0, a1 * b1);
    let mid = (p00 >> 16) + (p01 & 0xFFFF) + (p10 & 0xFFFF);
    // Checked adds: the shader relies on these partial sums never wrapping.
    let hi = [p01 >> 16, p10 >> 16, mid >> 16]
        .into_iter()
        .try_fold(p11, u32::checked_add)
        .expect("high word overflowed");
    (hi, a.wrapping_mul(b))
}

#[test]
fn mulhilo_from_16_bit_halves_matches_64_bit_multiply() {
    let edges = [
        0u32,
        1,
        0xFFFF,
        0x1_0000,
        0x1_FFFF,
        0x8000_0000,
        0xFFFF_0000,
        0x0000_FFFF,
        0xFFFF_FFFE,
        0xFFFF_FFFF,
        reference::PHILOX_M0,
        reference::PHILOX_M1,
    ];
    for &a in &edges {
        for &b in &edges {
            assert_eq!(
                mulhilo_16bit_halves(a, b),
                reference::mulhilo(a, b),
                "{a:#x} * {b:#x}"
            );
        }
    }
    let mut rng = common::Rng::new(7);
    for _ in 0..200_000 {
        let x = rng.next_u64();
        let (a, b) = (x as u32, (x >> 32) as u32);
        assert_eq!(
            mulhilo_16bit_halves(a, b),
            reference::mulhilo(a, b),
            "{a:#x} * {b:#x}"
        );
    }
}

#[test]
fn rand_matches_reference_bit_for_bit_at_odd_sizes() -> Result<()> {
    let ctx = ctx();
    for seed in SEEDS {
        for n in SIZES {
            let got = Tensor::rand(ctx, &[n], seed)?.to_vec::<f32>()?;
            let want = reference::uniform(seed, n, 0.0, 1.0);
            // u = (x >> 8) * 2^-24 is exact in f32, so the GPU must agree exactly.
            assert_close(&format!("rand seed={seed} n={n}"), &got, &want, 0.0, 0.0);
        }
    }
    Ok(())
}

#[test]
fn rand_uniform_matches_reference_at_odd_sizes() -> Result<()> {
    let ctx = ctx();
    for (lo, hi) in [(-3.0f32, 5.0f32), (10.0, 10.5), (-1e-3, 0.0)] {
        for n in SIZES {
            let seed = 1000 + n as u64;
            let t = Tensor::rand_uniform(ctx, &[n], lo, hi, seed)?;
            let got = t.to_vec::<f32>()?;
            let want = reference::uniform(seed, n, f64::from(lo), f64::from(hi));
            // One f32 rounding of (hi - lo), the product and the sum: about 1 ulp of the result.
            let what = format!("rand_uniform [{lo}, {hi}) n={n}");
            assert_close(&what, &got, &want, 1e-6, 4e-7);
        }
    }
    Ok(())
}

#[test]
fn randn_matches_reference_at_odd_sizes() -> Result<()> {
    let ctx = ctx();
    for (mean, std) in [(0.0f32, 1.0f32), (3.0, 2.0), (-1.0, 0.25)] {
        for n in SIZES {
            let seed = 77 + n as u64;
            let t = Tensor::randn(ctx, &[n], mean, std, seed)?;
            let got = t.to_vec::<f32>()?;
            let want = reference::normal(seed, n, f64::from(mean), f64::from(std));
            let what = format!("randn mean={mean} std={std} n={n}");
            assert_close(&what, &got, &want, 1e-4 * f64::from(std), 1e-6);
        }
    }
    Ok(())
}

#[test]
fn randn_matches_reference_over_a_million_values() -> Result<()> {
    let ctx = ctx();
    let seed = 0xDEAD_BEEF;
    let got = Tensor::randn(ctx, &[BIG], 0.0, 1.0, seed)?.to_vec::<f32>()?;
    let want = reference::normal(seed, BIG, 0.0, 1.0);
    let worst = got
        .iter()
        .zip(&want)
        .map(|(&g, &w)| (f64::from(g) - w).abs())
        .fold(0.0f64, f64::max);
    eprintln!("randn over {BIG} values: max |gpu - reference| = {worst:.3e}");
    assert_close("randn 1M", &got, &want, 1e-4, 0.0);
    Ok(())
}

fn bits(t: &Tensor) -> Result<Vec<u32>> {
    Ok(t.to_vec::<f32>()?.iter().map(|v| v.to_bits()).collect())
}

#[test]
fn same_seed_gives_identical_bits_twice() -> Result<()> {
    let ctx = ctx();
    for n in [1, 5, 4099] {
        let a = bits(&Tensor::rand(ctx, &[n], 9)?)?;
        let b = bits(&Tensor::rand(ctx, &[n], 9)?)?;
        assert_eq!(a, b, "rand n={n}");
        let a = bits(&Tensor::randn(ctx, &[n], 0.5, 2.0, 9)?)?;
        let b = bits(&Tensor::randn(ctx, &[n], 0.5, 2.0, 9)?)?;
        assert_eq!(a, b, "randn n={n}");
        let a = bits(&Tensor::rand_uniform(ctx, &[n], -2.0, 7.0, 9)?)?;
        let b = bits(&Tensor::rand_uniform(ctx, &[n], -2.0, 7.0, 9)?)?;
        assert_eq!(a, b, "rand_uniform n={n}");
    }
    Ok(())
}

#[test]
fn values_depend_only_on_seed_and_index_not_on_other_work_or_shape() -> Result<()> {
    let ctx = ctx();
    let alone = bits(&Tensor::randn(ctx, &[3, 5, 7], 0.0, 1.0, 123)?)?;

    // Recorded among other random ops and arithmetic, realized in one submission.
    let noise = Tensor::rand(ctx, &[1000], 5)?;
    let t = Tensor::randn(ctx, &[3, 5, 7], 0.0, 1.0, 123)?;
    let other = Tensor::randn(ctx, &[3, 5, 7], 0.0, 1.0, 124)?;
    let sum = t.add(&other)?;
    ctx.realize(&[&noise, &sum, &t])?;
    assert_eq!(bits(&t)?, alone, "randn among other work");

    // Another shape with more elements: the first 105 values are the same.
    let flat = bits(&Tensor::randn(ctx, &[2, 100], 0.0, 1.0, 123)?)?;
    assert_eq!(
        &flat[..105],
        &alone[..],
        "randn [3, 5, 7] vs the prefix of [2, 100]"
    );

    let u = bits(&Tensor::rand(ctx, &[11, 13], 8)?)?;
    let v = bits(&Tensor::rand(ctx, &[143], 8)?)?;
    assert_eq!(u, v, "rand [11, 13] vs [143]");
    Ok(())
}

#[test]
fn different_seeds_give_different_tensors() -> Result<()> {
    let ctx = ctx();
    let n = 4099;
    // Seeds differing in the low key word, the high key word, and both.
    let seeds = [0u64, 1, 1 << 32, u64::MAX, 0xFFFF_FFFF];
    let all: Vec<Vec<u32>> = seeds
        .iter()
        .map(|&s| bits(&Tensor::rand(ctx, &[n], s)?))
        .collect::<Result<_>>()?;
    for i in 0..seeds.len() {
        for j in i + 1..seeds.len() {
            let same = all[i].iter().zip(&all[j]).filter(|(a, b)| a == b).count();
            // Chance agreement is 2^-24 per element.
            assert!(
                same <= 2,
                "seeds {:#x} and {:#x} agree in {same} of {n} elements",
                seeds[i],
                seeds[j]
            );
        }
    }
    let a = bits(&Tensor::randn(ctx, &[n], 0.0, 1.0, 1)?)?;
    let b = bits(&Tensor::randn(ctx, &[n], 0.0, 1.0, 2)?)?;
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    assert!(
        same <= 2,
        "randn seeds 1 and 2 agree in {same} of {n} elements"
    );
    Ok(())
}

fn mean_var(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = v
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var)
}

/// Kolmogorov-Smirnov statistic: the largest gap between the empirical CDF and `cdf`.
fn ks(v: &[f32], cdf: impl Fn(f64) -> f64) -> f64 {
    let mut s: Vec<f64> = v.iter().map(|&x| f64::from(x)).collect();
    s.sort_by(f64::total_cmp);
    let n = s.len() as f64;
    s.iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = cdf(x);
            (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
        })
        .fold(0.0, f64::max)
}

/// erfc with fractional error below 1.2e-7 (Numerical Recipes' Chebyshev fit `erfcc`).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

#[test]
fn normal_cdf_helper_is_accurate() {
    for (x, want) in [
        (0.0, 0.5),
        (1.0, 0.841_344_746_068_542_9),
        (-1.959_963_984_540_054, 0.025),
        (3.0, 0.998_650_101_968_369_9),
    ] {
        assert!(
            (normal_cdf(x) - want).abs() < 1e-7,
            "Phi({x}) = {}",
            normal_cdf(x)
        );
    }
}

#[test]
fn rand_has_uniform_statistics_over_a_million_samples() -> Result<()> {
    let ctx = ctx();
    let v = Tensor::rand(ctx, &[BIG], 2024)?.to_vec::<f32>()?;
    assert!(
        v.iter().all(|&x| (0.0..1.0).contains(&x)),
        "a value outside [0, 1)"
    );
    let (mean, var) = mean_var(&v);
    assert!((mean - 0.5).abs() < 0.002, "mean {mean}");
    assert!((var - 1.0 / 12.0).abs() < 0.002, "variance {var}");
    let d = ks(&v, |x| x.clamp(0.0, 1.0));
    eprintln!("rand: mean {mean:.6}, variance {var:.6}, KS {d:.2e}");
    assert!(d < 0.005, "KS statistic {d} against U(0, 1)");
    Ok(())
}

#[test]
fn randn_has_normal_statistics_over_a_million_samples() -> Result<()> {
    let ctx = ctx();
    let v = Tensor::randn(ctx, &[BIG], 0.0, 1.0, 2025)?.to_vec::<f32>()?;
    assert!(v.iter().all(|x| x.is_finite()), "a non-finite value");
    let (mean, var) = mean_var(&v);
    let std = var.sqrt();
    assert!(mean.abs() < 0.005, "mean {mean}");
    assert!((std - 1.0).abs() < 0.005, "std {std}");
    let d = ks(&v, normal_cdf);
    eprintln!("randn: mean {mean:.6}, std {std:.6}, KS {d:.2e}");
    assert!(d < 0.005, "KS statistic {d} against N(0, 1)");

    // Coarse histogram: the share of samples in each unit-wide bin of [-4, 4] and in the tails.
    let n = v.len() as f64;
    let mut edges: Vec<f64> = (-4..=4).map(f64::from).collect();
    edges.insert(0, f64::NEG_INFINITY);
    edges.push(f64::INFINITY);
    for w in edges.windows(2) {
        let (a, b) = (w[0], w[1]);
        let got = v
            .iter()
            .filter(|&&x| f64::from(x) >= a && f64::from(x) < b)
            .count() as f64
            / n;
        let want = normal_cdf(b) - normal_cdf(a);
        assert!(
            (got - want).abs() < 0.002,
            "share in [{a}, {b}): got {got:.5}, want {want:.5}"
        );
    }

    // The two halves of each Box-Muller pair (cos and sin) are both standard normal.
    for phase in 0..2 {
        let half: Vec<f32> = v.iter().skip(phase).step_by(2).copied().collect();
        let (m, var) = mean_var(&half);
        assert!(
            m.abs() < 0.007 && (var.sqrt() - 1.0).abs() < 0.007,
            "phase {phase}: {m} {var}"
        );
    }
    Ok(())
}

#[test]
fn randn_applies_mean_and_std() -> Result<()> {
    let ctx = ctx();
    let v = Tensor::randn(ctx, &[200_003], -5.0, 3.0, 31)?.to_vec::<f32>()?;
    let (mean, var) = mean_var(&v);
    assert!((mean + 5.0).abs() < 0.03, "mean {mean}");
    assert!((var.sqrt() - 3.0).abs() < 0.03, "std {}", var.sqrt());
    let zero = Tensor::randn(ctx, &[9], 2.5, 0.0, 31)?.to_vec::<f32>()?;
    assert_eq!(zero, vec![2.5; 9], "std 0 gives the mean");
    Ok(())
}

#[test]
fn rand_uniform_stays_in_its_half_open_range() -> Result<()> {
    let ctx = ctx();
    let cases = [
        (-3.0f32, 5.0f32),
        (1.0, 1.5),
        (1000.0, 1000.5),
        (-1e-30, 1e-30),
        // One ulp wide: lo + (hi - lo) * u rounds to hi for about half the draws; the cap
        // must bring them back to lo.
        (1.0, 1.0f32.next_up()),
        (-7.0, (-7.0f32).next_up()),
    ];
    for (lo, hi) in cases {
        let v = Tensor::rand_uniform(ctx, &[20_011], lo, hi, 3)?.to_vec::<f32>()?;
        let bad = v.iter().filter(|&&x| !(x >= lo && x < hi)).count();
        assert_eq!(bad, 0, "[{lo}, {hi}): {bad} values outside");
        let (mean, _) = mean_var(&v);
        let mid = (f64::from(lo) + f64::from(hi)) / 2.0;
        let width = f64::from(hi) - f64::from(lo);
        if width > 1e-3 {
            assert!(
                (mean - mid).abs() < 0.02 * width,
                "[{lo}, {hi}): mean {mean}"
            );
        }
    }
    let same = Tensor::rand_uniform(ctx, &[5], 4.0, 4.0, 3)?.to_vec::<f32>()?;
    assert_eq!(same, vec![4.0; 5], "lo == hi gives lo");
    Ok(())
}

#[test]
fn empty_shapes_give_empty_tensors() -> Result<()> {
    let ctx = ctx();
    assert!(Tensor::rand(ctx, &[0], 1)?.to_vec::<f32>()?.is_empty());
    let t = Tensor::randn(ctx, &[2, 0, 3], 0.0, 1.0, 1)?;
    assert_eq!(t.shape(), &[2, 0, 3]);
    assert!(t.to_vec::<f32>()?.is_empty());
    Ok(())
}

#[test]
fn rand_uniform_and_randn_reject_bad_arguments() -> Result<()> {
    let ctx = ctx();
    let uniform_bad = [
        (2.0f32, 1.0f32),
        (f32::NAN, 1.0),
        (0.0, f32::NAN),
        (f32::NEG_INFINITY, 0.0),
        (0.0, f32::INFINITY),
        (-f32::MAX, f32::MAX),
    ];
    for (lo, hi) in uniform_bad {
        match Tensor::rand_uniform(ctx, &[4], lo, hi, 0) {
            Err(Error::InvalidArgument { op, .. }) => assert_eq!(op, "rand_uniform"),
            other => panic!("rand_uniform({lo}, {hi}) gave {other:?}"),
        }
    }
    let normal_bad = [
        (0.0f32, -1.0f32),
        (0.0, -f32::MIN_POSITIVE),
        (f32::NAN, 1.0),
        (0.0, f32::NAN),
        (f32::INFINITY, 1.0),
        (0.0, f32::INFINITY),
    ];
    for (mean, std) in normal_bad {
        match Tensor::randn(ctx, &[4], mean, std, 0) {
            Err(Error::InvalidArgument { op, .. }) => assert_eq!(op, "randn"),
            other => panic!("randn({mean}, {std}) gave {other:?}"),
        }
    }
    let msg = Tensor::rand_uniform(ctx, &[4], 2.0, 1.0, 0)
        .expect_err("lo > hi must be refused")
        .to_string();
    assert!(
        msg.contains("rand_uniform") && msg.contains('2') && msg.contains('1'),
        "{msg}"
    );
    Ok(())
}
