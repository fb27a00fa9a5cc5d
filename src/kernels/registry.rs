//! Every kernel's typed parameters and binding counts, in one table.
//!
//! Each WGSL entry point reads a uniform `Params` struct at binding 0, then `reads` read-only
//! storage buffers (bindings 1..=reads), then `writes` read_write storage buffers. Here each
//! such struct has a `#[repr(C)]` twin declared with [`params!`], which records the field names,
//! byte offsets and sizes, and each entry point has a [`Spec`] naming its shader, entry point,
//! parameter type, binding counts and override constants. [`launch`] is the only way a kernel
//! builds a [`Launch`]; tests/engine/shaders.rs checks every spec of [`KERNELS`] against naga's
//! reflection of the WGSL (struct size, field names, offsets and scalar types; bindings).

use std::marker::PhantomData;

use crate::graph::Launch;
use crate::shaders::PipelineKey;

/// The memory layout of one parameter struct, as Rust lays it out.
#[derive(Clone, Copy, Debug)]
pub struct ParamsLayout {
    /// The Rust struct's name.
    pub name: &'static str,
    /// Size in bytes.
    pub size: usize,
    /// Each field in order: name, byte offset, size in bytes, and the Rust type as written
    /// (`u32`, `f32`, `i32`, or an array of one of them, such as `[u32; 8]`).
    pub fields: &'static [(&'static str, usize, usize, &'static str)],
}

/// A kernel parameter struct: plain old data whose layout matches a WGSL uniform struct.
pub(crate) trait Params: bytemuck::Pod {
    /// The layout, for the shader checks.
    const LAYOUT: ParamsLayout;
}

/// Declares a `#[repr(C)]` parameter struct (all fields `pub`) and its [`Params`] layout.
macro_rules! params {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
        pub(crate) struct $name {
            $($(#[$fm])* pub $field: $ty,)*
        }

        impl Params for $name {
            const LAYOUT: ParamsLayout = ParamsLayout {
                name: stringify!($name),
                size: core::mem::size_of::<$name>(),
                fields: &[$((
                    stringify!($field),
                    core::mem::offset_of!($name, $field),
                    core::mem::size_of::<$ty>(),
                    stringify!($ty),
                )),*],
            };
        }
    };
}

/// One kernel entry point: where it lives, what it binds, and its parameter type `P`.
#[derive(Debug)]
pub(crate) struct Spec<P> {
    shader: &'static str,
    entry: &'static str,
    reads: usize,
    writes: usize,
    constants: &'static [&'static str],
    params: PhantomData<fn() -> P>,
}

impl<P: Params> Spec<P> {
    const fn new(
        shader: &'static str,
        entry: &'static str,
        reads: usize,
        writes: usize,
        constants: &'static [&'static str],
    ) -> Spec<P> {
        Spec {
            shader,
            entry,
            reads,
            writes,
            constants,
            params: PhantomData,
        }
    }

    /// The number of read_write storage bindings (the outputs).
    pub(crate) const fn writes(&self) -> usize {
        self.writes
    }

    /// The untyped description, for [`KERNELS`].
    const fn info(&self) -> KernelInfo {
        KernelInfo {
            shader: self.shader,
            entry: self.entry,
            reads: self.reads,
            writes: self.writes,
            constants: self.constants,
            params: P::LAYOUT,
        }
    }
}

/// What one kernel entry point binds, as its launches bind it.
#[derive(Clone, Copy, Debug)]
pub struct KernelInfo {
    /// The shader module (a name of [`crate::shaders::SHADERS`]).
    pub shader: &'static str,
    /// The entry point.
    pub entry: &'static str,
    /// Read-only storage buffers, bindings 1..=reads.
    pub reads: usize,
    /// Read-write storage buffers, after the reads.
    pub writes: usize,
    /// The override constants a launch may set.
    pub constants: &'static [&'static str],
    /// The uniform parameter struct at binding 0.
    pub params: ParamsLayout,
}

