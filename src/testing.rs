//! Hooks for kiln's own tests and benchmarks, not a stable API: they force a kernel build,
//! turn fusion off, or poison outputs, so a test can cover a path the automatic choice would
//! not take on its adapter. They may change or go away in any release.

use crate::error::Result;
use crate::{Context, Tensor};

pub use crate::kernels::attention::AttentionVariant;
pub use crate::kernels::conv::ConvVariant;
pub use crate::kernels::matmul::MatmulVariant;

/// When on, every buffer a realization hands to a kernel for its output is first filled with
/// NaN, so an element the kernel forgets to write shows up as NaN.
pub fn set_poison_outputs(ctx: &Context, on: bool) {
    ctx.set_poison_outputs(on);
}

/// Turns elementwise fusion on or off for later realizations of `ctx` (on by default unless
/// the environment says `KILN_FUSION=0`); off runs every recorded op as its own kernel.
pub fn set_fusion(ctx: &Context, on: bool) {
    ctx.set_fusion(on);
}

/// Runs `f` with every matmul recorded on this thread using `variant` where it can run.
pub fn with_matmul_variant<R>(variant: MatmulVariant, f: impl FnOnce() -> R) -> R {
    crate::kernels::matmul::with_matmul_variant(variant, f)
}

/// The kernel `a.matmul_t(b, transpose_a, transpose_b)` would run on this adapter, given any
/// [`with_matmul_variant`] in force.
pub fn matmul_variant(
    a: &Tensor,
    b: &Tensor,
    transpose_a: bool,
    transpose_b: bool,
) -> Result<MatmulVariant> {
    a.matmul_variant(b, transpose_a, transpose_b)
}

/// Runs `f` with every attention op recorded on this thread using `variant` where the adapter
/// can run it.
pub fn with_attention_variant<R>(variant: AttentionVariant, f: impl FnOnce() -> R) -> R {
    crate::kernels::attention::with_attention_variant(variant, f)
}

/// The build attention ops recorded now on this thread run on `ctx`.
pub fn attention_variant(ctx: &Context) -> AttentionVariant {
    crate::kernels::attention::attention_variant(ctx)
}

/// Runs `f` with convolutions recorded on this thread using `variant`.
pub fn with_conv_variant<R>(variant: ConvVariant, f: impl FnOnce() -> R) -> R {
    crate::kernels::conv::with_conv_variant(variant, f)
}
