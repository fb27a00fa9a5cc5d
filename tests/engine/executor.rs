//! The graph executor: one submission per realization, buffer reuse by liveness, pooling across
//! realizations, flat memory over many steps, and errors instead of panics.
//!
//! Tests that read memory counters open their own context so other tests running in parallel
//! threads cannot disturb the numbers.

use crate::common;

use common::{assert_close, Rng};
use kiln::{Context, DType, Error, Tensor};

fn own_ctx() -> Context {
    let ctx =
        Context::new().unwrap_or_else(|e| panic!("*** NO GPU ADAPTER (not skipped) ***: {e}"));
    kiln::testing::set_poison_outputs(&ctx, true);
    ctx
}

fn upload(ctx: &Context, n: usize, seed: u64) -> (Vec<f32>, Tensor) {
    let v = Rng::new(seed).uniform_vec(n, -1.0, 1.0);
    let t = Tensor::from_slice(ctx, &v, &[n]).unwrap();
    (v, t)
}

#[test]
fn a_chain_of_ops_is_realized_in_one_submission() {
    let ctx = own_ctx();
    // One dispatch per op is what this test counts; fusion (tests/engine/fusion.rs) would merge them.
    kiln::testing::set_fusion(&ctx, false);
    let (xv, x) = upload(&ctx, 1000, 1);
    ctx.synchronize().unwrap();
    let before = ctx.memory_stats();
    let mut y = x.clone();
    for _ in 0..20 {
        y = y.mul_scalar(0.5).unwrap().add(&x).unwrap();
    }
    assert_eq!(
        ctx.memory_stats(),
        before,
        "recording ops must not touch the GPU"
    );
    y.realize().unwrap();
    let after = ctx.memory_stats();
    assert_eq!(after.realizations - before.realizations, 1);
    assert_eq!(after.submissions - before.submissions, 1);
    assert_eq!(after.dispatches - before.dispatches, 40);
    let want: Vec<f64> = xv
        .iter()
        .map(|&v| {
            let mut acc = f64::from(v);
            for _ in 0..20 {
                acc = acc * 0.5 + f64::from(v);
            }
            acc
        })
        .collect();
    assert_close("chain", &y.to_vec::<f32>().unwrap(), &want, 1e-5, 1e-5);
}

#[test]
fn intermediates_share_buffers_within_a_realization() {
    let ctx = own_ctx();
    // Unfused, so each tanh is a dispatch with an intermediate of its own (fused, the chain
    // is one kernel and has none).
    kiln::testing::set_fusion(&ctx, false);
    let n = 1 << 16; // 256 KiB per tensor
    let (xv, x) = upload(&ctx, n, 2);
    ctx.synchronize().unwrap();
    let before = ctx.memory_stats();
    let mut y = x.clone();
    for _ in 0..64 {
        y = y.tanh().unwrap();
    }
    y.realize().unwrap();
    let after = ctx.memory_stats();
    let per_tensor = (n * 4) as u64;
    // The 63 intermediates take turns in two slots of one arena.
    let plan = ctx.last_plan();
    assert_eq!(plan.steps, 64);
    assert_eq!(
        (plan.arenas, plan.arena_bytes),
        (1, 2 * per_tensor),
        "{plan:?}"
    );
    let want: Vec<f64> = xv
        .iter()
        .map(|&v| (0..64).fold(f64::from(v), |a, _| a.tanh()))
        .collect();
    assert_close("chain", &y.to_vec::<f32>().unwrap(), &want, 1e-5, 1e-5);
    // 64 ops, but at most two intermediates are ever live at once, plus the result.
    let grew = after.peak_bytes - before.peak_bytes;
    assert!(
        grew <= 3 * per_tensor + 64 * 1024,
        "peak grew by {grew} bytes for a 64-op chain of {per_tensor}-byte tensors"
    );
    assert!(after.buffers_created - before.buffers_created <= 4);
}