/// The launch of `spec` with these override constants, parameters and workgroup count.
pub(crate) fn launch<P: Params>(
    spec: &Spec<P>,
    constants: Vec<(&'static str, u32)>,
    params: &P,
    workgroups: u64,
) -> Launch {
    debug_assert!(
        constants.iter().all(|(c, _)| spec.constants.contains(c)),
        "{}::{}: a constant outside {:?}",
        spec.shader,
        spec.entry,
        spec.constants
    );
    Launch {
        key: PipelineKey {
            shader: spec.shader,
            entry: spec.entry,
            constants,
            reads: spec.reads,
            writes: spec.writes,
        },
        params: bytemuck::pod_collect_to_vec(bytemuck::bytes_of(params)),
        workgroups,
    }
}

/// `values` in the 8 slots of an `array<vec4<u32>, 2>` field (the rest 0).
pub(crate) fn slots8(values: &[usize]) -> [u32; 8] {
    let mut s = [0u32; 8];
    for (slot, &v) in s.iter_mut().zip(values) {
        *slot = v as u32;
    }
    s
}

/// `values` in the 8 slots of an `array<vec4<i32>, 2>` field (the rest 0).
pub(crate) fn islots8(values: &[i64]) -> [i32; 8] {
    let mut s = [0i32; 8];
    for (slot, &v) in s.iter_mut().zip(values) {
        *slot = v as i32;
    }
    s
}

/// Declares each spec as a constant and lists them all in [`KERNELS`].
macro_rules! specs {
    ($(
        $(#[$m:meta])*
        $name:ident: $p:ty =
            ($shader:literal, $entry:literal, $reads:literal, $writes:literal, [$($c:literal),*]);
    )*) => {
        $(
            $(#[$m])*
            pub(crate) const $name: Spec<$p> =
                Spec::new($shader, $entry, $reads, $writes, &[$($c),*]);
        )*

        /// Every kernel entry point kiln launches, with what it binds.
        pub const KERNELS: &[KernelInfo] = &[$($name.info()),*];
    };
}

params! {
    /// shaders/activation.wgsl `Params`.
    ActivationParams { n: u32, alpha: f32, _pad0: u32, _pad1: u32 }
}
params! {
    /// shaders/ceiling.wgsl `Params` (both entry points).
    CeilingParams { count: u32, trips: u32, stride: u32, _pad: u32 }
}
params! {
    /// shaders/fill.wgsl `Params`.
    FillParams { numel: u32, value: f32 }
}
params! {
    /// shaders/dropout.wgsl `Params`.
    DropoutParams {
        numel: u32, blocks: u32, key_lo: u32, key_hi: u32, stream: u32, threshold: u32,
        scale: f32, _pad: u32,
    }
}
params! {
    /// shaders/random.wgsl `Params`.
    RandomParams {
        numel: u32, blocks: u32, key_lo: u32, key_hi: u32, stream: u32, a: f32, b: f32, cap: f32,
    }
}
params! {
    /// shaders/unary.wgsl `Params`.
    UnaryParams { numel: u32, scalar: f32, scalar_first: u32, _pad: u32 }
}
params! {
    /// shaders/binary.wgsl `Params`.
    BinaryParams {
        numel: u32, rank: u32, same_shape: u32, _pad: u32,
        shape: [u32; 8], a_strides: [u32; 8], b_strides: [u32; 8],
    }
}
params! {
    /// shaders/permute.wgsl `Params`.
    PermuteParams {
        numel: u32, rank: u32, _pad0: u32, _pad1: u32, shape: [u32; 8], strides: [u32; 8],
    }
}
params! {
    /// shaders/reduce.wgsl `Params`.
    ReduceParams {
        n_out: u32, n_red: u32, kept_rank: u32, red_rank: u32,
        kept_shape: [u32; 8], kept_strides: [u32; 8], red_shape: [u32; 8], red_strides: [u32; 8],
    }
}
params! {
    /// shaders/softmax.wgsl `Params`.
    SoftmaxParams { rows: u32, len: u32, inner: u32, _pad: u32 }
}
params! {
    /// shaders/embedding.wgsl `Params`.
    EmbeddingParams {
        numel: u32, dim: u32, vocab: u32, count: u32, row_blocks: u32, col_blocks: u32,
        tiles: u32, _pad: u32,
    }
}
params! {
    /// shaders/layer_norm.wgsl `Params`.
    LayerNormParams {
        rows: u32, len: u32, has_scale: u32, has_bias: u32, eps: f32, _pad0: u32, _pad1: u32,
        _pad2: u32,
    }
}
params! {
    /// shaders/batch_norm.wgsl `Params`.
    BatchNormParams {
        numel: u32, channels: u32, spatial: u32, count: u32, eps: f32, momentum: f32, _pad0: u32,
        _pad1: u32,
    }
}
params! {
    /// shaders/cross_entropy.wgsl `Params`.
    CrossEntropyParams { rows: u32, classes: u32, inner: u32, has_weights: u32 }
}
params! {
    /// shaders/pool.wgsl `Params`.
    PoolParams {
        total: u32, h: u32, w: u32, ho: u32, wo: u32, kh: u32, kw: u32, sh: u32, sw: u32,
        dh: u32, dw: u32, pt: u32, pl: u32, h_end: u32, w_end: u32, include_pad: u32,
    }
}
params! {
    /// shaders/optim.wgsl `Params`: the element count and the update's coefficients.
    OptimParams {
        numel: u32, k0: f32, k1: f32, k2: f32, k3: f32, k4: f32, k5: f32, k6: f32, k7: f32,
        k8: f32, _pad0: u32, _pad1: u32,
    }
}
params! {
    /// shaders/matmul.wgsl and shaders/matmul_sg.wgsl `Params`.
    MatmulParams {
        m: u32, n: u32, k: u32, batch_count: u32, batch_rank: u32, sa_m: u32, sa_k: u32,
        sb_k: u32, sb_n: u32, tiles_m: u32, tiles_n: u32, _pad: u32,
        batch_shape: [u32; 8], a_batch: [u32; 8], b_batch: [u32; 8],
    }
}
params! {
    /// shaders/matmul_f16.wgsl `Params` (the matmul and the casts).
    MatmulF16Params {
        m: u32, n: u32, k: u32, batch: u32, tiles_m: u32, tiles_n: u32, count: u32, _pad: u32,
    }
}
params! {
    /// shaders/matmul_coop.wgsl `Params`.
    MatmulCoopParams {
        m: u32, n: u32, k: u32, batch: u32, tiles_m: u32, tiles_n: u32, _pad0: u32, _pad1: u32,
    }
}
params! {
    /// shaders/conv2d.wgsl `Params` (forward and input gradient; see its header).
    ConvParams {
        batch: u32, c: u32, h: u32, w: u32, m: u32, ho: u32, wo: u32, kh: u32, kw: u32, cg: u32,
        mg: u32, groups: u32, hq: u32, wq: u32, a_h: u32, a_w: u32, os_h: u32, os_w: u32,
        ph_h: u32, ph_w: u32, base_h: i32, base_w: i32, kstep_h: i32, kstep_w: i32, dv_h: u32,
        dv_w: u32, tiles_q: u32, tiles_m: u32, w_group: u32, w_m: u32, w_c: u32, has_bias: u32,
        unshift_h: i32, unshift_w: i32,
    }
}
params! {
    /// shaders/conv2d.wgsl `WParams` (weight gradient).
    ConvWeightParams {
        batch: u32, c: u32, h: u32, w: u32, m: u32, ho: u32, wo: u32, kh: u32, kw: u32, cg: u32,
        mg: u32, groups: u32, sh: u32, sw: u32, pt: i32, pl: i32, dh: u32, dw: u32, ncols: u32,
        tiles_col: u32, tiles_m: u32, splits: u32, rows_per_split: u32, _pad: u32,
    }
}
params! {
    /// shaders/attention.wgsl `Params`.
    AttnParams {
        batch: u32, hq: u32, group: u32, sq: u32, skv: u32, d: u32, dv: u32, scale2: f32,
        nblk: u32, nd4: u32, ndv4: u32, scale: f32, mstride: [u32; 4],
    }
}
params! {
    /// shaders/attention.wgsl `PadParams`.
    AttnPadParams { rows: u32, n: u32, np: u32, _pad: u32 }
}
params! {
    /// shaders/recurrent.wgsl `Params`.
    RecurrentParams {
        seq: u32, batch: u32, hidden: u32, gates: u32, rows: u32, tiles: u32, count: u32,
        offset: u32, slots: [u32; 4],
    }
}

params! {
    /// shaders/arg_reduce.wgsl `Params` (argmax and argmin).
    ArgReduceParams { n_out: u32, n: u32, inner: u32, _pad: u32 }
}
params! {
    /// shaders/clamp.wgsl `Params` (forward and backward).
    ClampParams { numel: u32, lo: f32, hi: f32, _pad: u32 }
}
params! {
    /// shaders/compare.wgsl `Params`.
    CompareParams {
        numel: u32, rank: u32, same_shape: u32, _pad: u32,
        shape: [u32; 8], a_strides: [u32; 8], b_strides: [u32; 8],
    }
}
params! {
    /// shaders/concat.wgsl `Params`.
    ConcatParams { numel: u32, inner: u32, ca: u32, cb: u32 }
}
params! {
    /// shaders/cumsum.wgsl `Params` (`flags`: bit 0 exclusive, bit 1 reverse).
    CumsumParams { lines: u32, n: u32, inner: u32, flags: u32 }
}
params! {
    /// shaders/gather.wgsl `Params` (`gather`).
    GatherParams { numel: u32, n: u32, q: u32, inner: u32 }
}
params! {
    /// shaders/gather.wgsl `ElemParams` (`gather_elements`).
    GatherElementsParams {
        numel: u32, rank: u32, axis: u32, n: u32, shape: [u32; 8], x_strides: [u32; 8],
    }
}
params! {
    /// shaders/scatter_add.wgsl `Params`.
    ScatterAddParams {
        numel: u32, rank: u32, axis: u32, k: u32,
        shape: [u32; 8], upd_shape: [u32; 8], upd_strides: [u32; 8], idx_strides: [u32; 8],
    }
}
params! {
    /// shaders/slice.wgsl `Params` (`slice`).
    SliceParams {
        numel: u32, rank: u32, base: u32, _pad: u32, shape: [u32; 8], step_strides: [i32; 8],
    }
}
params! {
    /// shaders/slice.wgsl `BackParams` (`slice_backward`).
    SliceBackwardParams {
        numel: u32, rank: u32, _pad0: u32, _pad1: u32,
        in_shape: [u32; 8], starts: [i32; 8], steps: [i32; 8], out_shape: [u32; 8],
    }
}
params! {
    /// shaders/where_select.wgsl `Params`.
    WhereParams {
        numel: u32, rank: u32, _pad0: u32, _pad1: u32,
        shape: [u32; 8], c_strides: [u32; 8], a_strides: [u32; 8], b_strides: [u32; 8],
    }
}

specs! {
    ACTIVATION: ActivationParams = ("activation", "activation", 1, 1, ["OP"]);
    ACTIVATION_BACKWARD: ActivationParams = ("activation", "activation_backward", 2, 1, ["OP"]);
    CEILING_FMA: CeilingParams = ("ceiling", "ceiling_fma", 1, 1, ["CHAINS"]);
    CEILING_COPY: CeilingParams = ("ceiling", "ceiling_copy", 1, 1, []);
    FILL: FillParams = ("fill", "fill", 0, 1, []);
    DROPOUT: DropoutParams = ("dropout", "dropout", 1, 1, []);
    RANDOM: RandomParams = ("random", "random", 0, 1, ["DIST"]);
    UNARY: UnaryParams = ("unary", "unary", 1, 1, ["OP"]);
    UNARY_BACKWARD: UnaryParams = ("unary", "unary_backward", 2, 1, ["OP"]);
    SCALAR: UnaryParams = ("unary", "scalar", 1, 1, ["OP"]);
    SCALAR_BACKWARD: UnaryParams = ("unary", "scalar_backward", 2, 1, ["OP"]);
    BINARY: BinaryParams = ("binary", "binary", 2, 1, ["OP"]);
    BINARY_BACKWARD: BinaryParams = ("binary", "binary_backward", 3, 1, ["OP", "WHICH"]);
    PERMUTE: PermuteParams = ("permute", "permute", 1, 1, []);
    REDUCE: ReduceParams = ("reduce", "reduce", 1, 1, ["OP"]);
    REDUCE_SMALL: ReduceParams = ("reduce", "reduce_small", 1, 1, ["OP"]);
    SOFTMAX: SoftmaxParams = ("softmax", "softmax", 1, 1, ["LOG"]);
    SOFTMAX_SMALL: SoftmaxParams = ("softmax", "softmax_small", 1, 1, ["LOG"]);
    SOFTMAX_BACKWARD: SoftmaxParams = ("softmax", "softmax_backward", 2, 1, ["LOG"]);
    SOFTMAX_BACKWARD_SMALL: SoftmaxParams = ("softmax", "softmax_backward_small", 2, 1, ["LOG"]);
    EMBEDDING: EmbeddingParams = ("embedding", "embedding", 2, 1, []);
    EMBEDDING_BACKWARD: EmbeddingParams = ("embedding", "embedding_backward", 2, 1, []);
    LAYER_NORM: LayerNormParams = ("layer_norm", "layer_norm", 3, 3, []);
    LAYER_NORM_SMALL: LayerNormParams = ("layer_norm", "layer_norm_small", 3, 3, []);
    LAYER_NORM_BACKWARD_INPUT: LayerNormParams =
        ("layer_norm", "layer_norm_backward_input", 5, 1, []);
    LAYER_NORM_BACKWARD_INPUT_SMALL: LayerNormParams =
        ("layer_norm", "layer_norm_backward_input_small", 5, 1, []);
    LAYER_NORM_BACKWARD_PARAMS: LayerNormParams =
        ("layer_norm", "layer_norm_backward_params", 4, 2, []);
    BATCH_NORM: BatchNormParams = ("batch_norm", "batch_norm", 5, 1, ["STAT_IS_RSTD"]);
    BATCH_NORM_STATS: BatchNormParams = ("batch_norm", "batch_norm_stats", 3, 4, []);
    BATCH_NORM_STATS_SMALL: BatchNormParams = ("batch_norm", "batch_norm_stats_small", 3, 4, []);
    BATCH_NORM_BACKWARD_REDUCE: BatchNormParams =
        ("batch_norm", "batch_norm_backward_reduce", 4, 2, ["STAT_IS_RSTD"]);
    BATCH_NORM_BACKWARD_REDUCE_SMALL: BatchNormParams =
        ("batch_norm", "batch_norm_backward_reduce_small", 4, 2, ["STAT_IS_RSTD"]);
    BATCH_NORM_BACKWARD_INPUT: BatchNormParams =
        ("batch_norm", "batch_norm_backward_input", 7, 1, []);
    BATCH_NORM_BACKWARD_INFERENCE: BatchNormParams =
        ("batch_norm", "batch_norm_backward_inference", 3, 1, []);
    CROSS_ENTROPY: CrossEntropyParams = ("cross_entropy", "cross_entropy", 3, 2, []);
    CROSS_ENTROPY_SMALL: CrossEntropyParams = ("cross_entropy", "cross_entropy_small", 3, 2, []);
    CROSS_ENTROPY_TOTAL: CrossEntropyParams = ("cross_entropy", "cross_entropy_total", 1, 2, []);
    CROSS_ENTROPY_BACKWARD: CrossEntropyParams =
        ("cross_entropy", "cross_entropy_backward", 5, 1, []);
    MAX_POOL2D: PoolParams = ("pool", "max_pool2d", 1, 2, []);
    MAX_POOL2D_BACKWARD: PoolParams = ("pool", "max_pool2d_backward", 2, 1, ["DISJOINT"]);
    AVG_POOL2D: PoolParams = ("pool", "avg_pool2d", 1, 1, []);
    AVG_POOL2D_BACKWARD: PoolParams = ("pool", "avg_pool2d_backward", 1, 1, ["DISJOINT"]);
    GLOBAL_AVG_POOL2D: PoolParams = ("pool", "global_avg_pool2d", 1, 1, []);
    GLOBAL_AVG_POOL2D_BACKWARD: PoolParams = ("pool", "global_avg_pool2d_backward", 1, 1, []);
    ADAM_ONNX: OptimParams = ("optim", "adam_onnx", 4, 3, []);
    MOMENTUM_ONNX: OptimParams = ("optim", "momentum_onnx", 3, 2, ["NESTEROV"]);
    ADAGRAD_ONNX: OptimParams = ("optim", "adagrad_onnx", 3, 2, []);
    ADAM: OptimParams = ("optim", "adam", 4, 3, []);
    ADAM_INPLACE: OptimParams = ("optim", "adam_inplace", 1, 3, []);
    SGD: OptimParams = ("optim", "sgd", 2, 1, []);
    SGD_INPLACE: OptimParams = ("optim", "sgd_inplace", 1, 1, []);
    SGD_MOMENTUM: OptimParams = ("optim", "sgd_momentum", 3, 2, ["NESTEROV", "FIRST"]);
    SGD_MOMENTUM_INPLACE: OptimParams =
        ("optim", "sgd_momentum_inplace", 1, 2, ["NESTEROV", "FIRST"]);
    MATMUL: MatmulParams = ("matmul", "matmul", 2, 1, []);
    MATMUL_TILED: MatmulParams = ("matmul", "matmul_tiled", 2, 1, []);
    MATMUL_SG: MatmulParams = ("matmul_sg", "matmul_sg", 2, 1, ["TA", "TB"]);
    MATMUL_SG2: MatmulParams = ("matmul_sg", "matmul_sg2", 2, 1, ["TA", "TB"]);
    TO_F16: MatmulF16Params = ("matmul_f16", "to_f16", 1, 1, []);
    TO_F32: MatmulF16Params = ("matmul_f16", "to_f32", 1, 1, []);
    MATMUL_F16: MatmulF16Params = ("matmul_f16", "matmul_f16", 2, 1, []);
    MATMUL_COOP: MatmulCoopParams = ("matmul_coop", "matmul_coop", 2, 1, ["SG"]);
    MATMUL_COOP8: MatmulCoopParams = ("matmul_coop", "matmul_coop8", 2, 1, ["SG"]);
    CONV2D: ConvParams = ("conv2d", "conv2d", 3, 1, []);
    CONV2D_NARROW: ConvParams = ("conv2d", "conv2d_narrow", 3, 1, []);
    CONV2D_SG: ConvParams = ("conv2d_sg", "conv2d_sg", 3, 1, []);
    CONV2D_BACKWARD_WEIGHT: ConvWeightParams = ("conv2d", "conv2d_backward_weight", 2, 1, []);
    CONV2D_BACKWARD_WEIGHT_NARROW: ConvWeightParams =
        ("conv2d", "conv2d_backward_weight_narrow", 2, 1, []);
    ATTENTION: AttnParams = ("attention", "attention", 4, 2,
        ["HD4", "HDV4", "ROWS8", "CAUSAL", "MASKED"]);
    ATTENTION_SG: AttnParams = ("attention_sg", "attention", 4, 2,
        ["HD4", "HDV4", "ROWS8", "CAUSAL", "MASKED"]);
    ATTENTION_PAD: AttnPadParams = ("attention", "attention_pad", 1, 1, []);
    ATTENTION_DELTA: AttnParams = ("attention", "attention_delta", 3, 1, []);
    ATTENTION_BACKWARD_Q: AttnParams = ("attention", "attention_backward_q", 6, 1,
        ["HD4", "HDV4", "ROWS8", "CAUSAL", "MASKED"]);
    ATTENTION_BACKWARD_Q_SG: AttnParams = ("attention_sg", "attention_backward_q", 6, 1,
        ["HD4", "HDV4", "ROWS8", "CAUSAL", "MASKED"]);
    ATTENTION_BACKWARD_KV: AttnParams = ("attention", "attention_backward_kv", 6, 2,
        ["HD4", "HDV4", "ROWS8", "CAUSAL", "MASKED"]);
    ATTENTION_BACKWARD_KV_SG: AttnParams = ("attention_sg", "attention_backward_kv", 6, 2,
        ["HD4", "HDV4", "ROWS8", "CAUSAL", "MASKED"]);
    RECURRENT_FORWARD: RecurrentParams =
        ("recurrent", "recurrent_forward", 5, 3, ["CELL", "LBR", "BT"]);
    RECURRENT_BACKWARD: RecurrentParams =
        ("recurrent", "recurrent_backward", 5, 3, ["CELL", "LBR", "BT"]);
    RECURRENT_WEIGHT_GRAD: RecurrentParams = ("recurrent", "recurrent_weight_grad", 2, 1, []);
    RECURRENT_BIAS_GRAD: RecurrentParams = ("recurrent", "recurrent_bias_grad", 2, 1, []);
    RECURRENT_TAIL: RecurrentParams = ("recurrent", "recurrent_tail", 1, 1, []);
    ARGMAX: ArgReduceParams = ("arg_reduce", "argmax", 1, 1, []);
    ARGMIN: ArgReduceParams = ("arg_reduce", "argmin", 1, 1, []);
    CLAMP: ClampParams = ("clamp", "clamp_forward", 1, 1, []);
    CLAMP_BACKWARD: ClampParams = ("clamp", "clamp_backward", 2, 1, []);
    COMPARE: CompareParams = ("compare", "compare", 2, 1, ["OP"]);
    CONCAT: ConcatParams = ("concat", "concat", 2, 1, []);
    CUMSUM: CumsumParams = ("cumsum", "cumsum", 1, 1, []);
    GATHER: GatherParams = ("gather", "gather", 2, 1, []);
    GATHER_ELEMENTS: GatherElementsParams = ("gather", "gather_elements", 2, 1, []);
    SCATTER_ADD: ScatterAddParams = ("scatter_add", "scatter_add", 3, 1, []);
    SLICE: SliceParams = ("slice", "slice", 1, 1, []);
    SLICE_BACKWARD: SliceBackwardParams = ("slice", "slice_backward", 1, 1, []);
    WHERE_SELECT: WhereParams = ("where_select", "where_select", 3, 1, []);
    // END OF SPECS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_carries_the_spec_and_the_struct_bytes_as_words() {
        let params = BinaryParams {
            numel: 6,
            rank: 2,
            same_shape: 0,
            _pad: 0,
            shape: slots8(&[2, 3]),
            a_strides: slots8(&[3, 1]),
            b_strides: slots8(&[0, 1]),
        };
        let l = launch(&BINARY_BACKWARD, vec![("WHICH", 1)], &params, 7);
        assert_eq!(l.key.shader, "binary");
        assert_eq!(l.key.entry, "binary_backward");
        assert_eq!((l.key.reads, l.key.writes), (3, 1));
        assert_eq!(l.key.constants, vec![("WHICH", 1)]);
        assert_eq!(l.workgroups, 7);
        let mut want = vec![0u32; 28];
        want[..4].copy_from_slice(&[6, 2, 0, 0]);
        want[4..6].copy_from_slice(&[2, 3]);
        want[12..14].copy_from_slice(&[3, 1]);
        want[20..22].copy_from_slice(&[0, 1]);
        assert_eq!(l.params, want);
    }

    #[test]
    fn floats_travel_as_their_bits_and_layouts_record_every_field() {
        let l = launch(
            &FILL,
            vec![],
            &FillParams {
                numel: 5,
                value: -1.5,
            },
            1,
        );
        assert_eq!(l.params, vec![5, (-1.5f32).to_bits()]);
        let layout = <BinaryParams as Params>::LAYOUT;
        assert_eq!(layout.size, 112);
        let names: Vec<_> = layout.fields.iter().map(|f| (f.0, f.1, f.2)).collect();
        assert_eq!(
            names,
            [
                ("numel", 0, 4),
                ("rank", 4, 4),
                ("same_shape", 8, 4),
                ("_pad", 12, 4),
                ("shape", 16, 32),
                ("a_strides", 48, 32),
                ("b_strides", 80, 32),
            ]
        );
        assert!(KERNELS
            .iter()
            .any(|k| k.entry == "binary_backward" && k.params.name == "BinaryParams"));
    }

    #[test]
    fn slots8_fills_the_leading_slots_and_zeroes_the_rest() {
        assert_eq!(slots8(&[4, 5, 6]), [4, 5, 6, 0, 0, 0, 0, 0]);
        assert_eq!(slots8(&[]), [0; 8]);
        assert_eq!(islots8(&[-3, 2]), [-3, 2, 0, 0, 0, 0, 0, 0]);
    }
}
