//! Half precision (shaders/matmul_f16.wgsl, shaders/matmul_coop.wgsl): the f32 <-> f16 casts
//! bit-exact against a host rounding reference, the f16 products against the f64 reference on
//! the same (f16-representable) inputs, clear errors where the adapter lacks a feature, and both
//! shaders through naga's validator and SPIR-V writer with the capabilities they enable.
//!
//! On adapters without SHADER_F16 (OpenGL) the GPU tests check the refusal instead. The
//! cooperative kernel runs for real only where the context was opened with it
//! (`KILN_EXPERIMENTAL_COOP=1` on an adapter offering 16x16x16 f16 -> f32 cooperative
//! matrices); elsewhere its test checks the error that names the missing piece.

use crate::common;

use common::{assert_close, ctx, Rng, RngExt};
use kiln::kernels::matmul_f16::{cooperative_support, F16Kernel};
use kiln::{Error, Tensor};

/// f32 -> f16 bits, round to nearest even; overflow to inf, NaN kept (quiet).
fn f16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        // Subnormal (or zero) in f16: shift the full significand, rounding to nearest even.
        if e < -10 {
            return sign;
        }
        let full = man | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = full >> shift;
        let rem = full & ((1 << shift) - 1);
        let mid = 1 << (shift - 1);
        let round = rem > mid || (rem == mid && half & 1 == 1);
        return sign | (half + u32::from(round)) as u16;
    }
    let half = ((e as u32) << 10) | (man >> 13);
    let rem = man & 0x1fff;
    let round = rem > 0x1000 || (rem == 0x1000 && half & 1 == 1);
    // A carry out of the mantissa correctly bumps the exponent (up to inf).
    sign | (half + u32::from(round)) as u16
}

/// f16 bits -> f32 (exact).
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0f32 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let man = f32::from(h & 0x3ff);
    match exp {
        0 => sign * man * 2f32.powi(-24),
        0x1f if man == 0.0 => sign * f32::INFINITY,
        0x1f => f32::NAN,
        _ => sign * (1.0 + man / 1024.0) * 2f32.powi(exp - 15),
    }
}

/// `x` rounded to the nearest f16, as f32.
fn round_f16(x: f32) -> f32 {
    f16_to_f32(f16_bits(x))
}

/// Returns false (after checking the refusal names SHADER_F16) where the adapter lacks f16.
fn has_f16() -> bool {
    if ctx().features().contains(wgpu::Features::SHADER_F16) {
        return true;
    }
    let x = Tensor::from_slice(ctx(), &[1.0f32, 2.0], &[2]).unwrap();
    let err = x
        .to_f16()
        .expect_err("to_f16 must refuse without SHADER_F16");
    assert!(
        err.to_string().contains("SHADER_F16"),
        "unclear error: {err}"
    );
    eprintln!("adapter lacks SHADER_F16: checked the refusal only");
    false
}

#[test]
fn host_f16_rounding_reference_is_right_on_known_values() {
    assert_eq!(f16_bits(1.0), 0x3c00);
    assert_eq!(f16_bits(-2.0), 0xc000);
    assert_eq!(f16_bits(65504.0), 0x7bff);
    assert_eq!(f16_bits(65520.0), 0x7c00, "rounds up to inf");
    assert_eq!(f16_bits(2f32.powi(-24)), 0x0001, "smallest subnormal");
    assert_eq!(f16_bits(2f32.powi(-25)), 0x0000, "tie to even (zero)");
    assert_eq!(f16_bits(1.0 + 2f32.powi(-11)), 0x3c00, "tie to even (down)");
    assert_eq!(
        f16_bits(1.0 + 3.0 * 2f32.powi(-11)),
        0x3c02,
        "tie to even (up)"
    );
    for h in [0x0001u16, 0x03ff, 0x0400, 0x3555, 0x7bff, 0x8001, 0xfbff] {
        assert_eq!(f16_bits(f16_to_f32(h)), h, "{h:#06x} round-trips");
    }
}

#[test]
fn casts_to_f16_and_back_round_like_the_host_reference() {
    if !has_f16() {
        return;
    }
    let mut rng = Rng::new(11);
    let mut x = rng.vec(1031, -4.0, 4.0);
    // Range edges: overflow, the largest normal, subnormals, values that underflow to zero.
    x.extend([
        70000.0, -1e6, 65504.0, 65519.0, 6e-5, -3e-6, 1e-8, 0.0, -0.0, 1.0009766,
    ]);
    x.extend(rng.uniform_vec(257, -1.0, 1.0).iter().map(|v| v * 1e-5));
    let n = x.len();
    let t = Tensor::from_slice(ctx(), &x, &[n]).unwrap();
    let h = t.to_f16().unwrap();
    assert_eq!(h.dtype(), kiln::DType::F16);
    let got = h.to_f32().unwrap().to_vec::<f32>().unwrap();
    for (i, (&g, &v)) in got.iter().zip(&x).enumerate() {
        let want = round_f16(v);
        assert!(
            g.to_bits() == want.to_bits() || (g == 0.0 && want == 0.0 && v.abs() < 1e-7),
            "element {i}: f16({v:e}) gave {g:e}, want {want:e}"
        );
    }
}

