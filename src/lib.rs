//! kiln: a GPU compute engine for neural networks on wgpu.
//!
//! Tensors live on the GPU. Ops are recorded lazily into a graph; realizing a result plans
//! buffer reuse by liveness and encodes all pending work into one submission.
//!
//! ```
//! use kiln::{Context, Tensor};
//! let ctx = Context::new()?;
//! let a = Tensor::from_slice(&ctx, &[1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
//! let b = a.add(&a)?.relu()?;
//! assert_eq!(b.to_vec::<f32>()?, vec![2.0, 4.0, 6.0, 8.0]);
//! # Ok::<(), kiln::Error>(())
//! ```

#![warn(clippy::unwrap_used, clippy::expect_used)]

// The browser runs the binary's conformance runner in the page (src/web.rs); it is written
// against the public API as `kiln::...`, hence the crate's own name for itself.
#[cfg(target_arch = "wasm32")]
extern crate self as kiln;

pub mod autograd;
// The page uses the runner's core (from bytes, one case at a time), not the folder runner.
#[cfg(target_arch = "wasm32")]
#[path = "cli/conformance.rs"]
#[allow(dead_code)]
mod conformance;
pub mod context;
pub mod data;
pub mod dtype;
pub mod error;
pub mod executor;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod fsio;
pub(crate) mod graph;
pub mod ir;
pub mod kernels;
pub mod nn;
pub mod optim;
pub mod reference;
pub mod shaders;
pub mod shape;
pub mod tensor;
#[doc(hidden)]
pub mod testing;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use context::pool::{MemoryStats, PlanStats};
pub use context::{AdapterReport, Context, ContextOptions};
pub use dtype::{DType, Element};
pub use error::{Error, Result};
pub use executor::{DispatchTime, GpuTimer};
pub use ir::BinaryOp;
pub use ir::UnaryOp;
pub use kernels::attention::AttentionParams;
pub use kernels::batch_norm::BatchNormTrain;
pub use tensor::Tensor;

/// The README's example, run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
