//! Peak GPU memory of a training step against what the step must hold. Not timed. Each test
//! opens its own context: the pool's counters are per context, and tests in one binary run in
//! parallel.

// The measurement `kiln bench` reports beside its training-step case (a module of the binary).
#[path = "../src/cli/memory.rs"]
#[allow(dead_code)]
mod memory;

use memory::train_step_memory;

/// A steady training step of the seed CNN peaks within 1.1x of its parameters + optimizer
/// state + the largest set of intermediates live at once, at a small batch and a large one.
/// It holds because updates run in place (the executor donates the old parameter and state
/// buffers to the Adam kernel) and the planner places intermediates at offsets inside one
/// arena, so the bytes of a dead activation hold any later tensors that fit in them. (With
/// whole buffers per tensor, batch 8 planned 16 MB for a 7.2 MB live set: the 6.4 MB gradient
/// of the first dense layer's weight could not reuse several smaller dead activations.)
fn a_training_step_peaks_within_a_tenth_of_parameters_state_and_live_set(batch: usize) {
    let ctx = kiln::Context::new().unwrap();
    let m = train_step_memory(&ctx, batch).unwrap();
    eprintln!(
        "batch {batch}: {m:?}
peak/(params + optimizer + live set) {:.3}, peak/(inputs + live set with kept) {:.3}
pool {:?}",
        m.ratio(),
        m.plan_ratio(),
        ctx.memory_stats()
    );
    assert_eq!(
        m.optimizer_bytes,
        2 * m.param_bytes,
        "Adam keeps two moments"
    );
    // In place: the step keeps nothing new but its loss.
    assert!(m.plan.kept_bytes < 1024, "{:?}", m.plan);
    assert!(
        m.ratio() <= 1.1,
        "batch {batch}: peak {} bytes is {:.3}x params {} + optimizer {} + live set {}; {:?}",
        m.peak_bytes,
        m.ratio(),
        m.param_bytes,
        m.optimizer_bytes,
        m.plan.live_intermediate_peak_bytes,
        m.plan
    );
    // The arena spans at least the live set (it holds all of it at the peak), and not much
    // more.
    assert!(m.plan.arenas >= 1, "{:?}", m.plan);
    assert!(
        m.plan.arena_bytes >= m.plan.live_intermediate_peak_bytes,
        "{:?}",
        m.plan
    );
    assert!(
        m.plan.arena_bytes as f64 <= 1.1 * m.plan.live_intermediate_peak_bytes as f64,
        "{:?}",
        m.plan
    );

    assert!(m.plan.live_intermediate_peak_bytes > 0);
    assert!(m.plan.live_peak_with_kept_bytes >= m.plan.live_intermediate_peak_bytes);
    // The inputs are the old parameters, Adam's state and the batch (images and labels).
    let batch_bytes = (batch * 28 * 28 * 4 + batch * 4) as u64;
    assert_eq!(
        m.plan.input_bytes,
        m.param_bytes + m.optimizer_bytes + batch_bytes
    );
}

#[test]
fn a_training_step_at_batch_8_peaks_within_a_tenth_of_what_it_holds() {
    a_training_step_peaks_within_a_tenth_of_parameters_state_and_live_set(8);
}

#[test]
fn a_training_step_at_batch_64_peaks_within_a_tenth_of_what_it_holds() {
    a_training_step_peaks_within_a_tenth_of_parameters_state_and_live_set(64);
}

#[test]
fn the_plan_reports_exact_liveness_of_a_small_chain() {
    let ctx = kiln::Context::new().unwrap();
    // Unfused, so each op is a dispatch of its own (fused, a and b are one kernel: below).
    kiln::testing::set_fusion(&ctx, false);
    let data: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin()).collect();
    let x = kiln::Tensor::from_slice(&ctx, &data, &[1000]).unwrap();
    // a = 2x (4,000 bytes, read by b), b = a^2 (4,000, read by c), c = sum(b) (kept). (Not
    // x + x and a * a: a dispatch that binds one buffer twice writes outside the arena.)
    let a = x.mul_scalar(2.0).unwrap();
    let b = a.pow_scalar(2.0).unwrap();
    let c = b.sum_all().unwrap();
    drop((a, b));
    ctx.realize(&[&c]).unwrap();
    let plan = ctx.last_plan();
    assert_eq!(plan.steps, 3);
    assert_eq!(
        plan.live_intermediate_peak_bytes, 8000,
        "a and b live together"
    );
    assert_eq!(plan.live_peak_with_kept_bytes, 8000);
    assert_eq!(plan.kept_bytes, 4);
    assert_eq!(plan.input_bytes, 4000);
    // b cannot take a's bytes (b reads a), so an 8 KiB arena holds both, and c takes a
    // 256-byte class of its own.
    assert_eq!(plan.planned_bytes, 8192 + 256);
    assert_eq!((plan.arenas, plan.arena_bytes), (1, 8192));
    let want: f64 = data.iter().map(|&v| (2.0 * f64::from(v)).powi(2)).sum();
    let got = f64::from(c.item::<f32>().unwrap());
    assert!((got - want).abs() <= 1e-3 * want.abs(), "{got} vs {want}");

    // Fused, a never exists: b (one generated kernel) is the only intermediate.
    kiln::testing::set_fusion(&ctx, true);
    let b = x.add(&x).unwrap().mul(&x.add(&x).unwrap()).unwrap();
    let c = b.sum_all().unwrap();
    drop(b);
    ctx.realize(&[&c]).unwrap();
    let plan = ctx.last_plan();
    assert_eq!(plan.live_intermediate_peak_bytes, 4000, "{plan:?}");
    assert_eq!(plan.planned_bytes, 4096 + 256, "{plan:?}");
    assert_eq!((plan.arenas, plan.arena_bytes), (1, 4096), "{plan:?}");
    let got = f64::from(c.item::<f32>().unwrap());
    assert!(
        (got - want).abs() <= 1e-3 * want.abs(),
        "fused: {got} vs {want}"
    );
}
