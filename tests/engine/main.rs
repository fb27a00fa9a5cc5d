//! The engine under the kernels: autograd, realization and fusion, in-place updates, the
//! pipeline cache, shader validation and the module layers.
//!
//! One test binary (one link of wgpu) for all of them: `cargo test --release --test engine NAME`
//! runs the tests whose path (`module::test`) contains NAME.

#[path = "../common/mod.rs"]
mod common;

mod autograd;
mod executor;
mod fusion;
mod generated;
mod inplace;
mod layers;
mod pipeline_cache;
mod shaders;
