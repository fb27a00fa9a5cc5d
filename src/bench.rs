//! The benchmark runner behind `kiln bench`: a named table of cases, warm-up, GPU timestamps
//! where the adapter has them (else wall clock around a synchronized submission), medians, and
//! FLOP/s and bytes/s beside every time. Case names match the peer benchmark
//! (`../shared/peers/burn-bench`) so the two can be compared line by line.

use std::time::Instant;

use crate::error::Result;
use crate::{Context, GpuTimer, Tensor};

/// One benchmark case's result.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// Case name, e.g. `matmul_f32_n1024`.
    pub name: String,
    /// Median time of one run, in milliseconds.
    pub median_ms: f64,
    /// Fastest run, in milliseconds.
    pub min_ms: f64,
    /// Timed runs.
    pub reps: usize,
    /// Floating-point operations of one run.
    pub flops: f64,
    /// Bytes one run must read and write at least.
    pub bytes: f64,
    /// Dependent ops in one run (for per-op cases such as the add chain), else 1.
    pub ops: usize,
    /// Items (images) processed per run, for throughput cases such as a training step.
    pub per_item: Option<f64>,
    /// `gpu-timestamp` or `wall`.
    pub timing: &'static str,
    /// The adapter's name and backend.
    pub adapter: String,
}

impl CaseResult {
    /// GFLOP/s at the median time.
    pub fn gflops(&self) -> f64 {
        self.flops / (self.median_ms * 1e-3) / 1e9
    }

    /// GB/s at the median time.
    pub fn gbps(&self) -> f64 {
        self.bytes / (self.median_ms * 1e-3) / 1e9
    }

    /// Microseconds per dependent op.
    pub fn us_per_op(&self) -> f64 {
        self.median_ms * 1e3 / self.ops as f64
    }

    /// The line format the peer benchmark prints: `case=<name> median_ms=<x> gflops=<y> ...`.
    pub fn line(&self) -> String {
        let mut s = format!(
            "case={} median_ms={:.4} gflops={:.3} min_ms={:.4} reps={} gbps={:.3} timing={}",
            self.name,
            self.median_ms,
            self.gflops(),
            self.min_ms,
            self.reps,
            self.gbps(),
            self.timing
        );
        if self.ops > 1 {
            s.push_str(&format!(" us_per_op={:.3}", self.us_per_op()));
        }
        if let Some(n) = self.per_item {
            s.push_str(&format!(" images_per_s={:.1}", n / (self.median_ms * 1e-3)));
        }
        s
    }

    /// One JSON object: name, median_ms, gflops, gbps, adapter, and the rest.
    pub fn json(&self) -> String {
        let mut s = format!(
            "{{\"name\":{},\"median_ms\":{},\"min_ms\":{},\"reps\":{},\"gflops\":{},\"gbps\":{},\"timing\":{},\"adapter\":{}",
            json_str(&self.name),
            self.median_ms,
            self.min_ms,
            self.reps,
            self.gflops(),
            self.gbps(),
            json_str(self.timing),
            json_str(&self.adapter)
        );
        if self.ops > 1 {
            s.push_str(&format!(",\"us_per_op\":{}", self.us_per_op()));
        }
        if let Some(n) = self.per_item {
            s.push_str(&format!(
                ",\"images_per_s\":{}",
                n / (self.median_ms * 1e-3)
            ));
        }
        s.push('}');
        s
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes results as a JSON array, one object per case.
pub fn to_json(results: &[CaseResult]) -> String {
    let items: Vec<String> = results.iter().map(|r| format!("  {}", r.json())).collect();
    format!("[\n{}\n]\n", items.join(",\n"))
}

/// Formats results as an aligned table.
pub fn table(results: &[CaseResult]) -> String {
    let mut s = format!(
        "{:<34} {:>11} {:>11} {:>5} {:>9} {:>8} {:>14}  {}\n",
        "case", "median ms", "min ms", "reps", "GFLOP/s", "GB/s", "rate", "timing"
    );
    for r in results {
        let per_op = if r.ops > 1 {
            format!("{:.3} us/op", r.us_per_op())
        } else if let Some(n) = r.per_item {
            format!("{:.1} img/s", n / (r.median_ms * 1e-3))
        } else {
            "-".into()
        };
        s.push_str(&format!(
            "{:<34} {:>11.4} {:>11.4} {:>5} {:>9.3} {:>8.3} {:>14}  {}\n",
            r.name,
            r.median_ms,
            r.min_ms,
            r.reps,
            r.gflops(),
            r.gbps(),
            per_op,
            r.timing
        ));
    }
    s
}

/// How long and how often to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Run only cases whose name contains this.
    pub filter: Option<String>,
    /// Fewer repetitions (the main job's summary).
    pub quick: bool,
}

type Build = Box<dyn Fn() -> Result<Vec<Tensor>>>;

struct Case {
    name: String,
    flops: f64,
    bytes: f64,
    ops: usize,
    per_item: Option<f64>,
    /// Records the work of one run (inputs already realized); the runner realizes it.
    build: Build,
}

fn seeded(ctx: &Context, shape: &[usize], seed: u64) -> Result<Tensor> {
    // A small host-side generator keeps the bench independent of the GPU random kernels.
    let n: usize = shape.iter().product();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let data: Vec<f32> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        })
        .collect();
    Tensor::from_slice(ctx, &data, shape)
}