#[test]
fn a_pending_tensor_that_is_still_held_is_kept_not_recycled() {
    let ctx = own_ctx();
    let (xv, x) = upload(&ctx, 333, 3);
    let a = x.exp().unwrap();
    let b = a.add_scalar(1.0).unwrap().sqrt().unwrap();
    b.realize().unwrap();
    assert!(
        a.is_realized(),
        "a is held by the caller, so it must be kept"
    );
    let want_a: Vec<f64> = xv.iter().map(|&v| f64::from(v).exp()).collect();
    let want_b: Vec<f64> = want_a.iter().map(|&v| (v + 1.0).sqrt()).collect();
    assert_close("a", &a.to_vec::<f32>().unwrap(), &want_a, 1e-6, 1e-5);
    assert_close("b", &b.to_vec::<f32>().unwrap(), &want_b, 1e-6, 1e-5);
}

#[test]
fn the_same_graph_realized_1000_times_keeps_memory_flat_and_creates_nothing_new() {
    let ctx = own_ctx();
    // Unfused, so the step has intermediates (placed in an arena, bound at offsets) that must
    // land in the same arena and the same cached bind groups every time.
    kiln::testing::set_fusion(&ctx, false);
    let (xv, x) = upload(&ctx, 4099, 4);
    let (wv, w) = upload(&ctx, 4099, 5);
    let step = |x: &Tensor, w: &Tensor| -> Tensor {
        x.mul(w)
            .unwrap()
            .add(x)
            .unwrap()
            .relu()
            .unwrap()
            .sub_scalar(0.25)
            .unwrap()
            .tanh()
            .unwrap()
    };
    let want: Vec<f64> = xv
        .iter()
        .zip(&wv)
        .map(|(&a, &b)| {
            let (a, b) = (f64::from(a), f64::from(b));
            ((a * b + a).max(0.0) - 0.25).tanh()
        })
        .collect();
    // First realization: compiles pipelines and fills the pool.
    let first = step(&x, &w);
    assert_close("step 0", &first.to_vec::<f32>().unwrap(), &want, 1e-6, 1e-5);
    drop(first);
    let base = ctx.memory_stats();
    for i in 1..=1000 {
        let y = step(&x, &w);
        if i % 250 == 0 {
            assert_close(
                &format!("step {i}"),
                &y.to_vec::<f32>().unwrap(),
                &want,
                1e-6,
                1e-5,
            );
        } else {
            y.realize().unwrap();
        }
    }
    ctx.synchronize().unwrap();
    let plan = ctx.last_plan();
    assert_eq!((plan.steps, plan.arenas), (5, 1), "{plan:?}");
    let end = ctx.memory_stats();
    assert_eq!(end.realizations - base.realizations, 1000);
    assert_eq!(
        end.buffers_created, base.buffers_created,
        "new buffers after step 0"
    );
    assert_eq!(
        end.pipelines_created, base.pipelines_created,
        "new pipelines after step 0"
    );
    assert_eq!(
        end.bind_groups_created, base.bind_groups_created,
        "new bind groups after step 0"
    );
    assert_eq!(end.peak_bytes, base.peak_bytes, "peak memory grew");
    assert_eq!(end.live_bytes, base.live_bytes, "live memory grew");
}

#[test]
fn reshape_is_a_view_that_runs_no_kernel() {
    let ctx = own_ctx();
    let (xv, x) = upload(&ctx, 24, 6);
    let before = ctx.memory_stats();
    let r = x.reshape(&[2, 3, 4]).unwrap();
    assert_eq!(r.shape(), &[2, 3, 4]);
    assert_eq!(r.to_vec::<f32>().unwrap(), xv);
    assert_eq!(ctx.memory_stats().dispatches, before.dispatches);
    let err = x.reshape(&[5, 5]).unwrap_err().to_string();
    assert!(
        err.contains("reshape") && err.contains("[24]") && err.contains("[5, 5]"),
        "{err}"
    );
}

#[test]
fn integer_tensors_round_trip_and_are_refused_by_float_kernels() {
    let ctx = own_ctx();
    let u: Vec<u32> = (0..77).map(|i| i * 2_654_435_761u32).collect();
    let i: Vec<i32> = (0..77).map(|k| k * -7919).collect();
    let tu = Tensor::from_slice(&ctx, &u, &[7, 11]).unwrap();
    let ti = Tensor::from_slice(&ctx, &i, &[77]).unwrap();
    assert_eq!(tu.dtype(), DType::U32);
    assert_eq!(tu.to_vec::<u32>().unwrap(), u);
    assert_eq!(ti.to_vec::<i32>().unwrap(), i);
    assert!(matches!(tu.exp(), Err(Error::UnsupportedDType { .. })));
    assert!(
        tu.to_vec::<f32>().is_err(),
        "reading u32 data as f32 must fail"
    );
}

