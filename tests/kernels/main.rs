//! GPU kernels against their f64 CPU references, forward and backward: one module per kernel
//! family.
//!
//! One test binary (one link of wgpu) for all of them: `cargo test --release --test kernels NAME`
//! runs the tests whose path (`module::test`) contains NAME.

#[path = "../common/mod.rs"]
mod common;

mod activation;
mod attention;
mod conv;
mod cross_entropy;
mod dropout;
mod elementwise;
mod embedding;
mod matmul;
mod matmul_f16;
mod norm;
mod optim;
mod permute;
mod pool;
mod primitives;
mod random;
mod recurrent;
mod reduce;
mod softmax;
