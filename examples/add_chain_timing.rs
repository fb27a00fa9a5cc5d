//! Wall-clock timing of a chain of 1,000 `acc = acc.add(&y)` on 1,024 floats, measured the way
//! the burn peer benchmark measures it: from the start of recording to the end of a device sync
//! (record + realize + wait), so the CPU cost of recording, planning and pipeline lookup counts.
//!
//! `cargo run --release --example add_chain_timing [-- OPS N REPS]`; `KILN_FUSION=0` turns
//! elementwise fusion off for a comparison.

use std::time::Instant;

use kiln::{Context, Tensor};

fn main() -> kiln::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let ops = args.first().copied().unwrap_or(1000);
    let n = args.get(1).copied().unwrap_or(1024);
    let reps = args.get(2).copied().unwrap_or(50);
    let ctx = Context::new()?;
    let xv: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
    let yv: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos() * 1e-3).collect();
    let x = Tensor::from_slice(&ctx, &xv, &[n])?;
    let y = Tensor::from_slice(&ctx, &yv, &[n])?;
    ctx.synchronize()?;
    let once = || -> kiln::Result<(f64, f64, f64)> {
        let t0 = Instant::now();
        let mut acc = x.clone();
        for _ in 0..ops {
            acc = acc.add(&y)?;
        }
        let t1 = Instant::now();
        acc.realize()?;
        let t2 = Instant::now();
        ctx.synchronize()?;
        let t3 = Instant::now();
        Ok((
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t3 - t0).as_secs_f64(),
        ))
    };
    // Warm-up: pipelines, pool, bind groups. The first run compiles the generated kernels.
    let cold = once()?;
    println!("cold run (compiles): {:.1} ms", cold.2 * 1e3);
    for _ in 0..5 {
        once()?;
    }
    let before = ctx.memory_stats();
    let mut rec = Vec::with_capacity(reps);
    let mut real = Vec::with_capacity(reps);
    let mut total = Vec::with_capacity(reps);
    for _ in 0..reps {
        let (r, z, t) = once()?;
        rec.push(r);
        real.push(z);
        total.push(t);
    }
    let after = ctx.memory_stats();
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (r, z, t) = (median(&mut rec), median(&mut real), median(&mut total));
    println!(
        "ops={ops} n={n} reps={reps}: total {:.3} us/op (record {:.3}, realize call {:.3}), \
         {} dispatches and {} pipelines per realization",
        t * 1e6 / ops as f64,
        r * 1e6 / ops as f64,
        z * 1e6 / ops as f64,
        (after.dispatches - before.dispatches) / reps as u64,
        (after.pipelines_created - before.pipelines_created) / reps as u64,
    );
    // Check the result once.
    let mut acc = x.clone();
    for _ in 0..ops {
        acc = acc.add(&y)?;
    }
    let got = acc.to_vec::<f32>()?;
    let err = got
        .iter()
        .zip(xv.iter().zip(&yv))
        .map(|(&g, (&a, &b))| (f64::from(g) - (f64::from(a) + ops as f64 * f64::from(b))).abs())
        .fold(0.0, f64::max);
    println!("max |err| vs f64 = {err:.3e}");
    Ok(())
}