#[test]
fn bad_host_data_is_an_error_not_a_panic() {
    let ctx = own_ctx();
    let err = Tensor::from_slice(&ctx, &[1.0f32, 2.0, 3.0], &[2, 2]).unwrap_err();
    assert!(err.to_string().contains("from_slice"), "{err}");
    let err = Tensor::zeros(&ctx, &[1; 9]).unwrap_err();
    assert!(err.to_string().contains("rank 9"), "{err}");
}

#[test]
fn a_tensor_over_the_storage_limit_is_refused_with_the_limit_named() {
    let ctx = own_ctx();
    let limit = ctx
        .limits()
        .max_storage_buffer_binding_size
        .min(ctx.limits().max_buffer_size);
    let n = (limit / 4 + 1) as usize;
    let err = Tensor::zeros(&ctx, &[n]).unwrap_err();
    match &err {
        Error::LimitExceeded { limit_name, .. } => assert!(limit_name.starts_with("max_")),
        other => panic!("expected LimitExceeded, got {other}"),
    }
    assert!(err.to_string().contains(&limit.to_string()), "{err}");
}

#[test]
fn invalid_wgsl_is_reported_with_the_shader_name() {
    let ctx = own_ctx();
    let err = ctx
        .compile_shader(
            "broken_kernel",
            "@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }",
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Shader {
                shader: "broken_kernel",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("broken_kernel"), "{err}");
    // The context keeps working afterwards.
    let (xv, x) = upload(&ctx, 5, 7);
    assert_eq!(
        x.neg().unwrap().to_vec::<f32>().unwrap(),
        xv.iter().map(|v| -v).collect::<Vec<_>>()
    );
}

#[test]
fn async_readback_gives_the_same_data_as_blocking() {
    let ctx = own_ctx();
    let (_, x) = upload(&ctx, 1001, 8);
    let y = x.sin().unwrap();
    let a = futures::executor::block_on(y.to_vec_async::<f32>()).unwrap();
    let b = y.to_vec::<f32>().unwrap();
    assert_eq!(a, b);
}

#[test]
fn several_threads_can_record_realize_and_read_at_once() {
    let ctx = own_ctx();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let ctx = ctx.clone();
            s.spawn(move || {
                for k in 0..25 {
                    let (xv, x) = upload(&ctx, 513 + k, 100 + t * 100 + k as u64);
                    let y = x.square().unwrap().add_scalar(t as f32).unwrap();
                    let want: Vec<f64> = xv
                        .iter()
                        .map(|&v| f64::from(v) * f64::from(v) + t as f64)
                        .collect();
                    assert_close("thread", &y.to_vec::<f32>().unwrap(), &want, 1e-6, 1e-6);
                }
            });
        }
    });
}

#[test]
fn dropping_a_huge_unrealized_graph_does_not_overflow_the_stack() {
    let ctx = own_ctx();
    let (_, x) = upload(&ctx, 4, 9);
    let mut y = x.clone();
    for _ in 0..200_000 {
        y = y.add(&x).unwrap();
    }
    drop(y);
}

#[test]
fn empty_tensors_realize_and_read_back_empty() {
    let ctx = own_ctx();
    let z = Tensor::zeros(&ctx, &[0, 3]).unwrap();
    let y = z
        .exp()
        .unwrap()
        .add(&Tensor::ones(&ctx, &[3]).unwrap())
        .unwrap();
    assert_eq!(y.shape(), &[0, 3]);
    assert!(y.to_vec::<f32>().unwrap().is_empty());
}

#[test]
fn gpu_timestamps_time_a_realization_when_the_adapter_has_them() {
    let ctx = own_ctx();
    let Some(timer) = kiln::GpuTimer::new(&ctx) else {
        eprintln!(
            "NOTE: adapter {:?} has no timestamp queries; the timer is not exercised here",
            ctx.adapter_info().name
        );
        return;
    };
    let (_, x) = upload(&ctx, 1 << 16, 10);
    let mut y = x.clone();
    for _ in 0..10 {
        y = y.exp().unwrap().neg().unwrap();
    }
    ctx.realize_timed(&[&y], &timer).unwrap();
    let secs = timer.read_seconds(&ctx).unwrap();
    assert!(secs > 0.0 && secs < 10.0, "implausible GPU time {secs} s");
}

