//! The benchmark runner behind `kiln bench`: a named table of cases, warm-up, GPU timestamps
//! where the adapter has them (else wall clock around a synchronized submission) or, with
//! [`Timing::Wall`], the wall clock around recording, realizing and waiting as the peer does;
//! medians, and FLOP/s and bytes/s beside every time. Case names match the peer benchmark
//! (`../shared/peers/burn-bench`) so the two can be compared line by line.
//!
//! Every run also measures the adapter's two ceilings (`ceiling_fma_f32`: peak FLOP/s of
//! independent FMA chains; `ceiling_copy_f32`: bandwidth of a large storage-to-storage copy) and
//! reports each case as a fraction of the roofline they span: attainable time
//! = max(flops / peak FLOP/s, bytes / copy bandwidth). Beside the training step it reports peak
//! GPU memory against parameters + optimizer state + the planner's live-set bound
//! ([`train_step_memory`]); [`cold_start`] times a fresh process up to its first training step.

use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use kiln::kernels::ceiling::{ceiling_copy, ceiling_fma, ceiling_fma_flops};
use kiln::{Context, ContextOptions, GpuTimer, Tensor};

use super::memory::{seeded, train_step_memory, MemoryReport};

/// How one run of a case is timed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Timing {
    /// GPU timestamp queries around the realization's compute passes where the adapter has them
    /// (`timing=gpu-timestamp`); else the wall clock around the submission and a wait
    /// (`timing=wall-realize`). Recording the ops is not timed.
    #[default]
    Gpu,
    /// The wall clock from before the ops are recorded to after the GPU has finished them
    /// (record + realize + wait, `timing=wall`): what the peer's `time_it` measures, so a
    /// side-by-side compares like with like.
    Wall,
}

impl std::str::FromStr for Timing {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Timing, String> {
        match s {
            "gpu" => Ok(Timing::Gpu),
            "wall" => Ok(Timing::Wall),
            other => Err(format!("unknown timing {other:?} (use gpu or wall)")),
        }
    }
}

/// The adapter's measured roofs, from the `ceiling_*` cases of the same run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ceilings {
    /// Peak GFLOP/s (`ceiling_fma_f32`).
    pub gflops: f64,
    /// Copy bandwidth in GB/s, bytes read plus bytes written (`ceiling_copy_f32`).
    pub gbps: f64,
}

impl Ceilings {
    /// The fraction of the roofline-attainable rate that a run of `flops` and `bytes` reached
    /// in `seconds`, and the roof that bounds it (`compute` or `memory`). Attainable rate =
    /// min(peak, intensity x bandwidth) with intensity = flops / bytes; as times that is
    /// max(flops / peak, bytes / bandwidth), which also covers cases with no FLOPs.
    pub fn fraction(&self, flops: f64, bytes: f64, seconds: f64) -> (f64, &'static str) {
        let compute = flops / (self.gflops * 1e9);
        let memory = bytes / (self.gbps * 1e9);
        let bound = if compute >= memory {
            "compute"
        } else {
            "memory"
        };
        (compute.max(memory) / seconds, bound)
    }
}

