//! The Rust side of every kernel: parameters, pipeline keys, dispatch sizes, and the tensor
//! methods that record them. Each `shaders/<name>.wgsl` has a `kernels/<name>.rs`.

pub mod activation;
pub mod attention;
pub mod batch_norm;
pub mod binary;
pub mod ceiling;
pub mod conv;
pub mod cross_entropy;
pub mod dropout;
pub mod embedding;
pub mod fill;
pub mod layer_norm;
pub mod matmul;
pub mod matmul_f16;
pub mod optim;
pub mod permute;
pub mod pool;
pub mod random;
pub mod recurrent;
pub mod reduce;
pub mod softmax;
pub mod unary;

use crate::graph::Launch;
use crate::shaders::PipelineKey;

/// Whether the adapter runs subgroups of exactly 8 invocations (lavapipe on AVX2), the
/// condition of every `*_sg` kernel build: their lanes are addressed by index, and a workgroup
/// of 8k invocations is k whole subgroups.
pub(crate) fn subgroups_of_8(ctx: &crate::Context) -> bool {
    let info = ctx.adapter_info();
    ctx.features().contains(wgpu::Features::SUBGROUP)
        && info.subgroup_min_size == 8
        && info.subgroup_max_size == 8
}

/// Workgroups of `size` invocations needed to cover `n` items.
pub(crate) fn groups(n: usize, size: usize) -> u64 {
    n.div_ceil(size) as u64
}

/// A launch of `shader::entry` with `reads` input bindings, one output, and override constants.
pub(crate) fn launch(
    shader: &'static str,
    entry: &'static str,
    constants: Vec<(&'static str, u32)>,
    reads: usize,
    params: Vec<u32>,
    workgroups: u64,
) -> Launch {
    launch_multi(shader, entry, constants, reads, 1, params, workgroups)
}

/// A launch with `reads` input bindings followed by `writes` output bindings.
pub(crate) fn launch_multi(
    shader: &'static str,
    entry: &'static str,
    constants: Vec<(&'static str, u32)>,
    reads: usize,
    writes: usize,
    params: Vec<u32>,
    workgroups: u64,
) -> Launch {
    Launch {
        key: PipelineKey {
            shader,
            entry,
            constants,
            reads,
            writes,
        },
        params,
        workgroups,
    }
}

/// Writes `values` into `words[at..at + 8]`, the layout of an `array<vec4<u32>, 2>` field.
pub(crate) fn put8(words: &mut [u32], at: usize, values: &[usize]) {
    for (k, &v) in values.iter().enumerate() {
        words[at + k] = v as u32;
    }
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