/// `realize_profiled` times every dispatch (a fused group is one dispatch, named for its op
/// count) on adapters with timestamp queries, and refuses clearly on the others (llvmpipe GL).
#[test]
fn profiled_realizations_time_each_dispatch_in_order_or_refuse_without_timestamps() {
    let ctx = Context::new().unwrap();
    kiln::testing::set_poison_outputs(&ctx, true);
    let a = Tensor::from_slice(&ctx, &[1.0f32, -2.0, 3.0, -4.0, 5.0, 6.5], &[2, 3]).unwrap();
    let b = Tensor::from_slice(&ctx, &[0.5f32, 1.5, -1.0, 2.0, 0.25, -3.0], &[3, 2]).unwrap();
    // matmul, then relu and a scalar multiply fused into one kernel, then a sum.
    let y = a
        .matmul(&b)
        .unwrap()
        .relu()
        .unwrap()
        .mul_scalar(2.0)
        .unwrap();
    let s = y.sum_all().unwrap();
    match ctx.realize_profiled(&[&s]) {
        Ok(times) => {
            assert!(ctx.has_timestamps());
            let names: Vec<&str> = times.iter().map(|t| t.kernel.as_str()).collect();
            assert_eq!(names, ["matmul", "fused[2]", "sum"], "{times:?}");
            assert!(
                times.iter().all(|t| t.seconds >= 0.0 && t.seconds < 10.0),
                "{times:?}"
            );
        }
        Err(e) => {
            assert!(!ctx.has_timestamps(), "{e}");
            assert!(e.to_string().contains("timestamp"), "{e}");
        }
    }
    // The values are right either way (profiled, or realized by the read after a refusal).
    let got = s.item::<f32>().unwrap();
    let (av, bv) = (
        [[1.0f32, -2.0, 3.0], [-4.0, 5.0, 6.5]],
        [[0.5f32, 1.5], [-1.0, 2.0], [0.25, -3.0]],
    );
    let ab: Vec<f32> = (0..2)
        .flat_map(|i| (0..2).map(move |j| (0..3).map(|k| av[i][k] * bv[k][j]).sum::<f32>()))
        .collect();
    let want: f32 = ab.iter().map(|v| 2.0 * v.max(0.0)).sum();
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
}

#[test]
fn an_op_that_reads_one_buffer_twice_writes_outside_the_arena_its_inputs_share() {
    // WebGPU forbids a writable binding that overlaps another binding of one dispatch, so
    // `a * a` binds its inputs read-only, and then its output must not be a slice of the arena
    // that holds `a` (wgpu refuses one buffer as read-only and writable storage in a dispatch).
    for fusion in [false, true] {
        let ctx = own_ctx();
        kiln::testing::set_fusion(&ctx, fusion);
        let (xv, x) = upload(&ctx, 1000, 9);
        let c = {
            // a, its view and b are dropped before realizing, so they are intermediates.
            let a = x.add_scalar(1.0).unwrap(); // a slice of the arena
            let a2 = a.reshape(&[10, 100]).unwrap().reshape(&[1000]).unwrap(); // a view of it
            let b = a.mul(&a2).unwrap(); // one buffer range, bound twice
            b.add(&a).unwrap().mul(&x).unwrap().mul(&x).unwrap() // and a realized one
        };
        c.realize().unwrap();
        let want: Vec<f64> = xv
            .iter()
            .map(|&v| {
                let (v, a) = (f64::from(v), f64::from(v) + 1.0);
                (a * a + a) * v * v
            })
            .collect();
        assert_close(
            &format!("aliased inputs (fusion {fusion})"),
            &c.to_vec::<f32>().unwrap(),
            &want,
            1e-5,
            1e-5,
        );
        if !fusion {
            // Unfused, `a * a2` is a dispatch of its own: its output must be a buffer beside the
            // arena (as is the kept c), not a slice of it. (Fused, the group reads x once.)
            let plan = ctx.last_plan();
            assert_eq!(plan.kept_bytes, 4000, "only c is kept: {plan:?}");
            assert!(
                plan.planned_bytes - plan.arena_bytes >= 2 * 4000,
                "the aliased dispatch's output was placed in the arena: {plan:?}"
            );
        }
    }
}
