//! Peak GPU memory of a training step beside what the step must hold: `kiln bench` reports it
//! beside the training-step case, and tests/memory.rs checks its bound. Uses kiln's public API
//! only, so the test can include this file.

use kiln::{Context, PlanStats, Result, Tensor};

/// A seeded tensor of `shape` with values in [-1, 1), made on the host: a small xorshift keeps
/// the benchmark's inputs independent of the GPU random kernels.
pub fn seeded(ctx: &Context, shape: &[usize], seed: u64) -> Result<Tensor> {
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

/// Peak GPU memory of one training step beside the bound it should stay near.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryReport {
    /// Images per step.
    pub batch: usize,
    /// The pool's high-water mark (live + pooled bytes) during one warm step: what kiln held
    /// on the device.
    pub peak_bytes: u64,
    /// The most bytes handed out at once during that step.
    pub peak_live_bytes: u64,
    /// Exact bytes of the model's parameters.
    pub param_bytes: u64,
    /// Exact bytes of the optimizer's state.
    pub optimizer_bytes: u64,
    /// The step's plan, including the exact live-set peak of its intermediates.
    pub plan: PlanStats,
}

impl MemoryReport {
    /// Parameters + optimizer state + the largest set of intermediates live at once.
    pub fn bound_bytes(&self) -> u64 {
        self.param_bytes + self.optimizer_bytes + self.plan.live_intermediate_peak_bytes
    }

    /// `peak_bytes / bound_bytes`.
    pub fn ratio(&self) -> f64 {
        self.peak_bytes as f64 / self.bound_bytes().max(1) as f64
    }

    /// What the step's realized order needs: its inputs (parameters and state, the batch) +
    /// the exact live-set peak with kept outputs counted (updates that run in place keep
    /// nothing new). The planner's own overhead is `peak_bytes` over this.
    pub fn plan_bound_bytes(&self) -> u64 {
        self.plan.input_bytes + self.plan.live_peak_with_kept_bytes
    }

    /// `peak_bytes / plan_bound_bytes`.
    pub fn plan_ratio(&self) -> f64 {
        self.peak_bytes as f64 / self.plan_bound_bytes().max(1) as f64
    }
}

/// Peak GPU memory of one warm training step of the seed CNN on `batch` random images, beside
/// parameters + Adam state + the planner's exact live-set peak of the step's intermediates.
/// Use a context that runs nothing else meanwhile: the pool's counters are per context.
pub fn train_step_memory(ctx: &Context, batch: usize) -> Result<MemoryReport> {
    let mut model = kiln::nn::zoo::seed_cnn(ctx, 1e-3, 1)?;
    let x = seeded(ctx, &[batch, 1, 28, 28], 60)?;
    let labels: Vec<i32> = (0..batch as i32).map(|i| i * 7 % 10).collect();
    let y = Tensor::from_slice(ctx, &labels, &[batch])?;
    let step = |model: &mut kiln::nn::Sequential| -> Result<()> {
        let (loss, _) = model.train_step(&x, &y, None)?;
        model.realize_step(&[&loss])?;
        ctx.synchronize()
    };
    // Two warm steps: the first creates the optimizer state (its update cannot run in place:
    // the state starts as pending zeros) and fills the pool. Then the pool is emptied and one
    // more step fills it with what a steady step uses, so the measured peak is a step's own,
    // not buffers cached from the different first step.
    step(&mut model)?;
    step(&mut model)?;
    ctx.trim_pool();
    step(&mut model)?;
    ctx.reset_peak_memory();
    step(&mut model)?;
    let stats = ctx.memory_stats();
    let bytes = |ts: Vec<Tensor>| ts.iter().map(|t| (t.numel() * 4) as u64).sum::<u64>();
    Ok(MemoryReport {
        batch,
        peak_bytes: stats.peak_bytes,
        peak_live_bytes: stats.peak_live_bytes,
        param_bytes: bytes(model.parameters().iter().map(|p| p.value()).collect()),
        optimizer_bytes: bytes(model.optimizer().map_or(Vec::new(), |o| o.state())),
        plan: ctx.last_plan(),
    })
}
