//! Training end to end: every optimizer lowers the loss, composed layers get the gradients
//! finite differences predict, a resumed run is bit-identical, memory stays flat over many
//! steps, and the metrics and checkpoints behave.

use crate::common;

use common::ctx;
use kiln::autograd::grad;
use kiln::data::{procedural_digits, Rng};
use kiln::nn::checkpoint::{from_bytes, to_bytes, CheckpointMeta};
use kiln::nn::layers::{Activation, AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d};
use kiln::nn::metrics::{k_fold, Confusion, Metric};
use kiln::nn::model::{FitOptions, Samples};
use kiln::nn::{Layer, Loss, Sequential};
use kiln::optim::{Optimizer, Schedule};
use kiln::Tensor;

/// Three Gaussian blobs in 8 dimensions.
fn blobs(n: usize, seed: u64) -> (Samples, Samples) {
    let mut rng = Rng::new(seed);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..n {
        let c = i % 3;
        for d in 0..8 {
            let centre = if d % 3 == c { 2.0 } else { 0.0 };
            x.push(centre + rng.normal());
        }
        y.push(c as i32);
    }
    (Samples::f32(x, &[8]), Samples::i32(y, &[]))
}

fn mlp(opt: Optimizer) -> Sequential {
    let ctx = ctx();
    let mut m = Sequential::new(ctx);
    m.add(Dense::new(ctx, 8, 16, Some(Activation::Tanh), 1).unwrap())
        .add(Dense::new(ctx, 16, 3, None, 2).unwrap());
    m.compile(
        opt,
        Loss::CategoricalCrossEntropy { from_logits: true },
        &[Metric::Accuracy],
    );
    m
}

fn quiet(epochs: usize) -> FitOptions {
    FitOptions {
        epochs,
        batch_size: 32,
        progress: false,
        ..Default::default()
    }
}

#[test]
fn every_optimizer_lowers_the_loss_on_a_small_problem() {
    let (x, y) = blobs(192, 1);
    for (name, opt) in [
        ("sgd", Optimizer::sgd(0.1)),
        ("momentum", Optimizer::momentum(0.05, 0.9, false)),
        ("nesterov", Optimizer::momentum(0.05, 0.9, true)),
        ("adam", Optimizer::adam(0.01)),
        ("adamw", Optimizer::adamw(0.01, 0.01)),
        (
            "adam+cosine",
            Optimizer::adam(0.02).with_schedule(Schedule::Cosine {
                total: 60,
                min_lr: 0.001,
            }),
        ),
    ] {
        let mut m = mlp(opt);
        let before = m.evaluate(&x, &y, 64).unwrap().loss;
        let h = m.fit(&x, &y, None, &quiet(10)).unwrap();
        let after = m.evaluate(&x, &y, 64).unwrap();
        assert!(
            after.loss < 0.5 * before,
            "{name}: loss {before:.4} -> {:.4} (per epoch {:?})",
            after.loss,
            h.epochs.iter().map(|e| e.loss).collect::<Vec<_>>()
        );
        assert!(
            after.accuracy.unwrap() > 0.8,
            "{name}: accuracy {:?}",
            after.accuracy
        );
    }
}

#[test]
fn composed_layers_get_the_gradients_finite_differences_predict() {
    let ctx = ctx();
    let mut m = Sequential::new(ctx);
    m.add(Conv2d::same(ctx, 1, 2, 3, Some(Activation::Tanh), 5).unwrap())
        .add(AvgPool2d::new(2))
        .add(Flatten)
        .add(Dense::new(ctx, 2 * 3 * 3, 3, Some(Activation::Sigmoid), 6).unwrap())
        .add(Dense::new(ctx, 3, 4, None, 7).unwrap());
    let mut rng = Rng::new(9);
    let xv: Vec<f32> = (0..2 * 36).map(|_| rng.normal()).collect();
    let x = Tensor::from_slice(ctx, &xv, &[2, 1, 6, 6]).unwrap();
    let labels = Tensor::from_slice(ctx, &[1i32, 3], &[2]).unwrap();
    let loss_of = |m: &Sequential| -> Tensor {
        let out = m.forward(&x, false).unwrap();
        Loss::CategoricalCrossEntropy { from_logits: true }
            .compute(&out, &labels)
            .unwrap()
    };
    let params = m.parameters();
    let leaves: Vec<Tensor> = params.iter().map(|p| p.track()).collect();
    let loss = loss_of(&m);
    let one = Tensor::ones(ctx, &[]).unwrap();
    let refs: Vec<&Tensor> = leaves.iter().collect();
    let grads = grad(&[&loss], &[&one], &refs).unwrap();
    for p in &params {
        p.untrack();
    }
    let h = 1e-2f32;
    for (p, g) in params.iter().zip(&grads) {
        let g = g.as_ref().unwrap().to_vec::<f32>().unwrap();
        let base = p.value().to_vec::<f32>().unwrap();
        for &i in &[0usize, base.len() / 2, base.len() - 1] {
            let mut v = base.clone();
            v[i] = base[i] + h;
            p.set(Tensor::from_slice(ctx, &v, &p.shape()).unwrap());
            let up = f64::from(loss_of(&m).item::<f32>().unwrap());
            v[i] = base[i] - h;
            p.set(Tensor::from_slice(ctx, &v, &p.shape()).unwrap());
            let down = f64::from(loss_of(&m).item::<f32>().unwrap());
            p.set(Tensor::from_slice(ctx, &base, &p.shape()).unwrap());
            let fd = (up - down) / (2.0 * f64::from(h));
            let an = f64::from(g[i]);
            assert!(
                (fd - an).abs() <= 2e-3 + 2e-2 * fd.abs(),
                "{} [{i}]: autograd {an:.6}, finite differences {fd:.6}",
                p.name()
            );
        }
    }
}

