//! Each example, run briefly: it trains, and what it learns is better than where it started.

use crate::common;

#[path = "../../examples/seed_cnn.rs"]
mod seed_cnn;

#[path = "../../examples/lstm_sine.rs"]
mod lstm_sine;

#[path = "../../examples/attention_reverse.rs"]
mod attention_reverse;

#[test]
fn the_seed_cnn_example_learns_procedural_digits() {
    let out = seed_cnn::run(common::ctx(), 384, 2, false).unwrap();
    assert!(out.losses[1] < out.losses[0], "losses {:?}", out.losses);
    assert!(out.accuracy > 0.3, "accuracy {}", out.accuracy);
}

#[test]
fn the_lstm_example_learns_to_continue_a_sine() {
    let out = lstm_sine::run(common::ctx(), 3, false).unwrap();
    assert!(
        out.mse_after < 0.5 * out.mse_before,
        "MSE {} -> {}",
        out.mse_before,
        out.mse_after
    );
}

#[test]
fn the_attention_example_starts_learning_to_reverse() {
    let out = attention_reverse::run(common::ctx(), 3, false).unwrap();
    assert!(
        out.digit_accuracy > 0.2,
        "digit accuracy {}",
        out.digit_accuracy
    );
    assert_eq!(out.sample.0.len(), attention_reverse::LEN);
}