const MIB: f64 = 1024.0 * 1024.0;

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
    /// `gpu-timestamp`, `wall-realize` (no timestamps: realize + wait) or `wall` (record +
    /// realize + wait).
    pub timing: &'static str,
    /// The adapter's name and backend.
    pub adapter: String,
    /// Fraction of the roofline-attainable rate ([`Ceilings::fraction`]), when the run
    /// measured the ceilings.
    pub frac_of_ceiling: Option<f64>,
    /// Which roof bounds the case: `compute` or `memory`.
    pub bound: Option<&'static str>,
    /// Peak memory against its bound (the training step only).
    pub memory: Option<MemoryReport>,
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
        if let (Some(f), Some(b)) = (self.frac_of_ceiling, self.bound) {
            s.push_str(&format!(" frac_of_ceiling={f:.3} bound={b}"));
        }
        if let Some(m) = &self.memory {
            s.push_str(&format!(
                " peak_mib={:.2} bound_mib={:.2} peak_over_bound={:.3} plan_bound_mib={:.2} peak_over_plan_bound={:.3} params_mib={:.2} optimizer_mib={:.2} activations_mib={:.2} mem_batch={}",
                m.peak_bytes as f64 / MIB,
                m.bound_bytes() as f64 / MIB,
                m.ratio(),
                m.plan_bound_bytes() as f64 / MIB,
                m.plan_ratio(),
                m.param_bytes as f64 / MIB,
                m.optimizer_bytes as f64 / MIB,
                m.plan.live_intermediate_peak_bytes as f64 / MIB,
                m.batch
            ));
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
        if let (Some(f), Some(b)) = (self.frac_of_ceiling, self.bound) {
            s.push_str(&format!(
                ",\"frac_of_ceiling\":{f},\"bound\":{}",
                json_str(b)
            ));
        }
        if let Some(m) = &self.memory {
            s.push_str(&format!(
                ",\"memory\":{{\"batch\":{},\"peak_bytes\":{},\"peak_live_bytes\":{},\"bound_bytes\":{},\"peak_over_bound\":{},\"plan_bound_bytes\":{},\"peak_over_plan_bound\":{},\"param_bytes\":{},\"optimizer_bytes\":{},\"live_intermediate_peak_bytes\":{},\"planned_bytes\":{}}}",
                m.batch,
                m.peak_bytes,
                m.peak_live_bytes,
                m.bound_bytes(),
                m.ratio(),
                m.plan_bound_bytes(),
                m.plan_ratio(),
                m.param_bytes,
                m.optimizer_bytes,
                m.plan.live_intermediate_peak_bytes,
                m.plan.planned_bytes
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

/// Formats results as an aligned table; the training step's memory follows it.
pub fn table(results: &[CaseResult]) -> String {
    let mut s = format!(
        "{:<34} {:>11} {:>11} {:>5} {:>9} {:>8} {:>14} {:>7} {:>7}  {}\n",
        "case",
        "median ms",
        "min ms",
        "reps",
        "GFLOP/s",
        "GB/s",
        "rate",
        "of roof",
        "bound",
        "timing"
    );
    for r in results {
        let per_op = if r.ops > 1 {
            format!("{:.3} us/op", r.us_per_op())
        } else if let Some(n) = r.per_item {
            format!("{:.1} img/s", n / (r.median_ms * 1e-3))
        } else {
            "-".into()
        };
        let frac = r
            .frac_of_ceiling
            .map_or("-".into(), |f| format!("{:.1}%", f * 100.0));
        s.push_str(&format!(
            "{:<34} {:>11.4} {:>11.4} {:>5} {:>9.3} {:>8.3} {:>14} {:>7} {:>7}  {}\n",
            r.name,
            r.median_ms,
            r.min_ms,
            r.reps,
            r.gflops(),
            r.gbps(),
            per_op,
            frac,
            r.bound.unwrap_or("-"),
            r.timing
        ));
    }
    for r in results {
        if let Some(m) = &r.memory {
            s.push_str(&format!(
                "\n{} memory (batch {}): peak {:.2} MiB (live {:.2} MiB) vs bound {:.2} MiB = params {:.2} + optimizer {:.2} + largest live set {:.2}; peak/bound = {:.3}; vs {:.2} MiB = inputs + live set with the new parameters and state: {:.3}\n",
                r.name,
                m.batch,
                m.peak_bytes as f64 / MIB,
                m.peak_live_bytes as f64 / MIB,
                m.bound_bytes() as f64 / MIB,
                m.param_bytes as f64 / MIB,
                m.optimizer_bytes as f64 / MIB,
                m.plan.live_intermediate_peak_bytes as f64 / MIB,
                m.ratio(),
                m.plan_bound_bytes() as f64 / MIB,
                m.plan_ratio()
            ));
        }
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
    /// How each run is timed.
    pub timing: Timing,
    /// Measure the adapter's ceilings first and report every case as a fraction of them.
    pub ceilings: bool,
    /// Measure the training step's peak memory against its bound (on a fresh context).
    pub memory: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            filter: None,
            quick: false,
            timing: Timing::Gpu,
            ceilings: true,
            memory: true,
        }
    }
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
        let p = kiln::kernels::conv::Conv2dParams {
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
                let g = kiln::autograd::grad(&[&y], &[&dy], &[&xg, &wg])?;
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
                let o = kiln::kernels::recurrent::lstm(&x2, &w2, &r2, None, None, None)?;
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
                let o = kiln::kernels::recurrent::lstm(&xg, &wg, &rg, None, None, None)?;
                let g = kiln::autograd::grad(&[&o.y], &[&dy], &[&xg, &wg, &rg])?;
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
        let p = kiln::kernels::attention::AttentionParams::default();
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
                let g = kiln::autograd::grad(&[&y], &[&dy], &[&qg, &kg, &vg])?;
                Ok(g.into_iter().flatten().collect())
            }),
        });
    }
    {
        // One training step of the seed CNN (forward, loss, backward, Adam) on a batch of 64
        // random images with random labels, as the peer benchmark does.
        let model = std::sync::Mutex::new(kiln::nn::zoo::seed_cnn(ctx, 1e-3, 1)?);
        let x = seeded(ctx, &[64, 1, 28, 28], 60)?;
        let labels: Vec<i32> = (0..64).map(|i| i * 7 % 10).collect();
        let y = Tensor::from_slice(ctx, &labels, &[64])?;
        // 3 x the forward FLOPs of the convolutions and dense layers, as the peer counts them.
        let fwd = 2.0
            * 64.0
            * (784.0 * 32.0 * 9.0 + 784.0 * 64.0 * 32.0 * 9.0 + 12544.0 * 128.0 + 1280.0);
        cases.push(Case {
            name: TRAIN_STEP_CASE.into(),
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
        // At least: read x and y once, write the result once (what a fused chain moves).
        bytes: 3.0 * 4.0 * 1024.0,
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
    cases.extend(super::bench_f16::cases(ctx)?.into_iter().map(|c| Case {
        name: c.name,
        flops: c.flops,
        bytes: c.bytes,
        ops: 1,
        per_item: None,
        build: Box::new(move || Ok((c.build)()?)),
    }));
    ctx.synchronize()?;
    Ok(cases)
}

/// Times one run of `build`: see [`Timing`].
fn time_once(
    ctx: &Context,
    timer: Option<&GpuTimer>,
    timing: Timing,
    build: &Build,
) -> Result<f64> {
    if timing == Timing::Wall {
        let start = Instant::now();
        let out = build()?;
        let refs: Vec<&Tensor> = out.iter().collect();
        ctx.realize(&refs)?;
        ctx.synchronize()?;
        return Ok(start.elapsed().as_secs_f64());
    }
    let out = build()?;
    let refs: Vec<&Tensor> = out.iter().collect();
    match timer {
        Some(t) => {
            ctx.realize_timed(&refs, t)?;
            Ok(t.read_seconds(ctx)?)
        }
        None => {
            let start = Instant::now();
            ctx.realize(&refs)?;
            ctx.synchronize()?;
            Ok(start.elapsed().as_secs_f64())
        }
    }
}

fn timing_label(timer: Option<&GpuTimer>, timing: Timing) -> &'static str {
    match (timing, timer) {
        (Timing::Wall, _) => "wall",
        (Timing::Gpu, Some(_)) => "gpu-timestamp",
        (Timing::Gpu, None) => "wall-realize",
    }
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        samples[n / 2]
    } else {
        0.5 * (samples[n / 2 - 1] + samples[n / 2])
    }
}

