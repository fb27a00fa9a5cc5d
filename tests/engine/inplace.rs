//! In-place optimizer updates: the executor writes an update over the parameter and state
//! buffers it replaces when nothing can observe their old values, and writes new buffers
//! otherwise. Either way the values are the f64 reference's; held handles and later readers
//! of the old values always see them unchanged.

use crate::common;

use common::{assert_close, f64s, Rng, RngExt};
use kiln::kernels::optim::{adam, sgd, sgd_momentum, AdamConfig};
use kiln::reference::optim as reference;
use kiln::{Context, Tensor};

/// A context of the test's own, so that `last_plan` describes this test's realizations and not
/// one of a test running beside it; outputs are poisoned as in `common::ctx`.
fn fresh() -> Context {
    let ctx = Context::new().expect("an adapter (tests need one and are not skipped)");
    kiln::testing::set_poison_outputs(&ctx, true);
    ctx
}

const SHAPE: [usize; 2] = [37, 29]; // 1,073 elements: not a multiple of the 256-wide group

fn close(what: &str, got: &Tensor, want: &[f64]) {
    let max = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert_close(what, &got.to_vec::<f32>().unwrap(), want, 1e-6 * max, 1e-5);
}

fn random(ctx: &Context, rng: &mut Rng, lo: f32, hi: f32) -> (Tensor, Vec<f64>) {
    let v = rng.vec(SHAPE.iter().product(), lo, hi);
    (Tensor::from_slice(ctx, &v, &SHAPE).unwrap(), f64s(&v))
}

fn config() -> AdamConfig {
    AdamConfig {
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.99,
        eps: 1e-8,
        weight_decay: 0.01,
        decoupled: true,
        amsgrad: false,
    }
}

/// Host copy of the reference Adam step for `config()`.
fn adam_ref(x: &[f64], g: &[f64], m: &[f64], v: &[f64], step: u64) -> [Vec<f64>; 3] {
    let c = config();
    let (x, m, v) = reference::adam(
        x,
        g,
        m,
        v,
        step,
        c.lr.into(),
        c.beta1.into(),
        c.beta2.into(),
        c.eps.into(),
        c.weight_decay.into(),
        c.decoupled,
    );
    [x, m, v]
}

#[test]
fn adam_steps_overwrite_the_old_buffers_when_no_one_can_see_them() {
    let ctx = fresh();
    let mut rng = Rng::new(1);
    let (mut x, mut hx) = random(&ctx, &mut rng, -2.0, 2.0);
    let (mut m, mut hm) = random(&ctx, &mut rng, -0.1, 0.1);
    let (mut v, mut hv) = random(&ctx, &mut rng, 0.0, 0.1);
    ctx.synchronize().unwrap();
    for step in 1..=3 {
        let (g, hg) = random(&ctx, &mut rng, -1.0, 1.0);
        g.realize().unwrap();
        let buffers = ctx.memory_stats().buffers_created;
        (x, m, v) = adam(&x, &g, &m, &v, step, &config()).unwrap();
        ctx.realize(&[&x, &m, &v]).unwrap();
        let plan = ctx.last_plan();
        assert_eq!(
            plan.planned_bytes, 0,
            "step {step}: the update took new buffers: {plan:?}"
        );
        if step > 1 {
            // (The first realization of a fresh context also makes its uniform arena.)
            let made = ctx.memory_stats().buffers_created - buffers;
            assert_eq!(made, 0, "step {step}: {made} buffers created");
        }
        [hx, hm, hv] = adam_ref(&hx, &hg, &hm, &hv, step);
        close(&format!("step {step} x"), &x, &hx);
        close(&format!("step {step} m"), &m, &hm);
        close(&format!("step {step} v"), &v, &hv);
    }
}

#[test]
fn a_held_handle_to_the_old_parameter_keeps_its_values_and_blocks_the_overwrite() {
    let ctx = fresh();
    let mut rng = Rng::new(2);
    let (x, hx) = random(&ctx, &mut rng, -2.0, 2.0);
    let (m, hm) = random(&ctx, &mut rng, -0.1, 0.1);
    let (v, hv) = random(&ctx, &mut rng, 0.0, 0.1);
    let (g, hg) = random(&ctx, &mut rng, -1.0, 1.0);
    let old = x.clone();
    let (x, m, v) = adam(&x, &g, &m, &v, 1, &config()).unwrap();
    ctx.realize(&[&x, &m, &v]).unwrap();
    assert!(
        ctx.last_plan().planned_bytes > 0,
        "the held parameter was overwritten"
    );
    let [wx, wm, wv] = adam_ref(&hx, &hg, &hm, &hv, 1);
    close("x", &x, &wx);
    close("m", &m, &wm);
    close("v", &v, &wv);
    close("the held old parameter", &old, &hx);
}