fn cases(ctx: &Context) -> Result<Vec<Case>> {
    let mut cases = Vec::new();
    for n in [256usize, 512, 1024, 2048] {
        let a = seeded(ctx, &[n, n], 1)?;
        let b = seeded(ctx, &[n, n], 2)?;
        let nf = n as f64;
        cases.push(Case {
            name: format!("matmul_f32_n{n}"),
            flops: 2.0 * nf * nf * nf,
            bytes: 3.0 * 4.0 * nf * nf,
            ops: 1,
            per_item: None,
            build: Box::new(move || Ok(vec![a.matmul(&b)?])),
        });
    }
    let a = seeded(ctx, &[8, 256, 64], 3)?;
    let b = seeded(ctx, &[8, 64, 256], 4)?;
    cases.push(Case {
        name: "bmm_f32_8x256x64_8x64x256".into(),
        flops: 2.0 * 8.0 * 256.0 * 256.0 * 64.0,
        bytes: 4.0 * 8.0 * (256.0 * 64.0 * 2.0 + 256.0 * 256.0),
        ops: 1,
        per_item: None,
        build: Box::new(move || Ok(vec![a.matmul(&b)?])),
    });
    for (n, c, h, m) in [
        (32usize, 1usize, 28usize, 32usize),
        (32, 32, 28, 64),
        (16, 64, 56, 64),
    ] {
        let x = seeded(ctx, &[n, c, h, h], 10 + c as u64)?;
        let w = seeded(ctx, &[m, c, 3, 3], 20 + c as u64)?;
        let dy = seeded(ctx, &[n, m, h, h], 30 + c as u64)?;
        let p = crate::kernels::conv::Conv2dParams {
            padding: [1; 4],
            ..Default::default()
        };
        let flops = 2.0 * (n * m * h * h * c * 9) as f64;
        let bytes = 4.0 * (n * c * h * h + m * c * 9 + n * m * h * h) as f64;
        let name = format!("conv2d_n{n}_c{c}_{h}x{h}_k{m}_3x3_p1");
        let (x2, w2, p2) = (x.clone(), w.clone(), p.clone());
        cases.push(Case {
            name: name.clone(),
            flops,
            bytes,
            ops: 1,
            per_item: None,
            build: Box::new(move || Ok(vec![x2.conv2d(&w2, None, &p2)?])),
        });
        cases.push(Case {
            name: format!("{name}_bwd"),
            flops: 2.0 * flops,
            bytes: 2.0 * bytes,
            ops: 1,
            per_item: None,
            build: Box::new(move || {
                let (xg, wg) = (x.with_grad(), w.with_grad());
                let y = xg.conv2d(&wg, None, &p)?;
                let g = crate::autograd::grad(&[&y], &[&dy], &[&xg, &wg])?;
                Ok(g.into_iter().flatten().collect())
            }),
        });
    }
    {
        let (s, b, i, h) = (64usize, 32usize, 256usize, 256usize);
        let x = seeded(ctx, &[s, b, i], 50)?;
        let w = seeded(ctx, &[4 * h, i], 51)?.mul_scalar(0.05)?;
        let r = seeded(ctx, &[4 * h, h], 52)?.mul_scalar(0.05)?;
        let dy = seeded(ctx, &[s, b, h], 53)?;
        let flops = 2.0 * (s * b * 4 * h * (i + h)) as f64;
        let bytes = 4.0 * (s * b * (i + h) + 4 * h * (i + h)) as f64;
        let (x2, w2, r2) = (x.clone(), w.clone(), r.clone());
        cases.push(Case {
            name: format!("lstm_s{s}_b{b}_h{h}"),
            flops,
            bytes,
            ops: 1,
            per_item: None,
            build: Box::new(move || {
                let o = crate::kernels::recurrent::lstm(&x2, &w2, &r2, None, None, None)?;
                Ok(vec![o.y])
            }),
        });
        cases.push(Case {
            name: format!("lstm_s{s}_b{b}_h{h}_bwd"),
            flops: 3.0 * flops,
            bytes: 2.0 * bytes,
            ops: 1,
            per_item: None,
            build: Box::new(move || {
                let (xg, wg, rg) = (x.with_grad(), w.with_grad(), r.with_grad());
                let o = crate::kernels::recurrent::lstm(&xg, &wg, &rg, None, None, None)?;
                let g = crate::autograd::grad(&[&o.y], &[&dy], &[&xg, &wg, &rg])?;
                Ok(g.into_iter().flatten().collect())
            }),
        });
    }
    for s in [256usize, 1024] {
        let (b, h, d) = (4usize, 8usize, 64usize);
        let q = seeded(ctx, &[b, h, s, d], 40)?;
        let k = seeded(ctx, &[b, h, s, d], 41)?;
        let v = seeded(ctx, &[b, h, s, d], 42)?;
        let dy = seeded(ctx, &[b, h, s, d], 43)?;
        let flops = 4.0 * (b * h * s * s * d) as f64;
        let bytes = 4.0 * 4.0 * (b * h * s * d) as f64;
        let p = crate::kernels::attention::AttentionParams::default();
        let name = format!("attn_fused_b{b}_h{h}_s{s}_d{d}");
        let (q2, k2, v2, p2) = (q.clone(), k.clone(), v.clone(), p.clone());
        cases.push(Case {
            name: name.clone(),
            flops,
            bytes,
            ops: 1,
            per_item: None,
            build: Box::new(move || Ok(vec![q2.attention(&k2, &v2, None, &p2)?])),
        });
        cases.push(Case {
            name: format!("{name}_bwd"),
            // Backward recomputes QK^T and does four more products of the same size.
            flops: 2.5 * flops,
            bytes: 2.0 * bytes,
            ops: 1,
            per_item: None,
            build: Box::new(move || {
                let (qg, kg, vg) = (q.with_grad(), k.with_grad(), v.with_grad());
                let y = qg.attention(&kg, &vg, None, &p)?;
                let g = crate::autograd::grad(&[&y], &[&dy], &[&qg, &kg, &vg])?;
                Ok(g.into_iter().flatten().collect())
            }),
        });
    }
    {
        // One training step of the seed CNN (forward, loss, backward, Adam) on a batch of 64
        // random images with random labels, as the peer benchmark does.
        let model = std::sync::Mutex::new(crate::nn::zoo::seed_cnn(ctx, 1e-3, 1)?);
        let x = seeded(ctx, &[64, 1, 28, 28], 60)?;
        let labels: Vec<i32> = (0..64).map(|i| i * 7 % 10).collect();
        let y = Tensor::from_slice(ctx, &labels, &[64])?;
        // 3 x the forward FLOPs of the convolutions and dense layers, as the peer counts them.
        let fwd = 2.0
            * 64.0
            * (784.0 * 32.0 * 9.0 + 784.0 * 64.0 * 32.0 * 9.0 + 12544.0 * 128.0 + 1280.0);
        cases.push(Case {
            name: "train_step_cnn_b64".into(),
            flops: 3.0 * fwd,
            bytes: 4.0 * 3.0 * 1_625_866.0,
            ops: 1,
            per_item: Some(64.0),
            build: Box::new(move || {
                let mut m = model.lock().unwrap_or_else(|e| e.into_inner());
                let (loss, _) = m.train_step(&x, &y, None)?;
                let mut out: Vec<Tensor> = m.parameters().iter().map(|p| p.value()).collect();
                if let Some(o) = m.optimizer() {
                    out.extend(o.state());
                }
                out.push(loss);
                Ok(out)
            }),
        });
    }
    let x = seeded(ctx, &[1024], 5)?;
    let y = seeded(ctx, &[1024], 6)?;
    cases.push(Case {
        name: "add_chain_1000_n1024".into(),
        flops: 1000.0 * 1024.0,
        bytes: 1000.0 * 3.0 * 4.0 * 1024.0,
        ops: 1000,
        per_item: None,
        build: Box::new(move || {
            let mut acc = x.clone();
            for _ in 0..1000 {
                acc = acc.add(&y)?;
            }
            Ok(vec![acc])
        }),
    });
    cases.extend(crate::bench_f16::cases(ctx)?.into_iter().map(|c| Case {
        name: c.name,
        flops: c.flops,
        bytes: c.bytes,
        ops: 1,
        per_item: None,
        build: c.build,
    }));
    ctx.synchronize()?;
    Ok(cases)
}

