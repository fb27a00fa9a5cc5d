//! The Rust side of every kernel: parameters, pipeline keys, dispatch sizes, and the tensor
//! methods that record them. Each `shaders/<name>.wgsl` has a `kernels/<name>.rs`.
//!
//! # Kernel parameters are typed
//!
//! A kernel's `Kernel::launch` builds its [`Launch`](crate::graph::Launch) with [`registry::launch`], from a spec
//! and a `#[repr(C)]` parameter struct declared in [`registry`]; tests/engine/shaders.rs checks both
//! against the WGSL with naga and fails on launches built any other way. To add an entry point:
//!
//! 1. In `registry.rs`, declare the shader's uniform struct with `params! { /// doc
//!    NameParams { field: u32, .. } }`: the same field names in the same order, `u32`/`i32`/
//!    `f32` scalars, `[u32; 8]` for an `array<vec4<u32>, 2>` (shapes and strides, filled with
//!    [`registry::slots8`]), `[u32; 4]` for a `vec4<u32>`, and the shader's explicit `_pad`
//!    fields (WGSL aligns a vec4 or array field to 16 bytes and rounds a uniform struct's size
//!    up to 16; spell that padding out as `_pad` fields in both languages).
//! 2. Add a line to `specs!`: `NAME: NameParams = ("shader", "entry", reads, writes,
//!    ["OVERRIDE", ..]);` with the read-only inputs bound at 1..=reads and the outputs after
//!    them, as the executor binds them. One spec per (module, entry point): a kernel that picks
//!    an entry point or module at run time (a small path, a subgroup build) picks a spec.
//! 3. In the kernel: `launch(&registry::NAME, constants, &NameParams { .. }, workgroups)`.
//!    Never edit a `Launch` after building it.
//! 4. `cargo test --release --test engine shaders` proves the layout, bindings and constants.

pub mod activation;
pub mod arg_reduce;
pub mod attention;
mod axis;
pub mod batch_norm;
pub mod binary;
pub mod ceiling;
pub mod clamp;
pub mod compare;
pub mod concat;
pub mod conv;
pub mod cross_entropy;
pub mod cumsum;
pub mod dropout;
pub mod embedding;
pub mod fill;
pub mod gather;
pub mod layer_norm;
pub mod matmul;
pub mod matmul_f16;
pub mod optim;
pub mod permute;
pub mod pool;
pub mod random;
pub mod recurrent;
pub mod reduce;
pub mod registry;
pub mod scatter_add;
pub mod slice;
pub mod softmax;
pub mod unary;
pub mod where_select;

pub use compare::CompareOp;

/// Whether the adapter runs subgroups of exactly 8 invocations (lavapipe on AVX2), the
/// condition of every `*_sg` kernel build: their lanes are addressed by index, and a workgroup
/// of 8k invocations is k whole subgroups.
pub(crate) fn subgroups_of_8(ctx: &crate::Context) -> bool {
    let info = ctx.adapter_info();
    ctx.features().contains(wgpu::Features::SUBGROUP)
        && info.subgroup_min_size == 8
        && info.subgroup_max_size == 8
}

/// A one-element tensor for an input binding that a kernel declares but does not read in this
/// call (a convolution without bias, a loss without class weights). Binding another input there
/// would bind one buffer twice, which makes the executor bind that dispatch's inputs read-only
/// and give its outputs buffers of their own (WebGPU forbids a writable binding that overlaps
/// another); a separate four bytes avoid that.
pub(crate) fn stand_in(ctx: &crate::Context) -> crate::Result<crate::Tensor> {
    crate::Tensor::zeros(ctx, &[1])
}

/// Workgroups of `size` invocations needed to cover `n` items.
pub(crate) fn groups(n: usize, size: usize) -> u64 {
    n.div_ceil(size) as u64
}

/// Refuses an epsilon that is not finite and non-negative (the normalizations).
pub(crate) fn check_eps(op: &'static str, eps: f32) -> crate::Result<()> {
    if eps.is_finite() && eps >= 0.0 {
        Ok(())
    } else {
        Err(crate::Error::invalid(
            op,
            format!("eps must be finite and >= 0, got {eps}"),
        ))
    }
}

/// Takes the `K` outputs of a multi-output op in order.
pub(crate) fn outputs<const K: usize>(
    op: &'static str,
    v: Vec<crate::Tensor>,
) -> crate::Result<[crate::Tensor; K]> {
    v.try_into()
        .map_err(|_| crate::Error::invalid(op, "the kernel returned the wrong number of outputs"))
}