/// Runs `kernel` on random f16-representable operands and compares with the f64 reference.
fn check_product(kernel: F16Kernel, batch: usize, m: usize, k: usize, n: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let a: Vec<f32> = rng
        .vec(batch * m * k, -1.0, 1.0)
        .into_iter()
        .map(round_f16)
        .collect();
    let b: Vec<f32> = rng
        .vec(batch * k * n, -1.0, 1.0)
        .into_iter()
        .map(round_f16)
        .collect();
    let (sa, sb): (Vec<usize>, Vec<usize>) = if batch == 1 {
        (vec![m, k], vec![k, n])
    } else {
        (vec![batch, m, k], vec![batch, k, n])
    };
    let ta = Tensor::from_slice(ctx(), &a, &sa)
        .unwrap()
        .to_f16()
        .unwrap();
    let tb = Tensor::from_slice(ctx(), &b, &sb)
        .unwrap()
        .to_f16()
        .unwrap();
    let c = ta.matmul_f16_with(&tb, kernel).unwrap();
    let mut want_shape = sa[..sa.len() - 1].to_vec();
    want_shape.push(n);
    assert_eq!(c.shape(), want_shape.as_slice());
    assert_eq!(c.dtype(), kiln::DType::F32);
    let got = c.to_vec::<f32>().unwrap();
    let (want, _) = kiln::reference::matmul::matmul(&a, &sa, &b, &sb, false, false);
    // f32 accumulation of K products of magnitude up to 100 x 100 (the outliers).
    let atol = 2e-6 * k as f64 * 100.0;
    assert_close(
        &format!("{kernel:?} matmul_f16 batch {batch} {m}x{k} @ {k}x{n}"),
        &got,
        &want,
        atol,
        1e-5,
    );
}

#[test]
fn tiled_f16_product_matches_reference_on_ragged_shapes() {
    if !has_f16() {
        return;
    }
    for (i, &(batch, m, k, n)) in [
        (1, 1, 1, 1),
        (1, 7, 13, 5),
        (1, 65, 17, 63),
        (1, 131, 70, 129),
        (3, 67, 33, 71),
        (2, 64, 16, 64),
    ]
    .iter()
    .enumerate()
    {
        check_product(F16Kernel::Tiled, batch, m, k, n, 100 + i as u64);
    }
}

#[test]
fn automatic_kernel_choice_matches_reference() {
    if !has_f16() {
        return;
    }
    check_product(F16Kernel::Auto, 1, 97, 45, 80, 7);
}

#[test]
fn cooperative_product_matches_reference_or_refuses_naming_the_missing_feature() {
    if !has_f16() {
        return;
    }
    match cooperative_support(ctx()) {
        Ok(how) => {
            eprintln!("cooperative matrices available ({how:?}): checking them");
            for (i, &(batch, m, k, n)) in [
                (1, 1, 1, 1),
                (1, 64, 16, 64),
                // Aligned (K, N multiples of 8): the direct path; K = 136 adds a staged half
                // step after the direct ones.
                (1, 128, 64, 192),
                (1, 192, 136, 256),
                (2, 130, 72, 136),
                // Unaligned or ragged: the staged path everywhere.
                (1, 131, 70, 129),
                (3, 67, 33, 71),
                (1, 200, 300, 100),
            ]
            .iter()
            .enumerate()
            {
                check_product(F16Kernel::Cooperative, batch, m, k, n, 200 + i as u64);
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("EXPERIMENTAL_COOPERATIVE_MATRIX")
                    || msg.contains("16x16x16 or 8x8x8")
                    || msg.contains("subgroup size"),
                "unclear refusal: {msg}"
            );
            let a = Tensor::from_slice(ctx(), &[1.0f32; 4], &[2, 2])
                .unwrap()
                .to_f16()
                .unwrap();
            let err = a
                .matmul_f16_with(&a, F16Kernel::Cooperative)
                .expect_err("the cooperative kernel must refuse here");
            assert_eq!(err.to_string(), msg);
            eprintln!("cooperative kernel refused as expected: {msg}");
        }
    }
}