/// Warms `case` up and returns its median and fastest run (seconds) and the number of runs.
fn measure(
    ctx: &Context,
    timer: Option<&GpuTimer>,
    opts: &BenchOptions,
    case: &Case,
) -> Result<(f64, f64, usize)> {
    let (budget_s, min_reps, max_reps) = if opts.quick {
        (1.0, 3, 10)
    } else {
        (4.0, 5, 50)
    };
    // Warm-up, as the peer does it: compile pipelines, fill the pool; at least three runs, and
    // until two in a row agree within 20 % (at most eight).
    let mut prev = time_once(ctx, timer, opts.timing, &case.build)?;
    for k in 1..8 {
        let t = time_once(ctx, timer, opts.timing, &case.build)?;
        let agree = (t - prev).abs() <= 0.2 * prev.max(t);
        prev = t;
        if agree && k >= 2 {
            break;
        }
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < min_reps
        || (samples.len() < max_reps && start.elapsed().as_secs_f64() < budget_s)
    {
        samples.push(time_once(ctx, timer, opts.timing, &case.build)?);
    }
    let med = median(&mut samples);
    Ok((med, samples[0], samples.len()))
}

fn selected(opts: &BenchOptions, name: &str) -> bool {
    opts.filter
        .as_ref()
        .is_none_or(|f| name.contains(f.as_str()))
}

/// Where one case's GPU time goes: its kernels, each with its dispatch count and total GPU
/// seconds in one run (after two warm-up runs), as [`Context::realize_profiled`] measures.
#[derive(Clone, Debug)]
pub struct CaseProfile {
    /// Case name.
    pub name: String,
    /// `(kernel, dispatches, seconds)`, most time first.
    pub kernels: Vec<(String, usize, f64)>,
}

impl CaseProfile {
    /// A table: kernel, dispatches, milliseconds and share of the case's GPU time.
    pub fn table(&self) -> String {
        let total: f64 = self.kernels.iter().map(|k| k.2).sum();
        let mut s = format!(
            "{} ({:.3} ms of GPU time in {} dispatches)\n",
            self.name,
            total * 1e3,
            self.kernels.iter().map(|k| k.1).sum::<usize>()
        );
        for (kernel, n, sec) in &self.kernels {
            s.push_str(&format!(
                "  {kernel:<34} {n:>5} {:>11.3} ms {:>6.1} %\n",
                sec * 1e3,
                100.0 * sec / total.max(f64::MIN_POSITIVE)
            ));
        }
        s
    }
}

/// Profiles the cases that match `opts.filter` (ceilings aside): one run per case with a GPU
/// timestamp pair around every dispatch. Needs timestamp queries.
pub fn profile(ctx: &Context, opts: &BenchOptions) -> Result<Vec<CaseProfile>> {
    let mut out = Vec::new();
    for case in cases(ctx)?.into_iter().filter(|c| selected(opts, &c.name)) {
        for _ in 0..2 {
            let warm = (case.build)()?;
            ctx.realize(&warm.iter().collect::<Vec<_>>())?;
            ctx.synchronize()?;
        }
        let outs = (case.build)()?;
        let times = ctx.realize_profiled(&outs.iter().collect::<Vec<_>>())?;
        let mut by_kernel: Vec<(String, usize, f64)> = Vec::new();
        for t in times {
            match by_kernel.iter_mut().find(|k| k.0 == t.kernel) {
                Some(k) => {
                    k.1 += 1;
                    k.2 += t.seconds;
                }
                None => by_kernel.push((t.kernel, 1, t.seconds)),
            }
        }
        by_kernel.sort_by(|a, b| b.2.total_cmp(&a.2));
        out.push(CaseProfile {
            name: case.name.clone(),
            kernels: by_kernel,
        });
    }
    Ok(out)
}

/// Runs the cases that match `opts`, calling `progress(done, total, name)` before each. The
/// ceiling cases run first and are always listed when `opts.ceilings` (every case's fraction
/// needs them), whatever the filter.
pub fn run(
    ctx: &Context,
    opts: &BenchOptions,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<Vec<CaseResult>> {
    let timer = GpuTimer::new(ctx);
    let info = ctx.adapter_info();
    let adapter = format!("{} ({:?})", info.name, info.backend);
    let label = timing_label(timer.as_ref(), opts.timing);
    let result = |case: &Case, (med, min, reps): (f64, f64, usize)| CaseResult {
        name: case.name.clone(),
        median_ms: med * 1e3,
        min_ms: min * 1e3,
        reps,
        flops: case.flops,
        bytes: case.bytes,
        ops: case.ops,
        per_item: case.per_item,
        timing: label,
        adapter: adapter.clone(),
        frac_of_ceiling: None,
        bound: None,
        memory: None,
    };
    let main: Vec<Case> = cases(ctx)?
        .into_iter()
        .filter(|c| selected(opts, &c.name))
        .collect();
    let total = main.len() + if opts.ceilings { 2 } else { 0 };
    let mut results = Vec::new();
    let mut ceilings = None;
    if opts.ceilings {
        progress(0, total, "ceiling_fma_f32 (tuning)");
        let fma = fma_ceiling_case(ctx, timer.as_ref(), opts.timing)?;
        let fma_result = result(&fma, measure(ctx, timer.as_ref(), opts, &fma)?);
        drop(fma);
        progress(1, total, "ceiling_copy_f32");
        let copy = copy_ceiling_case(ctx)?;
        let copy_result = result(&copy, measure(ctx, timer.as_ref(), opts, &copy)?);
        drop(copy);
        ctx.trim_pool();
        ceilings = Some(Ceilings {
            gflops: fma_result.gflops(),
            gbps: copy_result.gbps(),
        });
        results.extend([fma_result, copy_result]);
    }
    let done = total - main.len();
    for (k, case) in main.iter().enumerate() {
        progress(done + k, total, &case.name);
        let mut r = result(case, measure(ctx, timer.as_ref(), opts, case)?);
        if opts.memory && case.name == TRAIN_STEP_CASE {
            r.memory = Some(train_step_memory(&same_adapter(ctx)?, 64)?);
        }
        results.push(r);
    }
    if let Some(c) = ceilings {
        for r in &mut results {
            let (f, b) = c.fraction(r.flops, r.bytes, r.median_ms * 1e-3);
            r.frac_of_ceiling = Some(f);
            r.bound = Some(b);
        }
    }
    progress(total, total, "done");
    Ok(results)
}

const TRAIN_STEP_CASE: &str = "train_step_cnn_b64";

/// A second context on the bench context's adapter, for measurements that need a clean pool.
fn same_adapter(ctx: &Context) -> Result<Context> {
    let info = ctx.adapter_info();
    let backend = match info.backend {
        wgpu::Backend::Vulkan => "vulkan",
        wgpu::Backend::Gl => "gl",
        wgpu::Backend::Metal => "metal",
        wgpu::Backend::Dx12 => "dx12",
        _ => "webgpu",
    };
    Ok(Context::with_options(ContextOptions {
        backend: Some(backend.into()),
        adapter_name: Some(info.name.clone()),
        pipeline_cache: None,
        ..ContextOptions::default()
    })?)
}

// ---------------------------------------------------------------------------------------------
// Ceiling kernels (shaders/ceiling.wgsl)
// ---------------------------------------------------------------------------------------------

/// Invocations of the FMA ceiling: on a GPU 4,096 workgroups of 256, several waves on the
/// largest (an H200 holds about 270,000 resident invocations); on a CPU adapter 64 workgroups,
/// still many per thread, so that each invocation can run long loops in reasonable time
/// (per-invocation overhead would otherwise count against the peak).
fn fma_invocations(ctx: &Context) -> usize {
    match ctx.adapter_info().device_type {
        wgpu::DeviceType::Cpu => 64 * 256,
        _ => 4096 * 256,
    }
}

/// The FMA ceiling, tuned for this adapter: the loop trips grow until a run takes at least
/// 20 ms (so timing overhead is small even on the wall clock), then 1, 2, 4 and 8 chains are
/// tried at equal FLOPs and the fastest is kept.
fn fma_ceiling_case(ctx: &Context, timer: Option<&GpuTimer>, timing: Timing) -> Result<Case> {
    let seed = Tensor::from_slice(ctx, &[0.5f32, 0.9, 0.1, 0.0], &[4])?;
    let g = fma_invocations(ctx);
    let time = |trips: u32, chains: u32| -> Result<f64> {
        let s = seed.clone();
        let build: Build = Box::new(move || Ok(vec![ceiling_fma(&s, g, trips, chains)?]));
        time_once(ctx, timer, timing, &build)?;
        let mut t = [0.0; 3];
        for v in &mut t {
            *v = time_once(ctx, timer, timing, &build)?;
        }
        Ok(median(&mut t))
    };
    let mut trips = 64u32;
    while trips < 1 << 20 && time(trips, 4)? < 0.02 {
        trips *= 2;
    }
    let mut best = (f64::INFINITY, 4u32);
    for chains in [1u32, 2, 4, 8] {
        let tr = (trips * 4 / chains).max(1);
        let rate = time(tr, chains)? / ceiling_fma_flops(g, tr, chains);
        if rate < best.0 {
            best = (rate, chains);
        }
    }
    let chains = best.1;
    let tr = (trips * 4 / chains).max(1);
    Ok(Case {
        name: "ceiling_fma_f32".into(),
        flops: ceiling_fma_flops(g, tr, chains),
        bytes: 4.0 * g as f64,
        ops: 1,
        per_item: None,
        build: Box::new(move || Ok(vec![ceiling_fma(&seed, g, tr, chains)?])),
    })
}

/// The copy ceiling: 64 MiB copied to a second buffer (smaller if the device's storage binding
/// limit is), so caches play no part.
fn copy_ceiling_case(ctx: &Context) -> Result<Case> {
    let limit = ctx
        .limits()
        .max_storage_buffer_binding_size
        .min(ctx.limits().max_buffer_size);
    let bytes = (64u64 << 20).min(limit / 16 * 16);
    let n = (bytes / 4) as usize;
    let x = seeded(ctx, &[n], 70)?;
    Ok(Case {
        name: "ceiling_copy_f32".into(),
        flops: 0.0,
        bytes: 2.0 * bytes as f64,
        ops: 1,
        per_item: None,
        build: Box::new(move || Ok(vec![ceiling_copy(&x)?])),
    })
}

// ---------------------------------------------------------------------------------------------
// Cold start
// ---------------------------------------------------------------------------------------------

/// One cold start of a fresh process, as the hidden child (`kiln cold-start-child`) reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ColdStartRun {
    /// From the parent's spawn to the child's report (process start, context, model, first
    /// step; the report is printed before the child saves any cache and exits).
    pub total_ms: f64,
    /// Opening the context (instance, adapter, device; reading the pipeline cache).
    pub context_ms: f64,
    /// Building the model (initializing and uploading the weights) and the batch.
    pub build_ms: f64,
    /// Creating shader modules and compute pipelines, inside the first step.
    pub compile_ms: f64,
    /// The first training step (record, realize, wait), less `compile_ms`.
    pub step_ms: f64,
    /// Pipeline-cache bytes loaded at start.
    pub cache_bytes: usize,
}

impl ColdStartRun {
    /// The child's report line.
    pub fn line(&self) -> String {
        format!(
            "cold_start total_ms={:.1} context_ms={:.1} build_ms={:.1} compile_ms={:.1} step_ms={:.1} cache_bytes={}",
            self.total_ms, self.context_ms, self.build_ms, self.compile_ms, self.step_ms, self.cache_bytes
        )
    }

    /// Parses [`ColdStartRun::line`].
    pub fn parse(line: &str) -> Option<ColdStartRun> {
        let rest = line.strip_prefix("cold_start ")?;
        let mut r = ColdStartRun::default();
        for kv in rest.split_whitespace() {
            let (k, v) = kv.split_once('=')?;
            match k {
                "total_ms" => r.total_ms = v.parse().ok()?,
                "context_ms" => r.context_ms = v.parse().ok()?,
                "build_ms" => r.build_ms = v.parse().ok()?,
                "compile_ms" => r.compile_ms = v.parse().ok()?,
                "step_ms" => r.step_ms = v.parse().ok()?,
                "cache_bytes" => r.cache_bytes = v.parse().ok()?,
                _ => {}
            }
        }
        Some(r)
    }
}

/// The hidden child of [`cold_start`]: opens a context (`KILN_*` from the environment, so
/// `KILN_PIPELINE_CACHE` picks the cache folder), builds the seed CNN, runs one training step
/// on a batch of 64 and waits for it, prints the report line, then saves the pipeline cache.
/// `started` is the earliest instant the process took (the top of `main`).
pub fn cold_start_child(started: Instant) -> Result<()> {
    let ctx = Context::new()?;
    let context_ms = started.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let mut model = kiln::nn::zoo::seed_cnn(&ctx, 1e-3, 1)?;
    let x = seeded(&ctx, &[64, 1, 28, 28], 60)?;
    let labels: Vec<i32> = (0..64).map(|i| i * 7 % 10).collect();
    let y = Tensor::from_slice(&ctx, &labels, &[64])?;
    ctx.synchronize()?;
    let build_ms = t.elapsed().as_secs_f64() * 1e3;
    let compiled_before = ctx.compile_seconds();
    let t = Instant::now();
    let (loss, _) = model.train_step(&x, &y, None)?;
    model.realize_step(&[&loss])?;
    ctx.synchronize()?;
    let step_total = t.elapsed().as_secs_f64() * 1e3;
    let compile_ms = (ctx.compile_seconds() - compiled_before) * 1e3;
    let run = ColdStartRun {
        total_ms: started.elapsed().as_secs_f64() * 1e3,
        context_ms,
        build_ms,
        compile_ms,
        step_ms: step_total - compile_ms,
        cache_bytes: ctx.pipeline_cache_file().map_or(0, |(_, n)| n),
    };
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", run.line());
    let _ = out.flush();
    if !loss.item::<f32>()?.is_finite() {
        bail!("cold start: the first step's loss is not finite");
    }
    ctx.save_pipeline_cache()
        .context("cold start: saving the pipeline cache")?;
    Ok(())
}

/// Medians of several cold starts with one pipeline-cache setting.
#[derive(Clone, Debug)]
pub struct ColdStartResult {
    /// `cold_start_cnn_b64_nocache` or `cold_start_cnn_b64_cache`.
    pub name: String,
    /// Whether a warm pipeline cache was offered (`on`), or not (`off`), or the adapter has
    /// none (`unsupported`).
    pub pipeline_cache: &'static str,
    /// The runs.
    pub runs: Vec<ColdStartRun>,
}

impl ColdStartResult {
    fn med(&self, f: impl Fn(&ColdStartRun) -> f64) -> f64 {
        let mut v: Vec<f64> = self.runs.iter().map(f).collect();
        median(&mut v)
    }

    /// `case=... median_ms=<process start to first finished step> context_ms=... compile_ms=...
    /// first_step_ms=... runs=... pipeline_cache=... mesa_shader_cache=disabled` (medians).
    pub fn line(&self) -> String {
        format!(
            "case={} median_ms={:.1} min_ms={:.1} runs={} context_ms={:.1} build_ms={:.1} compile_ms={:.1} first_step_ms={:.1} cache_bytes={} pipeline_cache={} mesa_shader_cache=disabled",
            self.name,
            self.med(|r| r.total_ms),
            self.runs.iter().map(|r| r.total_ms).fold(f64::INFINITY, f64::min),
            self.runs.len(),
            self.med(|r| r.context_ms),
            self.med(|r| r.build_ms),
            self.med(|r| r.compile_ms),
            self.med(|r| r.step_ms),
            self.runs.first().map_or(0, |r| r.cache_bytes),
            self.pipeline_cache
        )
    }

    /// One JSON object with the medians.
    pub fn json(&self) -> String {
        format!(
            "{{\"name\":{},\"median_ms\":{},\"runs\":{},\"context_ms\":{},\"build_ms\":{},\"compile_ms\":{},\"first_step_ms\":{},\"pipeline_cache\":{},\"mesa_shader_cache\":\"disabled\"}}",
            json_str(&self.name),
            self.med(|r| r.total_ms),
            self.runs.len(),
            self.med(|r| r.context_ms),
            self.med(|r| r.build_ms),
            self.med(|r| r.compile_ms),
            self.med(|r| r.step_ms),
            json_str(self.pipeline_cache)
        )
    }
}

fn spawn_cold(exe: &std::path::Path, cache_dir: &std::path::Path) -> Result<ColdStartRun> {
    use std::io::BufRead;
    let started = Instant::now();
    let mut child = std::process::Command::new(exe)
        .arg("cold-start-child")
        .env("KILN_PIPELINE_CACHE", cache_dir)
        // Mesa keeps its own on-disk shader cache; off in every child so that a run without
        // kiln's pipeline cache really compiles everything.
        .env("MESA_SHADER_CACHE_DISABLE", "true")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .with_context(|| format!("cold start: could not start {}", exe.display()))?;
    let mut report = None;
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines() {
            let line = line.context("cold start: reading the child's report")?;
            if let Some(mut r) = ColdStartRun::parse(&line) {
                r.total_ms = started.elapsed().as_secs_f64() * 1e3;
                report = Some(r);
            }
        }
    }
    let status = child.wait().context("cold start: waiting for the child")?;
    match report {
        Some(r) if status.success() => Ok(r),
        _ => bail!("cold start: the child exited with {status} without a report"),
    }
}