fn small_cnn(seed: u64) -> Sequential {
    let ctx = ctx();
    let mut m = Sequential::new(ctx);
    m.add(Conv2d::same(ctx, 1, 4, 3, Some(Activation::Relu), seed).unwrap())
        .add(MaxPool2d::new(2))
        .add(Flatten)
        .add(Dense::new(ctx, 4 * 14 * 14, 10, Some(Activation::Softmax), seed ^ 1).unwrap());
    m.compile(
        Optimizer::adam(2e-3),
        Loss::CategoricalCrossEntropy { from_logits: false },
        &[Metric::Accuracy],
    );
    m
}

#[test]
fn a_run_resumed_from_a_checkpoint_matches_an_uninterrupted_run_bit_for_bit() {
    let data = procedural_digits(192, 3);
    let (x, y) = (Samples::images(&data), Samples::labels(&data));
    let opts = |initial_epoch, epochs| FitOptions {
        epochs,
        batch_size: 32,
        progress: false,
        initial_epoch,
        seed: 11,
        ..Default::default()
    };
    let mut a = small_cnn(1);
    a.fit(&x, &y, None, &opts(0, 2)).unwrap();
    let meta = CheckpointMeta {
        epoch: 2,
        step: a.optimizer().unwrap().steps(),
        ..Default::default()
    };
    let saved = to_bytes(&a, &meta).unwrap();
    let third_a = a.fit(&x, &y, None, &opts(2, 1)).unwrap();

    let mut b = small_cnn(99); // different initialization: the checkpoint must replace it
    let loaded = from_bytes(&mut b, &saved).unwrap();
    assert_eq!(loaded, meta);
    let third_b = b.fit(&x, &y, None, &opts(loaded.epoch, 1)).unwrap();
    assert_eq!(
        third_a.epochs[0].loss.to_bits(),
        third_b.epochs[0].loss.to_bits(),
        "loss after resuming: {} vs {}",
        third_a.epochs[0].loss,
        third_b.epochs[0].loss
    );
    for (pa, pb) in a.parameters().iter().zip(b.parameters()) {
        let (va, vb) = (
            pa.value().to_vec::<f32>().unwrap(),
            pb.value().to_vec::<f32>().unwrap(),
        );
        assert!(
            va.iter().zip(&vb).all(|(p, q)| p.to_bits() == q.to_bits()),
            "parameter {} differs after resuming",
            pa.name()
        );
    }
}

#[test]
fn memory_stays_flat_over_many_training_steps() {
    let ctx = kiln::Context::new().unwrap();
    let mut m = Sequential::new(&ctx);
    m.add(Dense::new(&ctx, 8, 32, Some(Activation::Relu), 1).unwrap())
        .add(Dense::new(&ctx, 32, 3, Some(Activation::Softmax), 2).unwrap());
    m.compile(
        Optimizer::adam(1e-2),
        Loss::CategoricalCrossEntropy { from_logits: false },
        &[Metric::Accuracy],
    );
    let (x, y) = blobs(64, 2);
    let idx: Vec<usize> = (0..32).collect();
    let labels: Vec<i32> = (0..32).map(|i| i % 3).collect();
    let step = |m: &mut Sequential| {
        let xb = x.gather(&ctx, &idx).unwrap();
        let yb = y.gather(&ctx, &idx).unwrap();
        let (loss, correct) = m.train_step(&xb, &yb, Some(&labels)).unwrap();
        m.realize_step(&[&loss, correct.as_ref().unwrap()]).unwrap();
        loss
    };
    // Warm up with the same pattern as measured: the previous step's loss is still held.
    let mut last = None;
    for _ in 0..5 {
        last = Some(step(&mut m));
    }
    ctx.synchronize().unwrap();
    let base = ctx.memory_stats();
    for _ in 0..100 {
        last = Some(step(&mut m));
    }
    ctx.synchronize().unwrap();
    let end = ctx.memory_stats();
    let final_loss = last.unwrap().item::<f32>().unwrap();
    assert!(final_loss.is_finite());
    assert_eq!(
        end.realizations - base.realizations,
        100,
        "one realization per step"
    );
    assert_eq!(
        end.buffers_created, base.buffers_created,
        "new buffers after warm-up: {base:?} -> {end:?}"
    );
    assert_eq!(
        end.pipelines_created, base.pipelines_created,
        "new pipelines after warm-up"
    );
    assert_eq!(end.peak_bytes, base.peak_bytes, "peak memory grew");
    assert_eq!(
        end.bind_groups_created, base.bind_groups_created,
        "bind groups were created after warm-up"
    );
}