/// Times one realization of `build()`: GPU timestamps when available, else wall clock around
/// the submission and a wait for the GPU. Recording the ops is not timed.
fn time_once(ctx: &Context, timer: Option<&GpuTimer>, build: &Build) -> Result<f64> {
    let out = build()?;
    let refs: Vec<&Tensor> = out.iter().collect();
    match timer {
        Some(t) => {
            ctx.realize_timed(&refs, t)?;
            t.read_seconds(ctx)
        }
        None => {
            let start = Instant::now();
            ctx.realize(&refs)?;
            ctx.synchronize()?;
            Ok(start.elapsed().as_secs_f64())
        }
    }
}

/// Runs the cases that match `opts`, calling `progress(done, total, name)` before each.
pub fn run(
    ctx: &Context,
    opts: &BenchOptions,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<Vec<CaseResult>> {
    let timer = GpuTimer::new(ctx);
    let info = ctx.adapter_info();
    let adapter = format!("{} ({:?})", info.name, info.backend);
    let selected: Vec<Case> = cases(ctx)?
        .into_iter()
        .filter(|c| {
            opts.filter
                .as_ref()
                .is_none_or(|f| c.name.contains(f.as_str()))
        })
        .collect();
    let (budget_s, min_reps, max_reps) = if opts.quick {
        (1.0, 3, 10)
    } else {
        (4.0, 5, 50)
    };
    let total = selected.len();
    let mut results = Vec::new();
    for (k, case) in selected.iter().enumerate() {
        progress(k, total, &case.name);
        // Warm-up: compile pipelines, fill the pool; until two runs agree within 20 %.
        let mut prev = time_once(ctx, timer.as_ref(), &case.build)?;
        for _ in 0..8 {
            let t = time_once(ctx, timer.as_ref(), &case.build)?;
            let agree = (t - prev).abs() <= 0.2 * prev.max(t);
            prev = t;
            if agree {
                break;
            }
        }
        let mut samples = Vec::new();
        let start = Instant::now();
        while samples.len() < min_reps
            || (samples.len() < max_reps && start.elapsed().as_secs_f64() < budget_s)
        {
            samples.push(time_once(ctx, timer.as_ref(), &case.build)?);
        }
        samples.sort_by(f64::total_cmp);
        let median = if samples.len() % 2 == 1 {
            samples[samples.len() / 2]
        } else {
            0.5 * (samples[samples.len() / 2 - 1] + samples[samples.len() / 2])
        };
        results.push(CaseResult {
            name: case.name.clone(),
            median_ms: median * 1e3,
            min_ms: samples[0] * 1e3,
            reps: samples.len(),
            flops: case.flops,
            bytes: case.bytes,
            ops: case.ops,
            per_item: case.per_item,
            timing: if timer.is_some() {
                "gpu-timestamp"
            } else {
                "wall"
            },
            adapter: adapter.clone(),
        });
    }
    progress(total, total, "done");
    Ok(results)
}

/// Today's date in UTC as `YYYY-MM-DD` (civil-from-days, no time-zone database needed).
pub fn utc_date() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
