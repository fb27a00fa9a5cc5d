//! Models end to end: training, checkpoints and their errors, data sets, and the examples.
//!
//! One test binary (one link of wgpu) for all of them: `cargo test --release --test models NAME`
//! runs the tests whose path (`module::test`) contains NAME.

#[path = "../common/mod.rs"]
mod common;

mod checkpoint_errors;
mod data;
mod examples;
mod training;
