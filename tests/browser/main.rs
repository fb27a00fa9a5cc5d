//! The native half of the browser test (tests/browser/test.mjs is the browser half).
//!
//! `expected.json` holds what the native build gets when the demo's shipped checkpoint
//! (examples/web/seed_cnn.safetensors, from `kiln train`) classifies a fixed set of procedural
//! digits. This test recomputes it natively and compares; the browser test classifies the same
//! digits in the page and must find the same classes. To regenerate both files from a new
//! `kiln train` run (see README, "In the browser"):
//!
//! ```sh
//! KILN_WEB_CHECKPOINT=out/checkpoint.safetensors \
//!   cargo test --release --test browser -- --ignored regenerate
//! ```

#[path = "../common/mod.rs"]
mod common;

use std::path::PathBuf;

use common::RngExt;
use kiln::nn::checkpoint;
use kiln::nn::model::Samples;
use kiln::nn::zoo::seed_cnn;
use serde_json::{json, Value};

/// The digit set: procedural_digits(N, SEED), a seed the training data does not use.
const N: usize = 40;
const SEED: u64 = 20_261_129;

fn path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The native build's probabilities (N x 10) for the digit set, with the shipped checkpoint.
fn native_probs() -> (Vec<u8>, Vec<Vec<f32>>) {
    let ctx = common::ctx();
    let mut model = seed_cnn(ctx, 1e-3, 0).unwrap();
    let bytes = std::fs::read(path("examples/web/seed_cnn.safetensors")).unwrap();
    checkpoint::from_bytes(&mut model, &bytes).unwrap();
    let ds = kiln::data::procedural_digits(N, SEED);
    let flat = model.predict(&Samples::images(&ds), 16).unwrap();
    (ds.labels, flat.chunks(10).map(<[f32]>::to_vec).collect())
}

fn argmax(p: &[f32]) -> usize {
    (0..p.len()).fold(0, |b, k| if p[k] > p[b] { k } else { b })
}

#[test]
fn shipped_checkpoint_classifies_the_digit_set_as_recorded_in_expected_json() {
    let (labels, probs) = native_probs();
    let want: Value = serde_json::from_str(
        &std::fs::read_to_string(path("tests/browser/expected.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(want["n"], N);
    assert_eq!(want["seed"], SEED);
    let want_labels: Vec<u8> = serde_json::from_value(want["labels"].clone()).unwrap();
    let want_classes: Vec<usize> = serde_json::from_value(want["classes"].clone()).unwrap();
    let want_probs: Vec<Vec<f32>> = serde_json::from_value(want["probs"].clone()).unwrap();
    assert_eq!(labels, want_labels, "the procedural digits changed");
    let classes: Vec<usize> = probs.iter().map(|p| argmax(p)).collect();
    assert_eq!(classes, want_classes);
    for (i, (got, w)) in probs.iter().zip(&want_probs).enumerate() {
        let w: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
        common::assert_close(&format!("digit {i}"), got, &w, 1e-4, 1e-4);
    }
    // The checkpoint is a trained one: it gets nearly all of the set right.
    let correct = classes
        .iter()
        .zip(&labels)
        .filter(|(c, l)| **c == usize::from(**l))
        .count();
    assert!(correct * 10 >= N * 9, "{correct}/{N} correct");
}

#[test]
fn weights_only_checkpoint_drops_optimizer_state_and_loads_into_a_compiled_model() {
    let ctx = common::ctx();
    let make = || {
        let mut m = kiln::nn::Sequential::new(ctx);
        m.add(kiln::nn::Dense::new(ctx, 5, 3, None, 11).unwrap());
        m.compile(kiln::optim::Optimizer::adam(0.1), kiln::nn::Loss::Mse, &[]);
        m
    };
    let mut a = make();
    let mut rng = common::Rng::new(3);
    let x = kiln::Tensor::from_slice(ctx, &rng.vec(4 * 5, -1.0, 1.0), &[4, 5]).unwrap();
    let y = kiln::Tensor::from_slice(ctx, &rng.vec(4 * 3, -1.0, 1.0), &[4, 3]).unwrap();
    for _ in 0..2 {
        a.train_step(&x, &y, None).unwrap();
        a.realize_step(&[]).unwrap();
    }
    let meta = checkpoint::CheckpointMeta {
        step: a.optimizer().map_or(0, |o| o.steps()),
        ..Default::default()
    };
    let full = checkpoint::to_bytes(&a, &meta).unwrap();
    let full_meta = {
        let mut m = make();
        checkpoint::from_bytes(&mut m, &full).unwrap()
    };
    assert_eq!(full_meta.step, 2);
    let slim = checkpoint::weights_only(&full).unwrap();
    assert!(
        slim.len() < full.len() / 2,
        "{} vs {}",
        slim.len(),
        full.len()
    );
    let st = safetensors::SafeTensors::deserialize(&slim).unwrap();
    assert!(st.names().iter().all(|n| !n.starts_with("optim.")));
    let mut b = make();
    let meta = checkpoint::from_bytes(&mut b, &slim).unwrap();
    assert_eq!(meta.step, 0);
    assert_eq!(
        meta.notes.get("trained_steps").map(String::as_str),
        Some("2")
    );
    for (pa, pb) in a.parameters().iter().zip(b.parameters()) {
        assert_eq!(
            pa.value().to_vec::<f32>().unwrap(),
            pb.value().to_vec::<f32>().unwrap()
        );
    }
    // Corrupt bytes and other formats are refused with a reason.
    assert!(checkpoint::weights_only(&full[..full.len() / 2]).is_err());
    assert!(checkpoint::weights_only(b"not a checkpoint").is_err());
}

/// Regenerates examples/web/seed_cnn.safetensors (the optimizer-free form of the checkpoint in
/// KILN_WEB_CHECKPOINT, written by `kiln train`) and tests/browser/expected.json.
#[test]
#[ignore = "regenerates the shipped demo checkpoint; needs KILN_WEB_CHECKPOINT"]
fn regenerate_demo_checkpoint_and_expectation() {
    if let Ok(src) = std::env::var("KILN_WEB_CHECKPOINT") {
        let full = std::fs::read(&src).unwrap();
        let slim = checkpoint::weights_only(&full).unwrap();
        std::fs::write(path("examples/web/seed_cnn.safetensors"), slim).unwrap();
    }
    let (labels, probs) = native_probs();
    let classes: Vec<usize> = probs.iter().map(|p| argmax(p)).collect();
    // The smallest gap between the top two classes: a near tie could flip between adapters.
    let margin = probs
        .iter()
        .map(|p| {
            let mut s = p.clone();
            s.sort_by(|a, b| b.total_cmp(a));
            s[0] - s[1]
        })
        .fold(f32::INFINITY, f32::min);
    let doc = json!({
        "about": "tests/browser/main.rs writes and checks this: the native build's class probabilities for procedural_digits(n, seed) with examples/web/seed_cnn.safetensors; the browser test must get the same classes",
        "n": N,
        "seed": SEED,
        "labels": labels,
        "classes": classes,
        "min_top2_margin": margin,
        "probs": probs,
    });
    std::fs::write(
        path("tests/browser/expected.json"),
        serde_json::to_string_pretty(&doc).unwrap() + "\n",
    )
    .unwrap();
    eprintln!("min top-2 margin {margin}");
}
