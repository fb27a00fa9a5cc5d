//! The tools behind the `kiln` command, built on kiln's public API: the benchmark runner
//! (`kiln bench`), the ONNX-derived conformance runner (`kiln conformance`), peak-memory
//! measurement of a training step, and PNG charts of training runs.

pub mod bench;
pub mod bench_f16;
pub mod conformance;
// The library's atomic file writer (checkpoints use it too), compiled into the binary as well.
#[path = "../fsio.rs"]
pub mod fsio;
pub mod memory;
pub mod plot;