#[test]
fn metrics_follow_their_definitions() {
    let truth = [0u32, 0, 1, 1, 2, 2, 2];
    let pred = [0u32, 1, 1, 1, 2, 0, 2];
    let c = Confusion::new(3, &truth, &pred);
    assert_eq!(c.counts, vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 2]]);
    assert!((c.accuracy() - 5.0 / 7.0).abs() < 1e-12);
    let p = c.precision();
    assert!((p[0] - 0.5).abs() < 1e-12 && (p[1] - 2.0 / 3.0).abs() < 1e-12 && p[2] == 1.0);
    let r = c.recall();
    assert!((r[0] - 0.5).abs() < 1e-12 && r[1] == 1.0 && (r[2] - 2.0 / 3.0).abs() < 1e-12);
    let (_, _, f1) = c.macro_scores();
    let want = (0.5 + 0.8 + 0.8) / 3.0;
    assert!((f1 - want).abs() < 1e-12, "macro F1 {f1}");
    let folds = k_fold(23, 5, 1);
    let mut seen = [0; 23];
    for (train, val) in &folds {
        assert_eq!(train.len() + val.len(), 23);
        for &i in val {
            seen[i] += 1;
        }
    }
    assert!(seen.iter().all(|&s| s == 1), "every sample validated once");
}

#[test]
fn learning_rate_schedules_follow_their_formulas() {
    let o = Optimizer::sgd(0.1).with_schedule(Schedule::Step {
        every: 10,
        gamma: 0.5,
    });
    assert_eq!(
        (o.lr_at(0), o.lr_at(9), o.lr_at(10), o.lr_at(25)),
        (0.1, 0.1, 0.05, 0.025)
    );
    let c = Optimizer::sgd(1.0).with_schedule(Schedule::Cosine {
        total: 100,
        min_lr: 0.0,
    });
    assert!((c.lr_at(0) - 1.0).abs() < 1e-6);
    assert!((c.lr_at(50) - 0.5).abs() < 1e-6);
    assert!(c.lr_at(100).abs() < 1e-6 && c.lr_at(500).abs() < 1e-6);
}

#[test]
fn corrupt_or_mismatched_checkpoints_are_rejected_with_the_reason() {
    let m = small_cnn(1);
    let bytes = to_bytes(&m, &CheckpointMeta::default()).unwrap();
    let mut target = small_cnn(2);
    let err = from_bytes(&mut target, &bytes[..bytes.len() / 2]).unwrap_err();
    assert!(err.to_string().contains("checkpoint"), "{err}");
    let err = from_bytes(&mut target, b"definitely not a checkpoint").unwrap_err();
    assert!(err.to_string().contains("safetensors"), "{err}");
    let mut other = mlp(Optimizer::adam(1e-3));
    let err = from_bytes(&mut other, &bytes).unwrap_err();
    assert!(err.to_string().contains("checkpoint"), "{err}");
}

#[test]
fn checkpoints_are_written_atomically() {
    let dir = std::env::temp_dir().join(format!("kiln-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    std::fs::write(&path, b"old contents").unwrap();
    let m = small_cnn(1);
    kiln::nn::checkpoint::save(&m, &path, &CheckpointMeta::default()).unwrap();
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["model.safetensors".to_string()],
        "temporary file left behind"
    );
    let mut back = small_cnn(5);
    kiln::nn::checkpoint::load(&mut back, &path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn layers_describe_themselves_and_count_parameters() {
    let m = small_cnn(1);
    let s = m.summary();
    assert!(
        s.contains("Conv2d(1 -> 4, 3x3, relu)") && s.contains("Dense(784 -> 10, softmax)"),
        "{s}"
    );
    assert!(
        s.contains(&format!("total {} trainable", 4 * 9 + 4 + 784 * 10 + 10)),
        "{s}"
    );
    assert_eq!(Flatten.describe(), "Flatten");
}
