//! The Rust side of every kernel: parameters, pipeline keys, dispatch sizes, and the tensor
//! methods that record them. Each `shaders/<name>.wgsl` has a `kernels/<name>.rs`.

pub mod activation;
pub mod attention;
pub mod binary;
pub mod conv;
pub mod cross_entropy;
pub mod dropout;
pub mod embedding;
pub mod fill;
pub mod matmul;
pub mod norm;
pub mod optim;
pub mod permute;
pub mod pool;
pub mod random;
pub mod recurrent;
pub mod reduce;
pub mod softmax;
pub mod unary;

use crate::context::PipelineKey;
use crate::graph::Launch;

/// Every shader file, by name. Shaders are compiled into the binary, so kiln needs no files at
/// run time (and works the same in a browser).
pub const SHADERS: &[(&str, &str)] = &[
    ("activation", include_str!("../../shaders/activation.wgsl")),
    // The attention kernels with one of two tails: plain row loads, or loads shared through
    // subgroups (for adapters with 8-wide subgroups).
    (
        "attention",
        concat!(
            include_str!("../../shaders/attention.wgsl"),
            include_str!("../../shaders/attention_plain.wgsl")
        ),
    ),
    (
        "attention_sg",
        concat!(
            include_str!("../../shaders/attention.wgsl"),
            include_str!("../../shaders/attention_sg.wgsl")
        ),
    ),
    ("batch_norm", include_str!("../../shaders/batch_norm.wgsl")),
    ("binary", include_str!("../../shaders/binary.wgsl")),
    ("conv2d", include_str!("../../shaders/conv2d.wgsl")),
    (
        "cross_entropy",
        include_str!("../../shaders/cross_entropy.wgsl"),
    ),
    ("dropout", include_str!("../../shaders/dropout.wgsl")),
    ("embedding", include_str!("../../shaders/embedding.wgsl")),
    ("fill", include_str!("../../shaders/fill.wgsl")),
    ("layer_norm", include_str!("../../shaders/layer_norm.wgsl")),
    ("matmul", include_str!("../../shaders/matmul.wgsl")),
    ("matmul_sg", include_str!("../../shaders/matmul_sg.wgsl")),
    ("optim", include_str!("../../shaders/optim.wgsl")),
    ("permute", include_str!("../../shaders/permute.wgsl")),
    ("pool", include_str!("../../shaders/pool.wgsl")),
    ("random", include_str!("../../shaders/random.wgsl")),
    ("recurrent", include_str!("../../shaders/recurrent.wgsl")),
    ("reduce", include_str!("../../shaders/reduce.wgsl")),
    ("softmax", include_str!("../../shaders/softmax.wgsl")),
    ("unary", include_str!("../../shaders/unary.wgsl")),
];

/// The WGSL source of shader `name`.
pub fn shader_source(name: &str) -> Option<&'static str> {
    SHADERS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
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