#[test]
fn f16_product_rejects_bad_operands_with_clear_errors() {
    if !has_f16() {
        return;
    }
    let f32s = Tensor::from_slice(ctx(), &[1.0f32; 6], &[2, 3]).unwrap();
    let a = f32s.to_f16().unwrap();
    assert!(matches!(
        f32s.matmul_f16(&a),
        Err(Error::UnsupportedDType { .. })
    ));
    let err = a.matmul_f16(&a).expect_err("2x3 @ 2x3 must fail");
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("matmul_f16") && msg.contains("[2, 3]"),
        "{msg}"
    );
    let b3 = Tensor::from_slice(ctx(), &[1.0f32; 12], &[2, 3, 2])
        .unwrap()
        .to_f16()
        .unwrap();
    let c3 = Tensor::from_slice(ctx(), &[1.0f32; 12], &[3, 2, 2])
        .unwrap()
        .to_f16()
        .unwrap();
    assert!(matches!(
        b3.matmul_f16(&c3),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(a.to_f16(), Err(Error::UnsupportedDType { .. })));
    assert!(matches!(f32s.to_f32(), Err(Error::UnsupportedDType { .. })));
}

fn validate(name: &str, caps: naga::valid::Capabilities) -> Result<naga::Module, String> {
    let src = kiln::shaders::shader_source(name).expect("registered");
    let module = naga::front::wgsl::parse_str(src).map_err(|e| e.emit_to_string(src))?;
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
        .validate(&module)
        .map_err(|e| format!("{}\n{:?}", e.emit_to_string(src), e.into_inner()))?;
    Ok(module)
}

#[test]
fn f16_shaders_validate_only_with_the_capabilities_they_enable() {
    use naga::valid::Capabilities as C;
    validate("matmul_f16", C::SHADER_FLOAT16).unwrap_or_else(|e| panic!("{e}"));
    assert!(validate("matmul_f16", C::empty()).is_err());
    let coop = C::SHADER_FLOAT16 | C::COOPERATIVE_MATRIX;
    validate("matmul_coop", coop).unwrap_or_else(|e| panic!("{e}"));
    assert!(validate("matmul_coop", C::SHADER_FLOAT16).is_err());
}

#[test]
fn cooperative_shader_compiles_to_spirv_with_the_subgroup_size_set() {
    use naga::valid::Capabilities as C;
    let caps = C::SHADER_FLOAT16 | C::COOPERATIVE_MATRIX;
    let module = validate("matmul_coop", caps).unwrap_or_else(|e| panic!("{e}"));
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
        .validate(&module)
        .unwrap();
    let constants = naga::back::PipelineConstants::from([("SG".to_string(), 32.0)]);
    let (module, info) =
        naga::back::pipeline_constants::process_overrides(&module, &info, None, &constants)
            .unwrap_or_else(|e| panic!("{e:?}"));
    for name in ["matmul_coop", "matmul_coop8"] {
        let ep = module
            .entry_points
            .iter()
            .find(|e| e.name == name)
            .expect("entry point");
        assert_eq!(ep.workgroup_size, [32, 1, 1], "{name}");
    }
    // The options wgpu's Vulkan backend uses (wgpu-hal 30, vulkan/adapter.rs): SPIR-V 1.6,
    // index accesses restricted, buffer accesses restricted or unchecked (robustBufferAccess2),
    // workgroup memory zeroed natively or by a polyfill, loops bounded.
    use naga::back::spv::ZeroInitializeWorkgroupMemoryMode as Z;
    use naga::proc::BoundsCheckPolicy as P;
    for buffer in [P::Unchecked, P::Restrict, P::ReadZeroSkipWrite] {
        for zero in [Z::Native, Z::Polyfill] {
            let options = naga::back::spv::Options {
                lang_version: (1, 6),
                bounds_check_policies: naga::proc::BoundsCheckPolicies {
                    index: P::Restrict,
                    buffer,
                    image_load: P::Restrict,
                    binding_array: P::Unchecked,
                },
                zero_initialize_workgroup_memory: zero,
                force_loop_bounding: true,
                ..Default::default()
            };
            let words = naga::back::spv::write_vec(&module, &info, &options, None)
                .unwrap_or_else(|e| panic!("SPIR-V with {buffer:?}, {zero:?}: {e}"));
            assert!(words.len() > 100);
            // With SPIRV_OUT=prefix set, keep the words for `spirv-val`.
            if let Ok(prefix) = std::env::var("SPIRV_OUT") {
                let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
                std::fs::write(format!("{prefix}-{buffer:?}-{zero:?}.spv"), bytes).unwrap();
            }
        }
    }
}