/// Time from process start to the first finished training step of the seed CNN (batch 64),
/// `runs` times without a pipeline cache (an empty folder) and `runs` times with a warm one,
/// alternating; every child runs with Mesa's own shader cache disabled. `exe` is the kiln
/// binary; `supported` says whether the adapter has `PIPELINE_CACHE`.
pub fn cold_start(
    exe: &std::path::Path,
    runs: usize,
    supported: bool,
) -> Result<Vec<ColdStartResult>> {
    let mkdir = |dir: &std::path::Path| {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
    };
    let base = std::env::temp_dir().join(format!("kiln-cold-start-{}", std::process::id()));
    let warm = base.join("warm");
    mkdir(&warm)?;
    // Prime the warm cache (this run is not counted).
    spawn_cold(exe, &warm)?;
    let mut without = Vec::new();
    let mut with = Vec::new();
    let result = (|| {
        for k in 0..runs.max(1) {
            let empty = base.join(format!("empty-{k}"));
            mkdir(&empty)?;
            without.push(spawn_cold(exe, &empty)?);
            with.push(spawn_cold(exe, &warm)?);
        }
        Ok::<(), anyhow::Error>(())
    })();
    let _ = std::fs::remove_dir_all(&base);
    result?;
    Ok(vec![
        ColdStartResult {
            name: "cold_start_cnn_b64_nocache".into(),
            pipeline_cache: "off",
            runs: without,
        },
        ColdStartResult {
            name: "cold_start_cnn_b64_cache".into(),
            pipeline_cache: if supported { "on" } else { "unsupported" },
            runs: with,
        },
    ])
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

#[cfg(test)]
mod tests {
    use super::{Ceilings, ColdStartRun, Timing};

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
        let r = ColdStartRun {
            total_ms: 1234.5,
            context_ms: 70.25,
            build_ms: 3.0,
            compile_ms: 350.0,
            step_ms: 800.5,
            cache_bytes: 96,
        };
        let back = ColdStartRun::parse(&r.line()).unwrap();
        assert!((back.total_ms - r.total_ms).abs() < 0.1 && (back.step_ms - r.step_ms).abs() < 0.1);
        assert_eq!(back.cache_bytes, 96);
        assert!(ColdStartRun::parse("case=x median_ms=1").is_none());
    }
}
