//! Extra `kiln bench` cases for the comparison with PyTorch on a real GPU (scripts/device-bench.sh,
//! BENCHMARKS.md "H200"): f16 products on the tiled and the cooperative-matrix kernels, f32
//! products at sizes that fill a large GPU, and memory-bound elementwise ops sized far past
//! the L2 cache. src/cli/bench.rs appends them to its table with one hook line.
//!
//! On CPU adapters (lavapipe, llvmpipe) only a small f16 case runs, so the software-adapter
//! bench stays short; `KILN_BENCH_LARGE=1` forces the large cases anywhere. Cases the adapter
//! cannot run (no `SHADER_F16`, no cooperative matrices) are left out with the reason printed
//! on stderr. Names match scripts/torch_bench.py, which times the same work in PyTorch.

use kiln::kernels::matmul_f16::{cooperative_support, F16Kernel};
use kiln::Result;
use kiln::{Context, Tensor};

/// One extra case: what `kiln bench` needs to time it.
pub struct ExtraCase {
    /// Case name, the same in scripts/torch_bench.py.
    pub name: String,
    /// Floating-point operations of one run.
    pub flops: f64,
    /// Bytes one run must read and write at least.
    pub bytes: f64,
    /// Records the work of one run (inputs already realized).
    pub build: Box<dyn Fn() -> Result<Vec<Tensor>>>,
}

/// Uniform values in [-1, 1) from a seeded xorshift generator (host side, so the bench does not
/// depend on kiln's random kernels).
fn seeded(ctx: &Context, shape: &[usize], seed: u64) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0xD134_2543_DE82_EF95) | 1;
    let data: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        })
        .collect();
    Tensor::from_slice(ctx, &data, shape)
}

/// Whether the large (GPU-sized) cases run: on non-CPU adapters, or with `KILN_BENCH_LARGE=1`.
fn large(ctx: &Context) -> bool {
    let forced = std::env::var("KILN_BENCH_LARGE").is_ok_and(|v| v.trim() == "1");
    forced || ctx.adapter_info().device_type != wgpu::DeviceType::Cpu
}

/// Whether one buffer of `bytes` fits the device's binding limit; prints why a case is left
/// out when it does not (lavapipe allows 128 MiB, NVIDIA's Vulkan driver 4 GiB).
fn fits(ctx: &Context, name: &str, bytes: usize) -> bool {
    let limit = ctx
        .limits()
        .max_storage_buffer_binding_size
        .min(ctx.limits().max_buffer_size);
    let ok = bytes as u64 <= limit;
    if !ok {
        eprintln!("bench: {name} skipped: a {bytes}-byte buffer exceeds the device limit {limit}");
    }
    ok
}

/// The extra cases this adapter can run, inputs uploaded and realized.
pub fn cases(ctx: &Context) -> Result<Vec<ExtraCase>> {
    let mut out = Vec::new();
    let big = large(ctx);
    if big {
        for n in [4096usize, 8192] {
            if !fits(ctx, &format!("matmul_f32_n{n}"), 4 * n * n) {
                continue;
            }
            let a = seeded(ctx, &[n, n], 71)?;
            let b = seeded(ctx, &[n, n], 72)?;
            let nf = n as f64;
            out.push(ExtraCase {
                name: format!("matmul_f32_n{n}"),
                flops: 2.0 * nf * nf * nf,
                bytes: 3.0 * 4.0 * nf * nf,
                build: Box::new(move || Ok(vec![a.matmul(&b)?])),
            });
        }
        // Memory-bound: 2^26 elements (256 MiB per f32 operand), far past any L2.
        let n = 1usize << 26;
        if !fits(ctx, "add_f32_n67108864 and relu_f32_n67108864", 4 * n) {
            return f16_cases(ctx, big, out);
        }
        let x = seeded(ctx, &[n], 81)?;
        let y = seeded(ctx, &[n], 82)?;
        let x2 = x.clone();
        out.push(ExtraCase {
            name: format!("add_f32_n{n}"),
            flops: n as f64,
            bytes: 3.0 * 4.0 * n as f64,
            build: Box::new(move || Ok(vec![x2.add(&y)?])),
        });
        out.push(ExtraCase {
            name: format!("relu_f32_n{n}"),
            flops: n as f64,
            bytes: 2.0 * 4.0 * n as f64,
            build: Box::new(move || Ok(vec![x.relu()?])),
        });
    }
    f16_cases(ctx, big, out)
}

/// Appends the f16 products to `out`.
fn f16_cases(ctx: &Context, big: bool, mut out: Vec<ExtraCase>) -> Result<Vec<ExtraCase>> {
    if !ctx.features().contains(wgpu::Features::SHADER_F16) {
        eprintln!("bench: f16 cases skipped: the adapter lacks SHADER_F16");
        return Ok(out);
    }
    let coop = match cooperative_support(ctx) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("bench: matmul_f16_coop_* skipped: {e}");
            false
        }
    };
    let sizes: &[usize] = if big {
        &[1024, 2048, 4096, 8192]
    } else {
        &[256]
    };
    for &n in sizes {
        // The f32 staging tensor is the largest buffer (the result is f32 too).
        if !fits(ctx, &format!("matmul_f16_*_n{n}"), 4 * n * n) {
            continue;
        }
        let a = seeded(ctx, &[n, n], 91)?.to_f16()?;
        let b = seeded(ctx, &[n, n], 92)?.to_f16()?;
        a.realize()?;
        b.realize()?;
        let nf = n as f64;
        let flops = 2.0 * nf * nf * nf;
        // f16 operands in, f32 result out.
        let bytes = (2.0 * 2.0 + 4.0) * nf * nf;
        let mut kernels = vec![("tiled", F16Kernel::Tiled)];
        if coop {
            kernels.push(("coop", F16Kernel::Cooperative));
        }
        for (tag, kernel) in kernels {
            let (a, b) = (a.clone(), b.clone());
            out.push(ExtraCase {
                name: format!("matmul_f16_{tag}_n{n}"),
                flops,
                bytes,
                build: Box::new(move || Ok(vec![a.matmul_f16_with(&b, kernel)?])),
            });
        }
    }
    Ok(out)
}