#[test]
fn a_reader_of_the_old_value_that_runs_after_the_update_blocks_the_overwrite() {
    // The realization order follows the targets, so one of the two target orders runs the
    // reader first (the update may then overwrite) and the other runs it last (it may not).
    let mut planned = Vec::new();
    for order in 0..2 {
        let ctx = fresh();
        let mut rng = Rng::new(3);
        let (x0, hx) = random(&ctx, &mut rng, -2.0, 2.0);
        let (m0, hm) = random(&ctx, &mut rng, -0.1, 0.1);
        let (v0, hv) = random(&ctx, &mut rng, 0.0, 0.1);
        let (g, hg) = random(&ctx, &mut rng, -1.0, 1.0);
        // Recorded before the update, reading the old parameter; no handle to it remains.
        let doubled = x0.mul_scalar(2.0).unwrap();
        let (x, m, v) = adam(&x0, &g, &m0, &v0, 1, &config()).unwrap();
        drop((x0, m0, v0));
        if order == 0 {
            ctx.realize(&[&doubled, &x, &m, &v]).unwrap();
        } else {
            ctx.realize(&[&x, &m, &v, &doubled]).unwrap();
        }
        planned.push(ctx.last_plan().planned_bytes);
        let [wx, wm, wv] = adam_ref(&hx, &hg, &hm, &hv, 1);
        let what = format!("target order {order}");
        close(&format!("{what}: x"), &x, &wx);
        close(&format!("{what}: m"), &m, &wm);
        close(&format!("{what}: v"), &v, &wv);
        let want: Vec<f64> = hx.iter().map(|a| 2.0 * a).collect();
        close(
            &format!("{what}: the reader saw the old parameter"),
            &doubled,
            &want,
        );
    }
    planned.sort_unstable();
    // In place: only the reader's output is new; otherwise the update's three outputs too.
    assert_eq!(planned, [4352, 4 * 4352], "bytes planned per order");
}

#[test]
fn sgd_and_momentum_steps_overwrite_in_place_and_match_the_reference() {
    let ctx = fresh();
    let mut rng = Rng::new(4);
    let (mut x, mut hx) = random(&ctx, &mut rng, -2.0, 2.0);
    let (mut b, mut hb) = random(&ctx, &mut rng, -9.0, 9.0); // ignored on the first step
    for step in 0..3 {
        let first = step == 0;
        let (g, hg) = random(&ctx, &mut rng, -1.0, 1.0);
        g.realize().unwrap();
        (x, b) = sgd_momentum(&x, &g, &b, 0.05, 0.9, 0.01, true, first).unwrap();
        ctx.realize(&[&x, &b]).unwrap();
        assert_eq!(ctx.last_plan().planned_bytes, 0, "momentum step {step}");
        (hx, hb) = reference::sgd_momentum(
            &hx,
            &hg,
            &hb,
            0.05,
            0.9f32.into(),
            0.01f32.into(),
            true,
            first,
        );
        close(&format!("momentum step {step} x"), &x, &hx);
        close(&format!("momentum step {step} buf"), &b, &hb);
    }
    // x is an output of the last momentum step, like b: holding b (a sibling output of the
    // same op) keeps that op's buffers out of reach, so the first SGD step writes a new one.
    for step in 0..3 {
        let (g, hg) = random(&ctx, &mut rng, -1.0, 1.0);
        g.realize().unwrap();
        x = sgd(&x, &g, 0.1, 0.02).unwrap();
        x.realize().unwrap();
        let want = if step == 0 { 4352 } else { 0 };
        assert_eq!(ctx.last_plan().planned_bytes, want, "sgd step {step}");
        hx = reference::sgd(&hx, &hg, 0.1, 0.02);
        close(&format!("sgd step {step} x"), &x, &hx);
    }
    close("the momentum buffer, still held", &b, &hb);
}
